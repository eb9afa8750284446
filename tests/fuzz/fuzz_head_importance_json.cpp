// libFuzzer harness for the head importance JSON reader (analysis/head_importance_json.hpp): any byte string that
// parses as JSON must either be read by `head_importance_from_json` or be refused with headlens::argument_error (a
// field at fault). What is read must write back and read again to the same JSON, and every head must lie inside the
// model's shape. Any other exception, a crash, a sanitizer report or a broken invariant is a finding.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     -isystem /usr/include/eigen3 tests/fuzz/fuzz_head_importance_json.cpp -o fuzz_head_importance_json &&
//     ./fuzz_head_importance_json -max_total_time=300 /tmp/importance-corpus tests/fuzz/corpus/head_importance_json
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
#include <headlens/analysis/head_importance_json.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json in = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded()) return 0;  // not JSON: nlohmann's parser, not ours
  try {
    const headlens::head_importance_result r = headlens::head_importance_from_json(in);
    for (const headlens::importance_of_kind& k : r.kinds) {
      for (const headlens::head_importance& h : k.heads) {
        require(h.head.layer >= 0 && std::size_t(h.head.layer) < r.heads_per_layer.size(), "layer in range");
        require(h.head.head >= 0 && h.head.head < r.heads_per_layer[std::size_t(h.head.layer)], "head in range");
      }
    }
    const std::string once = headlens::head_importance_to_json(r).dump();
    const headlens::head_importance_result again = headlens::head_importance_from_json(nlohmann::json::parse(once));
    require(headlens::head_importance_to_json(again).dump() == once, "write, read, write gives the same JSON");
  } catch (const headlens::argument_error&) {
  }
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
