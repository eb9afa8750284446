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
#include "support/random_gpt2.hpp"
#include "support/ratios.hpp"

namespace {

using namespace headlens;
using headlens::Index;

constexpr Index d_model = 768, n_heads = 12, d_ff = 3072, max_positions = 1024;

const transformer<float>& gpt2_shaped(Index layers, Index vocab) {
  static std::map<std::pair<Index, Index>, std::unique_ptr<transformer<float>>> models;
  auto& slot = models[{layers, vocab}];
  if (!slot) {
    const headlens_bench::gpt2_shape shape{layers, d_model, n_heads, d_ff, max_positions, vocab};
    slot = std::make_unique<transformer<float>>(headlens_bench::random_gpt2_weights(shape));
  }
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
