#pragma once
/// \file
/// The shape of one multi-head attention layer and its weights.
///
/// Convention: activations are row-major [tokens x features] and weights multiply from the right, `q = x W_q`,
/// so W_q is [d_model x n_heads*head_dim] (the transpose of PyTorch's `nn.Linear.weight`). The factories
/// `from_pytorch_mha` and `from_linear` take PyTorch's layout and transpose once.

#include <cmath>
#include <optional>

#include "headlens/error.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// How rotary frequencies are rescaled for a longer context than the model was trained on (Hugging Face's
/// `rope_scaling`). With inv_i = base^(-2i/rotary_dim) the unscaled inverse frequency of pair i:
/// - `linear`: inv_i / factor (positions interpolated);
/// - `llama3` (Llama 3.1): wavelength w_i = 2 pi / inv_i; inv_i / factor where w_i > original / low_freq_factor,
///   inv_i where w_i < original / high_freq_factor, and between them the blend (1 - s) inv_i / factor + s inv_i with
///   s = (original / w_i - low_freq_factor) / (high_freq_factor - low_freq_factor).
struct rotary_scaling {
  enum class kind { none, linear, llama3 };
  kind type = kind::none;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_positions = 8192.0;  ///< `original_max_position_embeddings`
};

/// The shape and options of one attention layer.
struct attention_config {
  Index d_model = 0;     ///< width of the input and output
  Index n_heads = 0;     ///< query heads
  Index n_kv_heads = 0;  ///< key/value heads (GQA, MQA); 0 means n_heads (MHA)
  Index head_dim = 0;    ///< width of one head; 0 means d_model / n_heads
  bool causal = false;   ///< query i sees keys 0..i only (self-attention and KV-cache decoding)
  std::optional<double> scale;  ///< logit scale; default 1/sqrt(head_dim)
  bool bias = true;             ///< projections carry biases
  bool rotary = false;          ///< rotary position embedding on q and k (Llama's rotate-half convention)
  double rotary_base = 10000.0; ///< theta_i = position * base^(-2i/rotary_dim)
  Index rotary_dim = 0;         ///< leading dims of each head that rotate; 0 means head_dim
  rotary_scaling rotary_scale;  ///< rescaled frequencies (Llama 3.1's `llama3`, `linear`); none by default
  /// Pairs dims (2i, 2i + 1) (GPT-J's and Meta's original Llama convention) instead of (i, i + rotary_dim / 2)
  /// (rotate-half, Hugging Face's); pair i turns by the same angle either way.
  bool rotary_interleaved = false;
  /// Above 0: scaled logits s become softcap * tanh(s / softcap) before any mask (Gemma 2's attention soft-capping).
  double softcap = 0;
  /// Above 0 (with `causal`): the query at position p sees only keys p - sliding_window + 1 .. p, i.e. the
  /// `sliding_window` latest tokens, itself included (Hugging Face's mask `kv_idx > q_idx - sliding_window`).
  /// Positions here are indices in the sequence (the cache length + row), not `forward_options::positions`.
  Index sliding_window = 0;
  /// RMSNorm of each head's query and key over head_dim, before rotary (Qwen3's q_norm / k_norm); the weights
  /// are `attention_weights::q_norm`, `k_norm`.
  bool qk_norm = false;
  double qk_norm_eps = 1e-6;  ///< epsilon of those norms

  /// n_kv_heads with the default applied.
  Index kv_heads() const noexcept { return n_kv_heads > 0 ? n_kv_heads : n_heads; }
  /// head_dim with the default applied (0 when it cannot be derived).
  Index head_size() const noexcept {
    if (head_dim > 0) return head_dim;
    return n_heads > 0 && d_model % n_heads == 0 ? d_model / n_heads : 0;
  }
  /// rotary_dim with the default applied.
  Index rotary_size() const noexcept { return rotary_dim > 0 ? rotary_dim : head_size(); }
  /// The logit scale with the default applied.
  double logit_scale() const noexcept { return scale ? *scale : 1.0 / std::sqrt(double(head_size())); }
  /// Query heads per kv head.
  Index group_size() const noexcept { return n_heads / kv_heads(); }

  /// Checks every field; throws `argument_error` naming the first field that is wrong.
  void validate() const {
    if (d_model <= 0) detail::fail<argument_error>("config.d_model is ", d_model, ", expected a positive width");
    if (n_heads <= 0) detail::fail<argument_error>("config.n_heads is ", n_heads, ", expected at least 1");
    if (n_kv_heads < 0) detail::fail<argument_error>("config.n_kv_heads is ", n_kv_heads, ", expected 0 (= n_heads) or more");
    if (n_heads % kv_heads() != 0) {
      detail::fail<argument_error>("config.n_heads is ", n_heads, ", expected a multiple of n_kv_heads = ", kv_heads());
    }
    if (head_dim < 0) detail::fail<argument_error>("config.head_dim is ", head_dim, ", expected 0 (= d_model / n_heads) or more");
    if (head_dim == 0 && d_model % n_heads != 0) {
      detail::fail<argument_error>("config.d_model is ", d_model, ", expected a multiple of n_heads = ", n_heads,
                                   " (or set head_dim)");
    }
    if (scale && !(std::isfinite(*scale) && *scale > 0)) {
      detail::fail<argument_error>("config.scale is ", *scale, ", expected a finite positive number");
    }
    if (rotary) {
      if (!(std::isfinite(rotary_base) && rotary_base > 1)) {
        detail::fail<argument_error>("config.rotary_base is ", rotary_base, ", expected a finite number above 1");
      }
      const rotary_scaling& rs = rotary_scale;
      if (rs.type != rotary_scaling::kind::none && !(std::isfinite(rs.factor) && rs.factor > 0)) {
        detail::fail<argument_error>("config.rotary_scale.factor is ", rs.factor, ", expected a positive number");
      }
      if (rs.type == rotary_scaling::kind::llama3 &&
          !(rs.high_freq_factor > rs.low_freq_factor && rs.low_freq_factor > 0 && rs.original_max_positions > 0 &&
            std::isfinite(rs.high_freq_factor) && std::isfinite(rs.original_max_positions))) {
        detail::fail<argument_error>("config.rotary_scale is llama3 with low_freq_factor ", rs.low_freq_factor,
                                     ", high_freq_factor ", rs.high_freq_factor, ", original_max_positions ",
                                     rs.original_max_positions,
                                     ", expected 0 < low_freq_factor < high_freq_factor and "
                                     "original_max_positions > 0");
      }
      const Index r = rotary_size();
      if (r <= 0 || r > head_size() || r % 2 != 0) {
        detail::fail<argument_error>("config.rotary_dim is ", rotary_dim,
                                     rotary_dim == 0 ? " (0 means head_dim)" : "",
                                     ", expected an even number from 2 to head_dim = ", head_size());
      }
    }
    if (!(std::isfinite(softcap) && softcap >= 0)) {
      detail::fail<argument_error>("config.softcap is ", softcap, ", expected 0 (none) or a finite positive number");
    }
    if (sliding_window < 0 || (sliding_window > 0 && !causal)) {
      detail::fail<argument_error>("config.sliding_window is ", sliding_window,
                                   sliding_window < 0 ? ", expected 0 (none) or more" : ", expected 0 without causal");
    }
    if (qk_norm && !(std::isfinite(qk_norm_eps) && qk_norm_eps >= 0)) {
      detail::fail<argument_error>("config.qk_norm_eps is ", qk_norm_eps, ", expected >= 0");
    }
  }
};

/// The weights of one attention layer, in the `x W` convention (see the file comment). Biases are empty when
/// the config says `bias = false`.
template <class Scalar>
struct attention_weights {
  matrix<Scalar> w_q;  ///< [d_model x n_heads*head_dim]
  matrix<Scalar> w_k;  ///< [d_model x n_kv_heads*head_dim]
  matrix<Scalar> w_v;  ///< [d_model x n_kv_heads*head_dim]
  matrix<Scalar> w_o;  ///< [n_heads*head_dim x d_model]
  vector<Scalar> b_q;  ///< [n_heads*head_dim] or empty
  vector<Scalar> b_k;  ///< [n_kv_heads*head_dim] or empty
  vector<Scalar> b_v;  ///< [n_kv_heads*head_dim] or empty
  vector<Scalar> b_o;  ///< [d_model] or empty
  vector<Scalar> q_norm;  ///< [head_dim] with `config.qk_norm`, else empty
  vector<Scalar> k_norm;  ///< [head_dim] with `config.qk_norm`, else empty

  /// From `torch.nn.MultiheadAttention`'s state: `in_proj_weight` [3E x E] (q, k, v stacked), `in_proj_bias`
  /// [3E], `out_proj.weight` [E x E], `out_proj.bias` [E]; biases may be empty. Throws `shape_error`.
  static attention_weights from_pytorch_mha(const Eigen::Ref<const matrix<Scalar>>& in_proj_weight,
                                            const Eigen::Ref<const vector<Scalar>>& in_proj_bias,
                                            const Eigen::Ref<const matrix<Scalar>>& out_proj_weight,
                                            const Eigen::Ref<const vector<Scalar>>& out_proj_bias) {
    const Index e = in_proj_weight.cols();
    if (in_proj_weight.rows() != 3 * e) {
      detail::fail<shape_error>("in_proj_weight is [", in_proj_weight.rows(), " x ", e, "], expected [3*E x E] = [",
                                3 * e, " x ", e, "]");
    }
    if (in_proj_bias.size() != 0 && in_proj_bias.size() != 3 * e) {
      detail::fail<shape_error>("in_proj_bias has ", in_proj_bias.size(), " entries, expected 3*E = ", 3 * e);
    }
    if (out_proj_weight.rows() != e || out_proj_weight.cols() != e) {
      detail::fail<shape_error>("out_proj.weight is [", out_proj_weight.rows(), " x ", out_proj_weight.cols(),
                                "], expected [E x E] = [", e, " x ", e, "]");
    }
    if (out_proj_bias.size() != 0 && out_proj_bias.size() != e) {
      detail::fail<shape_error>("out_proj.bias has ", out_proj_bias.size(), " entries, expected E = ", e);
    }
    attention_weights w;
    w.w_q = in_proj_weight.topRows(e).transpose();
    w.w_k = in_proj_weight.middleRows(e, e).transpose();
    w.w_v = in_proj_weight.bottomRows(e).transpose();
    w.w_o = out_proj_weight.transpose();
    if (in_proj_bias.size() != 0) {
      w.b_q = in_proj_bias.head(e);
      w.b_k = in_proj_bias.segment(e, e);
      w.b_v = in_proj_bias.tail(e);
    }
    w.b_o = out_proj_bias;
    return w;
  }

  /// From four `nn.Linear` weights in PyTorch's [out x in] layout (Llama's q_proj, k_proj, v_proj, o_proj);
  /// biases may be empty.
  static attention_weights from_linear(const Eigen::Ref<const matrix<Scalar>>& q_weight,
                                       const Eigen::Ref<const matrix<Scalar>>& k_weight,
                                       const Eigen::Ref<const matrix<Scalar>>& v_weight,
                                       const Eigen::Ref<const matrix<Scalar>>& o_weight,
                                       const vector<Scalar>& q_bias = {}, const vector<Scalar>& k_bias = {},
                                       const vector<Scalar>& v_bias = {}, const vector<Scalar>& o_bias = {}) {
    attention_weights w;
    w.w_q = q_weight.transpose();
    w.w_k = k_weight.transpose();
    w.w_v = v_weight.transpose();
    w.w_o = o_weight.transpose();
    w.b_q = q_bias;
    w.b_k = k_bias;
    w.b_v = v_bias;
    w.b_o = o_bias;
    return w;
  }
};

namespace detail {

inline void check_weight_shape(const char* name, Index rows, Index cols, Index want_rows, Index want_cols) {
  if (rows != want_rows || cols != want_cols) {
    fail<shape_error>("weights.", name, " is [", rows, " x ", cols, "], expected [", want_rows, " x ", want_cols, "]");
  }
}

inline void check_bias_shape(const char* name, Index size, Index want, bool bias_on) {
  if (bias_on && size != want) {
    fail<shape_error>("weights.", name, " has ", size, " entries, expected ", want, " (config.bias is true)");
  }
  if (!bias_on && size != 0) {
    fail<shape_error>("weights.", name, " has ", size, " entries, expected none (config.bias is false)");
  }
}

}  // namespace detail

/// Checks that `w` fits `config`; throws `shape_error` naming the first weight that does not.
template <class Scalar>
void validate_weights(const attention_config& config, const attention_weights<Scalar>& w) {
  const Index d = config.d_model, hd = config.n_heads * config.head_size(), kvd = config.kv_heads() * config.head_size();
  detail::check_weight_shape("w_q", w.w_q.rows(), w.w_q.cols(), d, hd);
  detail::check_weight_shape("w_k", w.w_k.rows(), w.w_k.cols(), d, kvd);
  detail::check_weight_shape("w_v", w.w_v.rows(), w.w_v.cols(), d, kvd);
  detail::check_weight_shape("w_o", w.w_o.rows(), w.w_o.cols(), hd, d);
  detail::check_bias_shape("b_q", w.b_q.size(), hd, config.bias);
  detail::check_bias_shape("b_k", w.b_k.size(), kvd, config.bias);
  detail::check_bias_shape("b_v", w.b_v.size(), kvd, config.bias);
  detail::check_bias_shape("b_o", w.b_o.size(), d, config.bias);
  const Index want_norm = config.qk_norm ? config.head_size() : 0;
  if (w.q_norm.size() != want_norm || w.k_norm.size() != want_norm) {
    detail::fail<shape_error>("weights.q_norm and k_norm have ", w.q_norm.size(), " and ", w.k_norm.size(),
                              " entries, expected ", want_norm,
                              config.qk_norm ? " (head_dim)" : " (config.qk_norm is false)");
  }
}

}  // namespace headlens
