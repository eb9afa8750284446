#pragma once
/// \file
/// JSON form of the feature accumulators (needs nlohmann_json), so that a corpus split across processes can be
/// reduced afterwards: each process saves its `model_feature_accumulator`, one loads them all and `merge`s.
/// The JSON holds the exact integer totals (`head_feature_totals`), so save -> load -> merge gives the same
/// result, bit for bit, as one process doing all the work.
///
/// Schema (`"format": "headlens.features"`, `"version": 2`; version 2 added the sink totals and measures entropy,
/// distance and cross-boundary masses on the free mass, so version 1 files are refused rather than misread):
/// ```
/// { "format": "headlens.features", "version": 2, "layers": L, "heads": H,
///   "options": { "row_sum_tolerance": 0.001, "causal": false, "sinks_apart": true },
///   "mass_scale": 4294967296, "distance_scale": 1048576,
///   "accumulators": [ { "layer": 0, "head": 0, "windows": ..., "rows": ..., "offset_mass": [17 integers], ...,
///                       "relations": [ { "relation": "nsubj",
///                                        "dependent_to_head": { "count": n, "correct": n, "at_offset": [17] },
///                                        "head_to_dependent": { ... } } ] }, ... ] }
/// ```
/// Every total of `head_feature_totals` appears under its own name; masses are integers in units of
/// 1 / mass_scale, distances in units of 1 / distance_scale.

#include <fstream>
#include <headlens/analysis/features.hpp>
#include <headlens/error.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace headlens {

/// The version of the features JSON this build writes and reads.
inline constexpr int features_json_version = 2;

inline void to_json(nlohmann::json& j, const relation_direction_totals& t) {
  j = nlohmann::json{{"count", t.count}, {"correct", t.correct}, {"at_offset", t.at_offset}};
}
inline void from_json(const nlohmann::json& j, relation_direction_totals& t) {
  j.at("count").get_to(t.count);
  j.at("correct").get_to(t.correct);
  j.at("at_offset").get_to(t.at_offset);
}

inline void to_json(nlohmann::json& j, const relation_totals& t) {
  j = nlohmann::json{
      {"relation", t.relation}, {"dependent_to_head", t.dependent_to_head}, {"head_to_dependent", t.head_to_dependent}};
}
inline void from_json(const nlohmann::json& j, relation_totals& t) {
  j.at("relation").get_to(t.relation);
  j.at("dependent_to_head").get_to(t.dependent_to_head);
  j.at("head_to_dependent").get_to(t.head_to_dependent);
}

inline void to_json(nlohmann::json& j, const head_feature_totals& t) {
  j = nlohmann::json{{"layer", t.layer},
                     {"head", t.head},
                     {"windows", t.windows},
                     {"annotated_windows", t.annotated_windows},
                     {"rows", t.rows},
                     {"offset_mass", t.offset_mass},
                     {"offset_rows", t.offset_rows},
                     {"argmax_at_offset", t.argmax_at_offset},
                     {"argmax_rows", t.argmax_rows},
                     {"sink_mass", t.sink_mass},
                     {"free_mass", t.free_mass},
                     {"entropy", t.entropy},
                     {"entropy_mass", t.entropy_mass},
                     {"distance", t.distance},
                     {"first_token_mass", t.first_token_mass},
                     {"first_token_rows", t.first_token_rows},
                     {"separator_mass", t.separator_mass},
                     {"punctuation_mass", t.punctuation_mass},
                     {"cross_sentence_mass", t.cross_sentence_mass},
                     {"cross_paragraph_mass", t.cross_paragraph_mass},
                     {"cross_unit_mass", t.cross_unit_mass},
                     {"unit_free_mass", t.unit_free_mass},
                     {"unit_rows", t.unit_rows},
                     {"units", t.units},
                     {"units_related_correct", t.units_related_correct},
                     {"units_chain_correct", t.units_chain_correct},
                     {"coreference_count", t.coreference_count},
                     {"coreference_correct", t.coreference_correct},
                     {"coreference_baseline_correct", t.coreference_baseline_correct},
                     {"relations", t.relations}};
}
inline void from_json(const nlohmann::json& j, head_feature_totals& t) {
  j.at("layer").get_to(t.layer);
  j.at("head").get_to(t.head);
  j.at("windows").get_to(t.windows);
  j.at("annotated_windows").get_to(t.annotated_windows);
  j.at("rows").get_to(t.rows);
  j.at("offset_mass").get_to(t.offset_mass);
  j.at("offset_rows").get_to(t.offset_rows);
  j.at("argmax_at_offset").get_to(t.argmax_at_offset);
  j.at("argmax_rows").get_to(t.argmax_rows);
  j.at("sink_mass").get_to(t.sink_mass);
  j.at("free_mass").get_to(t.free_mass);
  j.at("entropy").get_to(t.entropy);
  j.at("entropy_mass").get_to(t.entropy_mass);
  j.at("distance").get_to(t.distance);
  j.at("first_token_mass").get_to(t.first_token_mass);
  j.at("first_token_rows").get_to(t.first_token_rows);
  j.at("separator_mass").get_to(t.separator_mass);
  j.at("punctuation_mass").get_to(t.punctuation_mass);
  j.at("cross_sentence_mass").get_to(t.cross_sentence_mass);
  j.at("cross_paragraph_mass").get_to(t.cross_paragraph_mass);
  j.at("cross_unit_mass").get_to(t.cross_unit_mass);
  j.at("unit_free_mass").get_to(t.unit_free_mass);
  j.at("unit_rows").get_to(t.unit_rows);
  j.at("units").get_to(t.units);
  j.at("units_related_correct").get_to(t.units_related_correct);
  j.at("units_chain_correct").get_to(t.units_chain_correct);
  j.at("coreference_count").get_to(t.coreference_count);
  j.at("coreference_correct").get_to(t.coreference_correct);
  j.at("coreference_baseline_correct").get_to(t.coreference_baseline_correct);
  j.at("relations").get_to(t.relations);
  std::sort(t.relations.begin(), t.relations.end(),
            [](const relation_totals& a, const relation_totals& b) { return a.relation < b.relation; });
}

inline void to_json(nlohmann::json& j, const feature_options& o) {
  j = nlohmann::json{{"row_sum_tolerance", o.row_sum_tolerance}, {"causal", o.causal}, {"sinks_apart", o.sinks_apart}};
}
inline void from_json(const nlohmann::json& j, feature_options& o) {
  j.at("row_sum_tolerance").get_to(o.row_sum_tolerance);
  j.at("causal").get_to(o.causal);
  j.at("sinks_apart").get_to(o.sinks_apart);
}

/// The JSON form of a model's accumulators (see the schema in the file comment).
inline nlohmann::json features_to_json(const model_feature_accumulator& acc) {
  nlohmann::json heads = nlohmann::json::array();
  for (const head_feature_accumulator& h : acc.accumulators()) heads.push_back(h.totals());
  return nlohmann::json{{"format", "headlens.features"},
                        {"version", features_json_version},
                        {"layers", acc.layers()},
                        {"heads", acc.heads()},
                        {"options", acc.options()},
                        {"mass_scale", detail::feature_mass_scale},
                        {"distance_scale", detail::feature_distance_scale},
                        {"accumulators", heads}};
}

/// Reads a model's accumulators back from `features_to_json`'s form. Throws `format_error` (naming `source` and
/// what was wrong) for another format or version, a missing or mistyped field, or accumulators that do not
/// cover the layers x heads grid once each in layer-major order.
inline model_feature_accumulator features_from_json(const nlohmann::json& j, const std::string& source = "<json>") {
  auto bad = [&](const std::string& what) { return format_error(source, 0, 0, "headlens: " + source + ": " + what); };
  try {
    if (!j.is_object() || j.value("format", std::string()) != "headlens.features") {
      throw bad("not a headlens features file (expected \"format\": \"headlens.features\")");
    }
    const int version = j.at("version").get<int>();
    if (version != features_json_version) {
      throw bad("features version " + std::to_string(version) + ", expected " + std::to_string(features_json_version));
    }
    if (j.at("mass_scale").get<double>() != detail::feature_mass_scale ||
        j.at("distance_scale").get<double>() != detail::feature_distance_scale) {
      throw bad("fixed-point scales differ from this build's");
    }
    const int layers = j.at("layers").get<int>();
    const int heads = j.at("heads").get<int>();
    if (layers < 1 || heads < 1) throw bad("layers and heads must be >= 1");
    const feature_options options = j.at("options").get<feature_options>();
    model_feature_accumulator acc(layers, heads, options);
    const nlohmann::json& list = j.at("accumulators");
    if (!list.is_array() || list.size() != static_cast<std::size_t>(layers) * static_cast<std::size_t>(heads)) {
      throw bad("\"accumulators\" must hold layers x heads = " + std::to_string(layers * heads) + " entries");
    }
    std::size_t k = 0;
    for (int l = 0; l < layers; ++l) {
      for (int h = 0; h < heads; ++h, ++k) {
        head_feature_totals t = list[k].get<head_feature_totals>();
        if (t.layer != l || t.head != h) {
          throw bad("accumulator " + std::to_string(k) + " is for layer " + std::to_string(t.layer) + " head " +
                    std::to_string(t.head) + ", expected layer " + std::to_string(l) + " head " + std::to_string(h));
        }
        acc.head(l, h) = head_feature_accumulator(std::move(t), options);
      }
    }
    return acc;
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("malformed features JSON: ") + e.what());
  }
}

/// Writes a model's accumulators to a JSON file. Throws `io_error` when the file cannot be written.
inline void save_features(const std::string& path, const model_feature_accumulator& acc) {
  std::ofstream out(path, std::ios::binary);
  if (!out) detail::fail<io_error>("cannot open ", path, " for writing");
  out << features_to_json(acc).dump() << '\n';
  if (!out) detail::fail<io_error>("cannot write ", path);
}

/// Reads a model's accumulators from a JSON file written by `save_features`. Throws `io_error` when the file
/// cannot be read and `format_error` when it is not valid (see `features_from_json`).
inline model_feature_accumulator load_features(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail<io_error>("cannot open ", path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw format_error(path, 0, 0, "headlens: " + path + ": not valid JSON: " + e.what());
  }
  return features_from_json(j, path);
}

}  // namespace headlens
