#pragma once
// HTML escaping for the pages headlens writes (analysis/report_html.hpp, analysis/head_card_html.hpp).

#include <string>
#include <string_view>

namespace headlens::detail {

/// `text` with `& < > " '` replaced by character references, safe in HTML text and in quoted attribute values.
inline std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace headlens::detail
