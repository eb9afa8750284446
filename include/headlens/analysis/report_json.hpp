#pragma once
/// \file
/// JSON for head reports (needs nlohmann_json; the rest of headlens does not). The schema is documented in
/// `docs/report-schema.md`; in short:
///
///     {"schema": "headlens.head_report", "version": 1, "policy": "annotated", "layer_count": 12,
///      "heads": [{"layer": 0, "head": 0, "label": "positional",
///                 "scores": {"syntactic": -0.05, "coreference": null, "discourse": -0.4, "positional": 0.07},
///                 "confidence": 0.78, "reason": "",
///                 "evidence": [{"name": "argmax share at offset -1", "value": 0.97, "baseline": 0.9}]}, ...],
///      "summary": {"model": {...}, "bands": [...], "layers": [...]}}
///
/// Non-finite numbers (a NaN score: no evidence) are written as `null`.

#include <cmath>
#include <cstddef>
#include <iomanip>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "headlens/analysis/report.hpp"
#include "headlens/analysis/verdict.hpp"
#include "headlens/analysis/verdict_json.hpp"
#include "headlens/error.hpp"

namespace headlens {

namespace detail {

inline nlohmann::json report_json_number(double value) {
  if (!std::isfinite(value)) return nullptr;
  return value;
}

inline double report_number_from_json(const nlohmann::json& value) {
  return value.is_number() ? value.get<double>() : std::numeric_limits<double>::quiet_NaN();
}

inline nlohmann::json label_counts_to_json(const label_counts& counts) {
  nlohmann::json out;
  out["heads"] = counts.total();
  nlohmann::json n = nlohmann::json::object();
  nlohmann::json percent = nlohmann::json::object();
  for (head_label label : head_labels) {
    n[std::string(to_string(label))] = counts.of(label);
    percent[std::string(to_string(label))] = counts.percent(label);
  }
  out["counts"] = n;
  out["percent"] = percent;
  return out;
}

}  // namespace detail

/// One verdict as a JSON object: the text of `verdict_json` (analysis/verdict_json.hpp, the one writer that the
/// HTML page uses too), parsed. Its numbers read back exactly.
inline nlohmann::json verdict_to_json(const head_verdict& v) { return nlohmann::json::parse(verdict_json(v)); }

/// The verdict written by `verdict_to_json`. Only `layer`, `head`, `label` and `scores` are required; throws
/// `argument_error` naming the field when one is missing or has the wrong type, or the label is unknown.
inline head_verdict verdict_from_json(const nlohmann::json& in) {
  auto need = [&in](const char* key) -> const nlohmann::json& {
    if (!in.is_object() || !in.contains(key)) {
      throw argument_error(std::string("headlens: head report entry has no \"") + key + "\"");
    }
    return in.at(key);
  };
  head_verdict v;
  const nlohmann::json& layer = need("layer");
  const nlohmann::json& head = need("head");
  const nlohmann::json& label = need("label");
  const nlohmann::json& scores = need("scores");
  if (!layer.is_number_integer() || !head.is_number_integer()) {
    throw argument_error("headlens: head report entry: \"layer\" and \"head\" must be integers");
  }
  v.layer = layer.get<int>();
  v.head = head.get<int>();
  const auto parsed = label.is_string() ? parse_head_label(label.get<std::string>()) : std::nullopt;
  if (!parsed) throw argument_error("headlens: head report entry: unknown \"label\" " + label.dump());
  v.label = *parsed;
  if (!scores.is_object()) throw argument_error("headlens: head report entry: \"scores\" must be an object");
  for (head_label c : head_categories) {
    const std::string name(to_string(c));
    v.set_score(c, scores.contains(name) ? detail::report_number_from_json(scores.at(name))
                                         : std::numeric_limits<double>::quiet_NaN());
  }
  if (in.contains("confidence")) v.confidence = detail::report_number_from_json(in.at("confidence"));
  if (in.contains("reason") && in.at("reason").is_string()) v.reason = in.at("reason").get<std::string>();
  if (in.contains("evidence") && in.at("evidence").is_array()) {
    for (const nlohmann::json& e : in.at("evidence")) {
      evidence_item item;
      if (e.contains("name") && e.at("name").is_string()) item.name = e.at("name").get<std::string>();
      if (e.contains("value")) item.value = detail::report_number_from_json(e.at("value"));
      if (e.contains("baseline")) item.baseline = detail::report_number_from_json(e.at("baseline"));
      v.evidence.push_back(std::move(item));
    }
  }
  return v;
}

/// The whole report as JSON (schema in `docs/report-schema.md`).
inline nlohmann::json report_to_json(const head_report& report) {
  nlohmann::json out;
  out["schema"] = "headlens.head_report";
  out["version"] = 1;
  out["policy"] = report.policy;
  out["layer_count"] = report.layer_count;
  nlohmann::json heads = nlohmann::json::array();
  for (const head_verdict& v : report.heads) heads.push_back(verdict_to_json(v));
  out["heads"] = heads;
  nlohmann::json summary;
  summary["model"] = detail::label_counts_to_json(report.model);
  nlohmann::json bands = nlohmann::json::array();
  for (const band_summary& band : report.bands) {
    nlohmann::json b = detail::label_counts_to_json(band.counts);
    b["band"] = band.name;
    b["first_layer"] = band.first_layer;
    b["last_layer"] = band.last_layer;
    bands.push_back(b);
  }
  summary["bands"] = bands;
  nlohmann::json layers = nlohmann::json::array();
  for (const layer_summary& layer : report.layers) {
    nlohmann::json l = detail::label_counts_to_json(layer.counts);
    l["layer"] = layer.layer;
    layers.push_back(l);
  }
  summary["layers"] = layers;
  out["summary"] = summary;
  return out;
}

/// Rebuilds a report from `report_to_json`'s output (the summary is recomputed from the heads). Throws
/// `argument_error` when `heads` is missing or an entry is malformed (see `verdict_from_json`).
inline head_report report_from_json(const nlohmann::json& in) {
  if (!in.is_object() || !in.contains("heads") || !in.at("heads").is_array()) {
    throw argument_error("headlens: head report JSON has no \"heads\" array");
  }
  std::vector<head_verdict> verdicts;
  for (const nlohmann::json& h : in.at("heads")) verdicts.push_back(verdict_from_json(h));
  std::string policy;
  if (in.contains("policy") && in.at("policy").is_string()) policy = in.at("policy").get<std::string>();
  return make_report(std::move(verdicts), policy);
}

/// Writes `report_to_json(report)` to `out`, indented by `indent` spaces (-1: one line), and a newline.
inline void write_json(std::ostream& out, const head_report& report, int indent = 2) {
  out << report_to_json(report).dump(indent) << "\n";
}

}  // namespace headlens
