#pragma once
/// \file
/// The one JSON form of a head verdict, written with the standard library only, so that the JSON report
/// (report_json.hpp, nlohmann_json) and the HTML page (report_html.hpp, no dependency) share one schema
/// (`docs/report-schema.md`):
///
///     {"layer":0,"head":3,"label":"positional",
///      "scores":{"syntactic":0,"coreference":-0.21,"discourse":null,"positional":0.1},
///      "confidence":0.99,"reason":"","evidence":[{"name":"argmax share at offset -1","value":1,"baseline":0.9}]}
///
/// Numbers are the shortest text that reads back as the same double; non-finite numbers (a NaN score: no
/// evidence) are `null`. Strings are JSON that is also safe inside an HTML `<script>` element.

#include <charconv>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "headlens/analysis/verdict.hpp"

namespace headlens {
namespace detail {

/// `text` as a JSON string literal that is also safe inside an HTML `<script>` element: quotes, backslashes and
/// control characters escaped as JSON requires, and `<`, `>`, `&`, `'`, U+2028, U+2029 as `\uXXXX`, so the text
/// can neither close the element (`</script>`), open a comment (`<!--`) nor end a JavaScript line.
inline std::string json_string_literal(std::string_view text) {
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c == '<' || c == '>' || c == '&' || c == '\'' || c == 0x7f) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else if (c == 0xe2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(text[i + 2]) == 0xa8 || static_cast<unsigned char>(text[i + 2]) == 0xa9)) {
      out += static_cast<unsigned char>(text[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

/// `value` as the shortest JSON number that reads back as the same double (locale-independent); `null` when not
/// finite.
inline std::string json_number_exact(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

}  // namespace detail

/// Appends the JSON object of `v` (see the file comment) to `out`.
inline void append_verdict_json(std::string& out, const head_verdict& v) {
  out += "{\"layer\":" + std::to_string(v.layer) + ",\"head\":" + std::to_string(v.head);
  out += ",\"label\":" + detail::json_string_literal(to_string(v.label));
  out += ",\"scores\":{";
  for (std::size_t c = 0; c < head_category_count; ++c) {
    if (c) out += ',';
    out += detail::json_string_literal(to_string(head_categories[c])) + ":" + detail::json_number_exact(v.scores[c]);
  }
  out += "},\"confidence\":" + detail::json_number_exact(v.confidence);
  out += ",\"reason\":" + detail::json_string_literal(v.reason) + ",\"evidence\":[";
  for (std::size_t e = 0; e < v.evidence.size(); ++e) {
    if (e) out += ',';
    out += "{\"name\":" + detail::json_string_literal(v.evidence[e].name) +
           ",\"value\":" + detail::json_number_exact(v.evidence[e].value) +
           ",\"baseline\":" + detail::json_number_exact(v.evidence[e].baseline) + "}";
  }
  out += "]}";
}

/// The JSON object of `v` as text (see the file comment).
inline std::string verdict_json(const head_verdict& v) {
  std::string out;
  append_verdict_json(out, v);
  return out;
}

}  // namespace headlens
