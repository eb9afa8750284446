#pragma once
/// \file
/// One entry point for a Hugging Face model directory: `load_pretrained` reads `config.json`, picks the family from
/// its `model_type` (GPT-2 or Llama), loads the weights (models/gpt2.hpp, models/llama.hpp) and, when the
/// directory has `vocab.json` and `merges.txt`, the byte-level BPE tokenizer (text/bpe.hpp). Needs nlohmann_json.
///
///   auto p = headlens::load_pretrained<float>("path/to/model");
///   if (!p.tokenizer) throw ...;  // Llama directories usually ship a SentencePiece model instead: give ids
///   auto logits = p.model.forward(p.tokenizer->encode_ids("Hello world"));

#include <fstream>
#include <optional>
#include <string>
#include <utility>

#include "headlens/models/detail/hf_checkpoint.hpp"
#include "headlens/models/gpt2.hpp"
#include "headlens/models/llama.hpp"
#include "headlens/text/bpe.hpp"

namespace headlens {

/// The model families `load_pretrained` knows.
enum class model_family { gpt2, llama };

/// "gpt2", "llama".
inline const char* to_string(model_family family) noexcept {
  return family == model_family::gpt2 ? "gpt2" : "llama";
}

/// A loaded model directory.
template <class Scalar>
struct pretrained_model {
  model_family family;
  transformer<Scalar> model;
  std::optional<byte_level_bpe> tokenizer;  ///< when the directory has vocab.json and merges.txt
};

/// The family a parsed config.json declares in `model_type` ("gpt2"; "llama", or "mistral" without sliding windows,
/// which has Llama's layout). Throws `argument_error` naming the value when `model_type` is missing or not supported.
inline model_family detect_model_family(const detail::hf_config& c) {
  const std::string type = c.string_or("model_type", "");
  if (type == "gpt2") return model_family::gpt2;
  if (type == "llama") return model_family::llama;
  if (type == "mistral" && !c.has("sliding_window")) return model_family::llama;
  c.bad("model_type", "is \"" + type + "\", expected \"gpt2\" or \"llama\" (the families headlens can load)");
}

/// The family `directory`/config.json declares (see the overload above). Throws also `io_error` and `format_error`
/// when config.json cannot be read or is not a JSON object.
inline model_family detect_model_family(const std::string& directory) {
  return detect_model_family(detail::hf_config::read(directory + "/config.json"));
}

/// Loads the model in `directory` (config.json + model.safetensors or its shards) and its BPE tokenizer when
/// present. Throws the errors of `detect_model_family`, `load_gpt2`, `load_llama` and `byte_level_bpe::from_files`.
template <class Scalar>
pretrained_model<Scalar> load_pretrained(const std::string& directory) {
  const model_family family = detect_model_family(directory);
  std::optional<byte_level_bpe> tokenizer;
  const std::string vocab = directory + "/vocab.json", merges = directory + "/merges.txt";
  if (std::ifstream(vocab).good() && std::ifstream(merges).good()) {
    tokenizer = byte_level_bpe::from_files(vocab, merges);
  }
  if (family == model_family::gpt2) {
    return pretrained_model<Scalar>{family, load_gpt2<Scalar>(directory), std::move(tokenizer)};
  }
  return pretrained_model<Scalar>{family, load_llama<Scalar>(directory), std::move(tokenizer)};
}

}  // namespace headlens
