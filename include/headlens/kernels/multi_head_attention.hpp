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
/// Non-finite input: NaN or infinity in x, the memory or the weights propagates to NaN in every output it reaches
/// (a softmax row that meets a NaN is all NaN); nothing is dropped silently. Set
/// `forward_options::check_finite` to get a `numeric_error` naming the first bad position instead.

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/kernels/attention_config.hpp"
#include "headlens/kernels/rotary.hpp"
#include "headlens/kernels/softmax.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// Per-call inputs besides the activations. Empty members mean "none".
template <class Scalar>
struct forward_options {
  /// The rows of x hold `batch` sequences of equal (padded) length T_q, one after another; likewise the memory
  /// of cross-attention holds `batch` sequences of length T_k.
  index batch = 1;
  /// [batch x T_k], true where a key is padding and must not be attended to (PyTorch's key_padding_mask).
  bool_matrix key_padding;
  /// [T_q x T_k], added to the scaled scores of every head and sequence; -inf blocks a key.
  matrix<Scalar> attn_mask;
  /// Rotary positions of the T_q queries (and, in self-attention, of the keys); default 0..T_q-1, or continuing
  /// from the cache in `forward_step`. Same for every sequence of the batch.
  std::vector<index> positions;
  /// [n_heads], false skips a head: no scores, pattern or z are computed for it and its z is zero, which gives
  /// the same output as zero-ablating its `head_out`, faster. Hooks after `q` do not fire for a skipped head.
  std::vector<bool> head_mask;
  /// Throw `numeric_error` naming the first NaN or infinity in x (and the memory) instead of propagating it.
  bool check_finite = false;
};

/// Keys and values of earlier tokens, for incremental decoding with `multi_head_attention::forward_step`. Holds
/// post-rotary keys, so later steps never rotate them again. One cache serves one layer.
template <class Scalar>
class kv_cache {
 public:
  /// Tokens cached per sequence.
  index length() const noexcept { return length_; }
  /// Sequences in the batch (0 before the first step).
  index batch() const noexcept { return static_cast<index>(keys_.size()); }
  /// Cached keys of sequence b: [length() x n_kv_heads*head_dim].
  Eigen::Block<const matrix<Scalar>> keys(index b) const { return keys_.at(std::size_t(b)).topRows(length_); }
  /// Cached values of sequence b: [length() x n_kv_heads*head_dim].
  Eigen::Block<const matrix<Scalar>> values(index b) const { return values_.at(std::size_t(b)).topRows(length_); }
  /// Bytes held (capacity included).
  std::size_t bytes() const noexcept {
    std::size_t total = 0;
    for (const auto& m : keys_) total += std::size_t(m.size()) * sizeof(Scalar) * 2;
    return total;
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
  index length_ = 0;
};

/// One multi-head attention layer: MHA, GQA or MQA; self or cross; causal or not; optional rotary positions.
/// Thread safety: `forward*` are const and allocate their own workspaces, so one module may serve several
/// threads at once (a `kv_cache` may not be shared).
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
    if (config_.bias) {
      b_qkv_.resize(q_width_ + 2 * kv_width_);
      b_qkv_ << weights.b_q.transpose(), weights.b_k.transpose(), weights.b_v.transpose();
      b_o_ = weights.b_o.transpose();
    }
  }

  const attention_config& config() const noexcept { return config_; }
  int layer() const noexcept { return layer_; }
  index head_dim() const noexcept { return head_dim_; }

  /// Self-attention. x is [batch*T x d_model]; returns [batch*T x d_model]. Throws `shape_error`,
  /// `argument_error` (and `numeric_error` under `check_finite`) before any work.
  template <class Hooks = no_hooks>
  matrix<Scalar> forward(const Eigen::Ref<const matrix<Scalar>>& x, const forward_options<Scalar>& options = {},
                         Hooks&& hooks = Hooks{}) const {
    const index batch = check_batch(x, "x", options);
    const index t = x.rows() / batch;
    check_options(options, t, t);
    if (options.check_finite) check_finite(x, "x");

    matrix<Scalar> qkv(x.rows(), q_width_ + 2 * kv_width_);
    qkv.noalias() = x * w_qkv_;
    if (config_.bias) qkv.rowwise() += b_qkv_;
    const index stride = qkv.cols();
    matrix<Scalar> z = matrix<Scalar>::Zero(x.rows(), q_width_);
    matrix<Scalar> scores;
    for (index b = 0; b < batch; ++b) {
      Scalar* row0 = qkv.data() + b * t * stride;
      rotate_and_fire(hooks, b, row0, stride, t, row0 + q_width_, row0 + q_width_ + kv_width_, stride, t, 0, options,
                      /*keys_at_query_positions=*/true);
      attend(hooks, b, row0, stride, row0 + q_width_, row0 + q_width_ + kv_width_, stride, t, t, 0, options,
             z.data() + b * t * q_width_, scores);
    }
    return project_out(hooks, z, batch, t, 0);
  }

  /// Cross-attention: queries from x [batch*T_q x d_model], keys and values from memory [batch*T_k x d_model].
  /// Rotary positions of the keys are 0..T_k-1. `config.causal` is not allowed here.
  template <class Hooks = no_hooks>
  matrix<Scalar> forward_cross(const Eigen::Ref<const matrix<Scalar>>& x, const Eigen::Ref<const matrix<Scalar>>& memory,
                               const forward_options<Scalar>& options = {}, Hooks&& hooks = Hooks{}) const {
    if (config_.causal) {
      detail::fail<argument_error>("config.causal is true, expected false for cross-attention (forward_cross)");
    }
    const index batch = check_batch(x, "x", options);
    check_batch(memory, "memory", options);
    const index t_q = x.rows() / batch, t_k = memory.rows() / batch;
    check_options(options, t_q, t_k);
    if (options.check_finite) {
      check_finite(x, "x");
      check_finite(memory, "memory");
    }

    matrix<Scalar> q(x.rows(), q_width_);
    q.noalias() = x * w_qkv_.leftCols(q_width_);
    matrix<Scalar> kv(memory.rows(), 2 * kv_width_);
    kv.noalias() = memory * w_qkv_.rightCols(2 * kv_width_);
    if (config_.bias) {
      q.rowwise() += b_qkv_.leftCols(q_width_);
      kv.rowwise() += b_qkv_.rightCols(2 * kv_width_);
    }
    matrix<Scalar> z = matrix<Scalar>::Zero(x.rows(), q_width_);
    matrix<Scalar> scores;
    for (index b = 0; b < batch; ++b) {
      Scalar* q0 = q.data() + b * t_q * q_width_;
      Scalar* k0 = kv.data() + b * t_k * 2 * kv_width_;
      rotate_and_fire(hooks, b, q0, q_width_, t_q, k0, k0 + kv_width_, 2 * kv_width_, t_k, 0, options,
                      /*keys_at_query_positions=*/false);
      attend(hooks, b, q0, q_width_, k0, k0 + kv_width_, 2 * kv_width_, t_q, t_k, 0, options,
             z.data() + b * t_q * q_width_, scores);
    }
    return project_out(hooks, z, batch, t_q, 0);
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
    const index batch = check_batch(x, "x", options);
    if (cache.batch() != 0 && cache.batch() != batch) {
      detail::fail<shape_error>("options.batch is ", batch, ", expected the cache's batch = ", cache.batch());
    }
    const index n = x.rows() / batch, past = cache.length_, t_k = past + n;
    check_options(options, n, t_k);
    if (options.check_finite) check_finite(x, "x");

    matrix<Scalar> qkv(x.rows(), q_width_ + 2 * kv_width_);
    qkv.noalias() = x * w_qkv_;
    if (config_.bias) qkv.rowwise() += b_qkv_;
    const index stride = qkv.cols();
    reserve_cache(cache, batch, t_k);
    matrix<Scalar> z = matrix<Scalar>::Zero(x.rows(), q_width_);
    matrix<Scalar> scores;
    for (index b = 0; b < batch; ++b) {
      Scalar* row0 = qkv.data() + b * n * stride;
      rotate_and_fire(hooks, b, row0, stride, n, row0 + q_width_, row0 + q_width_ + kv_width_, stride, n, past,
                      options, /*keys_at_query_positions=*/true);
      matrix<Scalar>& keys = cache.keys_[std::size_t(b)];
      matrix<Scalar>& values = cache.values_[std::size_t(b)];
      keys.middleRows(past, n) = qkv.block(b * n, q_width_, n, kv_width_);
      values.middleRows(past, n) = qkv.block(b * n, q_width_ + kv_width_, n, kv_width_);
      attend(hooks, b, row0, stride, keys.data(), values.data(), kv_width_, n, t_k, past, options,
             z.data() + b * n * q_width_, scores);
    }
    cache.length_ = t_k;
    return project_out(hooks, z, batch, n, past);
  }

 private:
  using row_vector = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

  hook_context context(index b, int head, int kv_head, index begin, index end) const {
    hook_context ctx;
    ctx.layer = layer_;
    ctx.head = head;
    ctx.kv_head = kv_head;
    ctx.batch_row = b;
    ctx.token_begin = begin;
    ctx.token_end = end;
    return ctx;
  }

  index check_batch(const Eigen::Ref<const matrix<Scalar>>& x, const char* name,
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

  void check_options(const forward_options<Scalar>& options, index t_q, index t_k) const {
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
      if (index(options.positions.size()) != t_q) {
        detail::fail<shape_error>("options.positions has ", options.positions.size(), " entries, expected T_q = ", t_q);
      }
      for (std::size_t i = 0; i < options.positions.size(); ++i) {
        if (options.positions[i] < 0) {
          detail::fail<argument_error>("options.positions[", i, "] is ", options.positions[i],
                                       ", expected a position >= 0");
        }
      }
    }
    if (!options.head_mask.empty() && index(options.head_mask.size()) != config_.n_heads) {
      detail::fail<shape_error>("options.head_mask has ", options.head_mask.size(), " entries, expected n_heads = ",
                                config_.n_heads);
    }
  }

  static void check_finite(const Eigen::Ref<const matrix<Scalar>>& x, const char* name) {
    for (index i = 0; i < x.rows(); ++i) {
      for (index j = 0; j < x.cols(); ++j) {
        const Scalar value = x(i, j);
        if (!std::isfinite(value)) {
          detail::fail<numeric_error>(name, " has a non-finite value (", value, ") at row ", i, ", column ", j,
                                      ", expected finite input (options.check_finite)");
        }
      }
    }
  }

  void reserve_cache(kv_cache<Scalar>& cache, index batch, index needed) const {
    if (cache.keys_.empty()) {
      cache.keys_.resize(std::size_t(batch));
      cache.values_.resize(std::size_t(batch));
    }
    for (std::size_t b = 0; b < cache.keys_.size(); ++b) {
      if (cache.keys_[b].rows() >= needed) continue;
      // Grow geometrically so that decoding token by token copies each cached row O(1) times on average.
      const index capacity = std::max(needed, 2 * cache.keys_[b].rows());
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
  void rotate_and_fire(Hooks& hooks, index b, Scalar* q, index q_stride, index t_q, Scalar* k, Scalar* v,
                       index kv_stride, index t_k, index past, const forward_options<Scalar>& options,
                       bool keys_at_query_positions) const {
    const auto query_position = [&](index r) {
      return options.positions.empty() ? past + r : options.positions[std::size_t(r)];
    };
    if (config_.rotary) {
      detail::apply_rotary(q, t_q, q_stride, config_.n_heads, head_dim_, config_.rotary_size(), config_.rotary_base,
                           query_position);
      const auto key_position = [&](index r) { return keys_at_query_positions ? query_position(r) : r; };
      detail::apply_rotary(k, t_k, kv_stride, config_.kv_heads(), head_dim_, config_.rotary_size(),
                           config_.rotary_base, key_position);
    }
    const index kv_begin = past, kv_end = past + t_k;
    for (index h = 0; h < config_.n_heads; ++h) {
      detail::fire<hook_point::q>(hooks, context(b, int(h), int(h / config_.group_size()), past, past + t_q),
                                  q + h * head_dim_, t_q, head_dim_, q_stride);
    }
    for (index g = 0; g < config_.kv_heads(); ++g) {
      detail::fire<hook_point::k>(hooks, context(b, int(g), int(g), kv_begin, kv_end), k + g * head_dim_, t_k,
                                  head_dim_, kv_stride);
      detail::fire<hook_point::v>(hooks, context(b, int(g), int(g), kv_begin, kv_end), v + g * head_dim_, t_k,
                                  head_dim_, kv_stride);
    }
  }

  /// Scores, pattern and z of every head of one sequence. Query i (position past + i) sees keys 0..past+i when
  /// causal. Writes z [t_q x q_width] at `z` (row stride q_width).
  template <class Hooks>
  void attend(Hooks& hooks, index b, const Scalar* q, index q_stride, const Scalar* k, const Scalar* v,
              index kv_stride, index t_q, index t_k, index past, const forward_options<Scalar>& options, Scalar* z,
              matrix<Scalar>& scores) const {
    using const_view = const_matrix_view<Scalar>;
    using view = matrix_view<Scalar>;
    scores.resize(t_q, t_k);
    const Scalar scale = Scalar(config_.logit_scale());
    const Scalar minus_infinity = -std::numeric_limits<Scalar>::infinity();
    const bool has_padding = options.key_padding.size() != 0;
    for (index h = 0; h < config_.n_heads; ++h) {
      if (!options.head_mask.empty() && !options.head_mask[std::size_t(h)]) continue;
      const index g = h / config_.group_size();
      const hook_context ctx = context(b, int(h), int(g), past, past + t_q);
      const_view q_h(q + h * head_dim_, t_q, head_dim_, Eigen::OuterStride<>(q_stride));
      const_view k_g(k + g * head_dim_, t_k, head_dim_, Eigen::OuterStride<>(kv_stride));
      const_view v_g(v + g * head_dim_, t_k, head_dim_, Eigen::OuterStride<>(kv_stride));

      // Scale q rather than the product: Eigen folds a scalar on an operand into the GEMM, not on the result.
      scores.noalias() = (scale * q_h) * k_g.transpose();
      if (options.attn_mask.size() != 0) scores += options.attn_mask;
      if (has_padding) {
        for (index j = 0; j < t_k; ++j) {
          if (options.key_padding(b, j)) scores.col(j).setConstant(minus_infinity);
        }
      }
      if (config_.causal) {
        for (index i = 0; i < t_q; ++i) {
          const index first_hidden = past + i + 1;
          if (first_hidden < t_k) scores.row(i).tail(t_k - first_hidden).setConstant(minus_infinity);
        }
      }
      detail::fire<hook_point::scores>(hooks, ctx, scores.data(), t_q, t_k, t_k);
      detail::softmax_rows(scores.data(), t_q, t_k, t_k);
      detail::fire<hook_point::pattern>(hooks, ctx, scores.data(), t_q, t_k, t_k);
      view z_h(z + h * head_dim_, t_q, head_dim_, Eigen::OuterStride<>(q_width_));
      z_h.noalias() = scores * v_g;
      detail::fire<hook_point::z>(hooks, ctx, z_h.data(), t_q, head_dim_, q_width_);
    }
  }

  /// out = z W_o + b_o for every sequence, split per head where a hook wants `head_out`; fires `out`.
  template <class Hooks>
  matrix<Scalar> project_out(Hooks& hooks, const matrix<Scalar>& z, index batch, index t_q, index past) const {
    const index d = config_.d_model;
    matrix<Scalar> out(z.rows(), d);
    bool split = false;
    if constexpr (detail::may_want<Hooks, hook_point::head_out>()) {
      for (index b = 0; b < batch && !split; ++b) {
        for (index h = 0; h < config_.n_heads && !split; ++h) {
          split = detail::wanted<hook_point::head_out>(
              hooks, context(b, int(h), int(h / config_.group_size()), past, past + t_q));
        }
      }
    }
    if (!split) {
      out.noalias() = z * w_o_;
    } else {
      matrix<Scalar> head_out(t_q, d);
      for (index b = 0; b < batch; ++b) {
        auto out_b = out.middleRows(b * t_q, t_q);
        out_b.setZero();
        for (index h = 0; h < config_.n_heads; ++h) {
          head_out.noalias() = z.block(b * t_q, h * head_dim_, t_q, head_dim_) * w_o_.middleRows(h * head_dim_, head_dim_);
          detail::fire<hook_point::head_out>(hooks, context(b, int(h), int(h / config_.group_size()), past, past + t_q),
                                             head_out.data(), t_q, d, d);
          out_b += head_out;
        }
      }
    }
    if (config_.bias) out.rowwise() += b_o_;
    if constexpr (detail::may_want<Hooks, hook_point::out>()) {
      for (index b = 0; b < batch; ++b) {
        detail::fire<hook_point::out>(hooks, context(b, -1, -1, past, past + t_q), out.data() + b * t_q * d, t_q, d, d);
      }
    }
    return out;
  }

  attention_config config_;
  int layer_ = 0;
  index head_dim_ = 0, q_width_ = 0, kv_width_ = 0;
  matrix<Scalar> w_qkv_;  ///< [d_model x (n_heads + 2 n_kv_heads) head_dim]: q, k, v side by side
  matrix<Scalar> w_o_;    ///< [n_heads head_dim x d_model]
  row_vector b_qkv_, b_o_;
};

}  // namespace headlens
