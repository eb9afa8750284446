#pragma once
/// \file
/// Classifier policies: they turn the `head_evidence` of one head into a `head_verdict` (label, four scores,
/// confidence, reason, evidence).
///
/// ## The policy interface
/// A policy is any type `P` with a const member
///
///     headlens::head_verdict classify(const headlens::head_evidence& evidence) const;
///
/// that fills every field of the verdict: `layer` and `head` copied from the evidence, a `label`, a score per
/// category (NaN where it had no evidence), a `confidence` in [0, 1], a `reason` whenever the label is
/// `unassigned`, and the `evidence` items behind the label, most important first. It must not throw on any
/// evidence the feature accumulators can produce (counts of 0 included: a count of 0 is "no evidence", not an
/// accuracy of 0). `is_head_policy_v<P>` checks the signature; `classify_heads(policy, evidence)` runs a policy
/// over every head. `examples/custom_policy.cpp` defines one.
///
/// ## Built in
/// - `annotated_policy`: uses gold (or tagger) annotations; each category is scored as a margin over its
///   baseline (Clark et al. 2019; Voita et al. 2019) and a head gets the category that beats its baseline by the
///   configured margin.
/// - `heuristic_policy`: needs no annotations; decides positional, discourse (long-range cross-sentence), sink and
///   broad heads, and reports everything else as "needs annotations".
/// Their rules and defaults, with the sources, are in `docs/policies.md` and on each option below.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "headlens/analysis/head_evidence.hpp"
#include "headlens/analysis/verdict.hpp"

namespace headlens {

/// True when `Policy` has `head_verdict classify(const head_evidence&) const`.
template <class Policy, class = void>
struct is_head_policy : std::false_type {};
template <class Policy>
struct is_head_policy<
    Policy, std::void_t<decltype(std::declval<const Policy&>().classify(std::declval<const head_evidence&>()))>>
    : std::is_same<decltype(std::declval<const Policy&>().classify(std::declval<const head_evidence&>())),
                   head_verdict> {};
template <class Policy>
inline constexpr bool is_head_policy_v = is_head_policy<Policy>::value;

/// Classifies every head: one verdict per element of `evidence`, in the same order.
template <class Policy>
std::vector<head_verdict> classify_heads(const Policy& policy, const std::vector<head_evidence>& evidence) {
  static_assert(is_head_policy_v<Policy>,
                "headlens: a policy needs `head_verdict classify(const head_evidence&) const`");
  std::vector<head_verdict> out;
  out.reserve(evidence.size());
  for (const head_evidence& e : evidence) out.push_back(policy.classify(e));
  return out;
}

namespace detail {

inline constexpr double policy_nan = std::numeric_limits<double>::quiet_NaN();

/// `value` with `digits` decimals, for reasons and evidence names.
inline std::string policy_fixed(double value, int digits = 2) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

inline double policy_clamp01(double x) noexcept { return x < 0 ? 0 : (x > 1 ? 1 : x); }

/// `n / (n + k)`: how much a figure over n instances can be trusted, 0 for none.
inline double policy_reliability(std::int64_t n, double k) noexcept {
  return n <= 0 ? 0.0 : static_cast<double>(n) / (static_cast<double>(n) + k);
}

/// One category's judgement inside a policy: its score, whether it passed its rule, and by how much (the excess
/// over the rule's requirement, divided by the room left above the requirement, so categories compare).
struct category_judgement {
  head_label category = head_label::unassigned;
  double score = policy_nan;                                            ///< reported score (NaN: no evidence)
  bool passed = false;                                                  ///< the rule for this category is met
  double normalised_excess = -std::numeric_limits<double>::infinity();  ///< for ranking; > 0 iff passed
  std::int64_t count = 0;                                               ///< instances behind the score
  /// The rule checks the free attention against the annotations or a position (an argmax test), so passing it
  /// shows a function even in a head that parks most of its mass on sinks. The annotation-free cross-sentence rule
  /// does not: what a sink leaves over is diffuse, and diffuse attention is long-range and cross-sentence by chance.
  bool lifts_sink = true;
  std::string failure;  ///< why it did not pass, when it had evidence
  std::vector<evidence_item> evidence;
};

/// `(value - required) / (1 - required)` kept finite: how far past the requirement, relative to the room above it.
inline double normalised_excess(double value, double required) noexcept {
  const double room = std::max(1e-6, 1.0 - required);
  return (value - required) / room;
}

/// Positional rule shared by both built-in policies (Voita et al. 2019, "positional heads").
inline category_judgement judge_positional(const positional_evidence& p, double min_share,
                                           const std::vector<int>& offsets) {
  category_judgement j;
  j.category = head_label::positional;
  j.count = p.rows;
  if (p.rows <= 0) return j;
  j.score = p.top_offset_share - min_share;
  const bool offset_ok = offsets.empty() || std::find(offsets.begin(), offsets.end(), p.top_offset) != offsets.end();
  const std::string offset_name = (p.top_offset > 0 ? "+" : "") + std::to_string(p.top_offset);
  j.evidence.push_back({"argmax share at offset " + offset_name, p.top_offset_share, min_share});
  j.normalised_excess = normalised_excess(p.top_offset_share, min_share);
  if (!offset_ok) {
    j.failure = "argmax concentrates at offset " + offset_name + ", not an allowed offset";
  } else if (p.top_offset_share < min_share) {
    j.failure = "argmax share " + policy_fixed(p.top_offset_share) + " at offset " + offset_name + " is below " +
                policy_fixed(min_share);
  } else {
    j.passed = true;
  }
  if (!j.passed) j.normalised_excess = std::min(j.normalised_excess, -1e-9);
  return j;
}

/// Long-range cross-sentence rule (the discourse evidence that needs no discourse annotation).
inline category_judgement judge_cross_sentence(const discourse_evidence& d, const general_evidence& g, double min_mass,
                                               double max_entropy, double min_distance) {
  category_judgement j;
  j.category = head_label::discourse;
  j.count = d.rows;
  j.lifts_sink = false;
  if (d.rows <= 0) return j;
  j.score = d.cross_sentence_mass - min_mass;
  j.evidence.push_back({"cross-sentence mass", d.cross_sentence_mass, min_mass});
  j.evidence.push_back({"normalised entropy", g.entropy, max_entropy});
  j.evidence.push_back({"mean distance (words)", g.mean_distance, min_distance});
  j.normalised_excess = normalised_excess(d.cross_sentence_mass, min_mass);
  if (d.cross_sentence_mass < min_mass) {
    j.failure = "cross-sentence mass " + policy_fixed(d.cross_sentence_mass) + " is below " + policy_fixed(min_mass);
  } else if (g.rows > 0 && g.entropy > max_entropy) {
    j.failure = "cross-sentence attention is spread (entropy " + policy_fixed(g.entropy) + " > " +
                policy_fixed(max_entropy) + ")";
  } else if (g.rows > 0 && g.mean_distance < min_distance) {
    j.failure = "cross-sentence attention is short-range (mean distance " + policy_fixed(g.mean_distance) + " < " +
                policy_fixed(min_distance, 1) + ")";
  } else {
    j.passed = true;
  }
  if (!j.passed) j.normalised_excess = std::min(j.normalised_excess, -1e-9);
  return j;
}

/// Sink and broad checks shared by both policies. Returns the reason ("sink" or "broad") or an empty string.
inline std::string sink_or_broad(const general_evidence& g, double sink_mass, double broad_entropy, double& strength,
                                 std::vector<evidence_item>& evidence) {
  if (g.rows <= 0) return {};
  if (g.sink_mass >= sink_mass) {
    strength = policy_clamp01(g.sink_mass);
    evidence.push_back({"sink mass (first word, separators)", g.sink_mass, sink_mass});
    return "sink";
  }
  if (g.entropy >= broad_entropy) {
    strength = policy_clamp01(g.entropy);
    evidence.push_back({"normalised entropy", g.entropy, broad_entropy});
    return "broad";
  }
  return {};
}

/// Picks the verdict from the judgements of the four categories. In a sink (`shape_reason == "sink"`) only the
/// categories that `lifts_sink` count; the passing category with the largest normalised excess wins, unless the
/// runner-up is within `tie_margin` (then unassigned, "tied"). Heads that pass nothing are unassigned: "sink" or
/// "broad" when `shape_reason` says so, else "weak evidence" naming the closest category, or `no_evidence_reason`
/// when no category had evidence.
inline head_verdict decide_verdict(const head_evidence& e, std::vector<category_judgement> judgements,
                                   double tie_margin, const std::string& shape_reason, double shape_strength,
                                   std::vector<evidence_item> shape_evidence, const std::string& no_evidence_reason) {
  head_verdict v;
  v.layer = e.layer;
  v.head = e.head;
  for (const category_judgement& j : judgements) v.set_score(j.category, j.score);
  const bool sink = shape_reason == "sink";
  if (sink) {
    for (category_judgement& j : judgements) {
      if (!j.passed || j.lifts_sink) continue;
      j.passed = false;
      j.normalised_excess = std::min(j.normalised_excess, -1e-9);
      j.failure = "the head is a sink, and its attention off the sinks is not shown to follow the annotations";
    }
  }

  std::stable_sort(judgements.begin(), judgements.end(), [](const category_judgement& a, const category_judgement& b) {
    if (a.passed != b.passed) return a.passed;
    return a.normalised_excess > b.normalised_excess;
  });
  auto append_all = [&](std::size_t skip) {
    for (std::size_t i = 0; i < judgements.size(); ++i) {
      if (i == skip) continue;
      v.evidence.insert(v.evidence.end(), judgements[i].evidence.begin(), judgements[i].evidence.end());
    }
  };

  const category_judgement* best = judgements.empty() ? nullptr : &judgements[0];
  // A sink is unassigned unless its free attention passes an argmax test: Clark et al. (2019) read attention to
  // [SEP] as a no-op of heads whose function does not apply, so a head that parks most of its mass there can still
  // be a syntactic or coreference head on the rest.
  if (sink && (best == nullptr || !best->passed)) {
    v.label = head_label::unassigned;
    v.reason = shape_reason;
    v.confidence = shape_strength;
    v.evidence = std::move(shape_evidence);
    append_all(judgements.size());
    return v;
  }
  const category_judgement* second = judgements.size() > 1 ? &judgements[1] : nullptr;
  if (best != nullptr && best->passed) {
    if (second != nullptr && second->passed && best->normalised_excess - second->normalised_excess < tie_margin) {
      v.label = head_label::unassigned;
      v.reason = "tied: " + std::string(to_string(best->category)) + " and " +
                 std::string(to_string(second->category)) + " both beat their baselines by similar margins";
      v.confidence = 0;
      append_all(judgements.size());
      return v;
    }
    v.label = best->category;
    const double runner = (second != nullptr && second->passed) ? second->normalised_excess : 0.0;
    v.confidence = policy_clamp01(0.5 + 0.5 * policy_clamp01(best->normalised_excess - runner)) *
                   policy_reliability(best->count, 10.0);
    v.evidence = best->evidence;
    if (sink) v.evidence.insert(v.evidence.end(), shape_evidence.begin(), shape_evidence.end());
    append_all(0);
    return v;
  }

  v.label = head_label::unassigned;
  if (!shape_reason.empty()) {
    v.reason = shape_reason;
    v.confidence = shape_strength;
    v.evidence = std::move(shape_evidence);
    append_all(judgements.size());
    return v;
  }
  bool any = false;
  for (const category_judgement& j : judgements) any = any || !std::isnan(j.score);
  if (!any || best == nullptr) {
    v.reason = no_evidence_reason;
    v.confidence = 0;
    return v;
  }
  // The closest category among those with evidence.
  const category_judgement* closest = nullptr;
  for (const category_judgement& j : judgements) {
    if (std::isnan(j.score)) continue;
    if (closest == nullptr || j.normalised_excess > closest->normalised_excess) closest = &j;
  }
  v.reason = "weak evidence: no category beats its baseline by the required margin (closest: " +
             std::string(to_string(closest->category)) + (closest->failure.empty() ? "" : ", " + closest->failure) +
             ")";
  v.confidence = policy_clamp01(0.5 + 0.5 * policy_clamp01(-closest->normalised_excess));
  v.evidence = closest->evidence;
  for (const category_judgement& j : judgements) {
    if (&j != closest) v.evidence.insert(v.evidence.end(), j.evidence.begin(), j.evidence.end());
  }
  return v;
}

}  // namespace detail

/// A policy that judges each category against the baseline the literature uses for it. Scores (all "higher is
/// better", > 0 means past the requirement or above the baseline):
/// - syntactic: the best margin `accuracy - baseline_accuracy` over the relations (either direction) with at least
///   `min_relation_count` instances, the baseline being the best fixed offset for that relation (Clark et al.
///   2019, "dependency syntax"). Passes at `syntactic_margin`.
/// - coreference: `overall_accuracy - overall_baseline_accuracy`, the nearest-mention baseline (Clark et al.
///   2019, "coreference resolution"), with at least `min_mention_count` mentions. Passes at `coreference_margin`.
/// - discourse: `related_unit_accuracy - chain_baseline_accuracy` with at least `min_unit_count` units, passing at
///   `discourse_margin` only when the head also moves mass across unit boundaries (`cross_unit_mass >=
///   min_cross_unit_mass`, so a syntactic head whose arcs happen to follow the discourse tree inside units is not
///   taken for one). A head that fails that test (or a document without a discourse layer) can still pass on
///   focused long-range cross-sentence attention, the rule of `heuristic_policy`; the score is the larger of the
///   two routes' scores.
/// - positional: `top_offset_share - positional_min_share` at an offset in `positional_offsets` (Voita et al.
///   2019: a head is positional when at least 90% of its argmaxes sit at one relative position, in practice ±1).
///   Passes at 0.
/// A head passing several categories gets the one with the largest excess relative to the room above its
/// requirement (`(value - required) / (1 - required)`); within `tie_margin` of the runner-up it is unassigned,
/// "tied". Every figure is of the attention off the sinks (analysis/features.hpp, "Sinks"). A sink (sink mass >=
/// `sink_mass`) is unassigned, reason "sink", unless it passes syntactic, coreference, the related-unit route or
/// positional (argmax tests of its free attention); the cross-sentence route cannot lift it. A head passing none is
/// unassigned: "broad" (normalised entropy >= `broad_entropy`), else "weak evidence ..." naming the closest category,
/// or "no evidence" when nothing was measured.
class annotated_policy {
 public:
  struct options {
    /// Voita et al. 2019 ("syntactic heads"): a head is syntactic when its accuracy is at least 10 points above the
    /// most-frequent-relative-position baseline for some relation.
    double syntactic_margin = 0.10;
    /// Relations with fewer instances are ignored (small counts give chance margins). Not from the papers.
    std::int64_t min_relation_count = 20;
    /// Clark et al. 2019 compare antecedent accuracy with the nearest-mention baseline but set no threshold; the
    /// syntactic 10-point margin is used for the same kind of argmax accuracy.
    double coreference_margin = 0.10;
    std::int64_t min_mention_count = 20;  ///< fewer mentions with an antecedent: no coreference evidence
    /// Related-unit accuracy over the chain (previous-unit) baseline; the same 10 points (Huber & Carenini 2022
    /// read discourse structure from attention but set no per-head threshold).
    double discourse_margin = 0.10;
    std::int64_t min_unit_count = 10;         ///< fewer related units: no unit-level discourse evidence
    double min_cross_unit_mass = 0.5;         ///< a discourse head spends most of its mass outside the unit
    double min_cross_sentence_mass = 0.5;     ///< cross-sentence route: most mass in other sentences
    double max_cross_sentence_entropy = 0.5;  ///< ... focused (normalised entropy at most this)
    double min_cross_sentence_distance = 4;   ///< ... and long-range (mean distance in words)
    /// Voita et al. 2019 ("positional heads"): at least 90% of the argmaxes at one relative position.
    double positional_min_share = 0.9;
    /// Offsets a positional head may use (Voita et al.: in practice -1 and +1). Empty: any offset.
    std::vector<int> positional_offsets = {-1, 1};
    /// Clark et al. 2019 ("attending to separator tokens") find heads putting over half their mass on [CLS]/[SEP] and
    /// read that attention as a no-op; a sink mass (first word and separators) of 0.5 marks a sink.
    double sink_mass = 0.5;
    /// Normalised entropy from which a head is "broad" (1 is uniform). Not from the papers.
    double broad_entropy = 0.85;
    /// Two passing categories closer than this in normalised excess give "tied".
    double tie_margin = 0.05;
  };

  annotated_policy() = default;
  explicit annotated_policy(options opts) : options_(std::move(opts)) {}
  const options& settings() const noexcept { return options_; }
  static constexpr const char* name() noexcept { return "annotated"; }

  head_verdict classify(const head_evidence& e) const {
    const options& o = options_;
    std::vector<detail::category_judgement> judgements;
    judgements.push_back(judge_syntactic(e.syntactic));
    judgements.push_back(judge_coreference(e.coreference));
    judgements.push_back(judge_discourse(e.discourse, e.general));
    judgements.push_back(detail::judge_positional(e.positional, o.positional_min_share, o.positional_offsets));
    double strength = 0;
    std::vector<evidence_item> shape_evidence;
    const std::string shape = detail::sink_or_broad(e.general, o.sink_mass, o.broad_entropy, strength, shape_evidence);
    return detail::decide_verdict(e, std::move(judgements), o.tie_margin, shape, strength, std::move(shape_evidence),
                                  "no evidence");
  }

 private:
  detail::category_judgement judge_syntactic(const syntactic_evidence& s) const {
    detail::category_judgement j;
    j.category = head_label::syntactic;
    std::vector<const relation_evidence*> usable;
    for (const relation_evidence& r : s.relations) {
      if (r.count >= options_.min_relation_count) usable.push_back(&r);
    }
    if (usable.empty()) return j;
    std::stable_sort(usable.begin(), usable.end(),
                     [](const relation_evidence* a, const relation_evidence* b) { return a->margin() > b->margin(); });
    const relation_evidence& best = *usable.front();
    j.score = best.margin();
    j.count = best.count;
    for (std::size_t i = 0; i < usable.size() && i < 3; ++i) {
      const relation_evidence& r = *usable[i];
      j.evidence.push_back({r.relation + (r.dependent_to_head ? " dep->head" : " head->dep") +
                                " accuracy (n=" + std::to_string(r.count) + ", offset baseline " +
                                (r.baseline_offset > 0 ? "+" : "") + std::to_string(r.baseline_offset) + ")",
                            r.accuracy, r.baseline_accuracy});
    }
    const double required = best.baseline_accuracy + options_.syntactic_margin;
    j.normalised_excess = detail::normalised_excess(best.accuracy, required);
    if (j.score >= options_.syntactic_margin) {
      j.passed = true;
    } else {
      j.failure = "best relation " + best.relation + " beats its offset baseline by " + detail::policy_fixed(j.score) +
                  " < " + detail::policy_fixed(options_.syntactic_margin);
      j.normalised_excess = std::min(j.normalised_excess, -1e-9);
    }
    return j;
  }

  detail::category_judgement judge_coreference(const coreference_evidence& c) const {
    detail::category_judgement j;
    j.category = head_label::coreference;
    if (c.overall_count < options_.min_mention_count || c.overall_count <= 0) return j;
    j.score = c.overall_accuracy - c.overall_baseline_accuracy;
    j.count = c.overall_count;
    j.evidence.push_back({"antecedent accuracy (n=" + std::to_string(c.overall_count) + ", nearest-mention baseline)",
                          c.overall_accuracy, c.overall_baseline_accuracy});
    static const char* const type_names[] = {"pronoun", "proper noun", "nominal"};
    for (int t = 0; t < coreference_evidence::type_count; ++t) {
      if (c.count[t] <= 0) continue;
      j.evidence.push_back({std::string(type_names[t]) + " antecedent accuracy (n=" + std::to_string(c.count[t]) + ")",
                            c.accuracy[t], c.baseline_accuracy[t]});
    }
    const double required = c.overall_baseline_accuracy + options_.coreference_margin;
    j.normalised_excess = detail::normalised_excess(c.overall_accuracy, required);
    if (j.score >= options_.coreference_margin) {
      j.passed = true;
    } else {
      j.failure = "antecedent accuracy beats the nearest-mention baseline by " + detail::policy_fixed(j.score) + " < " +
                  detail::policy_fixed(options_.coreference_margin);
      j.normalised_excess = std::min(j.normalised_excess, -1e-9);
    }
    return j;
  }

  detail::category_judgement judge_discourse(const discourse_evidence& d, const general_evidence& g) const {
    const options& o = options_;
    detail::category_judgement units;
    units.category = head_label::discourse;
    if (d.unit_count >= o.min_unit_count && d.unit_count > 0) {
      units.score = d.related_unit_accuracy - d.chain_baseline_accuracy;
      units.count = d.unit_count;
      units.evidence.push_back({"related-unit accuracy (n=" + std::to_string(d.unit_count) + ", chain baseline)",
                                d.related_unit_accuracy, d.chain_baseline_accuracy});
      units.evidence.push_back({"cross-unit mass", d.cross_unit_mass, o.min_cross_unit_mass});
      const double required = d.chain_baseline_accuracy + o.discourse_margin;
      units.normalised_excess = detail::normalised_excess(d.related_unit_accuracy, required);
      if (units.score < o.discourse_margin) {
        units.failure = "related-unit accuracy beats the chain baseline by " + detail::policy_fixed(units.score) +
                        " < " + detail::policy_fixed(o.discourse_margin);
      } else if (d.cross_unit_mass < o.min_cross_unit_mass) {
        units.failure = "cross-unit mass " + detail::policy_fixed(d.cross_unit_mass) + " is below " +
                        detail::policy_fixed(o.min_cross_unit_mass);
      } else {
        units.passed = true;
      }
      if (!units.passed) units.normalised_excess = std::min(units.normalised_excess, -1e-9);
    }
    detail::category_judgement sentences = detail::judge_cross_sentence(
        d, g, o.min_cross_sentence_mass, o.max_cross_sentence_entropy, o.min_cross_sentence_distance);
    if (std::isnan(units.score)) return sentences;
    if (std::isnan(sentences.score)) return units;
    detail::category_judgement& chosen = (sentences.passed && !units.passed) ? sentences : units;
    detail::category_judgement& other = (&chosen == &units) ? sentences : units;
    chosen.score = std::max(units.score, sentences.score);  // lifts_sink stays the chosen route's
    chosen.evidence.insert(chosen.evidence.end(), other.evidence.begin(), other.evidence.end());
    return chosen;
  }

  options options_;
};

/// A policy that needs no annotations: it reads only positional, cross-sentence and general evidence, so its
/// verdicts are the same whether or not the document had dependency, coreference or discourse layers.
/// - positional: Voita et al.'s rule, as in `annotated_policy` (score `top_offset_share - positional_min_share`);
/// - discourse: focused, long-range cross-sentence attention (score `cross_sentence_mass - min_cross_sentence_mass`;
///   passes when the entropy is at most `max_cross_sentence_entropy` and the mean distance at least
///   `min_cross_sentence_distance`); the sentences are the document's (split from sentence-final punctuation by
///   the feature accumulators when a document has none);
/// - sink: first word plus separators hold at least `sink_mass` of the attention: unassigned, reason "sink",
///   unless it passes the positional rule (on its free argmax);
/// - a head passing neither positional nor discourse is unassigned: "broad" when its normalised entropy is at least
///   `broad_entropy`, otherwise "needs annotations" (syntactic and coreference heads cannot be told apart from
///   other focused heads without dependency and coreference layers, so they are not guessed; their scores are
///   NaN).
class heuristic_policy {
 public:
  struct options {
    double positional_min_share = 0.9;              ///< Voita et al. 2019, "positional heads"
    std::vector<int> positional_offsets = {-1, 1};  ///< Voita et al. 2019; empty: any offset
    double sink_mass = 0.5;       ///< Clark et al. 2019, "attending to separator tokens" (see `annotated_policy`)
    double broad_entropy = 0.85;  ///< not from the papers
    double min_cross_sentence_mass = 0.5;
    double max_cross_sentence_entropy = 0.5;
    double min_cross_sentence_distance = 4;
    double tie_margin = 0.05;
  };

  heuristic_policy() = default;
  explicit heuristic_policy(options opts) : options_(std::move(opts)) {}
  const options& settings() const noexcept { return options_; }
  static constexpr const char* name() noexcept { return "heuristic"; }

  head_verdict classify(const head_evidence& e) const {
    const options& o = options_;
    double strength = 0;
    std::vector<evidence_item> shape_evidence;
    const std::string shape = detail::sink_or_broad(e.general, o.sink_mass, o.broad_entropy, strength, shape_evidence);
    std::vector<detail::category_judgement> judgements;
    judgements.push_back(detail::judge_positional(e.positional, o.positional_min_share, o.positional_offsets));
    judgements.push_back(detail::judge_cross_sentence(e.discourse, e.general, o.min_cross_sentence_mass,
                                                      o.max_cross_sentence_entropy, o.min_cross_sentence_distance));
    head_verdict v =
        detail::decide_verdict(e, judgements, o.tie_margin, shape, strength, shape_evidence, "no evidence");
    if (!v.assigned() && shape.empty() && v.reason != "no evidence") {
      // Focused but neither positional nor long-range: may be syntactic or coreference; say so, don't guess.
      v.reason =
          "needs annotations: focused head that is neither positional nor long-range; syntactic or "
          "coreference evidence needs dependency and coreference layers";
      v.confidence = 0;
    }
    return v;
  }

 private:
  options options_;
};

}  // namespace headlens
