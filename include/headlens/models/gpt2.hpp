#pragma once
/// \file
/// GPT-2 checkpoints in Hugging Face's layout: a directory with `config.json` and `model.safetensors`, loaded into a
/// `transformer` (models/transformer.hpp) whose every head can be hooked. Needs nlohmann_json (for config.json),
/// so the umbrella header does not include it.
///
///   auto model = headlens::load_gpt2<float>("path/to/gpt2");
///   auto tokenizer = headlens::byte_level_bpe::from_files("path/to/gpt2/vocab.json", "path/to/gpt2/merges.txt");
///   headlens::matrix<float> logits = model.forward(tokenizer.encode_ids("Hello world"));   // [T x vocab]
///
/// What is read (keys with or without the `transformer.` prefix of `GPT2LMHeadModel`):
///   wte.weight [vocab, d], wpe.weight [n_positions, d], ln_f.{weight,bias} [d], and per layer i:
///   h.{i}.ln_1.{weight,bias}, h.{i}.attn.c_attn.weight [d, 3d] + bias [3d] (q, k, v side by side),
///   h.{i}.attn.c_proj.weight [d, d] + bias, h.{i}.ln_2.*, h.{i}.mlp.c_fc.weight [d, inner] + bias,
///   h.{i}.mlp.c_proj.weight [inner, d] + bias. GPT-2's Conv1D stores [in, out], already the `x W` convention.
///   The LM head is tied to wte unless config says `"tie_word_embeddings": false` (then lm_head.weight
///   [vocab, d]). Other tensors (the `attn.bias` / `attn.masked_bias` mask buffers) are ignored.
/// config.json keys: vocab_size, n_positions, n_embd, n_layer, n_head, n_inner (null = 4 n_embd),
///   layer_norm_epsilon, activation_function (gelu_new, gelu_pytorch_tanh, gelu_fast: tanh GELU; gelu: exact),
///   scale_attn_weights, scale_attn_by_inverse_layer_idx, tie_word_embeddings; a pruned checkpoint's
///   pruned_heads ({"layer": [heads removed]}, as `GPT2Model.prune_heads` leaves them) or headlens_heads_per_layer,
///   with c_attn [d, 3 * kept * head_dim] and c_proj [kept * head_dim, d] in that layer.
/// Errors: a missing tensor or one in a dtype other than F32, F16, BF16, F64 is a `format_error`, a wrong shape a
/// `shape_error`; each names the tensor and the expected shape. A bad config value is an `argument_error` naming
/// the key.

#include <string>
#include <vector>
#include <utility>

#include "headlens/io/safetensors.hpp"
#include "headlens/models/detail/family_loader.hpp"
#include "headlens/models/detail/hf_checkpoint.hpp"
#include "headlens/models/transformer.hpp"

namespace headlens {

/// The settings of a GPT-2 config.json that the forward pass depends on.
struct gpt2_config {
  Index vocab_size = 50257;
  Index n_positions = 1024;
  Index n_embd = 768;
  Index n_layer = 12;
  Index n_head = 12;
  Index n_inner = 0;  ///< 0 means 4 * n_embd
  double layer_norm_epsilon = 1e-5;
  activation_kind activation = activation_kind::gelu_tanh;
  bool scale_attn_weights = true;                ///< divide scores by sqrt(head_dim)
  bool scale_attn_by_inverse_layer_idx = false;  ///< also divide by (layer + 1)
  bool tie_word_embeddings = true;
  /// A pruned checkpoint's heads per layer (from `pruned_heads` or `headlens_heads_per_layer`); empty: n_head in
  /// every layer.
  std::vector<Index> heads_per_layer;

  /// n_inner with the default applied.
  Index inner() const noexcept { return n_inner > 0 ? n_inner : 4 * n_embd; }

  /// Reads config.json. Throws `io_error`, `format_error` (not JSON), `argument_error` naming a key that is missing,
  /// has the wrong type, or asks for something not supported (an unknown activation, n_embd not divisible by n_head).
  static gpt2_config from_json_file(const std::string& path) { return from_config(detail::hf_config::read(path)); }

  /// As `from_json_file`, from JSON text; `name` stands for the file in messages.
  static gpt2_config from_json_text(const std::string& text, const std::string& name = "<config.json>") {
    return from_config(detail::hf_config::parse(text, name));
  }

  /// As `from_json_file`, from a parsed config.json.
  static gpt2_config from_config(const detail::hf_config& c) {
    gpt2_config g;
    g.vocab_size = c.positive("vocab_size");
    g.n_positions = c.positive("n_positions");
    g.n_embd = c.positive("n_embd");
    g.n_layer = c.positive("n_layer");
    g.n_head = c.positive("n_head");
    g.n_inner = c.positive_or("n_inner", 0);
    g.layer_norm_epsilon = c.number_or("layer_norm_epsilon", 1e-5);
    const std::string act = c.string_or("activation_function", "gelu_new");
    if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
      g.activation = activation_kind::gelu_tanh;
    } else if (act == "gelu") {
      g.activation = activation_kind::gelu_erf;
    } else {
      c.bad("activation_function", "is \"" + act + "\", expected gelu_new, gelu_pytorch_tanh, gelu_fast or gelu");
    }
    g.scale_attn_weights = c.boolean_or("scale_attn_weights", true);
    g.scale_attn_by_inverse_layer_idx = c.boolean_or("scale_attn_by_inverse_layer_idx", false);
    g.tie_word_embeddings = c.boolean_or("tie_word_embeddings", true);
    if (g.n_embd % g.n_head != 0) {
      c.bad("n_embd", "is " + std::to_string(g.n_embd) + ", expected a multiple of n_head = " +
                          std::to_string(g.n_head));
    }
    g.heads_per_layer = detail::read_layer_heads(c, g.n_layer, g.n_head, g.n_head, true).heads;
    return g;
  }
};

namespace detail {

/// Where GPT-2 keeps its tensors (`transformer.` prefix optional, Conv1D [in, out] weights).
inline family_tensor_names gpt2_tensor_names() {
  family_tensor_names n;
  n.prefix = "transformer.";
  n.prefix_by_default = false;
  n.embed = "wte";
  n.positions = "wpe";
  n.layer = "h.{i}.";
  n.attention_norm = "ln_1";
  n.qkv = qkv_layout::conv1d;
  n.q = "attn.c_attn";
  n.o = "attn.c_proj";
  n.o_conv1d = true;
  n.mlp_norm = "ln_2";
  n.up = "mlp.c_fc";
  n.gate = "";
  n.down = "mlp.c_proj";
  n.final_norm = "ln_f";
  return n;
}

/// The switches of a GPT-2 checkpoint.
inline family_settings gpt2_settings(const gpt2_config& config) {
  family_settings s;
  s.name = "GPT-2";
  s.vocab = config.vocab_size;
  s.d = config.n_embd;
  s.layers = config.n_layer;
  s.heads = s.kv_heads = config.n_head;
  s.head_dim = config.n_embd / config.n_head;
  s.layer_heads = s.layer_kv_heads = config.heads_per_layer;
  s.layer_heads_source = "config.json's pruned_heads or headlens_heads_per_layer";
  s.ff = config.inner();
  s.norm = norm_kind::layer_norm;
  s.norm_bias = true;
  s.eps = config.layer_norm_epsilon;
  s.qkv_bias = s.o_bias = s.mlp_bias = true;
  s.rotary = false;
  if (!config.scale_attn_weights) s.scale = 1.0;
  s.scale_by_inverse_layer = config.scale_attn_by_inverse_layer_idx;
  s.mlp = mlp_kind::plain;
  s.activation = config.activation;
  s.learned_positions = true;
  s.position_rows = config.n_positions;
  s.tied = config.tie_word_embeddings;
  s.max_tokens = config.n_positions;
  return s;
}

template <class Scalar>
transformer<Scalar> load_gpt2_from(const gpt2_config& config, const std::vector<const safetensors_file*>& files) {
  return build_transformer<Scalar>(gpt2_settings(config), gpt2_tensor_names(), files);
}

}  // namespace detail

/// Builds a GPT-2 `transformer` from `config` and the tensors of the shards of a split checkpoint (or one file);
/// see the file comment for keys and errors.
template <class Scalar>
transformer<Scalar> load_gpt2(const gpt2_config& config, const std::vector<safetensors_file>& shards) {
  return detail::load_gpt2_from<Scalar>(config, detail::file_pointers(shards));
}

/// Builds a GPT-2 `transformer` from `config` and one safetensors file.
template <class Scalar>
transformer<Scalar> load_gpt2(const gpt2_config& config, const safetensors_file& file) {
  return detail::load_gpt2_from<Scalar>(config, {&file});
}

/// Loads `directory`/config.json and `directory`/model.safetensors, or the shards that
/// `directory`/model.safetensors.index.json lists (see the file comment). Throws `io_error` when a
/// file cannot be read, and the errors of `gpt2_config::from_json_file` and `load_gpt2(config, file)`.
template <class Scalar>
transformer<Scalar> load_gpt2(const std::string& directory) {
  const gpt2_config config = gpt2_config::from_json_file(directory + "/config.json");
  return load_gpt2<Scalar>(config, detail::open_checkpoint(directory));
}

}  // namespace headlens
