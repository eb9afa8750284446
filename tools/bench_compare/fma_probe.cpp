// FMA-peak probe for tools/bench_compare.sh: prints the aggregate GFLOP/s of bench/support/fma_peak.hpp as JSON.
// Usage: fma_probe [seconds]. Threads: OMP_NUM_THREADS.
#include <cstdio>
#include <cstdlib>

#include "support/fma_peak.hpp"

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
  const double best = headlens_bench::fma_peak_gflops(seconds);
  std::printf(
      "{\"impl\": \"probe\", \"mode\": \"fma_peak\", \"n\": 0, \"gflops\": %.2f, \"threads\": %d, "
      "\"lanes\": %d}\n",
      best, headlens_bench::fma_peak_threads(), int(xsimd::batch<float>::size));
  return 0;
}
