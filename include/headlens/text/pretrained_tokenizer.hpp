#pragma once
/// \file
/// Whatever tokenizer a model directory ships, behind one type: `load_tokenizer(path)` reads
/// - a Hugging Face `tokenizer.json` (text/hf_tokenizer.hpp; needs the tokenizers component, PCRE2),
/// - a SentencePiece `tokenizer.model` (text/sentencepiece_model.hpp),
/// - GPT-2's `vocab.json` + `merges.txt` (text/bpe.hpp),
/// - a word-level `vocab.json` (text/word_tokenizer.hpp),
/// given the file itself or a directory that holds one, preferred in that order (tokenizer.json is what the
/// `transformers` library itself reads first). The models (models/attention_model.hpp) and `headlens tokenize`
/// take any of them. Every token keeps the byte span of the text it covers (text/token.hpp).
///
///   auto tok = headlens::load_tokenizer("path/to/model");        // or ".../tokenizer.json", ".../tokenizer.model"
///   for (const auto& t : tok.encode("Hello world")) std::cout << t.id << " " << tok.token(t.id) << "\n";

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "headlens/detail/binary_file.hpp"
#include "headlens/error.hpp"
#include "headlens/text/bpe.hpp"
#include "headlens/text/sentencepiece_model.hpp"
#include "headlens/text/token.hpp"
#include "headlens/text/word_tokenizer.hpp"
#if defined(HEADLENS_WITH_TOKENIZERS)
#include "headlens/text/hf_tokenizer.hpp"
#endif

namespace headlens {

/// Which kind of file a `pretrained_tokenizer` was read from.
enum class tokenizer_kind {
  tokenizer_json,       ///< Hugging Face tokenizer.json
  sentencepiece_model,  ///< SentencePiece tokenizer.model
  byte_level_bpe,       ///< GPT-2's vocab.json + merges.txt
  word_vocabulary,      ///< a word-level vocab.json
};

/// "tokenizer.json", "tokenizer.model", "byte-level BPE", "word vocabulary".
inline const char* to_string(tokenizer_kind kind) noexcept {
  switch (kind) {
    case tokenizer_kind::tokenizer_json: return "tokenizer.json";
    case tokenizer_kind::sentencepiece_model: return "tokenizer.model";
    case tokenizer_kind::byte_level_bpe: return "byte-level BPE";
    case tokenizer_kind::word_vocabulary: return "word vocabulary";
  }
  return "tokenizer";
}

/// The spellings of the unknown word a word-level vocab.json may use, in the order they are looked for: BERT's,
/// then SentencePiece's and other trainers'.
inline const std::vector<std::string>& unknown_word_spellings() {
  static const std::vector<std::string> spellings{"[UNK]", "<unk>", "<UNK>", "[unk]", "<|unk|>"};
  return spellings;
}

/// A tokenizer of any kind `load_tokenizer` reads. Immutable; `encode` may be called from several threads at once.
class pretrained_tokenizer {
 public:
  /// A word vocabulary, with its words by id for `token`. The unknown word is the first of
  /// `unknown_word_spellings()` the vocabulary has; with none, an unknown word is an `argument_error`.
  static pretrained_tokenizer words(const std::vector<std::pair<std::string, std::int32_t>>& entries,
                                    std::string source) {
    word_tokenizer_options options;
    for (const std::string& unk : unknown_word_spellings()) {
      bool found = false;
      for (const auto& entry : entries) found = found || entry.first == unk;
      if (found) {
        options.unknown_token = unk;
        break;
      }
    }
    pretrained_tokenizer t(tokenizer_kind::word_vocabulary, std::move(source));
    t.impl_ = word_tokenizer(entries, options);
    for (const auto& [word, id] : entries) {
      if (t.words_.size() <= static_cast<std::size_t>(id)) t.words_.resize(static_cast<std::size_t>(id) + 1);
      t.words_[static_cast<std::size_t>(id)] = word;
    }
    return t;
  }

  /// GPT-2's byte-level BPE.
  static pretrained_tokenizer bpe(byte_level_bpe tokenizer, std::string source) {
    pretrained_tokenizer t(tokenizer_kind::byte_level_bpe, std::move(source));
    t.impl_ = std::move(tokenizer);
    return t;
  }

  /// A SentencePiece model. With `add_bos` (as Hugging Face's Llama and Gemma tokenizers do unless their
  /// tokenizer_config.json says `"add_bos_token": false`), `encode` puts the model's BOS piece first when it has one.
  static pretrained_tokenizer sentencepiece(sentencepiece_model model, std::string source, bool add_bos = true) {
    pretrained_tokenizer t(tokenizer_kind::sentencepiece_model, std::move(source));
    t.spm_bos_ = add_bos && model.bos_id().has_value();
    t.impl_ = std::move(model);
    return t;
  }

#if defined(HEADLENS_WITH_TOKENIZERS)
  /// A Hugging Face tokenizer.json pipeline; its post-processor decides what `encode` adds.
  static pretrained_tokenizer hugging_face(hf_tokenizer tokenizer, std::string source) {
    pretrained_tokenizer t(tokenizer_kind::tokenizer_json, std::move(source));
    t.hf_adds_ = tokenizer.adds_special_tokens();
    t.impl_ = std::move(tokenizer);
    return t;
  }
#endif

  tokenizer_kind kind() const noexcept { return kind_; }
  /// The file it was read from.
  const std::string& source() const noexcept { return source_; }

  /// "SentencePiece BPE", "byte-level BPE", ...: what a report says about the tokenizer.
  std::string description() const {
    if (const auto* m = std::get_if<sentencepiece_model>(&impl_)) {
      return m->kind() == sentencepiece_model_kind::bpe ? "SentencePiece BPE" : "SentencePiece unigram";
    }
    return to_string(kind_);
  }

  /// Whether `encode(text, true)` adds the tokens a model expects around a text by itself (a tokenizer.json whose
  /// post-processor adds them, a SentencePiece model's BOS). When false, a model that wants a beginning-of-sequence
  /// token adds it.
  bool adds_special_tokens() const noexcept { return hf_adds_ || spm_bos_; }

  /// Every token of `text` (UTF-8) with the bytes it covers; with `add_special_tokens`, also those the tokenizer
  /// adds by itself (with empty spans). Throws `argument_error` for text that is not UTF-8 (a SentencePiece model
  /// reads a malformed byte as U+FFFD, as the library does), and for a word a word vocabulary without an unknown
  /// entry does not know.
  std::vector<text_token> encode(std::string_view text, bool add_special_tokens = true) const {
    if (const auto* m = std::get_if<sentencepiece_model>(&impl_)) return m->encode(text, add_special_tokens && spm_bos_);
#if defined(HEADLENS_WITH_TOKENIZERS)
    if (const auto* h = std::get_if<hf_tokenizer>(&impl_)) return h->encode(text, add_special_tokens);
#endif
    if (const auto* b = std::get_if<byte_level_bpe>(&impl_)) return b->encode(text);
    return std::get<word_tokenizer>(impl_).encode(text);
  }

  /// Largest id + 1.
  std::int32_t vocab_size() const {
    if (const auto* m = std::get_if<sentencepiece_model>(&impl_)) return m->size();
#if defined(HEADLENS_WITH_TOKENIZERS)
    if (const auto* h = std::get_if<hf_tokenizer>(&impl_)) return h->vocab_size();
#endif
    if (const auto* b = std::get_if<byte_level_bpe>(&impl_)) return static_cast<std::int32_t>(b->size());
    return static_cast<std::int32_t>(std::get<word_tokenizer>(impl_).size());
  }

  /// How the vocabulary spells token `id` (byte-level BPE tokens as in vocab.json, "Ġworld"); "#id" for an id a
  /// word vocabulary leaves unnamed. Throws `argument_error` for an id outside [0, vocab_size()).
  std::string token(std::int32_t id) const {
    if (id < 0 || id >= vocab_size()) {
      detail::fail<argument_error>("token id ", id, " is out of range, expected 0 <= id < vocab_size = ", vocab_size());
    }
    if (const auto* b = std::get_if<byte_level_bpe>(&impl_)) return b->token(id);
    if (const auto* m = std::get_if<sentencepiece_model>(&impl_)) return m->piece(id);
#if defined(HEADLENS_WITH_TOKENIZERS)
    if (const auto* h = std::get_if<hf_tokenizer>(&impl_)) return h->token(id);
#endif
    const auto k = static_cast<std::size_t>(id);
    return k < words_.size() && !words_[k].empty() ? words_[k] : "#" + std::to_string(id);
  }

  /// The id of a token as the vocabulary spells it, if any.
  std::optional<std::int32_t> token_id(const std::string& token) const {
    if (const auto* m = std::get_if<sentencepiece_model>(&impl_)) return m->piece_id(token);
#if defined(HEADLENS_WITH_TOKENIZERS)
    if (const auto* h = std::get_if<hf_tokenizer>(&impl_)) return h->token_id(token);
#endif
    if (const auto* b = std::get_if<byte_level_bpe>(&impl_)) return b->token_id(token);
    return std::get<word_tokenizer>(impl_).token_id(token);
  }

 private:
  pretrained_tokenizer(tokenizer_kind kind, std::string source) : kind_(kind), source_(std::move(source)) {}

  tokenizer_kind kind_;
  std::string source_;
  std::variant<word_tokenizer, byte_level_bpe, sentencepiece_model
#if defined(HEADLENS_WITH_TOKENIZERS)
               ,
               hf_tokenizer
#endif
               >
      impl_ = word_tokenizer({});
  std::vector<std::string> words_;  // word vocabularies: the words by id
  bool spm_bos_ = false;            // a SentencePiece model that puts its BOS first
  bool hf_adds_ = false;            // a tokenizer.json whose post-processor adds tokens
};

namespace detail {

inline bool is_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

/// Whether a parsed JSON document is a tokenizer.json (an object whose "model" is an object), not a vocab.json (an
/// object of token -> id). A document that did not parse (discarded) is neither: the vocab.json reader then names
/// the fault.
inline bool is_tokenizer_json(const nlohmann::json& j) {
  return j.is_object() && j.contains("model") && j.at("model").is_object();
}

/// Whether a SentencePiece model in `directory` puts BOS first: `"add_bos_token"` of its tokenizer_config.json when
/// that is a boolean (as Hugging Face's LlamaTokenizer reads it), true otherwise. A config that is not JSON is left
/// to the loaders that need it.
inline bool add_bos_token(const std::filesystem::path& directory) {
  const std::filesystem::path config = directory / "tokenizer_config.json";
  if (!is_file(config)) return true;
  const std::vector<unsigned char> bytes = read_file_bytes(config.string());
  const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("add_bos_token") && j.at("add_bos_token").is_boolean()) {
    return j.at("add_bos_token").get<bool>();
  }
  return true;
}

}  // namespace detail

/// Reads the tokenizer at `path`: a tokenizer.json, tokenizer.model or vocab.json file (a `.model` file is read as
/// SentencePiece; a `.json` file other than vocab.json as tokenizer.json when its "model" is an object),
/// or a directory holding tokenizer.json, tokenizer.model, vocab.json + merges.txt, or vocab.json (the first found,
/// in that order). `what` names the path in messages ("tokenizer", "model directory"). Throws `io_error` when
/// nothing readable is there (naming what was looked for), and the errors of each reader (`format_error` with the
/// file and byte offset, `argument_error`).
inline pretrained_tokenizer load_tokenizer(const std::string& path, const std::string& what = "tokenizer") {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const auto vocab_words = [](const fs::path& file) {
    return pretrained_tokenizer::words(byte_level_bpe::read_vocab_json(file.string()), file.string());
  };
  if (detail::is_file(p)) {
    const std::string name = p.filename().string();
    if (name == "vocab.json") {
      const fs::path merges = p.parent_path() / "merges.txt";
      if (detail::is_file(merges)) {
        return pretrained_tokenizer::bpe(byte_level_bpe::from_files(p.string(), merges.string()), p.string());
      }
      return vocab_words(p);
    }
    if (p.extension() == ".model") {
      return pretrained_tokenizer::sentencepiece(sentencepiece_model::from_file(p.string()), p.string(),
                                                 detail::add_bos_token(p.parent_path()));
    }
    if (p.extension() == ".json") {
      // Any other .json is a tokenizer.json or a word vocabulary: parsed once, to tell which (a big tokenizer.json
      // takes seconds to parse), and handed on parsed.
      nlohmann::json j;
      const bool tokenizer_json = name == "tokenizer.json" || [&] {
        const std::vector<unsigned char> bytes = detail::read_file_bytes(p.string());
        j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
        return detail::is_tokenizer_json(j);
      }();
      if (!tokenizer_json) return vocab_words(p);
#if defined(HEADLENS_WITH_TOKENIZERS)
      return pretrained_tokenizer::hugging_face(
          name == "tokenizer.json" ? hf_tokenizer::from_file(p.string()) : hf_tokenizer::from_json(j, p.string()),
          p.string());
#else
      detail::fail<io_error>(what, " ", path, " is a tokenizer.json, which needs headlens's tokenizers component ",
                             "(PCRE2: link headlens::tokenizers, which defines HEADLENS_WITH_TOKENIZERS)");
#endif
    }
    detail::fail<io_error>(what, " ", path,
                           " is not a tokenizer file; expected tokenizer.json, tokenizer.model or vocab.json");
  }
  std::error_code ec;
  if (!fs::is_directory(p, ec)) {
    detail::fail<io_error>(what, " ", path,
                           " does not exist; expected a directory with tokenizer.json, tokenizer.model or vocab.json, "
                           "or one of those files");
  }
  for (const char* name : {"tokenizer.json", "tokenizer.model"}) {
    if (detail::is_file(p / name)) return load_tokenizer((p / name).string(), what);
  }
  const fs::path vocab = p / "vocab.json", merges = p / "merges.txt";
  if (detail::is_file(vocab) && detail::is_file(merges)) {
    return pretrained_tokenizer::bpe(byte_level_bpe::from_files(vocab.string(), merges.string()), vocab.string());
  }
  if (detail::is_file(vocab)) return vocab_words(vocab);
  detail::fail<io_error>(what, " ", path,
                         " has no tokenizer; expected tokenizer.json, tokenizer.model, vocab.json + merges.txt (GPT-2 "
                         "byte-level BPE) or a word-level vocab.json");
}

}  // namespace headlens
