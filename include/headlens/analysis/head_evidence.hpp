#pragma once
/// \file
/// The evidence about one attention head that the feature accumulators produce and the classifier policies
/// consume: the contract between analysis/features (measuring) and analysis/policies (judging). Every figure is
/// over word-level attention rows; each category carries its own baseline so that a policy judges margins, not raw
/// numbers (Clark et al. 2019, Voita et al. 2019).
///
/// Values that could not be measured (no rows, no annotated relation, no coreference layer) are reported with a
/// count of 0, and policies treat a count of 0 as "no evidence", never as an accuracy of 0.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace headlens {

/// Offsets covered by the positional histogram: -max_offset..+max_offset.
inline constexpr int evidence_max_offset = 8;

/// Positional behaviour: where the head looks relative to the attending word.
struct positional_evidence {
  /// Mean attention mass at each relative offset (key word - query word), index offset + evidence_max_offset.
  std::array<double, 2 * evidence_max_offset + 1> offset_mass{};
  double self_mass = 0;      ///< mean mass on the word itself
  double previous_mass = 0;  ///< mean mass on the word before
  double next_mass = 0;      ///< mean mass on the word after
  int top_offset = 0;        ///< the most common offset of the row's free argmax (within ±evidence_max_offset)
  /// Share of rows whose free argmax is at `top_offset`, over the rows where that offset is a free column (Voita et
  /// al.: >= 0.9 at ±1 makes a positional head).
  double top_offset_share = 0;
  std::int64_t rows = 0;  ///< rows measured
};

/// The argmax accuracy of one dependency relation in one direction, against the best fixed-offset baseline.
struct relation_evidence {
  std::string relation;           ///< base UD relation (`nsubj`, `obj`, `amod`, ...)
  bool dependent_to_head = true;  ///< true: the dependent's row points at its head; false: head's row at dependent
  double accuracy = 0;            ///< share of instances where the argmax is right
  double baseline_accuracy = 0;   ///< accuracy of the best fixed offset for this relation and direction
  int baseline_offset = 0;        ///< that offset
  std::int64_t count = 0;         ///< instances
  double margin() const noexcept { return accuracy - baseline_accuracy; }
};

/// Syntactic behaviour: every relation with enough instances, best margin first.
struct syntactic_evidence {
  std::vector<relation_evidence> relations;
};

/// Coreference: does a mention's head word put its argmax on an earlier mention of its own cluster?
struct coreference_evidence {
  /// Mention types, by the UPOS of the mention's head word: pronoun (PRON), proper (PROPN), nominal (others).
  enum mention_type { pronoun = 0, proper = 1, nominal = 2, type_count = 3 };
  std::array<double, type_count> accuracy{};           ///< per type
  std::array<double, type_count> baseline_accuracy{};  ///< nearest earlier mention (of any cluster), per type
  std::array<std::int64_t, type_count> count{};        ///< mentions with an antecedent, per type
  double overall_accuracy = 0;
  double overall_baseline_accuracy = 0;
  std::int64_t overall_count = 0;
};

/// Discourse: attention across sentence, paragraph and discourse-unit boundaries, and whether a unit attends to
/// the unit it is related to. Masses are shares of the free attention (off the sinks).
struct discourse_evidence {
  double cross_sentence_mass = 0;      ///< share of the free mass on words of other sentences
  double cross_paragraph_mass = 0;     ///< share of the free mass on words of other paragraphs
  double cross_unit_mass = 0;          ///< share of the free mass (rows inside a unit) on words of other units
  double related_unit_accuracy = 0;    ///< share of units whose most-attended other unit is their parent
  double chain_baseline_accuracy = 0;  ///< share of units whose parent is the previous unit
  std::int64_t unit_count = 0;         ///< units with a parent that were measured
  std::int64_t rows = 0;
};

/// General shape of the attention. Entropy and distance describe the free attention (off the sinks, see
/// analysis/features.hpp); the sink, first-word, separator and punctuation masses are means over all rows.
struct general_evidence {
  double entropy = 0;  ///< entropy of the free attention over log(free keys), free-mass weighted: 0 one key, 1 uniform
  double mean_distance = 0;     ///< mean attended distance in words of the free attention, sum_j p_ij |i - j| / free
  double sink_mass = 0;         ///< mean mass on sink positions: the window's first word and the separators
  double first_token_mass = 0;  ///< mean mass on the first word of the window (rows after the first)
  double separator_mass = 0;    ///< mean mass on sentence-final punctuation (separators at word level)
  double punctuation_mass = 0;  ///< mean mass on punctuation (UPOS PUNCT)
  std::int64_t rows = 0;
};

/// Everything measured about one head.
struct head_evidence {
  int layer = 0;
  int head = 0;
  std::int64_t windows = 0;  ///< windows (or documents) the rows came from
  positional_evidence positional;
  syntactic_evidence syntactic;
  coreference_evidence coreference;
  discourse_evidence discourse;
  general_evidence general;
  bool annotated = false;  ///< syntactic/coreference/discourse figures come from gold annotations
};

}  // namespace headlens
