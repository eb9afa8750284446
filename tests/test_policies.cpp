// Policies on hand-made head_evidence values; every expected number is worked out by hand in the comments.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "headlens/analysis/policies.hpp"

namespace test_policies {

using headlens::annotated_policy;
using headlens::head_evidence;
using headlens::head_label;
using headlens::head_verdict;
using headlens::heuristic_policy;

namespace {

/// A head with general evidence that is neither sink nor broad and nothing else.
head_evidence quiet_head(int layer = 0, int head = 0) {
  head_evidence e;
  e.layer = layer;
  e.head = head;
  e.annotated = true;
  e.general.rows = 1000;
  e.general.entropy = 0.3;
  e.general.mean_distance = 3.0;
  e.general.first_token_mass = 0.05;
  e.general.separator_mass = 0.02;
  e.general.sink_mass = 0.07;
  e.positional.rows = 1000;
  e.positional.top_offset = -1;
  e.positional.top_offset_share = 0.30;
  e.discourse.rows = 1000;
  e.discourse.cross_sentence_mass = 0.10;
  return e;
}

headlens::relation_evidence relation(const char* name, bool dep_to_head, double acc, double base, long count) {
  headlens::relation_evidence r;
  r.relation = name;
  r.dependent_to_head = dep_to_head;
  r.accuracy = acc;
  r.baseline_accuracy = base;
  r.baseline_offset = -1;
  r.count = count;
  return r;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct user_policy {
  head_verdict classify(const head_evidence& e) const {
    head_verdict v;
    v.layer = e.layer;
    v.head = e.head;
    return v;
  }
};
struct not_a_policy {
  int classify(const head_evidence&) const { return 0; }
};

}  // namespace

static_assert(headlens::is_head_policy_v<annotated_policy>);
static_assert(headlens::is_head_policy_v<heuristic_policy>);
static_assert(headlens::is_head_policy_v<user_policy>);
static_assert(!headlens::is_head_policy_v<not_a_policy>);
static_assert(!headlens::is_head_policy_v<int>);

TEST_CASE("labels: names round-trip and unknown names give nothing") {
  for (head_label label : headlens::head_labels) {
    REQUIRE(headlens::parse_head_label(headlens::to_string(label)) == label);
  }
  REQUIRE(headlens::to_string(head_label::coreference) == "coreference");
  REQUIRE_FALSE(headlens::parse_head_label("Syntactic").has_value());
  head_verdict v;
  REQUIRE(std::isnan(v.score(head_label::syntactic)));
  v.set_score(head_label::discourse, 0.25);
  REQUIRE(v.score(head_label::discourse) == 0.25);
  REQUIRE(std::isnan(v.score(head_label::unassigned)));
}

TEST_CASE("annotated: a syntactic head beats the offset baseline by the margin") {
  head_evidence e = quiet_head(3, 7);
  e.syntactic.relations = {relation("amod", true, 0.70, 0.68, 50), relation("nsubj", true, 0.80, 0.40, 100),
                           relation("ccomp", false, 1.00, 0.00, 5)};  // 5 < 20 instances: ignored
  const head_verdict v = annotated_policy().classify(e);
  REQUIRE(v.layer == 3);
  REQUIRE(v.head == 7);
  REQUIRE(v.label == head_label::syntactic);
  REQUIRE(v.reason.empty());
  REQUIRE(v.score(head_label::syntactic) == Approx(0.40));    // 0.80 - 0.40
  REQUIRE(v.score(head_label::positional) == Approx(-0.60));  // 0.30 - 0.9
  REQUIRE(v.score(head_label::discourse) == Approx(-0.40));   // cross-sentence route only: 0.10 - 0.5
  REQUIRE(std::isnan(v.score(head_label::coreference)));      // no mentions measured
  // excess (0.80 - (0.40 + 0.10)) / (1 - 0.50) = 0.6; confidence (0.5 + 0.5 * 0.6) * 100 / 110
  REQUIRE(v.confidence == Approx(0.8 * 100.0 / 110.0));
  REQUIRE_FALSE(v.evidence.empty());
  REQUIRE(contains(v.evidence[0].name, "nsubj dep->head"));
  REQUIRE(v.evidence[0].value == 0.80);
  REQUIRE(v.evidence[0].baseline == 0.40);
}

TEST_CASE("annotated: a margin just under 10 points is weak evidence") {
  head_evidence e = quiet_head();
  e.syntactic.relations = {relation("obj", true, 0.49, 0.40, 100)};
  const head_verdict v = annotated_policy().classify(e);
  REQUIRE(v.label == head_label::unassigned);
  REQUIRE(contains(v.reason, "weak evidence"));
  REQUIRE(contains(v.reason, "syntactic"));  // the closest category: excess -0.01/0.5 beats positional's -6
  REQUIRE(v.score(head_label::syntactic) == Approx(0.09));
}

TEST_CASE("annotated: positional heads follow Voita et al.'s 90% at +-1") {
  head_evidence e = quiet_head();
  e.positional.rows = 500;
  e.positional.top_offset = -1;
  e.positional.top_offset_share = 0.95;
  e.syntactic.relations = {relation("amod", true, 0.60, 0.58, 40)};
  SECTION("0.95 at -1 passes") {
    const head_verdict v = annotated_policy().classify(e);
    REQUIRE(v.label == head_label::positional);
    REQUIRE(v.score(head_label::positional) == Approx(0.05));
    // excess (0.95 - 0.9) / 0.1 = 0.5; confidence 0.75 * 500 / 510
    REQUIRE(v.confidence == Approx(0.75 * 500.0 / 510.0));
    REQUIRE(v.evidence[0].name == "argmax share at offset -1");
    REQUIRE(v.evidence[0].baseline == 0.9);
  }
  SECTION("0.95 at +1 passes") {
    e.positional.top_offset = 1;
    REQUIRE(annotated_policy().classify(e).label == head_label::positional);
  }
  SECTION("0.85 is below the share") {
    e.positional.top_offset_share = 0.85;
    e.syntactic.relations.clear();  // else amod, excess (0.60 - 0.78) / 0.22 = -0.25 > -0.5, is the closest
    const head_verdict v = annotated_policy().classify(e);
    REQUIRE(v.label == head_label::unassigned);
    INFO(v.reason);
    REQUIRE(contains(v.reason, "below 0.90"));
  }
  SECTION("offset 0 is not one of the default offsets, but may be allowed") {
    e.positional.top_offset = 0;
    e.syntactic.relations.clear();
    const head_verdict v = annotated_policy().classify(e);
    REQUIRE(v.label == head_label::unassigned);
    REQUIRE(contains(v.reason, "not an allowed offset"));
    annotated_policy::options any;
    any.positional_offsets.clear();
    REQUIRE(annotated_policy(any).classify(e).label == head_label::positional);
  }
}

TEST_CASE("annotated: coreference against the nearest-mention baseline") {
  head_evidence e = quiet_head();
  e.coreference.overall_accuracy = 0.65;
  e.coreference.overall_baseline_accuracy = 0.27;
  e.coreference.overall_count = 200;
  e.coreference.count = {120, 30, 50};
  e.coreference.accuracy = {0.7, 0.6, 0.56};
  e.coreference.baseline_accuracy = {0.3, 0.2, 0.24};
  e.syntactic.relations = {relation("nsubj", true, 0.45, 0.40, 100)};
  head_verdict v = annotated_policy().classify(e);
  REQUIRE(v.label == head_label::coreference);
  REQUIRE(v.score(head_label::coreference) == Approx(0.38));
  REQUIRE(v.score(head_label::syntactic) == Approx(0.05));
  REQUIRE(v.evidence.size() >= 4);  // overall + three mention types, then the other categories
  REQUIRE(contains(v.evidence[1].name, "pronoun"));
  SECTION("too few mentions is no evidence, not an accuracy") {
    e.coreference.overall_count = 19;
    v = annotated_policy().classify(e);
    REQUIRE(std::isnan(v.score(head_label::coreference)));
    REQUIRE(v.label == head_label::unassigned);
  }
}

TEST_CASE("annotated: discourse needs the related unit and mass across units") {
  head_evidence e = quiet_head();
  e.discourse.unit_count = 50;
  e.discourse.related_unit_accuracy = 0.70;
  e.discourse.chain_baseline_accuracy = 0.40;
  e.discourse.cross_unit_mass = 0.80;
  REQUIRE(annotated_policy().classify(e).label == head_label::discourse);
  REQUIRE(annotated_policy().classify(e).score(head_label::discourse) == Approx(0.30));
  SECTION("a head that stays inside its unit is not a discourse head") {
    e.discourse.cross_unit_mass = 0.20;
    const head_verdict v = annotated_policy().classify(e);
    REQUIRE(v.label == head_label::unassigned);
    REQUIRE(contains(v.reason, "cross-unit mass 0.20"));
  }
  SECTION("without units, focused long-range cross-sentence attention still counts") {
    e.discourse.unit_count = 0;
    e.discourse.cross_sentence_mass = 0.80;
    e.general.entropy = 0.2;
    e.general.mean_distance = 15;
    const head_verdict v = annotated_policy().classify(e);
    REQUIRE(v.label == head_label::discourse);
    REQUIRE(v.score(head_label::discourse) == Approx(0.30));  // 0.80 - 0.5
    REQUIRE(v.evidence[0].name == "cross-sentence mass");
  }
}

TEST_CASE("annotated: two categories with the same excess are tied") {
  head_evidence e = quiet_head();
  // syntactic excess (0.6 - 0.4) / 0.6 = 1/3; coreference the same numbers
  e.syntactic.relations = {relation("nsubj", true, 0.6, 0.3, 100)};
  e.coreference.overall_accuracy = 0.6;
  e.coreference.overall_baseline_accuracy = 0.3;
  e.coreference.overall_count = 100;
  const head_verdict v = annotated_policy().classify(e);
  REQUIRE(v.label == head_label::unassigned);
  REQUIRE(contains(v.reason, "tied"));
  REQUIRE(v.confidence == 0);
  SECTION("a clear winner is not a tie") {
    e.coreference.overall_accuracy = 0.9;  // excess (0.9 - 0.4) / 0.6 = 0.83
    const head_verdict w = annotated_policy().classify(e);
    REQUIRE(w.label == head_label::coreference);
    // confidence (0.5 + 0.5 * (0.8333 - 0.3333)) * 100 / 110
    REQUIRE(w.confidence == Approx(0.75 * 100.0 / 110.0));
  }
}

TEST_CASE("annotated: sink, broad and empty heads are unassigned with the reason") {
  head_evidence e = quiet_head();
  SECTION("sink") {
    e.general.sink_mass = 0.7;
    const head_verdict v = annotated_policy().classify(e);
    REQUIRE(v.label == head_label::unassigned);
    REQUIRE(v.reason == "sink");
    REQUIRE(v.confidence == Approx(0.7));
    REQUIRE(v.evidence[0].value == Approx(0.7));
  }
  SECTION("a sink is a sink even when its free attention passes the cross-sentence route") {
    e.general.sink_mass = 0.7;
    e.discourse.cross_sentence_mass = 0.8;  // what the sink leaves over is diffuse, mostly in other sentences
    e.general.entropy = 0.2;
    e.general.mean_distance = 40;
    const head_verdict v = annotated_policy().classify(e);
    REQUIRE(v.reason == "sink");
    REQUIRE(v.score(head_label::discourse) == Approx(0.3));  // still scored
    REQUIRE(heuristic_policy().classify(e).reason == "sink");
  }
  SECTION("a sink whose free attention passes an argmax test gets that category, the sink mass in its evidence") {
    e.general.sink_mass = 0.6;
    e.syntactic.relations = {relation("nsubj", true, 0.80, 0.40, 100)};
    const head_verdict v = annotated_policy().classify(e);
    REQUIRE(v.label == head_label::syntactic);
    bool reported = false;
    for (const auto& item : v.evidence) reported = reported || (item.name.find("sink mass") != std::string::npos);
    REQUIRE(reported);
    e.syntactic.relations.clear();
    e.positional.top_offset_share = 0.95;  // Voita's rule on the free argmax lifts a sink too
    REQUIRE(annotated_policy().classify(e).label == head_label::positional);
    REQUIRE(heuristic_policy().classify(e).label == head_label::positional);
  }
  SECTION("broad") {
    e.general.entropy = 0.95;
    const head_verdict v = annotated_policy().classify(e);
    REQUIRE(v.reason == "broad");
    REQUIRE(v.confidence == Approx(0.95));
  }
  SECTION("nothing measured") {
    const head_verdict v = annotated_policy().classify(head_evidence{});
    REQUIRE(v.label == head_label::unassigned);
    REQUIRE(v.reason == "no evidence");
    REQUIRE(v.confidence == 0);
    for (head_label c : headlens::head_categories) REQUIRE(std::isnan(v.score(c)));
  }
}

TEST_CASE("heuristic: positional, discourse, sink, broad; syntactic needs annotations") {
  const heuristic_policy policy;
  head_evidence e = quiet_head();
  e.syntactic.relations = {relation("nsubj", true, 0.95, 0.40, 100)};  // ignored: the policy does not use them
  head_verdict v = policy.classify(e);
  REQUIRE(v.label == head_label::unassigned);
  REQUIRE(v.reason.rfind("needs annotations", 0) == 0);
  REQUIRE(std::isnan(v.score(head_label::syntactic)));
  REQUIRE(std::isnan(v.score(head_label::coreference)));
  REQUIRE(v.score(head_label::positional) == Approx(-0.6));

  e.positional.top_offset_share = 0.97;
  v = policy.classify(e);
  REQUIRE(v.label == head_label::positional);
  REQUIRE(v.score(head_label::positional) == Approx(0.07));

  e = quiet_head();
  e.discourse.cross_sentence_mass = 0.8;
  e.general.entropy = 0.2;
  e.general.mean_distance = 15;
  v = policy.classify(e);
  REQUIRE(v.label == head_label::discourse);
  REQUIRE(v.score(head_label::discourse) == Approx(0.3));
  e.general.mean_distance = 2;  // short-range: crossing a boundary to the neighbouring word is not discourse
  REQUIRE(policy.classify(e).label == head_label::unassigned);
  e.general.mean_distance = 15;
  e.general.entropy = 0.6;  // spread over many words (a random head): not discourse, and not broad either
  v = policy.classify(e);
  REQUIRE(v.label == head_label::unassigned);
  REQUIRE(v.reason.rfind("needs annotations", 0) == 0);
  e.general.entropy = 0.9;
  REQUIRE(policy.classify(e).reason == "broad");
  e.general.entropy = 0.2;
  e.general.sink_mass = 0.55;
  e.discourse.cross_sentence_mass = 0.3;
  REQUIRE(policy.classify(e).reason == "sink");
}

TEST_CASE("classify_heads: one verdict per head, in order") {
  std::vector<head_evidence> heads;
  for (int l = 0; l < 2; ++l) {
    for (int h = 0; h < 3; ++h) heads.push_back(quiet_head(l, h));
  }
  heads[4].positional.top_offset_share = 0.99;
  const auto verdicts = headlens::classify_heads(annotated_policy(), heads);
  REQUIRE(verdicts.size() == 6);
  for (std::size_t i = 0; i < 6; ++i) {
    REQUIRE(verdicts[i].layer == heads[i].layer);
    REQUIRE(verdicts[i].head == heads[i].head);
    REQUIRE(verdicts[i].label == (i == 4 ? head_label::positional : head_label::unassigned));
  }
  REQUIRE(headlens::classify_heads(user_policy(), heads).size() == 6);
}

}  // namespace test_policies
