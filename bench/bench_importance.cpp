// A head-importance sweep: zero-ablate every head of a decoder one at a time and score next-token cross-entropy,
// through `transformer_ablation_target` (the clean forward once, every layer's input kept; each ablation reruns
// only the layers from the ablated one, the masked head's work skipped) against the naive way, one full forward
// per head with the head's z zeroed by a hook, plus the clean one. GPT-2-shaped random model (pre-norm LayerNorm,
// GELU MLP 4d, learned positions, tied LM head; float; threads as OMP_NUM_THREADS says).
//
// Counters of `importance_sweep/target`: `forwards` = sweep time / one full forward (forward + cross-entropy,
// timed in the same process right after), `vs_naive` = sweep time / ((heads + 1) x that forward): the cost of the
// sweep as a share of the naive count of forwards (< 1 is cheaper). The naive sweep runs as its own benchmark too,
// and the ratio of the two is printed after the run. `flop_model` is the vs_naive a FLOP count predicts: about
// (L + 1) / 2L of the layers plus the LM head per head, so never far below 1/2 for an exact sweep.
// Measured (-O3 -march=native, OMP_NUM_THREADS=1, 2 shared cores under load 8): at T 256, 6 layers x 8 heads, vocab
// 8192, the sweep took 0.65 of the naive sweep's time (median of 3; CPU time 0.69; vs_naive 0.64-0.76 over runs),
// about 32 forwards for 48 heads + 1, against flop_model 0.66. The smoke size (T 64, 2 layers) only proves the path runs.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <headlens/hooks/interventions.hpp>
#include <headlens/models/transformer_ablation.hpp>

#include "support/random_gpt2.hpp"
#include "support/ratios.hpp"

namespace {

using namespace headlens;
using headlens::Index;

constexpr Index d_model = 512, n_heads = 8, d_ff = 2048, max_positions = 1024;

const transformer<float>& gpt2_shaped(Index layers, Index vocab) {
  static std::map<std::pair<Index, Index>, std::unique_ptr<transformer<float>>> models;
  auto& slot = models[{layers, vocab}];
  if (!slot) {
    headlens_bench::gpt2_shape shape{layers, d_model, n_heads, d_ff, max_positions, vocab, 0.05f};
    slot = std::make_unique<transformer<float>>(headlens_bench::random_gpt2_weights(shape));
  }
  return *slot;
}

std::vector<std::int32_t> token_ids(Index t, Index vocab) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(t));
  for (Index i = 0; i < t; ++i) ids[std::size_t(i)] = std::int32_t((i * 7919 + 13) % vocab);
  return ids;
}

// One full forward with `hooks`, scored: what the naive sweep pays per head.
template <class Hooks>
double full_forward_loss(const transformer<float>& model, const std::vector<std::int32_t>& ids, Hooks&& hooks) {
  return detail::next_token_losses(model.forward(ids, {}, hooks), ids).sequence;
}

// The median time of one clean full forward + cross-entropy, in seconds.
double forward_seconds(const transformer<float>& model, const std::vector<std::int32_t>& ids) {
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(full_forward_loss(model, ids, no_hooks{}));
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void sweep_target(benchmark::State& state) {
  const Index t = state.range(0), layers = state.range(1), vocab = state.range(2);
  const auto& model = gpt2_shaped(layers, vocab);
  const auto ids = token_ids(t, vocab);
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const transformer_ablation_target target(model, ids);
    head_set one(target.heads_per_layer());
    double total = target.clean().sequence;
    for (int l = 0; l < int(layers); ++l) {
      for (int h = 0; h < int(n_heads); ++h) {
        one.insert({l, h});
        total += target.losses(one, ablation::zero).sequence;
        one.erase({l, h});
      }
    }
    benchmark::DoNotOptimize(total);
  }
  const double sweep = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
                       double(state.iterations());
  const double forward = forward_seconds(model, ids);
  state.counters["forwards"] = sweep / forward;
  state.counters["vs_naive"] = sweep / (double(layers * n_heads + 1) * forward);
  // What the FLOP count predicts for vs_naive: ablating a head of layer l reruns layers l..L-1 (one head's
  // attention skipped there) and the LM head; the clean run is one forward.
  const double tt = double(t), d = double(d_model);
  const double attention = 2.0 * tt * tt * d;  // scores and pattern x v, causal half
  const double layer = 2.0 * tt * (4 * d * d + 2 * d * double(d_ff)) + attention, head = 2.0 * tt * d * double(vocab);
  double sweep_flops = double(layers) * layer + head;
  for (Index l = 0; l < layers; ++l) {
    sweep_flops += double(n_heads) * (double(layers - l) * layer - attention / double(n_heads) + head);
  }
  state.counters["flop_model"] = sweep_flops / (double(layers * n_heads + 1) * (double(layers) * layer + head));
  state.SetLabel("vs:importance_sweep/naive/T:" + std::to_string(t) + "/layers:" + std::to_string(layers) +
                 "/vocab:" + std::to_string(vocab));
}

void sweep_naive(benchmark::State& state) {
  const Index t = state.range(0), layers = state.range(1), vocab = state.range(2);
  const auto& model = gpt2_shaped(layers, vocab);
  const auto ids = token_ids(t, vocab);
  for (auto _ : state) {
    double total = full_forward_loss(model, ids, no_hooks{});
    for (int l = 0; l < int(layers); ++l) {
      for (int h = 0; h < int(n_heads); ++h) {
        total += full_forward_loss(model, ids, targeted(hook_filter{l, h, {hook_point::z}}, zero_ablation{}));
      }
    }
    benchmark::DoNotOptimize(total);
  }
}

}  // namespace

// Args: tokens, layers, vocabulary.
BENCHMARK(sweep_target)
    ->Name("importance_sweep/target")
    ->ArgNames({"T", "layers", "vocab"})
    ->Args({64, 2, 1024})
    ->Args({256, 6, 8192})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(sweep_naive)
    ->Name("importance_sweep/naive")
    ->ArgNames({"T", "layers", "vocab"})
    ->Args({64, 2, 1024})
    ->Args({256, 6, 8192})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

HEADLENS_BENCHMARK_MAIN()
