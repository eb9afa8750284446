// The straightforward Eigen attention users would write, for tools/bench_compare.sh: fused GEMM projections
// (Eigen's own OpenMP threading), per head Q_h K_h^T with the scale folded into the GEMM, a std::exp row softmax,
// P V, the output GEMM. BERT-base shape (d 768, 12 heads), float. Usage: eigen_baseline T. Prints JSON.
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

using matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using row_vector = Eigen::Matrix<float, 1, Eigen::Dynamic>;

namespace {

constexpr long d = 768, heads = 12, hd = 64;

matrix attention(const matrix& x, const matrix& w_qkv, const row_vector& b_qkv, const matrix& w_o,
                 const row_vector& b_o) {
  const long t = x.rows();
  matrix qkv = x * w_qkv;
  qkv.rowwise() += b_qkv;
  matrix z(t, d), s(t, t);
  const float scale = 1.0f / std::sqrt(float(hd));
  for (long h = 0; h < heads; ++h) {
    s.noalias() = (scale * qkv.middleCols(h * hd, hd)) * qkv.middleCols(d + h * hd, hd).transpose();
    for (long i = 0; i < t; ++i) {
      const float m = s.row(i).maxCoeff();
      float sum = 0;
      for (long j = 0; j < t; ++j) sum += (s(i, j) = std::exp(s(i, j) - m));
      s.row(i) /= sum;
    }
    z.middleCols(h * hd, hd).noalias() = s * qkv.middleCols(2 * d + h * hd, hd);
  }
  matrix out = z * w_o;
  out.rowwise() += b_o;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const long t = argc > 1 ? std::atol(argv[1]) : 512;
  std::srand(3);
  const matrix x = matrix::Random(t, d), w_qkv = matrix::Random(d, 3 * d) * 0.06f, w_o = matrix::Random(d, d) * 0.06f;
  const row_vector b_qkv = row_vector::Zero(3 * d), b_o = row_vector::Zero(d);
  const double sample = std::getenv("SAMPLE_SECONDS") ? std::atof(std::getenv("SAMPLE_SECONDS")) : 0.1;
  const int samples = std::getenv("SAMPLES") ? std::atoi(std::getenv("SAMPLES")) : 7;
  using clock = std::chrono::steady_clock;
  float sink = 0;
  for (int i = 0; i < 2; ++i) sink += attention(x, w_qkv, b_qkv, w_o, b_o)(0, 0);
  const auto t0 = clock::now();
  sink += attention(x, w_qkv, b_qkv, w_o, b_o)(0, 0);
  const double one = std::chrono::duration<double>(clock::now() - t0).count();
  const int calls = std::max(1, int(sample / one));
  std::vector<double> times;
  for (int s = 0; s < samples; ++s) {
    const auto start = clock::now();
    for (int c = 0; c < calls; ++c) sink += attention(x, w_qkv, b_qkv, w_o, b_o)(0, 0);
    times.push_back(std::chrono::duration<double, std::milli>(clock::now() - start).count() / calls);
  }
  std::sort(times.begin(), times.end());
  const double ms = times[times.size() / 2];
  const double flops = 8.0 * t * d * d + 4.0 * double(t) * t * d;
  std::printf("{\"impl\": \"eigen\", \"mode\": \"forward\", \"n\": %ld, \"ms\": %.4f, \"gflops\": %.2f, \"threads\": %d, "
              "\"sink\": %d}\n",
              t, ms, flops / ms * 1e-6, Eigen::nbThreads(), sink == sink ? 1 : 0);
  return 0;
}
