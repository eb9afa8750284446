#pragma once
// The layer every attention benchmark runs: BERT-base-sized self-attention (d_model 768, 12 heads), random
// weights, float. Inside namespace headlens on purpose: bench/attention/without_hook_support.cpp renames that
// namespace to build a second copy of the kernels, and this setup must follow it.

#include <random>
#include <string>

#include <headlens/kernels/multi_head_attention.hpp>

namespace headlens {
namespace bench {

inline constexpr Index d_model = 768, n_heads = 12;

inline matrix<float> random_matrix(Index rows, Index cols, unsigned seed, float spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  matrix<float> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

inline multi_head_attention<float> make_layer(bool causal = false) {
  attention_config config;
  config.d_model = d_model;
  config.n_heads = n_heads;
  config.causal = causal;
  const float spread = 1.0f / 27.7f;  // ~1/sqrt(d_model)
  attention_weights<float> w;
  w.w_q = random_matrix(d_model, d_model, 1, spread);
  w.w_k = random_matrix(d_model, d_model, 2, spread);
  w.w_v = random_matrix(d_model, d_model, 3, spread);
  w.w_o = random_matrix(d_model, d_model, 4, spread);
  w.b_q = w.b_k = w.b_v = w.b_o = vector<float>::Zero(d_model);
  return multi_head_attention<float>(config, w);
}

inline matrix<float> make_input(Index t) { return random_matrix(t, d_model, 5, 1.0f); }

/// FLOPs of one forward pass (projections 8 T d^2, scores and PV 4 T^2 d), as PERFORMANCE.md counts them.
inline double forward_flops(Index t) { return 8.0 * double(t) * d_model * d_model + 4.0 * double(t) * t * d_model; }

}  // namespace bench
}  // namespace headlens
