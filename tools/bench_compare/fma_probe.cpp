// FMA-peak probe for tools/bench_compare.sh: every thread runs independent chains of fused multiply-adds on the
// widest xsimd batch the build targets (enough chains to cover the FMA latency on two pipes) and the probe prints
// the aggregate GFLOP/s as JSON. Usage: fma_probe [seconds]. Threads: OMP_NUM_THREADS.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <xsimd/xsimd.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using batch = xsimd::batch<float>;
constexpr int chains = 16;

// Runs `iterations` rounds of `chains` independent FMAs; returns a value that depends on all of them.
__attribute__((noinline)) float run(long iterations, float seed) {
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

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  // Calibrate on one thread, then run every thread for about `seconds`; best of 5.
  long iterations = 1 << 20;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    volatile float sink = run(iterations, 1.0f);
    (void)sink;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 0.05) {
      iterations = long(double(iterations) * seconds / dt);
      break;
    }
    iterations *= 2;
  }
  double best = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0;
#pragma omp parallel reduction(+ : total)
    total += run(iterations, 1.0f + float(attempt));
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gflops = 2.0 * batch::size * chains * double(iterations) * threads / dt * 1e-9;
    if (gflops > best) best = gflops;
    if (total == 12345.0f) std::printf(" ");
  }
  std::printf("{\"impl\": \"probe\", \"mode\": \"fma_peak\", \"n\": 0, \"gflops\": %.2f, \"threads\": %d, "
              "\"lanes\": %d}\n",
              best, threads, int(batch::size));
  return 0;
}
