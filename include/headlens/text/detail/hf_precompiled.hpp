#pragma once
/// \file
/// Internal: the `Precompiled` normalizer of tokenizer.json (SentencePiece's compiled character map, as T5, ALBERT,
/// XLM-R and other converted SentencePiece models carry it). The map is a Darts double-array trie over UTF-8 keys
/// and a blob of NUL-terminated replacements. As `tokenizers` does, each extended grapheme cluster shorter than 6
/// bytes is looked up whole (the first, shortest trie match wins), else each of its characters is; grapheme
/// clusters come from ICU's character break iterator.

#include <unicode/ubrk.h>
#include <unicode/utext.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/text/detail/hf_normalized.hpp"
#include "headlens/text/detail/hf_unicode.hpp"

namespace headlens {
namespace detail {
namespace hf {

/// Decodes standard base64 (padding optional); returns nullopt on any other character.
inline std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t pad = 0;
  for (char ch : in) {
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '+') v = 62;
    else if (ch == '/') v = 63;
    else if (ch == '=') {
      ++pad;
      continue;
    } else return std::nullopt;
    if (pad > 0) return std::nullopt;  // data after padding
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFFu);
    }
  }
  return out;
}

/// SentencePiece's precompiled character map.
class precompiled_charsmap {
 public:
  precompiled_charsmap() = default;
  /// Parses the decoded map; returns an error message, empty when it is well formed.
  std::string parse(const std::string& bytes) {
    if (bytes.size() < 4) return "is " + std::to_string(bytes.size()) + " bytes, too short for its trie size";
    const auto b = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::uint32_t trie_bytes = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
    if (trie_bytes % 4 != 0 || trie_bytes > bytes.size() - 4 || trie_bytes == 0) {
      return "declares a trie of " + std::to_string(trie_bytes) + " bytes, expected a positive multiple of 4 within its " +
             std::to_string(bytes.size() - 4) + " bytes";
    }
    units_.resize(trie_bytes / 4);
    for (std::size_t i = 0; i < units_.size(); ++i) {
      const unsigned char* p = b + 4 + 4 * i;
      units_[i] = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
    }
    normalized_ = bytes.substr(4 + trie_bytes);
    return {};
  }

  /// The replacement of `chunk` if a key is a prefix of it (the shortest such key), as `tokenizers` looks it up.
  std::optional<std::string_view> transform(std::string_view chunk) const {
    if (units_.empty()) return std::nullopt;
    std::size_t node = offset(units_[0]);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      const auto c = static_cast<unsigned char>(chunk[i]);
      node ^= c;
      if (node >= units_.size()) return std::nullopt;
      const std::uint32_t unit = units_[node];
      if ((unit & ((1u << 31) | 0xFFu)) != c) return std::nullopt;  // label mismatch
      node ^= offset(unit);
      if (node >= units_.size()) return std::nullopt;
      if ((unit >> 8) & 1u) {  // has a leaf: the first (shortest) match
        const std::size_t index = units_[node] & 0x7FFFFFFFu;
        if (index >= normalized_.size()) return std::nullopt;
        const std::size_t end = normalized_.find('\0', index);
        return std::string_view(normalized_).substr(index, (end == std::string::npos ? normalized_.size() : end) - index);
      }
    }
    return std::nullopt;
  }

  void apply(normalized_string& n) const {
    std::vector<std::pair<char32_t, int>> dest;
    dest.reserve(n.text.size());
    bool modified = false;
    auto replace = [&](std::string_view old_part, std::string_view new_part) {
      const auto old_cps = code_points(old_part);
      const auto new_cps = code_points(new_part);
      for (char32_t c : new_cps) dest.push_back({c, 0});
      const std::ptrdiff_t diff = static_cast<std::ptrdiff_t>(new_cps.size()) - static_cast<std::ptrdiff_t>(old_cps.size());
      if (diff > 0) {
        for (std::ptrdiff_t k = 0; k < diff; ++k) dest[dest.size() - 1 - static_cast<std::size_t>(k)].second = 1;
      } else if (diff < 0 && !dest.empty()) {
        dest.back().second += static_cast<int>(diff);
      }
    };
    for (const auto& [b, e] : graphemes(n.text)) {
      const std::string_view g = std::string_view(n.text).substr(b, e - b);
      if (g.size() < 6) {
        if (const auto norm = transform(g)) {
          modified = true;
          replace(g, *norm);
          continue;
        }
      }
      for (std::size_t i = 0; i < g.size();) {
        const std::size_t len = utf8_length_of_lead(static_cast<unsigned char>(g[i]));
        const std::string_view part = g.substr(i, len);
        if (const auto norm = transform(part)) {
          modified = true;
          replace(part, *norm);
        } else {
          dest.push_back({code_points(part)[0], 0});
        }
        i += len;
      }
    }
    if (modified) n.transform(dest, 0);
  }

 private:
  std::vector<std::uint32_t> units_;
  std::string normalized_;

  static std::size_t offset(std::uint32_t unit) noexcept { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }

  /// Extended grapheme clusters of `s` as byte ranges (ICU's character break iterator).
  static std::vector<span> graphemes(const std::string& s) {
    std::vector<span> out;
    if (s.empty()) return out;
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<UText, UText* (*)(UText*)> text(utext_openUTF8(nullptr, s.data(), static_cast<int64_t>(s.size()), &status),
                                                     utext_close);
    std::unique_ptr<UBreakIterator, void (*)(UBreakIterator*)> it(ubrk_open(UBRK_CHARACTER, "", nullptr, 0, &status), ubrk_close);
    if (U_SUCCESS(status)) ubrk_setUText(it.get(), text.get(), &status);
    if (U_FAILURE(status)) fail<error>("ICU grapheme break iterator unavailable: ", u_errorName(status));
    std::int32_t prev = ubrk_first(it.get());
    for (std::int32_t next = ubrk_next(it.get()); next != UBRK_DONE; next = ubrk_next(it.get())) {
      out.push_back({static_cast<std::size_t>(prev), static_cast<std::size_t>(next)});
      prev = next;
    }
    return out;
  }
};

}  // namespace hf
}  // namespace detail
}  // namespace headlens
