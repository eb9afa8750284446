// Writes the random Llama of tests/support/gguf_random_llama.hpp as GGUF files, one per weight type, with
// headlens's own writer, and prints each file's FNV-1a hash (the table test_gguf.cpp checks its rebuilt bytes
// against). tools/gguf_fixtures.mjs then evaluates the files in llama.cpp (node-llama-cpp) and writes the
// reference log-probabilities to tests/data/gguf/. Usage, from the repository root:
//   g++ -std=c++17 -O1 -Iinclude -Itests -I/usr/include/eigen3 tools/make_gguf_fixtures.cpp -o build-h/make_gguf
//   build-h/make_gguf build/gguf-fixtures        # then: node tools/gguf_fixtures.mjs build/gguf-fixtures
#include <support/gguf_random_llama.hpp>

#include <cinttypes>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIRECTORY\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  for (const auto& t : gguf_fixture::fixture_types()) {
    const std::vector<unsigned char> bytes = gguf_fixture::llama_bytes(t.type);
    headlens::detail::write_file_bytes(dir + "/llama_" + t.name + ".gguf", bytes.data(), bytes.size());
    std::printf("{\"%s\", 0x%016" PRIx64 "ull},  // %zu bytes\n", t.name, gguf_fixture::fnv1a(bytes), bytes.size());
  }
  return 0;
}
