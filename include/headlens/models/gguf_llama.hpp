#pragma once
/// \file
/// Llama-family models in GGUF files (llama.cpp's format): `general.architecture` "llama" (Llama 1/2/3 without
/// rope scaling, and Mistral, which llama.cpp's converter writes as "llama") and "qwen2" (Qwen2/2.5: biases on Q,
/// K and V), loaded into a `transformer` (models/transformer.hpp) whose every head can be hooked. Weights are
/// dequantised to `Scalar` on load (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K; io/ggml_quants.hpp).
///
///   auto model = headlens::load_gguf_llama<float>("model.gguf");
///   headlens::matrix<float> logits = model.forward({1, 15043, 3186});   // [T x vocab]
///
/// Metadata read (ARCH.* keys, ARCH = general.architecture): embedding_length, block_count, feed_forward_length, attention.head_count,
/// attention.head_count_kv (default head_count), attention.layer_norm_rms_epsilon, rope.freq_base (default
/// 10000), rope.dimension_count (default head_dim; must equal it), attention.key_length / value_length (default
/// embedding_length / head_count; must be equal), rope.scaling.type (absent or "none": scaled rotary positions
/// are not supported, nor is a rope_freqs.weight tensor, Llama 3.1's form of it). ARCH.context_length is not needed by the forward (`gguf_llama_config` keeps it).
/// Tensors: token_embd.weight, output_norm.weight, output.weight (absent: tied to the embedding), and per layer
/// blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.weight, and
/// blk.N.attn_{q,k,v}.bias when present (always for qwen2).
///
/// Orientation: a GGUF weight of dims [ne0, ne1] = [in, out] is ne1 rows of ne0 (PyTorch's [out, in]); it is
/// transposed once to the `x W` convention.
///
/// Rotary pairs: for "llama", llama.cpp's converter permutes the rows of each head of Q and K (weights and
/// biases) so that its interleaved rotary (pairs 2i, 2i + 1) equals Hugging Face's rotate-half (pairs i,
/// i + head_dim/2): row 2i + a of a GGUF head is row a * head_dim/2 + i of the original. The loader applies the
/// inverse permutation, so headlens's rotate-half rotary gives llama.cpp's results and the q/k hooks see Hugging
/// Face's head layout. "qwen2" is stored unpermuted (llama.cpp rotates it in the rotate-half "NEOX" order).
///
/// Errors: an architecture other than "llama" or "qwen2", a missing or wrongly typed key, an unsupported value -> `format_error`
/// naming the key and value (at its byte offset); a missing tensor, one of the wrong dims or a type that cannot be
/// converted -> `format_error` naming the tensor and the expected dims.
/// Tokenizer (tokenizer.ggml.*) is not read here: the model takes token ids.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "headlens/io/gguf.hpp"
#include "headlens/models/transformer.hpp"

namespace headlens {

/// The settings of a GGUF Llama that the forward pass depends on.
struct gguf_llama_config {
  std::string architecture = "llama";  ///< general.architecture: "llama" or "qwen2"
  bool permuted_rotary = true;         ///< Q and K rows in llama.cpp's interleaved order (architecture "llama")
  Index vocab_size = 0;
  Index context_length = 0;  ///< ARCH.context_length (0 when absent); informational
  Index embedding_length = 0;
  Index block_count = 0;
  Index feed_forward_length = 0;
  Index head_count = 0;
  Index head_count_kv = 0;
  Index head_dim = 0;
  double rms_epsilon = 1e-5;
  double rope_freq_base = 10000.0;
  bool tied_output = false;  ///< no output.weight: logits use the token embedding

  /// Reads and checks general.architecture and the ARCH.* metadata of `f` (see the file comment).
  static gguf_llama_config from_file(const gguf_file& f) {
    const std::string arch = f.get_string("general.architecture");
    if (arch != "llama" && arch != "qwen2") {
      f.bad_value("general.architecture", "\"" + arch + "\"",
                  "\"llama\" or \"qwen2\" (other architectures are not supported)");
    }
    const std::string k = arch + ".";
    auto positive = [&](const std::string& key) -> Index {
      const std::uint64_t v = f.get_uint(key);
      if (v == 0 || v > (std::uint64_t(1) << 31)) f.bad_value(key, std::to_string(v), "a count from 1 to 2^31");
      return Index(v);
    };
    gguf_llama_config c;
    c.architecture = arch;
    c.permuted_rotary = arch == "llama";
    c.context_length = Index(std::min<std::uint64_t>(f.get_uint_or(k + "context_length", 0), std::uint64_t(1) << 40));
    c.embedding_length = positive(k + "embedding_length");
    c.block_count = positive(k + "block_count");
    c.feed_forward_length = positive(k + "feed_forward_length");
    c.head_count = positive(k + "attention.head_count");
    c.head_count_kv = f.has(k + "attention.head_count_kv") ? positive(k + "attention.head_count_kv") : c.head_count;
    if (c.head_count % c.head_count_kv != 0) {
      f.bad_value(k + "attention.head_count_kv", std::to_string(c.head_count_kv),
                  "a divisor of " + k + "attention.head_count = " + std::to_string(c.head_count));
    }
    if (f.has(k + "attention.key_length")) {
      c.head_dim = positive(k + "attention.key_length");
    } else {
      if (c.embedding_length % c.head_count != 0) {
        f.bad_value(k + "embedding_length", std::to_string(c.embedding_length),
                    "a multiple of " + k + "attention.head_count = " + std::to_string(c.head_count));
      }
      c.head_dim = c.embedding_length / c.head_count;
    }
    if (f.has(k + "attention.value_length") && positive(k + "attention.value_length") != c.head_dim) {
      f.bad_value(k + "attention.value_length", std::to_string(f.get_uint(k + "attention.value_length")),
                  "the key length " + std::to_string(c.head_dim));
    }
    if (c.head_dim % 2 != 0) {
      f.bad_value(k + "attention.key_length", std::to_string(c.head_dim), "an even head width (rotary pairs)");
    }
    const std::uint64_t rot = f.get_uint_or(k + "rope.dimension_count", std::uint64_t(c.head_dim));
    if (rot != std::uint64_t(c.head_dim)) {
      f.bad_value(k + "rope.dimension_count", std::to_string(rot),
                  "the head width " + std::to_string(c.head_dim) + " (partial rotary is not supported)");
    }
    c.rms_epsilon = f.get_number(k + "attention.layer_norm_rms_epsilon");
    if (!(c.rms_epsilon >= 0 && c.rms_epsilon < 1)) {
      f.bad_value(k + "attention.layer_norm_rms_epsilon", std::to_string(c.rms_epsilon), "a value in [0, 1)");
    }
    c.rope_freq_base = f.get_number_or(k + "rope.freq_base", 10000.0);
    if (!(c.rope_freq_base > 1)) {
      f.bad_value(k + "rope.freq_base", std::to_string(c.rope_freq_base), "a value above 1");
    }
    const std::string scaling = f.get_string_or(k + "rope.scaling.type", "none");
    if (scaling != "none") {
      f.bad_value(k + "rope.scaling.type", "\"" + scaling + "\"", "\"none\" (scaled rotary positions are not supported)");
    }
    if (const gguf_tensor_info* freqs = f.find_tensor("rope_freqs.weight")) {
      // Llama 3.1/3.2 files carry their "llama3" rope scaling as per-frequency factors, with no scaling key.
      throw format_error::at_byte(f.file_name(), freqs->info_offset,
                                  "tensor rope_freqs.weight (rotary frequency factors, Llama 3.1-style rope scaling) "
                                  "is present, expected none (scaled rotary positions are not supported)");
    }
    const gguf_tensor_info& embedding = f.tensor("token_embd.weight");
    if (embedding.dims.size() != 2 || embedding.dims[0] != std::uint64_t(c.embedding_length)) {
      throw format_error::at_byte(f.file_name(), embedding.info_offset,
                                  "tensor token_embd.weight has dims " + embedding.dims_string() + ", expected [" +
                                      std::to_string(c.embedding_length) + ", vocab]");
    }
    c.vocab_size = Index(embedding.dims[1]);
    c.tied_output = f.find_tensor("output.weight") == nullptr;
    return c;
  }
};

namespace detail {

/// Checks that tensor `name` of `f` has GGUF dims `dims` (ne0 first); throws `format_error` naming both.
inline void check_gguf_dims(const gguf_file& f, const std::string& name, std::vector<std::uint64_t> dims) {
  const gguf_tensor_info& t = f.tensor(name);
  if (t.dims != dims) {
    gguf_tensor_info expected;
    expected.dims = std::move(dims);
    throw format_error::at_byte(f.file_name(), t.info_offset,
                                "tensor " + name + " has dims " + t.dims_string() + ", expected " +
                                    expected.dims_string());
  }
}

/// Undoes llama.cpp's rotary permutation of the rows of a Q or K weight [heads*head_dim x in] (or a bias, one
/// column; see the file comment): GGUF row 2i + a of each head becomes row a * head_dim/2 + i.
template <class Matrix>
Matrix unpermute_rotary_rows(const Matrix& m, Index heads, Index head_dim) {
  Matrix out(m.rows(), m.cols());
  const Index half = head_dim / 2;
  for (Index h = 0; h < heads; ++h) {
    for (Index i = 0; i < half; ++i) {
      for (Index a = 0; a < 2; ++a) out.row(h * head_dim + a * half + i) = m.row(h * head_dim + 2 * i + a);
    }
  }
  return out;
}

}  // namespace detail

/// Builds a Llama `transformer` from an open GGUF file; see the file comment for what is read and thrown.
template <class Scalar>
transformer<Scalar> load_gguf_llama(const gguf_file& f) {
  const gguf_llama_config c = gguf_llama_config::from_file(f);
  using u64 = std::uint64_t;
  const u64 d = u64(c.embedding_length), ff = u64(c.feed_forward_length), hd = u64(c.head_dim);
  const u64 q_width = u64(c.head_count) * hd, kv_width = u64(c.head_count_kv) * hd;
  const double eps = c.rms_epsilon;
  // GGUF [in, out] -> [out x in] rows -> the x W convention [in x out].
  auto linear = [&](const std::string& name, u64 in, u64 out) -> matrix<Scalar> {
    detail::check_gguf_dims(f, name, {in, out});
    return f.template read_matrix<Scalar>(name).transpose();
  };
  auto norm = [&](const std::string& name) {
    detail::check_gguf_dims(f, name, {d});
    return normalization<Scalar>::rms(f.template read_vector<Scalar>(name), eps);
  };

  transformer_weights<Scalar> w;
  w.token_embedding = f.template read_matrix<Scalar>("token_embd.weight");  // [vocab x d], dims checked above
  for (Index i = 0; i < c.block_count; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    block_weights<Scalar> b;
    b.attention_norm = norm(p + "attn_norm.weight");
    b.attention.d_model = c.embedding_length;
    b.attention.n_heads = c.head_count;
    b.attention.n_kv_heads = c.head_count_kv;
    b.attention.head_dim = c.head_dim;
    b.attention.causal = true;
    const bool bias = c.architecture == "qwen2" || f.find_tensor(p + "attn_q.bias") != nullptr;
    b.attention.bias = bias;
    b.attention.rotary = true;
    b.attention.rotary_base = c.rope_freq_base;
    attention_weights<Scalar>& a = b.attention_projections;
    // Q and K: [out x in] rows, back to Hugging Face's head layout when permuted, then to x W.
    auto rotary_rows = [&](const std::string& name, u64 in, u64 out, Index n_heads) -> matrix<Scalar> {
      detail::check_gguf_dims(f, name, {in, out});
      matrix<Scalar> m = f.template read_matrix<Scalar>(name);
      if (c.permuted_rotary) m = detail::unpermute_rotary_rows(m, n_heads, c.head_dim);
      return m.transpose();
    };
    auto rotary_bias = [&](const std::string& name, u64 size, Index n_heads) -> vector<Scalar> {
      detail::check_gguf_dims(f, name, {size});
      vector<Scalar> v = f.template read_vector<Scalar>(name);
      if (c.permuted_rotary) v = detail::unpermute_rotary_rows(v, n_heads, c.head_dim);
      return v;
    };
    a.w_q = rotary_rows(p + "attn_q.weight", d, q_width, c.head_count);
    a.w_k = rotary_rows(p + "attn_k.weight", d, kv_width, c.head_count_kv);
    a.w_v = linear(p + "attn_v.weight", d, kv_width);
    if (bias) {
      a.b_q = rotary_bias(p + "attn_q.bias", q_width, c.head_count);
      a.b_k = rotary_bias(p + "attn_k.bias", kv_width, c.head_count_kv);
      detail::check_gguf_dims(f, p + "attn_v.bias", {kv_width});
      a.b_v = f.template read_vector<Scalar>(p + "attn_v.bias");
      if (f.find_tensor(p + "attn_output.bias") != nullptr) {
        detail::check_gguf_dims(f, p + "attn_output.bias", {d});
        a.b_o = f.template read_vector<Scalar>(p + "attn_output.bias");
      } else {
        a.b_o = vector<Scalar>::Zero(c.embedding_length);  // Qwen2 has none; the kernel takes all four or none
      }
    }
    a.w_o = linear(p + "attn_output.weight", q_width, d);
    b.mlp_norm = norm(p + "ffn_norm.weight");
    b.feed_forward.kind = mlp_kind::gated;
    b.feed_forward.activation = activation_kind::silu;
    b.feed_forward.w_gate = linear(p + "ffn_gate.weight", d, ff);
    b.feed_forward.w_in = linear(p + "ffn_up.weight", d, ff);
    b.feed_forward.w_out = linear(p + "ffn_down.weight", ff, d);
    w.blocks.push_back(std::move(b));
  }
  w.final_norm = norm("output_norm.weight");
  if (!c.tied_output) w.lm_head = linear("output.weight", d, u64(c.vocab_size));
  return transformer<Scalar>(std::move(w));
}

/// Opens `path` and loads it with `load_gguf_llama(const gguf_file&)`. Throws `io_error` when it cannot be read.
template <class Scalar>
transformer<Scalar> load_gguf_llama(const std::string& path) {
  const gguf_file f(path);
  return load_gguf_llama<Scalar>(f);
}

}  // namespace headlens
