#pragma once
/// \file
/// `multi_head_attention<Scalar>`: one attention layer (self, cross, batched with padding, KV-cache decoding),
/// with a hook at every per-head intermediate. See hooks/hook_point.hpp for the hook interface.
///
/// Data through the layer, for each sequence b of the batch and each query head h served by kv head g:
///   q, k, v = x W_q + b_q, src W_k + b_k, src W_v + b_v       (src = x, or the memory for cross-attention)
///   rotary(q, k) when configured                                 hooks `q`, `k`, `v` see the rotated values
///   s_h = scale * q_h k_g^T + attn_mask, -inf where masked       hook `scores`
///   p_h = softmax(s_h)  (a fully masked row becomes 0)           hook `pattern`
///   z_h = p_h v_g                                                hook `z`
///   o_h = z_h W_o[h]    (split per head only when a hook wants)  hook `head_out`
///   out = sum_h o_h + b_o                                        hook `out`
///
/// Two paths compute the same thing (float within 1e-5, see tests/test_attention.cpp). The *materialised* path
/// forms s_h and p_h per head, for heads whose `scores` or `pattern` a hook wants. The *streaming* path (online
/// softmax over key tiles, FlashAttention's recurrence) never forms a [T_q x T_k] matrix: per query tile of
/// `stream_query_tile` rows (`stream_long_query_tile` for long inputs) it walks key tiles of `stream_key_tile`
/// keys, keeping a running maximum, sum and output per row, and skips the key tiles a causal query cannot see.
/// `forward_options::path` chooses; by default each head of each sequence takes the streaming path unless a hook
/// wants its scores or pattern. Work is threaded over heads and query tiles (kernels/parallel.hpp) with results
/// bit-identical whatever the thread count.
///
/// Non-finite input: NaN or infinity in x, the memory or the weights propagates to NaN in every output it reaches
/// (a softmax row that meets a NaN is all NaN); nothing is dropped silently. One difference between the paths: on
/// the streaming path a causal query never reads the values of keys it cannot see, so a NaN in a later token's
/// value does not reach earlier queries (the materialised path multiplies it by a zero weight and gets NaN). Set
/// `forward_options::check_finite` to get a `numeric_error` naming the first bad position instead.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/kernels/attention_config.hpp"
#include "headlens/kernels/attention_sparsity.hpp"
#include "headlens/kernels/parallel.hpp"
#include "headlens/kernels/rotary.hpp"
#include "headlens/kernels/scratch.hpp"
#include "headlens/kernels/softmax.hpp"
#include "headlens/kernels/pattern_rows.hpp"
#include "headlens/kernels/sparsity_statistics.hpp"
#include "headlens/kernels/streaming_statistics.hpp"
#include "headlens/kernels/tile_product.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// Which attention path a forward call takes (see the file comment).
enum class attention_path {
  automatic,     ///< streaming for every head whose scores and pattern no hook wants, materialised otherwise
  materialised,  ///< every head forms its [T_q x T_k] scores and pattern
  streaming,     ///< every head streams; a hook that wants scores or pattern is an `argument_error`
};

/// Query rows per streaming work unit, and keys per tile of its inner loop. With head_dim 64 and float, a unit's
/// working set (its queries and output 16 KiB each, one key and one value tile 64 KiB each, the logits tile
/// 64 KiB) stays inside a 1 MiB L2 with room for Eigen's packed copies, and T = 128 still gives 2 units per head.
/// From `stream_long_from` queries on, units take `stream_long_query_tile` rows (192: 4 of Eigen's 48-row AVX-512
/// micro-panels, where 64 leaves a 16-row remainder, and a third as many re-packings of each key and value tile;
/// 4-5% less time per forward at T = 2048, no gain measured at T <= 512, where small units balance 2 threads
/// better). The materialised path always works in blocks of `stream_query_tile` rows. Macros of the same names in
/// capitals, with a HEADLENS_ prefix, override them (tuning for other caches).
#ifndef HEADLENS_STREAM_QUERY_TILE
#define HEADLENS_STREAM_QUERY_TILE 64
#endif
#ifndef HEADLENS_STREAM_LONG_QUERY_TILE
#define HEADLENS_STREAM_LONG_QUERY_TILE 192
#endif
#ifndef HEADLENS_STREAM_LONG_FROM
#define HEADLENS_STREAM_LONG_FROM 1024
#endif
#ifndef HEADLENS_STREAM_KEY_TILE
#define HEADLENS_STREAM_KEY_TILE 256
#endif
#ifndef HEADLENS_SCORE_BUFFER_MIB
#define HEADLENS_SCORE_BUFFER_MIB 4
#endif
/// Keeps the sparse-attention branches out of line, so that the dense kernels' inlined code (and speed) is what it
/// is without them.
#ifndef HEADLENS_NOINLINE
#if defined(__GNUC__) || defined(__clang__)
#define HEADLENS_NOINLINE __attribute__((noinline))
#else
#define HEADLENS_NOINLINE
#endif
#endif
inline constexpr Index stream_query_tile = HEADLENS_STREAM_QUERY_TILE;
inline constexpr Index stream_long_query_tile = HEADLENS_STREAM_LONG_QUERY_TILE;
inline constexpr Index stream_long_from = HEADLENS_STREAM_LONG_FROM;
inline constexpr Index stream_key_tile = HEADLENS_STREAM_KEY_TILE;

/// Per-call inputs besides the activations. Empty members mean "none".
template <class Scalar>
struct forward_options {
  /// The rows of x hold `batch` sequences of equal (padded) length T_q, one after another; likewise the memory
  /// of cross-attention holds `batch` sequences of length T_k.
  Index batch = 1;
  /// [batch x T_k], true where a key is padding and must not be attended to (PyTorch's key_padding_mask).
  bool_matrix key_padding;
  /// [T_q x T_k], added to the scaled scores of every head and sequence; -inf blocks a key.
  matrix<Scalar> attn_mask;
  /// Rotary positions of the T_q queries (and, in self-attention, of the keys); default 0..T_q-1, or continuing
  /// from the cache in `forward_step`. Same for every sequence of the batch.
  std::vector<Index> positions;
  /// [n_heads], false skips a head: no scores, pattern or z are computed for it and its z is zero, which gives
  /// the same output as zero-ablating its `head_out`, faster. Hooks after `q` do not fire for a skipped head.
  std::vector<bool> head_mask;
  /// Throw `numeric_error` naming the first NaN or infinity in x (and the memory) instead of propagating it.
  bool check_finite = false;
  /// Which attention path to take; `automatic` streams wherever no hook wants a head's scores or pattern.
  attention_path path = attention_path::automatic;
  /// Threads to use (OpenMP builds); 0 means OpenMP's default (OMP_NUM_THREADS, else the core count). Results
  /// are bit-identical whatever the count.
  Index threads = 0;
  /// When set, receives per-head statistics computed inside the tile loop (see kernels/streaming_statistics.hpp),
  /// without forming any [T_q x T_k] map on the streaming path. Must outlive the call.
  attention_statistics<Scalar>* statistics = nullptr;
  /// When set, called once per sequence after the streaming pass with exact pattern rows of the streamed heads,
  /// computed on demand (kernels/pattern_rows.hpp): features of any rows at any length without a [T_q x T_k] map.
  /// Must outlive the call.
  pattern_row_observer<Scalar>* row_observer = nullptr;
  /// Sparse attention on both paths: keep the top k weights of each row or the weights >= tau, renormalised to
  /// sum to 1 (kernels/attention_sparsity.hpp). Default none: the dense kernels, bit for bit. Not combined with
  /// `row_observer` (an `argument_error`).
  attention_sparsity sparsity;
  /// When set (with a sparsity mode), receives per-head totals of what sparsity did: weights dropped, mass kept,
  /// output error against the dense z (kernels/sparsity_statistics.hpp). Must outlive the call.
  sparsity_statistics* sparsity_report = nullptr;
};

/// Keys and values of earlier tokens, for incremental decoding with `multi_head_attention::forward_step`. Holds
/// post-rotary keys, so later steps never rotate them again. One cache serves one layer.
template <class Scalar>
class kv_cache {
 public:
  /// Tokens cached per sequence.
  Index length() const noexcept { return length_; }
  /// Sequences in the batch (0 before the first step).
  Index batch() const noexcept { return static_cast<Index>(keys_.size()); }
  /// Cached keys of sequence b: [length() x n_kv_heads*head_dim].
  Eigen::Block<const matrix<Scalar>> keys(Index b) const { return keys_.at(std::size_t(b)).topRows(length_); }
  /// Cached values of sequence b: [length() x n_kv_heads*head_dim].
  Eigen::Block<const matrix<Scalar>> values(Index b) const { return values_.at(std::size_t(b)).topRows(length_); }
  /// Bytes held (capacity included).
  std::size_t bytes() const noexcept {
    std::size_t total = 0;
    for (const auto& m : keys_) total += std::size_t(m.size()) * sizeof(Scalar) * 2;
    return total;
  }
  /// Keeps the first `length` tokens and forgets the rest (beam search, speculative decoding). Throws
  /// `argument_error` unless 0 <= length <= length().
  void truncate(Index length) {
    if (length < 0 || length > length_) {
      detail::fail<argument_error>("kv_cache::truncate: length is ", length, ", expected 0 to length() = ", length_);
    }
    length_ = length;
  }
  /// Forgets every token.
  void clear() noexcept {
    keys_.clear();
    values_.clear();
    length_ = 0;
  }

 private:
  template <class>
  friend class multi_head_attention;
  std::vector<matrix<Scalar>> keys_, values_;
  Index length_ = 0;
};

/// One multi-head attention layer: MHA, GQA or MQA; self or cross; causal or not; optional rotary positions.
/// Thread safety: `forward*` are const and allocate their own workspaces, so one module may serve several
/// threads at once (a `kv_cache` may not be shared). Hooks are always called from the calling thread, one at a
/// time, in the order of the data flow (per head: scores, pattern, z); only hook-free work runs on other threads.
template <class Scalar>
class multi_head_attention {
  static_assert(std::is_floating_point<Scalar>::value, "multi_head_attention needs float or double");

 public:
  using scalar_type = Scalar;

  /// Validates the config and the weights against it (throws `argument_error`, `shape_error`) and packs the
  /// projections into one fused [d_model x (n_heads + 2 n_kv_heads) head_dim] matrix. `layer` is reported to hooks.
  multi_head_attention(const attention_config& config, const attention_weights<Scalar>& weights, int layer = 0)
      : config_(config), layer_(layer) {
    config_.validate();
    validate_weights(config_, weights);
    head_dim_ = config_.head_size();
    q_width_ = config_.n_heads * head_dim_;
    kv_width_ = config_.kv_heads() * head_dim_;
    w_qkv_.resize(config_.d_model, q_width_ + 2 * kv_width_);
    w_qkv_ << weights.w_q, weights.w_k, weights.w_v;
    w_o_ = weights.w_o;
    q_norm_ = weights.q_norm;
    k_norm_ = weights.k_norm;
    if (config_.bias) {
      b_qkv_.resize(q_width_ + 2 * kv_width_);
      b_qkv_ << weights.b_q.transpose(), weights.b_k.transpose(), weights.b_v.transpose();
      b_o_ = weights.b_o.transpose();
    }
  }

  const attention_config& config() const noexcept { return config_; }
  int layer() const noexcept { return layer_; }
  Index head_dim() const noexcept { return head_dim_; }

  /// Self-attention. x is [batch*T x d_model]; returns [batch*T x d_model]. Throws `shape_error`,
  /// `argument_error` (and `numeric_error` under `check_finite`) before any work.
  template <class Hooks = no_hooks>
  matrix<Scalar> forward(const Eigen::Ref<const matrix<Scalar>>& x, const forward_options<Scalar>& options = {},
                         Hooks&& hooks = Hooks{}) const {
    const Index batch = check_batch(x, "x", options);
    const Index t = x.rows() / batch;
    check_options(options, t, t);
    if (options.check_finite) check_finite(x, "x");
    const std::vector<head_plan> plan = plan_heads(hooks, batch, t, 0, options);
    if (options.statistics != nullptr) options.statistics->prepare(batch, config_.n_heads, t, t);
    const int threads = detail::thread_count(options.threads);

    const Index stride = q_width_ + 2 * kv_width_;
    scratch_lease scratch(lease::piece(x.rows() * stride) + lease::piece(x.rows() * q_width_) +
                          lease::piece(scores_size(plan, t, t)) + lease::piece(transposed_keys_size(plan, t, t)));
    plain_map qkv(scratch.take(x.rows() * stride), x.rows(), stride);
    detail::projection_product<Scalar>(qkv, x, w_qkv_, threads);
    if (config_.bias) qkv.rowwise() += b_qkv_;
    plain_map z(scratch.take(x.rows() * q_width_), x.rows(), q_width_);
    z.setZero();
    call_workspace ws = make_workspace(plan, threads, t, t, options, scratch);
    for (Index b = 0; b < batch; ++b) {
      Scalar* row0 = qkv.data() + b * t * stride;
      rotate_and_fire(hooks, b, row0, stride, t, row0 + q_width_, row0 + q_width_ + kv_width_, stride, t, 0, options,
                      /*keys_at_query_positions=*/true);
      attend(hooks, b, row0, stride, row0 + q_width_, row0 + q_width_ + kv_width_, stride, t, t, 0, options,
             z.data() + b * t * q_width_, plan, ws, threads);
    }
    return project_out(hooks, z, batch, t, 0, threads);
  }

  /// Cross-attention: queries from x [batch*T_q x d_model], keys and values from memory [batch*T_k x d_model].
  /// Rotary positions of the keys are 0..T_k-1. `config.causal` is not allowed here.
  template <class Hooks = no_hooks>
  matrix<Scalar> forward_cross(const Eigen::Ref<const matrix<Scalar>>& x, const Eigen::Ref<const matrix<Scalar>>& memory,
                               const forward_options<Scalar>& options = {}, Hooks&& hooks = Hooks{}) const {
    if (config_.causal) {
      detail::fail<argument_error>("config.causal is true, expected false for cross-attention (forward_cross)");
    }
    const Index batch = check_batch(x, "x", options);
    check_batch(memory, "memory", options);
    const Index t_q = x.rows() / batch, t_k = memory.rows() / batch;
    check_options(options, t_q, t_k);
    if (options.check_finite) {
      check_finite(x, "x");
      check_finite(memory, "memory");
    }

    const std::vector<head_plan> plan = plan_heads(hooks, batch, t_q, 0, options);
    if (options.statistics != nullptr) options.statistics->prepare(batch, config_.n_heads, t_q, t_k);
    const int threads = detail::thread_count(options.threads);

    scratch_lease scratch(lease::piece(x.rows() * q_width_) + lease::piece(memory.rows() * 2 * kv_width_) +
                          lease::piece(x.rows() * q_width_) + lease::piece(scores_size(plan, t_q, t_k)) +
                          lease::piece(transposed_keys_size(plan, t_q, t_k)));
    plain_map q(scratch.take(x.rows() * q_width_), x.rows(), q_width_);
    detail::projection_product<Scalar>(q, x, w_qkv_.leftCols(q_width_), threads);
    plain_map kv(scratch.take(memory.rows() * 2 * kv_width_), memory.rows(), 2 * kv_width_);
    detail::projection_product<Scalar>(kv, memory, w_qkv_.rightCols(2 * kv_width_), threads);
    if (config_.bias) {
      q.rowwise() += b_qkv_.leftCols(q_width_);
      kv.rowwise() += b_qkv_.rightCols(2 * kv_width_);
    }
    plain_map z(scratch.take(x.rows() * q_width_), x.rows(), q_width_);
    z.setZero();
    call_workspace ws = make_workspace(plan, threads, t_q, t_k, options, scratch);
    for (Index b = 0; b < batch; ++b) {
      Scalar* q0 = q.data() + b * t_q * q_width_;
      Scalar* k0 = kv.data() + b * t_k * 2 * kv_width_;
      rotate_and_fire(hooks, b, q0, q_width_, t_q, k0, k0 + kv_width_, 2 * kv_width_, t_k, 0, options,
                      /*keys_at_query_positions=*/false);
      attend(hooks, b, q0, q_width_, k0, k0 + kv_width_, 2 * kv_width_, t_q, t_k, 0, options,
             z.data() + b * t_q * q_width_, plan, ws, threads);
    }
    return project_out(hooks, z, batch, t_q, 0, threads);
  }

  /// Incremental decoding: x holds the next n >= 1 tokens of each of `batch` sequences [batch*n x d_model]; their
  /// keys and values are appended to `cache` and they attend to every cached token and causally to each other.
  /// Feeding a sequence in any number of steps gives the outputs of one causal `forward` over it. Needs
  /// `config.causal`. Masks are over the keys seen so far: key_padding [batch x (length+n)], attn_mask
  /// [n x (length+n)]. Hooks `k` and `v` see the new rows only; `scores` and `pattern` see [n x (length+n)].
  template <class Hooks = no_hooks>
  matrix<Scalar> forward_step(const Eigen::Ref<const matrix<Scalar>>& x, kv_cache<Scalar>& cache,
                              const forward_options<Scalar>& options = {}, Hooks&& hooks = Hooks{}) const {
    if (!config_.causal) {
      detail::fail<argument_error>("config.causal is false, expected true for KV-cache decoding (forward_step)");
    }
    const Index batch = check_batch(x, "x", options);
    if (cache.batch() != 0 && cache.batch() != batch) {
      detail::fail<shape_error>("options.batch is ", batch, ", expected the cache's batch = ", cache.batch());
    }
    const Index n = x.rows() / batch, past = cache.length_, t_k = past + n;
    check_options(options, n, t_k);
    if (options.check_finite) check_finite(x, "x");
    const std::vector<head_plan> plan = plan_heads(hooks, batch, n, past, options);
    if (options.statistics != nullptr) options.statistics->prepare(batch, config_.n_heads, n, t_k);
    const int threads = detail::thread_count(options.threads);

    reserve_cache(cache, batch, t_k);
    const Index stride = q_width_ + 2 * kv_width_;
    scratch_lease scratch(lease::piece(x.rows() * stride) + lease::piece(x.rows() * q_width_) +
                          lease::piece(scores_size(plan, n, t_k)) + lease::piece(transposed_keys_size(plan, n, t_k)));
    plain_map qkv(scratch.take(x.rows() * stride), x.rows(), stride);
    detail::projection_product<Scalar>(qkv, x, w_qkv_, threads);
    if (config_.bias) qkv.rowwise() += b_qkv_;
    plain_map z(scratch.take(x.rows() * q_width_), x.rows(), q_width_);
    z.setZero();
    call_workspace ws = make_workspace(plan, threads, n, t_k, options, scratch);
    for (Index b = 0; b < batch; ++b) {
      Scalar* row0 = qkv.data() + b * n * stride;
      rotate_and_fire(hooks, b, row0, stride, n, row0 + q_width_, row0 + q_width_ + kv_width_, stride, n, past,
                      options, /*keys_at_query_positions=*/true);
      matrix<Scalar>& keys = cache.keys_[std::size_t(b)];
      matrix<Scalar>& values = cache.values_[std::size_t(b)];
      keys.middleRows(past, n) = qkv.block(b * n, q_width_, n, kv_width_);
      values.middleRows(past, n) = qkv.block(b * n, q_width_ + kv_width_, n, kv_width_);
      attend(hooks, b, row0, stride, keys.data(), values.data(), kv_width_, n, t_k, past, options,
             z.data() + b * n * q_width_, plan, ws, threads);
    }
    cache.length_ = t_k;
    return project_out(hooks, z, batch, n, past, threads);
  }

 private:
  using row_vector = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;
  using plain_map = Eigen::Map<matrix<Scalar>>;
  using scratch_lease = detail::scratch_lease<Scalar>;
  using lease = scratch_lease;

  hook_context context(Index b, int head, int kv_head, Index begin, Index end) const {
    hook_context ctx;
    ctx.layer = layer_;
    ctx.head = head;
    ctx.kv_head = kv_head;
    ctx.batch_row = b;
    ctx.token_begin = begin;
    ctx.token_end = end;
    return ctx;
  }

  Index check_batch(const Eigen::Ref<const matrix<Scalar>>& x, const char* name,
                    const forward_options<Scalar>& options) const {
    if (x.cols() != config_.d_model) {
      detail::fail<shape_error>(name, ".cols() is ", x.cols(), ", expected d_model = ", config_.d_model);
    }
    if (x.rows() == 0) {
      detail::fail<shape_error>(name, ".rows() is 0, expected at least one token (empty sequence)");
    }
    if (options.batch < 1) detail::fail<argument_error>("options.batch is ", options.batch, ", expected at least 1");
    if (x.rows() % options.batch != 0) {
      detail::fail<shape_error>(name, ".rows() is ", x.rows(), ", expected a multiple of options.batch = ", options.batch);
    }
    return options.batch;
  }

  void check_options(const forward_options<Scalar>& options, Index t_q, Index t_k) const {
    if (options.key_padding.size() != 0 &&
        (options.key_padding.rows() != options.batch || options.key_padding.cols() != t_k)) {
      detail::fail<shape_error>("options.key_padding is [", options.key_padding.rows(), " x ",
                                options.key_padding.cols(), "], expected [batch x T_k] = [", options.batch, " x ", t_k,
                                "]");
    }
    if (options.attn_mask.size() != 0 && (options.attn_mask.rows() != t_q || options.attn_mask.cols() != t_k)) {
      detail::fail<shape_error>("options.attn_mask is [", options.attn_mask.rows(), " x ", options.attn_mask.cols(),
                                "], expected [T_q x T_k] = [", t_q, " x ", t_k, "]");
    }
    if (!options.positions.empty()) {
      if (Index(options.positions.size()) != t_q) {
        detail::fail<shape_error>("options.positions has ", options.positions.size(), " entries, expected T_q = ", t_q);
      }
      for (std::size_t i = 0; i < options.positions.size(); ++i) {
        if (options.positions[i] < 0) {
          detail::fail<argument_error>("options.positions[", i, "] is ", options.positions[i],
                                       ", expected a position >= 0");
        }
      }
    }
    options.sparsity.validate();
    if (options.sparsity.mode != sparsity_mode::none && options.row_observer != nullptr) {
      detail::fail<argument_error>("options.row_observer is set with options.sparsity.mode ",
                                   options.sparsity.mode == sparsity_mode::top_k ? "top_k" : "threshold",
                                   ", expected sparsity_mode::none (pattern rows are dense)");
    }
    if (options.sparsity_report != nullptr && options.sparsity.mode == sparsity_mode::none) {
      detail::fail<argument_error>("options.sparsity_report is set with options.sparsity.mode none, expected "
                                   "top_k or threshold (there is nothing to report)");
    }
    if (!options.head_mask.empty() && Index(options.head_mask.size()) != config_.n_heads) {
      detail::fail<shape_error>("options.head_mask has ", options.head_mask.size(), " entries, expected n_heads = ",
                                config_.n_heads);
    }
  }

  static void check_finite(const Eigen::Ref<const matrix<Scalar>>& x, const char* name) {
    for (Index i = 0; i < x.rows(); ++i) {
      for (Index j = 0; j < x.cols(); ++j) {
        const Scalar value = x(i, j);
        if (!std::isfinite(value)) {
          detail::fail<numeric_error>(name, " has a non-finite value (", value, ") at row ", i, ", column ", j,
                                      ", expected finite input (options.check_finite)");
        }
      }
    }
  }

  void reserve_cache(kv_cache<Scalar>& cache, Index batch, Index needed) const {
    if (cache.keys_.empty()) {
      cache.keys_.resize(std::size_t(batch));
      cache.values_.resize(std::size_t(batch));
    }
    for (std::size_t b = 0; b < cache.keys_.size(); ++b) {
      if (cache.keys_[b].rows() >= needed) continue;
      // Grow geometrically so that decoding token by token copies each cached row O(1) times on average.
      const Index capacity = std::max(needed, 2 * cache.keys_[b].rows());
      for (matrix<Scalar>* m : {&cache.keys_[b], &cache.values_[b]}) {
        matrix<Scalar> grown(capacity, kv_width_);
        if (cache.length_ > 0) grown.topRows(cache.length_) = m->topRows(cache.length_);
        *m = std::move(grown);
      }
    }
  }

  /// Applies rotary to the new queries and keys of one sequence and fires `q`, `k`, `v`. `past` is the position
  /// of the first new token. Keys take the queries' positions in self-attention, 0..t_k-1 in cross-attention.
  template <class Hooks>
  void rotate_and_fire(Hooks& hooks, Index b, Scalar* q, Index q_stride, Index t_q, Scalar* k, Scalar* v,
                       Index kv_stride, Index t_k, Index past, const forward_options<Scalar>& options,
                       bool keys_at_query_positions) const {
    const auto query_position = [&](Index r) {
      return options.positions.empty() ? past + r : options.positions[std::size_t(r)];
    };
    if (config_.qk_norm) {  // per-head RMSNorm before rotary (Qwen3)
      normalize_heads(q, t_q, q_stride, config_.n_heads, head_dim_, q_norm_, config_.qk_norm_eps);
      normalize_heads(k, t_k, kv_stride, config_.kv_heads(), head_dim_, k_norm_, config_.qk_norm_eps);
    }
    if (config_.rotary) {
      detail::apply_rotary(q, t_q, q_stride, config_.n_heads, head_dim_, config_.rotary_size(), config_.rotary_base,
                           query_position, config_.rotary_scale, config_.rotary_interleaved);
      const auto key_position = [&](Index r) { return keys_at_query_positions ? query_position(r) : r; };
      detail::apply_rotary(k, t_k, kv_stride, config_.kv_heads(), head_dim_, config_.rotary_size(),
                           config_.rotary_base, key_position, config_.rotary_scale, config_.rotary_interleaved);
    }
    const Index kv_begin = past, kv_end = past + t_k;
    for (Index h = 0; h < config_.n_heads; ++h) {
      detail::fire<hook_point::q>(hooks, context(b, int(h), int(h / config_.group_size()), past, past + t_q),
                                  q + h * head_dim_, t_q, head_dim_, q_stride);
    }
    for (Index g = 0; g < config_.kv_heads(); ++g) {
      detail::fire<hook_point::k>(hooks, context(b, int(g), int(g), kv_begin, kv_end), k + g * head_dim_, t_k,
                                  head_dim_, kv_stride);
      detail::fire<hook_point::v>(hooks, context(b, int(g), int(g), kv_begin, kv_end), v + g * head_dim_, t_k,
                                  head_dim_, kv_stride);
    }
  }

  /// What one head does for one sequence of a call.
  enum class head_plan : unsigned char { skip, stream, materialise };

  /// Chooses each head's path for each sequence, before any work: a head streams unless the options say
  /// `materialised` or a hook wants its scores or pattern. Throws `argument_error` when `streaming` was asked for
  /// and a hook wants a map.
  template <class Hooks>
  std::vector<head_plan> plan_heads(const Hooks& hooks, Index batch, Index t_q, Index past,
                                    const forward_options<Scalar>& options) const {
    std::vector<head_plan> plan(std::size_t(batch * config_.n_heads), head_plan::stream);
    for (Index b = 0; b < batch; ++b) {
      for (Index h = 0; h < config_.n_heads; ++h) {
        head_plan& p = plan[std::size_t(b * config_.n_heads + h)];
        if (!options.head_mask.empty() && !options.head_mask[std::size_t(h)]) {
          p = head_plan::skip;
          continue;
        }
        const hook_context ctx = context(b, int(h), int(h / config_.group_size()), past, past + t_q);
        const bool wants_scores = detail::wanted<hook_point::scores>(hooks, ctx);
        const bool wants_map = wants_scores || detail::wanted<hook_point::pattern>(hooks, ctx);
        if (wants_map && options.path == attention_path::streaming) {
          detail::fail<argument_error>("options.path is streaming, but a hook wants the ",
                                       wants_scores ? "scores" : "pattern", " of head ", h, " (batch row ", b,
                                       "); expected attention_path::automatic or materialised");
        }
        if (wants_map || options.path == attention_path::materialised) p = head_plan::materialise;
      }
    }
    return plan;
  }

  /// One thread's buffers for the streaming path, sized once per call.
  struct stream_workspace {
    matrix<Scalar> q;        ///< [unit rows x head_dim]: scaled queries of the unit
    matrix<Scalar> s;        ///< [unit rows x stream_key_tile]: logits, then exponentials, of one key tile
    matrix<Scalar> o;        ///< [unit rows x head_dim]: unnormalised output
    matrix<Scalar> offsets;  ///< [unit rows x 2 max_offset + 1]: unnormalised mass by offset (statistics)
    std::vector<Scalar> max, sum;
    std::vector<char> nan;
    std::vector<detail::row_statistics_state<Scalar>> stats;
    // Sparse calls only (see `stream_unit_sparse`):
    matrix<Scalar> tile_max;  ///< [unit rows x key tiles]: each row's maximum logit in each key tile
    matrix<Scalar> o_dense;   ///< [unit rows x head_dim]: the dense output, for the report
    std::vector<Scalar> dense_sum;
    std::vector<detail::row_cutoff<Scalar>> cut;
    std::vector<detail::ranked_key<Scalar>> top_keys;  ///< [unit rows x 2k]: top-k selections (`top_k_selection`)
    std::vector<Index> top_size, visible, kept;
    std::vector<Scalar> top_floor, top_scratch;
  };

  /// What sparsity did to one query row of one head, for `sparsity_statistics` (summed in row order afterwards,
  /// so the totals do not depend on the threads).
  struct sparse_row {
    Index visible = 0, kept = 0;
    double mass = 0, error = 0, dense = 0;  ///< mass kept; |z - dense z|^2; |dense z|^2
    bool measured = false;
  };

  /// One head's part of a parallel region of the materialised path: z = pattern v from `pattern` (`pv` stages),
  /// or its scores into `out`, softmaxed in place unless a hook wants them first (score stages).
  struct head_stage {
    Index head = 0;
    Scalar* buffer = nullptr;
    bool softmax = true;
  };
  /// What one parallel region of the materialised path computes: the z of some heads and the scores of others.
  /// Several heads share a region so that fewer fork/joins separate the hooks, which run on the calling thread.
  struct materialise_stage {
    std::vector<head_stage> pv, scores;  ///< capacity n_heads each, reserved with the workspace
  };

  /// Every buffer a call needs besides its inputs and outputs, allocated before the work starts.
  struct call_workspace {
    std::vector<stream_workspace> threads;  ///< one per thread, when some head streams
    std::vector<Scalar*> scores;             ///< [T_q x T_k] each (scratch): see `score_buffers`
    std::vector<Index> materialised_heads;   ///< capacity n_heads
    materialise_stage stage;
    Scalar* transposed_keys = nullptr;       ///< see `transposed_keys_size` (scratch)
    std::vector<Index> streaming_heads;     ///< capacity n_heads
    matrix<Scalar> unit_offsets;            ///< [n_heads * query tiles x 2 max_offset + 2]: statistics partials
    std::vector<Scalar> lse;                ///< [n_heads x T_q]: rows' log-sum-exp, for `row_observer`
    std::vector<unsigned char> streamed;    ///< [n_heads]: which heads streamed, for `row_observer`
    // Sparse calls only:
    std::vector<std::vector<Scalar>> row_scratch;  ///< [threads][T_k]: the materialised path's sparse softmax
    std::vector<std::vector<Scalar>> dense_block;  ///< [threads][stream_query_tile x T_k]: dense rows (report)
    matrix<Scalar> z_dense;                        ///< [T_q x n_heads*head_dim]: materialised heads' dense z (report)
    std::vector<sparse_row> sparse_rows;           ///< [n_heads x T_q] (report)
    std::vector<std::uint64_t> unit_tiles;         ///< [n_heads * query tiles x 2]: key tiles visited, skipped
  };

  /// Bytes of [T_q x T_k] score buffers a call may hold at once beyond the first two (which every call that
  /// materialises several heads gets up to 16 MiB each, T = 2048 in float).
  static constexpr std::size_t score_buffer_bytes = std::size_t(HEADLENS_SCORE_BUFFER_MIB) << 20;
  static constexpr std::size_t two_score_buffers_up_to = std::size_t(16) << 20;

  /// How many [T_q x T_k] score buffers a call needs: none unless some head materialises; with several
  /// materialised heads in a sequence, two buffers per head (a group's scores beside the previous group's
  /// patterns) as far as `score_buffer_bytes` allows, at least two up to `two_score_buffers_up_to` each; else one.
  Index score_buffers(const std::vector<head_plan>& plan, Index t_q, Index t_k) const {
    Index most = 0;
    for (std::size_t b = 0; b < plan.size(); b += std::size_t(config_.n_heads)) {
      most = std::max<Index>(most, std::count(plan.begin() + std::ptrdiff_t(b),
                                              plan.begin() + std::ptrdiff_t(b) + config_.n_heads,
                                              head_plan::materialise));
    }
    if (most <= 1) return most;
    const std::size_t bytes = std::size_t(t_q * t_k) * sizeof(Scalar);
    if (bytes > two_score_buffers_up_to) return 1;
    return std::max<Index>(2, std::min<Index>(2 * most, Index(score_buffer_bytes / std::max<std::size_t>(bytes, 1))));
  }

  /// Elements the score buffers take in a scratch lease.
  Index scores_size(const std::vector<head_plan>& plan, Index t_q, Index t_k) const {
    return score_buffers(plan, t_q, t_k) * scratch_lease::piece(t_q * t_k);
  }

  call_workspace make_workspace(const std::vector<head_plan>& plan, int threads, Index t_q, Index t_k,
                                const forward_options<Scalar>& options, scratch_lease& scratch) const {
    call_workspace ws;
    const bool any_stream = std::find(plan.begin(), plan.end(), head_plan::stream) != plan.end();
    const Index bins = options.statistics != nullptr ? 2 * options.statistics->max_offset() + 1 : 0;
    if (any_stream) {
      const Index rows = std::min(unit_rows(t_q), t_q);
      ws.threads.resize(std::size_t(threads));
      for (stream_workspace& w : ws.threads) {
        w.q.resize(rows, head_dim_);
        w.s.resize(rows, stream_key_tile);
        w.o.resize(rows, head_dim_);
        w.max.resize(std::size_t(rows));
        w.sum.resize(std::size_t(rows));
        w.nan.resize(std::size_t(rows));
        if (options.statistics != nullptr) {
          w.offsets.resize(rows, bins);
          w.stats.resize(std::size_t(rows));
        }
      }
      if (options.statistics != nullptr) ws.unit_offsets.resize(config_.n_heads * query_tiles(t_q), bins + 1);
    }
    const attention_sparsity& sparsity = options.sparsity;
    const bool report = options.sparsity_report != nullptr;
    if (any_stream && sparsity.mode != sparsity_mode::none) {
      const Index rows = std::min(unit_rows(t_q), t_q), key_tiles = (t_k + stream_key_tile - 1) / stream_key_tile;
      const Index top = sparsity.mode == sparsity_mode::top_k && sparsity.k < t_k ? sparsity.k : 0;
      for (stream_workspace& w : ws.threads) {
        w.tile_max.resize(rows, key_tiles);
        w.dense_sum.resize(std::size_t(rows));
        w.cut.resize(std::size_t(rows));
        w.top_keys.resize(std::size_t(rows * 2 * top));
        w.top_size.resize(std::size_t(rows));
        w.top_floor.resize(std::size_t(rows));
        w.top_scratch.resize(std::size_t(2 * top));
        if (report) {
          w.o_dense.resize(rows, head_dim_);
          w.visible.resize(std::size_t(rows));
          w.kept.resize(std::size_t(rows));
        }
      }
      if (report) ws.unit_tiles.assign(std::size_t(config_.n_heads * query_tiles(t_q) * 2), 0);
    }
    if (report) ws.sparse_rows.assign(std::size_t(config_.n_heads * t_q), sparse_row{});
    if (sparsity.mode != sparsity_mode::none &&
        std::find(plan.begin(), plan.end(), head_plan::materialise) != plan.end()) {
      ws.row_scratch.assign(std::size_t(threads), std::vector<Scalar>(std::size_t(t_k)));
      if (report) {
        ws.dense_block.assign(std::size_t(threads), std::vector<Scalar>(std::size_t(stream_query_tile * t_k)));
        ws.z_dense.resize(t_q, q_width_);
      }
    }
    for (Index i = 0; i < score_buffers(plan, t_q, t_k); ++i) ws.scores.push_back(scratch.take(t_q * t_k));
    ws.materialised_heads.reserve(std::size_t(config_.n_heads));
    ws.stage.pv.reserve(std::size_t(config_.n_heads));
    ws.stage.scores.reserve(std::size_t(config_.n_heads));
    const Index transposed = transposed_keys_size(plan, t_q, t_k);
    if (transposed > 0) ws.transposed_keys = scratch.take(transposed);
    ws.streaming_heads.reserve(std::size_t(config_.n_heads));
    if (options.row_observer != nullptr) {
      ws.lse.assign(std::size_t(config_.n_heads * t_q), Scalar(0));
      ws.streamed.assign(std::size_t(config_.n_heads), 0);
    }
    return ws;
  }

  /// True when the streaming tiles of a call with t_q queries go through `detail::tile_product`: head_dim and the
  /// key tile multiples of the SIMD width (head_dim 64 or 128 in float or double), and enough queries to amortise
  /// transposing the keys once per call (decoding a few tokens uses Eigen's GEMM, as does any other head_dim).
  bool use_tile_product(Index t_q) const noexcept {
    return head_dim_ % detail::tile_batch<Scalar> == 0 && stream_key_tile % detail::tile_batch<Scalar> == 0 &&
           t_q >= stream_query_tile;
  }
  /// Row stride of the transposed keys: t_k rounded up to whole batches, plus one batch so that the head_dim rows
  /// of a power-of-two length do not all fall in the same cache sets.
  static Index transposed_key_stride(Index t_k) noexcept {
    constexpr Index w = detail::tile_batch<Scalar>;
    return (t_k + w - 1) / w * w + w;
  }
  /// Elements of the transposed keys of one sequence ([kv_heads x head_dim x stride]) when the heads that are not
  /// skipped go through `tile_product`, else 0.
  Index transposed_keys_size(const std::vector<head_plan>& plan, Index t_q, Index t_k) const {
    const bool any_work = std::count(plan.begin(), plan.end(), head_plan::skip) < std::ptrdiff_t(plan.size());
    return any_work && use_tile_product(t_q) ? config_.kv_heads() * head_dim_ * transposed_key_stride(t_k) : 0;
  }

  /// Query rows per streaming unit for a call with t_q queries (independent of the thread count). The long tile
  /// only where Eigen still packs the unit's queries on the stack (float up to head_dim 170, double up to 85).
  Index unit_rows(Index t_q) const noexcept {
    const bool fits = stream_long_query_tile * head_dim_ * Index(sizeof(Scalar)) <= EIGEN_STACK_ALLOCATION_LIMIT;
    return t_q >= stream_long_from && fits ? stream_long_query_tile : stream_query_tile;
  }
  Index query_tiles(Index t_q) const noexcept { return (t_q + unit_rows(t_q) - 1) / unit_rows(t_q); }

  /// Scores, pattern and z of every head of one sequence. Query i (position past + i) sees keys 0..past+i when
  /// causal. Writes z [t_q x q_width] at `z` (row stride q_width). Streaming heads run first, in parallel over
  /// (head, query tile) units; then, on the calling thread and in head order, materialised heads form their maps
  /// (firing `scores` and `pattern`) and every head fires `z`.
  template <class Hooks>
  void attend(Hooks& hooks, Index b, const Scalar* q, Index q_stride, const Scalar* k, const Scalar* v,
              Index kv_stride, Index t_q, Index t_k, Index past, const forward_options<Scalar>& options, Scalar* z,
              const std::vector<head_plan>& plan, call_workspace& ws, int threads) const {
    const head_plan* row_plan = plan.data() + b * config_.n_heads;
    ws.streaming_heads.clear();
    for (Index h = 0; h < config_.n_heads; ++h) {
      if (row_plan[h] == head_plan::stream) ws.streaming_heads.push_back(h);
    }
    if (ws.transposed_keys != nullptr) {
      // Keys transposed once per sequence for `tile_product` ([kv head][d][key], zero past t_k), in units of
      // (kv head, key tile); every unit of the head, streaming or materialised, then reads them in place.
      const Index stride = transposed_key_stride(t_k);
      const Index key_tiles = (t_k + stream_key_tile - 1) / stream_key_tile;
      detail::parallel_for(config_.kv_heads() * key_tiles, threads, [&](Index unit, int) {
        const Index g = unit / key_tiles, j0 = (unit % key_tiles) * stream_key_tile;
        const Index j1 = std::min(t_k, j0 + stream_key_tile);
        Scalar* kt = ws.transposed_keys + g * head_dim_ * stride;
        constexpr Index block = 16;
        for (Index c0 = j0; c0 < j1; c0 += block) {
          const Index c1 = std::min(j1, c0 + block);
          for (Index d = 0; d < head_dim_; ++d) {
            for (Index c = c0; c < c1; ++c) kt[d * stride + c] = k[c * kv_stride + g * head_dim_ + d];
          }
        }
        if (j1 == t_k) {
          for (Index d = 0; d < head_dim_; ++d) std::fill(kt + d * stride + t_k, kt + (d + 1) * stride, Scalar(0));
        }
      });
    }
    if (!ws.streaming_heads.empty()) {
      const Index tiles = query_tiles(t_q);
      const Index units = Index(ws.streaming_heads.size()) * tiles;
#ifdef EIGEN_RUNTIME_NO_MALLOC
      // Tests build with this to prove the tile loop allocates nothing (Eigen's GEMM packs on the stack here).
      const bool malloc_was_allowed = Eigen::internal::is_malloc_allowed();
      Eigen::internal::set_is_malloc_allowed(false);
#endif
      detail::parallel_for(units, threads, [&](Index unit, int thread) {
        const Index h = ws.streaming_heads[std::size_t(unit / tiles)], tile = unit % tiles;
        Scalar* partials = options.statistics != nullptr ? &ws.unit_offsets(h * tiles + tile, 0) : nullptr;
        if (options.sparsity.mode != sparsity_mode::none) {
          const bool report = options.sparsity_report != nullptr;
          const Index i0 = tile * unit_rows(t_q);
          stream_unit_sparse(ws.threads[std::size_t(thread)], b, h, i0, q, q_stride, k, v, kv_stride, t_q, t_k, past,
                             options, z, partials, ws.transposed_keys,
                             report ? ws.sparse_rows.data() + h * t_q + i0 : nullptr,
                             report ? ws.unit_tiles.data() + 2 * (h * tiles + tile) : nullptr);
          return;
        }
        Scalar* lse = options.row_observer != nullptr ? ws.lse.data() + h * t_q : nullptr;
        stream_unit(ws.threads[std::size_t(thread)], b, h, tile * unit_rows(t_q), q, q_stride, k, v, kv_stride,
                    t_q, t_k, past, options, z, partials, ws.transposed_keys, lse);
      });
#ifdef EIGEN_RUNTIME_NO_MALLOC
      Eigen::internal::set_is_malloc_allowed(malloc_was_allowed);
#endif
      if (options.statistics != nullptr) {
        // Offset masses are summed over query tiles in tile order, so the sums do not depend on the threads.
        const Index bins = 2 * options.statistics->max_offset() + 1;
        for (Index h : ws.streaming_heads) {
          head_statistics<Scalar>& hs = options.statistics->mutable_head(b, h);
          for (Index tile = 0; tile < tiles; ++tile) {
            const Scalar* partial = &ws.unit_offsets(h * tiles + tile, 0);
            for (Index o = 0; o < bins; ++o) hs.offset_mass[std::size_t(o)] += partial[o];
            hs.far_mass += partial[bins];
          }
        }
      }
    }
    if (options.row_observer != nullptr) {
      for (Index h = 0; h < config_.n_heads; ++h) ws.streamed[std::size_t(h)] = row_plan[h] == head_plan::stream;
      typename pattern_rows<Scalar>::source src;
      src.layer = layer_;
      src.batch_row = b;
      src.heads = config_.n_heads;
      src.group_size = config_.group_size();
      src.head_dim = head_dim_;
      src.t_q = t_q;
      src.t_k = t_k;
      src.past = past;
      src.causal = config_.causal;
      src.scale = Scalar(config_.logit_scale());
      src.softcap = Scalar(config_.softcap);
      src.sliding_window = config_.sliding_window;
      src.q = q;
      src.q_stride = q_stride;
      src.k = k;
      src.kv_stride = kv_stride;
      src.kt = ws.transposed_keys;
      src.kt_stride = ws.transposed_keys != nullptr ? transposed_key_stride(t_k) : 0;
      src.lse = ws.lse.data();
      src.available = ws.streamed.data();
      src.attn_mask = &options.attn_mask;
      src.key_padding = &options.key_padding;
      (*options.row_observer)(pattern_rows<Scalar>(src));
    }
    // Materialised heads, in head order: scores (hook), softmax, pattern (hook), statistics, z = pattern v. Hooks
    // fire on this thread in data-flow order. Heads go in groups: one parallel region computes a group's scores
    // and the previous group's z. When some materialised head's z is hooked, a group is one head (its z must
    // exist before the next head's scores are handed out); otherwise as many heads as the score buffers hold.
    const auto head_context = [&](Index h) {
      return context(b, int(h), int(h / config_.group_size()), past, past + t_q);
    };
    Index next_z = 0;  // heads before this one have fired z
    const auto fire_z_before = [&](Index end) {
      for (; next_z < end; ++next_z) {
        if (row_plan[next_z] == head_plan::skip) continue;
        detail::fire<hook_point::z>(hooks, head_context(next_z), z + next_z * head_dim_, t_q, head_dim_, q_width_);
      }
    };
    ws.materialised_heads.clear();
    bool z_hooked = false;
    for (Index h = 0; h < config_.n_heads; ++h) {
      if (row_plan[h] != head_plan::materialise) continue;
      ws.materialised_heads.push_back(h);
      z_hooked = z_hooked || detail::wanted<hook_point::z>(hooks, head_context(h));
    }
    const Index heads = Index(ws.materialised_heads.size()), buffers = Index(ws.scores.size());
    Index group = 1;
    if (!z_hooked && heads > 0) group = buffers >= heads ? heads : std::max<Index>(1, buffers / 2);
    const bool overlap = buffers >= 2 * group;  // the next group's scores beside this group's patterns
    materialise_stage& stage = ws.stage;
    stage.pv.clear();
    for (Index first = 0, round = 0; first < heads; first += group, ++round) {
      const Index count = std::min(group, heads - first);
      Scalar* const* slots = ws.scores.data() + (overlap && round % 2 == 1 ? group : 0);
      if (!overlap && !stage.pv.empty()) {  // the buffers are needed again: z of the previous group first
        run_stage(stage, b, q, q_stride, k, v, kv_stride, t_q, t_k, past, options, z, ws, threads);
        stage.pv.clear();
      }
      stage.scores.clear();
      for (Index i = 0; i < count; ++i) {
        const Index h = ws.materialised_heads[std::size_t(first + i)];
        stage.scores.push_back({h, slots[i], !detail::wanted<hook_point::scores>(hooks, head_context(h))});
      }
      run_stage(stage, b, q, q_stride, k, v, kv_stride, t_q, t_k, past, options, z, ws, threads);
      stage.pv.clear();
      for (const head_stage& hs : stage.scores) {
        const Index h = hs.head;
        fire_z_before(h);
        const hook_context ctx = head_context(h);
        if (!hs.softmax) {
          detail::fire<hook_point::scores>(hooks, ctx, hs.buffer, t_q, t_k, t_k);
          const Index row_blocks = (t_q + stream_query_tile - 1) / stream_query_tile;
          detail::parallel_for(row_blocks, threads, [&](Index block, int thread) {
            const Index r0 = block * stream_query_tile;
            const Index rows = std::min(stream_query_tile, t_q - r0);
            if (options.sparsity.mode == sparsity_mode::none) {
              detail::softmax_rows(hs.buffer + r0 * t_k, rows, t_k, t_k);
            } else {
              sparse_softmax_block(h, r0, rows, hs.buffer + r0 * t_k, t_q, t_k, v, kv_stride, options, ws, thread);
            }
          });
        }
        detail::fire<hook_point::pattern>(hooks, ctx, hs.buffer, t_q, t_k, t_k);
        if (options.statistics != nullptr) {
          detail::statistics_from_pattern(*options.statistics, b, h, hs.buffer, t_q, t_k, t_k, past);
        }
        stage.pv.push_back({h, hs.buffer, true});
      }
      stage.scores.clear();
    }
    run_stage(stage, b, q, q_stride, k, v, kv_stride, t_q, t_k, past, options, z, ws, threads);
    stage.pv.clear();
    if (options.sparsity_report != nullptr) report_sparsity(*options.sparsity_report, row_plan, t_q, ws);
    fire_z_before(config_.n_heads);
  }

  /// Adds one sequence's sparse rows (and streaming key tiles) to the report, per head in row order.
  void report_sparsity(sparsity_statistics& report, const head_plan* row_plan, Index t_q,
                       const call_workspace& ws) const {
    const Index tiles = query_tiles(t_q);
    for (Index h = 0; h < config_.n_heads; ++h) {
      if (row_plan[h] == head_plan::skip) continue;
      head_sparsity& totals = report.mutable_head(layer_, h, config_.n_heads);
      for (Index i = 0; i < t_q; ++i) {
        const sparse_row& record = ws.sparse_rows[std::size_t(h * t_q + i)];
        if (!record.measured) continue;
        ++totals.rows;
        totals.empty_rows += record.kept == 0;
        totals.weights += std::uint64_t(record.visible);
        totals.dropped += std::uint64_t(record.visible - record.kept);
        totals.mass_kept += record.mass;
        totals.error_squared += record.error;
        totals.dense_squared += record.dense;
      }
      if (row_plan[h] == head_plan::stream) {
        for (Index tile = 0; tile < tiles; ++tile) {
          totals.key_tiles += ws.unit_tiles[std::size_t(2 * (h * tiles + tile))];
          totals.skipped_tiles += ws.unit_tiles[std::size_t(2 * (h * tiles + tile) + 1)];
        }
      }
    }
  }

  /// Runs one `materialise_stage`: z = pattern v in fixed blocks of `detail::product_row_chunk` rows (the cut of
  /// `detail::partitioned_product`), scores in blocks of `stream_query_tile` rows with their masks and softmax
  /// while the rows are in cache (scale on q: Eigen folds a scalar on an operand into the GEMM, not on the result).
  /// Every block is one unit of one thread, so results do not depend on the thread count.
  void run_stage(const materialise_stage& stage, Index b, const Scalar* q, Index q_stride, const Scalar* k,
                 const Scalar* v, Index kv_stride, Index t_q, Index t_k, Index past,
                 const forward_options<Scalar>& options, Scalar* z, call_workspace& ws, int threads) const {
    const Scalar* kt = ws.transposed_keys;
    using const_view = const_matrix_view<Scalar>;
    using view = matrix_view<Scalar>;
    const Scalar scale = Scalar(config_.logit_scale());
    const Scalar minus_infinity = -std::numeric_limits<Scalar>::infinity();
    const bool has_padding = options.key_padding.size() != 0;
    const Index pv_blocks = (t_q + detail::product_row_chunk - 1) / detail::product_row_chunk;
    const Index score_blocks = (t_q + stream_query_tile - 1) / stream_query_tile;
    const Index pv_units = Index(stage.pv.size()) * pv_blocks;
    const Index units = pv_units + Index(stage.scores.size()) * score_blocks;
    if (units == 0) return;
    const bool report = options.sparsity_report != nullptr;
    detail::parallel_for(units, threads, [&](Index unit, int thread) {
      if (unit < pv_units) {  // the larger units first, so that the small ones balance the threads at the end
        const head_stage& hs = stage.pv[std::size_t(unit / pv_blocks)];
        const Index h = hs.head, g = h / config_.group_size();
        const Index r0 = (unit % pv_blocks) * detail::product_row_chunk;
        const Index rows = std::min(detail::product_row_chunk, t_q - r0);
        Scalar* z_rows = z + r0 * q_width_ + h * head_dim_;
        if (kt != nullptr) {  // `tile_product`: the rows' z stay in registers over all t_k keys
          detail::tile_product<false>(hs.buffer + r0 * t_k, t_k, v + g * head_dim_, kv_stride, z_rows, q_width_, rows,
                                      head_dim_, t_k);
        } else {
          const_view p(hs.buffer + r0 * t_k, rows, t_k, Eigen::OuterStride<>(t_k));
          const_view v_g(v + g * head_dim_, t_k, head_dim_, Eigen::OuterStride<>(kv_stride));
          view(z_rows, rows, head_dim_, Eigen::OuterStride<>(q_width_)).noalias() = p * v_g;
        }
        if (report) measure_sparse_rows(h, r0, rows, z, t_q, ws);
        return;
      }
      const head_stage& hs = stage.scores[std::size_t((unit - pv_units) / score_blocks)];
      const Index h = hs.head, g = h / config_.group_size();
      const Index r0 = ((unit - pv_units) % score_blocks) * stream_query_tile;
      const Index rows = std::min(stream_query_tile, t_q - r0);
      const_view q_h(q + r0 * q_stride + h * head_dim_, rows, head_dim_, Eigen::OuterStride<>(q_stride));
      const_view k_g(k + g * head_dim_, t_k, head_dim_, Eigen::OuterStride<>(kv_stride));
      plain_map s(hs.buffer + r0 * t_k, rows, t_k);
      if (kt != nullptr) {
        // `tile_product` over whole batches of keys, the last t_k % width keys as dot products; then the scale.
        const Index stride = transposed_key_stride(t_k);
        const Index body = t_k / detail::tile_batch<Scalar> * detail::tile_batch<Scalar>;
        detail::tile_product<false>(q_h.data(), q_stride, kt + g * head_dim_ * stride, stride, s.data(), t_k, rows,
                                    body, head_dim_);
        if (body < t_k) s.rightCols(t_k - body).noalias() = q_h * k_g.bottomRows(t_k - body).transpose();
        s *= scale;
      } else {
        s.noalias() = (scale * q_h) * k_g.transpose();
      }
      if (config_.softcap > 0) detail::soft_cap(s, Scalar(config_.softcap));
      if (options.attn_mask.size() != 0) s += options.attn_mask.middleRows(r0, rows);
      if (has_padding) {
        for (Index j = 0; j < t_k; ++j) {
          if (options.key_padding(b, j)) s.col(j).setConstant(minus_infinity);
        }
      }
      if (config_.causal) {
        for (Index i = 0; i < rows; ++i) {
          const Index first_hidden = past + r0 + i + 1;
          if (first_hidden < t_k) s.row(i).tail(t_k - first_hidden).setConstant(minus_infinity);
        }
      }
      if (config_.sliding_window > 0) {
        for (Index i = 0; i < rows; ++i) {
          const Index first_seen = past + r0 + i - config_.sliding_window + 1;
          if (first_seen > 0) s.row(i).head(std::min(first_seen, t_k)).setConstant(minus_infinity);
        }
      }
      if (!hs.softmax) return;
      if (options.sparsity.mode == sparsity_mode::none) {
        detail::softmax_rows(s.data(), rows, t_k, t_k);
      } else {
        sparse_softmax_block(h, r0, rows, s.data(), t_q, t_k, v, kv_stride, options, ws, thread);
      }
    });
  }

  /// Sparse softmax (kernels/attention_sparsity.hpp) of rows r0..r0+rows-1 of head h's [t_q x t_k] scores `s`
  /// (those rows only) in place, recording each row and the rows' dense z for the report. Runs on thread `thread`
  /// of a parallel region.
  HEADLENS_NOINLINE void sparse_softmax_block(Index h, Index r0, Index rows, Scalar* s, Index t_q, Index t_k,
                                              const Scalar* v, Index kv_stride, const forward_options<Scalar>& options,
                                              call_workspace& ws, int thread) const noexcept {
    const bool report = options.sparsity_report != nullptr;
    Scalar* scratch = ws.row_scratch[std::size_t(thread)].data();
    Scalar* dense = report ? ws.dense_block[std::size_t(thread)].data() : nullptr;
    for (Index i = 0; i < rows; ++i) {
      const detail::sparse_row_outcome<Scalar> outcome = detail::sparse_softmax_row(
          s + i * t_k, t_k, options.sparsity, scratch, dense != nullptr ? dense + i * t_k : nullptr);
      if (!report) continue;
      sparse_row& record = ws.sparse_rows[std::size_t(h * t_q + r0 + i)];
      record = sparse_row{};
      record.measured = outcome.measured;
      record.visible = outcome.visible;
      record.kept = outcome.kept;
      record.mass = double(outcome.mass_kept);
    }
    if (!report) return;
    const Index g = h / config_.group_size();
    const const_matrix_view<Scalar> p(dense, rows, t_k, Eigen::OuterStride<>(t_k));
    const const_matrix_view<Scalar> v_g(v + g * head_dim_, t_k, head_dim_, Eigen::OuterStride<>(kv_stride));
    matrix_view<Scalar>(ws.z_dense.data() + r0 * q_width_ + h * head_dim_, rows, head_dim_,
                        Eigen::OuterStride<>(q_width_))
        .noalias() = p * v_g;
  }

  /// The report's output error of rows r0..r0+rows-1 of a materialised head h: z (sparse) against the dense z
  /// that `softmax_block` left in ws.z_dense.
  HEADLENS_NOINLINE void measure_sparse_rows(Index h, Index r0, Index rows, const Scalar* z, Index t_q,
                                             call_workspace& ws) const noexcept {
    for (Index i = r0; i < r0 + rows; ++i) {
      sparse_row& record = ws.sparse_rows[std::size_t(h * t_q + i)];
      if (!record.measured) continue;
      const Scalar* z_row = z + i * q_width_ + h * head_dim_;
      const Scalar* dense_row = ws.z_dense.data() + i * q_width_ + h * head_dim_;
      for (Index c = 0; c < head_dim_; ++c) {
        const double difference = double(z_row[c]) - double(dense_row[c]);
        record.error += difference * difference;
        record.dense += double(dense_row[c]) * double(dense_row[c]);
      }
    }
  }

  /// The scaled, masked logits of a streaming unit's rows (their scaled queries in ws.q) against keys j0..j0+cols-1
  /// of the unit's kv head, into ws.s (row stride `stream_key_tile`): through `tile_product` over the transposed
  /// keys `kt_g` when given, else Eigen's product with `k_g`. Every pass over a tile forms it here, so a
  /// recomputed tile equals the first bit for bit.
  void tile_logits(stream_workspace& ws, Index b, Index i0, Index rows, Index j0, Index cols, const Scalar* kt_g,
                   Index kt_stride, const const_matrix_view<Scalar>& k_g, Index past,
                   const forward_options<Scalar>& options) const noexcept {
    using map = Eigen::Map<matrix<Scalar>, Eigen::Unaligned, Eigen::OuterStride<>>;
    constexpr Scalar minus_infinity = -std::numeric_limits<Scalar>::infinity();
    const bool fast = kt_g != nullptr;
    const bool has_padding = options.key_padding.size() != 0;
    map s(ws.s.data(), rows, cols, Eigen::OuterStride<>(stream_key_tile));
    const map qs(ws.q.data(), rows, head_dim_, Eigen::OuterStride<>(head_dim_));
    if (fast) {
      // Whole batches of keys: the logits past `cols` (later keys, or the zero padding) are never read.
      const Index padded = (cols + detail::tile_batch<Scalar> - 1) / detail::tile_batch<Scalar> *
                           detail::tile_batch<Scalar>;
      detail::tile_product<false>(ws.q.data(), head_dim_, kt_g + j0, kt_stride, ws.s.data(), stream_key_tile, rows,
                                  padded, head_dim_);
    } else {
      s.noalias() = qs * k_g.middleRows(j0, cols).transpose();
    }
    if (config_.softcap > 0) detail::soft_cap(s, Scalar(config_.softcap));
    if (options.attn_mask.size() != 0) s += options.attn_mask.block(i0, j0, rows, cols);
    if (has_padding) {
      for (Index c = 0; c < cols; ++c) {
        if (options.key_padding(b, j0 + c)) s.col(c).setConstant(minus_infinity);
      }
    }
    if (config_.causal && j0 + cols > past + i0 + 1) {
      for (Index r = 0; r < rows; ++r) {
        const Index first_hidden = std::max<Index>(0, past + i0 + r + 1 - j0);
        if (first_hidden < cols) s.row(r).tail(cols - first_hidden).setConstant(minus_infinity);
      }
    }
    if (config_.sliding_window > 0) {
      for (Index r = 0; r < rows; ++r) {
        const Index first_seen = past + i0 + r - config_.sliding_window + 1 - j0;
        if (first_seen > 0) s.row(r).head(std::min(first_seen, cols)).setConstant(minus_infinity);
      }
    }
  }

  /// The start of a streaming unit of `rows` queries from i0 of head h: its scaled queries, a zero output, running
  /// maxima -inf, sums 0, no NaN, statistics reset.
  void start_unit(stream_workspace& ws, Index h, Index i0, Index rows, const Scalar* q, Index q_stride,
                  const attention_statistics<Scalar>* stats) const noexcept {
    using map = Eigen::Map<matrix<Scalar>, Eigen::Unaligned, Eigen::OuterStride<>>;
    using const_view = const_matrix_view<Scalar>;
    map qs(ws.q.data(), rows, head_dim_, Eigen::OuterStride<>(head_dim_));
    qs = Scalar(config_.logit_scale()) *
         const_view(q + i0 * q_stride + h * head_dim_, rows, head_dim_, Eigen::OuterStride<>(q_stride));
    map(ws.o.data(), rows, head_dim_, Eigen::OuterStride<>(head_dim_)).setZero();
    std::fill(ws.max.begin(), ws.max.begin() + rows, -std::numeric_limits<Scalar>::infinity());
    std::fill(ws.sum.begin(), ws.sum.begin() + rows, Scalar(0));
    std::fill(ws.nan.begin(), ws.nan.begin() + rows, char(0));
    if (stats != nullptr) {
      std::fill(ws.stats.begin(), ws.stats.begin() + rows, detail::row_statistics_state<Scalar>{0, 0, 0, -1});
      ws.offsets.topRows(rows).setZero();
    }
  }

  /// The streaming path for one (head, query tile) unit: rows i0.. of head h, walking the visible keys in tiles
  /// with the online softmax; writes the unit's rows of z (and its statistics). Runs on any thread; touches only
  /// its workspace, its rows of z and of the statistics, and its row of `partials`.
  void stream_unit(stream_workspace& ws, Index b, Index h, Index i0, const Scalar* q, Index q_stride, const Scalar* k,
                   const Scalar* v, Index kv_stride, Index t_q, Index t_k, Index past,
                   const forward_options<Scalar>& options, Scalar* z, Scalar* partials,
                   const Scalar* kt, Scalar* lse) const noexcept {
    using map = Eigen::Map<matrix<Scalar>, Eigen::Unaligned, Eigen::OuterStride<>>;
    using const_view = const_matrix_view<Scalar>;
    const Index g = h / config_.group_size();
    const Index rows = std::min(unit_rows(t_q), t_q - i0);
    attention_statistics<Scalar>* stats = options.statistics;
    start_unit(ws, h, i0, rows, q, q_stride, stats);
    map o(ws.o.data(), rows, head_dim_, Eigen::OuterStride<>(head_dim_));
    const_view k_g(k + g * head_dim_, t_k, head_dim_, Eigen::OuterStride<>(kv_stride));
    const_view v_g(v + g * head_dim_, t_k, head_dim_, Eigen::OuterStride<>(kv_stride));
    // A causal query at position past + i sees keys 0..past+i: key tiles past the last row's are never read.
    const Index visible_end = config_.causal ? std::min(t_k, past + i0 + rows) : t_k;
    // Keys per P V product: Eigen packs each operand of a product on the stack only up to
    // EIGEN_STACK_ALLOCATION_LIMIT bytes and on the heap beyond, so a [rows x stream_key_tile] logits tile is
    // multiplied in depth chunks of at most that size (the whole tile at 64 rows of float).
    const bool fast = kt != nullptr;
    const Index kt_stride = transposed_key_stride(t_k);
    const Scalar* kt_g = fast ? kt + g * head_dim_ * kt_stride : nullptr;
    const Index pv_depth = std::max<Index>(
        8, Index(EIGEN_STACK_ALLOCATION_LIMIT / sizeof(Scalar)) / std::max(rows, head_dim_) / 8 * 8);

    // With a sliding window, the key tiles before the first row's window are masked for every row of the unit:
    // skipping them leaves the running sums as they were (a fully masked tile adds nothing).
    const Index first_visible =
        config_.sliding_window > 0 ? std::max<Index>(0, past + i0 - config_.sliding_window + 1) : 0;
    for (Index j0 = first_visible / stream_key_tile * stream_key_tile; j0 < visible_end; j0 += stream_key_tile) {
      const Index cols = std::min(stream_key_tile, visible_end - j0);
      tile_logits(ws, b, i0, rows, j0, cols, kt_g, kt_stride, k_g, past, options);
      for (Index r = 0; r < rows; ++r) {
        Scalar* row = ws.s.data() + r * stream_key_tile;
        bool nan = ws.nan[std::size_t(r)] != 0;
        const Scalar alpha =
            stats == nullptr
                ? detail::online_softmax_tile(row, cols, ws.max[std::size_t(r)], ws.sum[std::size_t(r)], nan)
                : statistics_tile(ws, r, row, cols, b, past + i0 + r, j0, t_k, nan, *stats);
        ws.nan[std::size_t(r)] = char(nan);
        if (alpha != Scalar(1)) o.row(r) *= alpha;
      }
      tile_pv(ws, ws.o.data(), rows, j0, cols, v, kv_stride, g, fast, v_g, pv_depth);
    }
    finish_unit(ws, b, h, i0, rows, z, partials, lse, stats);
  }

  /// The streaming path of a sparse call (options.sparsity, kernels/attention_sparsity.hpp) for one unit, in two
  /// passes over the visible key tiles. Pass 1 finds each row's maximum logit, its sum of exponentials (for a
  /// threshold or the report), its top-k selection, and each tile's row maxima in ws.tile_max (and, for the
  /// report, the dense output). Pass 2 skips every tile in which no row has a logit at or above its cut (no weight
  /// in it is kept: the logits are recomputed bit for bit), recomputes the others, sets dropped logits to -inf and
  /// runs the softmax from the row maximum found in pass 1, so the output is the renormalised kept weights times
  /// the values. `records` (report only): the unit's rows of the head's records; `tiles`: its counters of key
  /// tiles visited and skipped by pass 2.
  HEADLENS_NOINLINE void stream_unit_sparse(stream_workspace& ws, Index b, Index h, Index i0, const Scalar* q,
                                            Index q_stride, const Scalar* k, const Scalar* v, Index kv_stride,
                                            Index t_q, Index t_k, Index past, const forward_options<Scalar>& options,
                                            Scalar* z, Scalar* partials, const Scalar* kt, sparse_row* records,
                                            std::uint64_t* tiles) const noexcept {
    using map = Eigen::Map<matrix<Scalar>, Eigen::Unaligned, Eigen::OuterStride<>>;
    using const_view = const_matrix_view<Scalar>;
    constexpr Scalar minus_infinity = -std::numeric_limits<Scalar>::infinity();
    const Index g = h / config_.group_size();
    const Index rows = std::min(unit_rows(t_q), t_q - i0);
    attention_statistics<Scalar>* stats = options.statistics;
    const attention_sparsity& sparsity = options.sparsity;
    const bool report = records != nullptr;
    const bool threshold = sparsity.mode == sparsity_mode::threshold;
    const bool top_k = sparsity.mode == sparsity_mode::top_k && sparsity.k < t_k;  // else every visible key
    const Index top = top_k ? sparsity.k : 0;
    const auto selection = [&](Index r) {
      return detail::top_k_selection<Scalar>{ws.top_keys.data() + r * 2 * top, ws.top_scratch.data(),
                                             ws.top_size[std::size_t(r)], ws.top_floor[std::size_t(r)], top};
    };
    start_unit(ws, h, i0, rows, q, q_stride, stats);
    map od(ws.o_dense.data(), report ? rows : 0, head_dim_, Eigen::OuterStride<>(head_dim_));
    od.setZero();
    if (top_k) {
      std::fill(ws.top_size.begin(), ws.top_size.begin() + rows, Index(0));
      std::fill(ws.top_floor.begin(), ws.top_floor.begin() + rows, minus_infinity);
    }
    if (report) {
      std::fill(ws.visible.begin(), ws.visible.begin() + rows, Index(0));
      std::fill(ws.kept.begin(), ws.kept.begin() + rows, Index(0));
    }
    const_view k_g(k + g * head_dim_, t_k, head_dim_, Eigen::OuterStride<>(kv_stride));
    const_view v_g(v + g * head_dim_, t_k, head_dim_, Eigen::OuterStride<>(kv_stride));
    const Index visible_end = config_.causal ? std::min(t_k, past + i0 + rows) : t_k;  // as in `stream_unit`
    const bool fast = kt != nullptr;
    const Index kt_stride = transposed_key_stride(t_k);
    const Scalar* kt_g = fast ? kt + g * head_dim_ * kt_stride : nullptr;
    const Index pv_depth = std::max<Index>(
        8, Index(EIGEN_STACK_ALLOCATION_LIMIT / sizeof(Scalar)) / std::max(rows, head_dim_) / 8 * 8);
    const Index first_visible =
        config_.sliding_window > 0 ? std::max<Index>(0, past + i0 - config_.sliding_window + 1) : 0;
    const Index first_j0 = first_visible / stream_key_tile * stream_key_tile;

    // Pass 1: maxima, sums, selections, tile maxima (the dense output for the report).
    for (Index j0 = first_j0; j0 < visible_end; j0 += stream_key_tile) {
      const Index cols = std::min(stream_key_tile, visible_end - j0), tile = j0 / stream_key_tile;
      tile_logits(ws, b, i0, rows, j0, cols, kt_g, kt_stride, k_g, past, options);
      for (Index r = 0; r < rows; ++r) {
        const std::size_t ri = std::size_t(r);
        Scalar* row = ws.s.data() + r * stream_key_tile;
        bool nan = ws.nan[ri] != 0;
        const Scalar tile_max = detail::row_max(row, cols, nan);
        ws.tile_max(r, tile) = tile_max;
        Scalar& running_max = ws.max[ri];
        if (stats != nullptr && tile_max > running_max) {
          ws.stats[ri].argmax = j0 + Index(std::find(row, row + cols, tile_max) - row);
        }
        if (report) {
          for (Index c = 0; c < cols; ++c) ws.visible[ri] += row[c] > minus_infinity;
        }
        if (top_k && tile_max > ws.top_floor[ri]) selection(r).offer_row(row, cols, j0);
        if (threshold || report) {  // the online softmax's sum (row overwritten by its exponentials)
          const Scalar new_max = std::max(running_max, tile_max);
          const Scalar shift = new_max == minus_infinity ? Scalar(0) : new_max;
          const Scalar alpha = running_max == new_max ? Scalar(1) : std::exp(running_max - shift);
          ws.sum[ri] = ws.sum[ri] * alpha + detail::exp_shifted_sum(row, cols, shift);
          running_max = new_max;
          if (report && alpha != Scalar(1)) od.row(r) *= alpha;
        } else {
          running_max = std::max(running_max, tile_max);
        }
        ws.nan[ri] = char(nan);
      }
      if (report) tile_pv(ws, ws.o_dense.data(), rows, j0, cols, v, kv_stride, g, fast, v_g, pv_depth);
    }

    // Each row's cut; pass 2 starts from sum 0 and the output zero, with the maximum known.
    const Scalar log_tau = detail::log_tau<Scalar>(sparsity);
    for (Index r = 0; r < rows; ++r) {
      const std::size_t ri = std::size_t(r);
      if (ws.max[ri] == std::numeric_limits<Scalar>::infinity()) ws.nan[ri] = 1;  // as the dense softmax: NaN
      ws.dense_sum[ri] = ws.sum[ri];
      ws.cut[ri] = top_k       ? selection(r).cutoff()
                   : threshold ? detail::threshold_cutoff(ws.max[ri], ws.sum[ri], log_tau)
                               : detail::row_cutoff<Scalar>{};
      ws.sum[ri] = 0;
    }

    // Pass 2: the kept weights of the tiles that hold any.
    for (Index j0 = first_j0; j0 < visible_end; j0 += stream_key_tile) {
      const Index cols = std::min(stream_key_tile, visible_end - j0), tile = j0 / stream_key_tile;
      bool needed = false;
      for (Index r = 0; r < rows && !needed; ++r) {
        const Scalar m = ws.tile_max(r, tile);
        needed = m > minus_infinity && m >= ws.cut[std::size_t(r)].value;
      }
      if (tiles != nullptr) {
        ++tiles[0];
        tiles[1] += !needed;
      }
      if (!needed) continue;
      tile_logits(ws, b, i0, rows, j0, cols, kt_g, kt_stride, k_g, past, options);
      for (Index r = 0; r < rows; ++r) {
        const std::size_t ri = std::size_t(r);
        Scalar* row = ws.s.data() + r * stream_key_tile;
        const Index kept = detail::apply_cutoff(row, cols, j0, ws.cut[ri]);
        if (report) ws.kept[ri] += kept;
        bool nan = ws.nan[ri] != 0;
        if (stats == nullptr) {
          const Scalar shift = ws.max[ri] == minus_infinity ? Scalar(0) : ws.max[ri];
          ws.sum[ri] += detail::exp_shifted_sum(row, cols, shift);
        } else {
          statistics_tile(ws, r, row, cols, b, past + i0 + r, j0, t_k, nan, *stats);  // rescales by 1: max known
        }
        ws.nan[ri] = char(nan);
      }
      tile_pv(ws, ws.o.data(), rows, j0, cols, v, kv_stride, g, fast, v_g, pv_depth);
    }
    finish_unit(ws, b, h, i0, rows, z, partials, nullptr, stats);

    if (!report) return;
    for (Index r = 0; r < rows; ++r) {
      const std::size_t ri = std::size_t(r);
      sparse_row& record = records[r];
      record = sparse_row{};
      const Scalar dense_sum = ws.dense_sum[ri];
      if (ws.nan[ri] != 0 || !(dense_sum > Scalar(0))) continue;  // NaN or fully masked: not measured
      record.measured = true;
      record.visible = ws.visible[ri];
      record.kept = ws.kept[ri];
      record.mass = double(ws.sum[ri]) / double(dense_sum);  // both relative to the row maximum
      const Scalar* z_row = z + (i0 + r) * q_width_ + h * head_dim_;
      const Scalar inverse = Scalar(1) / dense_sum;
      for (Index c = 0; c < head_dim_; ++c) {
        const double dense = double(od(r, c) * inverse);
        record.error += (double(z_row[c]) - dense) * (double(z_row[c]) - dense);
        record.dense += dense * dense;
      }
    }
  }

  /// out += (the exponentials in ws.s) times the values of keys j0..j0+cols-1 of kv head g, for a streaming unit's
  /// rows: `tile_product` when `fast`, else Eigen's product in depth chunks of `pv_depth` keys, which keep its
  /// packed copy of the logits on the stack (see `stream_unit`).
  void tile_pv(stream_workspace& ws, Scalar* out, Index rows, Index j0, Index cols, const Scalar* v, Index kv_stride,
               Index g, bool fast, const const_matrix_view<Scalar>& v_g, Index pv_depth) const noexcept {
    using map = Eigen::Map<matrix<Scalar>, Eigen::Unaligned, Eigen::OuterStride<>>;
    if (fast) {
      detail::tile_product<true>(ws.s.data(), stream_key_tile, v + j0 * kv_stride + g * head_dim_, kv_stride, out,
                                 head_dim_, rows, head_dim_, cols);
      return;
    }
    map s(ws.s.data(), rows, cols, Eigen::OuterStride<>(stream_key_tile));
    map o(out, rows, head_dim_, Eigen::OuterStride<>(head_dim_));
    for (Index c0 = 0; c0 < cols; c0 += pv_depth) {
      const Index depth = std::min(pv_depth, cols - c0);
      o.noalias() += s.middleCols(c0, depth) * v_g.middleRows(j0 + c0, depth);
    }
  }

  /// The end of a streaming unit: its rows of z from the running output and sum in ws (zero for a row whose sum
  /// is 0, NaN for a NaN row), their log-sum-exp into `lse` when given, their statistics.
  void finish_unit(const stream_workspace& ws, Index b, Index h, Index i0, Index rows, Scalar* z, Scalar* partials,
                   Scalar* lse, attention_statistics<Scalar>* stats) const noexcept {
    using const_map = Eigen::Map<const matrix<Scalar>, Eigen::Unaligned, Eigen::OuterStride<>>;
    const const_map o(ws.o.data(), rows, head_dim_, Eigen::OuterStride<>(head_dim_));
    const Index max_offset = stats != nullptr ? stats->max_offset() : 0, bins = 2 * max_offset + 1;
    Scalar* partial_offsets = partials;
    if (partial_offsets != nullptr) std::fill(partial_offsets, partial_offsets + bins + 1, Scalar(0));
    for (Index r = 0; r < rows; ++r) {
      Scalar* z_row = z + (i0 + r) * q_width_ + h * head_dim_;
      const Scalar sum = ws.sum[std::size_t(r)];
      const bool nan = ws.nan[std::size_t(r)] != 0;
      if (nan) {
        std::fill(z_row, z_row + head_dim_, std::numeric_limits<Scalar>::quiet_NaN());
      } else if (sum == Scalar(0)) {
        std::fill(z_row, z_row + head_dim_, Scalar(0));  // fully masked row
      } else {
        const Scalar inverse = Scalar(1) / sum;
        for (Index c = 0; c < head_dim_; ++c) z_row[c] = o(r, c) * inverse;
      }
      if (lse != nullptr) {
        lse[i0 + r] = nan || std::isnan(sum) ? std::numeric_limits<Scalar>::quiet_NaN()
                      : sum == Scalar(0)      ? -std::numeric_limits<Scalar>::infinity()
                                              : ws.max[std::size_t(r)] + std::log(sum);
      }
      if (stats != nullptr) {
        head_statistics<Scalar>& hs = stats->mutable_head(b, h);
        const detail::row_statistics_state<Scalar>& st = ws.stats[std::size_t(r)];
        const std::size_t i = std::size_t(i0 + r);
        if (nan || std::isnan(sum)) {
          const Scalar quiet_nan = std::numeric_limits<Scalar>::quiet_NaN();
          hs.max_weight[i] = hs.entropy[i] = hs.same_segment[i] = hs.marked_mass[i] = quiet_nan;
          hs.argmax[i] = -1;
        } else if (sum > Scalar(0)) {
          const Scalar inverse = Scalar(1) / sum;
          hs.max_weight[i] = inverse;  // the largest exponential is exp(0) = 1
          hs.argmax[i] = st.argmax;
          hs.entropy[i] = std::log(sum) - st.entropy_acc * inverse;
          hs.same_segment[i] = st.segment_acc * inverse;
          hs.marked_mass[i] = st.marked_acc * inverse;
          Scalar window = 0;
          for (Index o_bin = 0; o_bin < bins; ++o_bin) {
            const Scalar mass = ws.offsets(r, o_bin) * inverse;
            partial_offsets[o_bin] += mass;
            window += mass;
          }
          partial_offsets[bins] += std::max(Scalar(0), Scalar(1) - window);
        }
      }
    }
  }

  /// `online_softmax_tile` for one row, with the statistics accumulated on the way (see streaming_statistics.hpp):
  /// argmax, the entropy's centred sum, and the unnormalised segment, marked and offset masses, each rescaled
  /// with the output when the row maximum moves.
  Scalar statistics_tile(stream_workspace& ws, Index r, Scalar* row, Index cols, Index b, Index query_position,
                         Index j0, Index t_k, bool& nan, const attention_statistics<Scalar>& stats) const noexcept {
    Scalar& running_max = ws.max[std::size_t(r)];
    Scalar& running_sum = ws.sum[std::size_t(r)];
    detail::row_statistics_state<Scalar>& st = ws.stats[std::size_t(r)];
    const Scalar old_max = running_max, old_sum = running_sum;
    const Scalar tile_max = detail::row_max(row, cols, nan);
    if (tile_max > old_max) st.argmax = j0 + Index(std::find(row, row + cols, tile_max) - row);
    const Scalar new_max = std::max(old_max, tile_max);
    const Scalar shift = new_max == -std::numeric_limits<Scalar>::infinity() ? Scalar(0) : new_max;
    const Scalar alpha = old_max == new_max ? Scalar(1) : std::exp(old_max - shift);
    // Re-centre the entropy sum on the new shift: sum e'(s - new) = alpha (sum e (s - old) + (old - new) sum e).
    st.entropy_acc = old_sum > Scalar(0) ? alpha * (st.entropy_acc + (old_max - shift) * old_sum) : Scalar(0);
    const Scalar tile_sum = detail::exp_shifted_sum_centred(row, cols, shift, st.entropy_acc);
    running_sum = old_sum * alpha + tile_sum;
    running_max = new_max;

    st.segment_acc *= alpha;
    if (!stats.segment_ids.empty() && query_position < t_k) {
      const Index own = stats.segment_of(b, query_position);
      for (Index c = 0; c < cols; ++c) {
        if (stats.segment_of(b, j0 + c) == own) st.segment_acc += row[c];
      }
    }
    st.marked_acc *= alpha;
    if (!stats.marked.empty()) {
      for (Index c = 0; c < cols; ++c) {
        if (stats.is_marked(b, j0 + c)) st.marked_acc += row[c];
      }
    }
    const Index max_offset = stats.max_offset();
    if (alpha != Scalar(1)) ws.offsets.row(r) *= alpha;
    const Index first = std::max(j0, query_position - max_offset);
    const Index last = std::min(j0 + cols - 1, query_position + max_offset);
    for (Index j = first; j <= last; ++j) ws.offsets(r, j - query_position + max_offset) += row[j - j0];
    return alpha;
  }

  /// out = z W_o + b_o for every sequence, split per head where a hook wants `head_out`; fires `out`.
  template <class Hooks>
  matrix<Scalar> project_out(Hooks& hooks, const plain_map& z, Index batch, Index t_q, Index past,
                             int threads) const {
    const Index d = config_.d_model;
    matrix<Scalar> out(z.rows(), d);
    bool split = false;
    if constexpr (detail::may_want<Hooks, hook_point::head_out>()) {
      for (Index b = 0; b < batch && !split; ++b) {
        for (Index h = 0; h < config_.n_heads && !split; ++h) {
          split = detail::wanted<hook_point::head_out>(
              hooks, context(b, int(h), int(h / config_.group_size()), past, past + t_q));
        }
      }
    }
    if (!split) {
      detail::projection_product<Scalar>(out, z, w_o_, threads);
    } else {
      matrix<Scalar> head_out(t_q, d);
      for (Index b = 0; b < batch; ++b) {
        auto out_b = out.middleRows(b * t_q, t_q);
        out_b.setZero();
        for (Index h = 0; h < config_.n_heads; ++h) {
          detail::projection_product<Scalar>(head_out, z.block(b * t_q, h * head_dim_, t_q, head_dim_),
                                             w_o_.middleRows(h * head_dim_, head_dim_), threads);
          detail::fire<hook_point::head_out>(hooks, context(b, int(h), int(h / config_.group_size()), past, past + t_q),
                                             head_out.data(), t_q, d, d);
          out_b += head_out;
        }
      }
    }
    if (config_.bias) out.rowwise() += b_o_;
    if constexpr (detail::may_want<Hooks, hook_point::out>()) {
      for (Index b = 0; b < batch; ++b) {
        detail::fire<hook_point::out>(hooks, context(b, -1, -1, past, past + t_q), out.data() + b * t_q * d, t_q, d, d);
      }
    }
    return out;
  }

  attention_config config_;
  int layer_ = 0;
  Index head_dim_ = 0, q_width_ = 0, kv_width_ = 0;
  matrix<Scalar> w_qkv_;  ///< [d_model x (n_heads + 2 n_kv_heads) head_dim]: q, k, v side by side
  matrix<Scalar> w_o_;    ///< [n_heads head_dim x d_model]
  row_vector b_qkv_, b_o_;
  vector<Scalar> q_norm_, k_norm_;  ///< [head_dim] each with `config.qk_norm`

  /// RMSNorm over each of `heads` heads of `rows` rows in place (sum of squares in double, as models/transformer's
  /// `normalization`).
  static void normalize_heads(Scalar* data, Index rows, Index stride, Index heads, Index head_dim,
                              const vector<Scalar>& weight, double eps) noexcept {
    for (Index r = 0; r < rows; ++r) {
      for (Index h = 0; h < heads; ++h) {
        Scalar* x = data + r * stride + h * head_dim;
        double ms = 0;
        for (Index j = 0; j < head_dim; ++j) ms += double(x[j]) * double(x[j]);
        const double scale = 1.0 / std::sqrt(ms / double(head_dim) + eps);
        for (Index j = 0; j < head_dim; ++j) x[j] = Scalar(double(x[j]) * scale) * weight(j);
      }
    }
  }
};

}  // namespace headlens
