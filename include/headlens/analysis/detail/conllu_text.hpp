#pragma once
/// \file
/// Text helpers of the CoNLL-U reader (internal): integer parsing without allocation, quoting of bad values for
/// error messages, trimming.

#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace headlens {
namespace detail {

/// Parses a whole string_view as a decimal integer (no sign allowed unless `allow_sign`); false on anything else.
inline bool parse_integer(std::string_view text, long long& out, bool allow_sign = false) {
  if (text.empty()) return false;
  if (!allow_sign && (text[0] == '-' || text[0] == '+')) return false;
  if (text[0] == '+') return false;
  const char* first = text.data();
  const char* last = first + text.size();
  const auto result = std::from_chars(first, last, out);
  return result.ec == std::errc() && result.ptr == last;
}

/// Quotes a value for an error message, shortened to at most 60 characters; tabs show as `\t` and other control
/// characters as `?`, so the message stays on one readable line.
inline std::string quoted(std::string_view value) {
  constexpr std::size_t max_chars = 60;
  std::string out = "'";
  for (std::size_t i = 0; i < value.size() && i < max_chars; ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c == '\t') {
      out += "\\t";
    } else {
      out += c < 0x20 || c == 0x7f ? '?' : value[i];
    }
  }
  if (value.size() > max_chars) out += "...";
  out += "'";
  return out;
}

/// `text` without leading and trailing spaces and tabs.
inline std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

/// True when `text` begins with `prefix`.
inline bool starts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace detail
}  // namespace headlens
