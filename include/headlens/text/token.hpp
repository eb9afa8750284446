#pragma once
/// \file
/// Tokens of a text as every tokenizer in headlens returns them: an id and the bytes of the text it covers. One
/// struct for all of them, so that alignment (analysis/alignment.hpp) and the models take any tokenizer's output.

#include <cstddef>
#include <cstdint>

namespace headlens {

/// A half-open byte range `[begin, end)` of a UTF-8 text.
struct byte_span {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool operator==(const byte_span& o) const noexcept { return begin == o.begin && end == o.end; }
};

/// One token of a text: its id and the bytes `[begin, end)` of the original UTF-8 text it covers. What the span
/// of a token is depends on the tokenizer (each says so beside its alias): byte-level BPE tokens cover the text
/// exactly, a SentencePiece `▁` covers no bytes, a token the model adds itself (beginning of sequence) is empty.
struct text_token {
  std::int32_t id = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
};

}  // namespace headlens
