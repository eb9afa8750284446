// Writes the random Llama of tests/support/gguf_random_llama.hpp as GGUF files, one per weight type, with
// headlens's own writer, and prints each file's FNV-1a hash (the table test_gguf.cpp checks its rebuilt bytes
// against). tools/gguf_fixtures.mjs then evaluates the files in llama.cpp (node-llama-cpp) and writes the
// reference log-probabilities to tests/data/gguf/. Usage, from the repository root:
//   g++ -std=c++17 -O1 -Iinclude -Itests -I/usr/include/eigen3 tools/make_gguf_fixtures.cpp -o build-h/make_gguf
//   build-h/make_gguf build/gguf-fixtures        # then: node tools/gguf_fixtures.mjs build/gguf-fixtures
// With a second directory it also writes the fuzz seeds of tests/fuzz/corpus/gguf/: a file with every metadata
// type, nested arrays, alignment 64 and a tensor of each supported type; a tiny F16 Llama; and three broken files.
#include <support/gguf_random_llama.hpp>

#include <cinttypes>
#include <cstdio>
#include <string>

namespace {

using headlens::ggml_type;
using headlens::gguf_type;
using headlens::gguf_value;

void write(const std::string& path, const std::vector<unsigned char>& bytes) {
  headlens::detail::write_file_bytes(path, bytes.data(), bytes.size());
}

std::vector<unsigned char> every_type() {
  headlens::gguf_writer w(64);
  w.set("u8", gguf_value::scalar(gguf_type::uint8, 250));
  w.set("i8", gguf_value::scalar(gguf_type::int8, std::uint64_t(std::int64_t(-5))));
  w.set("u16", gguf_value::scalar(gguf_type::uint16, 65535));
  w.set("i16", gguf_value::scalar(gguf_type::int16, std::uint64_t(std::int64_t(-300))));
  w.set("u32", gguf_value::of_uint32(7));
  w.set("i32", gguf_value::of_int32(-7));
  w.set("u64", gguf_value::of_uint64(1ull << 40));
  w.set("i64", gguf_value::scalar(gguf_type::int64, std::uint64_t(std::int64_t(-9))));
  w.set("f32", gguf_value::of_float32(0.5f));
  w.set("f64", gguf_value::of_float64(0.25));
  w.set("b", gguf_value::of_bool(true));
  w.set("s", gguf_value::of_string("text"));
  w.set("strings", gguf_value::of_strings({"a", "bc"}));
  gguf_value nested;
  nested.type = gguf_type::array;
  nested.element_type = gguf_type::array;
  nested.array_items = {gguf_value::of_int32s({1, 2}), gguf_value::of_float32s({0.5f})};
  w.set("nested", nested);
  gguf_fixture::rng r{3};
  for (const auto& t : gguf_fixture::fixture_types()) {
    const std::uint64_t n = headlens::ggml_traits(std::uint32_t(t.type)).block_size == 256 ? 256 : 32;
    const std::vector<float> v = gguf_fixture::random_values(r, 2 * n, 1.0f);
    w.add_tensor(std::string("t_") + t.name, t.type, {n, 2}, v.data());
  }
  return w.bytes();
}

std::vector<unsigned char> tiny_llama() {
  headlens::gguf_writer w;
  w.set("general.architecture", gguf_value::of_string("llama"));
  w.set("llama.embedding_length", gguf_value::of_uint32(32));
  w.set("llama.block_count", gguf_value::of_uint32(1));
  w.set("llama.feed_forward_length", gguf_value::of_uint32(32));
  w.set("llama.attention.head_count", gguf_value::of_uint32(2));
  w.set("llama.attention.head_count_kv", gguf_value::of_uint32(1));
  w.set("llama.attention.layer_norm_rms_epsilon", gguf_value::of_float32(1e-5f));
  gguf_fixture::rng r{5};
  auto add = [&](const std::string& name, std::vector<std::uint64_t> dims) {
    std::uint64_t n = 1;
    for (std::uint64_t d : dims) n *= d;
    const std::vector<float> v = gguf_fixture::random_values(r, n, 0.5f, dims.size() == 1 ? 1.0f : 0.0f);
    w.add_tensor(name, dims.size() == 1 ? ggml_type::f32 : ggml_type::f16, dims, v.data());
  };
  add("token_embd.weight", {32, 4});
  for (const char* n : {"attn_norm", "ffn_norm"}) add(std::string("blk.0.") + n + ".weight", {32});
  add("blk.0.attn_q.weight", {32, 32});
  add("blk.0.attn_k.weight", {32, 16});
  add("blk.0.attn_v.weight", {32, 16});
  add("blk.0.attn_output.weight", {32, 32});
  for (const char* n : {"ffn_gate", "ffn_up"}) add(std::string("blk.0.") + n + ".weight", {32, 32});
  add("blk.0.ffn_down.weight", {32, 32});
  add("output_norm.weight", {32});
  return w.bytes();
}

void write_corpus(const std::string& dir) {
  const std::vector<unsigned char> all = every_type();
  write(dir + "/every_type.gguf", all);
  write(dir + "/tiny_llama_f16_tied.gguf", tiny_llama());
  std::vector<unsigned char> b(all.begin(), all.begin() + 40);
  write(dir + "/error-truncated.gguf", b);
  b = all;
  b[0] = 'g';
  b.resize(64);
  write(dir + "/error-magic.gguf", b);
  b = std::vector<unsigned char>(all.begin(), all.begin() + 64);
  b[15] = 0x10;  // a tensor count of 2^60
  write(dir + "/error-tensor-count.gguf", b);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIRECTORY [FUZZ_CORPUS_DIRECTORY]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  for (const auto& t : gguf_fixture::fixture_types()) {
    const std::vector<unsigned char> bytes = gguf_fixture::llama_bytes(t.type);
    headlens::detail::write_file_bytes(dir + "/llama_" + t.name + ".gguf", bytes.data(), bytes.size());
    std::printf("{\"%s\", 0x%016" PRIx64 "ull},  // %zu bytes\n", t.name, gguf_fixture::fnv1a(bytes), bytes.size());
  }
  const std::vector<unsigned char> qwen2 = gguf_fixture::llama_bytes(headlens::ggml_type::f32, "qwen2");
  write(dir + "/qwen2_F32.gguf", qwen2);
  std::printf("qwen2 F32: 0x%016" PRIx64 "ull,  // %zu bytes\n", gguf_fixture::fnv1a(qwen2), qwen2.size());
  if (argc == 3) write_corpus(argv[2]);
  return 0;
}
