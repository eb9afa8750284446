// Interventions, each checked for its exact effect against values computed from the reference or from
// independent runs: zero and mean ablation, activation patching of q, k, v, pattern and z, scaling, head masks.

#include <catch2/catch.hpp>

#include <headlens/hooks/hook_registry.hpp>
#include <headlens/hooks/interventions.hpp>

#include "support/random_layer.hpp"

namespace test_interventions {

using namespace headlens;
using namespace testing_support;

namespace {

// Output of the reference layer when head h's z is replaced by `z_h`.
reference::mat out_with_z(const reference::layer& L, reference::result r, int h, const reference::mat& z_h) {
  r.z[std::size_t(h)] = z_h;
  reference::mat z_all(z_h.rows(), L.n_heads * L.head_dim);
  for (int k = 0; k < L.n_heads; ++k) z_all.middleCols(k * L.head_dim, L.head_dim) = r.z[std::size_t(k)];
  return reference::project(z_all, L.w_o, L.b_o);
}

}  // namespace

TEMPLATE_TEST_CASE("zero ablation of z or head_out equals the reference without that head", "[interventions]", float,
                   double) {
  const layer_shape s{16, 4, 2, 4};
  const auto L = random_reference_layer(s, 107);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(109);
  const auto x = random_mat(rng, 7, s.d_model);
  const std::vector<bool> without_2{true, true, false, true};
  const auto expected = reference::attend(L, x, x, reference::iota(7), reference::iota(7), {}, {}, without_2);

  const auto point = GENERATE(hook_point::z, hook_point::head_out);
  auto ablate = targeted(hook_filter{0, 2, {point}}, zero_ablation{});
  CHECK(scaled_error(mha.forward(to_matrix<TestType>(x), {}, ablate), expected.out) < tolerance<TestType>());

  // The head mask gives the same output by skipping the head's work.
  forward_options<TestType> options;
  options.head_mask = without_2;
  CHECK(scaled_error(mha.forward(to_matrix<TestType>(x), options), expected.out) < tolerance<TestType>());
}

TEMPLATE_TEST_CASE("mean ablation replaces each row by the mean", "[interventions]", float, double) {
  const layer_shape s{12, 3, 3, 4};
  const auto L = random_reference_layer(s, 113);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(127);
  const auto x = random_mat(rng, 6, s.d_model);
  const auto clean = reference::attend(L, x, x, reference::iota(6), reference::iota(6));

  SECTION("over the positions of the same run") {
    reference::mat mean_z = clean.z[1].colwise().mean().replicate(6, 1);
    auto ablate = targeted(hook_filter{0, 1, {hook_point::z}}, mean_ablation_over_positions{});
    CHECK(scaled_error(mha.forward(to_matrix<TestType>(x), {}, ablate), out_with_z(L, clean, 1, mean_z)) <
          tolerance<TestType>());
  }
  SECTION("over a reference batch") {
    const auto other = random_mat(rng, 10, s.d_model);
    const auto other_run = reference::attend(L, other, other, reference::iota(10), reference::iota(10));
    const reference::mat mean_row = other_run.z[1].colwise().mean();
    const mean_ablation<TestType> ablation{mean_of_rows(to_matrix<TestType>(other_run.z[1]))};
    auto ablate = targeted(hook_filter{0, 1, {hook_point::z}}, ablation);
    CHECK(scaled_error(mha.forward(to_matrix<TestType>(x), {}, ablate), out_with_z(L, clean, 1, mean_row.replicate(6, 1))) <
          tolerance<TestType>());
    auto wrong = targeted(hook_filter{0, 1, {hook_point::head_out}}, ablation);
    REQUIRE_THROWS_WITH(mha.forward(to_matrix<TestType>(x), {}, wrong),
                        "headlens: mean_ablation: mean has 4 entries, expected the width of head_out = 12");
  }
}

TEMPLATE_TEST_CASE("activation patching carries another run's values in", "[interventions][patching]", float,
                   double) {
  const layer_shape s{16, 4, 2, 4, true, true, true};
  const auto L = random_reference_layer(s, 131);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(137);
  const auto xa = random_mat(rng, 8, s.d_model), xb = random_mat(rng, 8, s.d_model);
  const matrix<TestType> a = to_matrix<TestType>(xa), b = to_matrix<TestType>(xb);
  auto [out_a, cache_a] = run_with_cache(mha, a, hook_filter{}, 1 << 20);

  const auto patched_run = [&](hook_filter filter) {
    auto patch = targeted(filter, patch_from<TestType>{&cache_a});
    return matrix<TestType>(mha.forward(b, {}, patch));
  };
  const double tol = 10 * tolerance<TestType>();
  const double scale = std::max(1.0, double(out_a.cwiseAbs().maxCoeff()));
  // Patching every head's q, k and v (or pattern and v, or z) reproduces run A exactly.
  CHECK(double((patched_run({-1, -1, {hook_point::q, hook_point::k, hook_point::v}}) - out_a).cwiseAbs().maxCoeff()) /
            scale < tol);
  CHECK(double((patched_run({-1, -1, {hook_point::pattern, hook_point::v}}) - out_a).cwiseAbs().maxCoeff()) / scale <
        tol);
  CHECK(double((patched_run({-1, -1, {hook_point::z}}) - out_a).cwiseAbs().maxCoeff()) / scale < tol);

  // Patching one head's z changes only that head's contribution.
  const auto clean_b = reference::attend(L, xb, xb, reference::iota(8), reference::iota(8));
  const auto run_a = reference::attend(L, xa, xa, reference::iota(8), reference::iota(8));
  CHECK(scaled_error(patched_run({-1, 2, {hook_point::z}}), out_with_z(L, clean_b, 2, run_a.z[2])) < tol);

  // A pattern patched into run B mixes B's values: z_h = P_A V_B.
  hook_registry<TestType> registry;
  registry.add({-1, 0, {hook_point::pattern}}, patch_from<TestType>{&cache_a});
  matrix<TestType> z0;
  registry.add({-1, 0, {hook_point::z}}, [&](const hook_context&, matrix_view<TestType> z) { z0 = z; });
  matrix<TestType> v0;
  registry.add({-1, 0, {hook_point::v}}, [&](const hook_context&, matrix_view<TestType> v) { v0 = v; });
  mha.forward(b, {}, registry);
  const matrix<TestType> expected_z0 = cache_a.get(hook_point::pattern, 0, 0) * v0;
  CHECK((z0 - expected_z0).cwiseAbs().maxCoeff() < tol);

  // A missing or misshapen source is a clear error.
  activation_cache<TestType> empty;
  auto bad = targeted(hook_filter{-1, 0, {hook_point::z}}, patch_from<TestType>{&empty});
  REQUIRE_THROWS_WITH(mha.forward(b, {}, bad),
                      "headlens: activation_cache has no z for layer 0, head 0, batch row 0 (0 entries cached)");
  auto shorter = targeted(hook_filter{-1, 0, {hook_point::z}}, patch_from<TestType>{&cache_a});
  REQUIRE_THROWS_WITH(mha.forward(matrix<TestType>(b.topRows(5)), {}, shorter),
                      "headlens: patch_from: cached z of layer 0, head 0 is [8 x 4], expected [5 x 4]");
}

TEMPLATE_TEST_CASE("scaling a head's output by 2 adds its contribution once more", "[interventions]", float, double) {
  const layer_shape s{16, 4, 4, 4};
  const auto L = random_reference_layer(s, 139);
  const auto mha = module_of<TestType>(s, L);
  std::mt19937 rng(149);
  const matrix<TestType> x = to_matrix<TestType>(random_mat(rng, 5, s.d_model));
  auto [clean, cache] = run_with_cache(mha, x, hook_filter{-1, 3, {hook_point::head_out}}, 1 << 20);
  auto doubled = targeted(hook_filter{-1, 3, {hook_point::head_out}}, scale_by{2.0});
  const matrix<TestType> expected = clean + cache.get(hook_point::head_out, 0, 3);
  const double scale = std::max(1.0, double(expected.cwiseAbs().maxCoeff()));
  CHECK(double((mha.forward(x, {}, doubled) - expected).cwiseAbs().maxCoeff()) / scale < 10 * tolerance<TestType>());
}

}  // namespace test_interventions
