#pragma once
/// \file
/// Llama checkpoints in Hugging Face's layout (`LlamaForCausalLM`): a directory with `config.json` and
/// `model.safetensors`, loaded (through models/detail/family_loader.hpp) into a `transformer`
/// (models/transformer.hpp) whose every head can be hooked. Needs
/// nlohmann_json (for config.json), so the umbrella header does not include it.
///
///   auto model = headlens::load_llama<float>("path/to/llama");
///   headlens::matrix<float> logits = model.forward({1, 15043, 3186});   // [T x vocab]
///
/// What is read (keys with the `model.` prefix of `LlamaForCausalLM`, or without it as `LlamaModel` saves them):
///   model.embed_tokens.weight [vocab, d], model.norm.weight [d], and per layer i under model.layers.{i}.:
///   input_layernorm.weight [d], self_attn.q_proj.weight [heads*head_dim, d], self_attn.{k,v}_proj.weight
///   [kv_heads*head_dim, d], self_attn.o_proj.weight [d, heads*head_dim] (+ `.bias` of each when
///   attention_bias), post_attention_layernorm.weight [d], mlp.{gate,up}_proj.weight [intermediate, d],
///   mlp.down_proj.weight [d, intermediate] (+ biases when mlp_bias); lm_head.weight [vocab, d] unless
///   tie_word_embeddings. PyTorch's [out, in] weights are transposed once to the `x W` convention.
/// The forward: RMSNorm (rms_norm_eps), causal GQA attention (num_key_value_heads) with rotary positions in the
/// rotate-half convention (rope_theta) over the whole head, scale 1/sqrt(head_dim), SwiGLU MLP (SiLU).
/// config.json keys: vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
///   num_key_value_heads (default num_attention_heads), head_dim (default hidden_size / num_attention_heads),
///   rms_norm_eps, rope_theta (default 10000), hidden_act (silu only), rope_scaling (must be null here;
///   `load_family` in models/families.hpp reads linear and llama3 scaling and the other families),
///   attention_bias, mlp_bias, tie_word_embeddings (default false).
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

/// The settings of a Llama config.json that the forward pass depends on.
struct llama_config {
  Index vocab_size = 32000;
  Index hidden_size = 4096;
  Index intermediate_size = 11008;
  Index num_hidden_layers = 32;
  Index num_attention_heads = 32;
  Index num_key_value_heads = 0;  ///< 0 means num_attention_heads
  Index head_dim = 0;             ///< 0 means hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool attention_bias = false;
  bool mlp_bias = false;
  bool tie_word_embeddings = false;

  Index kv_heads() const noexcept { return num_key_value_heads > 0 ? num_key_value_heads : num_attention_heads; }
  Index head_size() const noexcept { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }

  /// Reads config.json. Throws `io_error`, `format_error` (not JSON), `argument_error` naming a key that is missing,
  /// has the wrong type, or asks for something not supported (rope_scaling, an activation other than silu).
  static llama_config from_json_file(const std::string& path) { return from_config(detail::hf_config::read(path)); }

  /// As `from_json_file`, from JSON text; `name` stands for the file in messages.
  static llama_config from_json_text(const std::string& text, const std::string& name = "<config.json>") {
    return from_config(detail::hf_config::parse(text, name));
  }

 private:
  static llama_config from_config(const detail::hf_config& c) {
    llama_config l;
    l.vocab_size = c.positive("vocab_size");
    l.hidden_size = c.positive("hidden_size");
    l.intermediate_size = c.positive("intermediate_size");
    l.num_hidden_layers = c.positive("num_hidden_layers");
    l.num_attention_heads = c.positive("num_attention_heads");
    l.num_key_value_heads = c.positive_or("num_key_value_heads", l.num_attention_heads);
    l.head_dim = c.positive_or("head_dim", 0);
    l.rms_norm_eps = c.number_or("rms_norm_eps", 1e-6);
    l.rope_theta = c.number_or("rope_theta", 10000.0);
    l.attention_bias = c.boolean_or("attention_bias", false);
    l.mlp_bias = c.boolean_or("mlp_bias", false);
    l.tie_word_embeddings = c.boolean_or("tie_word_embeddings", false);
    const std::string act = c.string_or("hidden_act", "silu");
    if (act != "silu") c.bad("hidden_act", "is \"" + act + "\", expected \"silu\"");
    if (c.has("rope_scaling")) {
      c.bad("rope_scaling", "is " + c.value("rope_scaling").dump() +
                                ", expected null (scaled rotary positions are not supported)");
    }
    if (l.num_attention_heads % l.kv_heads() != 0) {
      c.bad("num_attention_heads", "is " + std::to_string(l.num_attention_heads) +
                                       ", expected a multiple of num_key_value_heads = " + std::to_string(l.kv_heads()));
    }
    if (l.head_dim == 0 && l.hidden_size % l.num_attention_heads != 0) {
      c.bad("hidden_size", "is " + std::to_string(l.hidden_size) + ", expected a multiple of num_attention_heads = " +
                               std::to_string(l.num_attention_heads) + " (or a head_dim)");
    }
    if (l.head_size() % 2 != 0) {
      c.bad("head_dim", "is " + std::to_string(l.head_size()) + ", expected an even number (rotary pairs)");
    }
    if (!(l.rope_theta > 1)) c.bad("rope_theta", "is " + std::to_string(l.rope_theta) + ", expected above 1");
    return l;
  }
};

namespace detail {

/// Where Llama keeps its tensors (the defaults of `family_tensor_names`).
inline family_tensor_names llama_tensor_names() { return family_tensor_names{}; }

/// The switches of a Llama checkpoint.
inline family_settings llama_settings(const llama_config& config) {
  family_settings s;
  s.name = "Llama";
  s.vocab = config.vocab_size;
  s.d = config.hidden_size;
  s.layers = config.num_hidden_layers;
  s.heads = config.num_attention_heads;
  s.kv_heads = config.kv_heads();
  s.head_dim = config.head_size();
  s.ff = config.intermediate_size;
  s.eps = config.rms_norm_eps;
  s.rope_theta = config.rope_theta;
  s.qkv_bias = s.o_bias = config.attention_bias;
  s.mlp_bias = config.mlp_bias;
  s.tied = config.tie_word_embeddings;
  return s;
}

template <class Scalar>
transformer<Scalar> load_llama_from(const llama_config& config, const std::vector<const safetensors_file*>& files) {
  return build_transformer<Scalar>(llama_settings(config), llama_tensor_names(), files);
}

}  // namespace detail

/// Builds a Llama `transformer` from `config` and the tensors of the shards of a split checkpoint (or one file);
/// see the file comment for keys and errors.
template <class Scalar>
transformer<Scalar> load_llama(const llama_config& config, const std::vector<safetensors_file>& shards) {
  return detail::load_llama_from<Scalar>(config, detail::file_pointers(shards));
}

/// Builds a Llama `transformer` from `config` and one safetensors file.
template <class Scalar>
transformer<Scalar> load_llama(const llama_config& config, const safetensors_file& file) {
  return detail::load_llama_from<Scalar>(config, {&file});
}

/// Loads `directory`/config.json and `directory`/model.safetensors, or the shards that
/// `directory`/model.safetensors.index.json lists (see the file comment). Throws `io_error` when a
/// file cannot be read, and the errors of `llama_config::from_json_file` and `load_llama(config, file)`.
template <class Scalar>
transformer<Scalar> load_llama(const std::string& directory) {
  const llama_config config = llama_config::from_json_file(directory + "/config.json");
  return load_llama<Scalar>(config, detail::open_checkpoint(directory));
}

}  // namespace headlens
