#pragma once
/// \file
/// The model families headlens loads from a Hugging Face directory, as a table: each `model_type` of config.json
/// maps to how its config fields set the switches of the block (`detail::family_settings`) and where its tensors
/// sit (`detail::family_tensor_names`); one loader (models/detail/family_loader.hpp) does the rest. Needs
/// nlohmann_json.
///
///   auto loaded = headlens::load_family<float>("path/to/Qwen2.5-0.5B");
///   headlens::matrix<float> logits = loaded.model.forward({9707, 1879});
///
/// | model_type        | what differs from Llama                                                              |
/// |-------------------|--------------------------------------------------------------------------------------|
/// | llama             | rope_scaling: null, {"rope_type"/"type": "linear", factor}, or "llama3" (3.1, 3.2)     |
/// | mistral           | sliding_window (null or an int) on every layer                                        |
/// | qwen2             | q, k, v biases (no o bias); sliding windows when use_sliding_window (max_window_layers) |
/// | qwen3             | q_norm, k_norm (RMSNorm per head, before rotary); head_dim set apart from hidden_size  |
/// | gemma             | (1 + w) RMSNorm, embeddings times sqrt(hidden_size), gelu_pytorch_tanh gated MLP, tied |
/// | gemma2            | gemma + norms after attention and MLP, attn/final logit soft-capping, sliding window on |
/// |                   | even layers (or as layer_types says), scale query_pre_attn_scalar^-0.5                 |
/// | phi3              | fused qkv_proj and gate_up_proj, partial_rotary_factor, sliding_window               |
/// | gpt2              | models/gpt2.hpp: LayerNorm, learned positions, Conv1D c_attn, GELU MLP                |
/// | gpt_neox          | LayerNorm, per-head fused query_key_value, rotary_pct (partial rotary),               |
/// |                   | use_parallel_residual, embed_out head                                                  |
/// | opt               | LayerNorm, learned positions offset by 2, ReLU MLP (fc1, fc2), tied head               |
/// | bert, roberta     | encoders: bidirectional, post-LN, token type 0 added, embeddings LayerNorm, the MLM    |
/// |                   | head (dense, GELU, LayerNorm, tied decoder + bias); RoBERTa's positions start at      |
/// |                   | pad_token_id + 1                                                                       |
/// Not supported, each an `argument_error` naming the field: rope_scaling types other than linear and llama3
/// (longrope, yarn, dynamic), OPT's word_embed_proj_dim != hidden_size and do_layer_norm_before false, NeoX without
/// parallel residual, relative position types in BERT, hidden activations other than each family's.
/// A token equal to RoBERTa's pad_token_id is positioned as any other token (RoBERTa would give it the padding
/// position).
/// Pruned checkpoints (models/head_pruning.hpp): every family reads per-layer head counts from
/// `headlens_heads_per_layer` / `headlens_kv_heads_per_layer`; GPT-2, BERT and RoBERTa also from Hugging Face's
/// `pruned_heads` ({"layer": [heads removed]}); see `detail::read_layer_heads`.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/models/detail/family_loader.hpp"
#include "headlens/models/detail/hf_checkpoint.hpp"
#include "headlens/models/gpt2.hpp"
#include "headlens/models/llama.hpp"

namespace headlens {
namespace detail {

// ---- config.json readers shared by families ----------------------------------------------------------------------

inline activation_kind activation_named(const hf_config& c, const std::string& key, const std::string& fallback,
                                        std::initializer_list<const char*> allowed) {
  const std::string act = c.string_or(key, fallback);
  std::string list;
  for (const char* a : allowed) {
    if (act == a) {
      if (act == "silu" || act == "swish") return activation_kind::silu;
      if (act == "relu") return activation_kind::relu;
      if (act == "gelu") return activation_kind::gelu_erf;
      return activation_kind::gelu_tanh;  // gelu_new, gelu_pytorch_tanh, gelu_fast
    }
    list += std::string(list.empty() ? "" : ", ") + a;
  }
  c.bad(key, "is \"" + act + "\", expected one of " + list);
}

inline rotary_scaling rope_scaling_of(const hf_config& c) {
  rotary_scaling r;
  if (!c.has("rope_scaling")) return r;
  const nlohmann::json v = c.value("rope_scaling");
  const std::string shown = v.dump();
  if (!v.is_object()) c.bad("rope_scaling", "is " + shown + ", expected null or an object");
  const hf_config sc = hf_config::from_json(v, c.path() + ": rope_scaling");
  std::string type = sc.string_or("rope_type", sc.string_or("type", ""));
  if (type == "default") return r;
  if (type != "linear" && type != "llama3") {
    c.bad("rope_scaling", "is " + shown + ", expected rope_type \"linear\" or \"llama3\" (others are not supported)");
  }
  r.type = type == "linear" ? rotary_scaling::kind::linear : rotary_scaling::kind::llama3;
  r.factor = sc.number_or("factor", 0);
  if (!(r.factor > 0)) c.bad("rope_scaling", "is " + shown + ", expected a positive \"factor\"");
  if (r.type == rotary_scaling::kind::llama3) {
    r.low_freq_factor = sc.number_or("low_freq_factor", 1.0);
    r.high_freq_factor = sc.number_or("high_freq_factor", 4.0);
    r.original_max_positions = sc.number_or("original_max_position_embeddings", 8192.0);
    if (!(r.low_freq_factor > 0 && r.high_freq_factor > r.low_freq_factor && r.original_max_positions > 0)) {
      c.bad(
          "rope_scaling",
          "is " + shown + ", expected 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0");
    }
  }
  return r;
}

inline Index sliding_window_of(const hf_config& c) {
  return c.has("sliding_window") ? c.positive("sliding_window") : 0;
}

/// Per-layer windows from `layer_types` ("sliding_attention" / "full_attention") when config.json has them, else
/// from `is_sliding(layer)`.
template <class IsSliding>
std::vector<Index> layer_windows(const hf_config& c, Index layers, Index window, IsSliding&& is_sliding) {
  std::vector<Index> out(std::size_t(layers), 0);
  if (window == 0) return out;
  const nlohmann::json types = c.value("layer_types");
  if (!types.is_null()) {
    if (!types.is_array() || Index(types.size()) != layers) {
      c.bad("layer_types", "is " + types.dump() + ", expected one entry per layer (" + std::to_string(layers) + ")");
    }
    for (Index i = 0; i < layers; ++i) {
      const nlohmann::json& t = types[std::size_t(i)];
      if (t == "sliding_attention") {
        out[std::size_t(i)] = window;
      } else if (t != "full_attention") {
        c.bad("layer_types", "has " + t.dump() + " at " + std::to_string(i) +
                                 ", expected \"sliding_attention\" or \"full_attention\"");
      }
    }
    return out;
  }
  for (Index i = 0; i < layers; ++i) out[std::size_t(i)] = is_sliding(i) ? window : 0;
  return out;
}

inline void check_heads(const hf_config& c, family_settings& s, bool head_dim_key) {
  if (s.heads % s.kv_heads != 0) {
    c.bad("num_attention_heads", "is " + std::to_string(s.heads) +
                                     ", expected a multiple of num_key_value_heads = " + std::to_string(s.kv_heads));
  }
  if (s.head_dim == 0) {
    if (s.d % s.heads != 0) {
      c.bad("hidden_size", "is " + std::to_string(s.d) + ", expected a multiple of num_attention_heads = " +
                               std::to_string(s.heads) + (head_dim_key ? " (or a head_dim)" : ""));
    }
    s.head_dim = s.d / s.heads;
  }
}

// ---- the families ------------------------------------------------------------------------------------------------

/// Llama and its relatives (mistral, qwen2, qwen3, gemma, gemma2, phi3).
inline family_settings llama_like_settings(const hf_config& c, const std::string& type) {
  family_settings s;
  const bool gemma = type == "gemma" || type == "gemma2";
  s.name = type == "llama"     ? "Llama"
           : type == "mistral" ? "Mistral"
           : type == "qwen2"   ? "Qwen2"
           : type == "qwen3"   ? "Qwen3"
           : type == "gemma"   ? "Gemma"
           : type == "gemma2"  ? "Gemma 2"
                               : "Phi-3";
  s.vocab = c.positive("vocab_size");
  s.d = c.positive("hidden_size");
  s.ff = c.positive("intermediate_size");
  s.layers = c.positive("num_hidden_layers");
  s.heads = c.positive("num_attention_heads");
  s.kv_heads = c.positive_or("num_key_value_heads", s.heads);
  s.head_dim = c.positive_or("head_dim", 0);
  check_heads(c, s, true);
  s.eps = c.number_or("rms_norm_eps", 1e-6);
  s.rope_theta = c.number_or("rope_theta", 10000.0);
  if (!(s.rope_theta > 1)) c.bad("rope_theta", "is " + std::to_string(s.rope_theta) + ", expected above 1");
  s.rope_scaling = rope_scaling_of(c);
  s.max_tokens = c.positive_or("max_position_embeddings", 2048);
  s.tied = c.boolean_or("tie_word_embeddings", gemma);
  if (gemma) {
    // Gemma's MLP uses hidden_activation; old configs say hidden_act "gelu" and mean the tanh approximation.
    s.activation = activation_named(c, "hidden_activation", "gelu_pytorch_tanh",
                                    {"gelu_pytorch_tanh", "gelu_new", "gelu_fast", "gelu"});
    s.norm_plus_one = true;
    s.embedding_scale = true;
  } else {
    s.activation = activation_named(c, "hidden_act", "silu", {"silu", "swish"});
  }
  s.qkv_bias = s.o_bias = c.boolean_or("attention_bias", false);
  s.mlp_bias = c.boolean_or("mlp_bias", false);
  const Index window = sliding_window_of(c);
  if (type == "mistral" || type == "phi3") {
    s.sliding_window = layer_windows(c, s.layers, window, [](Index) { return true; });
  } else if (type == "qwen2" || type == "qwen3") {
    if (type == "qwen2") {
      s.qkv_bias = true;  // Qwen2 always has q, k, v biases and no o bias
      s.o_bias = false;
    }
    const bool use = c.boolean_or("use_sliding_window", false);
    const Index from = c.positive_or("max_window_layers", s.layers);
    s.sliding_window = layer_windows(c, s.layers, use ? window : 0, [&](Index i) { return i >= from; });
  } else if (type == "gemma2") {
    s.sliding_window = layer_windows(c, s.layers, window, [](Index i) { return i % 2 == 0; });
  }
  if (type == "qwen3") s.qk_norm = true;
  if (type == "gemma2") {
    s.output_norms = true;
    s.softcap = c.number_or("attn_logit_softcapping", 0);
    s.final_softcap = c.number_or("final_logit_softcapping", 0);
    if (s.softcap < 0) c.bad("attn_logit_softcapping", "is " + std::to_string(s.softcap) + ", expected >= 0");
    if (s.final_softcap < 0)
      c.bad("final_logit_softcapping", "is " + std::to_string(s.final_softcap) + ", expected >= 0");
    const double scalar = c.number_or("query_pre_attn_scalar", double(s.head_dim));
    if (!(scalar > 0)) c.bad("query_pre_attn_scalar", "is " + std::to_string(scalar) + ", expected above 0");
    s.scale = 1.0 / std::sqrt(scalar);
  }
  if (type == "phi3") {
    const double fraction = c.number_or("partial_rotary_factor", 1.0);
    s.rotary_dim = Index(double(s.head_dim) * fraction);
    if (!(fraction > 0 && fraction <= 1) || s.rotary_dim < 2 || s.rotary_dim % 2 != 0) {
      c.bad("partial_rotary_factor", "is " + std::to_string(fraction) + ", expected a fraction of head_dim = " +
                                         std::to_string(s.head_dim) + " giving an even number of dims");
    }
  }
  if (s.head_dim % 2 != 0)
    c.bad("head_dim", "is " + std::to_string(s.head_dim) + ", expected an even number (rotary pairs)");
  return s;
}

inline family_tensor_names llama_like_names(const std::string& type) {
  family_tensor_names n;
  if (type == "gemma2") {
    n.attention_output_norm = "post_attention_layernorm";
    n.mlp_norm = "pre_feedforward_layernorm";
    n.mlp_output_norm = "post_feedforward_layernorm";
  }
  if (type == "phi3") {
    n.qkv = qkv_layout::concatenated;
    n.q = "self_attn.qkv_proj";
    n.gate_up = "mlp.gate_up_proj";
  }
  return n;
}

inline family_settings gpt2_family_settings(const hf_config& c, const std::string&) {
  return gpt2_settings(gpt2_config::from_config(c));
}

inline family_settings neox_settings(const hf_config& c, const std::string&) {
  family_settings s;
  s.name = "GPT-NeoX";
  s.vocab = c.positive("vocab_size");
  s.d = c.positive("hidden_size");
  s.ff = c.positive("intermediate_size");
  s.layers = c.positive("num_hidden_layers");
  s.heads = s.kv_heads = c.positive("num_attention_heads");
  check_heads(c, s, false);
  s.norm = norm_kind::layer_norm;
  s.norm_bias = true;
  s.eps = c.number_or("layer_norm_eps", 1e-5);
  s.layout = block_layout::parallel;
  if (!c.boolean_or("use_parallel_residual", true)) {
    c.bad("use_parallel_residual", "is false, expected true (the sequential GPT-NeoX variant is not supported)");
  }
  s.qkv_bias = s.o_bias = c.boolean_or("attention_bias", true);
  s.mlp_bias = true;
  s.rope_theta = c.number_or("rotary_emb_base", c.number_or("rope_theta", 10000.0));
  const double pct = c.number_or("rotary_pct", c.number_or("partial_rotary_factor", 1.0));
  s.rotary_dim = Index(double(s.head_dim) * pct);
  if (!(pct > 0 && pct <= 1) || s.rotary_dim < 2 || s.rotary_dim % 2 != 0) {
    c.bad("rotary_pct", "is " + std::to_string(pct) + ", expected a fraction of head_dim = " +
                            std::to_string(s.head_dim) + " giving an even number of dims");
  }
  s.rope_scaling = rope_scaling_of(c);
  s.mlp = mlp_kind::plain;
  s.activation =
      activation_named(c, "hidden_act", "gelu", {"gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "relu"});
  s.tied = c.boolean_or("tie_word_embeddings", false);
  s.max_tokens = c.positive_or("max_position_embeddings", 2048);
  return s;
}

inline family_tensor_names neox_names() {
  family_tensor_names n;
  n.prefix = "gpt_neox.";
  n.embed = "embed_in";
  n.qkv = qkv_layout::per_head;
  n.q = "attention.query_key_value";
  n.o = "attention.dense";
  n.up = "mlp.dense_h_to_4h";
  n.gate = "";
  n.down = "mlp.dense_4h_to_h";
  n.final_norm = "final_layer_norm";
  n.head = "embed_out";
  return n;
}

inline family_settings opt_settings(const hf_config& c, const std::string&) {
  family_settings s;
  s.name = "OPT";
  s.vocab = c.positive("vocab_size");
  s.d = c.positive("hidden_size");
  s.ff = c.positive("ffn_dim");
  s.layers = c.positive("num_hidden_layers");
  s.heads = s.kv_heads = c.positive("num_attention_heads");
  check_heads(c, s, false);
  if (c.positive_or("word_embed_proj_dim", s.d) != s.d) {
    c.bad("word_embed_proj_dim", "is " + c.value("word_embed_proj_dim").dump() + ", expected hidden_size = " +
                                     std::to_string(s.d) + " (project_in/project_out are not supported)");
  }
  if (!c.boolean_or("do_layer_norm_before", true)) {
    c.bad("do_layer_norm_before", "is false, expected true (post-LN OPT, e.g. opt-350m, is not supported)");
  }
  if (!c.boolean_or("layer_norm_elementwise_affine", true)) {
    c.bad("layer_norm_elementwise_affine", "is false, expected true");
  }
  s.norm = norm_kind::layer_norm;
  s.norm_bias = true;
  s.eps = 1e-5;
  s.qkv_bias = s.o_bias = s.mlp_bias = c.boolean_or("enable_bias", true);
  s.norm_bias = true;
  s.rotary = false;
  s.mlp = mlp_kind::plain;
  s.activation = activation_named(c, "activation_function", "relu", {"relu", "gelu", "gelu_new"});
  s.learned_positions = true;
  s.position_offset = 2;  // OPTLearnedPositionalEmbedding's offset
  const Index positions = c.positive("max_position_embeddings");
  if (positions > (Index(1) << 40)) {
    c.bad("max_position_embeddings", "is " + std::to_string(positions) + ", expected at most 2^40");
  }
  s.position_rows = positions + s.position_offset;
  s.max_tokens = s.position_rows - s.position_offset;
  s.tied = c.boolean_or("tie_word_embeddings", true);
  return s;
}

inline family_tensor_names opt_names() {
  family_tensor_names n;
  n.prefix = "model.decoder.";
  n.positions = "embed_positions";
  n.attention_norm = "self_attn_layer_norm";
  n.o = "self_attn.out_proj";
  n.mlp_norm = "final_layer_norm";
  n.up = "fc1";
  n.gate = "";
  n.down = "fc2";
  n.final_norm = "final_layer_norm";
  return n;
}

inline family_settings encoder_settings(const hf_config& c, const std::string& type) {
  family_settings s;
  const bool roberta = type != "bert";
  s.name = roberta ? "RoBERTa" : "BERT";
  s.vocab = c.positive("vocab_size");
  s.d = c.positive("hidden_size");
  s.ff = c.positive("intermediate_size");
  s.layers = c.positive("num_hidden_layers");
  s.heads = s.kv_heads = c.positive("num_attention_heads");
  check_heads(c, s, false);
  const std::string positions = c.string_or("position_embedding_type", "absolute");
  if (positions != "absolute") {
    c.bad("position_embedding_type",
          "is \"" + positions + "\", expected \"absolute\" (relative keys are not supported)");
  }
  s.norm = norm_kind::layer_norm;
  s.norm_bias = true;
  s.eps = c.number_or("layer_norm_eps", 1e-12);
  s.layout = block_layout::post_norm;
  s.causal = false;
  s.qkv_bias = s.o_bias = s.mlp_bias = true;
  s.rotary = false;
  s.mlp = mlp_kind::plain;
  s.activation = activation_named(c, "hidden_act", "gelu", {"gelu", "gelu_new", "relu"});
  s.learned_positions = true;
  s.position_rows = c.positive("max_position_embeddings");
  if (roberta) {
    const nlohmann::json pad = c.value("pad_token_id");
    const std::int64_t p = pad.is_number_integer() ? pad.get<std::int64_t>() : 1;
    if (p < 0 || p >= s.position_rows - 1) {
      c.bad("pad_token_id",
            "is " + pad.dump() + ", expected 0 <= id < max_position_embeddings - 1 (positions start after it)");
    }
    s.position_offset = Index(p) + 1;
  }
  s.max_tokens = s.position_rows - s.position_offset;
  s.token_type_rows = c.positive_or("type_vocab_size", 2);
  s.embedding_norm = true;
  s.final_norm = false;
  s.tied = true;
  s.head_transform = true;
  s.lm_head_bias = true;
  return s;
}

inline family_tensor_names encoder_names(const std::string& type) {
  family_tensor_names n;
  const bool roberta = type != "bert";
  n.prefix = roberta ? "roberta." : "bert.";
  n.embed = "embeddings.word_embeddings";
  n.positions = "embeddings.position_embeddings";
  n.token_types = "embeddings.token_type_embeddings";
  n.embedding_norm = "embeddings.LayerNorm";
  n.layer = "encoder.layer.{i}.";
  n.q = "attention.self.query";
  n.k = "attention.self.key";
  n.v = "attention.self.value";
  n.o = "attention.output.dense";
  n.attention_norm = "attention.output.LayerNorm";  // post-norm: after the attention's residual add
  n.up = "intermediate.dense";
  n.gate = "";
  n.down = "output.dense";
  n.mlp_norm = "output.LayerNorm";
  n.head_dense = roberta ? "lm_head.dense" : "cls.predictions.transform.dense";
  n.head_norm = roberta ? "lm_head.layer_norm" : "cls.predictions.transform.LayerNorm";
  n.head_bias = roberta ? "lm_head.bias" : "cls.predictions.bias";
  return n;
}

}  // namespace detail

/// One row of the family table.
struct model_family_entry {
  const char* model_type;  ///< config.json's `model_type`
  std::function<detail::family_settings(const detail::hf_config&, const std::string&)> settings;
  std::function<detail::family_tensor_names(const std::string&)> names;
  bool bos_by_default;  ///< whether the family's own tokenizer begins a sequence with bos_token_id
};

/// Every family `load_family` knows, by `model_type`.
inline const std::vector<model_family_entry>& model_family_table() {
  using namespace detail;
  static const std::vector<model_family_entry> table = {
      {"gpt2", gpt2_family_settings, [](const std::string&) { return gpt2_tensor_names(); }, false},
      {"llama", llama_like_settings, llama_like_names, true},
      {"mistral", llama_like_settings, llama_like_names, true},
      {"qwen2", llama_like_settings, llama_like_names, false},
      {"qwen3", llama_like_settings, llama_like_names, false},
      {"gemma", llama_like_settings, llama_like_names, true},
      {"gemma2", llama_like_settings, llama_like_names, true},
      {"phi3", llama_like_settings, llama_like_names, true},
      {"gpt_neox", neox_settings, [](const std::string&) { return neox_names(); }, false},
      {"opt", opt_settings, [](const std::string&) { return opt_names(); }, true},
      {"bert", encoder_settings, encoder_names, false},
      {"roberta", encoder_settings, encoder_names, false},
  };
  return table;
}

/// The table's row for config.json's `model_type`. Throws `argument_error` naming the value and the known types.
inline const model_family_entry& model_family_of(const detail::hf_config& c) {
  const std::string type = c.string_or("model_type", "");
  std::string known;
  for (const model_family_entry& e : model_family_table()) {
    if (type == e.model_type) return e;
    known += std::string(known.empty() ? "" : ", ") + e.model_type;
  }
  c.bad("model_type", (c.has("model_type") ? "is \"" + type + "\"" : std::string("is missing")) +
                          ", expected one of the families headlens can load: " + known);
}

/// A loaded checkpoint: its transformer and the settings it was built with.
template <class Scalar>
struct family_model {
  std::string model_type;
  detail::family_settings settings;
  transformer<Scalar> model;
  bool bos_by_default;
};

/// Whether the family's Hugging Face config has the `pruned_heads` convention (GPT-2, BERT, RoBERTa prune heads).
inline bool has_pruned_heads_convention(const std::string& model_type) {
  return model_type == "gpt2" || model_type == "bert" || model_type == "roberta";
}

/// The settings of the parsed config `c` by its family's row, per-layer head counts of a pruned checkpoint included
/// (`detail::read_layer_heads`). Throws `argument_error` naming the config.json key at fault.
inline detail::family_settings family_settings_of(const detail::hf_config& c) {
  const model_family_entry& e = model_family_of(c);
  detail::family_settings s = e.settings(c, e.model_type);
  detail::apply_layer_heads(c, s, has_pruned_heads_convention(e.model_type));
  return s;
}

/// The weights of the parsed config `c` read from the checkpoint `files`, before they become a `transformer`
/// (e.g. for `prune_heads`, models/head_pruning.hpp). Throws as `load_family`.
template <class Scalar>
transformer_weights<Scalar> load_family_weights(const detail::hf_config& c,
                                                const std::vector<const safetensors_file*>& files) {
  const model_family_entry& e = model_family_of(c);
  return detail::build_transformer_weights<Scalar>(family_settings_of(c), e.names(e.model_type), files);
}

/// As above, from `directory` (see `load_family(directory)`).
template <class Scalar>
transformer_weights<Scalar> load_family_weights(const std::string& directory) {
  const detail::hf_config c = detail::hf_config::read(directory + "/config.json");
  (void)model_family_of(c);
  const std::vector<safetensors_file> files = detail::open_checkpoint(directory);
  return load_family_weights<Scalar>(c, detail::file_pointers(files));
}

/// Builds the transformer of the parsed config `c` from the checkpoint `files`.
template <class Scalar>
family_model<Scalar> load_family(const detail::hf_config& c, const std::vector<const safetensors_file*>& files) {
  const model_family_entry& e = model_family_of(c);
  detail::family_settings s = family_settings_of(c);
  transformer<Scalar> model = detail::build_transformer<Scalar>(s, e.names(e.model_type), files);
  return family_model<Scalar>{e.model_type, std::move(s), std::move(model), e.bos_by_default};
}

/// Loads `directory`/config.json and its weights (model.safetensors, or the shards of
/// model.safetensors.index.json). Throws `io_error` when a file cannot be read, `format_error` for a malformed file,
/// a missing tensor or an unsupported dtype, `shape_error` for a misshapen tensor, `argument_error` naming the
/// config.json field at fault (an unknown model_type, an unsupported value).
template <class Scalar>
family_model<Scalar> load_family(const std::string& directory) {
  const detail::hf_config c = detail::hf_config::read(directory + "/config.json");
  const model_family_entry& e = model_family_of(c);  // before opening the weights: a clearer first error
  (void)e;
  const std::vector<safetensors_file> files = detail::open_checkpoint(directory);
  return load_family<Scalar>(c, detail::file_pointers(files));
}

}  // namespace headlens
