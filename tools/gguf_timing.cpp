// A rough prompt-processing timing of headlens on a ~1.1B random Llama in GGUF (TinyLlama's shape: d 2048,
// 22 layers, 32 heads, 4 kv heads, ff 5632, vocab 32000), to compare with llama.cpp on the same file
// (tools/gguf_timing.mjs). Build with -O3 -march=native -fopenmp, run with OMP_NUM_THREADS=2:
//   g++ -std=c++17 -O3 -DNDEBUG -march=native -fopenmp -Iinclude -Itests -I/usr/include/eigen3 \
//       tools/gguf_timing.cpp -o build-h/gguf_timing
//   build-h/gguf_timing make build/llama1b_F16.gguf F16       # or F32
//   OMP_NUM_THREADS=2 build-h/gguf_timing run build/llama1b_F16.gguf 512 3
#include <headlens/io/gguf_writer.hpp>
#include <headlens/kernels/streaming_statistics.hpp>
#include <headlens/models/gguf_llama.hpp>
#include <support/gguf_random_llama.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void make(const std::string& path, headlens::ggml_type type) {
  using headlens::gguf_value;
  const std::uint64_t d = 2048, layers = 22, heads = 32, kv = 4, hd = 64, ff = 5632, vocab = 32000;
  headlens::gguf_writer w;
  w.set("general.architecture", gguf_value::of_string("llama"));
  w.set("llama.context_length", gguf_value::of_uint32(4096));
  w.set("llama.embedding_length", gguf_value::of_uint32(d));
  w.set("llama.block_count", gguf_value::of_uint32(layers));
  w.set("llama.feed_forward_length", gguf_value::of_uint32(ff));
  w.set("llama.attention.head_count", gguf_value::of_uint32(heads));
  w.set("llama.attention.head_count_kv", gguf_value::of_uint32(kv));
  w.set("llama.attention.layer_norm_rms_epsilon", gguf_value::of_float32(1e-5f));
  w.set("llama.rope.freq_base", gguf_value::of_float32(10000.0f));
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<std::int32_t> types = {2, 3, 3};
  const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    scores.push_back(0);
    types.push_back(6);
  }
  while (tokens.size() < vocab) {
    tokens.push_back("\xE2\x96\x81w" + std::to_string(tokens.size()));
    scores.push_back(-float(tokens.size()));
    types.push_back(1);
  }
  w.set("tokenizer.ggml.model", gguf_value::of_string("llama"));
  w.set("tokenizer.ggml.tokens", gguf_value::of_strings(tokens));
  w.set("tokenizer.ggml.scores", gguf_value::of_float32s(scores));
  w.set("tokenizer.ggml.token_type", gguf_value::of_int32s(types));
  w.set("tokenizer.ggml.bos_token_id", gguf_value::of_uint32(1));
  w.set("tokenizer.ggml.eos_token_id", gguf_value::of_uint32(2));
  gguf_fixture::rng r{11};
  auto add = [&](const std::string& name, std::uint64_t out, std::uint64_t in, float scale) {
    const std::vector<float> v = gguf_fixture::random_values(r, out * in, scale, in == 1 ? 1.0f : 0.0f);
    if (in == 1) {
      w.add_tensor(name, headlens::ggml_type::f32, {out}, v.data());
    } else {
      w.add_tensor(name, type, {in, out}, v.data());
    }
  };
  add("token_embd.weight", vocab, d, 1.0f);
  for (std::uint64_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", d, 1, 0.25f);
    add(p + "attn_q.weight", heads * hd, d, 0.03125f);
    add(p + "attn_k.weight", kv * hd, d, 0.03125f);
    add(p + "attn_v.weight", kv * hd, d, 0.03125f);
    add(p + "attn_output.weight", d, heads * hd, 0.03125f);
    add(p + "ffn_norm.weight", d, 1, 0.25f);
    add(p + "ffn_gate.weight", ff, d, 0.03125f);
    add(p + "ffn_up.weight", ff, d, 0.03125f);
    add(p + "ffn_down.weight", d, ff, 0.015625f);
  }
  add("output_norm.weight", d, 1, 0.25f);
  add("output.weight", vocab, d, 0.03125f);
  w.write(path);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 4 && std::string(argv[1]) == "make") {
    make(argv[2], std::string(argv[3]) == "F32" ? headlens::ggml_type::f32 : headlens::ggml_type::f16);
    return 0;
  }
  if (argc < 4 || std::string(argv[1]) != "run") {
    std::fprintf(stderr, "usage: %s make PATH F16|F32 | run PATH TOKENS [REPEATS]\n", argv[0]);
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  const auto model = headlens::load_gguf_llama<float>(std::string(argv[2]));
  std::printf("load: %.1f s\n", seconds_since(start));
  const int tokens = std::atoi(argv[3]), repeats = argc > 4 ? std::atoi(argv[4]) : 3;
  std::vector<std::int32_t> ids(static_cast<std::size_t>(tokens));
  for (int i = 0; i < tokens; ++i) ids[std::size_t(i)] = std::int32_t((i * 7919 + 1) % 32000);
  for (int stats = 0; stats < 2; ++stats) {
    double best = 1e30;
    for (int k = 0; k < repeats; ++k) {
      headlens::forward_options<float> o;
      headlens::attention_statistics<float> s;
      if (stats) o.statistics = &s;
      start = std::chrono::steady_clock::now();
      const headlens::matrix<float> logits = model.forward(ids, o);
      best = std::min(best, seconds_since(start));
      if (logits.rows() != tokens) return 1;
    }
    std::printf("headlens %s: %d tokens, best of %d: %.3f s, %.1f tokens/s\n",
                stats ? "with streaming statistics" : "plain", tokens, repeats, best, tokens / best);
  }
  return 0;
}
