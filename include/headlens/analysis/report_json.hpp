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
/// Non-finite numbers (a NaN score: no evidence) are written as `null`. A report with a causal check
/// (`head_report::causal`) has a `causal_check` object too (see `causal_check_to_json` and `docs/causal-check.md`);
/// without one, the key is absent.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "headlens/analysis/causal_check_result.hpp"
#include "headlens/analysis/report.hpp"
#include "headlens/analysis/verdict.hpp"
#include "headlens/analysis/verdict_json.hpp"
#include "headlens/error.hpp"

namespace headlens {

namespace detail {

/// Layer and head indices a report file may hold: [0, 2^20).
inline constexpr std::int64_t report_max_index = std::int64_t(1) << 20;

/// Whether `n` is an integer in [0, report_max_index).
inline bool report_index_ok(const nlohmann::json& n) {
  if (!n.is_number_integer()) return false;
  if (n.is_number_unsigned()) return n.get<std::uint64_t>() < static_cast<std::uint64_t>(report_max_index);
  return n.get<std::int64_t>() >= 0 && n.get<std::int64_t>() < report_max_index;
}

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
/// `argument_error` naming the field when one is missing or has the wrong type, `layer` or `head` is outside
/// [0, 2^20), or the label is unknown.
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
  // Bounded so that counts built from them (layer + 1, loops over layers) cannot overflow or run for ever.
  for (const char* key : {"layer", "head"}) {
    if (!detail::report_index_ok(in.at(key))) {
      throw argument_error("headlens: head report entry: \"" + std::string(key) + "\" is " + in.at(key).dump() +
                           ", expected an integer in [0, " + std::to_string(detail::report_max_index) + ")");
    }
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

/// The causal check as JSON (`docs/causal-check.md`):
///
///     {"ablation": "zero", "random_sets": 50, "seed": 1, "alpha": 0.05, "units": 120, "tokens": 2841,
///      "labels": [{"label": "syntactic", "heads": [{"layer": 0, "head": 1}], "verdict": "supported", "reason": "",
///                  "phenomenon_tokens": 1710, "other_tokens": 1131, "phenomenon_change": 0.31, "other_change": 0.12,
///                  "effect": 0.19, "scope": "same layers", "possible_sets": 1.2e10, "exact": false,
///                  "random_effects": [0.01, ...], "random_mean": 0.02, "random_sd": 0.03, "z": 5.6,
///                  "random_at_least": 0, "p_value": 0.0196}, ...]}
///
/// One entry per category, in `head_categories` order; numbers that were not measured (and an infinite z) are
/// `null`.
inline nlohmann::json causal_check_to_json(const causal_check_result& c) {
  nlohmann::json out;
  out["ablation"] = to_string(c.kind);
  out["random_sets"] = c.random_sets;
  out["seed"] = c.seed;
  out["alpha"] = c.alpha;
  out["units"] = c.units;
  out["tokens"] = c.tokens;
  nlohmann::json labels = nlohmann::json::array();
  for (const label_causal_check& l : c.labels) {
    nlohmann::json x;
    x["label"] = std::string(to_string(l.label));
    nlohmann::json heads = nlohmann::json::array();
    for (const head_ref& h : l.heads) heads.push_back({{"layer", h.layer}, {"head", h.head}});
    x["heads"] = heads;
    x["verdict"] = std::string(to_string(l.verdict));
    x["reason"] = l.reason;
    x["phenomenon_tokens"] = l.phenomenon_tokens;
    x["other_tokens"] = l.other_tokens;
    x["phenomenon_change"] = detail::report_json_number(l.phenomenon_change);
    x["other_change"] = detail::report_json_number(l.other_change);
    x["effect"] = detail::report_json_number(l.effect);
    x["scope"] = std::string(to_string(l.scope));
    x["possible_sets"] = detail::report_json_number(l.possible_sets);
    x["exact"] = l.exact;
    nlohmann::json effects = nlohmann::json::array();
    for (double e : l.random_effects) effects.push_back(detail::report_json_number(e));
    x["random_effects"] = effects;
    x["random_mean"] = detail::report_json_number(l.random_mean);
    x["random_sd"] = detail::report_json_number(l.random_sd);
    x["z"] = detail::report_json_number(l.z);
    x["random_at_least"] = l.random_at_least;
    x["p_value"] = detail::report_json_number(l.p_value);
    labels.push_back(x);
  }
  out["labels"] = labels;
  return out;
}

/// The causal check written by `causal_check_to_json`. Throws `argument_error` naming the field when `labels` is
/// not an array of the four categories, or an entry's `label`, `verdict`, `scope` or `ablation` is unknown; other
/// fields are optional (NaN or 0 when absent).
inline causal_check_result causal_check_from_json(const nlohmann::json& in) {
  if (!in.is_object() || !in.contains("labels") || !in.at("labels").is_array() ||
      in.at("labels").size() != head_category_count) {
    throw argument_error("headlens: causal_check JSON: \"labels\" must be an array of 4 entries, one per category");
  }
  causal_check_result c;
  auto text = [](const nlohmann::json& j, const char* key) {
    return j.contains(key) && j.at(key).is_string() ? j.at(key).get<std::string>() : std::string();
  };
  auto number = [](const nlohmann::json& j, const char* key) {
    return j.contains(key) ? detail::report_number_from_json(j.at(key)) : std::numeric_limits<double>::quiet_NaN();
  };
  auto count = [](const nlohmann::json& j, const char* key) -> std::int64_t {
    return j.contains(key) && j.at(key).is_number_integer() ? j.at(key).get<std::int64_t>() : 0;
  };
  const std::string kind = text(in, "ablation");
  if (kind != "zero" && kind != "mean") {
    throw argument_error("headlens: causal_check JSON: unknown \"ablation\" \"" + kind + "\", expected zero or mean");
  }
  c.kind = kind == "zero" ? ablation::zero : ablation::mean;
  c.random_sets = static_cast<std::size_t>(count(in, "random_sets"));
  if (in.contains("seed") && in.at("seed").is_number_unsigned()) c.seed = in.at("seed").get<std::uint64_t>();
  c.alpha = number(in, "alpha");
  c.units = static_cast<std::size_t>(count(in, "units"));
  c.tokens = count(in, "tokens");
  for (std::size_t i = 0; i < head_category_count; ++i) {
    const nlohmann::json& x = in.at("labels").at(i);
    label_causal_check& l = c.labels[i];
    const std::string name = text(x, "label");
    if (name != to_string(head_categories[i])) {
      throw argument_error("headlens: causal_check JSON: labels[" + std::to_string(i) + "].label is \"" + name +
                           "\", expected \"" + std::string(to_string(head_categories[i])) + "\"");
    }
    l.label = head_categories[i];
    if (x.contains("heads") && x.at("heads").is_array()) {
      for (const nlohmann::json& h : x.at("heads")) {
        if (!h.is_object() || !h.contains("layer") || !h.contains("head") || !detail::report_index_ok(h.at("layer")) ||
            !detail::report_index_ok(h.at("head"))) {
          throw argument_error("headlens: causal_check JSON: labels[" + std::to_string(i) + "].heads has " + h.dump() +
                               ", expected {\"layer\": integer, \"head\": integer} in [0, " +
                               std::to_string(detail::report_max_index) + ")");
        }
        l.heads.push_back({h.at("layer").get<int>(), h.at("head").get<int>()});
      }
    }
    const std::string verdict = text(x, "verdict");
    bool known = false;
    for (causal_verdict v : {causal_verdict::supported, causal_verdict::not_supported, causal_verdict::not_testable}) {
      if (verdict == to_string(v)) {
        l.verdict = v;
        known = true;
      }
    }
    if (!known) {
      throw argument_error("headlens: causal_check JSON: labels[" + std::to_string(i) + "].verdict is \"" + verdict +
                           "\", expected supported, not supported or not testable");
    }
    const std::string scope = text(x, "scope");
    known = false;
    for (random_scope s : {random_scope::none, random_scope::same_layers, random_scope::any_layer}) {
      if (scope == to_string(s)) {
        l.scope = s;
        known = true;
      }
    }
    if (!known) {
      throw argument_error("headlens: causal_check JSON: labels[" + std::to_string(i) + "].scope is \"" + scope +
                           "\", expected none, same layers or any layer");
    }
    l.reason = text(x, "reason");
    l.phenomenon_tokens = count(x, "phenomenon_tokens");
    l.other_tokens = count(x, "other_tokens");
    l.phenomenon_change = number(x, "phenomenon_change");
    l.other_change = number(x, "other_change");
    l.effect = number(x, "effect");
    l.possible_sets = x.contains("possible_sets") ? number(x, "possible_sets") : 0.0;
    l.exact = x.contains("exact") && x.at("exact").is_boolean() && x.at("exact").get<bool>();
    if (x.contains("random_effects") && x.at("random_effects").is_array()) {
      for (const nlohmann::json& e : x.at("random_effects"))
        l.random_effects.push_back(detail::report_number_from_json(e));
    }
    l.random_mean = number(x, "random_mean");
    l.random_sd = number(x, "random_sd");
    l.z = number(x, "z");
    l.random_at_least = static_cast<std::size_t>(count(x, "random_at_least"));
    l.p_value = number(x, "p_value");
  }
  return c;
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
  if (report.causal) out["causal_check"] = causal_check_to_json(*report.causal);
  return out;
}

/// Rebuilds a report from `report_to_json`'s output (the summary is recomputed from the heads; a `causal_check`
/// object is read back). Throws `argument_error` when `heads` is missing or an entry is malformed (see
/// `verdict_from_json`, `causal_check_from_json`).
inline head_report report_from_json(const nlohmann::json& in) {
  if (!in.is_object() || !in.contains("heads") || !in.at("heads").is_array()) {
    throw argument_error("headlens: head report JSON has no \"heads\" array");
  }
  std::vector<head_verdict> verdicts;
  for (const nlohmann::json& h : in.at("heads")) verdicts.push_back(verdict_from_json(h));
  std::string policy;
  if (in.contains("policy") && in.at("policy").is_string()) policy = in.at("policy").get<std::string>();
  head_report report = make_report(std::move(verdicts), policy);
  if (in.contains("causal_check")) report.causal = causal_check_from_json(in.at("causal_check"));
  return report;
}

/// Writes `report_to_json(report)` to `out`, indented by `indent` spaces (-1: one line), and a newline.
inline void write_json(std::ostream& out, const head_report& report, int indent = 2) {
  out << report_to_json(report).dump(indent) << "\n";
}

}  // namespace headlens
