#pragma once
/// \file
/// A head card: one portable document per model that says what each attention head was found to do, how that was
/// measured and how sure it is, for tools, auditors and inference engines (e.g. a KV-cache policy per head type).
/// Plain data here, standard library only (an engine can read cards without Eigen); JSON in `head_card_json.hpp`
/// (nlohmann_json), Markdown in `head_card_markdown.hpp`, an HTML section in `head_card_html.hpp`. The format, its
/// versioning and how an engine should read it: `docs/head-cards.md`, schema `docs/head-card.schema.json`.
///
/// A card states what was measured, never more. Every measurement beyond the label is an optional section that is
/// absent when it was not measured, and readers must say so ("not causally checked", "importance not measured"):
/// - per head, always: label, confidence, a score per category, top evidence, reason (the policy's verdict);
/// - card-level sections, each with the setting it was measured at, and per-head values under them:
///   importance (loss change when the head is ablated, with an interval over documents), causal checks (one per
///   label: the label's heads ablated against random heads on the tokens of the label's phenomenon), sparsity
///   (weights dropped, mass kept, output error at a stated top-k / threshold), matches (the most similar head of
///   another model) and pruning (whether a stated plan prunes the head).
/// A per-head section may only be present when its card-level section is (the setting lives there).
///
///     headlens::head_card card = headlens::make_head_card(report, model, provenance);
///     card.importance = headlens::card_importance_run{...};       // optional, from an importance run
///     card.heads[i].importance = headlens::card_importance{...};
///     headlens::validate_head_card(card);                        // what the writers call first

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "headlens/analysis/causal_check_result.hpp"
#include "headlens/analysis/report.hpp"
#include "headlens/analysis/verdict.hpp"
#include "headlens/detail/sha256.hpp"
#include "headlens/error.hpp"
#include "headlens/version.hpp"

namespace headlens {

/// The `format` string of every head card.
inline constexpr std::string_view head_card_format = "headlens.head-card";
/// The version this library writes, "major.minor". A reader accepts any minor of its major (minors only add
/// optional fields, which older readers ignore) and rejects another major (see docs/head-cards.md).
inline constexpr int head_card_major_version = 1;
inline constexpr int head_card_minor_version = 0;

/// Named settings, written as a JSON object of strings (e.g. {"window": "64", "context": "window"}). Values are
/// text so that any setting reads back exactly as it was given.
using card_parameters = std::map<std::string, std::string>;

/// The model the card describes.
struct card_model {
  std::string name;         ///< short name, e.g. "gpt2" or "use-lite" (required, non-empty)
  std::string description;  ///< free text, e.g. what `attention_model::description()` says
  std::vector<int> heads_per_layer;  ///< query heads of each layer (layers = size; layers may differ when pruned)
  /// Key/value heads of each layer (grouped-query attention: query head h of layer l reads kv head
  /// h / (heads_per_layer[l] / kv_heads_per_layer[l])); empty when unknown or equal to `heads_per_layer`.
  std::vector<int> kv_heads_per_layer;
  bool causal = false;  ///< a decoder (each token sees only earlier ones)

  int layers() const noexcept { return int(heads_per_layer.size()); }
  /// Query heads of all layers (64-bit: a file may claim up to 2^24 layers of 2^24 heads).
  std::int64_t total_heads() const noexcept {
    std::int64_t n = 0;
    for (int h : heads_per_layer) n += h;
    return n;
  }
};

/// One file the card was measured from, identified by its SHA-256.
struct card_file {
  std::string role;    ///< "model", "tokenizer", "config", "corpus", ... (free text, non-empty)
  std::string path;    ///< as the user gave it (informative only: paths differ between machines)
  std::string sha256;  ///< 64 lower-case hex digits
  std::uint64_t bytes = 0;
};

/// Hashes the file at `path` (`detail::sha256_file`) into a `card_file`. Throws `io_error` when it cannot be read.
inline card_file hash_card_file(std::string role, const std::string& path) {
  const detail::file_digest d = detail::sha256_file(path);
  return {std::move(role), path, d.sha256, d.bytes};
}

/// The current time in UTC as ISO 8601, `2026-12-08T01:02:03Z`.
inline std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
#if defined(_WIN32)
  gmtime_s(&utc, &now);
#else
  gmtime_r(&now, &utc);
#endif
  char text[32];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return std::string(text, n);
}

/// Where the card comes from: enough to reproduce it, or to tell that it belongs to other files.
struct card_provenance {
  std::vector<card_file> files;       ///< model, tokenizer and corpus files with their hashes
  std::string policy;                 ///< the classifier policy, e.g. "annotated"
  card_parameters policy_parameters;  ///< its settings (margins, thresholds), when it has any
  /// How the analysis ran: e.g. "context" (sentence | window), "window", "stride", "ablation" (zero | mean),
  /// "seed", "documents", "tokens".
  card_parameters analysis;
  std::string headlens_version = version_string;  ///< `version_string` of the library that wrote the card
  std::string created;                            ///< UTC, ISO 8601 (`utc_timestamp()`)
  std::string command;                            ///< the command line, when a tool wrote the card (optional)
};

inline constexpr double card_nan = std::numeric_limits<double>::quiet_NaN();

// ---- optional sections ---------------------------------------------------------------------------------------------

/// A measured value with its interval; NaN where not measured (written as null).
struct card_estimate {
  double value = card_nan;
  double low = card_nan;   ///< lower end of the interval (`card_importance_run::interval` says which)
  double high = card_nan;  ///< upper end
};

/// How importance was measured (card level).
struct card_importance_run {
  std::string loss;      ///< the task loss, e.g. "next-token cross-entropy" or "1 - cosine of the embedding"
  std::string context;   ///< the unit of context: "sentence" or "window" (and its size in `card_provenance::analysis`)
  std::string interval;  ///< what low/high are, e.g. "95% bootstrap over documents"
  std::int64_t documents = 0;  ///< documents the losses were averaged over
  /// Whether the ranking of heads by importance agreed between two halves of the corpus (nullopt: not checked).
  std::optional<bool> ranking_stable;
  double ranking_agreement = card_nan;  ///< e.g. Spearman correlation of the two halves' rankings; NaN if none
};

/// One head's importance: the change in the task loss when it alone is ablated (larger: more important).
struct card_importance {
  card_estimate zero;  ///< zero ablation (NaN value: not measured)
  card_estimate mean;  ///< mean ablation (NaN value: not measured)
  int rank = 0;        ///< 1 = most important by `zero` (or `mean` when zero was not measured); 0 = not ranked
};

inline std::optional<causal_verdict> parse_causal_verdict(std::string_view name) noexcept {
  for (causal_verdict v : {causal_verdict::supported, causal_verdict::not_supported, causal_verdict::not_testable}) {
    if (to_string(v) == name) return v;
  }
  return std::nullopt;
}

/// The causal check of one label (card level; every head with that label shares it): the heads carrying the
/// label are ablated together and, for comparison, `draws` sets of as many random heads; `effect` is the loss
/// change on the label's phenomenon tokens minus the change on the other tokens.
struct card_causal_check {
  head_label label = head_label::syntactic;  ///< one of the four categories
  int heads = 0;                            ///< heads ablated (those with the label)
  std::string ablation;                     ///< "zero" or "mean"
  std::string tokens;          ///< which tokens the phenomenon covers, e.g. "mentions with an earlier antecedent"
  double effect = card_nan;    ///< the label's heads' effect
  double random_effect = card_nan;  ///< the mean effect of the random draws
  double p_value = card_nan;   ///< permutation p-value of `effect` against the draws
  int draws = 0;               ///< random draws
  causal_verdict verdict = causal_verdict::not_testable;
  std::string reason;          ///< why (always for `not testable`)
};

/// How attention was sparsified (card level).
struct card_sparsity_run {
  std::string mode;           ///< "top-k" or "threshold"
  std::string setting;        ///< k, or the probability threshold, as text
  double loss_change = card_nan;  ///< the task-loss change of the whole model with every head sparsified; NaN if none
};

/// One head under the card's sparsity setting.
struct card_sparsity {
  double dropped = card_nan;       ///< share of attention weights dropped, in [0, 1]
  double mass_kept = card_nan;     ///< attention mass kept, in [0, 1]
  double output_error = card_nan;  ///< relative error of the head's output (||z - z_dense|| / ||z_dense||)
};

/// A model the card's heads were matched against (card level).
struct card_match_run {
  std::string model;   ///< the other model's name (as its own card's `model.name`)
  std::string sha256;  ///< of the other model's weights, when known (empty otherwise)
  std::int64_t sentences = 0;  ///< sentences compared
  std::string method;  ///< e.g. "1 - JSD of word-level maps, Hungarian assignment"
};

/// The head of another model matched to this head.
struct card_match {
  std::string model;  ///< a `card_match_run::model` of the card
  int layer = 0;
  int head = 0;
  double similarity = card_nan;  ///< in [0, 1]
  bool mutual = false;           ///< each is the other's most similar head
};

/// A pruning plan (card level).
struct card_pruning_run {
  std::string target;   ///< the plan's goal, e.g. "share 0.3" or "loss budget 0.005"
  int pruned_heads = 0; ///< heads the plan prunes
  double loss_change = card_nan;  ///< the task-loss change measured with all of them pruned
};

/// One head under the card's pruning plan.
struct card_pruning {
  bool pruned = false;
  int step = 0;  ///< 1-based order in which the plan pruned it; 0 when not pruned
};

/// One head: the policy's verdict and whatever else was measured about it.
struct card_head {
  head_verdict verdict;  ///< layer, head, label, scores, confidence, reason, top evidence
  std::optional<card_importance> importance;
  std::optional<card_sparsity> sparsity;
  std::vector<card_match> matches;
  std::optional<card_pruning> pruning;

  /// (layer, head), the order of a card's heads.
  std::pair<int, int> position() const noexcept { return {verdict.layer, verdict.head}; }
};

/// A head card (see the file comment).
struct head_card {
  card_model model;
  card_provenance provenance;
  std::vector<card_head> heads;  ///< normally every head of the model, by layer then head
  std::optional<card_importance_run> importance;
  std::vector<card_causal_check> causal_checks;  ///< at most one per label
  std::optional<card_sparsity_run> sparsity;
  std::vector<card_match_run> matches;
  std::optional<card_pruning_run> pruning;

  /// The head at (layer, head), or nullptr.
  const card_head* find(int layer, int head) const noexcept {
    for (const card_head& h : heads) {
      if (h.verdict.layer == layer && h.verdict.head == head) return &h;
    }
    return nullptr;
  }
  /// The causal check of `label`, or nullptr when it was not checked.
  const card_causal_check* causal_check(head_label label) const noexcept {
    for (const card_causal_check& c : causal_checks) {
      if (c.label == label) return &c;
    }
    return nullptr;
  }
};

/// What a card says about a label's causal status, in words: "supported", "not supported", "not testable" or
/// "not causally checked" (also for `unassigned`, which no check tests).
inline std::string causal_status(const head_card& card, head_label label) {
  const card_causal_check* c = card.causal_check(label);
  return c ? std::string(to_string(c->verdict)) : std::string("not causally checked");
}

/// The card-level summary: label counts and the causal status of each category. Derived from the heads and
/// checks (written into the JSON for convenience, recomputed on reading).
struct head_card_summary {
  label_counts labels;
  std::array<std::string, head_category_count> causal;  ///< `causal_status` per category
  std::vector<head_label> supported;                     ///< the categories the causal check supports
};

inline head_card_summary summarize(const head_card& card) {
  head_card_summary s;
  for (const card_head& h : card.heads) s.labels.add(h.verdict.label);
  for (std::size_t c = 0; c < head_category_count; ++c) {
    s.causal[c] = causal_status(card, head_categories[c]);
    const card_causal_check* check = card.causal_check(head_categories[c]);
    if (check && check->verdict == causal_verdict::supported) s.supported.push_back(head_categories[c]);
  }
  return s;
}

/// Builds a card from a report: every verdict becomes a head (its first `top_evidence` evidence items kept), no
/// optional section. `created` is filled with `utc_timestamp()` when empty.
inline head_card make_head_card(const head_report& report, card_model model, card_provenance provenance,
                                std::size_t top_evidence = 3) {
  head_card card;
  card.model = std::move(model);
  card.provenance = std::move(provenance);
  if (card.provenance.policy.empty()) card.provenance.policy = report.policy;
  if (card.provenance.created.empty()) card.provenance.created = utc_timestamp();
  for (const head_verdict& v : report.heads) {
    card_head h;
    h.verdict = v;
    if (h.verdict.evidence.size() > top_evidence) h.verdict.evidence.resize(top_evidence);
    card.heads.push_back(std::move(h));
  }
  return card;
}

/// The `card_model` of a model that says `layers()`, `heads()`, `causal()` and `description()` (an
/// `attention_model`, models/attention_model.hpp; a template so that this header needs no model code): every layer
/// with `heads()` query heads, kv heads unknown.
template <class Model>
card_model card_model_of(const Model& model, std::string name) {
  card_model out;
  out.name = std::move(name);
  out.description = model.description();
  out.heads_per_layer.assign(static_cast<std::size_t>(model.layers()), static_cast<int>(model.heads()));
  out.causal = model.causal();
  return out;
}

/// Records in `card` a head matching of its model (A) against model B named `run.model`: adds `run` to
/// `card.matches` and gives each matched head of A that the card describes its partner in B. `pairs` is what
/// `match_heads` returns (analysis/head_matching.hpp; anything with `a`, `b`: layer-major head indices with `heads_a`
/// and `heads_b` heads per layer, `similarity` and `mutual()`). Throws `argument_error` when B is already matched,
/// `heads_a` is not the card's heads per layer, or an index is outside A or B (`layers_b` layers).
template <class Pairs>
void add_head_matches(head_card& card, card_match_run run, const Pairs& pairs, long long heads_a, long long heads_b,
                      long long layers_b) {
  for (const card_match_run& r : card.matches) {
    if (r.model == run.model) detail::fail<argument_error>("add_head_matches: model \"", run.model, "\" is already matched");
  }
  for (std::size_t l = 0; l < card.model.heads_per_layer.size(); ++l) {
    if (card.model.heads_per_layer[l] != heads_a) {
      detail::fail<argument_error>("add_head_matches: heads_a is ", heads_a, ", expected the card's ",
                                   card.model.heads_per_layer[l], " heads of layer ", l);
    }
  }
  if (heads_b < 1 || layers_b < 1) {
    detail::fail<argument_error>("add_head_matches: model B has ", layers_b, " layers x ", heads_b,
                                 " heads, expected at least one head");
  }
  const long long total_a = heads_a * card.model.layers();
  for (const auto& p : pairs) {
    if (p.a < 0 || p.a >= total_a || p.b < 0 || p.b >= heads_b * layers_b) {
      detail::fail<argument_error>("add_head_matches: pair (", p.a, ", ", p.b, ") is outside [0, ", total_a,
                                   ") x [0, ", heads_b * layers_b, ")");
    }
  }
  for (const auto& p : pairs) {
    const int layer = static_cast<int>(p.a / heads_a), head = static_cast<int>(p.a % heads_a);
    for (card_head& h : card.heads) {
      if (h.verdict.layer == layer && h.verdict.head == head) {
        h.matches.push_back({run.model, static_cast<int>(p.b / heads_b), static_cast<int>(p.b % heads_b),
                             static_cast<double>(p.similarity), static_cast<bool>(p.mutual())});
      }
    }
  }
  card.matches.push_back(std::move(run));
}

namespace detail {

inline bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace detail

/// Checks what the JSON schema cannot: heads inside the model and each once, per-head sections only under their
/// card-level section, one causal check per category, matches naming a matched model, hashes as 64 hex digits.
/// Throws `argument_error` naming the field (as a JSON path, e.g. `/heads/3/layer`) and its value. The writers call
/// it, so no invalid card is ever written.
inline void validate_head_card(const head_card& card) {
  using detail::fail;
  if (card.model.name.empty()) fail<argument_error>("head card /model/name is empty, expected a model name");
  if (card.model.heads_per_layer.empty()) {
    fail<argument_error>("head card /model/heads_per_layer is empty, expected at least one layer");
  }
  for (std::size_t l = 0; l < card.model.heads_per_layer.size(); ++l) {
    if (card.model.heads_per_layer[l] < 0) {
      fail<argument_error>("head card /model/heads_per_layer/", l, " is ", card.model.heads_per_layer[l],
                           ", expected >= 0");
    }
  }
  const auto& kv = card.model.kv_heads_per_layer;
  if (!kv.empty()) {
    if (kv.size() != card.model.heads_per_layer.size()) {
      fail<argument_error>("head card /model/kv_heads_per_layer has ", kv.size(), " entries, expected one per layer = ",
                           card.model.heads_per_layer.size());
    }
    for (std::size_t l = 0; l < kv.size(); ++l) {
      const int q = card.model.heads_per_layer[l];
      if (kv[l] < 1 ? q != 0 || kv[l] != 0 : q % kv[l] != 0) {
        fail<argument_error>("head card /model/kv_heads_per_layer/", l, " is ", kv[l],
                             ", expected a divisor of the layer's ", q, " query heads");
      }
    }
  }
  for (std::size_t i = 0; i < card.provenance.files.size(); ++i) {
    const card_file& f = card.provenance.files[i];
    if (f.role.empty()) fail<argument_error>("head card /provenance/files/", i, "/role is empty");
    if (!detail::is_sha256_hex(f.sha256)) {
      fail<argument_error>("head card /provenance/files/", i, "/sha256 is \"", f.sha256,
                           "\", expected 64 lower-case hex digits");
    }
  }
  std::set<std::pair<int, int>> seen;
  for (std::size_t i = 0; i < card.heads.size(); ++i) {
    const card_head& h = card.heads[i];
    const int layer = h.verdict.layer, head = h.verdict.head;
    if (layer < 0 || layer >= card.model.layers()) {
      fail<argument_error>("head card /heads/", i, "/layer is ", layer, ", expected in [0, ", card.model.layers(), ")");
    }
    const int n = card.model.heads_per_layer[std::size_t(layer)];
    if (head < 0 || head >= n) {
      fail<argument_error>("head card /heads/", i, "/head is ", head, ", expected in [0, ", n, ") for layer ", layer);
    }
    if (!seen.insert({layer, head}).second) {
      fail<argument_error>("head card /heads/", i, " is head ", layer, ".", head, " again, expected each head once");
    }
    if (h.importance && !card.importance) {
      fail<argument_error>("head card /heads/", i, "/importance is present but /importance (how it was measured) is not");
    }
    if (h.sparsity && !card.sparsity) {
      fail<argument_error>("head card /heads/", i, "/sparsity is present but /sparsity (the setting) is not");
    }
    if (h.pruning && !card.pruning) {
      fail<argument_error>("head card /heads/", i, "/pruning is present but /pruning (the plan) is not");
    }
    for (std::size_t m = 0; m < h.matches.size(); ++m) {
      const std::string& other = h.matches[m].model;
      if (std::none_of(card.matches.begin(), card.matches.end(),
                       [&](const card_match_run& r) { return r.model == other; })) {
        fail<argument_error>("head card /heads/", i, "/matches/", m, "/model is \"", other,
                             "\", expected a model of /matches");
      }
    }
  }
  for (std::size_t i = 0; i < card.causal_checks.size(); ++i) {
    const head_label label = card.causal_checks[i].label;
    if (label == head_label::unassigned) {
      fail<argument_error>("head card /causal_checks/", i, "/label is \"unassigned\", expected a category");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (card.causal_checks[j].label == label) {
        fail<argument_error>("head card /causal_checks/", i, "/label is \"", to_string(label),
                             "\" again, expected one check per label");
      }
    }
  }
  for (std::size_t i = 0; i < card.matches.size(); ++i) {
    if (card.matches[i].model.empty()) fail<argument_error>("head card /matches/", i, "/model is empty");
    if (!card.matches[i].sha256.empty() && !detail::is_sha256_hex(card.matches[i].sha256)) {
      fail<argument_error>("head card /matches/", i, "/sha256 is \"", card.matches[i].sha256,
                           "\", expected 64 lower-case hex digits or empty");
    }
  }
}

}  // namespace headlens
