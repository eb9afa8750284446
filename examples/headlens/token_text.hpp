#pragma once
// How `headlens maps` and `headlens tokenize` show the text a token covers.

#include <cstddef>
#include <string>

namespace headlens_cli {

/// A piece of valid UTF-8 cut at any bytes (a byte-level BPE token may end inside a character) with the bytes of
/// its cut characters replaced by U+FFFD, since JSON text must be UTF-8. Only cut edges are looked for: the whole
/// text was validated by the tokenizer.
inline std::string valid_utf8(const std::string& text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= text.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(text, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace headlens_cli
