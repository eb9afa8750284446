// libFuzzer harness for the GGUF tokenizer (models/gguf_tokenizer.hpp). The input is a whole GGUF file. Opening
// must succeed or throw format_error; building its tokenizer must succeed or throw format_error; a tokenizer that
// builds must encode fixed texts into ids below its vocabulary size with spans inside the text. Anything else
// (another exception, a crash, a sanitizer report, a broken invariant) is a finding.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER
//     -DHEADLENS_WITH_TOKENIZERS -Iinclude -isystem /usr/include/eigen3 tests/fuzz/fuzz_gguf_tokenizer.cpp
//     -o fuzz_gguf_tokenizer -lpcre2-8 -licuuc && ./fuzz_gguf_tokenizer -max_total_time=300 -rss_limit_mb=1024
//     /tmp/gguf-tok-corpus tests/fuzz/corpus/gguf_tokenizer
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
// The seeds in corpus/gguf_tokenizer/ are written by tools/make_gguf_tokenizer_fixtures.cpp (its third argument).
#include <headlens/io/gguf.hpp>
#include <headlens/models/gguf_tokenizer.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1u << 20)) return 0;
  std::vector<unsigned char> bytes(data, data + size);
  try {
    const headlens::gguf_file f = headlens::gguf_file::from_bytes(std::move(bytes), "fuzz.gguf");
    const headlens::pretrained_tokenizer tok = headlens::gguf_tokenizer(f);
    for (const std::string text : {"", "the cat and the hat", "  two  spaces\n\tand a tab", "na\xC3\xAFve \xE2\x82\xAC 42",
                                   "<s>ab</s> a b ab"}) {
      for (const bool special : {false, true}) {
        for (const auto& t : tok.encode(text, special)) {
          require(t.id >= 0 && t.id < tok.vocab_size(), "ids are in the vocabulary");
          require(t.begin <= t.end && t.end <= text.size(), "spans lie inside the text");
        }
      }
    }
  } catch (const headlens::format_error&) {
  }
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
