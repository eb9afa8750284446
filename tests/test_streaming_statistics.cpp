// Streaming statistics (kernels/streaming_statistics.hpp) against the same statistics computed here, from the
// materialised patterns a hook records, at T = 1024: row max and argmax, entropy, mass by relative offset, mass
// within the same segment, mass on marked tokens. Also on the materialised path, across thread counts, for
// masked rows and for decoding.

#include <catch2/catch.hpp>
#include <cmath>
#include <map>

#include <headlens/kernels/multi_head_attention.hpp>

#include "support/random_layer.hpp"

namespace test_streaming_statistics {

using namespace headlens;
using namespace testing_support;

namespace {

// Records every head's pattern.
template <class Scalar>
struct pattern_recorder {
  static constexpr point_set points{hook_point::pattern};
  std::map<std::pair<int, headlens::Index>, matrix<Scalar>> patterns;  // (head, batch row)
  void operator()(const hook_context& ctx, matrix_view<Scalar> view) { patterns[{ctx.head, ctx.batch_row}] = view; }
};

// The statistics of one head, from its pattern, in long double, written from the definitions.
struct expected_statistics {
  std::vector<long double> max_weight, entropy, same_segment, marked_mass, offset_mass;
  std::vector<long> argmax;
  long double far_mass = 0;
};

template <class Scalar>
expected_statistics from_pattern(const matrix<Scalar>& p, long past, const std::vector<headlens::Index>& segments,
                                 const std::vector<bool>& marked, long max_offset) {
  expected_statistics e;
  e.offset_mass.assign(std::size_t(2 * max_offset + 1), 0);
  for (long i = 0; i < p.rows(); ++i) {
    long double best = -1, entropy = 0, segment = 0, mark = 0, total = 0;
    long arg = -1;
    for (long j = 0; j < p.cols(); ++j) {
      const long double w = p(i, j);
      total += w;
      if (w > best) best = w, arg = j;
      if (w > 0) entropy -= w * std::log(w);
      if (!segments.empty() && segments[std::size_t(j)] == segments[std::size_t(past + i)]) segment += w;
      if (!marked.empty() && marked[std::size_t(j)]) mark += w;
    }
    if (total == 0) best = 0, arg = -1;
    e.max_weight.push_back(best);
    e.argmax.push_back(arg);
    e.entropy.push_back(entropy);
    e.same_segment.push_back(segment);
    e.marked_mass.push_back(mark);
    long double window = 0;
    for (long o = -max_offset; o <= max_offset; ++o) {
      const long j = past + i + o;
      if (j < 0 || j >= p.cols()) continue;
      e.offset_mass[std::size_t(o + max_offset)] += p(i, j);
      window += p(i, j);
    }
    if (total > 0) e.far_mass += std::max<long double>(0, 1 - window);
  }
  return e;
}

template <class Scalar>
void check_equal(const head_statistics<Scalar>& got, const expected_statistics& want, const matrix<Scalar>& pattern,
                 double tolerance) {
  REQUIRE(got.max_weight.size() == want.max_weight.size());
  int argmax_mismatches = 0;
  for (std::size_t i = 0; i < want.max_weight.size(); ++i) {
    CAPTURE(i);
    CHECK(std::abs(double(got.max_weight[i]) - double(want.max_weight[i])) < tolerance);
    CHECK(std::abs(double(got.entropy[i]) - double(want.entropy[i])) < 10 * tolerance);
    CHECK(std::abs(double(got.same_segment[i]) - double(want.same_segment[i])) < tolerance);
    CHECK(std::abs(double(got.marked_mass[i]) - double(want.marked_mass[i])) < tolerance);
    if (got.argmax[i] != want.argmax[i]) {
      // Only a near-tie may resolve differently: both keys must carry the maximum weight within rounding.
      ++argmax_mismatches;
      REQUIRE(got.argmax[i] >= 0);
      CHECK(std::abs(double(pattern(long(i), got.argmax[i])) - double(want.max_weight[i])) < tolerance);
    }
  }
  CHECK(argmax_mismatches <= 2);
  const double rows = double(want.max_weight.size());
  for (std::size_t o = 0; o < want.offset_mass.size(); ++o) {
    CAPTURE(o);
    CHECK(std::abs(double(got.offset_mass[o]) - double(want.offset_mass[o])) < rows * tolerance);
  }
  CHECK(std::abs(double(got.far_mass) - double(want.far_mass)) < rows * tolerance);
}

}  // namespace

TEMPLATE_TEST_CASE("streaming statistics equal those of the materialised maps at T = 1024", "[statistics]", float,
                   double) {
  const bool causal = GENERATE(false, true);
  const layer_shape s{32, 4, 2, 8, causal};
  auto L = random_reference_layer(s, 163);
  L.w_q *= 3;  // sharper patterns, so that argmax and offsets mean something
  const auto mha = module_of<TestType>(s, L);
  const int t = 1024;
  std::mt19937 rng(167);
  const matrix<TestType> x = to_matrix<TestType>(random_mat(rng, t, s.d_model));

  attention_statistics<TestType> stats(6);
  std::uniform_int_distribution<int> sentence_length(5, 40);
  for (headlens::Index id = 0; headlens::Index(stats.segment_ids.size()) < t; ++id) {
    stats.segment_ids.insert(stats.segment_ids.end(), std::size_t(sentence_length(rng)), id);
  }
  stats.segment_ids.resize(t);
  stats.marked.assign(t, false);
  for (int j = 0; j < t; j += 13) stats.marked[std::size_t(j)] = true;

  forward_options<TestType> options;
  options.statistics = &stats;
  options.path = attention_path::streaming;
  const matrix<TestType> out = mha.forward(x, options);
  const attention_statistics<TestType> streamed = stats;

  pattern_recorder<TestType> recorder;
  options.path = attention_path::automatic;  // the recorder materialises every head
  const matrix<TestType> observed = mha.forward(x, options, recorder);
  const double tolerance = std::is_same<TestType, float>::value ? 2e-5 : 1e-11;
  CHECK(scaled_error(out, observed.template cast<reference::real>()) < tolerance);

  for (int h = 0; h < s.n_heads; ++h) {
    CAPTURE(h, causal);
    const matrix<TestType>& pattern = recorder.patterns.at({h, 0});
    const auto want = from_pattern(pattern, 0, stats.segment_ids, stats.marked, 6);
    check_equal(streamed.head(0, h), want, pattern, tolerance);  // streaming path
    check_equal(stats.head(0, h), want, pattern, tolerance);     // materialised path, from the same maps
  }
}

TEMPLATE_TEST_CASE("streaming statistics: masked rows, padding, batches, thread counts and decoding", "[statistics]",
                   float, double) {
  const layer_shape s{16, 2, 1, 8, true};
  const auto L = random_reference_layer(s, 173);
  const auto mha = module_of<TestType>(s, L);
  const int t = 300, batch = 2;
  std::mt19937 rng(179);
  const matrix<TestType> x = to_matrix<TestType>(random_mat(rng, batch * t, s.d_model));
  forward_options<TestType> options;
  options.batch = batch;
  options.key_padding = bool_matrix::Constant(batch, t, false);
  options.key_padding.row(1).head(10).setConstant(true);  // rows 0..9 of sequence 1 see only padding
  attention_statistics<TestType> stats(3);
  stats.marked.assign(std::size_t(batch * t), false);
  stats.marked[0] = stats.marked[std::size_t(t + 20)] = true;
  options.statistics = &stats;

  options.threads = 1;
  mha.forward(x, options);
  const attention_statistics<TestType> one_thread = stats;
  options.threads = 3;
  mha.forward(x, options);
  for (int b = 0; b < batch; ++b) {
    for (int h = 0; h < s.n_heads; ++h) {
      const auto& a = one_thread.head(b, h);
      const auto& c = stats.head(b, h);
      CHECK(a.entropy == c.entropy);
      CHECK(a.offset_mass == c.offset_mass);
      CHECK(a.far_mass == c.far_mass);
      CHECK(a.argmax == c.argmax);
    }
  }
  const auto& masked = stats.head(1, 0);
  CHECK(masked.argmax[3] == -1);
  CHECK(masked.max_weight[3] == 0);
  CHECK(masked.entropy[3] == 0);
  CHECK(masked.argmax[10] == 10);  // the first visible key is the only one: weight 1 on itself
  CHECK(double(masked.max_weight[10]) == Approx(1.0));
  CHECK(double(masked.entropy[10]) == Approx(0.0).margin(1e-6));
  CHECK(double(masked.offset_mass[3]) >= 1.0 - 1e-6);  // offset 0 bin holds row 10's mass at least
  CHECK(double(stats.head(0, 1).marked_mass[0]) == Approx(1.0));  // query 0 sees only key 0, which is marked

  // Decoding: the statistics of the step's query rows against the forward's last rows.
  forward_options<TestType> single;
  attention_statistics<TestType> full_stats(3), step_stats(3);
  single.statistics = &full_stats;
  const matrix<TestType> x0 = x.topRows(t);
  mha.forward(x0, single);
  kv_cache<TestType> cache;
  single.statistics = nullptr;
  mha.forward_step(x0.topRows(t - 1), cache, single);
  single.statistics = &step_stats;
  mha.forward_step(x0.bottomRows(1), cache, single);
  for (int h = 0; h < s.n_heads; ++h) {
    CHECK(step_stats.head(0, h).argmax[0] == full_stats.head(0, h).argmax[std::size_t(t - 1)]);
    CHECK(double(step_stats.head(0, h).entropy[0]) ==
          Approx(double(full_stats.head(0, h).entropy[std::size_t(t - 1)])).epsilon(1e-4));
  }

  stats.segment_ids.assign(5, 0);
  REQUIRE_THROWS_WITH(mha.forward(x, options),
                      "headlens: attention_statistics::segment_ids has 5 entries, expected T_k = 300 or batch*T_k = 600");
}

}  // namespace test_streaming_statistics
