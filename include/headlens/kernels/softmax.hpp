#pragma once
/// \file
/// Row-wise softmax over xsimd batches with a scalar tail, and the scalar reference it is tested against.
///
/// Numerics (the contract every attention path follows):
/// - the row maximum is subtracted before exp, so logits of any finite magnitude (±1e4 and beyond) neither
///   overflow nor underflow to an all-zero row;
/// - a row whose entries are all -inf (a fully masked query) becomes all zeros, never NaN;
/// - a NaN anywhere in a row makes the whole row NaN (it is not silently dropped); +inf in a row makes it NaN.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <xsimd/xsimd.hpp>

#include "headlens/types.hpp"

namespace headlens {
namespace detail {

/// Scalar reference softmax of one row, in place (the definition the SIMD kernel must match).
template <class Scalar>
void softmax_row_scalar(Scalar* row, Index n) noexcept {
  Scalar max_value = -std::numeric_limits<Scalar>::infinity();
  bool has_nan = false;
  for (Index j = 0; j < n; ++j) {
    has_nan |= std::isnan(row[j]);
    max_value = std::max(max_value, row[j]);
  }
  if (has_nan) {
    std::fill(row, row + n, std::numeric_limits<Scalar>::quiet_NaN());
    return;
  }
  if (max_value == -std::numeric_limits<Scalar>::infinity()) {
    std::fill(row, row + n, Scalar(0));
    return;
  }
  Scalar sum = 0;
  for (Index j = 0; j < n; ++j) {
    row[j] = std::exp(row[j] - max_value);
    sum += row[j];
  }
  const Scalar inverse = Scalar(1) / sum;
  for (Index j = 0; j < n; ++j) row[j] *= inverse;
}

/// Maximum of a row and whether it holds a NaN (SIMD body, scalar tail).
template <class Scalar>
Scalar row_max(const Scalar* row, Index n, bool& has_nan) noexcept {
  using batch = xsimd::batch<Scalar>;
  constexpr Index width = static_cast<Index>(batch::size);
  const Index body = n - n % width;
  Scalar max_value = -std::numeric_limits<Scalar>::infinity();
  if (body > 0) {
    batch max_batch(-std::numeric_limits<Scalar>::infinity());
    auto nan_batch = batch(Scalar(0)) != batch(Scalar(0));  // all false
    for (Index j = 0; j < body; j += width) {
      const batch values = batch::load_unaligned(row + j);
      max_batch = xsimd::max(max_batch, values);
      nan_batch = nan_batch || xsimd::isnan(values);
    }
    alignas(64) Scalar lanes[width];
    max_batch.store_unaligned(lanes);
    for (Index l = 0; l < width; ++l) max_value = std::max(max_value, lanes[l]);
    has_nan |= xsimd::any(nan_batch);
  }
  for (Index j = body; j < n; ++j) {
    has_nan |= std::isnan(row[j]);
    max_value = std::max(max_value, row[j]);
  }
  return max_value;
}

/// row[j] = exp(row[j] - shift) in place; returns the sum (SIMD body, scalar tail).
template <class Scalar>
Scalar exp_shifted_sum(Scalar* row, Index n, Scalar shift) noexcept {
  using batch = xsimd::batch<Scalar>;
  constexpr Index width = static_cast<Index>(batch::size);
  const Index body = n - n % width;
  const batch shift_broadcast(shift);
  batch sum_batch(Scalar(0));
  for (Index j = 0; j < body; j += width) {
    const batch e = xsimd::exp(batch::load_unaligned(row + j) - shift_broadcast);
    e.store_unaligned(row + j);
    sum_batch += e;
  }
  Scalar sum = body > 0 ? xsimd::hadd(sum_batch) : Scalar(0);
  for (Index j = body; j < n; ++j) {
    row[j] = std::exp(row[j] - shift);
    sum += row[j];
  }
  return sum;
}

/// SIMD softmax of one row, in place. Same contract as `softmax_row_scalar`.
template <class Scalar>
void softmax_row(Scalar* row, Index n) noexcept {
  bool has_nan = false;
  const Scalar max_value = row_max(row, n, has_nan);
  if (has_nan) {
    std::fill(row, row + n, std::numeric_limits<Scalar>::quiet_NaN());
    return;
  }
  if (max_value == -std::numeric_limits<Scalar>::infinity()) {
    std::fill(row, row + n, Scalar(0));
    return;
  }
  const Scalar inverse = Scalar(1) / exp_shifted_sum(row, n, max_value);

  using batch = xsimd::batch<Scalar>;
  constexpr Index width = static_cast<Index>(batch::size);
  const Index body = n - n % width;
  const batch inverse_broadcast(inverse);
  for (Index j = 0; j < body; j += width) {
    (batch::load_unaligned(row + j) * inverse_broadcast).store_unaligned(row + j);
  }
  for (Index j = body; j < n; ++j) row[j] *= inverse;
}

/// One key tile of the online softmax (FlashAttention's recurrence) for one query row. `row` holds the tile's
/// scaled, masked logits and is overwritten with exp(logit - new maximum); `running_max` and `running_sum` carry
/// the row's maximum and sum of exponentials over the tiles seen so far (start at -inf and 0). Returns the factor
/// by which everything accumulated so far must be rescaled (0 on the first tile with a finite logit, 1 when the
/// maximum did not move). Numerics follow `softmax_row_scalar`: while every logit seen is -inf the row stays
/// all zeros (the sum stays 0); a NaN is reported through `has_nan`; +inf makes the sum NaN.
template <class Scalar>
Scalar online_softmax_tile(Scalar* row, Index n, Scalar& running_max, Scalar& running_sum, bool& has_nan) noexcept {
  const Scalar tile_max = row_max(row, n, has_nan);
  const Scalar new_max = std::max(running_max, tile_max);
  // While the whole row is masked, shift by 0 so that exp(-inf - shift) = 0 rather than NaN.
  const Scalar shift = new_max == -std::numeric_limits<Scalar>::infinity() ? Scalar(0) : new_max;
  const Scalar alpha = running_max == new_max ? Scalar(1) : std::exp(running_max - shift);
  const Scalar sum = exp_shifted_sum(row, n, shift);
  running_sum = running_sum * alpha + sum;
  running_max = new_max;
  return alpha;
}

/// Gemma 2's logit soft-capping in place: x becomes cap * tanh(x / cap), elementwise, the same formula on every
/// path (materialised, streaming, pattern rows) so that they agree bit for bit.
template <class Block, class Scalar>
void soft_cap(Block&& x, Scalar cap) noexcept {
  for (Index r = 0; r < x.rows(); ++r) {
    for (Index c = 0; c < x.cols(); ++c) x(r, c) = cap * std::tanh(x(r, c) / cap);
  }
}

/// Softmax of every row of a row-major block, in place.
template <class Scalar>
void softmax_rows(Scalar* data, Index rows, Index cols, Index row_stride) noexcept {
  for (Index i = 0; i < rows; ++i) softmax_row(data + i * row_stride, cols);
}

}  // namespace detail
}  // namespace headlens
