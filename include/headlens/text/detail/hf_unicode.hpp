#pragma once
/// \file
/// Internal: the Unicode character properties and normalisation steps the Hugging Face `tokenizers` pipeline uses,
/// taken from ICU (link `-licuuc`). Each function mirrors the Rust predicate `tokenizers` calls (`char::is_whitespace`,
/// `char::to_lowercase`, `is_combining_mark`, ...) so that the C++ port splits and normalises where the reference does.

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "headlens/detail/utf8.hpp"
#include "headlens/error.hpp"

namespace headlens {
namespace detail {
namespace hf {

/// Rust's `char::is_whitespace`: the White_Space property.
inline bool is_whitespace(char32_t c) noexcept {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE) != 0;
}
/// Rust's `char::is_alphabetic`.
inline bool is_alphabetic(char32_t c) noexcept {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC) != 0;
}
inline int8_t category(char32_t c) noexcept { return u_charType(static_cast<UChar32>(c)); }
/// Rust's `char::is_numeric`: general categories Nd, Nl, No.
inline bool is_numeric(char32_t c) noexcept {
  const auto t = category(c);
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}
/// General category M* (`unicode_normalization::char::is_combining_mark`).
inline bool is_mark(char32_t c) noexcept {
  const auto t = category(c);
  return t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK || t == U_ENCLOSING_MARK;
}
inline bool is_nonspacing_mark(char32_t c) noexcept { return category(c) == U_NON_SPACING_MARK; }
/// General category P* (`unicode_categories::is_punctuation`).
inline bool is_punctuation(char32_t c) noexcept {
  switch (category(c)) {
    case U_DASH_PUNCTUATION: case U_START_PUNCTUATION: case U_END_PUNCTUATION: case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION: case U_INITIAL_PUNCTUATION: case U_FINAL_PUNCTUATION:
      return true;
    default:
      return false;
  }
}
/// The BERT pre-tokenizer's punctuation: ASCII punctuation or P*.
inline bool is_bert_punctuation(char32_t c) noexcept {
  const bool ascii_punct = (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return ascii_punct || is_punctuation(c);
}
/// General category C* (`char::is_other`), used by BertNormalizer's clean_text.
inline bool is_other(char32_t c) noexcept {
  switch (category(c)) {
    case U_CONTROL_CHAR: case U_FORMAT_CHAR: case U_SURROGATE: case U_PRIVATE_USE_CHAR: case U_UNASSIGNED:
      return true;
    default:
      return false;
  }
}
/// Rust regex's Unicode `\w` (used by added tokens' single_word): Alphabetic, M, Nd, Pc, Join_Control.
inline bool is_word_char(char32_t c) noexcept {
  const auto t = category(c);
  return is_alphabetic(c) || is_mark(c) || t == U_DECIMAL_DIGIT_NUMBER || t == U_CONNECTOR_PUNCTUATION ||
         c == 0x200C || c == 0x200D;
}
/// The CJK blocks BertNormalizer surrounds with spaces.
inline bool is_chinese_char(char32_t c) noexcept {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/// Decodes UTF-8 that is known valid (built by this library) into code points.
inline std::vector<char32_t> code_points(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    char32_t cp = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
    for (std::size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
    out.push_back(cp);
    i += n;
  }
  return out;
}
inline std::size_t utf8_length(char32_t c) noexcept { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }
inline std::size_t utf8_length_of_lead(unsigned char b) noexcept { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

/// Rust's `char::to_lowercase` (full, context-free mapping) of one code point.
inline std::vector<char32_t> to_lowercase(char32_t c) {
  if (c < 0x80) return {c >= 'A' && c <= 'Z' ? c + 32 : c};
  UChar src[2];
  int32_t src_len = 0;
  U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
  UChar dst[16];
  UErrorCode status = U_ZERO_ERROR;
  const int32_t n = u_strToLower(dst, 16, src, src_len, "", &status);
  if (U_FAILURE(status) || n <= 0) return {c};
  std::vector<char32_t> out;
  for (int32_t i = 0; i < n;) {
    UChar32 cp;
    U16_NEXT_UNSAFE(dst, i, cp);
    out.push_back(static_cast<char32_t>(cp));
  }
  return out;
}

/// The four Unicode normalisation forms.
enum class unicode_form { nfd, nfkd, nfc, nfkc };

/// Normalises `input` as the `unicode-normalization-alignments` crate does, returning each output code point with
/// its alignment change (0: replaces the next input character, +1: inserted, -n: replaces the next one and removes
/// n more), so that `normalized_string::transform` can keep the byte alignment. Decomposition emits each input
/// character's full decomposition (first 0, rest +1), sorts runs of non-starters by combining class (stable, the
/// change travelling with its character), and composition folds absorbed characters into the starter's change.
inline std::vector<std::pair<char32_t, int>> normalize_with_changes(const std::vector<char32_t>& input, unicode_form form) {
  UErrorCode status = U_ZERO_ERROR;
  const bool compat = form == unicode_form::nfkd || form == unicode_form::nfkc;
  const UNormalizer2* decomposer = compat ? unorm2_getNFKDInstance(&status) : unorm2_getNFDInstance(&status);
  const UNormalizer2* composer = unorm2_getNFCInstance(&status);
  if (U_FAILURE(status)) fail<error>("ICU normalisation data unavailable: ", u_errorName(status));
  std::vector<std::pair<char32_t, int>> out;
  out.reserve(input.size() + 8);
  UChar buffer[64];
  for (char32_t c : input) {
    UErrorCode st = U_ZERO_ERROR;
    const int32_t n = unorm2_getDecomposition(decomposer, static_cast<UChar32>(c), buffer, 64, &st);
    if (U_FAILURE(st) || n < 0) {
      out.push_back({c, 0});
      continue;
    }
    bool first = true;
    for (int32_t i = 0; i < n;) {
      UChar32 cp;
      U16_NEXT_UNSAFE(buffer, i, cp);
      out.push_back({static_cast<char32_t>(cp), first ? 0 : 1});
      first = false;
    }
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  auto ccc = [&](char32_t c) { return unorm2_getCombiningClass(composer, static_cast<UChar32>(c)); };
  for (std::size_t i = 0; i < out.size();) {
    if (ccc(out[i].first) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < out.size() && ccc(out[j].first) != 0) ++j;
    std::stable_sort(out.begin() + static_cast<std::ptrdiff_t>(i), out.begin() + static_cast<std::ptrdiff_t>(j),
                     [&](const auto& a, const auto& b) { return ccc(a.first) < ccc(b.first); });
    i = j;
  }
  if (form == unicode_form::nfd || form == unicode_form::nfkd) return out;
  // Canonical composition (UAX #15): a character combines with the last starter unless blocked.
  std::vector<std::pair<char32_t, int>> composed;
  composed.reserve(out.size());
  std::ptrdiff_t starter = -1;
  int last_ccc = -1;
  for (const auto& item : out) {
    const int c_ccc = static_cast<int>(ccc(item.first));
    if (starter >= 0) {
      const bool blocked = last_ccc != -1 && (last_ccc == 0 ? true : last_ccc >= c_ccc);
      // last_ccc == -1 means the previous character is the starter itself.
      if (!blocked) {
        const UChar32 pair = unorm2_composePair(composer, static_cast<UChar32>(composed[static_cast<std::size_t>(starter)].first),
                                                static_cast<UChar32>(item.first));
        if (pair >= 0) {
          auto& s = composed[static_cast<std::size_t>(starter)];
          s.first = static_cast<char32_t>(pair);
          s.second += item.second - 1;
          continue;
        }
      }
    }
    if (c_ccc == 0) {
      starter = static_cast<std::ptrdiff_t>(composed.size());
      last_ccc = -1;
    } else {
      last_ccc = c_ccc;
    }
    composed.push_back(item);
  }
  return composed;
}

}  // namespace hf
}  // namespace detail
}  // namespace headlens
