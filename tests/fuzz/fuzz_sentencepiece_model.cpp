// libFuzzer harness for SentencePiece tokenizer.model files (headlens::sentencepiece_model): the protobuf reader,
// the model checks, the charsmap and both encoders. The input is a serialised ModelProto. It must load or throw
// headlens::format_error with an offset inside the input; a loaded model must encode a fixed set of texts, and the
// input itself read as text, into ids in range whose spans lie inside the text with begin <= end. Anything else
// (another exception, a crash, a sanitizer report, a hang) is a finding.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     tests/fuzz/fuzz_sentencepiece_model.cpp -o fuzz_sentencepiece_model && ./fuzz_sentencepiece_model
//     -max_total_time=300 /tmp/spm-corpus tests/fuzz/corpus/sentencepiece_model
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
#include <headlens/text/sentencepiece_model.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check_encoding(const headlens::sentencepiece_model& model, std::string_view text) {
  std::vector<headlens::text_token> tokens;
  try {
    tokens = model.encode(text, model.bos_id().has_value());
  } catch (const headlens::format_error&) {
    return;  // a charsmap entry pointing outside the charsmap is found when it is used
  }
  for (const auto& t : tokens) {
    require(t.id >= 0 && t.id < model.size(), "ids in range");
    require(t.begin <= t.end && t.end <= text.size(), "spans inside the text");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1u << 20)) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::optional<headlens::sentencepiece_model> model;
  try {
    model.emplace(headlens::sentencepiece_model::from_bytes(bytes, "fuzz.model"));
  } catch (const headlens::format_error& e) {
    require(e.byte_offset() <= size, "error offsets inside the input");
    return 0;
  }
  for (const char* text : {"", " ", "Hello world", "  a  b\t\nc  ", "\xEF\xBC\xA1\xEF\xBC\x91 \xEF\xAC\x81",
                           "\xF0\x9F\x99\x82 \xE6\x97\xA5\xE6\x9C\xAC", "<sep> hello 12345", "\xFF\xC3"}) {
    check_encoding(*model, text);
  }
  check_encoding(*model, bytes.substr(0, 256));
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
