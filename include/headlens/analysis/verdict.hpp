#pragma once
/// \file
/// The verdict a classifier policy gives one attention head: a label (syntactic, coreference, discourse,
/// positional, or unassigned with the reason), a score for each of the four categories, a confidence, and the
/// evidence (measured value and its baseline) behind it. Produced by the policies of
/// `headlens/analysis/policies.hpp` (or a user's own) and summarised by `headlens/analysis/report.hpp`.

#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace headlens {

/// The function a head is judged to serve. The first four are the categories every verdict scores;
/// `unassigned` is a verdict, not a category: it says no category was supported (and `head_verdict::reason`
/// says why).
enum class head_label { syntactic = 0, coreference = 1, discourse = 2, positional = 3, unassigned = 4 };

/// Number of scored categories (every label but `unassigned`).
inline constexpr std::size_t head_category_count = 4;
/// Number of labels, `unassigned` included.
inline constexpr std::size_t head_label_count = 5;

/// The four categories, in enum order (which is also the order of `head_verdict::scores`).
inline constexpr std::array<head_label, head_category_count> head_categories = {
    head_label::syntactic, head_label::coreference, head_label::discourse, head_label::positional};

/// Every label, in enum order.
inline constexpr std::array<head_label, head_label_count> head_labels = {head_label::syntactic, head_label::coreference,
                                                                         head_label::discourse, head_label::positional,
                                                                         head_label::unassigned};

/// The lower-case name of a label: "syntactic", "coreference", "discourse", "positional", "unassigned" (the
/// strings of the report schema, `docs/report-schema.md`).
inline constexpr std::string_view to_string(head_label label) noexcept {
  switch (label) {
    case head_label::syntactic:
      return "syntactic";
    case head_label::coreference:
      return "coreference";
    case head_label::discourse:
      return "discourse";
    case head_label::positional:
      return "positional";
    case head_label::unassigned:
      break;
  }
  return "unassigned";
}

/// The label named `name` (as written by `to_string`), or nothing for any other string.
inline std::optional<head_label> parse_head_label(std::string_view name) noexcept {
  for (head_label label : head_labels) {
    if (to_string(label) == name) return label;
  }
  return std::nullopt;
}

/// One number behind a verdict: what was measured and what it was compared with. `baseline` is NaN when the
/// value has no baseline (a mass, an entropy): then `has_baseline()` is false and reports leave it empty.
struct evidence_item {
  std::string name;  ///< what was measured, e.g. `nsubj dep->head accuracy` or `first-word mass`
  double value = 0;  ///< the measured value
  double baseline = std::numeric_limits<double>::quiet_NaN();  ///< its baseline or threshold, NaN when none

  bool has_baseline() const noexcept { return !std::isnan(baseline); }
};

/// The verdict on one head.
struct head_verdict {
  int layer = 0;
  int head = 0;
  head_label label = head_label::unassigned;
  /// One score per category, indexed by `head_label` (see `score`). What a score means is the policy's to say
  /// (the built-in policies: margin over the category's baseline, so > 0 means "better than the baseline");
  /// NaN when the policy had no evidence for the category at all.
  std::array<double, head_category_count> scores = {
      std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN(),
      std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
  /// How sure the policy is of `label`, in [0, 1] (for `unassigned`: of there being no supported category).
  double confidence = 0;
  /// Why the head is unassigned (`sink`, `broad`, `weak evidence ...`, `tied ...`, `needs annotations`, `no
  /// evidence`); for an assigned head, empty or a short note.
  std::string reason;
  /// The numbers behind the verdict, most important first (reports show the first ones as "top evidence").
  std::vector<evidence_item> evidence;

  /// The score of `category`; NaN for `unassigned` (which has no score).
  double score(head_label category) const noexcept {
    const auto i = static_cast<std::size_t>(category);
    return i < head_category_count ? scores[i] : std::numeric_limits<double>::quiet_NaN();
  }
  /// Sets the score of `category` (ignored for `unassigned`).
  void set_score(head_label category, double value) noexcept {
    const auto i = static_cast<std::size_t>(category);
    if (i < head_category_count) scores[i] = value;
  }
  bool assigned() const noexcept { return label != head_label::unassigned; }
};

}  // namespace headlens
