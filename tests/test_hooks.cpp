// Hook points: what each point hands over (checked against the reference), the contexts, writes propagating
// downstream, the run-time registry, and the activation cache with its budget.

#include <catch2/catch.hpp>
#include <map>
#include <tuple>

#include <headlens/hooks/activation_cache.hpp>
#include <headlens/hooks/hook_registry.hpp>

#include "support/random_layer.hpp"

namespace test_hooks {

using namespace headlens;
using namespace testing_support;

namespace {

// Records a copy of everything it sees, with its context.
template <class Scalar>
struct recorder {
  static constexpr point_set points = point_set::all();
  std::map<std::tuple<hook_point, int, headlens::Index>, matrix<Scalar>> seen;  // (point, head, batch row)
  std::vector<hook_context> contexts;
  void operator()(const hook_context& ctx, matrix_view<Scalar> view) {
    seen[{ctx.point, ctx.head, ctx.batch_row}] = view;
    contexts.push_back(ctx);
  }
};

// Counts hook calls.
struct call_counter {
  static constexpr point_set points = point_set::all();
  int calls = 0;
  void operator()(const hook_context&, matrix_view<float>) { ++calls; }
};

}  // namespace

TEMPLATE_TEST_CASE("every hook point hands over the values of the reference", "[hooks]", float, double) {
  const layer_shape s{20, 4, 2, 5, true, true, true, 4};  // GQA, causal, partial rotary, odd head_dim
  const auto L = random_reference_layer(s, 71);
  const auto mha = module_of<TestType>(s, L, /*layer=*/3);
  const int t = 9;
  std::mt19937 rng(73);
  const auto x = random_mat(rng, t, s.d_model);
  const auto expected = reference::attend(L, x, x, reference::iota(t), reference::iota(t));

  recorder<TestType> rec;
  const matrix<TestType> out = mha.forward(to_matrix<TestType>(x), {}, rec);
  CHECK(scaled_error(out, expected.out) < tolerance<TestType>());

  matrix<TestType> sum_of_heads = matrix<TestType>::Zero(t, s.d_model);
  for (int h = 0; h < s.n_heads; ++h) {
    CAPTURE(h);
    // Scores: masked entries are -inf in both; compare the visible ones.
    const matrix<TestType>& scores = rec.seen.at({hook_point::scores, h, 0});
    for (int i = 0; i < t; ++i)
      for (int j = 0; j < t; ++j) {
        if (j > i) {
          CHECK(std::isinf(scores(i, j)));
        } else {
          CHECK(std::abs(double(scores(i, j)) - double(expected.scores[h](i, j))) < 1e2 * tolerance<TestType>());
        }
      }
    CHECK(scaled_error(rec.seen.at({hook_point::pattern, h, 0}), expected.patterns[h]) < tolerance<TestType>());
    CHECK(scaled_error(rec.seen.at({hook_point::z, h, 0}), expected.z[h]) < tolerance<TestType>());
    CHECK(rec.seen.at({hook_point::q, h, 0}).cols() == s.head_dim);
    sum_of_heads += rec.seen.at({hook_point::head_out, h, 0});
  }
  for (int g = 0; g < s.n_kv_heads; ++g) {
    CHECK(rec.seen.at({hook_point::k, g, 0}).rows() == t);
    CHECK(rec.seen.at({hook_point::v, g, 0}).cols() == s.head_dim);
  }
  // head_out sums to the output less its bias.
  const matrix<TestType> bias = to_vector<TestType>(L.b_o).transpose().replicate(t, 1);
  CHECK(scaled_error(sum_of_heads + bias, expected.out) < tolerance<TestType>());
  CHECK(rec.seen.at({hook_point::out, -1, 0}) == out);

  // Contexts: layer, kv head of each query head, token range.
  for (const hook_context& ctx : rec.contexts) {
    CHECK(ctx.layer == 3);
    CHECK(ctx.token_begin == 0);
    CHECK(ctx.token_end == t);
    if (ctx.point != hook_point::out && ctx.point != hook_point::k && ctx.point != hook_point::v) {
      CHECK(ctx.kv_head == ctx.head / 2);
    }
  }
  // 4 heads x (q, scores, pattern, z, head_out) + 2 kv heads x (k, v) + out
  CHECK(rec.contexts.size() == 4 * 5 + 2 * 2 + 1);
}

// Records q and z only, so every head may stay on the streaming path.
template <class Scalar>
struct q_z_recorder {
  static constexpr point_set points{hook_point::q, hook_point::z};
  std::map<std::tuple<hook_point, int, headlens::Index>, matrix<Scalar>> seen;
  void operator()(const hook_context& ctx, matrix_view<Scalar> view) { seen[{ctx.point, ctx.head, ctx.batch_row}] = view; }
};

TEMPLATE_TEST_CASE("hooks on q and z leave heads streaming and see the reference values", "[hooks]", float, double) {
  const layer_shape s{20, 4, 2, 5, true, true, true, 4};
  const auto L = random_reference_layer(s, 71);
  const auto mha = module_of<TestType>(s, L);
  const int t = 300;  // several query and key tiles
  std::mt19937 rng(73);
  const auto x = random_mat(rng, t, s.d_model);
  const auto expected = reference::attend(L, x, x, reference::iota(t), reference::iota(t));
  q_z_recorder<TestType> rec;
  forward_options<TestType> options;
  options.path = attention_path::streaming;  // throws if the hook set wanted a map
  const matrix<TestType> out = mha.forward(to_matrix<TestType>(x), options, rec);
  CHECK(scaled_error(out, expected.out) < tolerance<TestType>());
  for (int h = 0; h < s.n_heads; ++h) {
    CAPTURE(h);
    CHECK(scaled_error(rec.seen.at({hook_point::z, h, 0}), expected.z[std::size_t(h)]) < tolerance<TestType>());
  }
}

TEMPLATE_TEST_CASE("writing to a hook's view changes everything downstream", "[hooks]", float, double) {
  const layer_shape s{8, 2, 2, 4};
  const auto L = random_reference_layer(s, 79);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(83);
  const matrix<TestType> x = to_matrix<TestType>(random_mat(rng, 5, s.d_model));

  // Zeroing head 0's q makes every score 0, so its pattern is uniform.
  hook_registry<TestType> registry;
  registry.add({-1, 0, {hook_point::q}}, [](const hook_context&, matrix_view<TestType> q) { q.setZero(); });
  matrix<TestType> pattern;
  registry.add({-1, 0, {hook_point::pattern}},
               [&](const hook_context&, matrix_view<TestType> p) { pattern = p; });
  mha.forward(x, {}, registry);
  REQUIRE(pattern.rows() == 5);
  CHECK(pattern.isConstant(TestType(0.2), TestType(1e-6)));
}

TEST_CASE("the registry filters by layer, head and point, in order, and detaches", "[hooks][registry]") {
  const layer_shape s{8, 2, 2, 4};
  const auto L = random_reference_layer(s, 89);
  const auto layer0 = module_of<float>(s, L, 0);
  const auto layer1 = module_of<float>(s, L, 1);
  const matrix<float> x = matrix<float>::Random(4, 8);

  hook_registry<float> registry;
  std::vector<std::string> calls;
  const auto note = [&](const std::string& tag) {
    return [&calls, tag](const hook_context& ctx, matrix_view<float>) {
      calls.push_back(tag + ":" + std::string(to_string(ctx.point)) + ":" + std::to_string(ctx.layer) + ":" +
                      std::to_string(ctx.head));
    };
  };
  const auto a = registry.add({1, 1, {hook_point::pattern}}, note("a"));
  registry.add({-1, -1, {hook_point::out}}, note("b"));
  registry.add({1, 1, {hook_point::pattern, hook_point::z}}, note("c"));
  REQUIRE(registry.size() == 3);

  layer0.forward(x, {}, registry);
  CHECK(calls == std::vector<std::string>{"b:out:0:-1"});
  calls.clear();
  layer1.forward(x, {}, registry);
  CHECK(calls == std::vector<std::string>{"a:pattern:1:1", "c:pattern:1:1", "c:z:1:1", "b:out:1:-1"});

  CHECK(registry.remove(a));
  CHECK_FALSE(registry.remove(a));
  calls.clear();
  layer1.forward(x, {}, registry);
  CHECK(calls == std::vector<std::string>{"c:pattern:1:1", "c:z:1:1", "b:out:1:-1"});

  // An observer-only registry leaves the output unchanged. (Watching a pattern moves that head to the materialised
  // path, which agrees with the streaming one only within rounding, so compare bits on the materialised path.)
  forward_options<float> materialised;
  materialised.path = attention_path::materialised;
  CHECK(layer1.forward(x, materialised, registry) == layer1.forward(x, materialised));
  CHECK(scaled_error(layer1.forward(x, {}, registry), layer1.forward(x).cast<reference::real>()) < 1e-5);

  // Mutating the registry from inside a callback is refused.
  hook_registry<float> nested;
  nested.add({}, [&](const hook_context&, matrix_view<float>) { nested.clear(); });
  REQUIRE_THROWS_WITH(layer0.forward(x, {}, nested),
                      "headlens: hook_registry::clear was called from inside a hook callback, expected it between "
                      "forward calls");
  REQUIRE_THROWS_WITH(registry.add({}, nullptr), "headlens: hook_registry::add: fn is empty, expected a callable");
}

TEMPLATE_TEST_CASE("the activation cache holds what it was asked for, and reports its bytes", "[hooks][cache]", float,
                   double) {
  const layer_shape s{16, 4, 2, 4};
  const auto L = random_reference_layer(s, 97);
  const auto mha = module_of<TestType>(s, L, 2);
  const int t = 6, batch = 2;
  const matrix<TestType> x = to_matrix<TestType>(random_mat(*std::make_unique<std::mt19937>(101), batch * t, 16));
  forward_options<TestType> options;
  options.batch = batch;

  const hook_filter filter{2, 1, {hook_point::pattern, hook_point::z}};
  auto [out, cache] = run_with_cache(mha, x, filter, 1 << 20, options);
  // Caching head 1's pattern materialises that head only; the others stream in both runs.
  forward_options<TestType> materialised = options;
  materialised.path = attention_path::materialised;
  CHECK(scaled_error(out, mha.forward(x, materialised).template cast<reference::real>()) < tolerance<TestType>());
  CHECK(scaled_error(out, mha.forward(x, options).template cast<reference::real>()) < tolerance<TestType>());
  CHECK(cache.size() == 4);  // pattern and z of head 1, for two batch rows
  CHECK(cache.get(hook_point::pattern, 2, 1, 1).rows() == t);
  const std::size_t expected_bytes = batch * (t * t + t * 4) * sizeof(TestType);
  CHECK(cache.bytes() == expected_bytes);
  CHECK(activation_bytes(mha.config(), 2, filter, batch, t, t, sizeof(TestType)) == expected_bytes);
  CHECK_FALSE(cache.contains(hook_point::pattern, 2, 0));
  REQUIRE_THROWS_WITH(cache.get(hook_point::q, 2, 1),
                      "headlens: activation_cache has no q for layer 2, head 1, batch row 0 (4 entries cached)");

  // The reference agrees with what was cached.
  const reference::mat x1 = x.template cast<reference::real>().middleRows(t, t);
  const auto expected = reference::attend(L, x1, x1, reference::iota(t), reference::iota(t));
  CHECK(scaled_error(cache.get(hook_point::pattern, 2, 1, 1), expected.patterns[1]) < tolerance<TestType>());
}

TEST_CASE("a request over the budget throws before anything is allocated or run", "[hooks][cache]") {
  const layer_shape s{16, 4, 4, 4};
  const auto L = random_reference_layer(s, 103);
  const auto mha = module_of<float>(s, L);
  const matrix<float> x = matrix<float>::Random(32, 16);

  // All patterns: 4 heads x 32 x 32 floats = 16384 bytes.
  call_counter c;
  REQUIRE_THROWS_AS(run_with_cache(mha, x, {-1, -1, {hook_point::pattern}}, 16383, {}, c), budget_error);
  REQUIRE_THROWS_WITH(run_with_cache(mha, x, {-1, -1, {hook_point::pattern}}, 16383),
                      "headlens: run_with_cache: caching the selected points needs 16384 bytes, over the budget of "
                      "16383 bytes");
  CHECK(c.calls == 0);
  auto [out, cache] = run_with_cache(mha, x, {-1, -1, {hook_point::pattern}}, 16384);
  CHECK(cache.bytes() == 16384);

  // Used directly as a hook set across calls, the cache stops at its budget with a clear error.
  activation_cache<float> small({-1, -1, {hook_point::pattern}}, 3 * 32 * 32 * sizeof(float));
  REQUIRE_THROWS_WITH(mha.forward(x, {}, small),
                      "headlens: activation_cache: storing pattern of layer 0, head 3, batch row 0 needs 4096 bytes; "
                      "the cache holds 12288 of its budget of 12288 bytes");
  CHECK(small.bytes() == 12288);
  CHECK(small.size() == 3);
}

}  // namespace test_hooks
