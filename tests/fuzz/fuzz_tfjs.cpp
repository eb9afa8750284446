// libFuzzer harness for the TF.js weights reader: the input is a model.json; its shards are two fixed in-memory
// files, "a.bin" (16 bytes) and "b.bin" (5 bytes); any other path is a missing file. Accepted outcomes: weights
// whose values match their shapes and whose bytes account for their group's shards, headlens::format_error, or
// headlens::io_error (a missing shard). Any other exception, a crash or a sanitizer report is a finding.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     -I/usr/include/eigen3 tests/fuzz/fuzz_tfjs.cpp -o fuzz_tfjs && ./fuzz_tfjs -max_total_time=300
//     /tmp/tfjs-corpus tests/fuzz/corpus/tfjs
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
#include <headlens/io/tfjs.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

std::vector<unsigned char> read_shard(const std::string& path) {
  if (path == "a.bin") return {0, 0, 128, 63, 0, 0, 0, 64, 1, 2, 3, 4, 0, 60, 0, 192};
  if (path == "b.bin") return {7, 0, 0, 0, 1};
  headlens::detail::fail<headlens::io_error>("no shard ", path);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 8192) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto weights = headlens::tfjs_weights::parse(text, "fuzz.json", read_shard);
    std::vector<std::uint64_t> used;
    for (const auto& w : weights.weights()) {
      std::uint64_t count = 1;
      for (headlens::Index extent : w.shape) count *= static_cast<std::uint64_t>(extent);
      require(w.size() == count, "values match the shape");
      require(&weights.at(w.name) == &w, "names find their weight");
      if (used.size() <= w.group) used.resize(w.group + 1, 0);
      const std::size_t element = headlens::dtype_size(w.stored ? *w.stored : w.type);
      require(w.offset == used[w.group], "weights are packed back to back");
      used[w.group] += count * element;
    }
  } catch (const headlens::format_error&) {
  } catch (const headlens::io_error&) {
  }
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
