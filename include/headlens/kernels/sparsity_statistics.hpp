#pragma once
/// \file
/// `sparsity_statistics`: what sparse attention (`forward_options::sparsity`, kernels/attention_sparsity.hpp) did
/// to each head, accumulated over calls, layers and batch rows: the share of weights dropped, the attention mass
/// kept (the dense mass of the kept weights, before renormalising) and the output error (relative L2 distance of
/// the head's z from its dense z, computed in the same call).
///
/// Usage: set `forward_options::sparsity_report` to a `sparsity_statistics` together with a sparsity mode; every
/// forward call (of every layer, when the options go through `transformer::forward`) adds to it, keyed by the
/// module's layer index and the head. Reading a head's totals:
///   dropped_share()   dropped / visible weights, over every measured row
///   mean_mass_kept()  mean over measured rows of sum_{kept j} p_ij (the dense weights), 1 when nothing is dropped
///   output_error()    sqrt(sum_i |z_i - dense z_i|^2 / sum_i |dense z_i|^2) over measured rows
/// A row is measured when it has a visible key and no NaN. The dense z is the head's z without sparsity, from the
/// same scores (after any `scores` hook on the materialised path). Heads skipped by `head_mask` are not counted.
/// On the streaming path the report also counts the key tiles the second pass skipped (see
/// kernels/attention_sparsity.hpp). Asking for the report costs the dense z as well: one more P V product.
/// Not thread-safe: one report per concurrent forward call (merge them afterwards).

#include <cmath>
#include <cstdint>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// Sparsity totals of one head (see the file comment).
struct head_sparsity {
  std::uint64_t rows = 0;          ///< measured query rows
  std::uint64_t empty_rows = 0;    ///< measured rows that kept no weight (their z is 0)
  std::uint64_t weights = 0;       ///< visible weights of the measured rows
  std::uint64_t dropped = 0;       ///< of them, dropped
  double mass_kept = 0;            ///< sum over measured rows of the dense mass of the kept weights
  double error_squared = 0;        ///< sum over measured rows of |z - dense z|^2
  double dense_squared = 0;        ///< sum over measured rows of |dense z|^2
  std::uint64_t key_tiles = 0;     ///< streaming path: (query tile, key tile) pairs the second pass had to visit
  std::uint64_t skipped_tiles = 0; ///< of them, skipped because no weight in them is kept

  double dropped_share() const noexcept { return weights > 0 ? double(dropped) / double(weights) : 0.0; }
  double mean_mass_kept() const noexcept { return rows > 0 ? mass_kept / double(rows) : 1.0; }
  double output_error() const noexcept {
    return dense_squared > 0 ? std::sqrt(error_squared / dense_squared) : (error_squared > 0 ? HUGE_VAL : 0.0);
  }
  double skipped_tile_share() const noexcept {
    return key_tiles > 0 ? double(skipped_tiles) / double(key_tiles) : 0.0;
  }

  void merge(const head_sparsity& other) noexcept {
    rows += other.rows;
    empty_rows += other.empty_rows;
    weights += other.weights;
    dropped += other.dropped;
    mass_kept += other.mass_kept;
    error_squared += other.error_squared;
    dense_squared += other.dense_squared;
    key_tiles += other.key_tiles;
    skipped_tiles += other.skipped_tiles;
  }
};

/// Per-head sparsity totals of every layer that reported (see the file comment).
class sparsity_statistics {
 public:
  /// One more than the highest layer index that reported (0 when none has).
  Index layers() const noexcept { return Index(layers_.size()); }
  /// Heads of a layer (0 for a layer that did not report).
  Index heads(int layer) const noexcept {
    return layer >= 0 && layer < int(layers_.size()) ? Index(layers_[std::size_t(layer)].size()) : 0;
  }
  /// Totals of head h of a layer. Throws `argument_error` for a layer or head that never reported.
  const head_sparsity& head(int layer, Index h) const {
    if (h < 0 || h >= heads(layer)) {
      detail::fail<argument_error>("sparsity_statistics::head(", layer, ", ", h, "): no such head reported (",
                                   layers(), " layers, ", heads(layer), " heads in that layer)");
    }
    return layers_[std::size_t(layer)][std::size_t(h)];
  }
  /// Totals of every head of every layer together.
  head_sparsity total() const noexcept {
    head_sparsity sum;
    for (const auto& layer : layers_) {
      for (const auto& h : layer) sum.merge(h);
    }
    return sum;
  }
  /// Adds another report's totals (e.g. of another thread or process).
  void merge(const sparsity_statistics& other) {
    for (std::size_t l = 0; l < other.layers_.size(); ++l) {
      for (std::size_t h = 0; h < other.layers_[l].size(); ++h) {
        mutable_head(int(l), Index(h), Index(other.layers_[l].size())).merge(other.layers_[l][h]);
      }
    }
  }
  void clear() noexcept { layers_.clear(); }

  // ---- used by the kernels ---------------------------------------------------------------------------------------
  /// Totals of head h of a layer with `heads` heads, created on first use.
  head_sparsity& mutable_head(int layer, Index h, Index heads) {
    if (layer < 0) detail::fail<argument_error>("sparsity_statistics: layer is ", layer, ", expected >= 0");
    if (std::size_t(layer) >= layers_.size()) layers_.resize(std::size_t(layer) + 1);
    auto& row = layers_[std::size_t(layer)];
    if (Index(row.size()) < heads) row.resize(std::size_t(heads));
    return row[std::size_t(h)];
  }

 private:
  std::vector<std::vector<head_sparsity>> layers_;
};

}  // namespace headlens
