#pragma once
/// \file
/// The tokenizer a GGUF file carries in its `tokenizer.ggml.*` metadata, built as llama.cpp builds it:
/// - `tokenizer.ggml.model` "llama": SentencePiece BPE ranked by `scores`, pieces typed by `token_type` (1 normal,
///   2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), byte fallback when the byte pieces are present,
///   no normaliser, spaces escaped as U+2581, a dummy prefix unless `tokenizer.ggml.add_space_prefix` is false;
/// - "gpt2": byte-level BPE over `tokens` and `merges` ("a b"), the text first split by the regular expression
///   llama.cpp uses for `tokenizer.ggml.pre` (see `gguf_pretokenizer_patterns`); needs the tokenizers component
///   (HEADLENS_WITH_TOKENIZERS, PCRE2);
/// - BOS first when `tokenizer.ggml.add_bos_token` and `tokenizer.ggml.bos_token_id` are set (add_bos_token's
///   default is llama.cpp's: true for "llama" and for the Llama 3 pre-tokenizer, false for other "gpt2" ones).
/// Other models ("bert", "t5", "rwkv", ...) are `format_error`s naming the value ("not supported yet"); "none"
/// says the file has no tokenizer. Malformed metadata (lengths that differ, ids out of range, wrong types) is a `format_error` at the
/// key's byte offset.
///
/// Like llama.cpp, a user-defined token spelled as one of the end-of-turn or fill-in-the-middle tokens it recognises
/// by name ("<|im_end|>", "<|fim_prefix|>", ...) is taken as a control token, not split off the text.
///
/// Where llama.cpp differs from the libraries this builds on: text matching a user-defined (type 4) piece is split
/// off by llama.cpp before the SentencePiece segmentation, which then puts a dummy prefix after it again; here a
/// user-defined piece is matched inside the segmentation as SentencePiece does. Control tokens written in the text
/// are read as plain text by both (llama.cpp's `parse_special` = false).
///
///   headlens::gguf_file file("model.gguf");
///   headlens::pretrained_tokenizer tok = headlens::gguf_tokenizer(file);

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/io/gguf.hpp"
#include "headlens/text/pretrained_tokenizer.hpp"
#include "headlens/text/sentencepiece_model.hpp"

#if defined(HEADLENS_WITH_TOKENIZERS)
#include <nlohmann/json.hpp>

#include "headlens/text/hf_tokenizer.hpp"
#endif

namespace headlens {

/// A known `tokenizer.ggml.pre` value and the regular expressions llama.cpp splits text with for it (applied one
/// after the other, each splitting the pieces the previous one left, matches and the text between kept).
struct gguf_pretokenizer {
  const char* name;
  std::vector<const char*> patterns;
};

/// The `tokenizer.ggml.pre` values headlens knows, with llama.cpp's patterns (llama-vocab.cpp).
inline const std::vector<gguf_pretokenizer>& gguf_pretokenizer_patterns() {
  static const char* const gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
  static const char* const llama3 =
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  static const char* const qwen2 =
      "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  static const std::vector<gguf_pretokenizer> table = {
      // llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT: punctuation runs, GPT-2's pattern, digit runs, digit triples.
      {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2, "\\p{N}+", "[0-9][0-9][0-9]"}},
      {"gpt-2", {gpt2}},
      {"llama-bpe", {llama3}},
      {"llama3", {llama3}},
      {"llama-v3", {llama3}},
      {"qwen2", {qwen2}},
  };
  return table;
}

namespace detail {

/// The `tokenizer.ggml.token_type` array (all 1 when absent), checked against the number of tokens.
inline std::vector<std::int32_t> gguf_token_types(const gguf_file& file, std::size_t n) {
  const std::string key = "tokenizer.ggml.token_type";
  if (!file.has(key)) return std::vector<std::int32_t>(n, 1);
  const std::vector<double> raw = file.get_numbers(key);
  if (raw.size() != n) {
    file.bad_value(key, "an array of " + std::to_string(raw.size()) + " values",
                   std::to_string(n) + ", one per entry of tokenizer.ggml.tokens");
  }
  std::vector<std::int32_t> types(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!(raw[i] >= 1 && raw[i] <= 6) || raw[i] != double(std::int32_t(raw[i]))) {
      file.bad_value(key, "an array whose entry " + std::to_string(i) + " is " + std::to_string(raw[i]),
                     "token types 1 (normal) to 6 (byte)");
    }
    types[i] = std::int32_t(raw[i]);
  }
  return types;
}

/// The id `key` holds, if present, checked to be below `n`.
inline std::optional<std::int32_t> gguf_token_id(const gguf_file& file, const std::string& key, std::size_t n) {
  if (!file.has(key)) return std::nullopt;
  const std::uint64_t id = file.get_uint(key);
  if (id >= n) {
    file.bad_value(key, std::to_string(id), "a token id below " + std::to_string(n) + " (the number of tokens)");
  }
  return std::int32_t(id);
}

inline bool gguf_bool_or(const gguf_file& file, const std::string& key, bool fallback) {
  return file.has(key) ? file.get_bool(key) : fallback;
}

/// Whether llama.cpp makes token `text` a control token whatever its type says: the end-of-turn, end-of-message
/// and fill-in-the-middle tokens it recognises by their text (llama-vocab.cpp) when the file names no such id.
inline bool gguf_is_forced_control(const std::string& text) {
  // "\xEF\xBD\x9C" is U+FF5C and "\xE2\x96\x81" U+2581, in DeepSeek's spellings.
  static const char* const names[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "_<EOT>", "<|eom_id|>",
      "<" "\xEF\xBD\x9C" "end" "\xE2\x96\x81" "of" "\xE2\x96\x81" "sentence" "\xEF\xBD\x9C" ">",
      "<|fim_prefix|>", "<fim-prefix>", "<" "\xEF\xBD\x9C" "fim" "\xE2\x96\x81" "begin" "\xEF\xBD\x9C" ">", "<PRE>", "\xE2\x96\x81" "<PRE>",
      "<|fim_suffix|>", "<fim-suffix>", "<" "\xEF\xBD\x9C" "fim" "\xE2\x96\x81" "hole" "\xEF\xBD\x9C" ">", "<SUF>", "\xE2\x96\x81" "<SUF>",
      "<|fim_middle|>", "<fim-middle>", "<" "\xEF\xBD\x9C" "fim" "\xE2\x96\x81" "end" "\xEF\xBD\x9C" ">", "<MID>", "\xE2\x96\x81" "<MID>",
      "<|fim_pad|>", "<fim-pad>", "<PAD>", "<|fim_repo|>", "<fim-repo>", "<REPO>", "<|repo_name|>",
      "<|file_sep|>", "<fim-sep>", "<FILE_SEP>"};
  for (const char* name : names) {
    if (text == name) return true;
  }
  return false;
}

inline pretrained_tokenizer gguf_llama_tokenizer(const gguf_file& file, const std::vector<std::string>& tokens) {
  const std::size_t n = tokens.size();
  const std::string scores_key = "tokenizer.ggml.scores";
  std::vector<float> scores(n, 0.0f);
  if (file.has(scores_key)) {
    const std::vector<double> raw = file.get_numbers(scores_key);
    if (raw.size() != n) {
      file.bad_value(scores_key, "an array of " + std::to_string(raw.size()) + " values",
                     std::to_string(n) + ", one per entry of tokenizer.ggml.tokens");
    }
    for (std::size_t i = 0; i < n; ++i) scores[i] = float(raw[i]);
  }
  const std::vector<std::int32_t> raw_types = gguf_token_types(file, n);
  std::vector<sentencepiece_piece_type> types(n);
  bool has_bytes = false;
  for (std::size_t i = 0; i < n; ++i) {
    types[i] = static_cast<sentencepiece_piece_type>(raw_types[i]);
    has_bytes = has_bytes || types[i] == sentencepiece_piece_type::byte;
  }
  sentencepiece_model_options options;
  options.kind = sentencepiece_model_kind::bpe;
  options.byte_fallback = has_bytes;
  options.remove_extra_whitespaces = false;  // llama.cpp only escapes spaces
  options.add_dummy_prefix = gguf_bool_or(file, "tokenizer.ggml.add_space_prefix", true);
  const std::optional<std::int32_t> bos = gguf_token_id(file, "tokenizer.ggml.bos_token_id", n);
  options.bos_piece = bos ? tokens[std::size_t(*bos)] : std::string();
  if (const auto eos = gguf_token_id(file, "tokenizer.ggml.eos_token_id", n)) options.eos_piece = tokens[std::size_t(*eos)];
  (void)gguf_token_id(file, "tokenizer.ggml.unknown_token_id", n);
  const bool add_bos = bos.has_value() && gguf_bool_or(file, "tokenizer.ggml.add_bos_token", true);
  try {
    sentencepiece_model model(tokens, std::move(scores), std::move(types), std::move(options));
    return pretrained_tokenizer::sentencepiece(std::move(model), file.file_name(), add_bos);
  } catch (const argument_error& e) {  // the vocabulary's own faults, seen from the file
    file.bad_value("tokenizer.ggml.tokens", "a vocabulary SentencePiece rejects (" + std::string(e.what()) + ")",
                   "a valid SentencePiece vocabulary");
  }
}

inline pretrained_tokenizer gguf_gpt2_tokenizer(const gguf_file& file, const std::vector<std::string>& tokens) {
#if defined(HEADLENS_WITH_TOKENIZERS)
  const std::size_t n = tokens.size();
  const std::string pre = file.get_string_or("tokenizer.ggml.pre", "default");
  const gguf_pretokenizer* found = nullptr;
  std::string known;
  for (const auto& p : gguf_pretokenizer_patterns()) {
    if (pre == p.name) found = &p;
    known += std::string(known.empty() ? "" : ", ") + p.name;
  }
  if (found == nullptr) {
    file.bad_value("tokenizer.ggml.pre", "\"" + pre + "\", which headlens does not know", "one of " + known);
  }
  // llama.cpp's Llama 3 pre-tokenizer also takes a word that is itself a token whole and adds BOS by default.
  const bool llama3 = pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
  const std::vector<std::int32_t> types = gguf_token_types(file, n);
  const std::vector<std::string>& merges = file.get_strings("tokenizer.ggml.merges");
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const std::size_t space = merges[i].find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == merges[i].size() ||
        merges[i].find(' ', space + 1) != std::string::npos) {
      file.bad_value("tokenizer.ggml.merges", "an array whose entry " + std::to_string(i) + " is \"" + merges[i] + "\"",
                     "merges written \"left right\"");
    }
  }
  nlohmann::json vocab = nlohmann::json::object();
  nlohmann::json added = nlohmann::json::array();
  for (std::size_t i = 0; i < n; ++i) {
    if (vocab.contains(tokens[i])) {
      file.bad_value("tokenizer.ggml.tokens", "an array whose entry " + std::to_string(i) + " \"" + tokens[i] +
                                                  "\" appears twice", "distinct tokens");
    }
    vocab[tokens[i]] = i;
    // llama.cpp splits user-defined tokens off the text always, control tokens only when asked to parse specials.
    if (types[i] == 4 && !gguf_is_forced_control(tokens[i])) {
      added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", false}});
    }
  }
  nlohmann::json splits = nlohmann::json::array();
  for (const char* pattern : found->patterns) {
    splits.push_back({{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}});
  }
  splits.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}});
  nlohmann::json j = {
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", splits}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"ignore_merges", llama3}}},
  };
  const std::optional<std::int32_t> bos = gguf_token_id(file, "tokenizer.ggml.bos_token_id", n);
  (void)gguf_token_id(file, "tokenizer.ggml.eos_token_id", n);
  if (bos && gguf_bool_or(file, "tokenizer.ggml.add_bos_token", llama3)) {
    const std::string& b = tokens[std::size_t(*bos)];
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", b}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                           {"pair", {{{"SpecialToken", {{"id", b}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                     {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
                           {"special_tokens", {{b, {{"id", b}, {"ids", {*bos}}, {"tokens", {b}}}}}}};
  }
  return pretrained_tokenizer::hugging_face(hf_tokenizer::from_json(j, file.file_name()), file.file_name());
#else
  (void)tokens;
  file.bad_value("tokenizer.ggml.model", "\"gpt2\" (byte-level BPE)",
                 "\"llama\": headlens was built without its tokenizers component (HEADLENS_WITH_TOKENIZERS, PCRE2), "
                 "which byte-level BPE needs");
#endif
}

}  // namespace detail

/// The tokenizer llama.cpp would build from `file`'s `tokenizer.ggml.*` metadata (see the file comment).
inline pretrained_tokenizer gguf_tokenizer(const gguf_file& file) {
  const std::string model_key = "tokenizer.ggml.model";
  const std::string model = file.get_string(model_key);
  if (model == "none" || model == "no_vocab") {
    file.bad_value(model_key, "\"" + model + "\": the file has no tokenizer", "\"llama\" or \"gpt2\"");
  }
  if (model != "llama" && model != "gpt2") {
    file.bad_value(model_key, "\"" + model + "\", which headlens does not support yet",
                   "\"llama\" (SentencePiece) or \"gpt2\" (byte-level BPE)");
  }
  const std::vector<std::string>& tokens = file.get_strings("tokenizer.ggml.tokens");
  if (tokens.empty()) file.bad_value("tokenizer.ggml.tokens", "empty", "at least one token");
  if (tokens.size() > std::size_t(INT32_MAX)) {
    file.bad_value("tokenizer.ggml.tokens", std::to_string(tokens.size()) + " tokens", "fewer than 2^31");
  }
  return model == "llama" ? detail::gguf_llama_tokenizer(file, tokens) : detail::gguf_gpt2_tokenizer(file, tokens);
}

}  // namespace headlens
