// The greedy pruning plan (analysis/pruning_plan.hpp) on synthetic targets whose loss is a planted function of the
// ablated heads: single-head costs plus a pair of redundant heads (cheap alone, costly together), so re-measuring
// as heads go must change the order of a one-shot ranking. Every expected order, loss and count below is worked
// out by hand from the planted costs, not by the code under test.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include "headlens/analysis/pruning_plan.hpp"
#include "headlens/analysis/pruning_plan_json.hpp"

namespace test_pruning_plan {

using Catch::Matchers::Contains;
using headlens::ablation;
using headlens::head_ref;
using headlens::head_set;

// Heads of a 2 x 3 model, named as in the planted costs.
const head_ref A{0, 0}, B{0, 1}, C{0, 2}, D{1, 0}, E{1, 1}, F{1, 2};

// Extra loss of an ablated set: A 0.01, B 0.01, C 0.05, D 0.02, E 0.5, F 0.03, and A with B together +1.0 (two
// heads doing one job: either can go, not both).
double planted_cost(const head_set& s) {
  double c = 0;
  const double single[2][3] = {{0.01, 0.01, 0.05}, {0.02, 0.5, 0.03}};
  for (head_ref h : s.heads()) c += single[h.layer][h.head];
  if (s.contains(A) && s.contains(B)) c += 1.0;
  return c;
}

// A decoder-like target of `tokens` tokens (the first unscored), every scored token's loss = base + scale * cost.
class planted_target final : public headlens::ablation_target {
 public:
  planted_target(int tokens, double base, double scale = 1.0) : base_(base), scale_(scale) {
    clean_ = make(0.0, tokens);
  }
  const std::vector<int>& heads_per_layer() const override { return shape_; }
  headlens::Index token_count() const override { return headlens::Index(clean_.loss.size()); }
  const headlens::token_losses& clean() const override { return clean_; }
  headlens::token_losses losses(const head_set& ablated, ablation kind) const override {
    if (ablated.heads_per_layer() != shape_) throw headlens::argument_error("wrong shape");
    last_kind = kind;
    ++calls;
    return make(planted_cost(ablated), int(clean_.loss.size()));
  }
  mutable ablation last_kind = ablation::zero;
  mutable int calls = 0;

 private:
  headlens::token_losses make(double cost, int tokens) const {
    headlens::token_losses l;
    l.loss.assign(std::size_t(tokens), 0.0);
    l.scored.assign(std::size_t(tokens), true);
    l.scored[0] = false;
    double sum = 0;
    for (int t = 1; t < tokens; ++t) {
      l.loss[std::size_t(t)] = base_ + scale_ * cost;
      sum += l.loss[std::size_t(t)];
    }
    l.sequence = sum / double(tokens - 1);
    return l;
  }
  std::vector<int> shape_{3, 3};
  double base_, scale_;
  headlens::token_losses clean_;
};

struct corpus {
  // Two documents: 3 tokens (2 scored) at base 1, 5 tokens (4 scored) at base 4. Sequence mean 2.5, token mean 3.
  std::vector<std::unique_ptr<planted_target>> owned;
  corpus() {
    owned.push_back(std::make_unique<planted_target>(3, 1.0));
    owned.push_back(std::make_unique<planted_target>(5, 4.0));
  }
  std::vector<const headlens::ablation_target*> targets() const { return headlens::target_pointers(owned); }
};

std::vector<head_ref> heads(std::initializer_list<head_ref> l) { return l; }

TEST_CASE("corpus loss: sequence mean and token weighted", "[pruning_plan]") {
  corpus c;
  head_set none({3, 3});
  CHECK(headlens::corpus_loss(c.targets(), none, ablation::zero, headlens::corpus_weighting::sequence_mean) ==
        Approx(2.5));
  CHECK(headlens::corpus_loss(c.targets(), none, ablation::zero, headlens::corpus_weighting::token_weighted) ==
        Approx(3.0));
  head_set ab({3, 3});
  ab.insert(A);
  ab.insert(B);  // cost 1.02 on every scored token
  CHECK(headlens::corpus_loss(c.targets(), ab, ablation::zero, headlens::corpus_weighting::sequence_mean) ==
        Approx(3.52));
  CHECK(headlens::corpus_loss(c.targets(), ab, ablation::zero, headlens::corpus_weighting::token_weighted) ==
        Approx(4.02));
}

TEST_CASE("re-measured greedy differs from the one-shot ranking where heads interact", "[pruning_plan]") {
  corpus c;
  headlens::pruning_options o;
  o.target_share = 1.0;

  SECTION("re-measured every step") {
    const headlens::pruning_plan plan = headlens::plan_pruning(c.targets(), o);
    // Step 1: A (0.01; ties with B, the earlier head wins). Then B costs 1.01 more, so D, F, C, E come first.
    CHECK(plan.order == heads({A, D, F, C, E, B}));
    REQUIRE(plan.curve.size() == 7);
    const double totals[] = {0, 0.01, 0.03, 0.06, 0.11, 0.61, 1.62};
    for (int i = 0; i < 7; ++i) {
      CHECK(plan.curve[std::size_t(i)].heads_pruned == i);
      CHECK(plan.curve[std::size_t(i)].loss_change == Approx(totals[i]));
      CHECK(plan.curve[std::size_t(i)].relative_change == Approx(totals[i] / 2.5));
      CHECK(plan.curve[std::size_t(i)].loss == Approx(2.5 + totals[i]));
      if (i > 0) CHECK(plan.curve[std::size_t(i)].measured);
    }
    CHECK(plan.stopped_by == "target_share");
    CHECK(plan.pruned.size() == 6);
    CHECK(plan.evaluations == 6 + 5 + 4 + 3 + 2 + 1);
  }
  SECTION("one-shot ranking (remeasure_every = 0)") {
    o.remeasure_every = 0;
    const headlens::pruning_plan plan = headlens::plan_pruning(c.targets(), o);
    CHECK(plan.order == heads({A, B, D, F, C, E}));
    CHECK(plan.curve[2].loss_change == Approx(1.02));  // the pair, measured exactly once pruned
    CHECK_FALSE(plan.curve[2].measured);
    CHECK(plan.evaluations == 6 + 5);  // one sweep, then one evaluation per step after the first
  }
  SECTION("half the heads: greedy keeps the loss 17 times lower") {
    o.target_share = 0.5;
    const headlens::pruning_plan greedy = headlens::plan_pruning(c.targets(), o);
    o.remeasure_every = 0;
    const headlens::pruning_plan one_shot = headlens::plan_pruning(c.targets(), o);
    CHECK(greedy.order == heads({A, D, F}));
    CHECK(one_shot.order == heads({A, B, D}));
    CHECK(greedy.curve.back().loss_change == Approx(0.06));
    CHECK(one_shot.curve.back().loss_change == Approx(1.04));
    CHECK(greedy.share() == Approx(0.5));
    CHECK(greedy.pruned.contains(F));
    CHECK_FALSE(greedy.pruned.contains(B));
  }
}

TEST_CASE("loss budgets stop the plan", "[pruning_plan]") {
  corpus c;
  headlens::pruning_options o;
  o.loss_budget = 0.03;  // relative to 2.5: at most +0.075

  SECTION("re-measured every step: A, D, F fit, C would make 0.11") {
    const headlens::pruning_plan plan = headlens::plan_pruning(c.targets(), o);
    CHECK(plan.order == heads({A, D, F}));
    CHECK(plan.stopped_by == "loss_budget");
    CHECK(plan.evaluations == 6 + 5 + 4 + 3);
  }
  SECTION("one-shot: B after A breaks the budget, so it stops at one head") {
    o.remeasure_every = 0;
    const headlens::pruning_plan plan = headlens::plan_pruning(c.targets(), o);
    CHECK(plan.order == heads({A}));
    CHECK(plan.stopped_by == "loss_budget");
  }
  SECTION("every 3 steps: an old ranking's pick that breaks the budget is undone and re-measured") {
    o.remeasure_every = 3;
    const headlens::pruning_plan plan = headlens::plan_pruning(c.targets(), o);
    CHECK(plan.order == heads({A, D, F}));
    CHECK(plan.curve[1].measured);
    CHECK(plan.curve[2].measured);  // B (old ranking) broke the budget: a fresh sweep picked D
    CHECK_FALSE(plan.curve[3].measured);
    // Sweep of 6, B tried (1), sweep of 5, F (1), C tried (1), sweep of 3 whose best (C) breaks the budget.
    CHECK(plan.evaluations == 6 + 1 + 5 + 1 + 1 + 3);
  }
  SECTION("absolute budget, token weighted") {
    o.loss_budget.reset();
    o.absolute_loss_budget = 0.2;
    o.weighting = headlens::corpus_weighting::token_weighted;
    const headlens::pruning_plan plan = headlens::plan_pruning(c.targets(), o);
    CHECK(plan.order == heads({A, D, F, C}));
    CHECK(plan.clean_loss == Approx(3.0));
    CHECK(plan.stopped_by == "absolute_loss_budget");
  }
  SECTION("budget and share together: the first to bind stops") {
    o.target_share = 2.0 / 6.0;
    const headlens::pruning_plan plan = headlens::plan_pruning(c.targets(), o);
    CHECK(plan.order == heads({A, D}));
    CHECK(plan.stopped_by == "target_share");
  }
}

TEST_CASE("a minimum of heads per layer", "[pruning_plan]") {
  corpus c;
  headlens::pruning_options o;
  o.target_share = 1.0;
  o.min_heads_per_layer = 1;
  const headlens::pruning_plan plan = headlens::plan_pruning(c.targets(), o);
  CHECK(plan.order == heads({A, D, F, C}));  // then E and B are each the last head of their layer
  CHECK(plan.stopped_by == "no_candidates");
}

TEST_CASE("the ablation kind reaches the targets; progress is reported", "[pruning_plan]") {
  corpus c;
  headlens::pruning_options o;
  o.target_share = 0.5;
  o.kind = ablation::mean;
  std::vector<headlens::pruning_progress> seen;
  o.progress = [&](const headlens::pruning_progress& p) { seen.push_back(p); };
  const headlens::pruning_plan plan = headlens::plan_pruning(c.targets(), o);
  CHECK(c.owned[0]->last_kind == ablation::mean);
  CHECK(plan.kind == ablation::mean);
  CHECK(c.owned[0]->calls == plan.evaluations);
  // Sweeps of 6, 5, 4 candidates, one report each, and one per step.
  REQUIRE(seen.size() == 6 + 5 + 4 + 3);
  CHECK(seen[0].candidate == 1);
  CHECK(seen[0].sweep_size == 6);
  CHECK(seen[6].candidate == 0);
  CHECK(seen[6].heads_pruned == 1);
  CHECK(seen.back().heads_pruned == 3);
  CHECK(seen.back().loss_change == Approx(0.06));
  CHECK(seen.back().evaluations == 15);
}

class zero_clean_target final : public headlens::ablation_target {
 public:
  const std::vector<int>& heads_per_layer() const override { return shape_; }
  headlens::Index token_count() const override { return 1; }
  const headlens::token_losses& clean() const override { return clean_; }
  headlens::token_losses losses(const head_set&, ablation) const override { return clean_; }

 private:
  std::vector<int> shape_{2};
  headlens::token_losses clean_{{0.0}, {true}, 0.0};
};

TEST_CASE("bad plans are argument errors naming the option", "[pruning_plan]") {
  corpus c;
  headlens::pruning_options o;
  CHECK_THROWS_WITH(headlens::plan_pruning({}, o), Contains("corpus is empty"));
  CHECK_THROWS_WITH(headlens::plan_pruning(c.targets(), o), Contains("no stopping rule"));
  o.target_share = 1.5;
  CHECK_THROWS_WITH(headlens::plan_pruning(c.targets(), o), Contains("target_share is 1.5"));
  o.target_share = 0.5;
  o.remeasure_every = -1;
  CHECK_THROWS_WITH(headlens::plan_pruning(c.targets(), o), Contains("remeasure_every is -1"));
  o.remeasure_every = 1;
  o.loss_budget = -0.1;
  CHECK_THROWS_AS(headlens::plan_pruning(c.targets(), o), headlens::argument_error);
  o.loss_budget = 0.01;
  zero_clean_target z;
  CHECK_THROWS_WITH(headlens::plan_pruning({&z}, o), Contains("clean loss is 0"));
  std::vector<const headlens::ablation_target*> mixed = c.targets();
  mixed.push_back(&z);
  CHECK_THROWS_WITH(headlens::plan_pruning(mixed, o), Contains("corpus[2] has other heads per layer"));
  mixed.back() = nullptr;
  CHECK_THROWS_WITH(headlens::plan_pruning(mixed, o), Contains("corpus[2] is null"));
}

TEST_CASE("the plan as JSON", "[pruning_plan]") {
  corpus c;
  headlens::pruning_options o;
  o.target_share = 0.5;
  const nlohmann::json j = headlens::to_json(headlens::plan_pruning(c.targets(), o));
  CHECK(j["pruned"] == nlohmann::json::parse(R"(["0.0", "1.0", "1.2"])"));
  CHECK(j["heads"] == 6);
  CHECK(j["heads_pruned"] == 3);
  CHECK(j["stopped_by"] == "target_share");
  CHECK(j["ablation"] == "zero");
  REQUIRE(j["curve"].size() == 4);
  CHECK(j["curve"][0]["head"].is_null());
  CHECK(j["curve"][2]["head"] == "1.0");
  CHECK(j["curve"][3]["loss_change"].get<double>() == Approx(0.06));
  CHECK(j["curve"][3]["relative_change"].get<double>() == Approx(0.024));
  // A loss that is 0 unablated (an encoder's 1 - cosine): no relative change.
  zero_clean_target z;
  headlens::pruning_options a;
  a.absolute_loss_budget = 1.0;
  const nlohmann::json k = headlens::to_json(headlens::plan_pruning({&z}, a));
  CHECK(k["curve"][1]["relative_change"].is_null());
  CHECK(k["heads_pruned"] == 2);
}

}  // namespace test_pruning_plan
