#pragma once
/// \file
/// Head cards (analysis/head_card.hpp) as JSON, written and read back (needs nlohmann_json). The format is
/// documented in `docs/head-cards.md`, its JSON Schema (draft 2020-12) is `docs/head-card.schema.json`:
///
///     {"format": "headlens.head-card", "version": "1.0",
///      "model": {"name": "gpt2", "description": "...", "layers": 12, "heads_per_layer": [12, ...], "causal": true},
///      "provenance": {"files": [{"role": "model", "path": "...", "sha256": "...", "bytes": 123}], "policy": {...},
///                     "analysis": {"context": "window", ...}, "headlens_version": "0.1.0", "created": "...Z"},
///      "summary": {...},                       // derived: written for readers, recomputed when read
///      "importance": {...}, "causal_checks": [...], "sparsity": {...}, "matches": [...], "pruning": {...},  // optional
///      "heads": [{"layer": 0, "head": 0, "label": "positional", "scores": {...}, "confidence": 0.9, "reason": "",
///                 "evidence": [...], "importance": {...}, "sparsity": {...}, "matches": [...], "pruning": {...}}]}
///
/// Writing is exact: every double is written as the shortest text that reads back as the same value, so
/// `read(write(card))` writes the same text again. Non-finite numbers (NaN: not measured) are written as `null`
/// and read back as NaN (an infinity reads back as NaN too).
///
/// Reading validates and throws `format_error` naming the file, the JSON path (a JSON Pointer, `/heads/3/layer`) and
/// the offending value: malformed JSON (with its byte offset), another format, a version whose major is not 1, a
/// missing required field, a wrong type, a head outside the model, a head given twice, a per-head section without
/// its card-level setting. Fields this reader does not know are ignored, at every level: a later minor version
/// adds only optional fields, so an older reader still reads it (forward compatibility).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "headlens/analysis/head_card.hpp"
#include "headlens/analysis/verdict.hpp"
#include "headlens/analysis/verdict_json.hpp"
#include "headlens/error.hpp"

namespace headlens {

namespace detail {

using card_json = nlohmann::ordered_json;

inline card_json card_number(double value) {
  if (!std::isfinite(value)) return nullptr;
  return value;
}

inline card_json card_parameters_json(const card_parameters& parameters) {
  card_json out = card_json::object();
  for (const auto& [name, value] : parameters) out[name] = value;
  return out;
}

inline card_json card_estimate_json(const card_estimate& e) {
  return card_json{{"value", card_number(e.value)}, {"low", card_number(e.low)}, {"high", card_number(e.high)}};
}

inline card_json card_head_json(const card_head& h) {
  // The verdict's fields through the one verdict writer (verdict_json.hpp), in its order.
  card_json out = card_json::parse(verdict_json(h.verdict));
  if (h.importance) {
    out["importance"] = {{"zero", card_estimate_json(h.importance->zero)},
                         {"mean", card_estimate_json(h.importance->mean)},
                         {"rank", h.importance->rank}};
  }
  if (h.sparsity) {
    out["sparsity"] = {{"dropped", card_number(h.sparsity->dropped)},
                       {"mass_kept", card_number(h.sparsity->mass_kept)},
                       {"output_error", card_number(h.sparsity->output_error)}};
  }
  if (!h.matches.empty()) {
    card_json matches = card_json::array();
    for (const card_match& m : h.matches) {
      matches.push_back({{"model", m.model},
                         {"layer", m.layer},
                         {"head", m.head},
                         {"similarity", card_number(m.similarity)},
                         {"mutual", m.mutual}});
    }
    out["matches"] = matches;
  }
  if (h.pruning) out["pruning"] = {{"pruned", h.pruning->pruned}, {"step", h.pruning->step}};
  return out;
}

}  // namespace detail

/// The card as JSON (keys in the documented order). Throws `argument_error` when the card is invalid
/// (`validate_head_card`).
inline nlohmann::ordered_json head_card_to_json(const head_card& card) {
  using detail::card_json;
  using detail::card_number;
  validate_head_card(card);
  card_json out;
  out["format"] = std::string(head_card_format);
  out["version"] = std::to_string(head_card_major_version) + "." + std::to_string(head_card_minor_version);

  card_json model;
  model["name"] = card.model.name;
  model["description"] = card.model.description;
  model["layers"] = card.model.layers();
  model["heads_per_layer"] = card.model.heads_per_layer;
  if (!card.model.kv_heads_per_layer.empty()) model["kv_heads_per_layer"] = card.model.kv_heads_per_layer;
  model["causal"] = card.model.causal;
  out["model"] = model;

  const card_provenance& p = card.provenance;
  card_json files = card_json::array();
  for (const card_file& f : p.files) {
    files.push_back({{"role", f.role}, {"path", f.path}, {"sha256", f.sha256}, {"bytes", f.bytes}});
  }
  card_json provenance;
  provenance["files"] = files;
  provenance["policy"] = {{"name", p.policy}, {"parameters", detail::card_parameters_json(p.policy_parameters)}};
  provenance["analysis"] = detail::card_parameters_json(p.analysis);
  provenance["headlens_version"] = p.headlens_version;
  provenance["created"] = p.created;
  if (!p.command.empty()) provenance["command"] = p.command;
  out["provenance"] = provenance;

  const head_card_summary s = summarize(card);
  card_json labels = card_json::object();
  for (head_label label : head_labels) labels[std::string(to_string(label))] = s.labels.of(label);
  card_json causal = card_json::object();
  for (std::size_t c = 0; c < head_category_count; ++c) causal[std::string(to_string(head_categories[c]))] = s.causal[c];
  card_json supported = card_json::array();
  for (head_label label : s.supported) supported.push_back(std::string(to_string(label)));
  out["summary"] = {{"heads", s.labels.total()}, {"labels", labels}, {"causal", causal}, {"supported", supported}};

  if (card.importance) {
    const card_importance_run& r = *card.importance;
    out["importance"] = {{"loss", r.loss},
                         {"context", r.context},
                         {"interval", r.interval},
                         {"documents", r.documents},
                         {"ranking_stable", r.ranking_stable ? card_json(*r.ranking_stable) : card_json(nullptr)},
                         {"ranking_agreement", card_number(r.ranking_agreement)}};
  }
  if (!card.causal_checks.empty()) {
    card_json checks = card_json::array();
    for (const card_causal_check& c : card.causal_checks) {
      checks.push_back({{"label", std::string(to_string(c.label))},
                        {"heads", c.heads},
                        {"ablation", c.ablation},
                        {"tokens", c.tokens},
                        {"effect", card_number(c.effect)},
                        {"random_effect", card_number(c.random_effect)},
                        {"p_value", card_number(c.p_value)},
                        {"draws", c.draws},
                        {"verdict", std::string(to_string(c.verdict))},
                        {"reason", c.reason}});
    }
    out["causal_checks"] = checks;
  }
  if (card.sparsity) {
    out["sparsity"] = {{"mode", card.sparsity->mode},
                       {"setting", card.sparsity->setting},
                       {"loss_change", card_number(card.sparsity->loss_change)}};
  }
  if (!card.matches.empty()) {
    card_json runs = card_json::array();
    for (const card_match_run& m : card.matches) {
      runs.push_back({{"model", m.model}, {"sha256", m.sha256}, {"sentences", m.sentences}, {"method", m.method}});
    }
    out["matches"] = runs;
  }
  if (card.pruning) {
    out["pruning"] = {{"target", card.pruning->target},
                      {"pruned_heads", card.pruning->pruned_heads},
                      {"loss_change", card_number(card.pruning->loss_change)}};
  }
  card_json heads = card_json::array();
  for (const card_head& h : card.heads) heads.push_back(detail::card_head_json(h));
  out["heads"] = heads;
  return out;
}

/// The card as JSON text, indented by `indent` spaces (-1: one line), with a final newline. Strings that are not
/// valid UTF-8 are written with U+FFFD in place of the bad bytes (JSON text must be UTF-8).
inline std::string head_card_json_text(const head_card& card, int indent = 2) {
  return head_card_to_json(card).dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

/// Writes `head_card_json_text(card, indent)` to `out`.
inline void write_head_card(std::ostream& out, const head_card& card, int indent = 2) {
  out << head_card_json_text(card, indent);
}

namespace detail {

/// Reads one card, turning every problem into a `format_error` that names the file, the JSON path and the value.
class head_card_reader {
 public:
  explicit head_card_reader(std::string file) : file_(std::move(file)) {}

  head_card read(const card_json& in) const {
    object(in, "");
    head_card card;
    const std::string format = string(need(in, "", "format"), "/format");
    if (format != head_card_format) fail("/format", need(in, "", "format"), "\"headlens.head-card\"");
    read_version(need(in, "", "version"));

    const card_json& model = object(need(in, "", "model"), "/model");
    card.model.name = string(need(model, "/model", "name"), "/model/name");
    if (card.model.name.empty()) fail("/model/name", model.at("name"), "a non-empty model name");
    card.model.description = string(need(model, "/model", "description"), "/model/description");
    const int layers = integer(need(model, "/model", "layers"), "/model/layers", 1, max_count);
    card.model.heads_per_layer = counts(need(model, "/model", "heads_per_layer"), "/model/heads_per_layer", layers, 0);
    if (model.contains("kv_heads_per_layer")) {
      card.model.kv_heads_per_layer =
          counts(model.at("kv_heads_per_layer"), "/model/kv_heads_per_layer", layers, 0);
    }
    card.model.causal = boolean(need(model, "/model", "causal"), "/model/causal");

    read_provenance(object(need(in, "", "provenance"), "/provenance"), card.provenance);
    if (in.contains("importance")) card.importance = read_importance_run(in.at("importance"));
    if (in.contains("causal_checks")) {
      const card_json& checks = array(in.at("causal_checks"), "/causal_checks");
      for (std::size_t i = 0; i < checks.size(); ++i) {
        card.causal_checks.push_back(read_causal_check(checks[i], "/causal_checks/" + std::to_string(i)));
        for (std::size_t j = 0; j < i; ++j) {
          if (card.causal_checks[j].label == card.causal_checks[i].label) {
            fail("/causal_checks/" + std::to_string(i) + "/label", checks[i].at("label"), "one check per label");
          }
        }
      }
    }
    if (in.contains("sparsity")) {
      const card_json& s = object(in.at("sparsity"), "/sparsity");
      card_sparsity_run run;
      run.mode = string(need(s, "/sparsity", "mode"), "/sparsity/mode");
      run.setting = string(need(s, "/sparsity", "setting"), "/sparsity/setting");
      run.loss_change = number(need(s, "/sparsity", "loss_change"), "/sparsity/loss_change");
      card.sparsity = run;
    }
    if (in.contains("matches")) {
      const card_json& runs = array(in.at("matches"), "/matches");
      for (std::size_t i = 0; i < runs.size(); ++i) {
        const std::string at = "/matches/" + std::to_string(i);
        const card_json& r = object(runs[i], at);
        card_match_run run;
        run.model = string(need(r, at, "model"), at + "/model");
        if (run.model.empty()) fail(at + "/model", r.at("model"), "a non-empty model name");
        run.sha256 = string(need(r, at, "sha256"), at + "/sha256");
        if (!run.sha256.empty() && !is_sha256_hex(run.sha256)) {
          fail(at + "/sha256", r.at("sha256"), "64 lower-case hex digits or \"\"");
        }
        run.sentences = integer64(need(r, at, "sentences"), at + "/sentences");
        run.method = string(need(r, at, "method"), at + "/method");
        card.matches.push_back(std::move(run));
      }
    }
    if (in.contains("pruning")) {
      const card_json& p = object(in.at("pruning"), "/pruning");
      card_pruning_run run;
      run.target = string(need(p, "/pruning", "target"), "/pruning/target");
      run.pruned_heads = integer(need(p, "/pruning", "pruned_heads"), "/pruning/pruned_heads", 0, max_count);
      run.loss_change = number(need(p, "/pruning", "loss_change"), "/pruning/loss_change");
      card.pruning = run;
    }

    const card_json& heads = array(need(in, "", "heads"), "/heads");
    // Heads seen, kept as a set: memory follows the input, not the head counts the input claims.
    std::set<std::pair<int, int>> seen;
    for (std::size_t i = 0; i < heads.size(); ++i) {
      const std::string at = "/heads/" + std::to_string(i);
      card.heads.push_back(read_head(heads[i], at, card));
      const head_verdict& v = card.heads.back().verdict;
      if (!seen.insert({v.layer, v.head}).second) {
        fail(at, heads[i], "each head once (head " + std::to_string(v.layer) + "." + std::to_string(v.head) +
                               " is given twice)");
      }
    }
    // Whatever the JSON checks above missed (none expected): the same rules the writer enforces.
    try {
      validate_head_card(card);
    } catch (const argument_error& e) {
      throw format_error(file_, 0, 0, "headlens: " + file_ + ": " + unprefixed(e));
    }
    return card;
  }

  /// Throws the `format_error` for the value `value` at `path`.
  [[noreturn]] void fail(const std::string& path, const card_json& value, const std::string& expected) const {
    throw format_error(file_, 0, 0,
                       "headlens: " + file_ + ": " + (path.empty() ? "/" : path) + " is " + describe(value) +
                           ", expected " + expected);
  }

 private:
  static constexpr int max_count = 1 << 24;  // layers, heads, steps: far above any model

  /// A value for a message: scalars as JSON (long strings cut), arrays and objects by their size (never dumped
  /// whole: they may be huge or deeply nested).
  static std::string describe(const card_json& value) {
    if (value.is_array()) return "an array of " + std::to_string(value.size()) + " items";
    if (value.is_object()) return "an object of " + std::to_string(value.size()) + " fields";
    std::string text = value.dump(-1, ' ', false, card_json::error_handler_t::replace);
    if (text.size() > 80) text = text.substr(0, 76) + (value.is_string() ? "...\"" : "...");
    return text;
  }

  static std::string pointer_token(std::string_view key) {
    std::string out;
    for (char c : key) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
    return out;
  }

  const card_json& need(const card_json& object, const std::string& at, const char* key) const {
    if (!object.contains(key)) {
      throw format_error(file_, 0, 0,
                         "headlens: " + file_ + ": " + at + "/" + key + " is missing, expected a required field");
    }
    return object.at(key);
  }
  const card_json& object(const card_json& v, const std::string& at) const {
    if (!v.is_object()) fail(at, v, "an object");
    return v;
  }
  const card_json& array(const card_json& v, const std::string& at) const {
    if (!v.is_array()) fail(at, v, "an array");
    return v;
  }
  std::string string(const card_json& v, const std::string& at) const {
    if (!v.is_string()) fail(at, v, "a string");
    return v.get<std::string>();
  }
  bool boolean(const card_json& v, const std::string& at) const {
    if (!v.is_boolean()) fail(at, v, "true or false");
    return v.get<bool>();
  }
  /// A number, or null for NaN (not measured).
  double number(const card_json& v, const std::string& at) const {
    if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!v.is_number()) fail(at, v, "a number or null");
    return v.get<double>();
  }
  int integer(const card_json& v, const std::string& at, int low, int high) const {
    if (!v.is_number_integer()) fail(at, v, "an integer");
    bool fits;
    if (v.is_number_unsigned()) {
      const std::uint64_t u = v.get<std::uint64_t>();
      fits = u <= std::uint64_t(high) && (low <= 0 || u >= std::uint64_t(low));
    } else {
      const std::int64_t s = v.get<std::int64_t>();
      fits = s >= low && s <= high;
    }
    if (!fits) fail(at, v, "an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
    return int(v.get<std::int64_t>());
  }
  std::int64_t integer64(const card_json& v, const std::string& at) const {
    if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<std::uint64_t>() > std::uint64_t(INT64_MAX)
                                                          : v.get<std::int64_t>() < 0)) {
      fail(at, v, "an integer >= 0");
    }
    return v.get<std::int64_t>();
  }
  std::uint64_t unsigned64(const card_json& v, const std::string& at) const {
    if (!v.is_number_unsigned()) fail(at, v, "an integer >= 0");
    return v.get<std::uint64_t>();
  }
  std::vector<int> counts(const card_json& v, const std::string& at, int expected_size, int low) const {
    array(v, at);
    if (v.size() != std::size_t(expected_size)) {
      fail(at, v, "one entry per layer (/model/layers = " + std::to_string(expected_size) + ")");
    }
    std::vector<int> out;
    for (std::size_t i = 0; i < v.size(); ++i) out.push_back(integer(v[i], at + "/" + std::to_string(i), low, max_count));
    return out;
  }
  card_parameters parameters(const card_json& v, const std::string& at) const {
    object(v, at);
    card_parameters out;
    for (const auto& [name, value] : v.items()) out[name] = string(value, at + "/" + pointer_token(name));
    return out;
  }

  void read_version(const card_json& v) const {
    const std::string text = string(v, "/version");
    const std::size_t dot = text.find('.');
    const auto digits = [](std::string_view s) {
      return !s.empty() && s.size() <= 6 && s.find_first_not_of("0123456789") == std::string_view::npos;
    };
    if (dot == std::string::npos || !digits(std::string_view(text).substr(0, dot)) ||
        !digits(std::string_view(text).substr(dot + 1))) {
      fail("/version", v, "\"major.minor\"");
    }
    if (std::stoi(text.substr(0, dot)) != head_card_major_version) {
      fail("/version", v,
           "major version " + std::to_string(head_card_major_version) + " (\"" +
               std::to_string(head_card_major_version) + ".x\"); this reader cannot read another major version");
    }
  }

  void read_provenance(const card_json& in, card_provenance& p) const {
    const card_json& files = array(need(in, "/provenance", "files"), "/provenance/files");
    for (std::size_t i = 0; i < files.size(); ++i) {
      const std::string at = "/provenance/files/" + std::to_string(i);
      const card_json& f = object(files[i], at);
      card_file file;
      file.role = string(need(f, at, "role"), at + "/role");
      if (file.role.empty()) fail(at + "/role", f.at("role"), "a non-empty role");
      file.path = string(need(f, at, "path"), at + "/path");
      file.sha256 = string(need(f, at, "sha256"), at + "/sha256");
      if (!is_sha256_hex(file.sha256)) fail(at + "/sha256", f.at("sha256"), "64 lower-case hex digits");
      file.bytes = unsigned64(need(f, at, "bytes"), at + "/bytes");
      p.files.push_back(std::move(file));
    }
    const card_json& policy = object(need(in, "/provenance", "policy"), "/provenance/policy");
    p.policy = string(need(policy, "/provenance/policy", "name"), "/provenance/policy/name");
    p.policy_parameters =
        parameters(need(policy, "/provenance/policy", "parameters"), "/provenance/policy/parameters");
    p.analysis = parameters(need(in, "/provenance", "analysis"), "/provenance/analysis");
    p.headlens_version = string(need(in, "/provenance", "headlens_version"), "/provenance/headlens_version");
    p.created = string(need(in, "/provenance", "created"), "/provenance/created");
    if (in.contains("command")) p.command = string(in.at("command"), "/provenance/command");
  }

  card_importance_run read_importance_run(const card_json& v) const {
    const std::string at = "/importance";
    object(v, at);
    card_importance_run r;
    r.loss = string(need(v, at, "loss"), at + "/loss");
    r.context = string(need(v, at, "context"), at + "/context");
    r.interval = string(need(v, at, "interval"), at + "/interval");
    r.documents = integer64(need(v, at, "documents"), at + "/documents");
    const card_json& stable = need(v, at, "ranking_stable");
    if (!stable.is_null()) r.ranking_stable = boolean(stable, at + "/ranking_stable");
    r.ranking_agreement = number(need(v, at, "ranking_agreement"), at + "/ranking_agreement");
    return r;
  }

  head_label label(const card_json& v, const std::string& at, bool category_only) const {
    const std::optional<head_label> parsed = v.is_string() ? parse_head_label(v.get<std::string>()) : std::nullopt;
    if (!parsed || (category_only && *parsed == head_label::unassigned)) {
      fail(at, v, category_only ? "\"syntactic\", \"coreference\", \"discourse\" or \"positional\""
                                : "\"syntactic\", \"coreference\", \"discourse\", \"positional\" or \"unassigned\"");
    }
    return *parsed;
  }

  card_causal_check read_causal_check(const card_json& v, const std::string& at) const {
    object(v, at);
    card_causal_check c;
    c.label = label(need(v, at, "label"), at + "/label", true);
    c.heads = integer(need(v, at, "heads"), at + "/heads", 0, max_count);
    c.ablation = string(need(v, at, "ablation"), at + "/ablation");
    c.tokens = string(need(v, at, "tokens"), at + "/tokens");
    c.effect = number(need(v, at, "effect"), at + "/effect");
    c.random_effect = number(need(v, at, "random_effect"), at + "/random_effect");
    c.p_value = number(need(v, at, "p_value"), at + "/p_value");
    c.draws = integer(need(v, at, "draws"), at + "/draws", 0, max_count);
    const card_json& verdict = need(v, at, "verdict");
    const std::optional<causal_verdict> parsed =
        verdict.is_string() ? parse_causal_verdict(verdict.get<std::string>()) : std::nullopt;
    if (!parsed) fail(at + "/verdict", verdict, "\"supported\", \"not supported\" or \"not testable\"");
    c.verdict = *parsed;
    c.reason = string(need(v, at, "reason"), at + "/reason");
    return c;
  }

  card_estimate estimate(const card_json& v, const std::string& at) const {
    object(v, at);
    return {number(need(v, at, "value"), at + "/value"), number(need(v, at, "low"), at + "/low"),
            number(need(v, at, "high"), at + "/high")};
  }

  card_head read_head(const card_json& v, const std::string& at, const head_card& card) const {
    object(v, at);
    card_head h;
    head_verdict& verdict = h.verdict;
    verdict.layer = integer(need(v, at, "layer"), at + "/layer", 0, max_count);
    if (verdict.layer >= card.model.layers()) {
      fail(at + "/layer", v.at("layer"), "a layer in [0, " + std::to_string(card.model.layers()) + ")");
    }
    verdict.head = integer(need(v, at, "head"), at + "/head", 0, max_count);
    const int heads = card.model.heads_per_layer[std::size_t(verdict.layer)];
    if (verdict.head >= heads) {
      fail(at + "/head", v.at("head"),
           "a head in [0, " + std::to_string(heads) + ") (layer " + std::to_string(verdict.layer) + ")");
    }
    verdict.label = label(need(v, at, "label"), at + "/label", false);
    const card_json& scores = object(need(v, at, "scores"), at + "/scores");
    for (head_label c : head_categories) {
      const std::string name(to_string(c));
      verdict.set_score(c, number(need(scores, at + "/scores", name.c_str()), at + "/scores/" + name));
    }
    verdict.confidence = number(need(v, at, "confidence"), at + "/confidence");
    verdict.reason = string(need(v, at, "reason"), at + "/reason");
    const card_json& evidence = array(need(v, at, "evidence"), at + "/evidence");
    for (std::size_t e = 0; e < evidence.size(); ++e) {
      const std::string where = at + "/evidence/" + std::to_string(e);
      const card_json& item = object(evidence[e], where);
      evidence_item out;
      out.name = string(need(item, where, "name"), where + "/name");
      out.value = number(need(item, where, "value"), where + "/value");
      out.baseline = number(need(item, where, "baseline"), where + "/baseline");
      verdict.evidence.push_back(std::move(out));
    }
    if (v.contains("importance")) {
      const std::string where = at + "/importance";
      if (!card.importance) fail(where, v.at("importance"), "no per-head importance when the card has no /importance");
      const card_json& i = object(v.at("importance"), where);
      card_importance imp;
      imp.zero = estimate(need(i, where, "zero"), where + "/zero");
      imp.mean = estimate(need(i, where, "mean"), where + "/mean");
      imp.rank = integer(need(i, where, "rank"), where + "/rank", 0, max_count);
      h.importance = imp;
    }
    if (v.contains("sparsity")) {
      const std::string where = at + "/sparsity";
      if (!card.sparsity) fail(where, v.at("sparsity"), "no per-head sparsity when the card has no /sparsity");
      const card_json& s = object(v.at("sparsity"), where);
      card_sparsity sp;
      sp.dropped = number(need(s, where, "dropped"), where + "/dropped");
      sp.mass_kept = number(need(s, where, "mass_kept"), where + "/mass_kept");
      sp.output_error = number(need(s, where, "output_error"), where + "/output_error");
      h.sparsity = sp;
    }
    if (v.contains("matches")) {
      const card_json& matches = array(v.at("matches"), at + "/matches");
      for (std::size_t m = 0; m < matches.size(); ++m) {
        const std::string where = at + "/matches/" + std::to_string(m);
        const card_json& item = object(matches[m], where);
        card_match match;
        match.model = string(need(item, where, "model"), where + "/model");
        if (std::none_of(card.matches.begin(), card.matches.end(),
                         [&](const card_match_run& r) { return r.model == match.model; })) {
          fail(where + "/model", item.at("model"), "the name of a model in /matches");
        }
        match.layer = integer(need(item, where, "layer"), where + "/layer", 0, max_count);
        match.head = integer(need(item, where, "head"), where + "/head", 0, max_count);
        match.similarity = number(need(item, where, "similarity"), where + "/similarity");
        match.mutual = boolean(need(item, where, "mutual"), where + "/mutual");
        h.matches.push_back(std::move(match));
      }
    }
    if (v.contains("pruning")) {
      const std::string where = at + "/pruning";
      if (!card.pruning) fail(where, v.at("pruning"), "no per-head pruning when the card has no /pruning");
      const card_json& p = object(v.at("pruning"), where);
      card_pruning pr;
      pr.pruned = boolean(need(p, where, "pruned"), where + "/pruned");
      pr.step = integer(need(p, where, "step"), where + "/step", 0, max_count);
      h.pruning = pr;
    }
    return h;
  }

  std::string file_;
};

}  // namespace detail

/// The card in `in` (see the file comment for what is checked). `file` names the source in messages. Throws
/// `format_error`.
inline head_card head_card_from_json(const nlohmann::ordered_json& in, const std::string& file = "<memory>") {
  return detail::head_card_reader(file).read(in);
}

/// Parses and reads a card from JSON text. Malformed JSON throws `format_error` with the byte offset.
inline head_card parse_head_card(std::string_view text, const std::string& file = "<memory>") {
  nlohmann::ordered_json in;
  try {
    in = nlohmann::ordered_json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw format_error::at_byte(file, e.byte, std::string("not valid JSON: ") + e.what());
  } catch (const nlohmann::json::exception& e) {
    // The parser's other errors carry no offset: a number too large for a double (out_of_range 406).
    throw format_error(file, 0, 0, "headlens: " + file + ": not valid JSON: " + e.what());
  }
  return head_card_from_json(in, file);
}

/// Reads the card in the file at `path`. Throws `io_error` when it cannot be read, `format_error` when it is not
/// a valid card.
inline head_card read_head_card(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail<io_error>("cannot open head card ", path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) detail::fail<io_error>("cannot read head card ", path);
  return parse_head_card(text.str(), path);
}

}  // namespace headlens
