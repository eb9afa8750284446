// Forward pass of one BERT-base-sized attention layer (d_model 768, 12 heads, float; OpenMP threads as
// OMP_NUM_THREADS says) at T = 128, 512 and 2048: without hook support at all, with the default hook set (streaming
// path), forced onto the materialised path, with streaming statistics, with a compile-time hook set observing every
// head's pattern, with the run-time registry holding one pattern observer, and with half the heads masked off; and
// one decode step with a KV cache at context 128 and 4096.
// The closing table gives each as a ratio to its baseline in the same run (bench/support/ratios.hpp). Times are
// wall-clock (UseRealTime): the kernels run on several threads.

#include <benchmark/benchmark.h>

#include <headlens/hooks/hook_registry.hpp>

#include "support/attention_setup.hpp"
#include "support/ratios.hpp"

namespace {

using namespace headlens;
using headlens::Index;

// Reads each pattern the way a real observer would (its diagonal), so the work cannot be optimised away.
struct observe_patterns {
  static constexpr point_set points{hook_point::pattern};
  double sink = 0;
  void operator()(const hook_context&, matrix_view<float> pattern) { sink += double(pattern.diagonal().sum()); }
};

template <class Run>
void measure(benchmark::State& state, const char* baseline, Run&& run) {
  const Index t = state.range(0);
  for (auto _ : state) {
    auto out = run();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * t);
  state.counters["FLOPS"] = benchmark::Counter(bench::forward_flops(t) * double(state.iterations()),
                                               benchmark::Counter::kIsRate);
  if (baseline != nullptr) state.SetLabel(std::string("vs:") + baseline + "/" + std::to_string(t));
}

void forward_default_hooks(benchmark::State& state) {
  const auto layer = bench::make_layer();
  const auto x = bench::make_input(state.range(0));
  measure(state, "forward/no_hook_support", [&] { return layer.forward(x); });
}

void forward_observe_patterns(benchmark::State& state) {
  const auto layer = bench::make_layer();
  const auto x = bench::make_input(state.range(0));
  observe_patterns hooks;
  measure(state, "forward/no_hooks", [&] { return layer.forward(x, {}, hooks); });
  benchmark::DoNotOptimize(hooks.sink);
}

void forward_registry_pattern(benchmark::State& state) {
  const auto layer = bench::make_layer();
  const auto x = bench::make_input(state.range(0));
  hook_registry<float> registry;
  double sink = 0;
  registry.add({-1, -1, {hook_point::pattern}},
               [&](const hook_context&, matrix_view<float> p) { sink += double(p.diagonal().sum()); });
  measure(state, "forward/no_hooks", [&] { return layer.forward(x, {}, registry); });
  benchmark::DoNotOptimize(sink);
}

void forward_materialised(benchmark::State& state) {
  const auto layer = bench::make_layer();
  const auto x = bench::make_input(state.range(0));
  forward_options<float> options;
  options.path = attention_path::materialised;
  measure(state, "forward/no_hooks", [&] { return layer.forward(x, options); });
}

void forward_streaming_statistics(benchmark::State& state) {
  const auto layer = bench::make_layer();
  const Index t = state.range(0);
  const auto x = bench::make_input(t);
  attention_statistics<float> stats;
  stats.segment_ids.resize(std::size_t(t));
  for (Index j = 0; j < t; ++j) stats.segment_ids[std::size_t(j)] = j / 25;
  forward_options<float> options;
  options.statistics = &stats;
  measure(state, "forward/no_hooks", [&] { return layer.forward(x, options); });
}

// One decode step after `context` cached tokens (the cache is cut back after each step).
void decode_step(benchmark::State& state) {
  const auto layer = bench::make_layer(/*causal=*/true);
  const Index context = state.range(0);
  kv_cache<float> cache;
  layer.forward_step(bench::make_input(context), cache);
  const matrix<float> token = bench::make_input(1);
  for (auto _ : state) {
    auto out = layer.forward_step(token, cache);
    benchmark::DoNotOptimize(out.data());
    cache.truncate(context);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["FLOPS"] = benchmark::Counter(
      (8.0 * bench::d_model * bench::d_model + 4.0 * double(context + 1) * bench::d_model) * double(state.iterations()),
      benchmark::Counter::kIsRate);
}

void forward_half_heads_masked(benchmark::State& state) {
  const auto layer = bench::make_layer();
  const auto x = bench::make_input(state.range(0));
  forward_options<float> options;
  options.head_mask.assign(std::size_t(bench::n_heads), true);
  for (std::size_t h = 0; h < options.head_mask.size(); h += 2) options.head_mask[h] = false;
  measure(state, "forward/no_hooks", [&] { return layer.forward(x, options); });
}

}  // namespace

BENCHMARK(forward_default_hooks)->Name("forward/no_hooks")->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(forward_observe_patterns)->Name("forward/observe_pattern")->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(forward_registry_pattern)->Name("forward/registry_pattern")->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(forward_materialised)->Name("forward/materialised")->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(forward_streaming_statistics)->Name("forward/statistics")->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(decode_step)->Name("decode/step")->Arg(128)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(forward_half_heads_masked)->Name("forward/head_mask_half")->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

HEADLENS_BENCHMARK_MAIN()
