// The causal check and head importance put into a head card (analysis/head_card_sections.hpp): every figure lands
// where the card's readers look for it, only what was measured is there, and the card validates and reads back.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "headlens/analysis/head_card_json.hpp"
#include "headlens/analysis/head_card_sections.hpp"

namespace test_head_card_sections {

namespace {

/// A 2 x 2 model: 0.0 syntactic, 1.1 coreference, the rest unassigned.
headlens::head_card small_card() {
  std::vector<headlens::head_verdict> verdicts;
  for (int l = 0; l < 2; ++l) {
    for (int h = 0; h < 2; ++h) {
      headlens::head_verdict v;
      v.layer = l;
      v.head = h;
      v.label = l == 0 && h == 0   ? headlens::head_label::syntactic
                : l == 1 && h == 1 ? headlens::head_label::coreference
                                   : headlens::head_label::unassigned;
      v.confidence = 0.5;
      if (v.label == headlens::head_label::unassigned) v.reason = "weak evidence";
      verdicts.push_back(v);
    }
  }
  headlens::card_model model;
  model.name = "tiny";
  model.heads_per_layer = {2, 2};
  model.causal = true;
  headlens::card_provenance provenance;
  provenance.created = "2026-12-08T00:00:00Z";
  return headlens::make_head_card(headlens::make_report(verdicts, "annotated"), model, provenance);
}

headlens::document_interval interval(double mean, double low, double high, std::size_t documents) {
  headlens::document_interval i;
  i.documents = documents;
  i.mean = mean;
  i.low = low;
  i.high = high;
  return i;
}

}  // namespace

TEST_CASE("head card sections: the causal check, one entry per category, verdicts and reasons kept") {
  headlens::head_card card = small_card();
  headlens::causal_check_result r;
  r.kind = headlens::ablation::mean;
  for (std::size_t c = 0; c < headlens::head_category_count; ++c) r.labels[c].label = headlens::head_label(c);
  auto& syn = r.labels[std::size_t(headlens::head_label::syntactic)];
  syn.heads = {{0, 0}};
  syn.verdict = headlens::causal_verdict::supported;
  syn.effect = 0.25;
  syn.random_mean = 0.01;
  syn.random_effects = std::vector<double>(20, 0.01);
  syn.p_value = 1.0 / 21;
  r.labels[std::size_t(headlens::head_label::discourse)].reason = "no head carries the label";

  headlens::add_causal_check(card, r);
  REQUIRE(card.causal_checks.size() == 4);
  const headlens::card_causal_check* c = card.causal_check(headlens::head_label::syntactic);
  REQUIRE(c != nullptr);
  CHECK(c->heads == 1);
  CHECK(c->ablation == "mean");
  CHECK(c->effect == 0.25);
  CHECK(c->random_effect == 0.01);
  CHECK(c->draws == 20);
  CHECK(c->p_value == Approx(1.0 / 21));
  CHECK(c->tokens == "tokens whose syntactic head or a dependent is visible to them");
  CHECK(headlens::causal_status(card, headlens::head_label::syntactic) == "supported");
  CHECK(headlens::causal_status(card, headlens::head_label::discourse) == "not testable");
  CHECK(card.causal_check(headlens::head_label::discourse)->reason == "no head carries the label");
  CHECK(headlens::causal_status(card, headlens::head_label::unassigned) == "not causally checked");

  const headlens::head_card back = headlens::parse_head_card(headlens::head_card_json_text(card));
  REQUIRE(back.causal_checks.size() == 4);
  CHECK(back.causal_check(headlens::head_label::syntactic)->verdict == headlens::causal_verdict::supported);
}

TEST_CASE("head card sections: importance per head with intervals and ranks, the run's stability") {
  headlens::head_card card = small_card();
  headlens::head_importance_result r;
  r.context = "sentence (each annotated sentence alone)";
  r.heads_per_layer = {2, 2};
  r.documents = {0, 1, 2, 3};
  headlens::importance_of_kind zero, mean;
  zero.kind = headlens::ablation::zero;
  mean.kind = headlens::ablation::mean;
  zero.stability.rho = 0.8;
  zero.stability.stable = true;
  const double zero_change[] = {0.4, 0.1, 0.3, 0.2}, mean_change[] = {0.2, 0.05, 0.1, 0.0};
  const std::size_t zero_rank[] = {1, 4, 2, 3};
  for (int k = 0; k < 4; ++k) {
    headlens::head_importance z;
    z.head = {k / 2, k % 2};
    z.change = interval(zero_change[k], zero_change[k] - 0.05, zero_change[k] + 0.05, 4);
    z.rank = zero_rank[k];
    zero.heads.push_back(z);
    headlens::head_importance m = z;
    m.change = interval(mean_change[k], std::nan(""), std::nan(""), 1);  // no interval from one document
    m.rank = std::size_t(4 - k);
    mean.heads.push_back(m);
  }
  r.kinds = {zero, mean};

  headlens::add_head_importance(card, r, "next-token cross-entropy");
  REQUIRE(card.importance);
  CHECK(card.importance->loss == "next-token cross-entropy");
  CHECK(card.importance->documents == 4);
  REQUIRE(card.importance->ranking_stable);
  CHECK(*card.importance->ranking_stable);
  CHECK(card.importance->ranking_agreement == 0.8);
  const headlens::card_head* h = card.find(1, 0);
  REQUIRE(h != nullptr);
  REQUIRE(h->importance);
  CHECK(h->importance->zero.value == 0.3);
  CHECK(h->importance->zero.low == Approx(0.25));
  CHECK(h->importance->zero.high == Approx(0.35));
  CHECK(h->importance->rank == 2);  // ranked by zero ablation
  CHECK(h->importance->mean.value == 0.1);
  CHECK(std::isnan(h->importance->mean.low));  // not measured: stays null

  const headlens::head_card back = headlens::parse_head_card(headlens::head_card_json_text(card));
  REQUIRE(back.find(1, 0)->importance);
  CHECK(back.find(1, 0)->importance->zero.value == 0.3);
  CHECK(back.find(1, 0)->importance->rank == 2);

  // A result for another model's heads is refused.
  headlens::head_importance_result other = r;
  other.kinds[0].heads[0].head = {5, 0};
  CHECK_THROWS_AS(headlens::add_head_importance(card, other, "x"), headlens::argument_error);
}

}  // namespace test_head_card_sections
