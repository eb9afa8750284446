// Long-context instrumentation in O(heads x T) memory (issue 5, section 2): one causal attention layer at
// T = 16384 with 16 heads of size 64 (d_model 1024), float, run in a child process twice: uninstrumented, and with
// streaming statistics (row max and argmax, entropy, offsets, segments, marked tokens) for every head. Each
// child's peak resident set comes from wait4's rusage. Passes when the instrumented peak is within 1.25x of the
// uninstrumented one; materialising the 16 patterns instead would need 16 x 16384^2 x 4 bytes = 17.2 GB.
//
// Built with optimisation whatever the build type (tests/CMakeLists.txt) and labelled `long`.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <headlens/kernels/multi_head_attention.hpp>

namespace {

using namespace headlens;
using headlens::Index;

constexpr Index t = 16384, heads = 16, head_dim = 64, d_model = heads * head_dim;

int run_child(bool instrumented) {
  attention_config config;
  config.d_model = d_model;
  config.n_heads = heads;
  config.causal = true;
  attention_weights<float> w;
  std::srand(1);
  w.w_q = matrix<float>::Random(d_model, d_model) * 0.05f;
  w.w_k = matrix<float>::Random(d_model, d_model) * 0.05f;
  w.w_v = matrix<float>::Random(d_model, d_model) * 0.05f;
  w.w_o = matrix<float>::Random(d_model, d_model) * 0.05f;
  w.b_q = w.b_k = w.b_v = w.b_o = vector<float>::Zero(d_model);
  const multi_head_attention<float> layer(config, w);
  const matrix<float> x = matrix<float>::Random(t, d_model);

  forward_options<float> options;
  attention_statistics<float> stats(16);
  if (instrumented) {
    stats.segment_ids.resize(std::size_t(t));
    for (Index j = 0; j < t; ++j) stats.segment_ids[std::size_t(j)] = j / 37;  // "sentences" of 37 tokens
    stats.marked.assign(std::size_t(t), false);
    for (Index j = 0; j < t; j += 64) stats.marked[std::size_t(j)] = true;
    options.statistics = &stats;
  }
  const auto start = std::chrono::steady_clock::now();
  const matrix<float> out = layer.forward(x, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!out.allFinite()) {
    std::fprintf(stderr, "non-finite output\n");
    return 1;
  }
  if (instrumented) {
    // Every row's mass is 1: the offset bins and the far mass add up to T per head.
    for (Index h = 0; h < heads; ++h) {
      const head_statistics<float>& s = stats.head(0, h);
      double total = s.far_mass;
      for (float m : s.offset_mass) total += m;
      if (std::abs(total - double(t)) > 1e-2 * double(t) || s.argmax[0] != 0 || !(s.entropy[t - 1] > 0)) {
        std::fprintf(stderr, "head %ld: statistics do not add up (total mass %g)\n", long(h), total);
        std::fflush(stdout);
        return 1;
      }
    }
    std::printf("  statistics hold %.1f MB\n", double(stats.bytes()) / 1e6);
  }
  std::printf("  forward took %.1f s\n", seconds);
  std::fflush(stdout);  // the child leaves through _exit, which does not flush
  return 0;
}

// Runs a child and returns its peak RSS in MB, or a negative number when it failed.
double child_peak_mb(bool instrumented) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) _exit(run_child(instrumented));
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return double(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

int main() {
  std::printf("long-context memory: T = %ld, %ld heads of %ld, causal, float\n", long(t), long(heads), long(head_dim));
  std::printf("uninstrumented:\n");
  const double plain = child_peak_mb(false);
  std::printf("with streaming statistics:\n");
  const double instrumented = child_peak_mb(true);
  if (plain <= 0 || instrumented <= 0) {
    std::printf("FAILED: a child process failed\n");
    return 1;
  }
  const double patterns_gb = double(heads) * double(t) * double(t) * sizeof(float) / 1e9;
  std::printf("peak RSS: %.0f MB uninstrumented, %.0f MB instrumented (%.3fx; limit 1.25x); materialised patterns "
              "would need %.1f GB\n",
              plain, instrumented, instrumented / plain, patterns_gb);
  if (instrumented > 1.25 * plain) {
    std::printf("FAILED: instrumented peak above 1.25x\n");
    return 1;
  }
  return 0;
}
