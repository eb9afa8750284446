// Reports from hand-made verdicts: counts, percentages and bands worked out by hand, and every output format.
#include <catch2/catch.hpp>

#include <cmath>
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

#ifdef HEADLENS_TEST_JSON
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
