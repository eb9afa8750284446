#pragma once
/// \file
/// `attention_sparsity`: top-k and probability-threshold sparse attention (`forward_options::sparsity`), and the
/// one rule by which both attention paths decide which weights of a row they keep.
///
/// For query row i, its visible keys (not hidden by causality, padding, a sliding window or an -inf `attn_mask`)
/// and its dense weights p_ij = softmax(s_i)_j over them:
///   none       every weight is kept: the dense kernels, bit for bit.
///   top_k      the k largest weights are kept: the visible keys ordered by logit, larger first, equal logits by
///              key index, lower first, and the first min(k, visible) of them taken. So exactly k are kept
///              (every visible key when there are at most k), and an exact tie at the k-th weight goes to the
///              earlier keys.
///   threshold  the weights p_ij >= tau are kept, tested on the logits as s_ij >= lse_i + log(tau), where
///              lse_i = log sum_j exp(s_ij) over the visible keys (the same test up to rounding). Ties at tau are
///              kept. tau = 0 keeps every visible key.
/// Renormalisation: the kept weights are divided by their sum, so each row of the pattern still sums to 1 and the
/// dropped mass is spread over the kept keys in proportion to their weights:
///   p'_ij = p_ij / sum_{j' kept} p_ij'  for kept j, 0 otherwise;   z_i = sum_j p'_ij v_j.
/// This equals a softmax over the kept logits. A row that keeps nothing (a threshold above all of its weights) gets
/// a zero pattern row and zero z, like a fully masked row. Masked keys are never counted, ranked or kept. A row
/// with a NaN (or +inf) logit is NaN, as in the dense kernels.
///
/// Both paths apply the rule to the logits they computed; those differ between the paths by rounding only, so the
/// paths agree within float rounding (a weight within rounding of the cut may fall on different sides of it).
/// How each path does it (kernels/multi_head_attention.hpp): the materialised path selects on each row of scores
/// after the `scores` hook and before the `pattern` hook, which sees the sparse, renormalised pattern. The
/// streaming path makes two passes over the key tiles: the first finds each row's maximum, log-sum-exp and (top-k)
/// cut, and each tile's row maxima; the second recomputes the logits, keeps what passes the cut and accumulates
/// P'V. A key tile whose every row's maximum logit lies below that row's cut holds no kept weight, provably (the
/// logits are recomputed bit for bit), and the second pass skips it: no Q K^T and no P V for that tile.

#include <algorithm>
#include <cmath>
#include <limits>
#include <xsimd/xsimd.hpp>

#include "headlens/error.hpp"
#include "headlens/kernels/softmax.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// Which weights of each attention row are kept (see the file comment).
enum class sparsity_mode {
  none,       ///< every weight (the dense kernels)
  top_k,      ///< the k largest of each row, ties to the lower key index
  threshold,  ///< the weights >= tau
};

/// Sparse attention options: `forward_options::sparsity`. The kept weights of each row are renormalised to sum
/// to 1 (see the file comment).
struct attention_sparsity {
  sparsity_mode mode = sparsity_mode::none;
  /// top_k: weights kept per row, at least 1 (a row with fewer visible keys keeps them all).
  Index k = 0;
  /// threshold: the smallest weight kept, in [0, 1].
  double tau = 0;

  /// Throws `argument_error` naming the option and its value unless the options are valid for the mode.
  void validate() const {
    switch (mode) {
      case sparsity_mode::none: return;
      case sparsity_mode::top_k:
        if (k < 1) {
          detail::fail<argument_error>("options.sparsity.k is ", k, ", expected k >= 1 for sparsity_mode::top_k");
        }
        return;
      case sparsity_mode::threshold:
        if (!(tau >= 0 && tau <= 1)) {  // also false for NaN
          detail::fail<argument_error>("options.sparsity.tau is ", tau,
                                       ", expected a probability in [0, 1] for sparsity_mode::threshold");
        }
        return;
    }
    detail::fail<argument_error>("options.sparsity.mode is ", int(mode), ", expected none, top_k or threshold");
  }
};

/// Top-k sparsity keeping k weights per row.
inline attention_sparsity top_k_sparsity(Index k) { return {sparsity_mode::top_k, k, 0}; }
/// Threshold sparsity keeping the weights >= tau.
inline attention_sparsity threshold_sparsity(double tau) { return {sparsity_mode::threshold, 0, tau}; }

namespace detail {

/// The cut of one row: key j with logit s is kept when s > value, or s == value and j <= index. Masked keys
/// (s = -inf) are never kept: "keep every visible key" is {-inf, -1}.
template <class Scalar>
struct row_cutoff {
  Scalar value = -std::numeric_limits<Scalar>::infinity();
  Index index = -1;
  bool keeps(Scalar s, Index j) const noexcept { return s > value || (s == value && j <= index); }
};

/// The threshold cut s >= lse + log(tau) of a row with maximum `max` and sum of exp(s - max) `sum`; both paths
/// compute it with this one expression.
template <class Scalar>
row_cutoff<Scalar> threshold_cutoff(Scalar max, Scalar sum, Scalar log_tau) noexcept {
  const Scalar value = max + (std::log(sum) + log_tau);
  if (value == -std::numeric_limits<Scalar>::infinity()) return {};  // tau = 0: every visible key
  return {value, std::numeric_limits<Index>::max()};
}

/// log(tau) in Scalar (-inf for tau = 0).
template <class Scalar>
Scalar log_tau(const attention_sparsity& sparsity) noexcept {
  return sparsity.tau > 0 ? Scalar(std::log(sparsity.tau)) : -std::numeric_limits<Scalar>::infinity();
}

/// One entry of a running top-k selection: a logit and its key.
template <class Scalar>
struct ranked_key {
  Scalar logit;
  Index key;
};

/// Whether a ranks before b: larger logit first, then lower key index (a function object, so that the selection
/// inlines it).
struct ranks_before {
  template <class Scalar>
  bool operator()(const ranked_key<Scalar>& a, const ranked_key<Scalar>& b) const noexcept {
    return a.logit > b.logit || (a.logit == b.logit && a.key < b.key);
  }
};

/// A running top-k selection over keys offered in increasing key order, in caller-owned storage: `buffer` of 2k
/// entries holds `size` candidates in key order, among them the k best so far; keys ranked at or below `floor`
/// (the k-th best logit at the last compaction; -inf at first) can no longer be among the k best and are not
/// stored. When the buffer fills, it keeps its k best (nth_element over their logits in `scratch`, 2k elements,
/// then one ordered pass): amortised O(1) per stored candidate, where a heap pays O(log k) per improvement.
template <class Scalar>
struct top_k_selection {
  ranked_key<Scalar>* buffer;
  Scalar* scratch;
  Index& size;
  Scalar& floor;
  Index k;

  /// Keeps the k best candidates, in key order, and raises the floor to the k-th logit (size must be >= k).
  /// Of the candidates tied at the k-th logit, the earliest keys are kept.
  void compact() const noexcept {
    for (Index i = 0; i < size; ++i) scratch[i] = buffer[i].logit;
    std::nth_element(scratch, scratch + (k - 1), scratch + size, [](Scalar a, Scalar b) { return a > b; });
    const Scalar value = scratch[k - 1];
    Index ties = k;
    for (Index i = 0; i < size; ++i) ties -= buffer[i].logit > value;
    Index kept = 0;
    for (Index i = 0; i < size; ++i) {
      const Scalar logit = buffer[i].logit;
      if (logit > value || (logit == value && ties-- > 0)) buffer[kept++] = buffer[i];
    }
    size = kept;
    floor = value;
  }
  /// Offers key j. A later key with a logit equal to the floor ranks after the k it ties with: not stored.
  /// Masked (-inf) and NaN logits are never above the floor.
  void offer(Scalar logit, Index j) const noexcept {
    if (!(logit > floor)) return;
    buffer[size++] = {logit, j};
    if (size == 2 * k) compact();
  }
  /// Offers keys j0..j0+n-1 with logits row[0..n), passing over whole SIMD batches with no logit above the floor.
  void offer_row(const Scalar* row, Index n, Index j0) const noexcept {
    using batch = xsimd::batch<Scalar>;
    constexpr Index width = static_cast<Index>(batch::size);
    Index c = 0;
    for (; c + width <= n; c += width) {
      if (!xsimd::any(batch::load_unaligned(row + c) > batch(floor))) continue;
      for (Index e = c; e < c + width; ++e) offer(row[e], j0 + e);
    }
    for (; c < n; ++c) offer(row[c], j0 + c);
  }
  /// The cut of the finished selection: its k-th ranked key (the latest key at the k-th logit), or every visible
  /// key when fewer than k were offered.
  row_cutoff<Scalar> cutoff() const noexcept {
    if (size < k) return {};
    compact();
    for (Index i = size - 1; i > 0; --i) {
      if (buffer[i].logit == floor) return {floor, buffer[i].key};
    }
    return {floor, buffer[0].key};
  }
};

/// Sets the logits of keys j0..j0+n-1 that `cut` does not keep to -inf, in place; returns how many it keeps.
/// SIMD batches with no logit equal to the cut's value need no key index.
template <class Scalar>
Index apply_cutoff(Scalar* row, Index n, Index j0, const row_cutoff<Scalar>& cut) noexcept {
  using batch = xsimd::batch<Scalar>;
  constexpr Index width = static_cast<Index>(batch::size);
  constexpr Scalar minus_infinity = -std::numeric_limits<Scalar>::infinity();
  const batch value(cut.value), dropped(minus_infinity), one(Scalar(1)), zero(Scalar(0));
  batch kept_batch(Scalar(0));
  Index kept = 0, c = 0;
  for (; c + width <= n; c += width) {
    const batch s = batch::load_unaligned(row + c);
    if (xsimd::any(s == value)) {  // a tie with the cut: decided by key index
      for (Index e = c; e < c + width; ++e) {
        if (cut.keeps(row[e], j0 + e)) {
          ++kept;
        } else {
          row[e] = minus_infinity;
        }
      }
      continue;
    }
    const auto keep = s > value;
    xsimd::select(keep, s, dropped).store_unaligned(row + c);
    kept_batch += xsimd::select(keep, one, zero);
  }
  for (; c < n; ++c) {
    if (cut.keeps(row[c], j0 + c)) {
      ++kept;
    } else {
      row[c] = minus_infinity;
    }
  }
  return kept + Index(xsimd::hadd(kept_batch));
}

/// The top-k cut of a whole row of n logits (no NaN), with `scratch` of n elements.
template <class Scalar>
row_cutoff<Scalar> top_k_cutoff(const Scalar* row, Index n, Index k, Scalar* scratch) noexcept {
  Index visible = 0;
  for (Index j = 0; j < n; ++j) {
    if (row[j] > -std::numeric_limits<Scalar>::infinity()) scratch[visible++] = row[j];
  }
  if (visible <= k) return {};
  std::nth_element(scratch, scratch + (k - 1), scratch + visible, [](Scalar a, Scalar b) { return a > b; });
  const Scalar value = scratch[k - 1];
  Index ties = k;  // of the keys with logit == value, the first `ties` are kept
  for (Index j = 0; j < n; ++j) ties -= row[j] > value;
  for (Index j = 0; j < n; ++j) {
    if (row[j] == value && --ties == 0) return {value, j};
  }
  return {value, n - 1};  // not reached: `value` occurs at least `ties` times
}

/// What the sparse softmax of one row did, for `sparsity_statistics`.
template <class Scalar>
struct sparse_row_outcome {
  Index visible = 0, kept = 0;
  Scalar mass_kept = 0;   ///< dense mass of the kept weights
  bool measured = false;  ///< the row had a visible key and no NaN
};

/// The materialised path's sparse softmax of one row of n logits, in place (see the file comment). `scratch`
/// holds n elements; `dense`, when not null, n elements that receive the dense softmax of the row.
template <class Scalar>
sparse_row_outcome<Scalar> sparse_softmax_row(Scalar* row, Index n, const attention_sparsity& sparsity,
                                              Scalar* scratch, Scalar* dense) noexcept {
  constexpr Scalar infinity = std::numeric_limits<Scalar>::infinity();
  bool nan = false;
  const Scalar max = row_max(row, n, nan);
  if (nan || max == infinity) {
    std::fill(row, row + n, std::numeric_limits<Scalar>::quiet_NaN());
    if (dense != nullptr) std::fill(dense, dense + n, std::numeric_limits<Scalar>::quiet_NaN());
    return {};
  }
  if (max == -infinity) {  // fully masked
    std::fill(row, row + n, Scalar(0));
    if (dense != nullptr) std::fill(dense, dense + n, Scalar(0));
    return {};
  }
  row_cutoff<Scalar> cut;
  if (sparsity.mode == sparsity_mode::top_k) cut = top_k_cutoff(row, n, sparsity.k, scratch);
  std::copy(row, row + n, scratch);
  const Scalar sum = exp_shifted_sum(scratch, n, max);
  if (sparsity.mode == sparsity_mode::threshold) cut = threshold_cutoff(max, sum, log_tau<Scalar>(sparsity));
  sparse_row_outcome<Scalar> outcome;
  outcome.measured = true;
  Scalar kept_sum = 0;
  for (Index j = 0; j < n; ++j) {
    const Scalar s = row[j];
    outcome.visible += s > -infinity;
    if (cut.keeps(s, j)) {
      row[j] = scratch[j];
      kept_sum += scratch[j];
      ++outcome.kept;
    } else {
      row[j] = Scalar(0);
    }
  }
  if (dense != nullptr) {
    const Scalar inverse = Scalar(1) / sum;
    for (Index j = 0; j < n; ++j) dense[j] = scratch[j] * inverse;
  }
  outcome.mass_kept = kept_sum / sum;
  if (kept_sum > Scalar(0)) {
    const Scalar inverse = Scalar(1) / kept_sum;
    for (Index j = 0; j < n; ++j) row[j] *= inverse;
  }
  return outcome;
}

}  // namespace detail
}  // namespace headlens
