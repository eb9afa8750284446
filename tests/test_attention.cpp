// multi_head_attention against the independent long-double reference: shapes with odd sizes and SIMD tails,
// MHA/GQA/MQA, head_dim != d_model/n_heads, causal, biases, rotary, batches with padding, cross-attention,
// additive masks, KV-cache decoding, and the documented numerics. Every reference test runs on both attention
// paths (materialised and streaming), with lengths that cross the streaming tiles (64 queries, 256 keys).
//
// EIGEN_RUNTIME_NO_MALLOC: the kernel forbids Eigen allocations around its streaming tile loop when this is
// defined, so every streaming test here also proves that the hot loop allocates nothing.
#define EIGEN_RUNTIME_NO_MALLOC

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include <headlens/kernels/multi_head_attention.hpp>

#include "support/random_layer.hpp"

using namespace headlens;
using namespace testing_support;

namespace {

const layer_shape shapes[] = {
    {8, 2, 2, 4},                    // tiny MHA
    {12, 3, 3, 4},                   // odd head count
    {20, 4, 2, 5, false, true},      // GQA, odd head_dim (SIMD tail in every row)
    {16, 4, 1, 8},                   // MQA
    {10, 3, 3, 7, false, false},     // head_dim != d_model / n_heads, no biases
    {24, 6, 3, 4, true, true, true},  // causal, rotary
    {18, 2, 1, 12, true, true, true, 6},  // partial rotary, MQA, causal
    {32, 2, 2, 16},                   // head_dim a multiple of the SIMD width: tile_product (from T = 64 on)
    {64, 4, 2, 16, true, true, true},  // the same, GQA, causal, rotary
};

// Both attention paths, for GENERATE.
#define BOTH_PATHS GENERATE(attention_path::materialised, attention_path::streaming)

template <class Scalar>
forward_options<Scalar> on_path(attention_path path, forward_options<Scalar> options = {}) {
  options.path = path;
  return options;
}

// Counts the pattern and z views whose row 1 is exactly zero.
template <class Scalar>
struct zero_row_counter {
  static constexpr point_set points{hook_point::pattern, hook_point::z};
  int zero_rows = 0;
  void operator()(const hook_context&, matrix_view<Scalar> view) {
    if (view.row(1).isZero(0)) ++zero_rows;
  }
};

}  // namespace

TEMPLATE_TEST_CASE("self-attention matches the scalar reference", "[attention]", float, double) {
  const auto shape_index = GENERATE(range(0, int(sizeof(shapes) / sizeof(shapes[0]))));
  const int t = GENERATE(1, 2, 7, 17, 33, 65, 300);
  const attention_path path = BOTH_PATHS;
  const layer_shape s = shapes[shape_index];
  CAPTURE(shape_index, t, path);
  const auto L = random_reference_layer(s, 100 + shape_index);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(7 + t);
  const auto x = random_mat(rng, t, s.d_model);

  const auto expected = reference::attend(L, x, x, reference::iota(t), reference::iota(t));
  const matrix<TestType> out = mha.forward(to_matrix<TestType>(x), on_path<TestType>(path));
  CHECK(scaled_error(out, expected.out) < tolerance<TestType>());
}

TEMPLATE_TEST_CASE("a batch with key padding equals each sequence alone", "[attention][batch]", float, double) {
  const layer_shape s{16, 4, 2, 4};
  const auto L = random_reference_layer(s, 3);
  const auto mha = module_of<TestType>(s, L);
  const attention_path path = BOTH_PATHS;
  const int t = GENERATE(9, 280), batch = 3;
  CAPTURE(path, t);
  const int lengths[batch] = {t, t * 5 / 9, 1};
  std::mt19937 rng(11);
  const auto x = random_mat(rng, batch * t, s.d_model);

  forward_options<TestType> options;
  options.batch = batch;
  options.key_padding = bool_matrix::Constant(batch, t, false);
  for (int b = 0; b < batch; ++b) options.key_padding.row(b).tail(t - lengths[b]).setConstant(true);
  const matrix<TestType> out = mha.forward(to_matrix<TestType>(x), on_path(path, options));

  for (int b = 0; b < batch; ++b) {
    std::vector<bool> padding(t, false);
    for (int j = lengths[b]; j < t; ++j) padding[j] = true;
    const reference::mat xb = x.middleRows(b * t, t);
    const auto expected = reference::attend(L, xb, xb, reference::iota(t), reference::iota(t), padding);
    CHECK(scaled_error(out.middleRows(b * t, t), expected.out) < tolerance<TestType>());
  }
}

TEMPLATE_TEST_CASE("cross-attention reads keys and values from the memory", "[attention][cross]", float, double) {
  const layer_shape s{12, 3, 3, 4, false, true, GENERATE(false, true)};
  const auto L = random_reference_layer(s, 5);
  const auto mha = module_of<TestType>(s, L);
  const attention_path path = BOTH_PATHS;
  const int t_q = GENERATE(5, 70), t_k = GENERATE(11, 300), batch = 2;
  CAPTURE(path, t_q, t_k);
  std::mt19937 rng(13);
  const auto x = random_mat(rng, batch * t_q, s.d_model);
  const auto memory = random_mat(rng, batch * t_k, s.d_model);
  forward_options<TestType> options;
  options.batch = batch;
  const matrix<TestType> out =
      mha.forward_cross(to_matrix<TestType>(x), to_matrix<TestType>(memory), on_path(path, options));
  for (int b = 0; b < batch; ++b) {
    const auto expected = reference::attend(L, x.middleRows(b * t_q, t_q), memory.middleRows(b * t_k, t_k),
                                            reference::iota(t_q), reference::iota(t_k));
    CHECK(scaled_error(out.middleRows(b * t_q, t_q), expected.out) < tolerance<TestType>());
  }
}

TEMPLATE_TEST_CASE("an additive mask is added to the scaled scores", "[attention][mask]", float, double) {
  const layer_shape s{8, 2, 2, 4};
  const auto L = random_reference_layer(s, 9);
  const auto mha = module_of<TestType>(s, L);
  const attention_path path = BOTH_PATHS;
  const int t = GENERATE(6, 270);
  CAPTURE(path, t);
  std::mt19937 rng(17);
  const auto x = random_mat(rng, t, s.d_model);
  reference::mat mask = random_mat(rng, t, t);
  mask(2, 4) = -std::numeric_limits<reference::real>::infinity();
  mask(t - 1, t / 2) = -std::numeric_limits<reference::real>::infinity();
  forward_options<TestType> options;
  options.path = path;
  options.attn_mask = mask.cast<TestType>();
  const auto expected = reference::attend(L, x, x, reference::iota(t), reference::iota(t), {}, mask);
  CHECK(scaled_error(mha.forward(to_matrix<TestType>(x), options), expected.out) < tolerance<TestType>());
}

TEMPLATE_TEST_CASE("a fully masked query row gives a zero pattern and zero z, never NaN", "[attention][numerics]",
                   float, double) {
  const layer_shape s{8, 2, 2, 4};
  const auto L = random_reference_layer(s, 21);
  const auto mha = module_of<TestType>(s, L);
  const int t = 4;
  std::mt19937 rng(19);
  const auto x = random_mat(rng, t, s.d_model);
  forward_options<TestType> options;
  options.attn_mask = matrix<TestType>::Zero(t, t);
  options.attn_mask.row(1).setConstant(-std::numeric_limits<TestType>::infinity());

  zero_row_counter<TestType> hooks;  // pattern and z of every head, row 1
  const matrix<TestType> out = mha.forward(to_matrix<TestType>(x), options, hooks);
  CHECK(hooks.zero_rows == 4);  // pattern and z of two heads
  CHECK(out.allFinite());
  // With z = 0 the output row is the output bias alone.
  for (int c = 0; c < s.d_model; ++c) CHECK(double(out(1, c)) == Approx(double(L.b_o[c])).epsilon(1e-6));
}

TEMPLATE_TEST_CASE("logits of magnitude 1e4 do not overflow", "[attention][numerics]", float, double) {
  layer_shape s{8, 2, 2, 4};
  auto L = random_reference_layer(s, 23);
  L.w_q *= 300;  // scores of order 1e4
  L.w_k *= 300;
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(29);
  const auto x = random_mat(rng, 9, s.d_model);
  const auto expected = reference::attend(L, x, x, reference::iota(9), reference::iota(9));
  REQUIRE(expected.scores[0].cwiseAbs().maxCoeff() > 1000);
  const attention_path path = BOTH_PATHS;
  CAPTURE(path);
  const matrix<TestType> out = mha.forward(to_matrix<TestType>(x), on_path<TestType>(path));
  CHECK(out.allFinite());
  // Saturated softmax turns rounding in the scores into visible changes, so float gets a wider margin here.
  CHECK(scaled_error(out, expected.out) < (std::is_same<TestType, float>::value ? 2e-3 : 1e-9));
}

TEMPLATE_TEST_CASE("NaN input propagates, and check_finite names the first bad position", "[attention][numerics]",
                   float, double) {
  const layer_shape s{8, 2, 2, 4};
  const auto L = random_reference_layer(s, 31);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(37);
  matrix<TestType> x = to_matrix<TestType>(random_mat(rng, 5, s.d_model));
  x(3, 6) = std::numeric_limits<TestType>::quiet_NaN();
  const attention_path path = BOTH_PATHS;
  CAPTURE(path);
  const matrix<TestType> out = mha.forward(x, on_path<TestType>(path));
  CHECK(out.row(3).array().isNaN().all());  // the bad token's own output
  CHECK(out.array().isNaN().any());
  forward_options<TestType> options;
  options.check_finite = true;
  REQUIRE_THROWS_AS(mha.forward(x, options), numeric_error);
  REQUIRE_THROWS_WITH(mha.forward(x, options), Catch::Contains("x has a non-finite value (nan) at row 3, column 6"));
}

TEMPLATE_TEST_CASE("decoding with a KV cache equals one causal forward", "[attention][decode]", float, double) {
  const layer_shape s{16, 4, 2, 4, true, true, GENERATE(false, true)};
  const auto L = random_reference_layer(s, 41);
  const auto mha = module_of<TestType>(s, L);
  const attention_path path = BOTH_PATHS;
  const std::vector<int> steps = GENERATE(std::vector<int>(13, 1), std::vector<int>{5, 1, 1, 6},
                                          std::vector<int>{70, 1, 200, 1, 29});
  int t = 0;
  for (int n : steps) t += n;
  CAPTURE(path, t);
  std::mt19937 rng(43);
  const matrix<TestType> x = to_matrix<TestType>(random_mat(rng, t, s.d_model));
  const matrix<TestType> full = mha.forward(x, on_path<TestType>(attention_path::materialised));

  kv_cache<TestType> cache;
  matrix<TestType> stepped(t, s.d_model);
  int done = 0;
  for (int n : steps) {
    stepped.middleRows(done, n) = mha.forward_step(x.middleRows(done, n), cache, on_path<TestType>(path));
    done += n;
  }
  REQUIRE(cache.length() == t);
  const double scale = std::max(1.0, double(full.cwiseAbs().maxCoeff()));
  CHECK(double((stepped - full).cwiseAbs().maxCoeff()) / scale < tolerance<TestType>());
}

TEMPLATE_TEST_CASE("explicit rotary positions are used for queries and keys", "[attention][rotary]", float, double) {
  const layer_shape s{16, 2, 2, 8, true, true, true};
  const auto L = random_reference_layer(s, 47);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(53);
  const auto x = random_mat(rng, 5, s.d_model);
  const std::vector<long> positions{3, 4, 10, 11, 40};
  forward_options<TestType> options;
  options.positions.assign(positions.begin(), positions.end());
  const auto expected = reference::attend(L, x, x, positions, positions);
  options.path = BOTH_PATHS;
  CHECK(scaled_error(mha.forward(to_matrix<TestType>(x), options), expected.out) < tolerance<TestType>());
}

TEMPLATE_TEST_CASE("a head mask skips the head: its z is zero", "[attention][head_mask]", float, double) {
  const layer_shape s{16, 4, 2, 4};
  const auto L = random_reference_layer(s, 59);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(61);
  const auto x = random_mat(rng, 7, s.d_model);
  const std::vector<bool> keep{true, false, true, false};
  forward_options<TestType> options;
  options.head_mask = keep;
  options.path = BOTH_PATHS;
  const auto expected = reference::attend(L, x, x, reference::iota(7), reference::iota(7), {}, {}, keep);
  CHECK(scaled_error(mha.forward(to_matrix<TestType>(x), options), expected.out) < tolerance<TestType>());
}

TEST_CASE("weights from PyTorch's layout are transposed into the x W convention", "[attention][weights]") {
  const int e = 4;
  matrix<double> in_proj(3 * e, e);
  for (int i = 0; i < 3 * e; ++i)
    for (int j = 0; j < e; ++j) in_proj(i, j) = 100 * i + j;
  vector<double> in_bias = vector<double>::LinSpaced(3 * e, 0, 3 * e - 1);
  matrix<double> out_proj = matrix<double>::Identity(e, e);
  out_proj(0, 1) = 5;
  vector<double> out_bias = vector<double>::Constant(e, 2);
  const auto w = attention_weights<double>::from_pytorch_mha(in_proj, in_bias, out_proj, out_bias);
  CHECK(w.w_q(1, 2) == 201);        // W_q[in=1, out=2] = in_proj_weight[out=2, in=1]
  CHECK(w.w_k(3, 0) == 100 * 4 + 3);  // k rows start at E
  CHECK(w.w_v(0, 1) == 100 * 9);
  CHECK(w.b_v(0) == 8);
  CHECK(w.w_o(1, 0) == 5);
}

TEST_CASE("bad configurations and inputs are rejected with a message naming them", "[attention][errors]") {
  attention_config c;
  c.d_model = 8;
  c.n_heads = 2;
  const layer_shape s{8, 2, 2, 4};
  const auto L = random_reference_layer(s, 1);
  const auto w = weights_of<float>(L);

  SECTION("config") {
    attention_config bad = c;
    bad.d_model = 0;
    REQUIRE_THROWS_WITH(bad.validate(), "headlens: config.d_model is 0, expected a positive width");
    bad = c;
    bad.n_heads = 3;
    REQUIRE_THROWS_WITH(bad.validate(),
                        "headlens: config.d_model is 8, expected a multiple of n_heads = 3 (or set head_dim)");
    bad = c;
    bad.n_heads = 3;
    bad.n_kv_heads = 2;
    bad.head_dim = 4;
    REQUIRE_THROWS_WITH(bad.validate(), "headlens: config.n_heads is 3, expected a multiple of n_kv_heads = 2");
    bad = c;
    bad.scale = -1.0;
    REQUIRE_THROWS_WITH(bad.validate(), "headlens: config.scale is -1, expected a finite positive number");
    bad = c;
    bad.rotary = true;
    bad.rotary_dim = 3;
    REQUIRE_THROWS_WITH(bad.validate(),
                        "headlens: config.rotary_dim is 3, expected an even number from 2 to head_dim = 4");
    bad = c;
    bad.n_kv_heads = -1;
    REQUIRE_THROWS_AS(bad.validate(), argument_error);
    bad = c;
    bad.n_heads = 1;
    bad.head_dim = 5;
    bad.rotary = true;
    REQUIRE_THROWS_WITH(bad.validate(), "headlens: config.rotary_dim is 0 (0 means head_dim), expected an even number "
                                        "from 2 to head_dim = 5");
  }
  SECTION("weights") {
    auto bad = w;
    bad.w_k = matrix<float>::Zero(8, 5);
    REQUIRE_THROWS_WITH(multi_head_attention<float>(c, bad), "headlens: weights.w_k is [8 x 5], expected [8 x 8]");
    bad = w;
    bad.b_o.resize(0);
    REQUIRE_THROWS_WITH(multi_head_attention<float>(c, bad),
                        "headlens: weights.b_o has 0 entries, expected 8 (config.bias is true)");
    auto no_bias = c;
    no_bias.bias = false;
    REQUIRE_THROWS_WITH(multi_head_attention<float>(no_bias, w),
                        "headlens: weights.b_q has 8 entries, expected none (config.bias is false)");
    REQUIRE_THROWS_AS(multi_head_attention<float>(no_bias, w), shape_error);
  }
  SECTION("inputs") {
    const multi_head_attention<float> mha(c, w);
    REQUIRE_THROWS_WITH(mha.forward(matrix<float>::Zero(3, 7)), "headlens: x.cols() is 7, expected d_model = 8");
    REQUIRE_THROWS_WITH(mha.forward(matrix<float>::Zero(0, 8)),
                        "headlens: x.rows() is 0, expected at least one token (empty sequence)");
    forward_options<float> o;
    o.batch = 2;
    REQUIRE_THROWS_WITH(mha.forward(matrix<float>::Zero(3, 8), o),
                        "headlens: x.rows() is 3, expected a multiple of options.batch = 2");
    o.batch = 0;
    REQUIRE_THROWS_WITH(mha.forward(matrix<float>::Zero(3, 8), o), "headlens: options.batch is 0, expected at least 1");
    o = {};
    o.key_padding = bool_matrix::Constant(1, 4, false);
    REQUIRE_THROWS_WITH(mha.forward(matrix<float>::Zero(3, 8), o),
                        "headlens: options.key_padding is [1 x 4], expected [batch x T_k] = [1 x 3]");
    o = {};
    o.attn_mask = matrix<float>::Zero(3, 2);
    REQUIRE_THROWS_WITH(mha.forward(matrix<float>::Zero(3, 8), o),
                        "headlens: options.attn_mask is [3 x 2], expected [T_q x T_k] = [3 x 3]");
    o = {};
    o.positions = {0, 1};
    REQUIRE_THROWS_WITH(mha.forward(matrix<float>::Zero(3, 8), o),
                        "headlens: options.positions has 2 entries, expected T_q = 3");
    o.positions = {0, -1, 2};
    REQUIRE_THROWS_WITH(mha.forward(matrix<float>::Zero(3, 8), o),
                        "headlens: options.positions[1] is -1, expected a position >= 0");
    o = {};
    o.head_mask = {true};
    REQUIRE_THROWS_WITH(mha.forward(matrix<float>::Zero(3, 8), o),
                        "headlens: options.head_mask has 1 entries, expected n_heads = 2");
    REQUIRE_THROWS_WITH(mha.forward_cross(matrix<float>::Zero(3, 8), matrix<float>::Zero(2, 9)),
                        "headlens: memory.cols() is 9, expected d_model = 8");
    kv_cache<float> cache;
    REQUIRE_THROWS_WITH(mha.forward_step(matrix<float>::Zero(1, 8), cache),
                        "headlens: config.causal is false, expected true for KV-cache decoding (forward_step)");
  }
  SECTION("decode batch must match the cache") {
    auto causal = c;
    causal.causal = true;
    const multi_head_attention<float> mha(causal, w);
    kv_cache<float> cache;
    mha.forward_step(matrix<float>::Zero(1, 8), cache);
    forward_options<float> o;
    o.batch = 2;
    REQUIRE_THROWS_WITH(mha.forward_step(matrix<float>::Zero(2, 8), cache, o),
                        "headlens: options.batch is 2, expected the cache's batch = 1");
    REQUIRE_THROWS_WITH(mha.forward_cross(matrix<float>::Zero(1, 8), matrix<float>::Zero(1, 8)),
                        "headlens: config.causal is true, expected false for cross-attention (forward_cross)");
  }
}

namespace {

// Counts the z views whose row 1 is exactly zero (z only: the kernel may stream).
template <class Scalar>
struct zero_z_counter {
  static constexpr point_set points{hook_point::z};
  int zero_rows = 0;
  void operator()(const hook_context&, matrix_view<Scalar> view) {
    if (view.row(1).isZero(0)) ++zero_rows;
  }
};

// Wants the pattern of one head.
struct pattern_of_head_1 {
  static constexpr point_set points{hook_point::pattern};
  int calls = 0;
  bool wants(const hook_context& ctx) const { return ctx.head == 1; }
  template <class View>
  void operator()(const hook_context& ctx, View&&) {
    CHECK(ctx.head == 1);
    ++calls;
  }
};

}  // namespace

TEMPLATE_TEST_CASE("on the streaming path a fully masked query row gives zero z, never NaN", "[attention][numerics]",
                   float, double) {
  const layer_shape s{8, 2, 2, 4};
  const auto L = random_reference_layer(s, 21);
  const auto mha = module_of<TestType>(s, L);
  const int t = GENERATE(4, 300);
  CAPTURE(t);
  std::mt19937 rng(19);
  const auto x = random_mat(rng, t, s.d_model);
  forward_options<TestType> options;
  options.path = attention_path::streaming;
  options.attn_mask = matrix<TestType>::Zero(t, t);
  options.attn_mask.row(1).setConstant(-std::numeric_limits<TestType>::infinity());

  zero_z_counter<TestType> hooks;
  const matrix<TestType> out = mha.forward(to_matrix<TestType>(x), options, hooks);
  CHECK(hooks.zero_rows == 2);  // z of two heads
  CHECK(out.allFinite());
  for (int c = 0; c < s.d_model; ++c) CHECK(double(out(1, c)) == Approx(double(L.b_o[c])).epsilon(1e-6));

  // A sequence whose every key is padding: every row is fully masked, the output is the bias alone.
  forward_options<TestType> padded;
  padded.path = attention_path::streaming;
  padded.key_padding = bool_matrix::Constant(1, t, true);
  const matrix<TestType> all_padded = mha.forward(to_matrix<TestType>(x), padded);
  CHECK(all_padded.allFinite());
  CHECK(double(all_padded(t - 1, 3)) == Approx(double(L.b_o[3])).epsilon(1e-6));
}

TEST_CASE("attention paths: automatic streams the heads no hook watches; forcing streaming under a map hook throws",
          "[attention][paths]") {
  const layer_shape s{16, 4, 2, 4, true};
  const auto L = random_reference_layer(s, 131);
  const auto mha = module_of<float>(s, L);
  std::mt19937 rng(137);
  const auto x = random_mat(rng, 90, s.d_model);
  const auto expected = reference::attend(L, x, x, reference::iota(90), reference::iota(90));

  pattern_of_head_1 hooks;
  CHECK(scaled_error(mha.forward(to_matrix<float>(x), {}, hooks), expected.out) < tolerance<float>());
  CHECK(hooks.calls == 1);

  forward_options<float> options;
  options.path = attention_path::streaming;
  REQUIRE_THROWS_AS(mha.forward(to_matrix<float>(x), options, hooks), argument_error);
  REQUIRE_THROWS_WITH(mha.forward(to_matrix<float>(x), options, hooks),
                      "headlens: options.path is streaming, but a hook wants the pattern of head 1 (batch row 0); "
                      "expected attention_path::automatic or materialised");
  CHECK(hooks.calls == 1);  // thrown before any work
}

TEMPLATE_TEST_CASE("the paths agree with each other on long sequences", "[attention][paths]", float, double) {
  const int head_dim = GENERATE(8, 16);  // 16: tile_product in float too
  const layer_shape s{4 * head_dim, 4, 2, head_dim, GENERATE(false, true), true, true};
  const auto L = random_reference_layer(s, 139);
  const auto mha = module_of<TestType>(s, L);
  const int t = GENERATE(777, 1030), batch = 2;  // 1030: the long query tiles (stream_long_from), with a remainder
  std::mt19937 rng(149);
  const matrix<TestType> x = to_matrix<TestType>(random_mat(rng, batch * t, s.d_model));
  forward_options<TestType> options;
  options.batch = batch;
  options.key_padding = bool_matrix::Constant(batch, t, false);
  options.key_padding.row(1).tail(300).setConstant(true);
  options.path = attention_path::materialised;
  const matrix<TestType> materialised = mha.forward(x, options);
  options.path = attention_path::streaming;
  const matrix<TestType> streaming = mha.forward(x, options);
  const double scale = std::max(1.0, double(materialised.cwiseAbs().maxCoeff()));
  CHECK(double((streaming - materialised).cwiseAbs().maxCoeff()) / scale < tolerance<TestType>());
}

TEMPLATE_TEST_CASE("sparse streaming allocates nothing in its tile loop and is bit-identical across thread counts",
                   "[attention][sparse][threads]", float, double) {
  // EIGEN_RUNTIME_NO_MALLOC (top of this file) makes an Eigen allocation inside the two-pass loop an assertion.
  // The values against a reference: tests/test_sparse_attention.cpp.
  const int head_dim = GENERATE(8, 16);  // 16: tile_product in float too
  const layer_shape s{4 * head_dim, 4, 2, head_dim, GENERATE(false, true), true, true};
  const auto L = random_reference_layer(s, 157);
  const auto mha = module_of<TestType>(s, L);
  const int t = GENERATE(300, 1030);
  const attention_sparsity sparsity = GENERATE(top_k_sparsity(7), threshold_sparsity(0.01));
  CAPTURE(head_dim, s.causal, t, int(sparsity.mode));
  std::mt19937 rng(163);
  const matrix<TestType> x = to_matrix<TestType>(random_mat(rng, t, s.d_model, 2.0));
  sparsity_statistics reports[2];
  attention_statistics<TestType> stats[2];
  matrix<TestType> outs[2];
  for (int i = 0; i < 2; ++i) {
    forward_options<TestType> options;
    options.path = attention_path::streaming;
    options.sparsity = sparsity;
    options.sparsity_report = &reports[i];
    options.statistics = &stats[i];
    options.threads = i + 1;
    outs[i] = mha.forward(x, options);
  }
  CHECK(outs[0] == outs[1]);
  for (int h = 0; h < s.n_heads; ++h) {
    CHECK(reports[0].head(0, h).mass_kept == reports[1].head(0, h).mass_kept);
    CHECK(reports[0].head(0, h).error_squared == reports[1].head(0, h).error_squared);
    CHECK(reports[0].head(0, h).dropped == reports[1].head(0, h).dropped);
    CHECK(stats[0].head(0, h).entropy == stats[1].head(0, h).entropy);
  }
}

TEMPLATE_TEST_CASE("results are bit-identical whatever the thread count", "[attention][threads]", float, double) {
  const int head_dim = GENERATE(8, 16);  // 16: tile_product in float too
  const layer_shape s{6 * head_dim, 6, 2, head_dim, GENERATE(false, true), true, true};
  const auto L = random_reference_layer(s, 151);
  const auto mha = module_of<TestType>(s, L);
  const attention_path path = BOTH_PATHS;
  const int t = GENERATE(333, 1030), batch = 2;  // 1030: the long query tiles (stream_long_from)
  CAPTURE(path, s.causal, t);
  std::mt19937 rng(157);
  const matrix<TestType> x = to_matrix<TestType>(random_mat(rng, batch * t, s.d_model));
  forward_options<TestType> options;
  options.batch = batch;
  options.path = path;
  options.key_padding = bool_matrix::Constant(batch, t, false);
  options.key_padding.row(0).tail(5).setConstant(true);
  options.threads = 1;
  const matrix<TestType> one = mha.forward(x, options);
  for (int threads : {2, 3, 4}) {
    CAPTURE(threads);
    options.threads = threads;
    CHECK(mha.forward(x, options) == one);
  }
  if (s.causal) {
    // Decoding: a prompt, then single tokens, at 1 and 3 threads.
    matrix<TestType> decoded[2];
    for (int run = 0; run < 2; ++run) {
      forward_options<TestType> step;
      step.path = path;
      step.threads = run == 0 ? 1 : 3;
      kv_cache<TestType> cache;
      decoded[run].resize(t, s.d_model);
      decoded[run].topRows(300) = mha.forward_step(x.topRows(300), cache, step);
      for (int i = 300; i < t; ++i) decoded[run].row(i) = mha.forward_step(x.row(i), cache, step);
    }
    CHECK(decoded[0] == decoded[1]);
  }
}

TEST_CASE("kv_cache::truncate forgets the last tokens, so a step can be redone", "[attention][decode]") {
  const layer_shape s{16, 4, 2, 4, true, true, true};
  const auto L = random_reference_layer(s, 191);
  const auto mha = module_of<float>(s, L);
  std::mt19937 rng(193);
  const matrix<float> x = to_matrix<float>(random_mat(rng, 12, s.d_model));
  const matrix<float> other = to_matrix<float>(random_mat(rng, 1, s.d_model));
  kv_cache<float> cache;
  mha.forward_step(x.topRows(10), cache);
  const matrix<float> first = mha.forward_step(x.row(10), cache);
  cache.truncate(10);
  mha.forward_step(other, cache);  // a different continuation, then back
  cache.truncate(10);
  CHECK(cache.length() == 10);
  CHECK(mha.forward_step(x.row(10), cache) == first);
  REQUIRE_THROWS_WITH(cache.truncate(12), "headlens: kv_cache::truncate: length is 12, expected 0 to length() = 11");
  REQUIRE_THROWS_AS(cache.truncate(-1), argument_error);
}

namespace {

// Runs a whole forward of another layer from inside every pattern call, as an analysis hook might.
struct nested_forward_hook {
  static constexpr point_set points{hook_point::pattern};
  const multi_head_attention<float>* inner = nullptr;
  const matrix<float>* inner_x = nullptr;
  matrix<float> inner_out;
  int calls = 0;
  template <class View>
  void operator()(const hook_context&, View&&) {
    inner_out = inner->forward(*inner_x);
    ++calls;
  }
};

}  // namespace

TEST_CASE("a forward run from inside a hook does not disturb the outer call's buffers", "[attention][scratch]") {
  // The intermediates of a call come from a per-thread pool (kernels/scratch.hpp); a call made while the pool is
  // borrowed must get memory of its own. Both layers and both inputs differ, so any sharing shows in the outputs.
  const layer_shape s{16, 4, 2, 4, false, true};
  const auto L = random_reference_layer(s, 197);
  const auto mha = module_of<float>(s, L);
  const layer_shape s_inner{24, 3, 3, 8, true, true};
  const auto L_inner = random_reference_layer(s_inner, 199);
  const auto inner = module_of<float>(s_inner, L_inner);
  std::mt19937 rng(211);
  const auto x_reference = random_mat(rng, 70, s.d_model);
  const matrix<float> x = to_matrix<float>(x_reference);
  const matrix<float> inner_x = to_matrix<float>(random_mat(rng, 130, s_inner.d_model));

  forward_options<float> materialised;
  materialised.path = attention_path::materialised;
  const matrix<float> alone = mha.forward(x, materialised);
  const matrix<float> inner_alone = inner.forward(inner_x);
  nested_forward_hook hooks;
  hooks.inner = &inner;
  hooks.inner_x = &inner_x;
  CHECK(mha.forward(x, {}, hooks) == alone);
  CHECK(hooks.calls == s.n_heads);
  CHECK(hooks.inner_out == inner_alone);
  // And the pool still serves later calls of other sizes.
  CHECK(mha.forward(x.topRows(20)) == mha.forward(matrix<float>(x.topRows(20))));
  const auto expected = reference::attend(L, x_reference, x_reference, reference::iota(70), reference::iota(70));
  CHECK(scaled_error(mha.forward(x), expected.out) < tolerance<float>());
}

namespace {

// Records the (point, head) of every call: patterns of heads 0, 2 and 3, the scores of head 3, every z.
struct call_order_recorder {
  static constexpr point_set points{hook_point::scores, hook_point::pattern, hook_point::z};
  std::vector<std::pair<hook_point, int>> calls;
  bool wants(const hook_context& ctx) const {
    if (ctx.point == hook_point::z) return true;
    if (ctx.point == hook_point::scores) return ctx.head == 3;
    return ctx.head != 1;
  }
  template <class View>
  void operator()(const hook_context& ctx, View&&) {
    calls.emplace_back(ctx.point, ctx.head);
  }
};

}  // namespace

TEST_CASE("hooks fire in data-flow order, head by head, when materialised heads share parallel regions",
          "[attention][hooks][paths]") {
  // Head 1 streams; the others materialise, and the kernel computes one head's z together with the next head's
  // scores. Every head's calls must still come in order, and before the next head's.
  const layer_shape s{20, 5, 5, 4};
  const auto L = random_reference_layer(s, 223);
  const auto mha = module_of<float>(s, L);
  std::mt19937 rng(227);
  const auto x = random_mat(rng, 150, s.d_model);
  forward_options<float> options;
  options.threads = 2;
  call_order_recorder hooks;
  const auto expected = reference::attend(L, x, x, reference::iota(150), reference::iota(150));
  CHECK(scaled_error(mha.forward(to_matrix<float>(x), options, hooks), expected.out) < tolerance<float>());
  const std::vector<std::pair<hook_point, int>> order = {
      {hook_point::pattern, 0}, {hook_point::z, 0}, {hook_point::z, 1},       {hook_point::pattern, 2},
      {hook_point::z, 2},       {hook_point::scores, 3}, {hook_point::pattern, 3}, {hook_point::z, 3},
      {hook_point::pattern, 4}, {hook_point::z, 4}};
  CHECK(hooks.calls == order);
}
