// A whole decoder forward on a GPT-2-small-shaped model (12 layers, 12 heads, d_model 768, MLP 3072, learned
// positions, LM head tied to the 50257-token embedding; random weights, float; OpenMP threads as OMP_NUM_THREADS
// says): token ids to logits, and to the final hidden states (no LM head), at 512 tokens. The smoke size (64
// tokens, 2 layers, vocabulary 4096) only proves the path runs.
//
// FLOPs = 2 x parameters x tokens + attention, where the parameters are the weights that multiply (per layer
// 4 d^2 + 2 d d_ff, plus vocab x d for the LM head; embedding lookups and norms are not counted) and attention is
// 4 T^2 d per layer, halved for causal. Reported as GFLOP/s and as a fraction of the machine's FMA peak
// (bench/support/fma_peak.hpp) measured in the same process: `of_peak`, against the best peak the probe saw in
// this run (the stricter yardstick on a shared machine).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include <headlens/models/transformer.hpp>

#include "support/fma_peak.hpp"
#include "support/ratios.hpp"

namespace {

using namespace headlens;
using headlens::Index;

constexpr Index d_model = 768, n_heads = 12, d_ff = 3072, max_positions = 1024;

// Uniform in [-a, a) with std `spread` from a 64-bit LCG: 124M weights in a fraction of a second.
struct fast_random {
  std::uint64_t state;
  float spread;
  float operator()() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const float u = float(state >> 40) * (1.0f / float(1 << 24));  // [0, 1)
    return (2.0f * u - 1.0f) * spread * 1.7320508f;                // std of U(-a, a) is a / sqrt(3)
  }
};

matrix<float> random_matrix(Index rows, Index cols, std::uint64_t seed, float spread) {
  fast_random rng{seed, spread};
  matrix<float> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = rng();
  return m;
}
vector<float> random_vector(Index n, std::uint64_t seed, float spread) { return random_matrix(n, 1, seed, spread); }

const transformer<float>& gpt2_shaped(Index layers, Index vocab) {
  static std::map<std::pair<Index, Index>, std::unique_ptr<transformer<float>>> models;
  auto& slot = models[{layers, vocab}];
  if (slot) return *slot;
  transformer_weights<float> w;
  w.token_embedding = random_matrix(vocab, d_model, 1, 0.02f);
  w.position_embedding = random_matrix(max_positions, d_model, 2, 0.01f);
  auto norm = [](std::uint64_t seed) {
    return normalization<float>::layer(random_vector(d_model, seed, 0.1f).array() + 1.0f,
                                       random_vector(d_model, seed + 1, 0.02f), 1e-5);
  };
  for (Index l = 0; l < layers; ++l) {
    const std::uint64_t s = 100 + 20 * std::uint64_t(l);
    block_weights<float> b;
    b.attention_norm = norm(s);
    b.mlp_norm = norm(s + 2);
    b.attention.d_model = d_model;
    b.attention.n_heads = n_heads;
    b.attention_projections.w_q = random_matrix(d_model, d_model, s + 4, 0.02f);
    b.attention_projections.w_k = random_matrix(d_model, d_model, s + 5, 0.02f);
    b.attention_projections.w_v = random_matrix(d_model, d_model, s + 6, 0.02f);
    b.attention_projections.w_o = random_matrix(d_model, d_model, s + 7, 0.02f);
    for (auto* bias : {&b.attention_projections.b_q, &b.attention_projections.b_k, &b.attention_projections.b_v,
                       &b.attention_projections.b_o}) {
      *bias = random_vector(d_model, s + 8, 0.02f);
    }
    b.feed_forward.kind = mlp_kind::plain;
    b.feed_forward.activation = activation_kind::gelu_tanh;
    b.feed_forward.w_in = random_matrix(d_model, d_ff, s + 9, 0.02f);
    b.feed_forward.b_in = random_vector(d_ff, s + 10, 0.02f);
    b.feed_forward.w_out = random_matrix(d_ff, d_model, s + 11, 0.02f);
    b.feed_forward.b_out = random_vector(d_model, s + 12, 0.02f);
    w.blocks.push_back(std::move(b));
  }
  w.final_norm = norm(3);
  slot = std::make_unique<transformer<float>>(std::move(w));
  return *slot;
}

double forward_flops(Index t, Index layers, Index vocab) {
  const double per_layer = 4.0 * d_model * d_model + 2.0 * d_model * d_ff;
  const double params = per_layer * double(layers) + double(vocab) * d_model;
  return 2.0 * params * double(t) + double(layers) * 4.0 * double(t) * double(t) * d_model / 2.0;
}

double best_peak = 0;  // GFLOP/s, the best the probe saw in this process

template <class Run>
void measure(benchmark::State& state, Index vocab_counted, Run&& run) {
  const Index t = state.range(0), layers = state.range(1);
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto out = run();
    benchmark::DoNotOptimize(out.data());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The probe right after the timed loop, so each figure has a peak from the same minutes.
  best_peak = std::max(best_peak, headlens_bench::fma_peak_gflops(0.1, 3));
  const double gflops = forward_flops(t, layers, vocab_counted) * double(state.iterations()) / seconds * 1e-9;
  state.counters["GFLOPs"] = gflops;
  state.counters["peak_GFLOPs"] = best_peak;
  state.counters["of_peak"] = gflops / best_peak;
  state.SetItemsProcessed(state.iterations() * t);
}

std::vector<std::int32_t> token_ids(Index t, Index vocab) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(t));
  for (Index i = 0; i < t; ++i) ids[std::size_t(i)] = std::int32_t((i * 7919 + 13) % vocab);
  return ids;
}

void forward_logits(benchmark::State& state) {
  const Index t = state.range(0), vocab = state.range(2);
  const auto& model = gpt2_shaped(state.range(1), vocab);
  const auto ids = token_ids(t, vocab);
  measure(state, vocab, [&] { return model.forward(ids); });
}

void forward_hidden(benchmark::State& state) {
  const Index t = state.range(0), vocab = state.range(2);
  const auto& model = gpt2_shaped(state.range(1), vocab);
  const auto ids = token_ids(t, vocab);
  measure(state, 0, [&] { return model.hidden_states(ids); });
}

}  // namespace

// Args: tokens, layers, vocabulary.
BENCHMARK(forward_logits)
    ->Name("gpt2_small/logits")
    ->ArgNames({"T", "layers", "vocab"})
    ->Args({64, 2, 4096})
    ->Args({512, 12, 50257})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(forward_hidden)
    ->Name("gpt2_small/hidden_states")
    ->ArgNames({"T", "layers", "vocab"})
    ->Args({64, 2, 4096})
    ->Args({512, 12, 50257})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

HEADLENS_BENCHMARK_MAIN()
