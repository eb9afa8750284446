#pragma once
/// \file
/// What the causal check of labels (`headlens/analysis/causal_check.hpp`) found, per label: the effect of ablating
/// the label's heads on the tokens of its phenomenon, the same effect for random head sets, the permutation p-value
/// and a verdict. Plain data, kept apart from the computation so reports (`headlens/analysis/report.hpp`) can carry
/// it without the machinery. How to read it: `docs/causal-check.md`.

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/analysis/verdict.hpp"

namespace headlens {

/// The verdict of the causal check on one label.
enum class causal_verdict {
  supported,      ///< ablating the label's heads hurts its phenomenon's tokens more than random heads do (p < alpha)
  not_supported,  ///< the check ran and did not show that
  not_testable,   ///< the check could not run; `label_causal_check::reason` says why
};

/// "supported", "not supported" or "not testable".
inline constexpr std::string_view to_string(causal_verdict v) noexcept {
  switch (v) {
    case causal_verdict::supported:
      return "supported";
    case causal_verdict::not_supported:
      return "not supported";
    case causal_verdict::not_testable:
      break;
  }
  return "not testable";
}

/// Where the random head sets of a label were drawn from.
enum class random_scope {
  none,         ///< no random set was drawn (the label is not testable)
  same_layers,  ///< as many heads in each layer as the label has there
  any_layer,    ///< anywhere in the model (a layer had too few other heads, or too few distinct sets)
};

/// "none", "same layers" or "any layer".
inline constexpr std::string_view to_string(random_scope s) noexcept {
  switch (s) {
    case random_scope::same_layers:
      return "same layers";
    case random_scope::any_layer:
      return "any layer";
    case random_scope::none:
      break;
  }
  return "none";
}

/// The causal check of one label. Loss changes are ablated minus clean, pooled over the scored tokens of every
/// unit; NaN where not measured.
struct label_causal_check {
  head_label label = head_label::syntactic;
  std::vector<head_ref> heads;  ///< the heads whose verdict has this label, layer by layer
  causal_verdict verdict = causal_verdict::not_testable;
  /// Not testable: why. Otherwise a note, possibly empty (e.g. where the random sets came from, or that discourse
  /// tokens were sentence starts only).
  std::string reason;
  std::int64_t phenomenon_tokens = 0;  ///< scored tokens carrying the phenomenon, over all units
  std::int64_t other_tokens = 0;       ///< the other scored tokens (0 for positional)
  double phenomenon_change = std::numeric_limits<double>::quiet_NaN();  ///< mean loss change there, label ablated
  double other_change = std::numeric_limits<double>::quiet_NaN();       ///< the same on the other tokens
  /// phenomenon_change - other_change (positional: phenomenon_change, the mean over all tokens).
  double effect = std::numeric_limits<double>::quiet_NaN();
  random_scope scope = random_scope::none;
  double possible_sets = 0;            ///< distinct random sets the scope holds (may be huge; a double)
  bool exact = false;                  ///< every possible set was evaluated (possible_sets <= the sets asked)
  std::vector<double> random_effects;  ///< the effect of each random set, in draw order
  double random_mean = std::numeric_limits<double>::quiet_NaN();
  double random_sd = std::numeric_limits<double>::quiet_NaN();  ///< sample standard deviation (n - 1)
  /// (effect - random_mean) / random_sd; +-inf when the random effects are all equal and differ from `effect`.
  double z = std::numeric_limits<double>::quiet_NaN();
  std::size_t random_at_least = 0;  ///< random sets whose effect is >= `effect`
  /// (1 + random_at_least) / (1 + random sets): at least 1 / (1 + random sets).
  double p_value = std::numeric_limits<double>::quiet_NaN();
};

/// The causal check of every category (syntactic, coreference, discourse, positional) and how it was run.
struct causal_check_result {
  ablation kind = ablation::zero;  ///< how heads were ablated
  std::size_t random_sets = 0;     ///< random sets asked per label (N)
  std::uint64_t seed = 0;          ///< seed of the draws
  double alpha = 0.05;             ///< significance level of "supported"
  std::size_t units = 0;           ///< sequences evaluated
  std::int64_t tokens = 0;         ///< scored tokens over all units
  /// One per category, in `head_categories` order.
  std::array<label_causal_check, head_category_count> labels;

  /// The check of `category`; throws `argument_error` for `unassigned`, which claims nothing to check.
  const label_causal_check& of(head_label category) const {
    const auto i = static_cast<std::size_t>(category);
    if (i >= head_category_count) {
      detail::fail<argument_error>("causal_check_result::of: label '", to_string(category),
                                   "' is not checked, expected syntactic, coreference, discourse or positional");
    }
    return labels[i];
  }
};

}  // namespace headlens
