#pragma once
/// \file
/// A pruning plan (analysis/pruning_plan.hpp) as JSON, for reports, head cards and the command line. Needs
/// nlohmann_json.
///
///   {"ablation": "zero", "weighting": "sequence_mean", "remeasure_every": 1, "clean_loss": 3.21,
///    "evaluations": 1034, "stopped_by": "loss_budget", "heads": 144, "heads_pruned": 20, "share": 0.139,
///    "heads_per_layer": [12, ...], "pruned": ["3.4", "0.7", ...],          (in the order they were pruned)
///    "curve": [{"heads_pruned": 0, "head": null, "loss": 3.21, "loss_change": 0, "relative_change": 0,
///               "measured": false}, {"heads_pruned": 1, "head": "3.4", ...}, ...]}
/// A relative change that is not defined (a clean loss of 0) is null.

#include <cmath>
#include <nlohmann/json.hpp>

#include "headlens/analysis/pruning_plan.hpp"

namespace headlens {

/// The plan as JSON (see the file comment).
inline nlohmann::json to_json(const pruning_plan& plan) {
  nlohmann::json j;
  j["ablation"] = to_string(plan.kind);
  j["weighting"] = to_string(plan.weighting);
  j["remeasure_every"] = plan.remeasure_every;
  j["clean_loss"] = plan.clean_loss;
  j["evaluations"] = plan.evaluations;
  j["stopped_by"] = plan.stopped_by;
  j["heads"] = plan.pruned.total_heads();
  j["heads_pruned"] = plan.pruned.size();
  j["share"] = plan.share();
  j["heads_per_layer"] = plan.pruned.heads_per_layer();
  nlohmann::json order = nlohmann::json::array();
  for (const head_ref& h : plan.order) order.push_back(to_string(h));
  j["pruned"] = order;
  nlohmann::json curve = nlohmann::json::array();
  for (const pruning_step& s : plan.curve) {
    nlohmann::json p;
    p["heads_pruned"] = s.heads_pruned;
    p["head"] = s.heads_pruned == 0 ? nlohmann::json() : nlohmann::json(to_string(s.head));
    p["loss"] = s.loss;
    p["loss_change"] = s.loss_change;
    p["relative_change"] = std::isfinite(s.relative_change) ? nlohmann::json(s.relative_change) : nlohmann::json();
    p["measured"] = s.measured;
    curve.push_back(p);
  }
  j["curve"] = curve;
  return j;
}

}  // namespace headlens
