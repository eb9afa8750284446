#pragma once
/// \file
/// `feature_options`: how the feature accumulators (analysis/features.hpp) read word-level maps.

namespace headlens {

/// Options of the feature accumulators.
struct feature_options {
  /// A row must sum to 1 or to 0 within this absolute tolerance; entries may not be below `-row_sum_tolerance`.
  double row_sum_tolerance = 1e-3;
  /// The maps come from a causal (decoder) model: row i has i + 1 keys, which sets the entropy normaliser.
  bool causal = false;
  /// Judge heads on the attention off the sink positions (the window's first word and the separators; see the file
  /// comment). `false` treats every column alike: no sinks, every figure over the whole row.
  bool sinks_apart = true;
};

}  // namespace headlens
