#pragma once
/// \file
/// Internal: the one loader behind every Hugging Face family. A family is data: `family_settings` (the switches of
/// the block and the model, read from config.json by the family's entry in models/families.hpp, or from
/// `gpt2_config` / `llama_config`) and `family_tensor_names` (where each weight sits in the checkpoint). From them
/// `build_transformer` reads, checks and converts every tensor into `transformer_weights` (models/transformer.hpp).
/// Every error names the tensor (and its expected shape) or the setting at fault.

#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/io/safetensors.hpp"
#include "headlens/kernels/activation.hpp"
#include "headlens/kernels/attention_config.hpp"
#include "headlens/models/detail/hf_checkpoint.hpp"
#include "headlens/models/transformer.hpp"

namespace headlens {
namespace detail {

/// How a checkpoint stores the q, k and v projections.
enum class qkv_layout {
  separate,      ///< three nn.Linear [out, in] (Llama q_proj, k_proj, v_proj; BERT query, key, value)
  concatenated,  ///< one nn.Linear whose rows are q, then k, then v (Phi-3 qkv_proj)
  per_head,      ///< one nn.Linear whose rows hold, head by head, that head's q, k, v (GPT-NeoX query_key_value)
  conv1d,        ///< one Conv1D [in, out] whose columns are q, k, v (GPT-2 c_attn)
};

/// Everything a checkpoint's forward depends on, whatever its family.
struct family_settings {
  std::string name;  ///< "Llama", for messages and descriptions
  Index vocab = 0, d = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, ff = 0;
  // Norms.
  norm_kind norm = norm_kind::rms_norm;
  bool norm_bias = false;      ///< LayerNorms with a bias tensor
  bool norm_plus_one = false;  ///< Gemma: the stored w scales as (1 + w)
  double eps = 1e-6;
  block_layout layout = block_layout::pre_norm;
  bool output_norms = false;  ///< Gemma 2's norms of the attention and MLP outputs
  // Attention.
  bool qkv_bias = false, o_bias = false;
  bool rotary = true;
  Index rotary_dim = 0;  ///< 0: head_dim
  double rope_theta = 10000.0;
  rotary_scaling rope_scaling;
  double softcap = 0;
  std::optional<double> scale;          ///< default 1/sqrt(head_dim)
  bool scale_by_inverse_layer = false;  ///< GPT-2's scale_attn_by_inverse_layer_idx: also / (layer + 1)
  std::vector<Index> sliding_window;    ///< per layer (0: full attention); empty: none anywhere
  bool qk_norm = false;
  bool causal = true;
  // MLP.
  mlp_kind mlp = mlp_kind::gated;
  activation_kind activation = activation_kind::silu;
  bool mlp_bias = false;
  // Embeddings and head.
  bool learned_positions = false;
  Index position_rows = 0;    ///< rows of the stored position table
  Index position_offset = 0;  ///< row of position 0 (OPT 2, RoBERTa padding_idx + 1)
  Index token_type_rows = 0;  ///< BERT's token_type_embeddings rows (type 0 is added everywhere); 0: none
  bool embedding_norm = false;
  bool embedding_scale = false;  ///< Gemma: embeddings times sqrt(d) in the model's dtype
  bool final_norm = true;
  bool tied = false;
  bool head_transform = false;  ///< BERT/RoBERTa MLM transform (dense, activation, LayerNorm)
  bool lm_head_bias = false;
  double final_softcap = 0;
  /// Longest sequence: the learned positions, or config.json's max_position_embeddings.
  Index max_tokens = 2048;
};

/// Where a family keeps each tensor: names without `.weight` / `.bias`, "{i}" standing for the layer index, empty
/// for a tensor the family does not have. Names under `prefix` are tried with it and without it (a checkpoint of
/// the bare model, e.g. `LlamaModel`, drops it); the head names (`head_*`) are read without a prefix.
struct family_tensor_names {
  const char* prefix = "model.";
  bool prefix_by_default = true;  ///< when neither form of the embedding is there: report names with the prefix
  const char* embed = "embed_tokens";
  const char* positions = "";
  const char* token_types = "";
  const char* embedding_norm = "";
  const char* layer = "layers.{i}.";
  const char* attention_norm = "input_layernorm";
  qkv_layout qkv = qkv_layout::separate;
  const char* q = "self_attn.q_proj";  ///< or the fused projection
  const char* k = "self_attn.k_proj";
  const char* v = "self_attn.v_proj";
  const char* o = "self_attn.o_proj";
  bool o_conv1d = false;  ///< GPT-2's Conv1D [in, out] layout for o and the MLP
  const char* q_norm = "self_attn.q_norm";
  const char* k_norm = "self_attn.k_norm";
  const char* attention_output_norm = "";
  const char* mlp_norm = "post_attention_layernorm";
  const char* mlp_output_norm = "";
  const char* up = "mlp.up_proj";
  const char* gate = "mlp.gate_proj";  ///< empty with `gate_up`
  const char* gate_up = "";            ///< fused [gate; up] rows (Phi-3)
  const char* down = "mlp.down_proj";
  const char* final_norm = "norm";
  const char* head = "lm_head";  ///< untied LM head, outside the prefix
  const char* head_dense = "";
  const char* head_norm = "";
  const char* head_bias = "";
};

/// `pattern` with "{i}" replaced by `layer`.
inline std::string layer_name(const std::string& pattern, Index layer) {
  std::string out = pattern;
  const std::size_t at = out.find("{i}");
  if (at != std::string::npos) out.replace(at, 3, std::to_string(layer));
  return out;
}

/// Reads and converts every tensor of the checkpoint `files` as `s` and `n` say. Throws `format_error` for a
/// missing tensor or an unsupported dtype, `shape_error` for a misshapen one (each naming the tensor and the
/// expected shape), and the errors of `transformer`'s constructor.
template <class Scalar>
transformer<Scalar> build_transformer(const family_settings& s, const family_tensor_names& n,
                                      const std::vector<const safetensors_file*>& files) {
  const hf_tensors root(files, "", s.name);
  const std::string embed = std::string(n.embed) + ".weight";
  const bool prefixed = root.has(n.prefix + embed) || (n.prefix_by_default && !root.has(embed));
  const hf_tensors t(files, prefixed ? n.prefix : "", s.name);
  const Index d = s.d, hd = s.head_dim, ff = s.ff;
  const Index q_width = s.heads * hd, kv_width = s.kv_heads * hd;
  const auto str = [](const char* c) { return std::string(c); };

  auto linear = [&](const hf_tensors& src, const std::string& name, Index out, Index in, bool conv1d = false) {
    if (conv1d) return src.template read_matrix<Scalar>(name + ".weight", in, out);
    return matrix<Scalar>(src.template read_matrix<Scalar>(name + ".weight", out, in).transpose());
  };
  auto bias = [&](const hf_tensors& src, bool on, const std::string& name, Index size) {
    return on ? src.template read_vector<Scalar>(name + ".bias", size) : vector<Scalar>();
  };
  auto norm = [&](const hf_tensors& src, const std::string& name, Index width = 0) {
    if (width == 0) width = d;
    vector<Scalar> w = src.template read_vector<Scalar>(name + ".weight", width);
    if (s.norm_plus_one) w.array() += Scalar(1);  // (1 + w) in the dtype, as Gemma computes it
    if (s.norm == norm_kind::rms_norm) return normalization<Scalar>::rms(std::move(w), s.eps);
    return normalization<Scalar>::layer(std::move(w), bias(src, s.norm_bias, name, width), s.eps);
  };

  transformer_weights<Scalar> w;
  w.token_embedding = t.template read_matrix<Scalar>(embed, s.vocab, d);
  if (s.embedding_scale) w.embedding_scale = Scalar(std::sqrt(double(d)));
  if (s.learned_positions) {
    const matrix<Scalar> table = t.template read_matrix<Scalar>(str(n.positions) + ".weight", s.position_rows, d);
    w.position_embedding = table.bottomRows(s.position_rows - s.position_offset);
    if (s.token_type_rows > 0) {  // every token has type 0: its embedding joins each position's
      const matrix<Scalar> types = t.template read_matrix<Scalar>(str(n.token_types) + ".weight", s.token_type_rows, d);
      w.position_embedding.rowwise() += types.row(0);
    }
  }
  if (s.embedding_norm) w.embedding_norm = norm(t, n.embedding_norm);

  for (Index i = 0; i < s.layers; ++i) {
    const std::string p = layer_name(n.layer, i);
    block_weights<Scalar> b;
    b.layout = s.layout;
    b.causal = s.causal;
    b.attention_norm = norm(t, p + n.attention_norm);
    b.mlp_norm = norm(t, p + n.mlp_norm);
    if (s.output_norms) {
      b.attention_output_norm = norm(t, p + n.attention_output_norm);
      b.mlp_output_norm = norm(t, p + n.mlp_output_norm);
    }
    attention_config& c = b.attention;
    c.d_model = d;
    c.n_heads = s.heads;
    c.n_kv_heads = s.kv_heads;
    c.head_dim = hd;
    c.causal = s.causal;
    c.bias = s.qkv_bias || s.o_bias;
    c.rotary = s.rotary;
    c.rotary_base = s.rope_theta;
    c.rotary_dim = s.rotary_dim;
    c.rotary_scale = s.rope_scaling;
    c.softcap = s.softcap;
    c.scale = s.scale;
    if (s.scale_by_inverse_layer) c.scale = c.logit_scale() / double(i + 1);
    c.sliding_window = s.sliding_window.empty() ? 0 : s.sliding_window[std::size_t(i)];
    c.qk_norm = s.qk_norm;
    c.qk_norm_eps = s.eps;
    attention_weights<Scalar>& a = b.attention_projections;
    const std::string q = p + n.q;
    switch (n.qkv) {
      case qkv_layout::separate:
        a.w_q = linear(t, q, q_width, d);
        a.w_k = linear(t, p + n.k, kv_width, d);
        a.w_v = linear(t, p + n.v, kv_width, d);
        a.b_q = bias(t, s.qkv_bias, q, q_width);
        a.b_k = bias(t, s.qkv_bias, p + n.k, kv_width);
        a.b_v = bias(t, s.qkv_bias, p + n.v, kv_width);
        break;
      case qkv_layout::concatenated: {
        const matrix<Scalar> fused = linear(t, q, q_width + 2 * kv_width, d);  // [d x (q k v)] after transposing
        a.w_q = fused.leftCols(q_width);
        a.w_k = fused.middleCols(q_width, kv_width);
        a.w_v = fused.rightCols(kv_width);
        if (s.qkv_bias) {
          const vector<Scalar> fb = bias(t, true, q, q_width + 2 * kv_width);
          a.b_q = fb.head(q_width);
          a.b_k = fb.segment(q_width, kv_width);
          a.b_v = fb.tail(kv_width);
        }
        break;
      }
      case qkv_layout::conv1d: {
        const matrix<Scalar> fused = linear(t, q, q_width + 2 * kv_width, d, true);
        a.w_q = fused.leftCols(q_width);
        a.w_k = fused.middleCols(q_width, kv_width);
        a.w_v = fused.rightCols(kv_width);
        if (s.qkv_bias) {
          const vector<Scalar> fb = bias(t, true, q, q_width + 2 * kv_width);
          a.b_q = fb.head(q_width);
          a.b_k = fb.segment(q_width, kv_width);
          a.b_v = fb.tail(kv_width);
        }
        break;
      }
      case qkv_layout::per_head: {  // columns h*3*hd + {0, hd, 2hd} + j (multi-head only: NeoX has no GQA)
        const matrix<Scalar> fused = linear(t, q, 3 * q_width, d);
        const vector<Scalar> fb = bias(t, s.qkv_bias, q, 3 * q_width);
        a.w_q.resize(d, q_width);
        a.w_k.resize(d, q_width);
        a.w_v.resize(d, q_width);
        if (s.qkv_bias) {
          a.b_q.resize(q_width);
          a.b_k.resize(q_width);
          a.b_v.resize(q_width);
        }
        for (Index h = 0; h < s.heads; ++h) {
          a.w_q.middleCols(h * hd, hd) = fused.middleCols(3 * h * hd, hd);
          a.w_k.middleCols(h * hd, hd) = fused.middleCols(3 * h * hd + hd, hd);
          a.w_v.middleCols(h * hd, hd) = fused.middleCols(3 * h * hd + 2 * hd, hd);
          if (s.qkv_bias) {
            a.b_q.segment(h * hd, hd) = fb.segment(3 * h * hd, hd);
            a.b_k.segment(h * hd, hd) = fb.segment(3 * h * hd + hd, hd);
            a.b_v.segment(h * hd, hd) = fb.segment(3 * h * hd + 2 * hd, hd);
          }
        }
        break;
      }
    }
    a.w_o = linear(t, p + n.o, d, q_width, n.o_conv1d);
    a.b_o = bias(t, s.o_bias, p + n.o, d);
    // The kernel's biases come all or none: a family with biases on some projections gets zeros on the others.
    if (c.bias) {
      if (a.b_q.size() == 0) a.b_q = vector<Scalar>::Zero(q_width);
      if (a.b_k.size() == 0) a.b_k = vector<Scalar>::Zero(kv_width);
      if (a.b_v.size() == 0) a.b_v = vector<Scalar>::Zero(kv_width);
      if (a.b_o.size() == 0) a.b_o = vector<Scalar>::Zero(d);
    }
    if (s.qk_norm) {
      a.q_norm = norm(t, p + n.q_norm, hd).weight;
      a.k_norm = norm(t, p + n.k_norm, hd).weight;
    }
    mlp<Scalar>& m = b.feed_forward;
    m.kind = s.mlp;
    m.activation = s.activation;
    if (s.mlp == mlp_kind::gated && *n.gate_up != '\0') {
      const matrix<Scalar> fused = linear(t, p + n.gate_up, 2 * ff, d);  // rows: gate, then up
      m.w_gate = fused.leftCols(ff);
      m.w_in = fused.rightCols(ff);
    } else {
      if (s.mlp == mlp_kind::gated) {
        m.w_gate = linear(t, p + n.gate, ff, d);
        m.b_gate = bias(t, s.mlp_bias, p + n.gate, ff);
      }
      m.w_in = linear(t, p + n.up, ff, d, n.o_conv1d);
      m.b_in = bias(t, s.mlp_bias, p + n.up, ff);
    }
    m.w_out = linear(t, p + n.down, d, ff, n.o_conv1d);
    m.b_out = bias(t, s.mlp_bias, p + n.down, d);
    w.blocks.push_back(std::move(b));
  }
  if (s.final_norm) w.final_norm = norm(t, n.final_norm);
  if (s.head_transform) {
    w.head_transform.weight = linear(root, n.head_dense, d, d);
    w.head_transform.bias = bias(root, true, n.head_dense, d);
    w.head_transform.activation = s.activation;
    w.head_transform.norm = norm(root, n.head_norm);
  }
  if (!s.tied) w.lm_head = linear(root, n.head, s.vocab, d);
  if (s.lm_head_bias) w.lm_head_bias = root.template read_vector<Scalar>(n.head_bias, s.vocab);
  w.final_logit_softcap = s.final_softcap;
  return transformer<Scalar>(std::move(w));
}

}  // namespace detail
}  // namespace headlens
