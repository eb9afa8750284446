// Sparse attention (forward_options::sparsity, kernels/attention_sparsity.hpp) against an independent scalar
// reference written here from the definition: the long-double reference attention's scores, a softmax, the top-k
// or threshold selection (keys ordered by logit, ties to the lower index), renormalisation of the kept weights,
// then P V. Both paths, causal, padding, GQA, batches; ties; k = 1; the per-head report
// (kernels/sparsity_statistics.hpp) against the same reference; bad options.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include <headlens/kernels/multi_head_attention.hpp>
#include <headlens/models/transformer.hpp>

#include "support/random_layer.hpp"

namespace test_sparse_attention {

using namespace headlens;
using namespace testing_support;
using reference::mat;
using reference::real;

#define BOTH_PATHS GENERATE(attention_path::materialised, attention_path::streaming)

// What the reference says sparsity does to one head on one sequence.
struct sparse_head {
  mat z;                          // [T_q x head_dim]
  std::vector<bool> ambiguous;    // rows whose selection a rounding of the logits could change
  std::vector<bool> measured;     // rows with a visible key
  double visible = 0, dropped = 0, mass_kept = 0, error_squared = 0, dense_squared = 0;
  std::vector<int> kept_count;    // per row
};

// The reference's sparse z of every head of one sequence. `mode`, `k`, `tau` as the options; rows where the
// k-th and (k+1)-th logits, or a weight and tau, are within 1e-5 (relative) are flagged ambiguous.
inline std::vector<sparse_head> sparse_reference(const reference::layer& L, const mat& x, sparsity_mode mode,
                                                 long k, double tau, const std::vector<bool>& padding = {},
                                                 const mat& attn_mask = mat()) {
  const int t = int(x.rows()), hd = L.head_dim, group = L.n_heads / L.n_kv_heads;
  const auto dense = reference::attend(L, x, x, reference::iota(t), reference::iota(t), padding, attn_mask);
  const mat v = reference::project(x, L.w_v, L.b_v);
  std::vector<sparse_head> heads(std::size_t(L.n_heads));
  for (int h = 0; h < L.n_heads; ++h) {
    sparse_head& out = heads[std::size_t(h)];
    out.z = mat::Zero(t, hd);
    out.ambiguous.assign(std::size_t(t), false);
    out.measured.assign(std::size_t(t), false);
    out.kept_count.assign(std::size_t(t), 0);
    const mat& s = dense.scores[std::size_t(h)];
    for (int i = 0; i < t; ++i) {
      std::vector<int> visible;
      for (int j = 0; j < t; ++j) {
        if (s(i, j) > -std::numeric_limits<real>::infinity()) visible.push_back(j);
      }
      if (visible.empty()) continue;
      out.measured[std::size_t(i)] = true;
      real max = -std::numeric_limits<real>::infinity();
      for (int j : visible) max = std::max(max, s(i, j));
      std::vector<real> p(std::size_t(t), 0);
      real sum = 0;
      for (int j : visible) sum += (p[std::size_t(j)] = std::exp(s(i, j) - max));
      for (int j : visible) p[std::size_t(j)] /= sum;
      std::vector<bool> keep(std::size_t(t), false);
      if (mode == sparsity_mode::top_k) {
        std::vector<int> order = visible;
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return s(i, a) > s(i, b); });
        const std::size_t n = std::min<std::size_t>(std::size_t(k), order.size());
        for (std::size_t r = 0; r < n; ++r) keep[std::size_t(order[r])] = true;
        if (n < order.size()) {
          const real a = s(i, order[n - 1]), b = s(i, order[n]);
          out.ambiguous[std::size_t(i)] = a != b && a - b < 1e-5L * std::max<real>(1, std::abs(a));
        }
      } else {
        for (int j : visible) {
          keep[std::size_t(j)] = p[std::size_t(j)] >= real(tau);
          if (std::abs(p[std::size_t(j)] - real(tau)) < 1e-5L * real(tau)) out.ambiguous[std::size_t(i)] = true;
        }
      }
      real kept_mass = 0;
      int kept = 0;
      for (int j : visible) {
        if (keep[std::size_t(j)]) {
          kept_mass += p[std::size_t(j)];
          ++kept;
        }
      }
      out.kept_count[std::size_t(i)] = kept;
      out.visible += double(visible.size());
      out.dropped += double(visible.size()) - kept;
      out.mass_kept += double(kept_mass);
      const int g = h / group;
      for (int c = 0; c < hd; ++c) {
        real zc = 0, dc = 0;
        for (int j : visible) {
          if (keep[std::size_t(j)]) zc += p[std::size_t(j)] / kept_mass * v(j, g * hd + c);
          dc += p[std::size_t(j)] * v(j, g * hd + c);
        }
        out.z(i, c) = kept > 0 ? zc : 0;
        out.error_squared += double((out.z(i, c) - dc) * (out.z(i, c) - dc));
        out.dense_squared += double(dc * dc);
      }
    }
  }
  return heads;
}

// Captures every head's z of every sequence.
template <class Scalar>
struct capture_z {
  static constexpr point_set points{hook_point::z};
  std::map<std::pair<Index, int>, matrix<Scalar>> z;  // (batch row, head)
  void operator()(const hook_context& ctx, matrix_view<Scalar> view) { z[{ctx.batch_row, ctx.head}] = view; }
};

// Largest difference of the unambiguous rows of a head's z from the reference, scaled as `scaled_error`.
template <class Scalar>
double z_error(const matrix<Scalar>& z, const sparse_head& expected, int* compared = nullptr) {
  double worst = 0, scale = 1;
  for (Index i = 0; i < z.rows(); ++i) {
    if (expected.ambiguous[std::size_t(i)]) continue;
    if (compared != nullptr) ++*compared;
    for (Index c = 0; c < z.cols(); ++c) {
      scale = std::max(scale, double(std::abs(expected.z(i, c))));
      worst = std::max(worst, std::abs(double(z(i, c)) - double(expected.z(i, c))));
    }
  }
  return worst / scale;
}

inline attention_sparsity sparsity_of(sparsity_mode mode, long k, double tau) {
  return mode == sparsity_mode::top_k ? top_k_sparsity(k) : threshold_sparsity(tau);
}

const layer_shape shapes[] = {
    {12, 3, 3, 4},                        // MHA
    {20, 4, 2, 5, false, true},           // GQA, odd head_dim
    {24, 6, 3, 4, true, true, true},      // causal, rotary
    {32, 2, 2, 16},                       // tile_product from T = 64 on
    {64, 4, 2, 16, true, true, true},     // the same, GQA, causal, rotary
};

TEMPLATE_TEST_CASE("top-k and threshold attention match the scalar reference", "[sparse]", float, double) {
  const int shape_index = GENERATE(range(0, int(sizeof(shapes) / sizeof(shapes[0]))));
  const int t = GENERATE(7, 70, 300);
  const attention_path path = BOTH_PATHS;
  const auto [mode, k, tau] = GENERATE(std::make_tuple(sparsity_mode::top_k, 1L, 0.0),
                                       std::make_tuple(sparsity_mode::top_k, 5L, 0.0),
                                       std::make_tuple(sparsity_mode::top_k, 64L, 0.0),
                                       std::make_tuple(sparsity_mode::threshold, 0L, 0.01),
                                       std::make_tuple(sparsity_mode::threshold, 0L, 0.2));
  const layer_shape s = shapes[shape_index];
  CAPTURE(shape_index, t, path, int(mode), k, tau);
  const auto L = random_reference_layer(s, 300 + unsigned(shape_index));
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(17 + unsigned(t));
  const mat x = random_mat(rng, t, s.d_model, 2.0);  // spread 2: peaked enough that thresholds drop weights

  forward_options<TestType> options;
  options.path = path;
  options.sparsity = sparsity_of(mode, k, tau);
  capture_z<TestType> hooks;
  mha.forward(to_matrix<TestType>(x), options, hooks);
  const auto expected = sparse_reference(L, x, mode, k, tau);
  int compared = 0;
  for (int h = 0; h < s.n_heads; ++h) {
    CAPTURE(h);
    CHECK(z_error(hooks.z.at({0, h}), expected[std::size_t(h)], &compared) < tolerance<TestType>());
  }
  CHECK(compared >= s.n_heads * t * 9 / 10);  // the ambiguous rows are rare
}

TEMPLATE_TEST_CASE("a batch with key padding, causal GQA: each sequence as the reference", "[sparse][batch]", float,
                   double) {
  const layer_shape s{16, 4, 2, 8, GENERATE(false, true), true, false};
  const auto L = random_reference_layer(s, 41);
  const auto mha = module_of<TestType>(s, L);
  const attention_path path = BOTH_PATHS;
  const auto mode = GENERATE(sparsity_mode::top_k, sparsity_mode::threshold);
  const int t = 280, batch = 3, lengths[batch] = {280, 150, 1};
  CAPTURE(path, int(mode), s.causal);
  std::mt19937 rng(43);
  const mat x = random_mat(rng, batch * t, s.d_model, 2.0);
  forward_options<TestType> options;
  options.path = path;
  options.batch = batch;
  options.sparsity = sparsity_of(mode, 9, 0.03);
  options.key_padding = bool_matrix::Constant(batch, t, false);
  for (int b = 0; b < batch; ++b) options.key_padding.row(b).tail(t - lengths[b]).setConstant(true);
  capture_z<TestType> hooks;
  mha.forward(to_matrix<TestType>(x), options, hooks);
  for (int b = 0; b < batch; ++b) {
    std::vector<bool> padding(std::size_t(t), false);
    for (int j = lengths[b]; j < t; ++j) padding[std::size_t(j)] = true;
    const auto expected = sparse_reference(L, x.middleRows(b * t, t), mode, 9, 0.03, padding);
    for (int h = 0; h < s.n_heads; ++h) {
      CAPTURE(b, h);
      CHECK(z_error(hooks.z.at({b, h}), expected[std::size_t(h)]) < tolerance<TestType>());
    }
  }
}

TEMPLATE_TEST_CASE("top-k with k >= T and threshold 0 equal dense attention", "[sparse][identity]", float, double) {
  const layer_shape s = GENERATE(layer_shape{20, 4, 2, 5, true, true}, layer_shape{64, 4, 2, 16, true, true, true});
  const auto L = random_reference_layer(s, 51);
  const auto mha = module_of<TestType>(s, L);
  const attention_path path = BOTH_PATHS;
  const int t = GENERATE(33, 300);
  CAPTURE(path, t, s.d_model);
  std::mt19937 rng(53);
  const auto x = to_matrix<TestType>(random_mat(rng, t, s.d_model));
  forward_options<TestType> options;
  options.path = path;
  const matrix<TestType> dense = mha.forward(x, options);
  const double tol = std::is_same<TestType, float>::value ? 2e-6 : 1e-13;
  for (const attention_sparsity sparsity : {top_k_sparsity(t), top_k_sparsity(t + 100), threshold_sparsity(0.0)}) {
    options.sparsity = sparsity;
    const matrix<TestType> sparse = mha.forward(x, options);
    CAPTURE(int(sparsity.mode), sparsity.k);
    CHECK((sparse - dense).cwiseAbs().maxCoeff() <= tol * std::max<double>(1, dense.cwiseAbs().maxCoeff()));
  }
}

TEMPLATE_TEST_CASE("sparsity none is the dense kernel bit for bit", "[sparse][identity]", float, double) {
  const layer_shape s{64, 4, 2, 16, true, true, true};
  const auto L = random_reference_layer(s, 57);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(59);
  const auto x = to_matrix<TestType>(random_mat(rng, 300, s.d_model));
  forward_options<TestType> options;
  options.path = BOTH_PATHS;
  const matrix<TestType> plain = mha.forward(x, options);
  options.sparsity = attention_sparsity{sparsity_mode::none, 3, 0.5};  // k and tau unused
  CHECK(mha.forward(x, options) == plain);
}

TEMPLATE_TEST_CASE("both paths agree on long sequences", "[sparse][paths]", float, double) {
  const layer_shape s{64, 4, 2, 16, GENERATE(false, true), true, true};
  const auto L = random_reference_layer(s, 61);
  const auto mha = module_of<TestType>(s, L);
  const int t = 700;  // 11 query tiles, 3 key tiles
  const auto mode = GENERATE(sparsity_mode::top_k, sparsity_mode::threshold);
  CAPTURE(s.causal, int(mode));
  std::mt19937 rng(67);
  const mat x = random_mat(rng, t, s.d_model, 2.0);
  const auto expected = sparse_reference(L, x, mode, 20, 0.01);
  capture_z<TestType> by_path[2];
  for (int p = 0; p < 2; ++p) {
    forward_options<TestType> options;
    options.path = p == 0 ? attention_path::materialised : attention_path::streaming;
    options.sparsity = sparsity_of(mode, 20, 0.01);
    mha.forward(to_matrix<TestType>(x), options, by_path[p]);
  }
  const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-12;
  for (int h = 0; h < s.n_heads; ++h) {
    const matrix<TestType>& a = by_path[0].z.at({0, h});
    const matrix<TestType>& b = by_path[1].z.at({0, h});
    for (Index i = 0; i < t; ++i) {
      if (expected[std::size_t(h)].ambiguous[std::size_t(i)]) continue;
      CAPTURE(h, i);
      CHECK((a.row(i) - b.row(i)).cwiseAbs().maxCoeff() <= tol * std::max<double>(1, a.row(i).cwiseAbs().maxCoeff()));
    }
  }
}

// A layer whose keys are all zero, so every logit of a row is equal (exact ties), and whose values differ per
// token, so which tied keys are kept shows in z.
inline reference::layer tied_layer(const layer_shape& s) {
  reference::layer L = random_reference_layer(s, 71);
  L.w_k.setZero();
  std::fill(L.b_k.begin(), L.b_k.end(), real(0));
  return L;
}

TEMPLATE_TEST_CASE("exact ties at the k-th weight go to the lower key index", "[sparse][ties]", float, double) {
  const layer_shape s{16, 2, 2, 8, GENERATE(false, true), true, false};
  const auto L = tied_layer(s);
  const auto mha = module_of<TestType>(s, L);
  const attention_path path = BOTH_PATHS;
  const int t = GENERATE(10, 300), k = 3;
  CAPTURE(path, t, s.causal);
  std::mt19937 rng(73);
  const mat x = random_mat(rng, t, s.d_model);
  const mat v = reference::project(x, L.w_v, L.b_v);
  forward_options<TestType> options;
  options.path = path;
  options.sparsity = top_k_sparsity(k);
  capture_z<TestType> hooks;
  mha.forward(to_matrix<TestType>(x), options, hooks);
  for (int h = 0; h < s.n_heads; ++h) {
    const matrix<TestType>& z = hooks.z.at({0, h});
    for (int i = 0; i < t; ++i) {
      // Every visible key ties: the first min(k, visible) keys are kept, with equal weights.
      const int kept = std::min(k, s.causal ? i + 1 : t);
      for (int c = 0; c < s.head_dim; ++c) {
        real expected = 0;
        for (int j = 0; j < kept; ++j) expected += v(j, h * s.head_dim + c) / kept;
        CAPTURE(h, i, c);
        CHECK(double(z(i, c)) == Approx(double(expected)).margin(1e-5).epsilon(1e-5));
      }
    }
  }
}

TEMPLATE_TEST_CASE("k = 1 gives the value of the row's argmax key", "[sparse][argmax]", float, double) {
  const layer_shape s{24, 4, 2, 6, GENERATE(false, true), true, true};
  const auto L = random_reference_layer(s, 79);
  const auto mha = module_of<TestType>(s, L);
  const attention_path path = BOTH_PATHS;
  const int t = 300;
  CAPTURE(path, s.causal);
  std::mt19937 rng(83);
  const mat x = random_mat(rng, t, s.d_model);
  const auto dense = reference::attend(L, x, x, reference::iota(t), reference::iota(t));
  const mat v = reference::project(x, L.w_v, L.b_v);
  forward_options<TestType> options;
  options.path = path;
  options.sparsity = top_k_sparsity(1);
  capture_z<TestType> hooks;
  mha.forward(to_matrix<TestType>(x), options, hooks);
  for (int h = 0; h < s.n_heads; ++h) {
    const mat& sc = dense.scores[std::size_t(h)];
    const int g = h / (s.n_heads / s.n_kv_heads);
    for (int i = 0; i < t; ++i) {
      Index argmax = 0;
      sc.row(i).maxCoeff(&argmax);
      // Skip rows whose two best logits are within rounding of each other.
      const auto row = sc.row(i);
      real second = -std::numeric_limits<real>::infinity();
      for (int j = 0; j < t; ++j) {
        if (j != argmax) second = std::max(second, row(j));
      }
      if (row(argmax) - second < 1e-5L) continue;
      CAPTURE(h, i, argmax);
      const auto expected = v.block(argmax, g * s.head_dim, 1, s.head_dim);
      CHECK((hooks.z.at({0, h}).row(i).template cast<real>() - expected).cwiseAbs().maxCoeff() < 1e-5L);
    }
  }
}

TEMPLATE_TEST_CASE("the sparsity report matches the reference and accumulates over calls", "[sparse][report]", float,
                   double) {
  const layer_shape s{64, 4, 2, 16, GENERATE(false, true), true, true};
  const auto L = random_reference_layer(s, 89);
  const auto mha = module_of<TestType>(s, L, /*layer=*/2);
  const attention_path path = BOTH_PATHS;
  const auto mode = GENERATE(sparsity_mode::top_k, sparsity_mode::threshold);
  const int t = GENERATE(40, 300);
  CAPTURE(path, int(mode), t, s.causal);
  std::mt19937 rng(97);
  const mat x = random_mat(rng, t, s.d_model, 2.0);
  const auto expected = sparse_reference(L, x, mode, 7, 0.02);
  sparsity_statistics report;
  forward_options<TestType> options;
  options.path = path;
  options.sparsity = sparsity_of(mode, 7, 0.02);
  options.sparsity_report = &report;
  const matrix<TestType> out = mha.forward(to_matrix<TestType>(x), options);
  mha.forward(to_matrix<TestType>(x), options);  // a second call doubles every total
  REQUIRE(report.layers() == 3);
  REQUIRE(report.heads(2) == s.n_heads);
  REQUIRE(report.heads(0) == 0);
  for (int h = 0; h < s.n_heads; ++h) {
    CAPTURE(h);
    const head_sparsity& got = report.head(2, h);
    const sparse_head& e = expected[std::size_t(h)];
    CHECK(got.rows == std::uint64_t(2 * t));
    CHECK(double(got.weights) == 2 * e.visible);
    // The counts are exact up to rows whose selection rounding could change (none in these seeds).
    CHECK(double(got.dropped) == Approx(2 * e.dropped).margin(2));
    CHECK(got.dropped_share() == Approx(e.dropped / e.visible).margin(1e-3));
    CHECK(got.mean_mass_kept() == Approx(e.mass_kept / t).epsilon(1e-4));
    CHECK(got.output_error() == Approx(std::sqrt(e.error_squared / e.dense_squared)).epsilon(1e-3).margin(1e-5));
    CHECK(got.dropped > 0);  // the settings drop something, so the checks above can fail
    if (path == attention_path::streaming) {
      CHECK(got.key_tiles > 0);
    } else {
      CHECK(got.key_tiles == 0);
    }
  }
  // The report changes nothing in the output.
  forward_options<TestType> quiet = options;
  quiet.sparsity_report = nullptr;
  CHECK(mha.forward(to_matrix<TestType>(x), quiet) == out);
}

TEMPLATE_TEST_CASE("the streaming threshold pass skips key tiles that hold no kept weight", "[sparse][skip]", float,
                   double) {
  // Every query puts nearly all of its mass on the first 10 keys (an additive mask of +30 there), so with
  // tau = 1e-3 the second and third key tiles (keys 256..599) hold only weights below e^-20: skipped.
  const layer_shape s{32, 2, 2, 16};
  const auto L = random_reference_layer(s, 101);
  const auto mha = module_of<TestType>(s, L);
  const int t = 600;
  std::mt19937 rng(103);
  const mat x = random_mat(rng, t, s.d_model);
  mat mask = mat::Zero(t, t);
  mask.leftCols(10).setConstant(30);
  const auto expected = sparse_reference(L, x, sparsity_mode::threshold, 0, 1e-3, {}, mask);
  sparsity_statistics report;
  forward_options<TestType> options;
  options.path = attention_path::streaming;
  options.attn_mask = mask.cast<TestType>();
  options.sparsity = threshold_sparsity(1e-3);
  options.sparsity_report = &report;
  capture_z<TestType> hooks;
  mha.forward(to_matrix<TestType>(x), options, hooks);
  for (int h = 0; h < s.n_heads; ++h) {
    CAPTURE(h);
    CHECK(z_error(hooks.z.at({0, h}), expected[std::size_t(h)]) < tolerance<TestType>());
    const head_sparsity& got = report.head(0, h);
    CHECK(got.key_tiles == std::uint64_t(10 * 3));  // 10 query tiles of 64 rows, 3 key tiles of 256
    CHECK(got.skipped_tiles == std::uint64_t(10 * 2));
    CHECK(got.skipped_tile_share() == Approx(2.0 / 3.0));
  }
}

TEST_CASE("statistics describe the sparse pattern on both paths", "[sparse][statistics]") {
  const layer_shape s{64, 4, 2, 16, true, true, true};
  const auto L = random_reference_layer(s, 107);
  const auto mha = module_of<double>(s, L);
  std::mt19937 rng(109);
  const auto x = to_matrix<double>(random_mat(rng, 300, s.d_model, 2.0));
  attention_statistics<double> by_path[2];
  for (int p = 0; p < 2; ++p) {
    forward_options<double> options;
    options.path = p == 0 ? attention_path::materialised : attention_path::streaming;
    options.sparsity = top_k_sparsity(4);
    options.statistics = &by_path[p];
    mha.forward(x, options);
  }
  for (int h = 0; h < s.n_heads; ++h) {
    const head_statistics<double>& a = by_path[0].head(0, h);
    const head_statistics<double>& b = by_path[1].head(0, h);
    for (std::size_t i = 0; i < a.entropy.size(); ++i) {
      CAPTURE(h, i);
      CHECK(a.argmax[i] == b.argmax[i]);
      CHECK(a.max_weight[i] == Approx(b.max_weight[i]).epsilon(1e-10));
      CHECK(a.entropy[i] == Approx(b.entropy[i]).margin(1e-10));
      CHECK(a.entropy[i] <= std::log(4.0) + 1e-12);  // at most 4 weights kept
    }
    for (std::size_t o = 0; o < a.offset_mass.size(); ++o) CHECK(a.offset_mass[o] == Approx(b.offset_mass[o]));
  }
}

TEST_CASE("bad sparsity options are rejected with a message naming the option and value", "[sparse][errors]") {
  const layer_shape s{8, 2, 2, 4};
  const auto mha = module_of<float>(s, random_reference_layer(s, 113));
  const matrix<float> x = matrix<float>::Random(5, 8);
  forward_options<float> options;
  options.sparsity = top_k_sparsity(-1);
  REQUIRE_THROWS_AS(mha.forward(x, options), argument_error);
  REQUIRE_THROWS_WITH(mha.forward(x, options), Catch::Contains("options.sparsity.k is -1, expected k >= 1"));
  options.sparsity = top_k_sparsity(0);
  REQUIRE_THROWS_WITH(mha.forward(x, options), Catch::Contains("options.sparsity.k is 0"));
  for (double tau : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    CAPTURE(tau);
    options.sparsity = threshold_sparsity(tau);
    REQUIRE_THROWS_AS(mha.forward(x, options), argument_error);
    REQUIRE_THROWS_WITH(mha.forward(x, options), Catch::Contains("options.sparsity.tau is") &&
                                                     Catch::Contains("expected a probability in [0, 1]"));
  }
  options.sparsity = attention_sparsity{sparsity_mode(7), 1, 0};
  REQUIRE_THROWS_WITH(mha.forward(x, options), Catch::Contains("options.sparsity.mode is 7"));
  sparsity_statistics report;
  options.sparsity = {};
  options.sparsity_report = &report;
  REQUIRE_THROWS_WITH(mha.forward(x, options), Catch::Contains("options.sparsity_report is set"));
  struct nothing final : pattern_row_observer<float> {
    void operator()(const pattern_rows<float>&) override {}
  } observer;
  options.sparsity_report = nullptr;
  options.sparsity = threshold_sparsity(0.1);
  options.row_observer = &observer;
  REQUIRE_THROWS_WITH(mha.forward(x, options), Catch::Contains("options.row_observer is set"));
  CHECK_THROWS_WITH(report.head(0, 0), Catch::Contains("no such head"));
}

TEMPLATE_TEST_CASE("a fully masked row stays zero and a NaN row NaN under sparsity", "[sparse][numerics]", float,
                   double) {
  const layer_shape s{8, 2, 2, 4};
  const auto mha = module_of<TestType>(s, random_reference_layer(s, 127));
  const attention_path path = BOTH_PATHS;
  std::mt19937 rng(131);
  const int t = 70;
  matrix<TestType> x = to_matrix<TestType>(random_mat(rng, t, s.d_model));
  forward_options<TestType> options;
  options.path = path;
  options.sparsity = GENERATE(top_k_sparsity(3), threshold_sparsity(0.05), threshold_sparsity(1.0));
  options.attn_mask = matrix<TestType>::Zero(t, t);
  options.attn_mask.row(1).setConstant(-std::numeric_limits<TestType>::infinity());
  options.attn_mask(2, 5) = std::numeric_limits<TestType>::quiet_NaN();
  capture_z<TestType> hooks;
  mha.forward(x, options, hooks);
  for (int h = 0; h < s.n_heads; ++h) {
    CHECK(hooks.z.at({0, h}).row(1).isZero(0));
    CHECK(hooks.z.at({0, h}).row(2).array().isNaN().all());
    CHECK(hooks.z.at({0, h}).row(3).allFinite());
  }
}

// A two-block GPT-2-like decoder with random weights, for the carry-through test.
inline transformer<float> small_decoder() {
  const Index d = 32, vocab = 50;
  std::mt19937 rng(137);
  const auto random = [&](Index rows, Index cols, double spread) {
    return to_matrix<float>(random_mat(rng, int(rows), int(cols), spread));
  };
  transformer_weights<float> w;
  w.token_embedding = random(vocab, d, 1.0);
  w.position_embedding = random(64, d, 0.1);
  for (int l = 0; l < 2; ++l) {
    block_weights<float> b;
    b.attention.d_model = d;
    b.attention.n_heads = 4;
    b.attention.causal = true;
    b.attention.bias = false;
    b.attention_norm = normalization<float>::layer(vector<float>::Ones(d), vector<float>::Zero(d), 1e-5);
    b.mlp_norm = normalization<float>::layer(vector<float>::Ones(d), vector<float>::Zero(d), 1e-5);
    b.attention_projections.w_q = random(d, d, 0.5);
    b.attention_projections.w_k = random(d, d, 0.5);
    b.attention_projections.w_v = random(d, d, 0.2);
    b.attention_projections.w_o = random(d, d, 0.2);
    b.feed_forward.kind = mlp_kind::plain;
    b.feed_forward.activation = activation_kind::gelu_tanh;
    b.feed_forward.w_in = random(d, 64, 0.2);
    b.feed_forward.w_out = random(64, d, 0.2);
    b.feed_forward.b_in = vector<float>::Zero(64);
    b.feed_forward.b_out = vector<float>::Zero(d);
    w.blocks.push_back(std::move(b));
  }
  w.final_norm = normalization<float>::layer(vector<float>::Ones(d), vector<float>::Zero(d), 1e-5);
  return transformer<float>(std::move(w));
}

TEST_CASE("transformer::forward carries the sparsity options and the report to every layer", "[sparse][transformer]") {
  const transformer<float> model = small_decoder();
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(std::int32_t((i * 7 + 3) % 50));
  const matrix<float> dense = model.forward(ids);
  forward_options<float> options;
  options.sparsity = top_k_sparsity(40);  // keeps everything: the dense logits within rounding
  const matrix<float> all = model.forward(ids, options);
  CHECK((all - dense).cwiseAbs().maxCoeff() < 1e-4f * std::max(1.0f, dense.cwiseAbs().maxCoeff()));
  sparsity_statistics report;
  options.sparsity = top_k_sparsity(2);
  options.sparsity_report = &report;
  const matrix<float> sparse = model.forward(ids, options);
  CHECK((sparse - dense).cwiseAbs().maxCoeff() > 1e-3f);  // two keys per row change the logits
  REQUIRE(report.layers() == 2);
  for (int layer = 0; layer < 2; ++layer) {
    REQUIRE(report.heads(layer) == 4);
    for (Index h = 0; h < 4; ++h) {
      const head_sparsity& got = report.head(layer, h);
      CHECK(got.rows == 40);
      CHECK(got.weights == 40 * 41 / 2);               // causal: row i sees i + 1 keys
      CHECK(got.dropped == 40 * 41 / 2 - (1 + 2 * 39));  // row 0 keeps its one key, the others 2
    }
  }
}

}  // namespace test_sparse_attention
