// libFuzzer harness for the GGUF reader (io/gguf.hpp), the block formats (io/ggml_quants.hpp) and the Llama loader
// (models/gguf_llama.hpp). The input is a whole file. Opening must succeed or throw format_error; an opened file
// must keep every tensor inside the data section, dequantise each convertible tensor (up to 2^20 elements) and
// re-read every metadata value; then loading it as a Llama must succeed (and run 3 tokens) or throw format_error
// (or argument_error / shape_error from the model's own checks). Anything else (another exception, a crash, a
// sanitizer report, a broken invariant, an allocation beyond the input's size times a small factor) is a finding.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     -isystem /usr/include/eigen3 tests/fuzz/fuzz_gguf.cpp -o fuzz_gguf && ./fuzz_gguf -max_total_time=300
//     -rss_limit_mb=512 /tmp/gguf-corpus tests/fuzz/corpus/gguf
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
// The seeds in corpus/gguf/ are written by tools/make_gguf_fixtures.cpp (its second argument).
#include <headlens/io/gguf.hpp>
#include <headlens/models/gguf_llama.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (1u << 20)) return 0;
  std::vector<unsigned char> bytes(data, data + size);
  try {
    const headlens::gguf_file f = headlens::gguf_file::from_bytes(std::move(bytes), "fuzz.gguf");
    require(f.data_offset() % f.alignment() == 0, "the data section is aligned");
    for (const auto& t : f.tensors()) {
      require(f.data_offset() + t.offset + t.bytes <= f.file_size(), "tensors lie inside the file");
      require(&f.tensor(t.name) == &t, "names find their tensor");
      if (headlens::ggml_traits(t.type).convertible && t.element_count() <= (1u << 20)) {
        const std::vector<float> v = f.read_floats(t.name);
        require(v.size() == t.element_count(), "every element is converted");
      }
    }
    for (const auto& kv : f.metadata()) require(f.find(kv.first) == &kv.second, "keys find their value");
    try {
      const auto model = headlens::load_gguf_llama<float>(f);
      const std::int32_t last = std::int32_t(model.vocab_size() - 1);
      const headlens::matrix<float> logits = model.forward(std::vector<std::int32_t>{0, last, 0});
      require(logits.rows() == 3 && logits.cols() == model.vocab_size(), "logits have the vocabulary's width");
    } catch (const headlens::format_error&) {
    } catch (const headlens::argument_error&) {
    } catch (const headlens::shape_error&) {
    }
  } catch (const headlens::format_error&) {
  }
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
