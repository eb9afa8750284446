// The attention kernel built a second time with every hook call compiled out (HEADLENS_DISABLE_HOOKS), in a
// renamed namespace so it cannot collide with the normal build in bench_attention.cpp. bench_attention compares
// the default (no_hooks) forward with this one to show that hook support costs nothing when unused.

#define HEADLENS_DISABLE_HOOKS
#define headlens headlens_without_hook_support
#include "support/attention_setup.hpp"
#undef headlens

#include <benchmark/benchmark.h>

namespace {

void forward_without_hook_support(benchmark::State& state) {
  namespace hl = headlens_without_hook_support;
  const auto layer = hl::bench::make_layer();
  const auto x = hl::bench::make_input(state.range(0));
  for (auto _ : state) {
    auto out = layer.forward(x);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["FLOPS"] = benchmark::Counter(hl::bench::forward_flops(state.range(0)) * double(state.iterations()),
                                               benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(forward_without_hook_support)->Name("forward/no_hook_support")->Arg(128)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();
