#pragma once
// The machine's FMA peak, measured: every thread runs independent chains of fused multiply-adds on the widest
// xsimd batch the build targets (enough chains to cover the FMA latency on two pipes). The yardstick every "% of
// peak" figure is taken against, in the same run as the figure (tools/bench_compare/fma_probe.cpp, bench/).

#include <algorithm>
#include <chrono>
#include <xsimd/xsimd.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace headlens_bench {

namespace fma_detail {
using batch = xsimd::batch<float>;
inline constexpr int chains = 16;

// Runs `iterations` rounds of `chains` independent FMAs; returns a value that depends on all of them.
__attribute__((noinline)) inline float run(long iterations, float seed) {
  batch acc[chains];
  for (int c = 0; c < chains; ++c) acc[c] = batch(seed + float(c) * 1e-3f);
  const batch a(0.999999f), b(1e-7f);
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < chains; ++c) acc[c] = xsimd::fma(acc[c], a, b);
  }
  batch sum = acc[0];
  for (int c = 1; c < chains; ++c) sum += acc[c];
  return xsimd::hadd(sum);
}
}  // namespace fma_detail

/// Threads the probe runs on (OpenMP's default: OMP_NUM_THREADS or the core count).
inline int fma_peak_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Aggregate FMA throughput in GFLOP/s of all threads: calibrated on one thread, then every thread runs for about
/// `seconds`; best of `attempts`.
inline double fma_peak_gflops(double seconds = 0.5, int attempts = 5) {
  using fma_detail::batch;
  const int threads = fma_peak_threads();
  long iterations = 1 << 20;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    volatile float sink = fma_detail::run(iterations, 1.0f);
    (void)sink;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 0.05) {
      iterations = std::max(1L, long(double(iterations) * seconds / dt));
      break;
    }
    iterations *= 2;
  }
  double best = 0;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0;
#pragma omp parallel reduction(+ : total)
    total += fma_detail::run(iterations, 1.0f + float(attempt));
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gflops = 2.0 * batch::size * fma_detail::chains * double(iterations) * threads / dt * 1e-9;
    best = std::max(best, gflops);
    volatile float sink = total;
    (void)sink;
  }
  return best;
}

}  // namespace headlens_bench
