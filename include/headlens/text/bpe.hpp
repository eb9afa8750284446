#pragma once
/// \file
/// GPT-2's byte-level BPE tokenizer, read from a Hugging Face `vocab.json` + `merges.txt`, with the byte span of
/// every token in the original text.
///
/// Encoding, as GPT-2's own encoder does it:
/// 1. Pre-tokenisation splits the text into pieces with GPT-2's pattern
///      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///    implemented by hand (`gpt2_pretokenize`): at each position the first alternative that matches wins, with the
///    backtracking `\s+(?!\S)` does (a run of whitespace before a word leaves its last character to that word).
///    Letters and numbers are Unicode's general categories L and N (Unicode 14, detail/bpe_char_classes.hpp);
///    whitespace is Python's `str.isspace()` set. The optional leading space is U+0020 only.
/// 2. Each piece's UTF-8 bytes become symbols through GPT-2's byte-to-unicode table (`gpt2_byte_to_unicode`).
/// 3. Merges: repeatedly take the adjacent pair with the lowest rank in merges.txt and merge every occurrence of
///    it, left to right; stop when no adjacent pair has a rank.
/// 4. Each final symbol is looked up in vocab.json.
/// Special tokens such as `<|endoftext|>` in the text are encoded as plain text (as GPT-2's encoder does); pass
/// their ids yourself (`token_id`).

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "headlens/detail/binary_file.hpp"
#include "headlens/detail/json_subset.hpp"
#include "headlens/error.hpp"
#include "headlens/text/detail/bpe_char_classes.hpp"
#include "headlens/text/token.hpp"
#include "headlens/text/unicode.hpp"

namespace headlens {

namespace detail {

template <std::size_t N>
bool in_ranges(const char_class_range (&ranges)[N], char32_t cp) noexcept {
  const auto* it = std::upper_bound(std::begin(ranges), std::end(ranges), std::uint32_t(cp),
                                    [](std::uint32_t c, const char_class_range& r) { return c < r.first; });
  return it != std::begin(ranges) && std::uint32_t(cp) <= (it - 1)->last;
}

}  // namespace detail

/// Unicode general category L (letters), Unicode 14.
inline bool is_unicode_letter(char32_t cp) noexcept {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  return detail::in_ranges(detail::unicode_letter_ranges, cp);
}

/// Unicode general category N (numbers: decimal digits, letter numbers such as Ⅷ, other numbers such as ½).
inline bool is_unicode_number(char32_t cp) noexcept {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return detail::in_ranges(detail::unicode_number_ranges, cp);
}

/// Unicode general category M (combining marks).
inline bool is_unicode_mark(char32_t cp) noexcept {
  return cp >= 0x300 && detail::in_ranges(detail::unicode_mark_ranges, cp);
}

/// Whitespace as Python's `str.isspace()` (and so `\s` of its `re`): \t \n \v \f \r, U+001C..U+001F, space,
/// U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
inline bool is_unicode_space(char32_t cp) noexcept {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/// GPT-2's pre-tokenisation (see the file comment): the byte spans of the pieces, which cover `text` exactly, in
/// order. Throws `argument_error` when `text` is not valid UTF-8.
inline std::vector<byte_span> gpt2_pretokenize(std::string_view text) {
  const std::vector<source_char> chars = decode_utf8(text);
  const std::size_t n = chars.size();
  std::vector<byte_span> out;
  auto cp = [&](std::size_t j) { return chars[j].code_point; };
  auto emit = [&](std::size_t first, std::size_t last) { out.push_back({chars[first].begin, chars[last - 1].end}); };
  auto is_other = [](char32_t c) { return !is_unicode_space(c) && !is_unicode_letter(c) && !is_unicode_number(c); };
  std::size_t i = 0;
  while (i < n) {
    const char32_t c = cp(i);
    // 's|'t|'re|'ve|'m|'ll|'d
    if (c == U'\'' && i + 1 < n) {
      const char32_t c1 = cp(i + 1);
      if (c1 == U's' || c1 == U't' || c1 == U'm' || c1 == U'd') {
        emit(i, i + 2);
        i += 2;
        continue;
      }
      if (i + 2 < n) {
        const char32_t c2 = cp(i + 2);
        if ((c1 == U'r' && c2 == U'e') || (c1 == U'v' && c2 == U'e') || (c1 == U'l' && c2 == U'l')) {
          emit(i, i + 3);
          i += 3;
          continue;
        }
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: without the space the first character would have to be in the
    // class, and a space is in none of them, so only one start needs trying.
    const std::size_t s = c == U' ' ? i + 1 : i;
    bool matched = false;
    for (int cls = 0; cls < 3 && !matched && s < n; ++cls) {
      auto in_class = [&](char32_t x) {
        return cls == 0 ? is_unicode_letter(x) : cls == 1 ? is_unicode_number(x) : is_other(x);
      };
      if (!in_class(cp(s))) continue;
      std::size_t e = s + 1;
      while (e < n && in_class(cp(e))) ++e;
      emit(i, e);
      i = e;
      matched = true;
    }
    if (matched) continue;
    // `\s+(?!\S)|\s+`: here c is whitespace. The greedy run backs off one character when a non-space follows,
    // unless that would leave it empty (then the second alternative takes the single character).
    std::size_t e = i + 1;
    while (e < n && is_unicode_space(cp(e))) ++e;
    if (e < n && e - i >= 2) --e;
    emit(i, e);
    i = e;
  }
  return out;
}

/// GPT-2's byte-to-unicode table: the printable bytes '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF stand for
/// themselves; the other 68 bytes map, in byte order, to U+0100, U+0101, ... (so space is 'Ġ' U+0120 and newline
/// 'Ċ' U+010A). Entry b is the code point standing for byte b.
inline const std::array<char32_t, 256>& gpt2_byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[std::size_t(b)] = printable ? char32_t(b) : next++;
    }
    return t;
  }();
  return table;
}

/// A byte-level BPE token, the one `text_token` of headlens/text/token.hpp. The spans of a
/// text's tokens are contiguous and cover it exactly; a token may end inside a multi-byte character (byte-level
/// BPE), and GPT-2 tokens usually start with the space before a word.
using bpe_token = text_token;

/// GPT-2's byte-level BPE (see the file comment). Immutable after construction; `encode` may be called from
/// several threads at once.
class byte_level_bpe {
 public:
  /// Builds the tokenizer from vocabulary entries (token text as in vocab.json, i.e. spelt with the byte-to-unicode
  /// characters, and its id) and merges in rank order. Throws `argument_error` when an id is negative or repeated,
  /// a token is repeated, one of the 256 byte symbols is missing, or a merge's parts or result are not in the
  /// vocabulary (naming the entry).
  byte_level_bpe(const std::vector<std::pair<std::string, std::int32_t>>& vocab,
                 const std::vector<std::pair<std::string, std::string>>& merges) {
    std::int32_t max_id = -1;
    for (const auto& entry : vocab) {
      if (entry.second < 0) {
        detail::fail<argument_error>("vocabulary token '", entry.first, "' has id ", entry.second,
                                     ", expected an id >= 0");
      }
      if (!ids_.emplace(entry.first, entry.second).second) {
        detail::fail<argument_error>("vocabulary token '", entry.first, "' appears twice");
      }
      max_id = std::max(max_id, entry.second);
    }
    tokens_.assign(std::size_t(max_id + 1), std::string());
    std::vector<bool> seen(tokens_.size(), false);
    for (const auto& entry : vocab) {
      if (seen[std::size_t(entry.second)]) {
        detail::fail<argument_error>("vocabulary id ", entry.second, " is given to both '",
                                     tokens_[std::size_t(entry.second)], "' and '", entry.first, "'");
      }
      seen[std::size_t(entry.second)] = true;
      tokens_[std::size_t(entry.second)] = entry.first;
    }
    const auto& table = gpt2_byte_to_unicode();
    for (int b = 0; b < 256; ++b) {
      std::string byte_text;
      append_utf8(byte_text, table[std::size_t(b)]);
      const auto it = ids_.find(byte_text);
      if (it == ids_.end()) {
        detail::fail<argument_error>("the vocabulary has no token for byte ", b, " ('", byte_text,
                                     "'), expected all 256 byte symbols of a byte-level BPE");
      }
      byte_ids_[std::size_t(b)] = it->second;
      decode_[table[std::size_t(b)]] = static_cast<unsigned char>(b);
    }
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& m = merges[rank];
      for (const std::string* part : {&m.first, &m.second}) {
        if (ids_.count(*part) == 0) {
          detail::fail<argument_error>("merge ", rank, " ('", m.first, "' '", m.second, "') has the part '", *part,
                                       "' that is not in the vocabulary");
        }
      }
      const auto merged = ids_.find(m.first + m.second);
      if (merged == ids_.end()) {
        detail::fail<argument_error>("merge ", rank, " ('", m.first, "' '", m.second, "') makes '", m.first + m.second,
                                     "', which is not in the vocabulary");
      }
      // The first rank wins when a pair is listed twice, as in GPT-2's dict of ranks built from the list.
      ranks_.emplace(pair_key(ids_.at(m.first), ids_.at(m.second)), merge{std::int32_t(rank), merged->second});
    }
  }

  /// Reads Hugging Face's `vocab.json` (an object of token -> id) and `merges.txt` (an optional `#version` first
  /// line, then one `left right` pair per line). Throws `io_error` when a file cannot be read, `format_error`
  /// (file and line or byte offset) when one is malformed, and `argument_error` as the constructor.
  static byte_level_bpe from_files(const std::string& vocab_json_path, const std::string& merges_path) {
    auto vocab = read_vocab_json(vocab_json_path);  // first, whatever the compiler's argument order
    return byte_level_bpe(vocab, read_merges(merges_path));
  }

  /// The entries of a vocab.json file. Throws `io_error`, `format_error`.
  static std::vector<std::pair<std::string, std::int32_t>> read_vocab_json(const std::string& path) {
    const std::vector<unsigned char> bytes = detail::read_file_bytes(path);
    return parse_vocab_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
  }

  /// The entries of vocab.json text; `name` stands for the file in messages. Throws `format_error` (byte offset).
  static std::vector<std::pair<std::string, std::int32_t>> parse_vocab_json(std::string_view text,
                                                                            const std::string& name = "<vocab.json>") {
    const detail::json_value root = detail::parse_json(text.data(), text.size(), name, 0);
    if (root.type != detail::json_value::kind::object) {
      throw format_error::at_byte(
          name, root.offset,
          std::string("expected an object of token -> id, found ") + detail::json_kind_name(root.type));
    }
    std::vector<std::pair<std::string, std::int32_t>> out;
    out.reserve(root.object.size());
    for (const detail::json_member& m : root.object) {
      if (m.value.type != detail::json_value::kind::integer || m.value.integer < 0 ||
          m.value.integer > std::numeric_limits<std::int32_t>::max()) {
        throw format_error::at_byte(name, m.value.offset,
                                    "token '" + m.key + "' has no valid id, expected an integer from 0 to 2^31-1");
      }
      out.emplace_back(m.key, std::int32_t(m.value.integer));
    }
    return out;
  }

  /// The pairs of a merges.txt file, in rank order. Throws `io_error`, `format_error` (file:line).
  static std::vector<std::pair<std::string, std::string>> read_merges(const std::string& path) {
    const std::vector<unsigned char> bytes = detail::read_file_bytes(path);
    return parse_merges(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
  }

  /// The pairs of merges.txt text (an optional `#version` first line, then one `left right` pair per line; blank
  /// lines are skipped); `name` stands for the file in messages. Throws `format_error` (file:line).
  static std::vector<std::pair<std::string, std::string>> parse_merges(std::string_view text,
                                                                       const std::string& name = "<merges.txt>") {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t pos = 0, line = 0;
    while (pos < text.size()) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view row = text.substr(pos, end - pos);
      pos = end + 1;
      ++line;
      if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
      if (row.empty() || (line == 1 && row.substr(0, 8) == "#version")) continue;
      const std::size_t space = row.find(' ');
      if (space == 0 || space == std::string_view::npos || space + 1 == row.size() ||
          row.find(' ', space + 1) != std::string_view::npos) {
        throw format_error::at_line(name, line,
                                    "expected two tokens separated by one space, found '" + std::string(row) + "'");
      }
      out.emplace_back(std::string(row.substr(0, space)), std::string(row.substr(space + 1)));
    }
    return out;
  }

  /// Tokens of `text` with their byte spans. Throws `argument_error` when `text` is not valid UTF-8.
  std::vector<bpe_token> encode(std::string_view text) const {
    std::vector<bpe_token> out;
    std::vector<symbol> word;
    for (const byte_span& piece : gpt2_pretokenize(text)) {
      word.clear();
      for (std::size_t b = piece.begin; b < piece.end; ++b) {
        word.push_back({byte_ids_[static_cast<unsigned char>(text[b])], b, b + 1});
      }
      merge_word(word);
      for (const symbol& s : word) out.push_back({s.id, s.begin, s.end});
    }
    return out;
  }

  /// The ids of `encode(text)`.
  std::vector<std::int32_t> encode_ids(std::string_view text) const {
    std::vector<std::int32_t> ids;
    for (const bpe_token& t : encode(text)) ids.push_back(t.id);
    return ids;
  }

  /// The text of `ids`: token strings concatenated and mapped back to bytes. Characters outside the byte table
  /// (in added tokens) are kept as UTF-8. Throws `argument_error` naming the position of an unknown id.
  std::string decode(const std::vector<std::int32_t>& ids) const {
    std::string out;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      for (const source_char& c : decode_utf8(token(ids[i], i))) {
        const auto it = decode_.find(c.code_point);
        if (it != decode_.end()) {
          out += static_cast<char>(it->second);
        } else {
          append_utf8(out, c.code_point);
        }
      }
    }
    return out;
  }

  /// Largest id + 1.
  std::size_t size() const noexcept { return tokens_.size(); }
  /// The vocabulary string of `id` (spelt with the byte-to-unicode characters). Throws `argument_error`.
  const std::string& token(std::int32_t id) const { return token(id, 0); }
  /// The id of a vocabulary string, if any (e.g. "<|endoftext|>").
  std::optional<std::int32_t> token_id(const std::string& text) const {
    const auto it = ids_.find(text);
    return it == ids_.end() ? std::nullopt : std::optional<std::int32_t>(it->second);
  }
  /// Number of merges with a rank.
  std::size_t merge_count() const noexcept { return ranks_.size(); }

 private:
  struct symbol {
    std::int32_t id;
    std::size_t begin;
    std::size_t end;
  };
  struct merge {
    std::int32_t rank;
    std::int32_t result;
  };

  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) noexcept {
    return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
  }

  const std::string& token(std::int32_t id, std::size_t position) const {
    if (id < 0 || std::size_t(id) >= tokens_.size() || tokens_[std::size_t(id)].empty()) {
      detail::fail<argument_error>("ids[", position, "] is ", id, ", which is not a token of the vocabulary (size ",
                                   tokens_.size(), ")");
    }
    return tokens_[std::size_t(id)];
  }

  /// GPT-2's merge loop over one piece, in place.
  void merge_word(std::vector<symbol>& word) const {
    while (word.size() > 1) {
      const merge* best = nullptr;
      std::int32_t best_left = 0, best_right = 0;
      for (std::size_t i = 0; i + 1 < word.size(); ++i) {
        const auto it = ranks_.find(pair_key(word[i].id, word[i + 1].id));
        if (it != ranks_.end() && (best == nullptr || it->second.rank < best->rank)) {
          best = &it->second;
          best_left = word[i].id;
          best_right = word[i + 1].id;
        }
      }
      if (best == nullptr) return;
      std::size_t out = 0;
      for (std::size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i].id == best_left && word[i + 1].id == best_right) {
          word[out++] = {best->result, word[i].begin, word[i + 1].end};
          ++i;
        } else {
          word[out++] = word[i];
        }
      }
      word.resize(out);
    }
  }

  std::unordered_map<std::string, std::int32_t> ids_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::uint64_t, merge> ranks_;
  std::array<std::int32_t, 256> byte_ids_{};
  std::unordered_map<char32_t, unsigned char> decode_;
};

}  // namespace headlens
