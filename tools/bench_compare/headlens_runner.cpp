// headlens side of tools/bench_compare.sh: times one configuration and prints one line of JSON.
//   headlens_runner forward   T [path] [threads]   forward of a BERT-base-sized layer (d 768, 12 heads), float
//   headlens_runner pattern   T                    forward with every head's pattern delivered to a hook
//   headlens_runner stats     T                    forward with streaming statistics
//   headlens_runner decode    CONTEXT              one forward_step with CONTEXT tokens cached
//   headlens_runner gemm      T                    the fused QKV projection alone (T x 768)(768 x 2304)
// Timing: warm-up, then samples of at least 0.1 s each (several calls when one is shorter); prints the median
// time per call in ms over the samples.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <headlens/kernels/multi_head_attention.hpp>

namespace {

using namespace headlens;
using headlens::Index;
constexpr Index d_model = 768, n_heads = 12;

matrix<float> random_matrix(Index rows, Index cols, unsigned seed, float spread) {
  std::srand(seed);
  matrix<float> m = matrix<float>::Random(rows, cols) * spread;
  return m;
}

multi_head_attention<float> make_layer(bool causal) {
  attention_config config;
  config.d_model = d_model;
  config.n_heads = n_heads;
  config.causal = causal;
  const float spread = 1.7f / 27.7f;
  attention_weights<float> w;
  w.w_q = random_matrix(d_model, d_model, 1, spread);
  w.w_k = random_matrix(d_model, d_model, 2, spread);
  w.w_v = random_matrix(d_model, d_model, 3, spread);
  w.w_o = random_matrix(d_model, d_model, 4, spread);
  w.b_q = w.b_k = w.b_v = w.b_o = vector<float>::Zero(d_model);
  return multi_head_attention<float>(config, w);
}

template <class F>
double median_ms(F&& f, double sample_seconds, int samples) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 2; ++i) f();  // warm-up
  const auto t0 = clock::now();
  f();
  const double one = std::chrono::duration<double>(clock::now() - t0).count();
  const int calls = std::max(1, int(sample_seconds / std::max(one, 1e-9)));
  std::vector<double> times;
  for (int s = 0; s < samples; ++s) {
    const auto start = clock::now();
    for (int c = 0; c < calls; ++c) f();
    times.push_back(std::chrono::duration<double, std::milli>(clock::now() - start).count() / calls);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct observe_patterns {
  static constexpr point_set points{hook_point::pattern};
  double sink = 0;
  void operator()(const hook_context&, matrix_view<float> pattern) { sink += double(pattern(0, 0)); }
};

}  // namespace

int main(int argc, char** argv) {
  using headlens::Index;
  if (argc < 3) {
    std::fprintf(stderr, "usage: headlens_runner forward|pattern|stats|decode|gemm N [path] [threads]\n");
    return 2;
  }
  const std::string what = argv[1];
  const Index n = std::atol(argv[2]);
  const std::string path_name = argc > 3 ? argv[3] : "automatic";
  forward_options<float> options;
  options.path = path_name == "materialised" ? attention_path::materialised
                 : path_name == "streaming"  ? attention_path::streaming
                                             : attention_path::automatic;
  options.threads = argc > 4 ? std::atol(argv[4]) : 0;
  const double sample = std::getenv("SAMPLE_SECONDS") ? std::atof(std::getenv("SAMPLE_SECONDS")) : 0.1;
  const int samples = std::getenv("SAMPLES") ? std::atoi(std::getenv("SAMPLES")) : 7;
  double ms = 0, flops = 0, sink = 0;
  if (what == "forward" || what == "pattern" || what == "stats") {
    const auto layer = make_layer(false);
    const matrix<float> x = random_matrix(n, d_model, 5, 1.0f);
    flops = 8.0 * n * d_model * d_model + 4.0 * double(n) * n * d_model;
    observe_patterns hooks;
    attention_statistics<float> stats;
    if (what == "stats") options.statistics = &stats;
    ms = median_ms(
        [&] {
          const matrix<float> out = what == "pattern" ? layer.forward(x, options, hooks) : layer.forward(x, options);
          sink += double(out(0, 0));
        },
        sample, samples);
    sink += hooks.sink;
  } else if (what == "decode") {
    const auto layer = make_layer(true);
    const matrix<float> prompt = random_matrix(n, d_model, 6, 1.0f);
    const matrix<float> token = random_matrix(1, d_model, 7, 1.0f);
    kv_cache<float> cache;
    layer.forward_step(prompt, cache, options);
    flops = 8.0 * d_model * d_model + 4.0 * double(n + 1) * d_model;
    // Each call decodes one token after the same n cached ones: the cache is rolled back between calls.
    ms = median_ms(
        [&] {
          const matrix<float> out = layer.forward_step(token, cache, options);
          sink += double(out(0, 0));
          cache.truncate(n);
        },
        sample, samples);
  } else if (what == "gemm") {
    const matrix<float> x = random_matrix(n, d_model, 5, 1.0f);
    const matrix<float> w = random_matrix(d_model, 3 * d_model, 8, 0.03f);
    matrix<float> y(n, 3 * d_model);
    const int threads = detail::thread_count(options.threads);
    flops = 2.0 * n * d_model * 3 * d_model;
    ms = median_ms([&] { detail::projection_product<float>(y, x, w, threads); sink += double(y(0, 0)); }, sample,
                   samples);
  } else {
    std::fprintf(stderr, "headlens_runner: unknown mode %s\n", what.c_str());
    return 2;
  }
#ifdef HEADLENS_USE_BLAS
  const char* impl = "headlens_blas";
#else
  const char* impl = "headlens";
#endif
  std::printf("{\"impl\": \"%s\", \"mode\": \"%s\", \"n\": %ld, \"path\": \"%s\", \"ms\": %.4f, \"gflops\": %.2f, "
              "\"threads\": %d, \"sink\": %g}\n",
              impl, what.c_str(), long(n), path_name.c_str(), ms, flops / ms * 1e-6, detail::thread_count(options.threads),
              sink != sink ? 0.0 : 1.0);
  return 0;
}
