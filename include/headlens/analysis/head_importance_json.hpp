#pragma once
/// \file
/// JSON for head importance (needs nlohmann_json; the rest of headlens does not), written and read back exactly
/// (numbers are written with enough digits to round-trip; non-finite ones as `null`). Schema
/// (`"schema": "headlens.head_importance"`, `"version": 1`, described in docs/head-importance.md):
/// ```
/// { "schema": "headlens.head_importance", "version": 1, "model": "...", "corpus": "...", "context": "...",
///   "heads_per_layer": [4, 4], "documents": [0, 1, ...], "sequences": 120, "tokens": 2811,
///   "interval": "student-t over per-document means",
///   "clean": {"mean": 3.2, "sd": 0.4, "low": 3.0, "high": 3.4, "documents": 12, "level": 0.95},
///   "clean_per_document": [...],
///   "kinds": [ { "kind": "zero",
///                "stability": {"rho": 0.81, "threshold": 0.5, "stable": true, "first_half": 6, "second_half": 6,
///                              "note": "stable: ..."},
///                "heads": [ {"layer": 0, "head": 0, "rank": 3, "change": {...as clean...},
///                            "per_document": [...]}, ... ] }, ... ] }
/// ```

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "headlens/analysis/head_importance.hpp"
#include "headlens/error.hpp"

namespace headlens {

/// The version of the head importance JSON this build writes and reads.
inline constexpr int head_importance_json_version = 1;

namespace detail {

inline nlohmann::json importance_json_number(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

inline nlohmann::json interval_to_json(const document_interval& i) {
  return {{"mean", importance_json_number(i.mean)}, {"sd", importance_json_number(i.sd)},
          {"low", importance_json_number(i.low)},   {"high", importance_json_number(i.high)},
          {"documents", i.documents},               {"level", i.level}};
}

/// Reads JSON values with errors that name the field's path.
struct importance_json_reader {
  const nlohmann::json& at(const nlohmann::json& in, const char* key, const std::string& path) const {
    if (!in.is_object() || !in.contains(key)) {
      detail::fail<argument_error>("head importance JSON: ", path, " has no \"", key, "\"");
    }
    return in.at(key);
  }
  double number(const nlohmann::json& in, const char* key, const std::string& path) const {
    const nlohmann::json& v = at(in, key, path);
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number()) bad(path, key, v, "a number or null");
    return v.get<double>();
  }
  /// An integer that fits `Int` (a count or index: `Int` unsigned refuses negative values).
  template <class Int>
  Int integer_value(const nlohmann::json& v, const std::string& path, const std::string& key) const {
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() || v.get<std::int64_t>() >= 0) {
        const auto u = v.get<std::uint64_t>();
        if (u <= static_cast<std::uint64_t>(std::numeric_limits<Int>::max())) return static_cast<Int>(u);
      } else if (std::is_signed<Int>::value &&
                 v.get<std::int64_t>() >= static_cast<std::int64_t>(std::numeric_limits<Int>::min())) {
        return static_cast<Int>(v.get<std::int64_t>());
      }
    }
    bad(path, key.c_str(), v, std::is_unsigned<Int>::value ? "a non-negative integer" : "an integer in range");
  }
  template <class Int>
  Int integer(const nlohmann::json& in, const char* key, const std::string& path) const {
    return integer_value<Int>(at(in, key, path), path, key);
  }
  std::string text(const nlohmann::json& in, const char* key, const std::string& path) const {
    const nlohmann::json& v = at(in, key, path);
    if (!v.is_string()) bad(path, key, v, "a string");
    return v.get<std::string>();
  }
  bool flag(const nlohmann::json& in, const char* key, const std::string& path) const {
    const nlohmann::json& v = at(in, key, path);
    if (!v.is_boolean()) bad(path, key, v, "true or false");
    return v.get<bool>();
  }
  const nlohmann::json& array(const nlohmann::json& in, const char* key, const std::string& path) const {
    const nlohmann::json& v = at(in, key, path);
    if (!v.is_array()) bad(path, key, v, "an array");
    return v;
  }
  std::vector<double> numbers(const nlohmann::json& in, const char* key, const std::string& path) const {
    std::vector<double> out;
    const nlohmann::json& v = array(in, key, path);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i].is_null()) {
        out.push_back(std::numeric_limits<double>::quiet_NaN());
      } else if (v[i].is_number()) {
        out.push_back(v[i].get<double>());
      } else {
        bad(path, (std::string(key) + "[" + std::to_string(i) + "]").c_str(), v[i], "a number or null");
      }
    }
    return out;
  }
  document_interval interval(const nlohmann::json& in, const std::string& path) const {
    document_interval i;
    i.mean = number(in, "mean", path);
    i.sd = number(in, "sd", path);
    i.low = number(in, "low", path);
    i.high = number(in, "high", path);
    i.documents = integer<std::size_t>(in, "documents", path);
    i.level = number(in, "level", path);
    return i;
  }
  [[noreturn]] void bad(const std::string& path, const char* key, const nlohmann::json& v,
                        const char* expected) const {
    std::string shown = v.dump();
    if (shown.size() > 40) shown = shown.substr(0, 37) + "...";
    detail::fail<argument_error>("head importance JSON: ", path, ".", key, " is ", shown, ", expected ", expected);
  }
};

}  // namespace detail

/// The result as JSON (see the file comment). `per_document`: whether to write each head's per-document changes
/// (the bulk of the file on a large corpus).
inline nlohmann::json head_importance_to_json(const head_importance_result& r, bool per_document = true) {
  nlohmann::json out;
  out["schema"] = "headlens.head_importance";
  out["version"] = head_importance_json_version;
  out["model"] = r.model;
  out["corpus"] = r.corpus;
  out["context"] = r.context;
  out["heads_per_layer"] = r.heads_per_layer;
  out["documents"] = r.documents;
  out["sequences"] = r.sequences;
  out["tokens"] = r.tokens;
  out["interval"] = "student-t over per-document means";
  out["clean"] = detail::interval_to_json(r.clean);
  nlohmann::json clean = nlohmann::json::array();
  for (double v : r.clean_per_document) clean.push_back(detail::importance_json_number(v));
  out["clean_per_document"] = clean;
  nlohmann::json kinds = nlohmann::json::array();
  for (const importance_of_kind& k : r.kinds) {
    nlohmann::json kind;
    kind["kind"] = to_string(k.kind);
    kind["stability"] = {{"rho", detail::importance_json_number(k.stability.rho)},
                         {"threshold", k.stability.threshold},
                         {"stable", k.stability.stable},
                         {"first_half", k.stability.first_half},
                         {"second_half", k.stability.second_half},
                         {"note", k.stability.note}};
    nlohmann::json heads = nlohmann::json::array();
    for (const head_importance& h : k.heads) {
      nlohmann::json e;
      e["layer"] = h.head.layer;
      e["head"] = h.head.head;
      e["rank"] = h.rank;
      e["change"] = detail::interval_to_json(h.change);
      if (per_document) {
        nlohmann::json values = nlohmann::json::array();
        for (double v : h.per_document) values.push_back(detail::importance_json_number(v));
        e["per_document"] = values;
      }
      heads.push_back(e);
    }
    kind["heads"] = heads;
    kinds.push_back(kind);
  }
  out["kinds"] = kinds;
  return out;
}

/// The result written by `head_importance_to_json` (per-document values may be absent: then empty). Throws
/// `argument_error` naming the field when the schema or version differ, a field is missing or has the wrong type,
/// a kind is unknown, or a head lies outside `heads_per_layer`.
inline head_importance_result head_importance_from_json(const nlohmann::json& in) {
  const detail::importance_json_reader read;
  const std::string schema = read.text(in, "schema", "document");
  if (schema != "headlens.head_importance") {
    detail::fail<argument_error>("head importance JSON: schema is \"", schema,
                                 "\", expected \"headlens.head_importance\"");
  }
  const int version = read.integer<int>(in, "version", "document");
  if (version != head_importance_json_version) {
    detail::fail<argument_error>("head importance JSON: version is ", version, ", expected ",
                                 head_importance_json_version);
  }
  head_importance_result r;
  r.model = read.text(in, "model", "document");
  r.corpus = read.text(in, "corpus", "document");
  r.context = read.text(in, "context", "document");
  const nlohmann::json& shape = read.array(in, "heads_per_layer", "document");
  for (std::size_t l = 0; l < shape.size(); ++l) {
    const int n = read.integer_value<int>(shape[l], "document", "heads_per_layer[" + std::to_string(l) + "]");
    if (n < 0) read.bad("document", ("heads_per_layer[" + std::to_string(l) + "]").c_str(), shape[l], "a count");
    r.heads_per_layer.push_back(n);
  }
  const nlohmann::json& documents = read.array(in, "documents", "document");
  for (std::size_t d = 0; d < documents.size(); ++d) {
    r.documents.push_back(
        read.integer_value<std::size_t>(documents[d], "document", "documents[" + std::to_string(d) + "]"));
  }
  r.sequences = read.integer<std::size_t>(in, "sequences", "document");
  r.tokens = read.integer<std::size_t>(in, "tokens", "document");
  r.clean = read.interval(read.at(in, "clean", "document"), "clean");
  r.clean_per_document = read.numbers(in, "clean_per_document", "document");
  const nlohmann::json& kinds = read.array(in, "kinds", "document");
  for (std::size_t c = 0; c < kinds.size(); ++c) {
    const std::string path = "kinds[" + std::to_string(c) + "]";
    importance_of_kind k;
    const std::string kind = read.text(kinds[c], "kind", path);
    if (kind != "zero" && kind != "mean") read.bad(path, "kind", kinds[c].at("kind"), "\"zero\" or \"mean\"");
    k.kind = kind == "zero" ? ablation::zero : ablation::mean;
    const nlohmann::json& s = read.at(kinds[c], "stability", path);
    const std::string spath = path + ".stability";
    k.stability.rho = read.number(s, "rho", spath);
    k.stability.threshold = read.number(s, "threshold", spath);
    k.stability.stable = read.flag(s, "stable", spath);
    k.stability.first_half = read.integer<std::size_t>(s, "first_half", spath);
    k.stability.second_half = read.integer<std::size_t>(s, "second_half", spath);
    k.stability.note = read.text(s, "note", spath);
    const nlohmann::json& heads = read.array(kinds[c], "heads", path);
    for (std::size_t i = 0; i < heads.size(); ++i) {
      const std::string hpath = path + ".heads[" + std::to_string(i) + "]";
      head_importance h;
      h.head.layer = read.integer<int>(heads[i], "layer", hpath);
      h.head.head = read.integer<int>(heads[i], "head", hpath);
      const auto layers = static_cast<int>(r.heads_per_layer.size());
      if (h.head.layer < 0 || h.head.layer >= layers) {
        read.bad(hpath, "layer", heads[i].at("layer"), ("a layer in [0, " + std::to_string(layers) + ")").c_str());
      }
      const int n = r.heads_per_layer[std::size_t(h.head.layer)];
      if (h.head.head < 0 || h.head.head >= n) {
        read.bad(hpath, "head", heads[i].at("head"), ("a head in [0, " + std::to_string(n) + ")").c_str());
      }
      h.rank = read.integer<std::size_t>(heads[i], "rank", hpath);
      h.change = read.interval(read.at(heads[i], "change", hpath), hpath + ".change");
      if (heads[i].contains("per_document")) h.per_document = read.numbers(heads[i], "per_document", hpath);
      k.heads.push_back(std::move(h));
    }
    r.kinds.push_back(std::move(k));
  }
  return r;
}

/// Writes `head_importance_to_json(r)` to `out`, indented by `indent` spaces (-1: one line), and a newline.
inline void write_json(std::ostream& out, const head_importance_result& r, int indent = 2) {
  out << head_importance_to_json(r).dump(indent) << "\n";
}

}  // namespace headlens
