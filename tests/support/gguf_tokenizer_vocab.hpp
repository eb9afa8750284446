#pragma once
// GGUF files that carry only a tokenizer (and the architecture keys llama.cpp reads when it loads a vocabulary),
// shared by tools/make_gguf_tokenizer_fixtures.cpp (which writes the files llama.cpp tokenizes) and
// tests/test_gguf_tokenizer.cpp (which rebuilds the same bytes and compares ids):
// - "spm_fixture": the byte-fallback SentencePiece-style vocabulary of tests/support/gguf_random_llama.hpp;
// - "llama2": Llama 2's real vocabulary (tokenizer.ggml.model "llama") from its tokenizer.json: pieces by id,
//   score -id (the order of its merges, as in its tokenizer.model), <unk> unknown, <s> </s> control, <0xXX> byte;
// - "llama3_1": Llama 3.1's byte-level vocabulary ("gpt2", pre "llama-bpe"), merges as in its tokenizer.json;
// - "qwen3": Qwen3's ("gpt2", pre "qwen2"); added tokens are control when special, user-defined otherwise, as
//   llama.cpp's converter types them;
// - "llama3_1-gpt-2", "llama3_1-default": Llama 3.1's vocabulary with pre "gpt-2" and "default" (other regexes).
// The tokenizer.json files are those tools/fetch-tokenizers.sh fetches (build/models/tokenizers/<name>/).

#include <headlens/io/gguf_writer.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "support/gguf_random_llama.hpp"

namespace gguf_tokenizer_vocab {

inline void add_architecture(headlens::gguf_writer& w, std::uint32_t vocab) {
  using headlens::gguf_value;
  w.set("general.architecture", gguf_value::of_string("llama"));
  w.set("general.name", gguf_value::of_string("headlens tokenizer fixture"));
  w.set("llama.context_length", gguf_value::of_uint32(512));
  w.set("llama.embedding_length", gguf_value::of_uint32(64));
  w.set("llama.block_count", gguf_value::of_uint32(1));
  w.set("llama.feed_forward_length", gguf_value::of_uint32(128));
  w.set("llama.attention.head_count", gguf_value::of_uint32(1));
  w.set("llama.attention.head_count_kv", gguf_value::of_uint32(1));
  w.set("llama.attention.layer_norm_rms_epsilon", gguf_value::of_float32(1e-5f));
  w.set("llama.rope.dimension_count", gguf_value::of_uint32(64));
  w.set("llama.vocab_size", gguf_value::of_uint32(vocab));
}

inline std::vector<unsigned char> spm_fixture_bytes() {
  headlens::gguf_writer w;
  add_architecture(w, std::uint32_t(gguf_fixture::vocab));
  gguf_fixture::add_tokenizer(w);
  return w.bytes();
}

/// The GGUF bytes for the real vocabulary `name` read from its tokenizer.json at `path`; `pre` replaces the
/// tokenizer.ggml.pre of a byte-level vocabulary when not empty (Llama 3.1's vocabulary split as GPT-2 splits, ...).
inline std::vector<unsigned char> real_bytes(const std::string& name, const std::string& path,
                                             const std::string& pre = "") {
  using headlens::gguf_value;
  std::ifstream in(path, std::ios::binary);
  const nlohmann::json j = nlohmann::json::parse(in);
  std::map<std::int64_t, std::string> by_id;
  std::map<std::int64_t, std::int32_t> type_of;
  for (const auto& kv : j.at("model").at("vocab").items()) by_id[kv.value().get<std::int64_t>()] = kv.key();
  for (const auto& a : j.at("added_tokens")) {
    const std::int64_t id = a.at("id").get<std::int64_t>();
    by_id[id] = a.at("content").get<std::string>();
    type_of[id] = a.at("special").get<bool>() ? 3 : 4;
  }
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<std::int32_t> types;
  for (const auto& kv : by_id) {
    if (kv.first != std::int64_t(tokens.size())) throw std::runtime_error(path + ": ids are not contiguous");
    tokens.push_back(kv.second);
    scores.push_back(-float(kv.first));
    std::int32_t t = 1;
    if (type_of.count(kv.first)) t = type_of[kv.first];
    if (name == "llama2") {
      if (kv.second == "<unk>") t = 2;
      else if (kv.second.size() == 6 && kv.second.compare(0, 3, "<0x") == 0) t = 6;
    }
    types.push_back(t);
  }
  headlens::gguf_writer w;
  add_architecture(w, std::uint32_t(tokens.size()));
  w.set("tokenizer.ggml.tokens", gguf_value::of_strings(tokens));
  w.set("tokenizer.ggml.token_type", gguf_value::of_int32s(types));
  if (name == "llama2") {
    w.set("tokenizer.ggml.model", gguf_value::of_string("llama"));
    w.set("tokenizer.ggml.scores", gguf_value::of_float32s(scores));
    w.set("tokenizer.ggml.bos_token_id", gguf_value::of_uint32(1));
    w.set("tokenizer.ggml.eos_token_id", gguf_value::of_uint32(2));
    w.set("tokenizer.ggml.unknown_token_id", gguf_value::of_uint32(0));
  } else {
    std::vector<std::string> merges;
    for (const auto& m : j.at("model").at("merges")) {
      merges.push_back(m.is_string() ? m.get<std::string>()
                                     : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
    }
    w.set("tokenizer.ggml.model", gguf_value::of_string("gpt2"));
    w.set("tokenizer.ggml.pre", gguf_value::of_string(!pre.empty() ? pre : name == "qwen3" ? "qwen2" : "llama-bpe"));
    w.set("tokenizer.ggml.merges", gguf_value::of_strings(merges));
    const std::uint32_t bos = name == "qwen3" ? 151643 : 128000;
    w.set("tokenizer.ggml.bos_token_id", gguf_value::of_uint32(bos));
    w.set("tokenizer.ggml.eos_token_id", gguf_value::of_uint32(bos + 1));
    w.set("tokenizer.ggml.add_bos_token", gguf_value::of_bool(name != "qwen3"));
  }
  return w.bytes();
}

}  // namespace gguf_tokenizer_vocab
