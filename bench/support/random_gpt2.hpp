#pragma once
// A GPT-2-shaped decoder with random weights (pre-norm LayerNorm, GELU MLP, learned positions, LM head tied to the
// embedding; float), for benchmarks that time a whole model: what a forward costs depends on the shapes, not on
// trained values. Values are uniform with a given standard deviation from a 64-bit LCG, so even GPT-2 small's
// 124M weights are made in a fraction of a second.

#include <headlens/models/transformer.hpp>

#include <cstdint>
#include <utility>

namespace headlens_bench {

/// The shape of a `random_gpt2` model.
struct gpt2_shape {
  headlens::Index layers = 12, d_model = 768, n_heads = 12, d_ff = 3072, max_positions = 1024, vocab = 50257;
  /// Standard deviation of W_q and W_k: above GPT-2's 0.02, attention is less uniform (ablations then matter).
  float qk_spread = 0.02f;
};

/// Uniform in [-a, a) with standard deviation `spread` (a = spread * sqrt(3)).
struct fast_random {
  std::uint64_t state;
  float spread;
  float operator()() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const float u = float(state >> 40) * (1.0f / float(1 << 24));  // [0, 1)
    return (2.0f * u - 1.0f) * spread * 1.7320508f;
  }
};

inline headlens::matrix<float> random_matrix(headlens::Index rows, headlens::Index cols, std::uint64_t seed,
                                             float spread) {
  fast_random rng{seed, spread};
  headlens::matrix<float> m(rows, cols);
  for (headlens::Index i = 0; i < m.size(); ++i) m.data()[i] = rng();
  return m;
}

inline headlens::vector<float> random_vector(headlens::Index n, std::uint64_t seed, float spread) {
  return random_matrix(n, 1, seed, spread);
}

/// The weights of a random GPT-2-shaped model (every layer's seeds differ, the same shape gives the same weights).
inline headlens::transformer_weights<float> random_gpt2_weights(const gpt2_shape& shape) {
  using namespace headlens;
  const Index d = shape.d_model;
  transformer_weights<float> w;
  w.token_embedding = random_matrix(shape.vocab, d, 1, 0.02f);
  w.position_embedding = random_matrix(shape.max_positions, d, 2, 0.01f);
  auto norm = [d](std::uint64_t seed) {
    return normalization<float>::layer(random_vector(d, seed, 0.1f).array() + 1.0f, random_vector(d, seed + 1, 0.02f),
                                       1e-5);
  };
  for (Index l = 0; l < shape.layers; ++l) {
    const std::uint64_t s = 100 + 20 * std::uint64_t(l);
    block_weights<float> b;
    b.attention_norm = norm(s);
    b.mlp_norm = norm(s + 2);
    b.attention.d_model = d;
    b.attention.n_heads = shape.n_heads;
    attention_weights<float>& a = b.attention_projections;
    a.w_q = random_matrix(d, d, s + 4, shape.qk_spread);
    a.w_k = random_matrix(d, d, s + 5, shape.qk_spread);
    a.w_v = random_matrix(d, d, s + 6, 0.02f);
    a.w_o = random_matrix(d, d, s + 7, 0.02f);
    a.b_q = random_vector(d, s + 8, 0.02f);
    a.b_k = random_vector(d, s + 9, 0.02f);
    a.b_v = random_vector(d, s + 10, 0.02f);
    a.b_o = random_vector(d, s + 11, 0.02f);
    b.feed_forward.kind = mlp_kind::plain;
    b.feed_forward.activation = activation_kind::gelu_tanh;
    b.feed_forward.w_in = random_matrix(d, shape.d_ff, s + 12, 0.02f);
    b.feed_forward.b_in = random_vector(shape.d_ff, s + 13, 0.02f);
    b.feed_forward.w_out = random_matrix(shape.d_ff, d, s + 14, 0.02f);
    b.feed_forward.b_out = random_vector(d, s + 15, 0.02f);
    w.blocks.push_back(std::move(b));
  }
  w.final_norm = norm(3);
  return w;
}

}  // namespace headlens_bench
