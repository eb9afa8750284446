#pragma once
/// \file
/// The two simplest ways text reaches a model: a word-level tokenizer over a `vocab.json` (word -> id), and
/// pre-tokenized input, where the caller already has the ids (or the words).
///
/// `split_words` cuts text at whitespace (Python's `str.isspace()` set) into words, each a maximal run of letters,
/// numbers and combining marks (Unicode categories L, N, M), and punctuation, each one other character on its own:
///   "Don't stop, 2 cafés!" -> "Don" "'" "t" "stop" "," "2" "cafés" "!"
/// Every piece keeps its byte span in the original text, so tokens align with annotated words (analysis/alignment).

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/text/bpe.hpp"
#include "headlens/text/unicode.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// Words and punctuation of `text` as byte spans, in order (see the file comment). Throws `argument_error` when
/// `text` is not valid UTF-8.
inline std::vector<byte_span> split_words(std::string_view text) {
  const std::vector<source_char> chars = decode_utf8(text);
  std::vector<byte_span> out;
  auto word_char = [](char32_t c) { return is_unicode_letter(c) || is_unicode_number(c) || is_unicode_mark(c); };
  std::size_t i = 0;
  while (i < chars.size()) {
    const char32_t c = chars[i].code_point;
    if (is_unicode_space(c)) {
      ++i;
    } else if (word_char(c)) {
      std::size_t e = i + 1;
      while (e < chars.size() && word_char(chars[e].code_point)) ++e;
      out.push_back({chars[i].begin, chars[e - 1].end});
      i = e;
    } else {
      out.push_back({chars[i].begin, chars[i].end});
      ++i;
    }
  }
  return out;
}

/// One token of a word-level tokenizer: its id and the bytes `[begin, end)` of the text it covers.
struct word_token {
  std::int32_t id = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
};

/// How `word_tokenizer` looks words up.
struct word_tokenizer_options {
  /// Look words up in ASCII lower case (other characters are kept as they are).
  bool lowercase = false;
  /// The vocabulary entry unknown words map to. When the vocabulary has no such entry, an unknown word is an
  /// `argument_error` instead.
  std::string unknown_token = "[UNK]";
};

/// A word-level tokenizer: `split_words`, then one vocabulary lookup per piece. Immutable after construction.
class word_tokenizer {
 public:
  /// Builds the tokenizer over (word, id) entries. Throws `argument_error` when an id is negative or a word is
  /// listed twice.
  explicit word_tokenizer(const std::vector<std::pair<std::string, std::int32_t>>& vocab,
                          word_tokenizer_options options = {})
      : options_(std::move(options)) {
    for (const auto& entry : vocab) {
      if (entry.second < 0) {
        detail::fail<argument_error>("vocabulary word '", entry.first, "' has id ", entry.second,
                                     ", expected an id >= 0");
      }
      if (!ids_.emplace(entry.first, entry.second).second) {
        detail::fail<argument_error>("vocabulary word '", entry.first, "' appears twice");
      }
      size_ = std::max(size_, std::size_t(entry.second) + 1);
    }
    const auto unk = ids_.find(options_.unknown_token);
    if (unk != ids_.end()) unknown_id_ = unk->second;
  }

  /// Reads a `vocab.json` object of word -> id. Throws `io_error`, `format_error` (file, byte offset), and
  /// `argument_error` as the constructor.
  static word_tokenizer from_vocab_json(const std::string& path, word_tokenizer_options options = {}) {
    return word_tokenizer(byte_level_bpe::read_vocab_json(path), std::move(options));
  }

  /// Tokens of `text` with their byte spans. Throws `argument_error` for text that is not UTF-8, or for a word not
  /// in the vocabulary when there is no unknown token (naming the word and its byte offset).
  std::vector<word_token> encode(std::string_view text) const {
    std::vector<word_token> out;
    for (const byte_span& s : split_words(text)) {
      out.push_back({lookup(text.substr(s.begin, s.end - s.begin), "at byte ", s.begin), s.begin, s.end});
    }
    return out;
  }

  /// The ids of `encode(text)`.
  std::vector<std::int32_t> encode_ids(std::string_view text) const {
    std::vector<std::int32_t> ids;
    for (const word_token& t : encode(text)) ids.push_back(t.id);
    return ids;
  }

  /// Pre-tokenized input: one id per given word, looked up as it is (not split). Errors as `encode`, naming the
  /// word's index.
  std::vector<std::int32_t> encode_words(const std::vector<std::string>& words) const {
    std::vector<std::int32_t> ids;
    ids.reserve(words.size());
    for (std::size_t i = 0; i < words.size(); ++i) ids.push_back(lookup(words[i], "at index ", i));
    return ids;
  }

  /// Largest id + 1.
  std::size_t size() const noexcept { return size_; }
  /// The id unknown words get, if the vocabulary has the unknown token.
  std::optional<std::int32_t> unknown_id() const noexcept { return unknown_id_; }
  /// The id of `word` as the vocabulary spells it, if any.
  std::optional<std::int32_t> token_id(const std::string& word) const {
    const auto it = ids_.find(word);
    return it == ids_.end() ? std::nullopt : std::optional<std::int32_t>(it->second);
  }

 private:
  std::int32_t lookup(std::string_view word, const char* where, std::size_t position) const {
    std::string key(word);
    if (options_.lowercase) {
      for (char& ch : key) {
        if (ch >= 'A' && ch <= 'Z') ch = char(ch - 'A' + 'a');
      }
    }
    const auto it = ids_.find(key);
    if (it != ids_.end()) return it->second;
    if (unknown_id_) return *unknown_id_;
    detail::fail<argument_error>("word '", word, "' ", where, position, " is not in the vocabulary, and it has no '",
                                 options_.unknown_token, "' entry for unknown words");
  }

  word_tokenizer_options options_;
  std::unordered_map<std::string, std::int32_t> ids_;
  std::optional<std::int32_t> unknown_id_;
  std::size_t size_ = 0;
};

/// Pre-tokenized input given as text: ids separated by whitespace and/or commas ("15 7, 300"), each checked to be
/// in [0, vocab_size). Throws `argument_error` naming the position (0-based) and text of the first id that is not
/// a decimal integer or is out of range, or when there are no ids.
inline std::vector<std::int32_t> parse_token_ids(std::string_view text, Index vocab_size) {
  std::vector<std::int32_t> ids;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const char c = text[pos];
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      ++pos;
      continue;
    }
    std::size_t end = pos;
    while (end < text.size() && text[end] != ',' && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    const std::string_view item = text.substr(pos, end - pos);
    std::int64_t value = 0;
    bool ok = item.size() <= 10;
    for (const char d : item) {
      if (d < '0' || d > '9') ok = false;
      if (ok) value = value * 10 + (d - '0');
    }
    if (!ok) {
      detail::fail<argument_error>("token id ", ids.size(), " is '", item, "', expected a decimal integer");
    }
    if (value >= vocab_size) {
      detail::fail<argument_error>("token id ", ids.size(), " is ", value, ", expected 0 <= id < vocab_size = ",
                                   vocab_size);
    }
    ids.push_back(std::int32_t(value));
    pos = end;
  }
  if (ids.empty()) detail::fail<argument_error>("no token ids in '", text, "', expected ids such as \"15 7 300\"");
  return ids;
}

}  // namespace headlens
