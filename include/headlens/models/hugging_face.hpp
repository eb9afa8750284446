#pragma once
/// \file
/// One entry point for a Hugging Face model directory: `load_pretrained` reads `config.json`, picks the family from
/// its `model_type` (any family of models/families.hpp), loads the weights and, when the
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
#include "headlens/models/families.hpp"
#include "headlens/models/gpt2.hpp"
#include "headlens/models/llama.hpp"
#include "headlens/text/bpe.hpp"

namespace headlens {

/// The model families `load_pretrained` knows (the rows of `model_family_table`, in its order).
enum class model_family { gpt2, llama, mistral, qwen2, qwen3, gemma, gemma2, phi3, gpt_neox, opt, bert, roberta };

/// The family's `model_type` ("gpt2", "llama", ...).
inline const char* to_string(model_family family) noexcept {
  return model_family_table()[std::size_t(family)].model_type;
}

/// How reports name the family ("GPT-2", "Llama", "Gemma 2", ...).
inline const char* display_name(model_family family) noexcept {
  static const char* const names[] = {"GPT-2", "Llama",  "Mistral", "Qwen2", "Qwen3", "Gemma",
                                      "Gemma 2", "Phi-3", "GPT-NeoX", "OPT",  "BERT",  "RoBERTa"};
  return names[std::size_t(family)];
}

/// A loaded model directory.
template <class Scalar>
struct pretrained_model {
  model_family family;
  transformer<Scalar> model;
  std::optional<byte_level_bpe> tokenizer;  ///< when the directory has vocab.json and merges.txt
};

/// The family a parsed config.json declares in `model_type`. Throws `argument_error` naming the value and the known
/// types when `model_type` is missing or not supported.
inline model_family detect_model_family(const detail::hf_config& c) {
  const model_family_entry& e = model_family_of(c);
  return model_family(&e - model_family_table().data());
}

/// The family `directory`/config.json declares (see the overload above). Throws also `io_error` and `format_error`
/// when config.json cannot be read or is not a JSON object.
inline model_family detect_model_family(const std::string& directory) {
  return detect_model_family(detail::hf_config::read(directory + "/config.json"));
}

/// Loads the model in `directory` (config.json + model.safetensors or its shards) and its BPE tokenizer when
/// present. Throws the errors of `detect_model_family`, `load_family` and `byte_level_bpe::from_files`.
template <class Scalar>
pretrained_model<Scalar> load_pretrained(const std::string& directory) {
  const model_family family = detect_model_family(directory);
  std::optional<byte_level_bpe> tokenizer;
  const std::string vocab = directory + "/vocab.json", merges = directory + "/merges.txt";
  if (std::ifstream(vocab).good() && std::ifstream(merges).good()) {
    tokenizer = byte_level_bpe::from_files(vocab, merges);
  }
  return pretrained_model<Scalar>{family, load_family<Scalar>(directory).model, std::move(tokenizer)};
}

}  // namespace headlens
