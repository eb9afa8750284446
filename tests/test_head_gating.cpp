// Per-token head gating (hooks/head_gating.hpp), each effect checked against values computed independently: gate 1
// is no gating bit for bit on both paths; gate 0 at chosen (head, token) pairs equals the long-double reference
// attention with those z rows zeroed, and the existing zero ablation applied to those rows of head_out; a gate from
// the caller's function of z; statistics gates against sink mass and entropy computed by hand from the reference
// pattern; the record (shares, gate values, head masks that skip the work); the errors.

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <set>

#include <headlens/hooks/head_gating.hpp>
#include <headlens/hooks/interventions.hpp>
#include <headlens/models/llama.hpp>

#include "support/random_layer.hpp"

namespace test_head_gating {

using namespace headlens;
using namespace testing_support;

namespace {

// A causal GQA layer with partial rotary and an odd head_dim: 4 query heads over 2 kv heads.
const layer_shape shape{20, 4, 2, 5, true, true, true, 4};

// The reference output when head h's z row i is multiplied by gates[h](i).
reference::mat gated_reference(const reference::layer& L, const reference::result& r,
                               const std::vector<std::vector<double>>& gates) {
  const Index t = r.z.front().rows();
  reference::mat z_all(t, L.n_heads * L.head_dim);
  for (int h = 0; h < L.n_heads; ++h) {
    reference::mat z = r.z[std::size_t(h)];
    for (Index i = 0; i < t; ++i) z.row(i) *= reference::real(gates[std::size_t(h)][std::size_t(i)]);
    z_all.middleCols(h * L.head_dim, L.head_dim) = z;
  }
  return reference::project(z_all, L.w_o, L.b_o);
}

template <class Scalar>
bool identical(const matrix<Scalar>& a, const matrix<Scalar>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() && (a.array() == b.array()).all();
}

attention_path path_named(int i) { return i == 0 ? attention_path::automatic : attention_path::materialised; }

}  // namespace

TEMPLATE_TEST_CASE("gate 1 leaves the output bit-identical to no hooks, on both paths", "[gating]", float, double) {
  const auto L = random_reference_layer(shape, 211);
  const auto mha = module_of<TestType>(shape, L, /*layer=*/2);
  const int t = GENERATE(7, 300);  // one tile; several query and key tiles
  const attention_path path = path_named(GENERATE(0, 1));
  CAPTURE(t, int(path));
  std::mt19937 rng(223);
  const matrix<TestType> x = to_matrix<TestType>(random_mat(rng, t, shape.d_model));
  forward_options<TestType> options;
  options.path = path;
  const matrix<TestType> plain = mha.forward(x, options);

  SECTION("a compile-time hook set, with statistics attached") {
    auto gating = make_head_gating<TestType>([](const gate_input<TestType>& in) {
      REQUIRE(in.statistics != nullptr);
      return 1.0;
    });
    forward_options<TestType> attached = options;
    gating.attach(attached);
    CHECK(identical(mha.forward(x, attached, gating), plain));
    CHECK(gating.record().total().tokens == std::uint64_t(shape.n_heads * t));
    CHECK(gating.record().share_off() == 0.0);
    CHECK(gating.record().total().sum == double(shape.n_heads * t));
  }
  SECTION("in a registry, beside another callback") {
    auto gating = make_head_gating<TestType>([](const gate_input<TestType>&) { return 1.0; });
    hook_registry<TestType> registry;
    int z_calls = 0;
    registry.add({-1, -1, {hook_point::z}}, [&](const hook_context&, matrix_view<TestType>) { ++z_calls; });
    gating.add_to(registry);
    CHECK(identical(mha.forward(x, options, registry), plain));
    CHECK(z_calls == shape.n_heads);
    CHECK(gating.record().total().tokens == std::uint64_t(shape.n_heads * t));
  }
}

TEMPLATE_TEST_CASE("gate 0 at chosen (head, token) pairs equals zeroing those rows", "[gating]", float, double) {
  const auto L = random_reference_layer(shape, 227);
  const auto mha = module_of<TestType>(shape, L, /*layer=*/1);
  const int t = GENERATE(9, 300);
  const attention_path path = path_named(GENERATE(0, 1));
  CAPTURE(t, int(path));
  std::mt19937 rng(229);
  const auto x = random_mat(rng, t, shape.d_model);
  const auto clean = reference::attend(L, x, x, reference::iota(t), reference::iota(t));

  // Off: head 0 at token 0, head 1 at tokens 3..5, head 3 at the last token; head 2 at token 2 at a quarter.
  std::vector<std::vector<double>> gates(std::size_t(shape.n_heads), std::vector<double>(std::size_t(t), 1.0));
  gates[0][0] = 0;
  for (int i = 3; i <= 5; ++i) gates[1][std::size_t(i)] = 0;
  gates[3][std::size_t(t - 1)] = 0;
  gates[2][2] = 0.25;
  auto gating = make_head_gating<TestType>(
      [&](const gate_input<TestType>& in) { return gates[std::size_t(in.head)][std::size_t(in.token)]; });
  forward_options<TestType> options;
  options.path = path;
  const matrix<TestType> gated = mha.forward(to_matrix<TestType>(x), options, gating);
  CHECK(scaled_error(gated, gated_reference(L, clean, gates)) < tolerance<TestType>());

  // The same rows zeroed at head_out by the existing zero ablation, applied row by row (gate 0 pairs only).
  gates[2][2] = 1.0;
  auto gating_off_only = make_head_gating<TestType>(
      [&](const gate_input<TestType>& in) { return gates[std::size_t(in.head)][std::size_t(in.token)]; });
  hook_registry<TestType> registry;
  registry.add({-1, -1, {hook_point::head_out}}, [&](const hook_context& ctx, matrix_view<TestType> out) {
    for (Index r = 0; r < out.rows(); ++r) {
      if (gates[std::size_t(ctx.head)][std::size_t(ctx.token_begin + r)] == 0) {
        zero_ablation{}(ctx, matrix_view<TestType>(out.data() + r * out.outerStride(), 1, out.cols(),
                                                   Eigen::OuterStride<>(out.outerStride())));
      }
    }
  });
  const matrix<TestType> ablated = mha.forward(to_matrix<TestType>(x), options, registry);
  const matrix<TestType> gated_off = mha.forward(to_matrix<TestType>(x), options, gating_off_only);
  CHECK(scaled_error(gated_off, ablated.template cast<reference::real>()) < tolerance<TestType>());
  CHECK(scaled_error(gated_off, gated_reference(L, clean, gates)) < tolerance<TestType>());

  const gate_record& rec = gating.record();
  CHECK(rec.total().off == 5);
  CHECK(rec.total().partial == 1);
  CHECK(rec.head(1, 1).off == 3);
  CHECK(rec.head(1, 2).partial == 1);
  CHECK(rec.head(1, 0).tokens == std::uint64_t(t));
  CHECK(rec.share_off() == Approx(5.0 / double(shape.n_heads * t)));
}

TEMPLATE_TEST_CASE("a gate from the caller's function of the token's z row", "[gating]", float, double) {
  const auto L = random_reference_layer(shape, 233);
  const auto mha = module_of<TestType>(shape, L, /*layer=*/4);
  const int t = 70;
  std::mt19937 rng(239);
  const auto x = random_mat(rng, t, shape.d_model);
  const auto clean = reference::attend(L, x, x, reference::iota(t), reference::iota(t));

  // g = 1 / (1 + |z|^2): a soft gate in (0, 1].
  std::set<std::tuple<int, int, int, Index>> seen;  // (layer, head, kv head, token)
  auto gating = make_head_gating<TestType>([&](const gate_input<TestType>& in) {
    CHECK(in.statistics == nullptr);  // not attached
    seen.insert({in.layer, in.head, in.kv_head, in.token});
    return 1.0 / (1.0 + double(in.z.squaredNorm()));
  });
  forward_options<TestType> options;
  options.path = attention_path::streaming;  // the gating wants z only: every head may stream
  const matrix<TestType> gated = mha.forward(to_matrix<TestType>(x), options, gating);

  std::vector<std::vector<double>> gates(std::size_t(shape.n_heads), std::vector<double>(std::size_t(t)));
  for (int h = 0; h < shape.n_heads; ++h)
    for (int i = 0; i < t; ++i) gates[std::size_t(h)][std::size_t(i)] = double(1 / (1 + clean.z[std::size_t(h)].row(i).squaredNorm()));
  CHECK(scaled_error(gated, gated_reference(L, clean, gates)) < 10 * tolerance<TestType>());
  CHECK(seen.size() == std::size_t(shape.n_heads * t));
  CHECK(seen.count({4, 3, 1, t - 1}) == 1);  // head 3 is served by kv head 1
  CHECK(gating.record().total().partial == std::uint64_t(shape.n_heads * t));
}

TEMPLATE_TEST_CASE("statistics gates match sink mass and entropy computed by hand from the pattern", "[gating]",
                   float, double) {
  const auto L = random_reference_layer(shape, 241);
  const auto mha = module_of<TestType>(shape, L);
  const int t = 300;
  const attention_path path = GENERATE(attention_path::streaming, attention_path::materialised);
  CAPTURE(int(path));
  std::mt19937 rng(251);
  const auto x = random_mat(rng, t, shape.d_model, 2.0);  // sharper patterns
  const auto clean = reference::attend(L, x, x, reference::iota(t), reference::iota(t));

  // By hand from the reference pattern: mass on the first token, and entropy / log(visible keys).
  std::vector<std::vector<double>> sink(std::size_t(shape.n_heads)), spread(std::size_t(shape.n_heads));
  std::vector<double> all_sink, all_spread;
  for (int h = 0; h < shape.n_heads; ++h) {
    const reference::mat& p = clean.patterns[std::size_t(h)];
    for (int i = 0; i < t; ++i) {
      double entropy = 0;
      for (int j = 0; j <= i; ++j) entropy -= p(i, j) > 0 ? double(p(i, j) * std::log(p(i, j))) : 0.0;
      sink[std::size_t(h)].push_back(double(p(i, 0)));
      spread[std::size_t(h)].push_back(i == 0 ? 0.0 : entropy / std::log(double(i + 1)));
      all_sink.push_back(sink[std::size_t(h)].back());
      if (i > 0) all_spread.push_back(spread[std::size_t(h)].back());
    }
  }
  // Thresholds near the medians, so about half the pairs are gated off and a wrong statistic shows: in the widest
  // gap between sorted values around the median, so no value is too close to the threshold to call in float.
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    std::size_t best = v.size() / 2;
    for (std::size_t i = v.size() / 2 - 60; i < v.size() / 2 + 60; ++i) {
      if (v[i + 1] - v[i] > v[best + 1] - v[best]) best = i;
    }
    return (v[best] + v[best + 1]) / 2;
  };

  const auto check = [&](auto gating, const std::vector<std::vector<double>>& value, double threshold) {
    gating.statistics().marked.assign(std::size_t(t), false);
    gating.statistics().marked[0] = true;  // the first token: the sink
    forward_options<TestType> options;
    options.path = path;
    gating.attach(options);
    const matrix<TestType> gated = mha.forward(to_matrix<TestType>(x), options, gating);
    std::vector<std::vector<double>> expected(std::size_t(shape.n_heads), std::vector<double>(std::size_t(t), 1.0));
    std::uint64_t off = 0;
    int borderline = 0;
    for (int h = 0; h < shape.n_heads; ++h) {
      const std::vector<double>& kept = gating.record().gates(0, h);
      REQUIRE(kept.size() == std::size_t(t));
      for (int i = 0; i < t; ++i) {
        const double v = value[std::size_t(h)][std::size_t(i)];
        if (i > 0 || &value == &sink) expected[std::size_t(h)][std::size_t(i)] = v >= threshold ? 0.0 : 1.0;
        if (std::abs(v - threshold) < 1e-3 * threshold) {  // too close to call in float: take the gating's call
          ++borderline;
          expected[std::size_t(h)][std::size_t(i)] = kept[std::size_t(i)];
        }
        off += expected[std::size_t(h)][std::size_t(i)] == 0.0;
        CAPTURE(h, i, v, threshold);
        CHECK(kept[std::size_t(i)] == expected[std::size_t(h)][std::size_t(i)]);
      }
    }
    CHECK(borderline == 0);
    CHECK(off > std::uint64_t(t));                          // a real share of the pairs is off ...
    CHECK(off < std::uint64_t(shape.n_heads * t - t));      // ... and a real share is on
    CHECK(gating.record().total().off == off);
    CHECK(scaled_error(gated, gated_reference(L, clean, expected)) < tolerance<TestType>());
  };
  SECTION("sink gate: mass on the first token") {
    const double threshold = median(all_sink);
    check(head_gating<TestType, sink_gate>(sink_gate{threshold}, {-1, -1, true}), sink, threshold);
  }
  SECTION("entropy gate: entropy over its largest value") {
    const double threshold = median(all_spread);
    check(head_gating<TestType, entropy_gate>(entropy_gate{threshold}, {-1, -1, true}), spread, threshold);
  }
}

TEST_CASE("the record gives shares per head and head masks that skip the work of heads always off", "[gating]") {
  const auto L = random_reference_layer(shape, 257);
  const auto mha = module_of<float>(shape, L, /*layer=*/1);
  const int t = 40;
  std::mt19937 rng(263);
  const matrix<float> x = to_matrix<float>(random_mat(rng, t, shape.d_model));

  // Head 2 off everywhere, head 0 off at the first 30 tokens (75%), head 1 at a half gate everywhere.
  auto gating = make_head_gating<float>([](const gate_input<float>& in) {
    if (in.head == 2) return 0.0;
    if (in.head == 0) return in.token < 30 ? 0.0 : 1.0;
    return in.head == 1 ? 0.5 : 1.0;
  }, {-1, -1, true});
  const matrix<float> gated = mha.forward(x, {}, gating);
  const gate_record& rec = gating.record();
  CHECK(rec.head(1, 2).share_off() == 1.0);
  CHECK(rec.head(1, 0).share_off() == 0.75);
  CHECK(rec.head(1, 1).share_off() == 0.0);
  CHECK(rec.head(1, 1).mean() == 0.5);
  CHECK(rec.head(1, 1).partial == std::uint64_t(t));
  CHECK(rec.head(0, 0).tokens == 0);  // layer 0 was never run
  CHECK(rec.share_off() == Approx((40.0 + 30.0) / (4.0 * 40.0)));
  CHECK(rec.gates(1, 0)[29] == 0.0);
  CHECK(rec.gates(1, 0)[30] == 1.0);
  CHECK(rec.gates(1, 1)[7] == 0.5);

  const auto masks = rec.head_masks(/*layers=*/2, /*heads=*/4);
  CHECK(masks == std::vector<std::vector<bool>>{{true, true, true, true}, {true, true, false, true}});
  CHECK(rec.head_masks(2, 4, 0.75)[1] == std::vector<bool>{false, true, false, true});

  // Skipping head 2 by its mask gives the gated output, with head 2's work skipped instead of zeroed.
  forward_options<float> options;
  options.head_mask = masks[1];
  auto rest = make_head_gating<float>([](const gate_input<float>& in) {
    if (in.head == 0) return in.token < 30 ? 0.0 : 1.0;
    return in.head == 1 ? 0.5 : 1.0;
  });
  const matrix<float> skipped = mha.forward(x, options, rest);
  CHECK(identical(skipped, gated));
  CHECK(rest.record().head(1, 2).tokens == 0);  // never computed, so never gated

  gating.record().clear();
  CHECK(gating.record().total().tokens == 0);
}

TEST_CASE("gating follows token positions through a KV cache", "[gating]") {
  const auto L = random_reference_layer(shape, 269);
  const auto mha = module_of<float>(shape, L);
  const int t = 12;
  std::mt19937 rng(271);
  const auto x = random_mat(rng, t, shape.d_model);
  const auto clean = reference::attend(L, x, x, reference::iota(t), reference::iota(t));
  const auto rule = [](const gate_input<float>& in) { return (in.token + in.head) % 3 == 0 ? 0.0 : 1.0; };
  std::vector<std::vector<double>> gates(std::size_t(shape.n_heads), std::vector<double>(std::size_t(t)));
  for (int h = 0; h < shape.n_heads; ++h)
    for (int i = 0; i < t; ++i) gates[std::size_t(h)][std::size_t(i)] = (i + h) % 3 == 0 ? 0.0 : 1.0;

  auto gating = make_head_gating<float>(rule);
  kv_cache<float> cache;
  matrix<float> out(t, shape.d_model);
  const matrix<float> xf = to_matrix<float>(x);
  out.topRows(5) = mha.forward_step(xf.topRows(5), cache, {}, gating);
  for (int i = 5; i < t; ++i) out.row(i) = mha.forward_step(xf.row(i), cache, {}, gating);
  CHECK(scaled_error(out, gated_reference(L, clean, gates)) < tolerance<float>());
  CHECK(gating.record().total().tokens == std::uint64_t(shape.n_heads * t));
}

TEST_CASE("on a decoder, gating is exact across layers and the record's head masks skip the gated head",
          "[gating][model]") {
  const auto model = load_llama<float>(std::string(HEADLENS_TEST_DATA_DIR) + "/models/llama");  // 2 x 4 heads, GQA
  std::mt19937 rng(283);
  std::uniform_int_distribution<std::int32_t> id(0, std::int32_t(model.vocab_size() - 1));
  std::vector<std::int32_t> ids(40);
  for (auto& i : ids) i = id(rng);
  const matrix<float> plain = model.forward(ids);

  // Gate 1 at every head of every layer, statistics attached: the logits do not move by one bit.
  auto open = make_head_gating<float>([](const gate_input<float>&) { return 1.0; });
  forward_options<float> attached;
  open.attach(attached);
  CHECK(identical(model.forward(ids, attached, open), plain));
  CHECK(open.record().total().tokens == 2u * 4u * 40u);
  CHECK(open.record().head(1, 3).tokens == 40u);

  // Gate 0 at every token of layer 1, head 2 = zero ablation of its z = skipping it in layer 1 only.
  auto off = make_head_gating<float>([](const gate_input<float>& in) {
    CHECK(in.kv_head == in.head / 2);
    return 0.0;
  }, {1, 2, false});
  const matrix<float> gated = model.forward(ids, {}, off);
  auto ablate = targeted(hook_filter{1, 2, {hook_point::z}}, zero_ablation{});
  CHECK(identical(gated, model.forward(ids, {}, ablate)));
  CHECK(!identical(gated, plain));
  CHECK(off.record().heads().size() == 1);
  CHECK(off.record().share_off() == 1.0);
  const auto masks = off.record().head_masks(model.layer_count(), 4);
  CHECK(masks == std::vector<std::vector<bool>>{{true, true, true, true}, {true, true, false, true}});
  // Layer by layer, each with its own mask (a Llama's layer input is its token embedding).
  matrix<float> x(Index(ids.size()), model.d_model());
  for (Index i = 0; i < x.rows(); ++i) x.row(i) = model.token_embedding().row(ids[std::size_t(i)]);
  for (std::size_t l = 0; l < masks.size(); ++l) {
    forward_options<float> options;
    options.head_mask = masks[l];
    x = model.blocks()[l].forward(x, options);
  }
  model.final_norm().apply(x, x);
  CHECK(identical(model.logits(x), gated));
}

TEST_CASE("gates outside [0, 1], NaN gates and missing statistics are errors naming the place", "[gating][errors]") {
  const auto L = random_reference_layer(shape, 277);
  const auto mha = module_of<float>(shape, L, /*layer=*/3);
  std::mt19937 rng(281);
  const matrix<float> x = to_matrix<float>(random_mat(rng, 6, shape.d_model));

  const auto bad_at = [](double value) {
    return [value](const gate_input<float>& in) { return in.head == 1 && in.token == 4 ? value : 1.0; };
  };
  auto too_big = make_head_gating<float>(bad_at(1.5));
  REQUIRE_THROWS_AS(mha.forward(x, {}, too_big), argument_error);
  REQUIRE_THROWS_WITH(mha.forward(x, {}, too_big),
                      "headlens: head_gating: the gate of layer 3, head 1, token 4 (batch row 0) is 1.5, expected a "
                      "value in [0, 1]");
  auto negative = make_head_gating<float>(bad_at(-0.25));
  REQUIRE_THROWS_WITH(mha.forward(x, {}, negative), Catch::Contains("token 4 (batch row 0) is -0.25, expected"));
  auto not_a_number = make_head_gating<float>(bad_at(std::nan("")));
  REQUIRE_THROWS_WITH(mha.forward(x, {}, not_a_number), Catch::Contains("head 1, token 4 (batch row 0) is nan"));

  // In a registry the error comes out of the forward call too, and the registry stays usable.
  hook_registry<float> registry;
  auto in_registry = make_head_gating<float>(bad_at(2.0));
  const auto handle = in_registry.add_to(registry);
  REQUIRE_THROWS_WITH(mha.forward(x, {}, registry), Catch::Contains("is 2, expected a value in [0, 1]"));
  CHECK(registry.remove(handle));

  // A statistics rule without attached statistics.
  head_gating<float, sink_gate> unattached(sink_gate{0.5});
  REQUIRE_THROWS_WITH(mha.forward(x, {}, unattached),
                      "headlens: sink_gate: layer 3, head 0, token 0 has no attention statistics, expected "
                      "head_gating::attach(options) before the forward call");
  // Attached once, then not: the consumed statistics are not reused.
  head_gating<float, entropy_gate> once(entropy_gate{0.5});
  forward_options<float> attached;
  once.attach(attached);
  CHECK_NOTHROW(mha.forward(x, attached, once));
  REQUIRE_THROWS_WITH(mha.forward(x, {}, once), Catch::Contains("entropy_gate: layer 3, head 0, token 0 has no"));

  const gate_record& rec = too_big.record();
  REQUIRE_THROWS_WITH(rec.head_masks(2, 4, 0.0),
                      "headlens: gate_record::head_masks: min_share_off is 0, expected a value in (0, 1]");
  REQUIRE_THROWS_WITH(rec.head_masks(2, 4, 1.5), Catch::Contains("min_share_off is 1.5"));
  REQUIRE_THROWS_WITH(rec.head_masks(0, 4), Catch::Contains("layers is 0 and heads is 4, expected both >= 1"));
  REQUIRE_THROWS_WITH(rec.head_masks(3, 4), Catch::Contains("layer 3, head 0 was gated, expected layer < 3"));
  REQUIRE_THROWS_WITH(rec.gates(3, 1), "headlens: gate_record::gates: no gates kept for layer 3, head 1, batch row 0; "
                                       "expected a head the gating saw with head_gating_options::keep_gates");
}

}  // namespace test_head_gating
