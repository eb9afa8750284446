// What physical pruning buys: the forward (token ids to final hidden states) of a GPT-2-small-shaped model (d_model
// 768, 12 heads, MLP 3072, random weights, float) in full, with half of every layer's heads masked
// (`forward_options::head_mask`: their scores, softmax and z are skipped, but the fused q, k, v and o projections
// still run at full width), and with the same heads physically pruned (models/head_pruning.hpp: the projections
// shrink too). The masked and pruned models give the same hidden states (tests/test_pruning_checkpoint.cpp checks
// it on real checkpoints; here the first iteration checks it within 1e-4). Ratios to the full model are printed
// after the run. The smoke size (64 tokens, 2 layers) only proves the path runs.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <headlens/models/head_pruning.hpp>
#include <headlens/models/transformer.hpp>

#include "support/random_gpt2.hpp"
#include "support/ratios.hpp"

namespace {

using namespace headlens;

constexpr Index d_model = 768, n_heads = 12, d_ff = 3072, max_positions = 1024, vocab = 4096;

transformer_weights<float> gpt2_shaped_weights(Index layers) {
  return headlens_bench::random_gpt2_weights({layers, d_model, n_heads, d_ff, max_positions, vocab, 0.05f});
}

// The heads every layer loses: the odd ones, so that `head_mask` (one mask for every layer) masks the same set.
std::vector<bool> keep_mask() {
  std::vector<bool> keep(std::size_t(n_heads), true);
  for (Index h = 1; h < n_heads; h += 2) keep[std::size_t(h)] = false;
  return keep;
}

struct models {
  std::unique_ptr<transformer<float>> full, pruned;
};

const models& models_for(Index layers) {
  static std::map<Index, models> cache;
  models& m = cache[layers];
  if (m.full) return m;
  transformer_weights<float> w = gpt2_shaped_weights(layers);
  head_set removed{std::vector<int>(std::size_t(layers), int(n_heads))};
  const std::vector<bool> keep = keep_mask();
  for (Index l = 0; l < layers; ++l) {
    for (Index h = 0; h < n_heads; ++h) {
      if (!keep[std::size_t(h)]) removed.insert({int(l), int(h)});
    }
  }
  m.pruned = std::make_unique<transformer<float>>(prune_heads(w, removed));
  m.full = std::make_unique<transformer<float>>(std::move(w));
  return m;
}

std::vector<std::int32_t> token_ids(Index t) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(t));
  for (Index i = 0; i < t; ++i) ids[std::size_t(i)] = std::int32_t((i * 7919 + 13) % vocab);
  return ids;
}

enum class variant { full, masked, pruned };

void forward(benchmark::State& state, variant which) {
  const Index t = state.range(0), layers = state.range(1);
  const models& m = models_for(layers);
  const auto ids = token_ids(t);
  forward_options<float> masked;
  masked.head_mask = keep_mask();
  // Pruned = masked, checked once per size.
  static std::map<std::pair<Index, Index>, bool> checked;
  if (!checked[{t, layers}]) {
    const matrix<float> a = m.full->hidden_states(ids, masked), b = m.pruned->hidden_states(ids);
    const double diff = double((a - b).cwiseAbs().maxCoeff());
    if (!(diff < 1e-4)) {
      state.SkipWithError("pruned and masked hidden states differ");
      std::fprintf(stderr, "max |pruned - masked| = %g\n", diff);
      return;
    }
    checked[{t, layers}] = true;
  }
  for (auto _ : state) {
    matrix<float> out = which == variant::pruned   ? m.pruned->hidden_states(ids)
                        : which == variant::masked ? m.full->hidden_states(ids, masked)
                                                   : m.full->hidden_states(ids);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * t);
  if (which != variant::full) {
    state.SetLabel("vs:pruning/full/T:" + std::to_string(t) + "/layers:" + std::to_string(layers));
  }
}

}  // namespace

// Args: tokens, layers.
#define HEADLENS_PRUNING_BENCH(name, which) \
  BENCHMARK_CAPTURE(forward, name, which)   \
      ->Name("pruning/" #name)              \
      ->ArgNames({"T", "layers"})           \
      ->Args({64, 2})                       \
      ->Args({256, 12})                     \
      ->Args({1024, 2})                     \
      ->Unit(benchmark::kMillisecond);

HEADLENS_PRUNING_BENCH(full, variant::full)
HEADLENS_PRUNING_BENCH(masked, variant::masked)
HEADLENS_PRUNING_BENCH(pruned, variant::pruned)

namespace {

// The shared machines these run on are loaded, so the ratios are printed for CPU time (meaningful with
// OMP_NUM_THREADS=1, where it is the work done) as well as for real time (support/ratios.hpp's convention).
class cpu_ratio_reporter : public headlens_bench::ratio_reporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration && run.aggregate_name != "median") continue;
      std::string name = run.run_name.str();
      if (run.run_type != Run::RT_Iteration) name += "/median";
      cpu_[name] = run.GetAdjustedCPUTime();
    }
    ratio_reporter::ReportRuns(runs);
  }
  void print_cpu_ratios() const {
    std::printf("\nCPU-time ratios (pruned or masked / full; < 1 is faster):\n");
    for (const auto& [name, time] : cpu_) {
      if (name.rfind("pruning/full/", 0) == 0) continue;
      std::string full = name;
      full.replace(0, full.find('/', 8), "pruning/full");
      const auto base = cpu_.find(full);
      if (base != cpu_.end() && base->second > 0) std::printf("  %-50s %7.3f\n", name.c_str(), time / base->second);
    }
  }

 private:
  std::map<std::string, double> cpu_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  cpu_ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  reporter.print_cpu_ratios();
  benchmark::Shutdown();
  return 0;
}
