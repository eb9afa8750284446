// ggml's own dequantisation of fixture blocks, as a reference for test_gguf.cpp: loads libggml-base.so from the
// node-llama-cpp 3.21.1 prebuilt binaries (see tools/gguf_fixtures.mjs) with dlopen, dequantises the first 4 rows
// of blk.0.attn_q.weight of each llama_<TYPE>.gguf written by tools/make_gguf_fixtures.cpp, and writes them as
// tests/data/gguf/ggml_<TYPE>_attn_q_rows.npy (float32 [4 x 256]). Only the tensor bytes are taken from our
// reader; the values are ggml's. Usage, from the repository root:
//   g++ -std=c++17 -O1 -Iinclude -Itests -I/usr/include/eigen3 tools/ggml_dequant_reference.cpp -ldl \
//       -o build-h/ggml_dequant_reference
//   build-h/ggml_dequant_reference build/npm-llama/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so \
//       build/gguf-fixtures tests/data/gguf
#include <headlens/io/gguf.hpp>
#include <headlens/io/npy.hpp>

#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

using row_function = void (*)(const void*, float*, std::int64_t);

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s LIBGGML_BASE_SO FIXTURE_DIR OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  void* lib = dlopen(argv[1], RTLD_NOW);
  if (lib == nullptr) {
    std::fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  const std::pair<const char*, const char*> types[] = {{"F16", "ggml_fp16_to_fp32_row"},
                                                       {"BF16", "ggml_bf16_to_fp32_row"},
                                                       {"Q8_0", "dequantize_row_q8_0"},
                                                       {"Q4_0", "dequantize_row_q4_0"},
                                                       {"Q4_K", "dequantize_row_q4_K"},
                                                       {"Q6_K", "dequantize_row_q6_K"}};
  for (const auto& t : types) {
    const auto fn = reinterpret_cast<row_function>(dlsym(lib, t.second));
    if (fn == nullptr) {
      std::fprintf(stderr, "no symbol %s\n", t.second);
      return 1;
    }
    const headlens::gguf_file f(std::string(argv[2]) + "/llama_" + t.first + ".gguf");
    const headlens::gguf_tensor_info& info = f.tensor("blk.0.attn_q.weight");
    std::vector<float> out(4 * 256);
    fn(f.tensor_data(info), out.data(), 4 * 256);  // 4 rows of 256: whole blocks, contiguous
    headlens::write_npy(std::string(argv[3]) + "/ggml_" + t.first + "_attn_q_rows.npy", out.data(), {4, 256});
    std::printf("%s: %s, first value %g\n", t.first, t.second, double(out[0]));
  }
  return 0;
}
