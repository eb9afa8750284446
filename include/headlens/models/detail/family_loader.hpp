#pragma once
/// \file
/// Internal: the one loader behind every Hugging Face family. A family is data: `family_settings` (the switches of
/// the block and the model, read from config.json by the family's entry in models/families.hpp, or from
/// `gpt2_config` / `llama_config`) and `family_tensor_names` (where each weight sits in the checkpoint). From them
/// `build_transformer` reads, checks and converts every tensor into `transformer_weights` (models/transformer.hpp).
/// Every error names the tensor (and its expected shape) or the setting at fault.

#include <algorithm>
#include <cmath>
#include <cstdint>
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
  // A pruned checkpoint (models/head_pruning.hpp): query and kv heads per layer, or empty when every layer has
  // `heads` and `kv_heads`. `head_dim` stays the unpruned model's.
  std::vector<Index> layer_heads, layer_kv_heads;
  std::string layer_heads_source;  ///< the config.json keys they came from, for messages

  /// Query heads of layer i.
  Index heads_of(Index i) const { return layer_heads.empty() ? heads : layer_heads[std::size_t(i)]; }
  /// Key/value heads of layer i.
  Index kv_heads_of(Index i) const { return layer_kv_heads.empty() ? kv_heads : layer_kv_heads[std::size_t(i)]; }
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

/// config.json keys of a pruned checkpoint (models/head_pruning.hpp): query and key/value heads per layer.
inline constexpr const char* heads_per_layer_key = "headlens_heads_per_layer";
inline constexpr const char* kv_heads_per_layer_key = "headlens_kv_heads_per_layer";

/// The head counts of each layer of a checkpoint, as config.json declares them.
struct layer_head_counts {
  std::vector<Index> heads, kv_heads;       ///< per layer; empty when config.json declares no pruning
  std::vector<std::vector<Index>> removed;  ///< per layer, `pruned_heads`' original heads (empty without it)
  std::string source;                       ///< the keys they came from, for messages
};

/// Reads a pruned checkpoint's head counts from config.json: `headlens_heads_per_layer` and
/// `headlens_kv_heads_per_layer` (arrays of one count per layer; the kv counts may be left out when the model has
/// as many kv heads as heads), and, where
/// `pruned_heads_convention` (GPT-2, BERT, RoBERTa), Hugging Face's `pruned_heads` ({"layer": [original heads
/// removed]}, the weights correspondingly smaller). `heads`, `kv_heads` are the unpruned model's. When both are
/// given they must agree. An empty `pruned_heads` ({}) means no pruning in every family. Throws `argument_error`
/// naming the key, its value and what was expected.
inline layer_head_counts read_layer_heads(const hf_config& c, Index layers, Index heads, Index kv_heads,
                                          bool pruned_heads_convention) {
  layer_head_counts out;
  const nlohmann::json pruned = c.value("pruned_heads");
  if (!pruned.is_null() && !(pruned.is_object() && pruned.empty())) {
    if (!pruned_heads_convention) {
      c.bad("pruned_heads", "is " + pruned.dump() +
                                ", expected none or {} for this model_type (a pruned checkpoint "
                                "declares " +
                                heads_per_layer_key + " instead)");
    }
    if (!pruned.is_object()) c.bad("pruned_heads", "is " + pruned.dump() + ", expected an object {\"layer\": [heads]}");
    out.removed.assign(std::size_t(layers), {});
    for (const auto& item : pruned.items()) {
      const std::string& key = item.key();
      Index layer = -1;
      if (!key.empty() && key.size() <= 9 && key.find_first_not_of("0123456789") == std::string::npos) {
        layer = Index(std::stoll(key));
      }
      if (layer < 0 || layer >= layers) {
        c.bad("pruned_heads",
              "has layer \"" + key + "\", expected a layer index from 0 to " + std::to_string(layers - 1));
      }
      const nlohmann::json& list = item.value();
      if (!list.is_array()) {
        c.bad("pruned_heads", "has " + list.dump() + " for layer " + key + ", expected an array of head indices");
      }
      std::vector<Index>& removed = out.removed[std::size_t(layer)];
      for (const nlohmann::json& h : list) {
        if (!h.is_number_integer() || h.get<std::int64_t>() < 0 || h.get<std::int64_t>() >= heads) {
          c.bad("pruned_heads", "has head " + h.dump() + " in layer " + key + ", expected a head index from 0 to " +
                                    std::to_string(heads - 1));
        }
        const Index head = Index(h.get<std::int64_t>());
        if (std::find(removed.begin(), removed.end(), head) != removed.end()) {
          c.bad("pruned_heads", "names head " + h.dump() + " of layer " + key + " twice, expected each head once");
        }
        removed.push_back(head);
      }
      if (Index(removed.size()) >= heads) {
        c.bad("pruned_heads",
              "removes all " + std::to_string(heads) + " heads of layer " + key + ", expected at least one left");
      }
      std::sort(removed.begin(), removed.end());
    }
    out.heads.resize(std::size_t(layers));
    for (Index l = 0; l < layers; ++l) out.heads[std::size_t(l)] = heads - Index(out.removed[std::size_t(l)].size());
    out.source = "pruned_heads";
  }
  const auto counts = [&](const char* key, Index most) {
    const nlohmann::json v = c.value(key);
    if (!v.is_array() || Index(v.size()) != layers) {
      c.bad(key, "is " + v.dump() + ", expected an array of " + std::to_string(layers) + " counts (one per layer)");
    }
    std::vector<Index> n;
    for (std::size_t l = 0; l < v.size(); ++l) {
      if (!v[l].is_number_integer() || v[l].get<std::int64_t>() < 1 || v[l].get<std::int64_t>() > most) {
        c.bad(key, "has " + v[l].dump() + " at layer " + std::to_string(l) + ", expected a count from 1 to " +
                       std::to_string(most));
      }
      n.push_back(Index(v[l].get<std::int64_t>()));
    }
    return n;
  };
  if (c.has(heads_per_layer_key)) {
    const std::vector<Index> n = counts(heads_per_layer_key, heads);
    if (!out.heads.empty() && n != out.heads) {
      std::string want;
      for (Index h : out.heads) want += (want.empty() ? "" : ", ") + std::to_string(h);
      c.bad(heads_per_layer_key,
            "is " + c.value(heads_per_layer_key).dump() + ", expected [" + want + "] as pruned_heads says");
    }
    out.heads = n;
    out.source = out.source.empty() ? heads_per_layer_key : out.source + " and " + heads_per_layer_key;
  }
  if (c.has(kv_heads_per_layer_key)) {
    if (out.heads.empty()) {
      c.bad(kv_heads_per_layer_key, "is set without " + std::string(heads_per_layer_key) +
                                        " or pruned_heads, "
                                        "expected both or neither");
    }
    out.kv_heads = counts(kv_heads_per_layer_key, heads);
    out.source += std::string(" and ") + kv_heads_per_layer_key;
  } else if (!out.heads.empty()) {
    if (kv_heads != heads) {
      c.bad(kv_heads_per_layer_key, "is missing, expected it beside " + out.source + " in a model with " +
                                        std::to_string(kv_heads) + " kv heads for " + std::to_string(heads) + " heads");
    }
    out.kv_heads = out.heads;
  }
  for (std::size_t l = 0; l < out.heads.size(); ++l) {
    if (out.heads[l] % out.kv_heads[l] != 0) {
      c.bad(kv_heads_per_layer_key, "has " + std::to_string(out.kv_heads[l]) + " at layer " + std::to_string(l) +
                                        ", expected a divisor of the layer's " + std::to_string(out.heads[l]) +
                                        " heads");
    }
  }
  return out;
}

/// Sets `s.layer_heads` and `s.layer_kv_heads` from config.json (see `read_layer_heads`).
inline void apply_layer_heads(const hf_config& c, family_settings& s, bool pruned_heads_convention) {
  layer_head_counts counts = read_layer_heads(c, s.layers, s.heads, s.kv_heads, pruned_heads_convention);
  s.layer_heads = std::move(counts.heads);
  s.layer_kv_heads = std::move(counts.kv_heads);
  s.layer_heads_source = "config.json's " + counts.source;
}

/// `pattern` with "{i}" replaced by `layer`.
inline std::string layer_name(const std::string& pattern, Index layer) {
  std::string out = pattern;
  const std::size_t at = out.find("{i}");
  if (at != std::string::npos) out.replace(at, 3, std::to_string(layer));
  return out;
}

/// Reads and converts every tensor of the checkpoint `files` as `s` and `n` say. Throws `format_error` for a
/// missing tensor or an unsupported dtype, `shape_error` for a misshapen one (each naming the tensor and the
/// expected shape; in a pruned checkpoint also the layer's head counts and the config.json keys they came from).
template <class Scalar>
transformer_weights<Scalar> build_transformer_weights(const family_settings& s, const family_tensor_names& n,
                                                      const std::vector<const safetensors_file*>& files) {
  const hf_tensors root(files, "", s.name);
  const std::string embed = std::string(n.embed) + ".weight";
  const bool prefixed = root.has(n.prefix + embed) || (n.prefix_by_default && !root.has(embed));
  const hf_tensors t(files, prefixed ? n.prefix : "", s.name);
  const Index d = s.d, hd = s.head_dim, ff = s.ff;
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
    const Index heads = s.heads_of(i), kv_heads = s.kv_heads_of(i);
    const Index q_width = heads * hd, kv_width = kv_heads * hd;
    attention_config& c = b.attention;
    c.d_model = d;
    c.n_heads = heads;
    c.n_kv_heads = kv_heads;
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
    try {
      switch (n.qkv) {
        case qkv_layout::separate:
          a.w_q = linear(t, q, q_width, d);
          a.w_k = linear(t, p + n.k, kv_width, d);
          a.w_v = linear(t, p + n.v, kv_width, d);
          a.b_q = bias(t, s.qkv_bias, q, q_width);
          a.b_k = bias(t, s.qkv_bias, p + n.k, kv_width);
          a.b_v = bias(t, s.qkv_bias, p + n.v, kv_width);
          break;
        case qkv_layout::concatenated:  // one [(q k v) x d] linear, read as [d x (q k v)] after transposing
        case qkv_layout::conv1d: {      // GPT-2's Conv1D, already [d x (q k v)]
          const matrix<Scalar> fused = linear(t, q, q_width + 2 * kv_width, d, n.qkv == qkv_layout::conv1d);
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
          for (Index h = 0; h < heads; ++h) {
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
    } catch (const shape_error& e) {
      if (s.layer_heads.empty()) throw;
      fail<shape_error>(unprefixed(e), " (layer ", i, " has ", heads, " heads and ", kv_heads, " kv heads by ",
                        s.layer_heads_source, ")");
    }
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
  return w;
}

/// `build_transformer_weights` made into a `transformer` (whose constructor's errors it throws too).
template <class Scalar>
transformer<Scalar> build_transformer(const family_settings& s, const family_tensor_names& n,
                                      const std::vector<const safetensors_file*>& files) {
  return transformer<Scalar>(build_transformer_weights<Scalar>(s, n, files));
}

}  // namespace detail
}  // namespace headlens
