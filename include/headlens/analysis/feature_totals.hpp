#pragma once
/// \file
/// The exact totals of the feature accumulators (analysis/features.hpp): integer counts and fixed-point sums, so
/// accumulators fed the same windows in any split and merged in any order are equal bit for bit
/// (`head_feature_totals`), and what one head measured in one window before it is added (`feature_window_totals`).

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <headlens/analysis/head_evidence.hpp>
#include <vector>

namespace headlens {
namespace detail {

/// Fixed-point scales of the exact totals.
inline constexpr double feature_mass_scale = 4294967296.0;   // 2^32
inline constexpr double feature_distance_scale = 1048576.0;  // 2^20

inline std::int64_t feature_to_fixed(double value, double scale) {
  return static_cast<std::int64_t>(std::floor(value * scale + 0.5));
}

inline constexpr int feature_offset_slots = 2 * evidence_max_offset + 1;

}  // namespace detail

/// Exact totals of one relation in one direction.
struct relation_direction_totals {
  std::int64_t count = 0;    ///< instances
  std::int64_t correct = 0;  ///< instances whose argmax was right
  /// Instances whose target lies at offset d from the attending word, index d + evidence_max_offset.
  std::array<std::int64_t, detail::feature_offset_slots> at_offset{};

  bool operator==(const relation_direction_totals& o) const {
    return count == o.count && correct == o.correct && at_offset == o.at_offset;
  }
  relation_direction_totals& operator+=(const relation_direction_totals& o) {
    count += o.count;
    correct += o.correct;
    for (int d = 0; d < detail::feature_offset_slots; ++d)
      at_offset[static_cast<std::size_t>(d)] += o.at_offset[static_cast<std::size_t>(d)];
    return *this;
  }
};

/// Exact totals of one base relation.
struct relation_totals {
  std::string relation;
  relation_direction_totals dependent_to_head;
  relation_direction_totals head_to_dependent;

  bool operator==(const relation_totals& o) const {
    return relation == o.relation && dependent_to_head == o.dependent_to_head &&
           head_to_dependent == o.head_to_dependent;
  }
};

/// The whole state of one head's accumulator: integer counts and fixed-point sums (masses in units of 2^-32,
/// distances in units of 2^-20 words), so that adding two of them is exact. This is what is merged and what the
/// JSON form (analysis/features_json.hpp) stores.
struct head_feature_totals {
  int layer = 0;
  int head = 0;
  std::int64_t windows = 0;            ///< windows added
  std::int64_t annotated_windows = 0;  ///< of which from a document with annotations
  std::int64_t rows = 0;               ///< measured rows (owned, not fully masked)
  // positional
  std::array<std::int64_t, detail::feature_offset_slots> offset_mass{};  ///< fixed point, summed over rows
  std::array<std::int64_t, detail::feature_offset_slots> offset_rows{};  ///< rows where the offset exists in the window
  std::array<std::int64_t, detail::feature_offset_slots> argmax_at_offset{};  ///< rows whose free argmax is there
  std::array<std::int64_t, detail::feature_offset_slots> argmax_rows{};  ///< rows where the offset is a free column
  // sinks
  std::int64_t sink_mass = 0;  ///< fixed point, mass on sink columns summed over rows
  std::int64_t free_mass = 0;  ///< fixed point, mass on free columns summed over rows
  // general (over the free mass)
  std::int64_t entropy = 0;       ///< fixed point, sum of free mass x normalised entropy of the free attention
  std::int64_t entropy_mass = 0;  ///< fixed point, free mass of the rows with at least two free keys
  std::int64_t distance = 0;      ///< distance fixed point (2^-20 words), free mass x distance
  std::int64_t first_token_mass = 0;
  std::int64_t first_token_rows = 0;
  std::int64_t separator_mass = 0;
  std::int64_t punctuation_mass = 0;
  // discourse (free mass on words of other sentences, paragraphs, units)
  std::int64_t cross_sentence_mass = 0;
  std::int64_t cross_paragraph_mass = 0;
  std::int64_t cross_unit_mass = 0;
  std::int64_t unit_free_mass = 0;  ///< fixed point, free mass of the rows of words inside a discourse unit
  std::int64_t unit_rows = 0;       ///< rows of words inside a discourse unit
  std::int64_t units = 0;           ///< units judged
  std::int64_t units_related_correct = 0;
  std::int64_t units_chain_correct = 0;
  // coreference
  std::array<std::int64_t, coreference_evidence::type_count> coreference_count{};
  std::array<std::int64_t, coreference_evidence::type_count> coreference_correct{};
  std::array<std::int64_t, coreference_evidence::type_count> coreference_baseline_correct{};
  // syntactic
  std::vector<relation_totals> relations;  ///< sorted by relation name, only relations with instances

  bool operator==(const head_feature_totals& o) const {
    return layer == o.layer && head == o.head && windows == o.windows && annotated_windows == o.annotated_windows &&
           rows == o.rows && offset_mass == o.offset_mass && offset_rows == o.offset_rows &&
           argmax_at_offset == o.argmax_at_offset && argmax_rows == o.argmax_rows && sink_mass == o.sink_mass &&
           free_mass == o.free_mass && entropy == o.entropy && entropy_mass == o.entropy_mass &&
           distance == o.distance && first_token_mass == o.first_token_mass && first_token_rows == o.first_token_rows &&
           separator_mass == o.separator_mass && punctuation_mass == o.punctuation_mass &&
           cross_sentence_mass == o.cross_sentence_mass && cross_paragraph_mass == o.cross_paragraph_mass &&
           cross_unit_mass == o.cross_unit_mass && unit_free_mass == o.unit_free_mass && unit_rows == o.unit_rows &&
           units == o.units && units_related_correct == o.units_related_correct &&
           units_chain_correct == o.units_chain_correct && coreference_count == o.coreference_count &&
           coreference_correct == o.coreference_correct &&
           coreference_baseline_correct == o.coreference_baseline_correct && relations == o.relations;
  }
  bool operator!=(const head_feature_totals& o) const { return !(*this == o); }
};

namespace detail {

/// What one head measured in one window, before it is added to the totals (so that a bad row leaves the
/// accumulator untouched).
struct feature_window_totals {
  std::int64_t rows = 0;
  std::array<double, feature_offset_slots> offset_mass{};
  std::array<std::int64_t, feature_offset_slots> offset_rows{};
  std::array<std::int64_t, feature_offset_slots> argmax_at_offset{};
  std::array<std::int64_t, feature_offset_slots> argmax_rows{};
  double sink_mass = 0, free_mass = 0;
  double entropy = 0, entropy_mass = 0;
  double distance = 0;
  double first_token_mass = 0;
  std::int64_t first_token_rows = 0;
  double separator_mass = 0, punctuation_mass = 0;
  double cross_sentence_mass = 0, cross_paragraph_mass = 0, cross_unit_mass = 0, unit_free_mass = 0;
  std::int64_t unit_rows = 0, units = 0, units_related_correct = 0, units_chain_correct = 0;
  std::array<std::int64_t, coreference_evidence::type_count> coreference_count{}, coreference_correct{},
      coreference_baseline_correct{};
  /// Per relation of the prepared document: [0] dependent_to_head, [1] head_to_dependent.
  std::vector<std::array<relation_direction_totals, 2>> relations;

  void reset(std::size_t relation_count) {
    std::vector<std::array<relation_direction_totals, 2>> keep;
    keep.swap(relations);
    *this = feature_window_totals();
    relations.swap(keep);
    relations.assign(relation_count, {});
  }
};

}  // namespace detail
}  // namespace headlens
