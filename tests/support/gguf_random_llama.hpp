#pragma once
// A small random Llama written as GGUF by headlens's own writer, shared by tools/make_gguf_fixtures.cpp (which
// writes the files llama.cpp evaluates) and tests/test_gguf.cpp (which rebuilds the same bytes, checks their hash
// against the one llama.cpp read, and compares logits). Every weight is an integer times a power of two, drawn
// from splitmix64, so the bytes do not depend on the compiler or libm.
//
// Shape: d_model 256, 2 layers, 4 heads of 64, 2 kv heads, feed-forward 512, vocab 288 (a SentencePiece-style
// byte-fallback vocabulary: <unk>, <s>, </s>, <0x00>..<0xFF>, 29 word pieces), rms eps 1e-5, rope base 10000.
// Weights are generated in Hugging Face's layout ([out, in], rotate-half heads) and Q, K rows are permuted the
// way llama.cpp's converter does before they are written, so the loader's inverse permutation is exercised.

#include <headlens/io/gguf_writer.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gguf_fixture {

constexpr std::uint64_t d_model = 256, layers = 2, heads = 4, kv_heads = 2, head_dim = 64, ff = 512, vocab = 288;

/// The ids evaluated by both runtimes (starts with <s>).
inline std::vector<std::int32_t> ids() {
  return {1, 262, 75, 104, 101, 32, 280, 3, 258, 44, 287, 120, 266, 10, 200, 271, 33, 2, 261, 150};
}

struct rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform on [-scale, scale) in steps of scale * 2^-20 (scale a power of two, so exact).
  float uniform(float scale) {
    const std::int64_t k = std::int64_t(next() >> 43) - (std::int64_t(1) << 20);
    return float(k) * (scale / float(1 << 20));
  }
};

inline std::vector<float> random_values(rng& r, std::uint64_t n, float scale, float offset = 0) {
  std::vector<float> v(n);
  for (float& x : v) x = offset + r.uniform(scale);
  return v;
}

/// llama.cpp's converter permutation of a [n_head * head_dim, in] weight: row a * head_dim/2 + i of each head
/// moves to row 2i + a.
inline std::vector<float> permute_rotary(const std::vector<float>& w, std::uint64_t n_head, std::uint64_t in) {
  std::vector<float> out(w.size());
  const std::uint64_t half = head_dim / 2;
  for (std::uint64_t h = 0; h < n_head; ++h) {
    for (std::uint64_t a = 0; a < 2; ++a) {
      for (std::uint64_t i = 0; i < half; ++i) {
        const std::uint64_t from = h * head_dim + a * half + i, to = h * head_dim + 2 * i + a;
        for (std::uint64_t c = 0; c < in; ++c) out[to * in + c] = w[from * in + c];
      }
    }
  }
  return out;
}

inline void add_tokenizer(headlens::gguf_writer& w) {
  using headlens::gguf_value;
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<std::int32_t> types = {2, 3, 3};  // unknown, control, control
  const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    scores.push_back(0);
    types.push_back(6);  // byte
  }
  const char* words[] = {"a",  "b",  "c",  "d",  "e",  "f",  "g",   "h",   "i",   "j",  "k",  "l",   "m",  "n",  "o",
                         "th", "he", "in", "er", "an", "re", "the", "and", "ing", "on", "at", "ion", "is", "it"};
  for (const char* word : words) {
    tokens.push_back("\xE2\x96\x81" + std::string(word));  // U+2581, SentencePiece's space
    scores.push_back(-float(tokens.size()));
    types.push_back(1);  // normal
  }
  w.set("tokenizer.ggml.model", gguf_value::of_string("llama"));
  w.set("tokenizer.ggml.tokens", gguf_value::of_strings(tokens));
  w.set("tokenizer.ggml.scores", gguf_value::of_float32s(scores));
  w.set("tokenizer.ggml.token_type", gguf_value::of_int32s(types));
  w.set("tokenizer.ggml.bos_token_id", gguf_value::of_uint32(1));
  w.set("tokenizer.ggml.eos_token_id", gguf_value::of_uint32(2));
  w.set("tokenizer.ggml.unknown_token_id", gguf_value::of_uint32(0));
}

/// The GGUF bytes of the random Llama with every matrix stored as `type` (norms stay F32). With `arch` "qwen2"
/// the same shape as Qwen2 stores it: qwen2.* keys, Q, K, V biases, rows not permuted.
inline std::vector<unsigned char> llama_bytes(headlens::ggml_type type, const std::string& arch = "llama") {
  using headlens::gguf_value;
  const bool qwen2 = arch == "qwen2";
  headlens::gguf_writer w;
  w.set("general.architecture", gguf_value::of_string(arch));
  w.set("general.name", gguf_value::of_string("headlens random " + arch));
  w.set(arch + ".context_length", gguf_value::of_uint32(512));
  w.set(arch + ".embedding_length", gguf_value::of_uint32(std::uint32_t(d_model)));
  w.set(arch + ".block_count", gguf_value::of_uint32(std::uint32_t(layers)));
  w.set(arch + ".feed_forward_length", gguf_value::of_uint32(std::uint32_t(ff)));
  w.set(arch + ".attention.head_count", gguf_value::of_uint32(std::uint32_t(heads)));
  w.set(arch + ".attention.head_count_kv", gguf_value::of_uint32(std::uint32_t(kv_heads)));
  w.set(arch + ".attention.layer_norm_rms_epsilon", gguf_value::of_float32(1e-5f));
  w.set(arch + ".rope.freq_base", gguf_value::of_float32(10000.0f));
  w.set(arch + ".rope.dimension_count", gguf_value::of_uint32(std::uint32_t(head_dim)));
  w.set(arch + ".vocab_size", gguf_value::of_uint32(std::uint32_t(vocab)));
  add_tokenizer(w);

  rng r{20261207};
  auto matrix = [&](const std::string& name, std::uint64_t out, std::uint64_t in, float scale) {
    const std::vector<float> v = random_values(r, out * in, scale);
    w.add_tensor(name, type, {in, out}, v.data());
  };
  auto norm = [&](const std::string& name) {
    const std::vector<float> v = random_values(r, d_model, 0.25f, 1.0f);
    w.add_tensor(name, headlens::ggml_type::f32, {d_model}, v.data());
  };
  matrix("token_embd.weight", vocab, d_model, 1.0f);
  for (std::uint64_t l = 0; l < layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight");
    const std::vector<float> q = random_values(r, heads * head_dim * d_model, 0.125f);
    const std::vector<float> k = random_values(r, kv_heads * head_dim * d_model, 0.125f);
    w.add_tensor(p + "attn_q.weight", type, {d_model, heads * head_dim},
                 (qwen2 ? q : permute_rotary(q, heads, d_model)).data());
    w.add_tensor(p + "attn_k.weight", type, {d_model, kv_heads * head_dim},
                 (qwen2 ? k : permute_rotary(k, kv_heads, d_model)).data());
    matrix(p + "attn_v.weight", kv_heads * head_dim, d_model, 0.125f);
    if (qwen2) {
      for (const auto& bias : {std::make_pair("attn_q.bias", heads * head_dim), std::make_pair("attn_k.bias", kv_heads * head_dim),
                               std::make_pair("attn_v.bias", kv_heads * head_dim)}) {
        const std::vector<float> v = random_values(r, bias.second, 0.25f);
        w.add_tensor(p + bias.first, headlens::ggml_type::f32, {bias.second}, v.data());
      }
    }
    matrix(p + "attn_output.weight", d_model, heads * head_dim, 0.0625f);
    norm(p + "ffn_norm.weight");
    matrix(p + "ffn_gate.weight", ff, d_model, 0.125f);
    matrix(p + "ffn_up.weight", ff, d_model, 0.125f);
    matrix(p + "ffn_down.weight", d_model, ff, 0.0625f);
  }
  norm("output_norm.weight");
  matrix("output.weight", vocab, d_model, 0.25f);
  return w.bytes();
}

/// FNV-1a over the bytes: the fingerprint the reference logits were computed for.
inline std::uint64_t fnv1a(const std::vector<unsigned char>& bytes) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char b : bytes) h = (h ^ b) * 0x100000001B3ull;
  return h;
}

/// The fixture types, with their file names.
struct fixture_type {
  headlens::ggml_type type;
  const char* name;
};
inline std::vector<fixture_type> fixture_types() {
  using headlens::ggml_type;
  return {{ggml_type::f32, "F32"},   {ggml_type::f16, "F16"},   {ggml_type::bf16, "BF16"}, {ggml_type::q8_0, "Q8_0"},
          {ggml_type::q4_0, "Q4_0"}, {ggml_type::q4_k, "Q4_K"}, {ggml_type::q6_k, "Q6_K"}};
}

}  // namespace gguf_fixture
