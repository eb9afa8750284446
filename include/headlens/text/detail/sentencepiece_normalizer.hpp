#pragma once
/// \file
/// SentencePiece's normaliser (normalizer.cc of the library), byte for byte: the precompiled charsmap (a
/// Darts-clone double-array trie over UTF-8 prefixes plus a blob of NUL-terminated replacement strings; the longest
/// matching prefix wins), user-defined symbols passed through unnormalised, extra whitespace removed, the dummy
/// prefix, and spaces escaped as U+2581 — with, for every normalised byte, the offset of the original byte it came
/// from. Internal to sentencepiece_model.hpp.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "headlens/error.hpp"

namespace headlens {
namespace detail {

/// The length of the valid UTF-8 character at the start of `s` (1 to 4), or 0 when it is malformed (overlong,
/// a surrogate, above U+10FFFF, truncated), as SentencePiece's `IsValidDecodeUTF8` decides.
inline std::size_t sentencepiece_utf8_length(std::string_view s) noexcept {
  if (s.empty()) return 0;
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto trail = [&](std::size_t i) { return (b(i) & 0xC0) == 0x80; };
  const auto valid = [](char32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); };
  if (b(0) < 0x80) return 1;
  if (s.size() >= 2 && (b(0) & 0xE0) == 0xC0) {
    const char32_t c = (static_cast<char32_t>(b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    return trail(1) && c >= 0x80 && valid(c) ? 2 : 0;
  }
  if (s.size() >= 3 && (b(0) & 0xF0) == 0xE0) {
    const char32_t c =
        (static_cast<char32_t>(b(0) & 0x0F) << 12) | (static_cast<char32_t>(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    return trail(1) && trail(2) && c >= 0x800 && valid(c) ? 3 : 0;
  }
  if (s.size() >= 4 && (b(0) & 0xF8) == 0xF0) {
    const char32_t c = (static_cast<char32_t>(b(0) & 0x07) << 18) | (static_cast<char32_t>(b(1) & 0x3F) << 12) |
                       (static_cast<char32_t>(b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    return trail(1) && trail(2) && trail(3) && c >= 0x10000 && valid(c) ? 4 : 0;
  }
  return 0;
}

/// SentencePiece's `OneCharLen`: the length a UTF-8 lead byte announces (1 for a continuation byte), clipped to the
/// bytes left.
inline std::size_t sentencepiece_one_char_length(std::string_view s) noexcept {
  static constexpr unsigned char lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return std::min<std::size_t>(s.size(), lengths[static_cast<unsigned char>(s[0]) >> 4]);
}

/// A byte trie over a set of strings with an int32 value each, for prefix searches (the unigram lattice and the
/// user-defined symbols). Built once from (string, value) pairs; children are kept sorted in one edge array.
class byte_trie {
 public:
  byte_trie() = default;

  /// Builds the trie (the views need to live only during the call); a string given twice keeps its last value.
  /// Empty strings are ignored.
  explicit byte_trie(std::vector<std::pair<std::string_view, std::int32_t>> entries) {
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    nodes_.push_back({0, 0, -1});
    // Explicit stack of (node, depth, [lo, hi) of the sorted entries that share the node's prefix).
    struct task {
      std::uint32_t node;
      std::size_t depth, lo, hi;
    };
    std::vector<task> stack{{0, 0, 0, entries.size()}};
    while (!stack.empty()) {
      const task t = stack.back();
      stack.pop_back();
      std::size_t lo = t.lo;
      while (lo < t.hi && entries[lo].first.size() == t.depth) {
        if (t.depth > 0) nodes_[t.node].value = entries[lo].second;  // the last duplicate wins
        ++lo;
      }
      const auto first_edge = static_cast<std::uint32_t>(edges_.size());
      std::vector<task> children;
      for (std::size_t i = lo; i < t.hi;) {
        const auto byte = static_cast<unsigned char>(entries[i].first[t.depth]);
        std::size_t j = i;
        while (j < t.hi && static_cast<unsigned char>(entries[j].first[t.depth]) == byte) ++j;
        const auto child = static_cast<std::uint32_t>(nodes_.size());
        nodes_.push_back({0, 0, -1});
        edges_.push_back({byte, child});
        children.push_back({child, t.depth + 1, i, j});
        i = j;
      }
      nodes_[t.node].first_edge = first_edge;
      nodes_[t.node].edge_count = static_cast<std::uint32_t>(edges_.size() - first_edge);
      stack.insert(stack.end(), children.rbegin(), children.rend());
    }
  }

  /// The root node.
  static constexpr std::uint32_t root = 0;
  /// The child of `node` along `byte`, or -1.
  std::int64_t child(std::uint32_t node, unsigned char byte) const noexcept {
    const node_type& n = nodes_[node];
    const auto begin = edges_.begin() + n.first_edge;
    const auto end = begin + n.edge_count;
    const auto it = std::lower_bound(begin, end, byte, [](const edge& e, unsigned char b) { return e.byte < b; });
    return it != end && it->byte == byte ? static_cast<std::int64_t>(it->child) : -1;
  }
  /// The value stored at `node`, or -1.
  std::int32_t value(std::uint32_t node) const noexcept { return nodes_[node].value; }
  /// False for a trie with no strings.
  bool empty() const noexcept { return edges_.empty(); }

  /// The length of the longest string of the trie that is a prefix of `s`, or 0.
  std::size_t longest_prefix(std::string_view s) const noexcept {
    if (nodes_.empty()) return 0;
    std::uint32_t node = root;
    std::size_t longest = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const std::int64_t next = child(node, static_cast<unsigned char>(s[i]));
      if (next < 0) break;
      node = static_cast<std::uint32_t>(next);
      if (nodes_[node].value >= 0) longest = i + 1;
    }
    return longest;
  }

 private:
  struct node_type {
    std::uint32_t first_edge;
    std::uint32_t edge_count;
    std::int32_t value;
  };
  struct edge {
    unsigned char byte;
    std::uint32_t child;
  };
  std::vector<node_type> nodes_;
  std::vector<edge> edges_;
};

/// The normaliser settings of a SentencePiece model (NormalizerSpec, plus TrainerSpec's
/// treat_whitespace_as_suffix, which moves the dummy space to the end).
struct sentencepiece_normalizer_options {
  std::string precompiled_charsmap;  ///< empty: no character mapping (the "identity" rule)
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  bool treat_whitespace_as_suffix = false;
};

/// SentencePiece's Normalizer.
class sentencepiece_normalizer {
 public:
  /// The word-boundary marker U+2581 as UTF-8.
  static constexpr std::string_view space_marker = "\xE2\x96\x81";

  sentencepiece_normalizer() = default;

  /// Decodes the charsmap of `options` (layout: a little-endian uint32 byte size of the double array, the array's
  /// 32-bit units, then the replacement strings). `file` and `charsmap_offset` (the charsmap's offset in the file)
  /// locate errors.
  sentencepiece_normalizer(sentencepiece_normalizer_options options, const std::string& file,
                           std::size_t charsmap_offset)
      : options_(std::move(options)), file_(file), charsmap_offset_(charsmap_offset) {
    const std::string& blob = options_.precompiled_charsmap;
    if (blob.empty()) return;
    if (blob.size() <= 4)
      fail(0, "precompiled_charsmap has " + std::to_string(blob.size()) +
                  " bytes, expected a 4-byte trie size and the trie");
    std::uint32_t trie_bytes = 0;
    for (std::size_t i = 0; i < 4; ++i)
      trie_bytes |= static_cast<std::uint32_t>(static_cast<unsigned char>(blob[i])) << (8 * i);
    if (trie_bytes >= blob.size()) {
      fail(0, "precompiled_charsmap trie size is " + std::to_string(trie_bytes) + " bytes, expected less than the " +
                  std::to_string(blob.size()) + " bytes of the charsmap");
    }
    // Darts-clone reads trie_bytes / 4 whole units.
    units_.resize(trie_bytes / 4);
    for (std::size_t u = 0; u < units_.size(); ++u) {
      std::uint32_t v = 0;
      for (std::size_t i = 0; i < 4; ++i)
        v |= static_cast<std::uint32_t>(static_cast<unsigned char>(blob[4 + 4 * u + i])) << (8 * i);
      units_[u] = v;
    }
    strings_offset_ = 4 + trie_bytes;
  }

  /// Normalises `input`; `to_original` receives, for each byte of the result and one past its end, the offset in
  /// `input` of the character it came from (SentencePiece's norm_to_orig). The strings of `user_defined` (may be
  /// null) are matched first and pass through unnormalised.
  std::string normalize(std::string_view input, std::vector<std::size_t>& to_original,
                        const byte_trie* user_defined) const {
    std::string out;
    to_original.clear();
    if (input.empty()) {
      to_original.push_back(0);  // SentencePiece leaves it empty; one entry keeps the invariant size + 1
      return out;
    }
    std::size_t consumed = 0;
    if (options_.remove_extra_whitespaces) {
      while (!input.empty()) {
        const auto p = normalize_prefix(input, consumed, user_defined);
        if (p.first != " ") break;
        input.remove_prefix(p.second);
        consumed += p.second;
      }
    }
    if (input.empty()) {
      to_original.push_back(consumed);
      return out;
    }
    out.reserve(input.size() * 3);
    to_original.reserve(input.size() * 3 + 1);
    const auto add_space = [&] {
      if (options_.escape_whitespaces) {
        out += space_marker;
        to_original.insert(to_original.end(), space_marker.size(), consumed);
      } else {
        out += ' ';
        to_original.push_back(consumed);
      }
    };
    if (!options_.treat_whitespace_as_suffix && options_.add_dummy_prefix) add_space();
    bool previous_space = options_.remove_extra_whitespaces;
    while (!input.empty()) {
      const auto p = normalize_prefix(input, consumed, user_defined);
      std::string_view sp = p.first;
      while (previous_space && !sp.empty() && sp.front() == ' ') sp.remove_prefix(1);
      if (!sp.empty()) {
        for (const char c : sp) {
          if (options_.escape_whitespaces && c == ' ') {
            out += space_marker;
            to_original.insert(to_original.end(), space_marker.size(), consumed);
          } else {
            out += c;
            to_original.push_back(consumed);
          }
        }
        previous_space = sp.back() == ' ';
      }
      consumed += p.second;
      input.remove_prefix(p.second);
      if (!options_.remove_extra_whitespaces) previous_space = false;
    }
    if (options_.remove_extra_whitespaces) {
      const std::string_view space = options_.escape_whitespaces ? space_marker : std::string_view(" ");
      while (out.size() >= space.size() && std::string_view(out).substr(out.size() - space.size()) == space) {
        out.resize(out.size() - space.size());
        consumed = to_original[out.size()];  // the text ends where the dropped space began
        to_original.resize(out.size());
      }
    }
    if (options_.treat_whitespace_as_suffix && options_.add_dummy_prefix) add_space();
    to_original.push_back(consumed);
    return out;
  }

  const sentencepiece_normalizer_options& options() const noexcept { return options_; }

 private:
  /// The normalised form of the longest known prefix of `input` and the number of input bytes it replaces.
  std::pair<std::string_view, std::size_t> normalize_prefix(std::string_view input, std::size_t at,
                                                            const byte_trie* user_defined) const {
    if (user_defined != nullptr) {
      const std::size_t n = user_defined->longest_prefix(input);
      if (n > 0) return {input.substr(0, n), n};
    }
    std::size_t longest = 0;
    std::uint32_t value = 0;
    if (!units_.empty()) {
      // Darts-clone's commonPrefixSearch from the root.
      std::size_t id = offset(units_[0]);
      for (std::size_t i = 0; i < input.size(); ++i) {
        const auto byte = static_cast<unsigned char>(input[i]);
        id ^= byte;
        if (id >= units_.size()) break;  // cannot happen in a well-formed array: treat as no match
        const std::uint32_t unit = units_[id];
        if ((unit & ((1u << 31) | 0xFFu)) != byte) break;
        id ^= offset(unit);
        if ((unit >> 8) & 1u) {
          if (id >= units_.size()) break;
          longest = i + 1;
          value = units_[id] & ((1u << 31) - 1);
        }
      }
    }
    if (longest == 0) {
      const std::size_t n = sentencepiece_utf8_length(input);
      if (n == 0) return {"\xEF\xBF\xBD", 1};  // a malformed byte becomes U+FFFD and consumes one byte
      return {input.substr(0, n), n};
    }
    const std::string& blob = options_.precompiled_charsmap;
    const std::size_t begin = strings_offset_ + value;
    if (begin >= blob.size()) {
      fail(0, "precompiled_charsmap maps the input at byte " + std::to_string(at) + " to string offset " +
                  std::to_string(value) + ", expected less than " + std::to_string(blob.size() - strings_offset_));
    }
    std::size_t end = blob.find('\0', begin);
    if (end == std::string::npos) end = blob.size();
    return {std::string_view(blob).substr(begin, end - begin), longest};
  }

  static std::size_t offset(std::uint32_t unit) noexcept {
    return static_cast<std::size_t>((unit >> 10) << ((unit & (1u << 9)) >> 6));
  }

  [[noreturn]] void fail(std::size_t within, const std::string& what) const {
    throw format_error::at_byte(file_, charsmap_offset_ + within, "NormalizerSpec: " + what);
  }

  sentencepiece_normalizer_options options_;
  std::string file_;
  std::size_t charsmap_offset_ = 0;
  std::vector<std::uint32_t> units_;
  std::size_t strings_offset_ = 0;
};

}  // namespace detail
}  // namespace headlens
