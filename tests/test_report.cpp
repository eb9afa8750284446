// Reports from hand-made verdicts: counts, percentages and bands worked out by hand, and every output format.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "headlens/analysis/report.hpp"
#if __has_include(<nlohmann/json.hpp>)
#include "headlens/analysis/report_json.hpp"
#define HEADLENS_TEST_JSON 1
#endif

namespace test_report {

using headlens::head_label;
using headlens::head_verdict;

namespace {

head_verdict verdict(int layer, int head, head_label label, double score = 0.5) {
  head_verdict v;
  v.layer = layer;
  v.head = head;
  v.label = label;
  if (label != head_label::unassigned) v.set_score(label, score);
  v.confidence = 0.75;
  if (label == head_label::unassigned) v.reason = "sink";
  v.evidence.push_back({"first, value", 0.5, 0.25});
  return v;
}

/// 6 layers x 2 heads; bands floor(3 l / 6): layers 0-1 early, 2-3 middle, 4-5 late.
std::vector<head_verdict> six_layers() {
  const head_label labels[6][2] = {
      {head_label::positional, head_label::positional}, {head_label::positional, head_label::unassigned},
      {head_label::syntactic, head_label::syntactic},   {head_label::coreference, head_label::syntactic},
      {head_label::discourse, head_label::coreference}, {head_label::unassigned, head_label::unassigned}};
  std::vector<head_verdict> out;
  for (int l = 5; l >= 0; --l) {  // reversed: make_report sorts
    for (int h = 1; h >= 0; --h) out.push_back(verdict(l, h, labels[l][h]));
  }
  return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A hand-made causal check for six_layers(): syntactic supported (3 heads), coreference not supported, discourse
/// not testable, positional supported with every random effect equal (z = +inf).
headlens::causal_check_result causal() {
  using headlens::causal_verdict;
  headlens::causal_check_result c;
  c.random_sets = 20;
  c.seed = 3;
  c.units = 2;
  c.tokens = 16;
  for (std::size_t i = 0; i < 4; ++i) c.labels[i].label = headlens::head_categories[i];
  auto& syn = c.labels[0];
  syn.heads = {{2, 0}, {2, 1}, {3, 1}};
  syn.verdict = causal_verdict::supported;
  syn.phenomenon_tokens = 12;
  syn.other_tokens = 4;
  syn.phenomenon_change = 0.5;
  syn.other_change = 0.125;
  syn.effect = 0.375;
  syn.scope = headlens::random_scope::same_layers;
  syn.possible_sets = 30;
  for (int k = 0; k < 20; ++k) syn.random_effects.push_back(0.01 * k);  // mean 0.095
  syn.random_mean = 0.095;
  syn.random_sd = 0.0591608;
  syn.z = 4.73;
  syn.random_at_least = 0;
  syn.p_value = 1.0 / 21;
  auto& coref = c.labels[1];
  coref.heads = {{3, 0}, {4, 1}};
  coref.verdict = causal_verdict::not_supported;
  coref.phenomenon_tokens = 1;
  coref.other_tokens = 15;
  coref.effect = -0.0625;
  coref.random_effects.assign(20, 0.0);
  coref.random_mean = 0;
  coref.random_sd = 0;
  coref.z = -std::numeric_limits<double>::infinity();
  coref.random_at_least = 20;
  coref.p_value = 1;
  coref.scope = headlens::random_scope::any_layer;
  coref.possible_sets = 45;
  coref.exact = true;
  coref.reason = "random sets drawn from any layer, see notes";
  auto& disc = c.labels[2];
  disc.heads = {{4, 0}};
  disc.reason = "annotations missing: no unit's document has sentences";
  auto& pos = c.labels[3];
  pos.heads = {{0, 0}, {0, 1}, {1, 0}};
  pos.verdict = causal_verdict::supported;
  pos.phenomenon_tokens = 16;
  pos.effect = 2;
  pos.phenomenon_change = 2;
  pos.random_effects.assign(20, 0.5);
  pos.random_mean = 0.5;
  pos.random_sd = 0;
  pos.z = std::numeric_limits<double>::infinity();
  pos.p_value = 1.0 / 21;
  pos.scope = headlens::random_scope::same_layers;
  pos.possible_sets = 1e30;
  return c;
}

}  // namespace

TEST_CASE("report: layer bands are thirds") {
  REQUIRE(headlens::layer_band(0, 12) == 0);
  REQUIRE(headlens::layer_band(3, 12) == 0);
  REQUIRE(headlens::layer_band(4, 12) == 1);
  REQUIRE(headlens::layer_band(7, 12) == 1);
  REQUIRE(headlens::layer_band(8, 12) == 2);
  REQUIRE(headlens::layer_band(11, 12) == 2);
  REQUIRE(headlens::layer_band(0, 1) == 0);
  REQUIRE(headlens::layer_band(1, 2) == 1);
  REQUIRE(headlens::layer_band(4, 5) == 2);  // 12 / 5 = 2
  REQUIRE(headlens::layer_band(3, 5) == 1);  // 9 / 5 = 1
}

TEST_CASE("report: sorted rows, counts and percentages per layer, band and model") {
  const headlens::head_report r = headlens::make_report(six_layers(), "annotated");
  REQUIRE(r.heads.size() == 12);
  REQUIRE(r.layer_count == 6);
  for (std::size_t i = 0; i < 12; ++i) {
    REQUIRE(r.heads[i].layer == static_cast<int>(i / 2));
    REQUIRE(r.heads[i].head == static_cast<int>(i % 2));
  }
  // model: positional 3, syntactic 3, coreference 2, discourse 1, unassigned 3 of 12
  REQUIRE(r.model.total() == 12);
  REQUIRE(r.model.of(head_label::positional) == 3);
  REQUIRE(r.model.percent(head_label::positional) == Approx(25.0));
  REQUIRE(r.model.percent(head_label::coreference) == Approx(100.0 * 2 / 12));
  REQUIRE(r.model.percent(head_label::discourse) == Approx(100.0 / 12));
  REQUIRE(r.model.percent(head_label::unassigned) == Approx(25.0));
  // bands
  REQUIRE(r.bands[0].name == "early");
  REQUIRE(r.bands[0].first_layer == 0);
  REQUIRE(r.bands[0].last_layer == 1);
  REQUIRE(r.bands[0].counts.percent(head_label::positional) == Approx(75.0));
  REQUIRE(r.bands[0].counts.percent(head_label::unassigned) == Approx(25.0));
  REQUIRE(r.bands[1].first_layer == 2);
  REQUIRE(r.bands[1].last_layer == 3);
  REQUIRE(r.bands[1].counts.percent(head_label::syntactic) == Approx(75.0));
  REQUIRE(r.bands[2].counts.percent(head_label::unassigned) == Approx(50.0));
  REQUIRE(r.bands[2].counts.percent(head_label::discourse) == Approx(25.0));
  // layers
  REQUIRE(r.layers.size() == 6);
  REQUIRE(r.layers[3].layer == 3);
  REQUIRE(r.layers[3].counts.percent(head_label::coreference) == Approx(50.0));
  REQUIRE(r.layers[5].counts.percent(head_label::unassigned) == Approx(100.0));
}

TEST_CASE("report: empty and short models") {
  const headlens::head_report empty = headlens::make_report({});
  REQUIRE(empty.model.total() == 0);
  REQUIRE(empty.model.percent(head_label::syntactic) == 0.0);
  REQUIRE(empty.layer_count == 0);
  const headlens::head_report two =
      headlens::make_report({verdict(0, 0, head_label::syntactic), verdict(1, 0, head_label::positional)});
  REQUIRE(two.bands[0].counts.total() == 1);
  REQUIRE(two.bands[1].counts.total() == 1);
  REQUIRE(two.bands[2].counts.total() == 0);
  REQUIRE(two.bands[2].last_layer < two.bands[2].first_layer);
  std::ostringstream table;
  headlens::write_table(table, two);
  REQUIRE(contains(table.str(), "late (no layers)"));
}

TEST_CASE("report: table, Markdown and CSV") {
  const headlens::head_report r = headlens::make_report(six_layers(), "annotated");
  std::ostringstream table, md, csv;
  headlens::write_table(table, r);
  headlens::write_markdown(md, r);
  headlens::write_csv(csv, r);
  REQUIRE(contains(table.str(), "head report (annotated policy): 12 heads in 6 layers"));
  REQUIRE(contains(table.str(), "positional"));
  REQUIRE(contains(table.str(), "+0.50"));
  REQUIRE(contains(table.str(), "early (layers 0-1)"));
  REQUIRE(contains(table.str(), "75.0%"));
  REQUIRE(contains(table.str(), "sink [first, value 0.50 (baseline 0.25)]"));

  REQUIRE(contains(md.str(), "| model | 25.0% | 16.7% | 8.3% | 25.0% | 25.0% | 12 |"));
  REQUIRE(contains(md.str(), "| 0 | 0 | positional | - | - | - | +0.50 | 0.75 | first, value 0.50 (baseline 0.25) |"));

  std::istringstream lines(csv.str());
  std::string line;
  std::getline(lines, line);
  REQUIRE(line ==
          "layer,head,label,syntactic,coreference,discourse,positional,confidence,reason,evidence,evidence_value,"
          "evidence_baseline");
  std::getline(lines, line);
  REQUIRE(line == "0,0,positional,,,,0.500000,0.750000,,\"first, value\",0.500000,0.250000");
  int rows = 1;
  while (std::getline(lines, line)) ++rows;
  REQUIRE(rows == 12);
}

TEST_CASE("report: the causal check in the table, Markdown and CSV, and nowhere when absent") {
  headlens::head_report r = headlens::make_report(six_layers(), "annotated");
  std::ostringstream table0, md0, csv0;
  headlens::write_table(table0, r);
  headlens::write_markdown(md0, r);
  headlens::write_csv(csv0, r);
  REQUIRE_FALSE(contains(table0.str(), "causal"));
  REQUIRE_FALSE(contains(md0.str(), "ausal"));
  REQUIRE_FALSE(contains(csv0.str(), "causal"));

  r.causal = causal();
  std::ostringstream table, md, csv, labels;
  headlens::write_table(table, r);
  headlens::write_markdown(md, r);
  headlens::write_csv(csv, r);
  headlens::write_causal_csv(labels, *r.causal);
  // Everything before the section is unchanged.
  REQUIRE(table.str().compare(0, table0.str().size(), table0.str()) == 0);
  REQUIRE(md.str().compare(0, md0.str().size(), md0.str()) == 0);

  REQUIRE(contains(table.str(),
                   "\ncausal check: zero ablation, 20 random head sets per label (seed 3), supported when "
                   "p < 0.05 and the effect is above the random mean; 2 units, 16 scored tokens\n"));
  // label(11) heads(7) 2 verdict(13) effect(11) mean(13) sd(11) z(9) p(8) tokens(20) 2 note
  REQUIRE(contains(table.str(),
                   "syntactic        3  supported        +0.3750      +0.0950     0.0592    +4.73  0.0476              "
                   "12 / 4  \n"));
  REQUIRE(contains(table.str(),
                   "coreference      2  not supported    -0.0625      +0.0000     0.0000     -inf  1.0000              "
                   "1 / 15  random sets drawn from any layer, see notes\n"));
  REQUIRE(contains(table.str(),
                   "discourse        1  not testable           -            -          -        -       - "
                   "              0 / 0  annotations missing: no unit's document has sentences\n"));
  REQUIRE(
      contains(table.str(), "positional       3  supported        +2.0000      +0.5000     0.0000      inf  0.0476"));

  REQUIRE(contains(md.str(), "\n## Causal check\n\nzero ablation, 20 random head sets per label (seed 3)"));
  REQUIRE(
      contains(md.str(), "| syntactic | 3 | supported | +0.3750 | +0.0950 | 0.0592 | +4.73 | 0.0476 | 12 | 4 |  |\n"));
  REQUIRE(contains(md.str(),
                   "| discourse | 1 | not testable | - | - | - | - | - | 0 | 0 | annotations missing: no "
                   "unit's document has sentences |\n"));

  std::istringstream lines(csv.str());
  std::string line;
  std::getline(lines, line);
  REQUIRE(line ==
          "layer,head,label,syntactic,coreference,discourse,positional,confidence,reason,evidence,evidence_value,"
          "evidence_baseline,causal_verdict,causal_effect,causal_p");
  std::getline(lines, line);  // head 0.0, positional
  REQUIRE(line ==
          "0,0,positional,,,,0.500000,0.750000,,\"first, value\",0.500000,0.250000,supported,2.000000,0.047619");
  std::getline(lines, line);  // head 0.1, unassigned: no check
  REQUIRE(line ==
          "0,1,positional,,,,0.500000,0.750000,,\"first, value\",0.500000,0.250000,supported,2.000000,0.047619");
  std::getline(lines, line);
  REQUIRE(line ==
          "1,0,positional,,,,0.500000,0.750000,,\"first, value\",0.500000,0.250000,supported,2.000000,0.047619");
  std::getline(lines, line);
  REQUIRE(line == "1,1,unassigned,,,,,0.750000,sink,\"first, value\",0.500000,0.250000,,,");

  std::istringstream rows(labels.str());
  std::getline(rows, line);
  REQUIRE(line ==
          "label,heads,verdict,effect,phenomenon_change,other_change,random_mean,random_sd,z,p,random_sets,"
          "exact,scope,phenomenon_tokens,other_tokens,reason");
  std::getline(rows, line);
  REQUIRE(line ==
          "syntactic,2.0 2.1 3.1,supported,0.375000,0.500000,0.125000,0.095000,0.059161,4.730000,0.047619,20,"
          "false,same layers,12,4,");
  std::getline(rows, line);
  REQUIRE(line ==
          "coreference,3.0 4.1,not supported,-0.062500,,,0.000000,0.000000,-inf,1.000000,20,true,any layer,1,"
          "15,\"random sets drawn from any layer, see notes\"");
  std::getline(rows, line);
  REQUIRE(line ==
          "discourse,4.0,not testable,,,,,,,,0,false,none,0,0,annotations missing: no unit's document has "
          "sentences");
}

#ifdef HEADLENS_TEST_JSON
TEST_CASE("report: the causal check in JSON, read back") {
  headlens::head_report r = headlens::make_report(six_layers(), "annotated");
  REQUIRE_FALSE(headlens::report_to_json(r).contains("causal_check"));
  REQUIRE_FALSE(headlens::report_from_json(headlens::report_to_json(r)).causal.has_value());
  r.causal = causal();
  const nlohmann::json j = headlens::report_to_json(r);
  const nlohmann::json& c = j.at("causal_check");
  REQUIRE(c.at("ablation") == "zero");
  REQUIRE(c.at("random_sets") == 20);
  REQUIRE(c.at("seed") == 3);
  REQUIRE(c.at("labels").size() == 4);
  const nlohmann::json& syn = c.at("labels").at(0);
  REQUIRE(syn.at("label") == "syntactic");
  REQUIRE(syn.at("heads") ==
          nlohmann::json::parse(R"([{"layer":2,"head":0},{"layer":2,"head":1},{"layer":3,"head":1}])"));
  REQUIRE(syn.at("verdict") == "supported");
  REQUIRE(syn.at("effect") == 0.375);
  REQUIRE(syn.at("random_effects").size() == 20);
  REQUIRE(syn.at("scope") == "same layers");
  REQUIRE(c.at("labels").at(1).at("z").is_null());  // -inf
  REQUIRE(c.at("labels").at(2).at("verdict") == "not testable");
  REQUIRE(c.at("labels").at(2).at("effect").is_null());
  REQUIRE(c.at("labels").at(3).at("possible_sets") == 1e30);

  const headlens::head_report back = headlens::report_from_json(nlohmann::json::parse(j.dump()));
  REQUIRE(back.causal.has_value());
  const auto& b = *back.causal;
  REQUIRE(b.seed == 3);
  REQUIRE(b.units == 2);
  REQUIRE(b.tokens == 16);
  REQUIRE(b.labels[0].heads == r.causal->labels[0].heads);
  REQUIRE(b.labels[0].random_effects == r.causal->labels[0].random_effects);
  REQUIRE(b.labels[0].p_value == r.causal->labels[0].p_value);
  REQUIRE(b.labels[1].verdict == headlens::causal_verdict::not_supported);
  REQUIRE(b.labels[1].exact);
  REQUIRE(b.labels[1].scope == headlens::random_scope::any_layer);
  REQUIRE(std::isnan(b.labels[1].z));  // an infinite z is written as null
  REQUIRE(b.labels[2].reason == r.causal->labels[2].reason);
  REQUIRE(std::isnan(b.labels[2].effect));
  nlohmann::json j2 = headlens::report_to_json(back);
  nlohmann::json j1 = j;
  REQUIRE(j2 == j1);

  nlohmann::json bad = j;
  bad["causal_check"]["labels"][1]["verdict"] = "maybe";
  REQUIRE_THROWS_WITH(
      headlens::report_from_json(bad),
      "headlens: causal_check JSON: labels[1].verdict is \"maybe\", expected supported, not supported or "
      "not testable");
  bad = j;
  bad["causal_check"]["labels"].erase(3);
  REQUIRE_THROWS_AS(headlens::report_from_json(bad), headlens::argument_error);
  bad = j;
  bad["causal_check"]["labels"][0]["label"] = "positional";
  REQUIRE_THROWS_WITH(headlens::report_from_json(bad),
                      "headlens: causal_check JSON: labels[0].label is \"positional\", expected \"syntactic\"");
  bad = j;
  bad["causal_check"]["labels"][0]["heads"][1]["head"] = -1;
  REQUIRE_THROWS_WITH(headlens::report_from_json(bad),
                      "headlens: causal_check JSON: labels[0].heads has {\"head\":-1,\"layer\":2}, expected "
                      "{\"layer\": integer, \"head\": integer} in [0, 1048576)");
  bad = j;
  bad["heads"][0]["layer"] = 2147483647;  // layer + 1 would overflow
  REQUIRE_THROWS_WITH(headlens::report_from_json(bad),
                      "headlens: head report entry: \"layer\" is 2147483647, expected an integer in [0, 1048576)");
  bad["heads"][0]["layer"] = -3;
  REQUIRE_THROWS_AS(headlens::report_from_json(bad), headlens::argument_error);
  bad = j;
  bad["causal_check"]["ablation"] = "resample";
  REQUIRE_THROWS_WITH(headlens::report_from_json(bad),
                      "headlens: causal_check JSON: unknown \"ablation\" \"resample\", expected zero or mean");
}

TEST_CASE("report: JSON follows the schema and round-trips") {
  std::vector<head_verdict> verdicts = six_layers();
  verdicts[0].evidence.push_back({"entropy", 0.9});  // no baseline: null
  const headlens::head_report r = headlens::make_report(verdicts, "heuristic");
  const nlohmann::json j = headlens::report_to_json(r);
  REQUIRE(j.at("schema") == "headlens.head_report");
  REQUIRE(j.at("version") == 1);
  REQUIRE(j.at("heads").size() == 12);
  const nlohmann::json& first = j.at("heads").at(0);
  REQUIRE(first.at("layer") == 0);
  REQUIRE(first.at("head") == 0);
  REQUIRE(first.at("label") == "positional");
  REQUIRE(first.at("scores").at("positional") == 0.5);
  REQUIRE(first.at("scores").at("syntactic").is_null());
  for (const auto& h : j.at("heads")) {
    REQUIRE(headlens::parse_head_label(h.at("label").get<std::string>()).has_value());
    REQUIRE(h.at("scores").size() == 4);
  }
  REQUIRE(j.at("summary").at("model").at("percent").at("positional") == Approx(25.0));
  REQUIRE(j.at("summary").at("bands").at(2).at("band") == "late");
  REQUIRE(j.at("summary").at("layers").size() == 6);
  // the last head of layer 5 was verdicts[0], with the baseline-free item
  REQUIRE(j.at("heads").at(11).at("evidence").at(1).at("baseline").is_null());

  const headlens::head_report back = headlens::report_from_json(nlohmann::json::parse(j.dump()));
  REQUIRE(back.policy == "heuristic");
  REQUIRE(back.heads.size() == 12);
  for (std::size_t i = 0; i < 12; ++i) {
    REQUIRE(back.heads[i].label == r.heads[i].label);
    for (head_label c : headlens::head_categories) {
      const double a = back.heads[i].score(c), b = r.heads[i].score(c);
      REQUIRE((std::isnan(a) ? std::isnan(b) : a == b));
    }
    REQUIRE(back.heads[i].evidence.size() == r.heads[i].evidence.size());
  }
  REQUIRE(report_to_json(back) == j);

  REQUIRE_THROWS_WITH(headlens::report_from_json(nlohmann::json::object()),
                      "headlens: head report JSON has no \"heads\" array");
  nlohmann::json bad = j;
  bad["heads"][0]["label"] = "semantic";
  REQUIRE_THROWS_WITH(headlens::report_from_json(bad), "headlens: head report entry: unknown \"label\" \"semantic\"");
  bad["heads"][0].erase("scores");
  REQUIRE_THROWS_WITH(headlens::report_from_json(bad), "headlens: head report entry has no \"scores\"");
}
#else
TEST_CASE("report: JSON") { WARN("nlohmann_json not found: report_json.hpp is not tested"); }
#endif

}  // namespace test_report
