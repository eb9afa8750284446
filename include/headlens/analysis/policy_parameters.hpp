#pragma once
/// \file
/// The settings of the built-in policies (analysis/policies.hpp) as the named parameters a head card's provenance
/// records (`card_provenance::policy_parameters`, analysis/head_card.hpp), so that a card says which margins and
/// thresholds its labels were decided with. Numbers are written as the shortest text that reads back as the same
/// value; offsets as a comma-separated list ("any" when empty). Standard library only.
///
///     card.provenance.policy = headlens::annotated_policy::name();
///     card.provenance.policy_parameters = headlens::policy_parameters(headlens::annotated_policy());

#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "headlens/analysis/head_card.hpp"
#include "headlens/analysis/policies.hpp"

namespace headlens {
namespace detail {

inline std::string parameter_text(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}
inline std::string parameter_text(std::int64_t value) { return std::to_string(value); }
inline std::string parameter_text(const std::vector<int>& offsets) {
  if (offsets.empty()) return "any";
  std::string out;
  for (int o : offsets) out += (out.empty() ? "" : ",") + std::to_string(o);
  return out;
}

}  // namespace detail

/// Every setting of an `annotated_policy`, by the name of its `options` member.
inline card_parameters policy_parameters(const annotated_policy& policy) {
  const annotated_policy::options& o = policy.settings();
  using detail::parameter_text;
  return {{"syntactic_margin", parameter_text(o.syntactic_margin)},
          {"min_relation_count", parameter_text(o.min_relation_count)},
          {"coreference_margin", parameter_text(o.coreference_margin)},
          {"min_mention_count", parameter_text(o.min_mention_count)},
          {"discourse_margin", parameter_text(o.discourse_margin)},
          {"min_unit_count", parameter_text(o.min_unit_count)},
          {"min_cross_unit_mass", parameter_text(o.min_cross_unit_mass)},
          {"min_cross_sentence_mass", parameter_text(o.min_cross_sentence_mass)},
          {"max_cross_sentence_entropy", parameter_text(o.max_cross_sentence_entropy)},
          {"min_cross_sentence_distance", parameter_text(o.min_cross_sentence_distance)},
          {"positional_min_share", parameter_text(o.positional_min_share)},
          {"positional_offsets", parameter_text(o.positional_offsets)},
          {"sink_mass", parameter_text(o.sink_mass)},
          {"broad_entropy", parameter_text(o.broad_entropy)},
          {"tie_margin", parameter_text(o.tie_margin)}};
}

/// Every setting of a `heuristic_policy`, by the name of its `options` member.
inline card_parameters policy_parameters(const heuristic_policy& policy) {
  const heuristic_policy::options& o = policy.settings();
  using detail::parameter_text;
  return {{"positional_min_share", parameter_text(o.positional_min_share)},
          {"positional_offsets", parameter_text(o.positional_offsets)},
          {"sink_mass", parameter_text(o.sink_mass)},
          {"broad_entropy", parameter_text(o.broad_entropy)},
          {"min_cross_sentence_mass", parameter_text(o.min_cross_sentence_mass)},
          {"max_cross_sentence_entropy", parameter_text(o.max_cross_sentence_entropy)},
          {"min_cross_sentence_distance", parameter_text(o.min_cross_sentence_distance)},
          {"tie_margin", parameter_text(o.tie_margin)}};
}

}  // namespace headlens
