// libFuzzer harness for the SentencePiece tokenizer, its NFKC and its vocab.json reader. The first byte picks:
// - even: the rest is text, tokenized with a small fixed vocabulary. Valid UTF-8 must give tokens whose ids are in
//   range and whose byte spans lie inside the text; NFKC must be idempotent on it.
//   Invalid UTF-8 must throw headlens::argument_error.
// - odd: the rest is a vocab.json; it must parse or throw headlens::format_error; a parsed vocabulary must build a
//   tokenizer or throw headlens::argument_error, and that tokenizer must tokenize a fixed text.
// Anything else (another exception, a crash, a sanitizer report, a broken invariant) is a finding.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     tests/fuzz/fuzz_sentencepiece.cpp -o fuzz_sentencepiece && ./fuzz_sentencepiece -max_total_time=300
//     /tmp/sp-corpus tests/fuzz/corpus/sentencepiece
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
#include <headlens/text/sentencepiece.hpp>
#include <headlens/text/unicode.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

const headlens::sentencepiece_unigram& small_tokenizer() {
  static const headlens::sentencepiece_unigram tokenizer(
      std::vector<headlens::sentencepiece_piece>{
          {"\xEF\xBF\xBD", 0},
          {"<s>", 0},
          {"\xE2\x96\x81", -2},
          {"\xE2\x96\x81the", -3},
          {"a", -4},
          {"b", -4},
          {"ab", -5},
          {":", 0},
          {":30", 30},
          {"\xC3\xA9", -6},
          {"e", -4},
          {"\xE2\x96\x81"
           "a",
           -3},
          {"\xE2\x96\x81"
           "a",
           -7},
      },
      2);
  return tokenizer;
}

void fuzz_text(const std::string& text) {
  const auto& tokenizer = small_tokenizer();
  std::vector<headlens::sentencepiece_token> tokens;
  try {
    tokens = tokenizer.encode(text);
  } catch (const headlens::argument_error&) {
    bool valid = true;
    try {
      headlens::decode_utf8(text);
    } catch (const headlens::argument_error&) {
      valid = false;
    }
    require(!valid, "only invalid UTF-8 is rejected");
    return;
  }
  // (Spans need not be in text order: canonical reordering of combining marks may move a mark's bytes.)
  for (const auto& t : tokens) {
    require(t.id >= 0 && static_cast<std::size_t>(t.id) < tokenizer.size(), "ids in range");
    require(t.begin <= t.end && t.end <= text.size(), "spans inside the text");
  }
  require(text.empty() == tokens.empty(), "empty text, and only empty text, has no tokens");
  const std::string once = headlens::nfkc(text);
  require(headlens::nfkc(once) == once, "NFKC is idempotent");
}

void fuzz_vocab(const std::string& text) {
  std::vector<headlens::sentencepiece_piece> pieces;
  try {
    pieces = headlens::sentencepiece_unigram::parse_vocab_json(text, "fuzz.json");
  } catch (const headlens::format_error& e) {
    require(e.byte_offset() <= text.size(), "error offsets inside the input");
    return;
  }
  try {
    const headlens::sentencepiece_unigram tokenizer(pieces, 1);
    for (const auto& t : tokenizer.encode("the a:30 b\xC3\xA9 \xF0\x9F\x99\x82")) {
      require(t.id >= 0 && static_cast<std::size_t>(t.id) < tokenizer.size(), "ids in range");
    }
  } catch (const headlens::argument_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 4096) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    fuzz_text(rest);
  } else {
    fuzz_vocab(rest);
  }
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
