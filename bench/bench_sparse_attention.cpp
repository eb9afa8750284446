// Sparse attention (forward_options::sparsity) against dense attention in the same run: one BERT-base-sized layer
// (d_model 768, 12 heads of 64, float, not causal) at T = 1024 and 4096, streaming path, dense vs top-k (k = 32)
// vs threshold (tau = 1e-3), on two inputs:
//   random  the random layer and input of bench_attention: diffuse attention, no key tile can be skipped, so the
//           sparse modes pay their second pass over the keys;
//   local   a layer whose queries and keys are the input's own sinusoidal position features (W_q = W_k = a
//           scaled identity per head), so attention is concentrated within a few hundred tokens of the query, as
//           in many heads of trained models: the threshold's second pass skips the far key tiles.
// Counters: `dropped` (share of weights dropped), `kept_mass` (mean dense mass kept), `skipped` (share of key
// tiles the second pass skipped), `error` (relative L2 of z against the dense z), from one reported call before
// the timing. The closing table gives each sparse run as a ratio to the dense run of the same input and length.

#include <benchmark/benchmark.h>

#include <cmath>
#include <string>

#include "support/attention_setup.hpp"
#include "support/ratios.hpp"

namespace {

using namespace headlens;
using headlens::Index;

// The local layer: per head, q and k are the head's 64 input features times `alpha` (logit scale 1/8), v and the
// output projection random.
multi_head_attention<float> make_local_layer() {
  attention_config config;
  config.d_model = bench::d_model;
  config.n_heads = bench::n_heads;
  const float alpha = 2.0f;  // logits = alpha^2 / 8 * sum_i cos(w_i (t - s)): 16 at t = s
  attention_weights<float> w;
  w.w_q = matrix<float>::Identity(bench::d_model, bench::d_model) * alpha;
  w.w_k = w.w_q;
  w.w_v = bench::random_matrix(bench::d_model, bench::d_model, 3, 1.0f / 27.7f);
  w.w_o = bench::random_matrix(bench::d_model, bench::d_model, 4, 1.0f / 27.7f);
  w.b_q = w.b_k = w.b_v = w.b_o = vector<float>::Zero(bench::d_model);
  return multi_head_attention<float>(config, w);
}

// Sinusoidal position features (32 frequencies 10000^(-i/32), sine and cosine) in each head's 64 columns.
matrix<float> make_local_input(Index t) {
  matrix<float> x(t, bench::d_model);
  for (Index r = 0; r < t; ++r) {
    for (Index c = 0; c < bench::d_model; ++c) {
      const Index i = (c % 64) / 2;
      const double angle = double(r) * std::pow(10000.0, -double(i) / 32.0);
      x(r, c) = float(c % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
  }
  return x;
}

attention_sparsity sparsity_for(int mode) {
  return mode == 0 ? attention_sparsity{} : mode == 1 ? top_k_sparsity(32) : threshold_sparsity(1e-3);
}
const char* const mode_names[] = {"dense", "top_k32", "threshold1e-3"};

// mode: 0 dense, 1 top-k, 2 threshold.
void sparse_forward(benchmark::State& state, Index t, int mode, bool local) {
  const auto layer = local ? make_local_layer() : bench::make_layer();
  const matrix<float> x = local ? make_local_input(t) : bench::make_input(t);
  forward_options<float> options;
  options.path = attention_path::streaming;
  options.sparsity = sparsity_for(mode);
  if (mode != 0) {
    sparsity_statistics report;
    forward_options<float> reported = options;
    reported.sparsity_report = &report;
    layer.forward(x, reported);
    const head_sparsity total = report.total();
    state.counters["dropped"] = total.dropped_share();
    state.counters["kept_mass"] = total.mean_mass_kept();
    state.counters["skipped"] = total.skipped_tile_share();
    state.counters["error"] = total.output_error();
  }
  for (auto _ : state) {
    auto out = layer.forward(x, options);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * t);
  const std::string input = local ? "local" : "random";
  if (mode != 0) state.SetLabel("vs:sparse/" + input + "/dense/" + std::to_string(t));
}

void register_all() {
  for (bool local : {false, true}) {
    for (int mode = 0; mode < 3; ++mode) {
      for (Index t : {256, 1024, 4096}) {  // 256: the size `make bench-smoke` runs
        const std::string name =
            std::string("sparse/") + (local ? "local/" : "random/") + mode_names[mode] + "/" + std::to_string(t);
        const auto run = [=](benchmark::State& state) { sparse_forward(state, t, mode, local); };
        benchmark::RegisterBenchmark(name.c_str(), run)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
}

const bool registered = (register_all(), true);

}  // namespace

HEADLENS_BENCHMARK_MAIN()
