#pragma once
/// \file
/// A SentencePiece unigram tokenizer that reproduces, id for id, the tokenizer of the npm package
/// `@energetic-ai/embeddings` 0.2.0 (the one Universal Sentence Encoder-lite is used with), quirks included, and
/// reports for every token the bytes of the original text it covers. The exact algorithm is written down in
/// docs/notes/use-lite-model.md, section 6. Needs only the standard library.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/text/token.hpp"
#include "headlens/text/unicode.hpp"

namespace headlens {

/// One vocabulary entry: the piece text (UTF-8, `▁` marks a preceding space) and its score (a log probability).
struct sentencepiece_piece {
  std::string text;
  double score = 0.0;
};

/// A SentencePiece token, the one `text_token` of headlens/text/token.hpp. The `▁` marker
/// covers no bytes (it stands for the space before a word, or for the start of the text), so "▁world" in
/// "Hello world" covers "world" only and a token that is just `▁` has `begin == end`. Tokens made by NFKC from one
/// character ("ﬁ" -> "f" "i") may share bytes.
using sentencepiece_token = text_token;

/// The unigram tokenizer of `@energetic-ai/embeddings` 0.2.0:
/// - normalisation: NFKC, then (for non-empty text) "▁" + text with every U+0020 replaced by "▁"; no lowercasing;
/// - pieces with ids below `reserved_count` are never matched; the unknown id is 0 (as the package hard-codes it);
/// - Viterbi over piece scores with the package's rules (0 means "unset", ties go to the later candidate);
/// - a character that starts no piece is an unknown edge (id 0, score 0); consecutive unknowns merge into one.
class sentencepiece_unigram {
 public:
  /// The word-boundary marker U+2581 as UTF-8.
  static constexpr std::string_view space_marker = "\xE2\x96\x81";

  /// Builds the tokenizer over `pieces` (the id of a piece is its index; id 0 is the unknown piece). Throws
  /// `argument_error` when `reserved_count` is not in [1, pieces.size()), the unknown piece is empty, or a
  /// matchable piece (id >= `reserved_count`) is empty or not valid UTF-8. A piece string that occurs twice keeps the
  /// later id, as the package's trie does.
  explicit sentencepiece_unigram(std::vector<sentencepiece_piece> pieces, std::int32_t reserved_count = 6)
      : pieces_(std::move(pieces)) {
    if (reserved_count < 1 || static_cast<std::size_t>(reserved_count) >= pieces_.size()) {
      detail::fail<argument_error>("reserved_count is ", reserved_count, ", expected 1 <= reserved_count < ",
                                   pieces_.size(), " (the number of pieces; id 0 is the unknown piece)");
    }
    utf16_length_.resize(pieces_.size());
    nodes_.emplace_back();
    for (std::size_t id = 0; id < pieces_.size(); ++id) {
      std::vector<source_char> chars;
      try {
        chars = decode_utf8(pieces_[id].text);
      } catch (const argument_error&) {
        detail::fail<argument_error>("piece ", id, " is not valid UTF-8");
      }
      std::size_t units = 0;
      for (const source_char& c : chars) units += c.code_point >= 0x10000 ? 2 : 1;
      utf16_length_[id] = units;
      if (id == 0 && units == 0) {
        // The backtrack steps back by the emitted piece's length; an empty unknown piece would never move.
        detail::fail<argument_error>("piece 0 (the unknown piece) is empty, expected its text (e.g. U+FFFD)");
      }
      if (id < static_cast<std::size_t>(reserved_count)) continue;
      if (chars.empty()) detail::fail<argument_error>("piece ", id, " is empty");
      std::int32_t node = 0;
      for (const source_char& c : chars) node = child_or_insert(node, c.code_point);
      nodes_[node].id = static_cast<std::int32_t>(id);
    }
  }

  /// Reads the package's `vocab.json`: a JSON array of `[piece, score]` pairs where a score may be `null` (which
  /// the package's arithmetic treats as 0). Throws `io_error` when the file cannot be read and `format_error`
  /// with the byte offset when it is not such an array.
  static sentencepiece_unigram from_vocab_json(const std::string& path, std::int32_t reserved_count = 6) {
    std::ifstream in(path, std::ios::binary);
    if (!in) detail::fail<io_error>("cannot open ", path, " for reading");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (!in && !in.eof()) detail::fail<io_error>("cannot read ", path);
    return sentencepiece_unigram(parse_vocab_json(buffer.str(), path), reserved_count);
  }

  /// Parses the text of a `vocab.json` (see `from_vocab_json`); `file` names it in errors.
  static std::vector<sentencepiece_piece> parse_vocab_json(std::string_view text,
                                                           const std::string& file = "<memory>") {
    vocab_parser parser{text, file};
    return parser.parse();
  }

  /// Number of pieces (ids are 0 .. size() - 1).
  std::size_t size() const noexcept { return pieces_.size(); }
  /// The piece with id `id` (UTF-8). Throws `argument_error` for an id out of range.
  const std::string& piece(std::int32_t id) const { return pieces_.at(checked(id)).text; }
  /// The score of piece `id` (0 for a `null` score).
  double score(std::int32_t id) const { return pieces_.at(checked(id)).score; }
  /// The id of the unknown piece (always 0, as in the package).
  static constexpr std::int32_t unknown_id = 0;

  /// The normalised text the lattice is built over: NFKC, then "▁" + text with spaces replaced by "▁" (empty for
  /// an empty input), each code point with the bytes of `text` it came from (markers cover no bytes). Throws
  /// `argument_error` when `text` is not valid UTF-8.
  std::vector<source_char> normalize(std::string_view text) const {
    std::vector<source_char> chars = nfkc(decode_utf8(text));
    std::vector<source_char> out;
    if (chars.empty()) return out;
    out.reserve(chars.size() + 1);
    out.push_back({marker_code_point, 0, 0});
    for (const source_char& c : chars) {
      if (c.code_point == U' ') {
        out.push_back({marker_code_point, c.end, c.end});
      } else {
        out.push_back(c);
      }
    }
    return out;
  }

  /// Tokenizes `text` (UTF-8) into ids with byte spans, exactly as the package does (no BOS/EOS, no truncation).
  /// Throws `argument_error` when `text` is not valid UTF-8.
  std::vector<sentencepiece_token> encode(std::string_view text) const {
    const std::vector<source_char> symbols = normalize(text);
    const std::size_t n = symbols.size();

    // Viterbi, candidates visited in the package's order: by end, then by start, then shorter pieces first.
    struct edge {
      std::size_t start;
      std::int32_t id;
      double score;
    };
    std::vector<std::vector<edge>> ending_at(n + 1);
    for (std::size_t i = 0; i < n; ++i) {
      bool any = false;
      std::int32_t node = 0;
      for (std::size_t j = i; j < n; ++j) {
        node = child(node, symbols[j].code_point);
        if (node < 0) break;
        if (nodes_[node].id >= 0) {
          ending_at[j + 1].push_back({i, nodes_[node].id, pieces_[nodes_[node].id].score});
          any = true;
        }
      }
      if (!any) ending_at[i + 1].push_back({i, unknown_id, 0.0});
    }
    std::vector<double> best(n + 1, 0.0);
    std::vector<std::int32_t> word(n + 1, 0);
    std::vector<std::size_t> word_start(n + 1, 0);
    for (std::size_t end = 0; end <= n; ++end) {
      // ending_at[end] was filled by increasing start already.
      for (const edge& e : ending_at[end]) {
        const double candidate = e.score + best[e.start];
        if (best[end] == 0.0 || candidate >= best[end]) {
          best[end] = candidate;
          word[end] = e.id;
          word_start[end] = e.start;
        }
      }
    }

    // Backtrack like the package: step back by the piece's length in UTF-16 code units. For a position no edge
    // reached, the package emits id 0 and steps back by that piece's length.
    std::vector<sentencepiece_token> reversed;
    std::ptrdiff_t iter = static_cast<std::ptrdiff_t>(n);
    while (iter > 0) {
      const auto at = static_cast<std::size_t>(iter);
      const std::int32_t id = word[at];
      const bool reached = !ending_at[at].empty();
      const std::size_t start = reached ? word_start[at] : at - 1;
      reversed.push_back({id, span_begin(symbols, start, at), span_end(symbols, start, at)});
      iter -= static_cast<std::ptrdiff_t>(utf16_length_[static_cast<std::size_t>(id)]);
    }

    // Merge runs of unknowns.
    std::vector<sentencepiece_token> out;
    out.reserve(reversed.size());
    for (auto it = reversed.rbegin(); it != reversed.rend(); ++it) {
      if (!out.empty() && it->id == 0 && out.back().id == 0) {
        out.back().begin = std::min(out.back().begin, it->begin);
        out.back().end = std::max(out.back().end, it->end);
      } else {
        out.push_back(*it);
      }
    }
    return out;
  }

  /// The ids of `encode(text)`.
  std::vector<std::int32_t> encode_ids(std::string_view text) const {
    std::vector<std::int32_t> ids;
    for (const sentencepiece_token& t : encode(text)) ids.push_back(t.id);
    return ids;
  }

 private:
  static constexpr char32_t marker_code_point = 0x2581;

  struct trie_node {
    std::unordered_map<char32_t, std::int32_t> children;
    std::int32_t id = -1;
  };

  std::size_t checked(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= pieces_.size()) {
      detail::fail<argument_error>("id is ", id, ", expected 0 <= id < ", pieces_.size());
    }
    return static_cast<std::size_t>(id);
  }

  std::int32_t child(std::int32_t node, char32_t c) const {
    const auto& children = nodes_[static_cast<std::size_t>(node)].children;
    const auto it = children.find(c);
    return it == children.end() ? -1 : it->second;
  }

  std::int32_t child_or_insert(std::int32_t node, char32_t c) {
    const std::int32_t found = child(node, c);
    if (found >= 0) return found;
    const auto created = static_cast<std::int32_t>(nodes_.size());
    nodes_.emplace_back();
    nodes_[static_cast<std::size_t>(node)].children.emplace(c, created);
    return created;
  }

  /// Bytes covered by symbols [start, end): the smallest begin and largest end of the non-marker symbols; for
  /// markers only, the empty span where the marker sits.
  static std::size_t span_begin(const std::vector<source_char>& s, std::size_t start, std::size_t end) {
    std::size_t begin = std::numeric_limits<std::size_t>::max();
    for (std::size_t i = start; i < end; ++i) {
      if (s[i].begin != s[i].end) begin = std::min(begin, s[i].begin);
    }
    return begin != std::numeric_limits<std::size_t>::max() ? begin : s[end - 1].end;
  }
  static std::size_t span_end(const std::vector<source_char>& s, std::size_t start, std::size_t end) {
    std::size_t last = 0;
    bool any = false;
    for (std::size_t i = start; i < end; ++i) {
      if (s[i].begin != s[i].end) {
        last = std::max(last, s[i].end);
        any = true;
      }
    }
    return any ? last : s[end - 1].end;
  }

  /// A strict reader for `[[string, number|null], ...]`.
  struct vocab_parser {
    std::string_view text;
    const std::string& file;
    std::size_t pos = 0;

    [[noreturn]] void fail(const std::string& what) const {
      throw format_error::at_byte(file, pos, "vocabulary: " + what);
    }
    void skip() {
      while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\r' || text[pos] == '\t')) {
        ++pos;
      }
    }
    void expect(char c) {
      skip();
      if (pos >= text.size() || text[pos] != c) fail(std::string("expected '") + c + "'");
      ++pos;
    }
    bool accept(char c) {
      skip();
      if (pos < text.size() && text[pos] == c) {
        ++pos;
        return true;
      }
      return false;
    }
    unsigned hex4() {
      if (text.size() - pos < 4) fail("truncated \\u escape");
      unsigned v = 0;
      for (int i = 0; i < 4; ++i, ++pos) {
        const char c = text[pos];
        v *= 16;
        if (c >= '0' && c <= '9')
          v += static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f')
          v += static_cast<unsigned>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
          v += static_cast<unsigned>(c - 'A' + 10);
        else
          fail("invalid hex digit in a \\u escape");
      }
      return v;
    }
    std::string string() {
      expect('"');
      std::string out;
      for (;;) {
        if (pos >= text.size()) fail("unterminated string");
        const char c = text[pos];
        if (c == '"') {
          ++pos;
          return out;
        }
        if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
        if (c != '\\') {
          out += c;
          ++pos;
          continue;
        }
        ++pos;
        if (pos >= text.size()) fail("unterminated string");
        const char e = text[pos++];
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            char32_t cp = hex4();
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (text.size() - pos < 6 || text[pos] != '\\' || text[pos + 1] != 'u') fail("unpaired surrogate");
              pos += 2;
              const char32_t low = hex4();
              if (low < 0xDC00 || low > 0xDFFF) fail("unpaired surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              fail("unpaired surrogate");
            }
            append_utf8(out, cp);
            break;
          }
          default:
            --pos;
            fail("invalid escape");
        }
      }
    }
    double number() {
      skip();
      if (text.compare(pos, 4, "null") == 0) {
        pos += 4;
        return 0.0;  // JavaScript: null + x == x
      }
      std::size_t end = pos;
      while (end < text.size() && (std::string_view("+-.0123456789eE").find(text[end]) != std::string_view::npos))
        ++end;
      double value = 0.0;
      const auto result = std::from_chars(text.data() + pos, text.data() + end, value);
      if (result.ec != std::errc() || result.ptr != text.data() + end || end == pos) fail("expected a number or null");
      pos = end;
      return value;
    }
    std::vector<sentencepiece_piece> parse() {
      std::vector<sentencepiece_piece> pieces;
      expect('[');
      if (!accept(']')) {
        do {
          expect('[');
          sentencepiece_piece p;
          p.text = string();
          expect(',');
          p.score = number();
          expect(']');
          pieces.push_back(std::move(p));
        } while (accept(','));
        expect(']');
      }
      skip();
      if (pos != text.size()) fail("unexpected data after the array");
      return pieces;
    }
  };

  std::vector<sentencepiece_piece> pieces_;
  std::vector<std::size_t> utf16_length_;
  std::vector<trie_node> nodes_;
};

}  // namespace headlens
