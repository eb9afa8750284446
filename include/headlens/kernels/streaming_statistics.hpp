#pragma once
/// \file
/// `attention_statistics<Scalar>`: per-head attention statistics computed inside the streaming kernel's tile loop,
/// without ever forming a [T_q x T_k] map, so a long context is instrumented in O(heads x T) memory.
///
/// Usage: set `forward_options::statistics` to an `attention_statistics` (optionally with segment ids and marked
/// tokens); after `forward`, `stats.head(b, h)` holds the statistics of head h on sequence b of the batch. Heads
/// that run on the materialised path (because a hook wants their `scores` or `pattern`) get the same statistics
/// computed from their pattern after the `pattern` hook, so an intervention on the pattern is reflected.
///
/// Each statistic, for query row i (at position p_i) and keys j (at positions 0..T_k-1), pattern P:
///   max_weight[i]    max_j P[i][j]                         (0 for a fully masked row)
///   argmax[i]        the first j where that maximum is     (-1 for a fully masked row)
///   entropy[i]       -sum_j P[i][j] log P[i][j], in nats   (0 for a fully masked row)
///   same_segment[i]  sum of P[i][j] over keys j with segment_ids[j] == segment_ids[p_i]  (0 without segment ids)
///   marked_mass[i]   sum of P[i][j] over keys j with marked[j]                             (0 without marked)
///   offset_mass[o + max_offset]  sum over rows i of P[i][j] at key position j - p_i = o, |o| <= max_offset
///   far_mass         sum over rows i of the mass at |j - p_i| > max_offset
/// A row with a NaN logit has NaN statistics (argmax -1). Self-attention only uses `same_segment` with query
/// positions inside the segment ids (the ids cover the keys, which include the queries).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "headlens/error.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// Statistics of one head on one sequence; see the file comment for each member.
template <class Scalar>
struct head_statistics {
  std::vector<Scalar> max_weight;   ///< [T_q]
  std::vector<Index> argmax;        ///< [T_q], key index, -1 for a fully masked or NaN row
  std::vector<Scalar> entropy;      ///< [T_q], nats
  std::vector<Scalar> same_segment; ///< [T_q]
  std::vector<Scalar> marked_mass;  ///< [T_q]
  std::vector<Scalar> offset_mass;  ///< [2 max_offset + 1], summed over query rows
  Scalar far_mass = 0;              ///< summed over query rows
};

/// Requests streaming statistics from `multi_head_attention::forward*` and receives them (see the file comment).
template <class Scalar>
class attention_statistics {
 public:
  /// `max_offset`: the relative offsets -max_offset..max_offset get a bin each.
  explicit attention_statistics(Index max_offset = 8) : max_offset_(max_offset) {
    if (max_offset < 0) detail::fail<argument_error>("attention_statistics: max_offset is ", max_offset, ", expected >= 0");
  }

  /// Segment id of every key position (a sentence or document index), [T_k] shared by the batch or
  /// [batch*T_k]; empty: no `same_segment` statistic.
  std::vector<Index> segment_ids;
  /// Marked key positions (separators, a first-token sink, entity mentions), [T_k] or [batch*T_k]; empty: none.
  std::vector<bool> marked;

  Index max_offset() const noexcept { return max_offset_; }
  /// Sequences and heads of the last forward call.
  Index batch() const noexcept { return batch_; }
  Index heads() const noexcept { return heads_; }
  /// Statistics of head h on sequence b of the last forward call. Heads skipped by `head_mask` have empty rows.
  const head_statistics<Scalar>& head(Index b, Index h) const {
    if (b < 0 || b >= batch_ || h < 0 || h >= heads_) {
      detail::fail<argument_error>("attention_statistics::head(", b, ", ", h, "): expected b < ", batch_,
                                   " and h < ", heads_);
    }
    return heads_data_[std::size_t(b * heads_ + h)];
  }
  /// Bytes held by the results.
  std::size_t bytes() const noexcept {
    std::size_t total = 0;
    for (const auto& s : heads_data_) {
      total += (s.max_weight.size() + s.entropy.size() + s.same_segment.size() + s.marked_mass.size() +
                s.offset_mass.size()) * sizeof(Scalar) + s.argmax.size() * sizeof(Index);
    }
    return total;
  }

  // ---- used by the kernels ---------------------------------------------------------------------------------------
  /// Checks the inputs against the call's shape and sizes the results (all allocation happens here).
  void prepare(Index batch, Index heads, Index t_q, Index t_k) {
    for (const auto& [size, name] : {std::pair<std::size_t, const char*>{segment_ids.size(), "segment_ids"},
                                     std::pair<std::size_t, const char*>{marked.size(), "marked"}}) {
      if (size != 0 && Index(size) != t_k && Index(size) != batch * t_k) {
        detail::fail<shape_error>("attention_statistics::", name, " has ", size, " entries, expected T_k = ", t_k,
                                  " or batch*T_k = ", batch * t_k);
      }
    }
    batch_ = batch;
    heads_ = heads;
    t_k_ = t_k;
    heads_data_.assign(std::size_t(batch * heads), head_statistics<Scalar>{});
    for (auto& s : heads_data_) {
      s.max_weight.assign(std::size_t(t_q), Scalar(0));
      s.argmax.assign(std::size_t(t_q), -1);
      s.entropy.assign(std::size_t(t_q), Scalar(0));
      s.same_segment.assign(std::size_t(t_q), Scalar(0));
      s.marked_mass.assign(std::size_t(t_q), Scalar(0));
      s.offset_mass.assign(std::size_t(2 * max_offset_ + 1), Scalar(0));
      s.far_mass = 0;
    }
  }
  head_statistics<Scalar>& mutable_head(Index b, Index h) { return heads_data_[std::size_t(b * heads_ + h)]; }
  /// Segment id of key position j in sequence b (valid when segment_ids is not empty).
  Index segment_of(Index b, Index j) const noexcept {
    return segment_ids[std::size_t(Index(segment_ids.size()) == t_k_ ? j : b * t_k_ + j)];
  }
  bool is_marked(Index b, Index j) const noexcept {
    return marked[std::size_t(Index(marked.size()) == t_k_ ? j : b * t_k_ + j)];
  }

 private:
  Index max_offset_ = 8;
  Index batch_ = 0, heads_ = 0, t_k_ = 0;
  std::vector<head_statistics<Scalar>> heads_data_;
};

namespace detail {

/// The running state of one query row's statistics inside the tile loop; every member is rescaled by the online
/// softmax's factor when the row maximum moves, exactly like the output accumulator.
template <class Scalar>
struct row_statistics_state {
  Scalar entropy_acc;  ///< sum_j e_j (s_j - shift), e_j = exp(s_j - shift)
  Scalar segment_acc;  ///< sum of e_j over keys in the query's segment
  Scalar marked_acc;   ///< sum of e_j over marked keys
  Index argmax;
};

/// exp(row - shift) in place, returning the sum and adding sum_j e_j (s_j - shift) over finite s_j to
/// `centred` (the entropy's numerator). SIMD body, scalar tail.
template <class Scalar>
Scalar exp_shifted_sum_centred(Scalar* row, Index n, Scalar shift, Scalar& centred) noexcept {
  using batch = xsimd::batch<Scalar>;
  constexpr Index width = static_cast<Index>(batch::size);
  const Index body = n - n % width;
  const batch shift_broadcast(shift), zero(Scalar(0)), minus_infinity(-std::numeric_limits<Scalar>::infinity());
  batch sum_batch(Scalar(0)), centred_batch(Scalar(0));
  for (Index j = 0; j < body; j += width) {
    const batch s = batch::load_unaligned(row + j);
    const batch d = s - shift_broadcast;
    const batch e = xsimd::exp(d);
    e.store_unaligned(row + j);
    sum_batch += e;
    centred_batch += xsimd::select(s == minus_infinity, zero, e * d);
  }
  Scalar sum = body > 0 ? xsimd::hadd(sum_batch) : Scalar(0);
  Scalar c = body > 0 ? xsimd::hadd(centred_batch) : Scalar(0);
  for (Index j = body; j < n; ++j) {
    const Scalar s = row[j];
    const Scalar d = s - shift;
    row[j] = std::exp(d);
    sum += row[j];
    if (s != -std::numeric_limits<Scalar>::infinity()) c += row[j] * d;
  }
  centred += c;
  return sum;
}

/// The same statistics from a materialised pattern (the materialised path's heads): head h of sequence b, pattern
/// rows of queries at positions past..past+t_q-1.
template <class Scalar>
void statistics_from_pattern(attention_statistics<Scalar>& stats, Index b, Index h, const Scalar* pattern, Index t_q,
                             Index t_k, Index row_stride, Index past) {
  head_statistics<Scalar>& hs = stats.mutable_head(b, h);
  const Index max_offset = stats.max_offset(), bins = 2 * max_offset + 1;
  for (Index i = 0; i < t_q; ++i) {
    const Scalar* row = pattern + i * row_stride;
    const Index position = past + i;
    const std::size_t r = std::size_t(i);
    bool nan = false;
    Scalar total = 0, best = -1, entropy = 0, segment = 0, marked = 0;
    Index argmax = -1;
    const bool segments = !stats.segment_ids.empty() && position < t_k;
    const Index own = segments ? stats.segment_of(b, position) : 0;
    for (Index j = 0; j < t_k; ++j) {
      const Scalar p = row[j];
      if (std::isnan(p)) nan = true;
      total += p;
      if (p > best) {
        best = p;
        argmax = j;
      }
      if (p > Scalar(0)) entropy -= p * std::log(p);
      if (segments && stats.segment_of(b, j) == own) segment += p;
      if (!stats.marked.empty() && stats.is_marked(b, j)) marked += p;
    }
    if (nan) {
      const Scalar quiet_nan = std::numeric_limits<Scalar>::quiet_NaN();
      hs.max_weight[r] = hs.entropy[r] = hs.same_segment[r] = hs.marked_mass[r] = quiet_nan;
      hs.argmax[r] = -1;
      continue;
    }
    if (total == Scalar(0)) continue;  // fully masked: zeros, argmax -1 (as prepared)
    hs.max_weight[r] = best;
    hs.argmax[r] = argmax;
    hs.entropy[r] = entropy;
    hs.same_segment[r] = segment;
    hs.marked_mass[r] = marked;
    Scalar window = 0;
    for (Index o = 0; o < bins; ++o) {
      const Index j = position + o - max_offset;
      if (j < 0 || j >= t_k) continue;
      hs.offset_mass[std::size_t(o)] += row[j];
      window += row[j];
    }
    hs.far_mass += std::max(Scalar(0), Scalar(1) - window);
  }
}

}  // namespace detail
}  // namespace headlens
