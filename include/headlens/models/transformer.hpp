#pragma once
/// \file
/// The pieces decoder-only language models are built from, on top of `multi_head_attention`: LayerNorm, RMSNorm,
/// GELU (tanh and exact), SiLU, the GELU and SwiGLU MLPs, embedding lookup, a pre-norm block, and `transformer`,
/// a stack of blocks from token ids to logits with the caller's hooks passed to every attention layer.
///
/// Conventions as in the kernels: activations are row-major [tokens x features] and every weight multiplies from
/// the right (`y = x W + b`, W is [in x out], the transpose of PyTorch's `nn.Linear.weight`). Reductions inside
/// the norms are accumulated in double whatever the scalar type.
///
/// A block computes, by its `block_layout` (hooks fire inside attention, with `hook_context::layer` = block index):
///   pre_norm (GPT-2, Llama, ...):  h = x + post_1(attention(norm_1(x)));  y = h + post_2(mlp(norm_2(h)))
///                                  (post_1, post_2: Gemma 2's extra norms, absent elsewhere)
///   parallel (GPT-NeoX):           y = x + attention(norm_1(x)) + mlp(norm_2(x))
///   post_norm (BERT, RoBERTa):     h = norm_1(x + attention(x));      y = norm_2(h + mlp(h))
/// and the model: x_0 = embed(ids) * embedding_scale (+ learned positions), then an embedding norm (BERT), the
/// blocks, a final norm, a head transform (BERT's dense, activation, norm), then logits = x W_head + b, where W_head
/// is the transposed token embedding when the weights are tied, soft-capped when asked (Gemma 2). Every part
/// beyond the embedding, the blocks and the head is optional. `transformer::forward_step` decodes incrementally
/// over a `transformer_cache` (one `kv_cache` per layer).
///
/// Loaders for Hugging Face checkpoints are in models/families.hpp (every family), models/gpt2.hpp and
/// models/llama.hpp.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/kernels/activation.hpp"
#include "headlens/kernels/attention_config.hpp"
#include "headlens/kernels/multi_head_attention.hpp"
#include "headlens/kernels/parallel.hpp"
#include "headlens/kernels/scratch.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// Which normalisation a model uses.
enum class norm_kind {
  layer_norm,  ///< (x - mean) / sqrt(var + eps) * weight + bias (biased variance, as torch.nn.LayerNorm)
  rms_norm,    ///< x / sqrt(mean(x^2) + eps) * weight (Llama's RMSNorm); no bias
};

/// LayerNorm or RMSNorm over the feature axis of each row.
template <class Scalar>
struct normalization {
  norm_kind kind = norm_kind::layer_norm;
  vector<Scalar> weight;  ///< [d]
  vector<Scalar> bias;    ///< [d] for LayerNorm; empty means no bias (and must be empty for RMSNorm)
  double eps = 1e-5;

  /// A LayerNorm over `weight.size()` features.
  static normalization layer(vector<Scalar> weight, vector<Scalar> bias, double eps) {
    return normalization{norm_kind::layer_norm, std::move(weight), std::move(bias), eps};
  }
  /// An RMSNorm over `weight.size()` features.
  static normalization rms(vector<Scalar> weight, double eps) {
    return normalization{norm_kind::rms_norm, std::move(weight), vector<Scalar>(), eps};
  }

  /// Width the norm expects.
  Index size() const noexcept { return weight.size(); }

  /// Throws `shape_error` / `argument_error` naming `name` when the parameters do not fit together.
  void validate(const std::string& name) const {
    if (weight.size() == 0) detail::fail<shape_error>(name, ".weight is empty, expected [d] with d >= 1");
    if (bias.size() != 0 && bias.size() != weight.size()) {
      detail::fail<shape_error>(name, ".bias has ", bias.size(), " entries, expected ", weight.size(), " (the size of ",
                                name, ".weight) or none");
    }
    if (kind == norm_kind::rms_norm && bias.size() != 0) {
      detail::fail<argument_error>(name, " is an RMSNorm with a bias, expected no bias");
    }
    if (!(std::isfinite(eps) && eps >= 0)) detail::fail<argument_error>(name, ".eps is ", eps, ", expected >= 0");
  }

  /// The normalised rows of `x` [T x d], on up to `threads` threads (0: OpenMP's default; the result does not
  /// depend on it). Throws `shape_error` when x.cols() != d.
  matrix<Scalar> operator()(const Eigen::Ref<const matrix<Scalar>>& x, Index threads = 0) const {
    matrix<Scalar> out(x.rows(), x.cols());
    apply(x, out, threads);
    return out;
  }

  /// As `operator()`, into `out` [T x d] (which may be x itself).
  template <class Out>
  void apply(const Eigen::Ref<const matrix<Scalar>>& x, Out&& out, Index threads = 0) const {
    if (x.cols() != weight.size()) {
      detail::fail<shape_error>("x.cols() is ", x.cols(), ", expected the norm's width ", weight.size());
    }
    if (out.rows() != x.rows() || out.cols() != x.cols()) {
      detail::fail<shape_error>("out is [", out.rows(), " x ", out.cols(), "], expected [", x.rows(), " x ", x.cols(),
                                "] like x");
    }
    const Index rows_per_unit = 16;  // rows are independent: any cut gives the same bits
    const Index units = (x.rows() + rows_per_unit - 1) / rows_per_unit;
    detail::parallel_for(units, detail::thread_count(threads), [&](Index unit, int) {
      const Index r1 = std::min(x.rows(), (unit + 1) * rows_per_unit);
      for (Index r = unit * rows_per_unit; r < r1; ++r) normalize_row(x.row(r), out.row(r));
    });
  }

 private:
  template <class Row, class OutRow>
  void normalize_row(const Row& row, OutRow&& out) const noexcept {
    const Index d = row.size();
    double scale, shift = 0;
    if (kind == norm_kind::layer_norm) {
      double mean = 0;
      for (Index j = 0; j < d; ++j) mean += double(row(j));
      mean /= double(d);
      double var = 0;
      for (Index j = 0; j < d; ++j) {
        const double c = double(row(j)) - mean;
        var += c * c;
      }
      var /= double(d);
      scale = 1.0 / std::sqrt(var + eps);
      shift = mean;
    } else {
      double ms = 0;
      for (Index j = 0; j < d; ++j) ms += double(row(j)) * double(row(j));
      ms /= double(d);
      scale = 1.0 / std::sqrt(ms + eps);
    }
    for (Index j = 0; j < d; ++j) {
      Scalar v = Scalar((double(row(j)) - shift) * scale) * weight(j);
      if (bias.size() != 0) v += bias(j);
      out(j) = v;
    }
  }
};

/// A LayerNorm (weight, bias, eps), for models that need nothing else from this header.
template <class Scalar>
using layer_norm = normalization<Scalar>;

/// Which MLP a block uses.
enum class mlp_kind {
  plain,  ///< act(x W_in + b_in) W_out + b_out (GPT-2)
  gated,  ///< (act(x W_gate) * (x W_in)) W_out (Llama's SwiGLU with act = SiLU); biases optional
};

/// The feed-forward half of a block, in the `x W` convention.
template <class Scalar>
struct mlp {
  mlp_kind kind = mlp_kind::plain;
  activation_kind activation = activation_kind::gelu_tanh;
  matrix<Scalar> w_in;    ///< [d x d_ff] (GPT-2 c_fc, Llama up_proj)
  vector<Scalar> b_in;    ///< [d_ff] or empty
  matrix<Scalar> w_gate;  ///< [d x d_ff] for `gated` (Llama gate_proj); empty for `plain`
  vector<Scalar> b_gate;  ///< [d_ff] or empty
  matrix<Scalar> w_out;   ///< [d_ff x d] (GPT-2 c_proj, Llama down_proj)
  vector<Scalar> b_out;   ///< [d] or empty

  /// Throws `shape_error` naming `name` and the first parameter whose shape does not fit d_model `d`.
  void validate(const std::string& name, Index d) const {
    const Index ff = w_in.cols();
    auto check = [&](const char* what, Index rows, Index cols, Index want_rows, Index want_cols) {
      if (rows != want_rows || cols != want_cols) {
        detail::fail<shape_error>(name, ".", what, " is [", rows, " x ", cols, "], expected [", want_rows, " x ",
                                  want_cols, "]");
      }
    };
    auto check_bias = [&](const char* what, Index size, Index want) {
      if (size != 0 && size != want) {
        detail::fail<shape_error>(name, ".", what, " has ", size, " entries, expected ", want, " or none");
      }
    };
    if (ff == 0) detail::fail<shape_error>(name, ".w_in is [", w_in.rows(), " x 0], expected [d x d_ff], d_ff >= 1");
    check("w_in", w_in.rows(), w_in.cols(), d, ff);
    check("w_out", w_out.rows(), w_out.cols(), ff, d);
    if (kind == mlp_kind::gated) {
      check("w_gate", w_gate.rows(), w_gate.cols(), d, ff);
    } else if (w_gate.size() != 0) {
      detail::fail<shape_error>(name, ".w_gate is [", w_gate.rows(), " x ", w_gate.cols(),
                                "], expected none for a plain MLP");
    }
    check_bias("b_in", b_in.size(), ff);
    check_bias("b_gate", b_gate.size(), ff);
    check_bias("b_out", b_out.size(), d);
  }

  /// The MLP applied to the rows of `x` [T x d]; returns [T x d]. Runs on up to `threads` threads (0: OpenMP's
  /// default); the result does not depend on the count.
  matrix<Scalar> operator()(const Eigen::Ref<const matrix<Scalar>>& x, Index threads = 0) const {
    matrix<Scalar> out(x.rows(), w_out.cols());
    run(x, threads, [&](Index r0, Index c0, Index nr, Index nc, const Scalar* block, Index stride) {
      auto dst = out.block(r0, c0, nr, nc);
      dst = const_matrix_view<Scalar>(block, nr, nc, Eigen::OuterStride<>(stride));
      if (b_out.size() != 0) dst.rowwise() += b_out.segment(c0, nc).transpose();
    });
    return out;
  }

  /// residual += mlp(x), without a [T x d] temporary: the block's residual add. residual is [T x d].
  void add_to(const Eigen::Ref<const matrix<Scalar>>& x, Eigen::Ref<matrix<Scalar>> residual, Index threads = 0) const {
    if (residual.rows() != x.rows() || residual.cols() != w_out.cols()) {
      detail::fail<shape_error>("residual is [", residual.rows(), " x ", residual.cols(), "], expected [", x.rows(),
                                " x ", w_out.cols(), "]");
    }
    run(x, threads, [&](Index r0, Index c0, Index nr, Index nc, const Scalar* block, Index stride) {
      auto dst = residual.block(r0, c0, nr, nc);
      if (b_out.size() != 0) {
        dst += (const_matrix_view<Scalar>(block, nr, nc, Eigen::OuterStride<>(stride)).rowwise() +
                b_out.segment(c0, nc).transpose());
      } else {
        dst += const_matrix_view<Scalar>(block, nr, nc, Eigen::OuterStride<>(stride));
      }
    });
  }

 private:
  // The three products on the threaded projection kernel, the bias and activation applied to each block of the
  // hidden layer by the thread that computed it; `finish(r0, c0, nr, nc, block, stride)` gets each block of
  // hidden W_out (no b_out) the same way. Intermediates come from the thread's scratch pool.
  template <class Finish>
  void run(const Eigen::Ref<const matrix<Scalar>>& x, Index threads_requested, Finish&& finish) const {
    if (x.cols() != w_in.rows()) {
      detail::fail<shape_error>("x.cols() is ", x.cols(), ", expected the MLP's input width ", w_in.rows());
    }
    using lease = detail::scratch_lease<Scalar>;
    const Index t = x.rows(), ff = w_in.cols(), d = w_out.cols();
    const int threads = detail::thread_count(threads_requested);
    const bool gated = kind == mlp_kind::gated;
    lease scratch(lease::piece(t * ff) * (gated ? 2 : 1) + lease::piece(t * d));
    Eigen::Map<matrix<Scalar>> hidden(scratch.take(t * ff), t, ff);
    Eigen::Map<matrix<Scalar>> gate(gated ? scratch.take(t * ff) : nullptr, gated ? t : 0, gated ? ff : 0);
    Eigen::Map<matrix<Scalar>> out(scratch.take(t * d), t, d);
    auto add_bias = [](Scalar* rows, Index stride, Index nr, const vector<Scalar>& bias, Index c0, Index nc) {
      if (bias.size() == 0) return;
      matrix_view<Scalar>(rows, nr, nc, Eigen::OuterStride<>(stride)).rowwise() += bias.segment(c0, nc).transpose();
    };
    if (gated) {
      detail::projection_product<Scalar>(hidden, x, w_in, threads, [&](Index r0, Index c0, Index nr, Index nc) {
        add_bias(hidden.data() + r0 * ff + c0, ff, nr, b_in, c0, nc);
      });
      detail::projection_product<Scalar>(gate, x, w_gate, threads, [&](Index r0, Index c0, Index nr, Index nc) {
        add_bias(gate.data() + r0 * ff + c0, ff, nr, b_gate, c0, nc);
        for (Index r = r0; r < r0 + nr; ++r) {
          apply_gated_activation(activation, gate.data() + r * ff + c0, hidden.data() + r * ff + c0, nc);
        }
      });
    } else {
      detail::projection_product<Scalar>(hidden, x, w_in, threads, [&](Index r0, Index c0, Index nr, Index nc) {
        add_bias(hidden.data() + r0 * ff + c0, ff, nr, b_in, c0, nc);
        for (Index r = r0; r < r0 + nr; ++r) apply_activation(activation, hidden.data() + r * ff + c0, nc);
      });
    }
    detail::projection_product<Scalar>(out, hidden, w_out, threads, [&](Index r0, Index c0, Index nr, Index nc) {
      finish(r0, c0, nr, nc, out.data() + r0 * d + c0, d);
    });
  }
};

/// Rows `ids` of `table` [vocab x d]: [ids.size() x d]. Throws `argument_error` naming the position of the first
/// id outside [0, vocab).
template <class Scalar>
matrix<Scalar> embed_tokens(const Eigen::Ref<const matrix<Scalar>>& table, const std::vector<std::int32_t>& ids) {
  matrix<Scalar> out(Index(ids.size()), table.cols());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || Index(ids[i]) >= table.rows()) {
      detail::fail<argument_error>("token id ", ids[i], " at position ", i,
                                   " is out of range, expected 0 <= id < vocab_size = ", table.rows());
    }
    out.row(Index(i)) = table.row(ids[i]);
  }
  return out;
}

/// Where a block's norms sit relative to its residual additions (see the file comment).
enum class block_layout {
  pre_norm,   ///< norm, sublayer, residual add (GPT-2, Llama and most decoders)
  parallel,   ///< attention and MLP both read the block input, one residual add (GPT-NeoX's parallel residual)
  post_norm,  ///< sublayer, residual add, norm (BERT, RoBERTa)
};

/// The weights of one block.
template <class Scalar>
struct block_weights {
  block_layout layout = block_layout::pre_norm;
  normalization<Scalar> attention_norm;             ///< GPT-2 ln_1, Llama input_layernorm, BERT attention LayerNorm
  attention_config attention;                       ///< the attention layer's shape; `causal` is set from below
  attention_weights<Scalar> attention_projections;  ///< q, k, v, o in the x W convention
  normalization<Scalar> mlp_norm;                   ///< GPT-2 ln_2, Llama post_attention_layernorm, BERT output LN
  mlp<Scalar> feed_forward;
  /// Pre-norm only, optional (empty weight: none): norms of the attention and MLP outputs before their residual
  /// adds (Gemma 2's post_attention_layernorm, post_feedforward_layernorm).
  normalization<Scalar> attention_output_norm, mlp_output_norm;
  bool causal = true;  ///< false for an encoder's bidirectional attention
};

/// The optional transform between the last block and the LM head of BERT-style masked LMs:
/// norm(act(x W + b)) (BERT's cls.predictions.transform, RoBERTa's lm_head.dense + layer_norm).
template <class Scalar>
struct head_transform_weights {
  matrix<Scalar> weight;  ///< [d x d]; empty means no transform
  vector<Scalar> bias;    ///< [d] or empty
  activation_kind activation = activation_kind::gelu_erf;
  normalization<Scalar> norm;
};

/// Everything a `transformer` is built from.
template <class Scalar>
struct transformer_weights {
  matrix<Scalar> token_embedding;     ///< [vocab x d]
  /// [max_positions x d] learned positions (GPT-2; row p serves position p, so a loader drops the rows an offset
  /// skips, as OPT's 2 and RoBERTa's padding_idx + 1), or empty (rotary)
  matrix<Scalar> position_embedding;
  Scalar embedding_scale = 1;          ///< token embeddings are multiplied by it (Gemma: sqrt(d) in the dtype)
  normalization<Scalar> embedding_norm;  ///< after the embeddings (BERT's embeddings.LayerNorm); empty: none
  std::vector<block_weights<Scalar>> blocks;
  normalization<Scalar> final_norm;  ///< GPT-2 ln_f, Llama norm; empty weight: none (post-norm encoders)
  head_transform_weights<Scalar> head_transform;  ///< BERT's MLM transform; empty: none
  matrix<Scalar> lm_head;            ///< [d x vocab]; empty means tied to token_embedding (logits = x E^T)
  vector<Scalar> lm_head_bias;       ///< [vocab] or empty
  double final_logit_softcap = 0;    ///< above 0: logits become cap * tanh(logits / cap) (Gemma 2)
};

/// One block (pre-norm, parallel or post-norm; see the file comment), its attention layer built once.
template <class Scalar>
class decoder_block {
 public:
  /// Validates and builds block `layer` (the index reported to hooks). Throws `shape_error`, `argument_error`.
  decoder_block(const block_weights<Scalar>& w, int layer)
      : layout_(w.layout),
        attention_norm_(w.attention_norm),
        attention_(with_causal(w.attention, w.causal), w.attention_projections, layer),
        mlp_norm_(w.mlp_norm),
        mlp_(w.feed_forward),
        attention_output_norm_(w.attention_output_norm),
        mlp_output_norm_(w.mlp_output_norm) {
    const std::string name = "blocks[" + std::to_string(layer) + "]";
    const Index d = w.attention.d_model;
    attention_norm_.validate(name + ".attention_norm");
    mlp_norm_.validate(name + ".mlp_norm");
    if (attention_norm_.size() != d || mlp_norm_.size() != d) {
      detail::fail<shape_error>(name, " norms have widths ", attention_norm_.size(), " and ", mlp_norm_.size(),
                                ", expected d_model = ", d);
    }
    for (const auto* n : {&attention_output_norm_, &mlp_output_norm_}) {
      if (n->size() == 0) continue;
      const std::string which = name + (n == &attention_output_norm_ ? ".attention_output_norm" : ".mlp_output_norm");
      n->validate(which);
      if (n->size() != d) detail::fail<shape_error>(which, " has width ", n->size(), ", expected d_model = ", d);
      if (layout_ != block_layout::pre_norm) {
        detail::fail<argument_error>(which, " is set, expected none outside a pre-norm block");
      }
    }
    mlp_.validate(name + ".feed_forward", d);
  }

  /// The block applied to `x` [T x d_model]; `hooks` fire inside the attention layer.
  template <class Hooks = no_hooks>
  matrix<Scalar> forward(const Eigen::Ref<const matrix<Scalar>>& x, const forward_options<Scalar>& options = {},
                         Hooks&& hooks = Hooks{}) const {
    return around_attention(x, options, [&](const Eigen::Ref<const matrix<Scalar>>& in) {
      return attention_.forward(in, options, hooks);
    });
  }

  /// The block applied to the next tokens `x` [n x d_model] of a sequence whose earlier keys and values are in
  /// `cache` (appended to; see `multi_head_attention::forward_step`).
  template <class Hooks = no_hooks>
  matrix<Scalar> forward_step(const Eigen::Ref<const matrix<Scalar>>& x, kv_cache<Scalar>& cache,
                              const forward_options<Scalar>& options = {}, Hooks&& hooks = Hooks{}) const {
    return around_attention(x, options, [&](const Eigen::Ref<const matrix<Scalar>>& in) {
      return attention_.forward_step(in, cache, options, hooks);
    });
  }

  const multi_head_attention<Scalar>& attention() const noexcept { return attention_; }
  const normalization<Scalar>& attention_norm() const noexcept { return attention_norm_; }
  const normalization<Scalar>& mlp_norm() const noexcept { return mlp_norm_; }
  const mlp<Scalar>& feed_forward() const noexcept { return mlp_; }
  block_layout layout() const noexcept { return layout_; }

 private:
  static attention_config with_causal(attention_config c, bool causal) {
    c.causal = causal;
    return c;
  }

  // The residual wiring of `layout_` around `attend` (the attention layer, plain or with a cache).
  template <class Attend>
  matrix<Scalar> around_attention(const Eigen::Ref<const matrix<Scalar>>& x, const forward_options<Scalar>& options,
                                  Attend&& attend) const {
    const Index threads = options.threads;
    if (layout_ == block_layout::post_norm) {
      matrix<Scalar> h = attend(x);
      h += x;
      attention_norm_.apply(h, h, threads);
      mlp_.add_to(h, h, threads);
      mlp_norm_.apply(h, h, threads);
      return h;
    }
    if (layout_ == block_layout::parallel) {
      matrix<Scalar> h = attend(attention_norm_(x, threads));
      h += x;
      mlp_.add_to(mlp_norm_(x, threads), h, threads);
      return h;
    }
    matrix<Scalar> h = attend(attention_norm_(x, threads));
    if (attention_output_norm_.size() != 0) attention_output_norm_.apply(h, h, threads);
    h += x;
    if (mlp_output_norm_.size() != 0) {
      matrix<Scalar> m = mlp_(mlp_norm_(h, threads), threads);
      mlp_output_norm_.apply(m, m, threads);
      h += m;
    } else {
      mlp_.add_to(mlp_norm_(h, threads), h, threads);
    }
    return h;
  }

  block_layout layout_;
  normalization<Scalar> attention_norm_;
  multi_head_attention<Scalar> attention_;
  normalization<Scalar> mlp_norm_;
  mlp<Scalar> mlp_;
  normalization<Scalar> attention_output_norm_, mlp_output_norm_;
};

template <class Scalar>
class transformer;

/// The keys and values of every layer of a `transformer`, for incremental decoding with
/// `transformer::forward_step`. One cache serves one sequence of one model.
template <class Scalar>
class transformer_cache {
 public:
  /// Tokens seen so far.
  Index length() const noexcept { return length_; }
  /// Forgets every token.
  void clear() noexcept {
    for (kv_cache<Scalar>& c : layers_) c.clear();
    length_ = 0;
  }
  /// Bytes held by the layers' caches.
  std::size_t bytes() const noexcept {
    std::size_t total = 0;
    for (const kv_cache<Scalar>& c : layers_) total += c.bytes();
    return total;
  }

 private:
  friend class transformer<Scalar>;
  std::vector<kv_cache<Scalar>> layers_;
  Index length_ = 0;
};

/// A decoder-only language model: token ids in, logits out, with hooks at every head of every layer.
/// Thread safety: `forward` is const; one model may serve several threads at once.
template <class Scalar>
class transformer {
  static_assert(std::is_floating_point<Scalar>::value, "transformer needs float or double");

 public:
  /// Validates every shape (throws `shape_error` / `argument_error` naming the part at fault) and builds the
  /// layers. Block i reports layer i to hooks.
  explicit transformer(transformer_weights<Scalar> w)
      : token_embedding_(std::move(w.token_embedding)),
        position_embedding_(std::move(w.position_embedding)),
        embedding_scale_(w.embedding_scale),
        embedding_norm_(std::move(w.embedding_norm)),
        final_norm_(std::move(w.final_norm)),
        head_transform_(std::move(w.head_transform)),
        lm_head_(std::move(w.lm_head)),
        lm_head_bias_(std::move(w.lm_head_bias)),
        final_logit_softcap_(w.final_logit_softcap) {
    const Index d = token_embedding_.cols();
    if (token_embedding_.rows() == 0 || d == 0) {
      detail::fail<shape_error>("token_embedding is [", token_embedding_.rows(), " x ", d,
                                "], expected [vocab x d_model] with both >= 1");
    }
    if (position_embedding_.size() != 0 && position_embedding_.cols() != d) {
      detail::fail<shape_error>("position_embedding is [", position_embedding_.rows(), " x ",
                                position_embedding_.cols(), "], expected [max_positions x ", d, "]");
    }
    auto optional_norm = [&](const normalization<Scalar>& n, const char* name) {
      if (n.size() == 0 && n.bias.size() == 0) return;
      n.validate(name);
      if (n.size() != d) detail::fail<shape_error>(name, ".weight has ", n.size(), " entries, expected d_model = ", d);
    };
    optional_norm(final_norm_, "final_norm");
    optional_norm(embedding_norm_, "embedding_norm");
    if (head_transform_.weight.size() != 0) {
      if (head_transform_.weight.rows() != d || head_transform_.weight.cols() != d) {
        detail::fail<shape_error>("head_transform.weight is [", head_transform_.weight.rows(), " x ",
                                  head_transform_.weight.cols(), "], expected [", d, " x ", d, "]");
      }
      if (head_transform_.bias.size() != 0 && head_transform_.bias.size() != d) {
        detail::fail<shape_error>("head_transform.bias has ", head_transform_.bias.size(), " entries, expected ", d);
      }
      optional_norm(head_transform_.norm, "head_transform.norm");
    }
    if (!(std::isfinite(double(embedding_scale_)) && embedding_scale_ > 0)) {
      detail::fail<argument_error>("embedding_scale is ", embedding_scale_, ", expected a finite positive number");
    }
    if (!(std::isfinite(final_logit_softcap_) && final_logit_softcap_ >= 0)) {
      detail::fail<argument_error>("final_logit_softcap is ", final_logit_softcap_, ", expected 0 (none) or more");
    }
    if (lm_head_.size() != 0 && lm_head_.rows() != d) {
      detail::fail<shape_error>("lm_head is [", lm_head_.rows(), " x ", lm_head_.cols(), "], expected [", d,
                                " x vocab]");
    }
    if (lm_head_bias_.size() != 0 && lm_head_bias_.size() != vocab_size()) {
      detail::fail<shape_error>("lm_head_bias has ", lm_head_bias_.size(), " entries, expected vocab = ", vocab_size());
    }
    blocks_.reserve(w.blocks.size());
    for (std::size_t i = 0; i < w.blocks.size(); ++i) {
      if (w.blocks[i].attention.d_model != d) {
        detail::fail<shape_error>("blocks[", i, "].attention.d_model is ", w.blocks[i].attention.d_model,
                                  ", expected the embedding width ", d);
      }
      blocks_.emplace_back(w.blocks[i], int(i));
    }
  }

  Index d_model() const noexcept { return token_embedding_.cols(); }
  /// Logits per position: the LM head's width.
  Index vocab_size() const noexcept { return lm_head_.size() != 0 ? lm_head_.cols() : token_embedding_.rows(); }
  Index layer_count() const noexcept { return Index(blocks_.size()); }
  /// Longest sequence `forward` accepts (learned positions); 0 means no limit.
  Index max_positions() const noexcept { return position_embedding_.rows(); }
  const std::vector<decoder_block<Scalar>>& blocks() const noexcept { return blocks_; }
  const normalization<Scalar>& final_norm() const noexcept { return final_norm_; }
  const matrix<Scalar>& token_embedding() const noexcept { return token_embedding_; }
  bool tied_embeddings() const noexcept { return lm_head_.size() == 0; }

  /// The input of block 0 for token `ids`, [T x d_model]: the token embeddings (scaled), the learned positions and
  /// the embedding norm, as `hidden_states` starts. With `blocks()[l].forward` and `final_norm()` it runs the model
  /// block by block, each block with its own options (a head mask per layer: models/transformer_ablation.hpp), and
  /// gives the same bits as `hidden_states`. Throws as `hidden_states`.
  matrix<Scalar> embeddings(const std::vector<std::int32_t>& ids, const forward_options<Scalar>& options = {}) const {
    check_ids(ids, options);
    return embed(ids, 0, options.threads);
  }

  /// The residual stream after the final norm, [T x d_model], for token `ids`. `options` go to every attention
  /// layer (threads, path, head_mask for every layer alike; `batch` must be 1). Throws `argument_error` for an id
  /// outside the vocabulary, an empty sequence, or a sequence longer than `max_positions()`.
  template <class Hooks = no_hooks>
  matrix<Scalar> hidden_states(const std::vector<std::int32_t>& ids, const forward_options<Scalar>& options = {},
                               Hooks&& hooks = Hooks{}) const {
    check_ids(ids, options);
    matrix<Scalar> x = embed(ids, 0, options.threads);
    for (const decoder_block<Scalar>& block : blocks_) x = block.forward(x, options, hooks);
    finish(x, options.threads);
    return x;
  }

  /// `hidden_states` of several sequences in one forward (a padded batch): every product runs once over all their
  /// rows, so short sequences keep the projections as busy as one long one. Returns [batch.size() * T x d_model],
  /// sequence b in rows b*T .. b*T + batch[b].size() - 1, T the longest length; the rows after a sequence's own are
  /// padding and mean nothing. Each sequence gets what it gets alone within float rounding: its positions start at
  /// 0 and the padded keys are masked (a causal layer needs no mask: its queries never see keys after them).
  /// Hooks and `row_observer` see the sequences as `batch_row` b, at the padded length (see `sequence_observers`).
  /// Throws as `hidden_states` for any sequence (naming it), for an empty batch, and when `options` already sets
  /// `batch` or `key_padding` (this call does).
  template <class Hooks = no_hooks>
  matrix<Scalar> hidden_states_batch(const std::vector<std::vector<std::int32_t>>& batch,
                                     const forward_options<Scalar>& options = {}, Hooks&& hooks = Hooks{}) const {
    if (batch.empty()) detail::fail<argument_error>("batch is empty, expected at least one sequence");
    if (options.key_padding.size() != 0) {
      detail::fail<argument_error>("options.key_padding is set, expected it empty (hidden_states_batch pads)");
    }
    Index T = 0;
    bool same_length = true;
    for (std::size_t b = 0; b < batch.size(); ++b) {
      try {
        check_ids(batch[b], options);
      } catch (const argument_error& e) {
        detail::fail<argument_error>("batch[", b, "]: ", detail::unprefixed(e));
      }
      same_length = same_length && batch[b].size() == batch.front().size();
      T = std::max(T, Index(batch[b].size()));
    }
    const Index B = Index(batch.size());
    std::vector<std::int32_t> ids(std::size_t(B * T), 0);  // id 0 at padding: any valid row of the table
    for (Index b = 0; b < B; ++b)
      std::copy(batch[std::size_t(b)].begin(), batch[std::size_t(b)].end(), ids.begin() + b * T);
    forward_options<Scalar> o = options;
    o.batch = B;
    const bool all_causal = std::all_of(blocks_.begin(), blocks_.end(), [](const decoder_block<Scalar>& block) {
      return block.attention().config().causal;
    });
    if (!same_length && !all_causal) {
      o.key_padding = bool_matrix::Constant(B, T, false);
      for (Index b = 0; b < B; ++b)
        o.key_padding.row(b).tail(T - Index(batch[std::size_t(b)].size())).setConstant(true);
    }
    matrix<Scalar> x = embed(ids, 0, options.threads, T);
    for (const decoder_block<Scalar>& block : blocks_) x = block.forward(x, o, hooks);
    finish(x, options.threads);
    return x;
  }

  /// Logits [T x vocab] for token `ids` (see `hidden_states` for options and errors).
  template <class Hooks = no_hooks>
  matrix<Scalar> forward(const std::vector<std::int32_t>& ids, const forward_options<Scalar>& options = {},
                         Hooks&& hooks = Hooks{}) const {
    return logits(hidden_states(ids, options, hooks), options.threads);
  }

  /// Incremental decoding: logits [n x vocab] for the next n >= 1 tokens `ids` of a sequence whose earlier tokens
  /// are in `cache` (which they are appended to). Feeding a sequence in any number of steps gives the rows of one
  /// `forward` over it. Hooks see the new queries only (`scores` and `pattern` are [n x (length + n)], token ranges
  /// continue from the cache). Throws as `hidden_states` (a sequence may not grow past `max_positions()`), before
  /// any layer's cache changes.
  template <class Hooks = no_hooks>
  matrix<Scalar> forward_step(const std::vector<std::int32_t>& ids, transformer_cache<Scalar>& cache,
                              const forward_options<Scalar>& options = {}, Hooks&& hooks = Hooks{}) const {
    check_ids(ids, options, cache.length_);
    if (!options.positions.empty()) {
      detail::fail<argument_error>(
          "options.positions is set, expected it empty (forward_step continues from the "
          "cache)");
    }
    if (cache.layers_.size() != blocks_.size()) {
      if (cache.length_ != 0) {
        detail::fail<argument_error>("cache holds ", cache.layers_.size(), " layers, expected ", blocks_.size(),
                                     " (a cache serves one model)");
      }
      cache.layers_.assign(blocks_.size(), kv_cache<Scalar>());
    }
    matrix<Scalar> x = embed(ids, cache.length_, options.threads);
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      x = blocks_[i].forward_step(x, cache.layers_[i], options, hooks);
    }
    cache.length_ += x.rows();
    finish(x, options.threads);
    return logits(x, options.threads);
  }

  /// Logits for the rows of `hidden` [T x d_model] (already through the final norm), on up to `threads` threads
  /// (0: OpenMP's default; the result does not depend on it): the head transform when there is one, the head, the
  /// soft-cap. A tied head multiplies by the token embedding transposed without copying it
  /// (`detail::projection_product_transposed`).
  matrix<Scalar> logits(const Eigen::Ref<const matrix<Scalar>>& hidden, Index threads_requested = 0) const {
    if (hidden.cols() != d_model()) {
      detail::fail<shape_error>("hidden.cols() is ", hidden.cols(), ", expected d_model = ", d_model());
    }
    if (head_transform_.weight.size() != 0) {
      matrix<Scalar> x = hidden * head_transform_.weight;
      if (head_transform_.bias.size() != 0) x.rowwise() += head_transform_.bias.transpose();
      apply_activation(head_transform_.activation, x);
      if (head_transform_.norm.size() != 0) head_transform_.norm.apply(x, x, threads_requested);
      matrix<Scalar> out = head_logits(x, threads_requested);
      soft_cap_logits(out);
      return out;
    }
    matrix<Scalar> out = head_logits(hidden, threads_requested);
    soft_cap_logits(out);
    return out;
  }

 private:
  void soft_cap_logits(matrix<Scalar>& out) const noexcept {
    if (final_logit_softcap_ > 0) detail::soft_cap(out, Scalar(final_logit_softcap_));
  }

  // The final norm, where there is one.
  void finish(matrix<Scalar>& x, Index threads) const {
    if (final_norm_.size() != 0) final_norm_.apply(x, x, threads);
  }

  matrix<Scalar> head_logits(const Eigen::Ref<const matrix<Scalar>>& hidden, Index threads_requested) const {
    const Index t = hidden.rows(), vocab = vocab_size();
    matrix<Scalar> out(t, vocab);
    const int threads = detail::product_threads(t, vocab, detail::thread_count(threads_requested));
    if (lm_head_.size() != 0) {
      detail::projection_product<Scalar>(out, hidden, lm_head_, threads, [&](Index r0, Index c0, Index nr, Index nc) {
        if (lm_head_bias_.size() != 0) out.block(r0, c0, nr, nc).rowwise() += lm_head_bias_.segment(c0, nc).transpose();
      });
      return out;
    }
    detail::scratch_lease<Scalar> scratch(detail::projection_transposed_scratch<Scalar>(t, d_model(), threads));
    detail::projection_product_transposed<Scalar>(
        out, hidden, token_embedding_, threads,
        scratch.take(detail::projection_transposed_scratch<Scalar>(t, d_model(), threads)));
    if (lm_head_bias_.size() != 0) out.rowwise() += lm_head_bias_.transpose();
    return out;
  }

  // Token embeddings (+ learned positions from `first_position`) of already checked ids, rows in parallel; with
  // `period`, the ids are sequences of that many tokens each, each from `first_position` again.
  matrix<Scalar> embed(const std::vector<std::int32_t>& ids, Index first_position, Index threads,
                       Index period = 0) const {
    const Index t = Index(ids.size());
    if (period <= 0) period = std::max<Index>(t, 1);
    matrix<Scalar> x(t, d_model());
    const Index rows_per_unit = 32;
    detail::parallel_for((t + rows_per_unit - 1) / rows_per_unit, detail::thread_count(threads), [&](Index unit, int) {
      for (Index r = unit * rows_per_unit; r < std::min(t, (unit + 1) * rows_per_unit); ++r) {
        x.row(r) = token_embedding_.row(ids[std::size_t(r)]);
        if (embedding_scale_ != Scalar(1)) x.row(r) *= embedding_scale_;
        if (position_embedding_.size() != 0) x.row(r) += position_embedding_.row(first_position + r % period);
      }
    });
    if (embedding_norm_.size() != 0) embedding_norm_.apply(x, x, threads);
    return x;
  }

  void check_ids(const std::vector<std::int32_t>& ids, const forward_options<Scalar>& options, Index past = 0) const {
    if (ids.empty()) detail::fail<argument_error>("ids is empty, expected at least one token");
    if (options.batch != 1) {
      detail::fail<argument_error>("options.batch is ", options.batch, ", expected 1 (one sequence per call)");
    }
    if (position_embedding_.size() != 0 && past + Index(ids.size()) > position_embedding_.rows()) {
      if (past == 0) {
        detail::fail<argument_error>("ids has ", ids.size(),
                                     " tokens, expected at most max_positions = ", position_embedding_.rows());
      }
      detail::fail<argument_error>("ids has ", ids.size(), " tokens after ", past,
                                   " cached, expected at most max_positions = ", position_embedding_.rows(), " in all");
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || Index(ids[i]) >= token_embedding_.rows()) {
        detail::fail<argument_error>("token id ", ids[i], " at position ", i,
                                     " is out of range, expected 0 <= id < vocab_size = ", token_embedding_.rows());
      }
    }
  }

  matrix<Scalar> token_embedding_;
  matrix<Scalar> position_embedding_;
  Scalar embedding_scale_;
  normalization<Scalar> embedding_norm_;
  std::vector<decoder_block<Scalar>> blocks_;
  normalization<Scalar> final_norm_;
  head_transform_weights<Scalar> head_transform_;
  matrix<Scalar> lm_head_;
  vector<Scalar> lm_head_bias_;
  double final_logit_softcap_;
};

}  // namespace headlens
