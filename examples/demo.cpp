// The demo `make demo` runs until the real-model command lands: one attention layer over random input, a hook
// set that summarises every head's pattern as it is computed, and one intervention with its measured effect.
//
// Build and run: make demo   (or build/bin/headlens-demo after a build)

#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include <headlens/headlens.hpp>
#include <headlens/hooks/interventions.hpp>

namespace {

using headlens::Index;

// Per-head statistics of the attention pattern, computed inside the hook: the map itself is never kept.
struct head_summary {
  double entropy = 0;        // mean over rows, divided by log(row length): 0 = one key, 1 = uniform
  double previous_mass = 0;  // mean weight on the token just before
  double self_mass = 0;      // mean weight on the token itself
  std::map<Index, int> argmax_offsets;
};

struct summarise_patterns {
  static constexpr headlens::point_set points{headlens::hook_point::pattern};
  std::map<int, head_summary> heads;

  void operator()(const headlens::hook_context& ctx, headlens::matrix_view<float> pattern) {
    head_summary& s = heads[ctx.head];
    const Index rows = pattern.rows();
    for (Index i = 0; i < rows; ++i) {
      double h = 0;
      for (Index j = 0; j <= i; ++j) {
        const double p = pattern(i, j);
        if (p > 0) h -= p * std::log(p);
      }
      if (i > 0) s.entropy += h / std::log(double(i + 1));
      if (i > 0) s.previous_mass += pattern(i, i - 1);
      s.self_mass += pattern(i, i);
      Index argmax = 0;
      pattern.row(i).maxCoeff(&argmax);
      ++s.argmax_offsets[argmax - i];
    }
    s.entropy /= double(rows - 1);
    s.previous_mass /= double(rows - 1);
    s.self_mass /= double(rows);
  }
};

}  // namespace

int main() {
  using headlens::Index;
  // A causal layer with rotary positions, GQA (8 query heads sharing 2 kv heads), random weights.
  headlens::attention_config config;
  config.d_model = 64;
  config.n_heads = 8;
  config.n_kv_heads = 2;
  config.causal = true;
  config.rotary = true;
  const Index head_dim = config.head_size(), t = 48;

  std::mt19937 rng(2026);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(float(config.d_model)));
  const auto random = [&](Index rows, Index cols) {
    headlens::matrix<float> m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
    return m;
  };
  headlens::attention_weights<float> w;
  w.w_q = random(64, 8 * head_dim) * 2.0f;  // sharper patterns than a plain random init
  w.w_k = random(64, 2 * head_dim) * 2.0f;
  w.w_v = random(64, 2 * head_dim);
  w.w_o = random(8 * head_dim, 64);
  w.b_q = headlens::vector<float>::Zero(8 * head_dim);
  w.b_k = headlens::vector<float>::Zero(2 * head_dim);
  w.b_v = headlens::vector<float>::Zero(2 * head_dim);
  w.b_o = headlens::vector<float>::Zero(64);
  const headlens::multi_head_attention<float> layer(config, w);
  const headlens::matrix<float> x = random(t, 64) * 6.0f;

  summarise_patterns summary;
  const headlens::matrix<float> out = layer.forward(x, {}, summary);

  std::printf("headlens demo: one causal GQA layer (d_model 64, 8 heads over 2 kv heads, rotary), %ld random tokens\n",
              long(t));
  std::printf("(random weights: the real-model head classification comes with `headlens classify`)\n\n");
  std::printf("%-5s %-8s %-9s %-9s %-9s %s\n", "head", "kv head", "entropy", "previous", "self", "most common argmax offset");
  for (const auto& [head, s] : summary.heads) {
    const auto mode = std::max_element(s.argmax_offsets.begin(), s.argmax_offsets.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    std::printf("%-5d %-8d %-9.3f %-9.3f %-9.3f %+ld (%d of %ld rows)\n", head, head / 4, s.entropy, s.previous_mass,
                s.self_mass, long(mode->first), mode->second, long(t));
  }

  // An intervention: zero-ablate head 3's output and measure how far the layer's output moves.
  auto ablate = headlens::targeted(headlens::hook_filter{-1, 3, {headlens::hook_point::head_out}},
                                   headlens::zero_ablation{});
  const headlens::matrix<float> ablated = layer.forward(x, {}, ablate);
  std::printf("\nzero-ablating head 3 moves the output by %.3f (relative Frobenius norm)\n",
              double((ablated - out).norm() / out.norm()));
  return 0;
}
