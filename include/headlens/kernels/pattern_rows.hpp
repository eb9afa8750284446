#pragma once
/// \file
/// `pattern_rows<Scalar>`: exact rows of the attention pattern of streamed heads, computed on demand from the
/// queries, the keys and each row's log-sum-exp that the streaming pass leaves behind, so an observer can read any
/// rows of any head in O(rows x T_k) memory, never a [T_q x T_k] map. This is how the analysis measures word-level
/// features at any context length (analysis/streaming_features.hpp), and how an engine could watch chosen heads.
///
/// Use: set `forward_options::pattern_rows` to a `pattern_row_observer`. After the streaming pass of each sequence
/// of a call (before `z` hooks fire, on the calling thread) the kernel calls it once with a `pattern_rows` view of
/// that sequence's heads; the view is valid only during the call. `rows(h, r0, count, out, stride)` is const and
/// thread-safe, so the observer may read heads or row blocks in parallel.
///
/// Exactness: row i of head h is exp(s_ij - lse_i) with s_ij the scaled, masked logit the streaming pass saw and
/// lse_i = max_j s_ij + log sum_j exp(s_ij - max_j s_ij) from that same pass (FlashAttention's backward pass
/// recomputes probabilities the same way), so rows sum to 1 within float rounding and equal the materialised
/// pattern to within a few ulps. A fully masked row is 0; a row whose logits hold a NaN is NaN.

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/kernels/softmax.hpp"
#include "headlens/kernels/tile_product.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// Exact pattern rows of the streamed heads of one sequence of a `multi_head_attention` call (see the file
/// comment). Built by the kernel; an observer only reads it.
template <class Scalar>
class pattern_rows {
 public:
  /// Everything the view reads, owned by the kernel for the duration of the observer's call.
  struct source {
    int layer = 0;
    Index batch_row = 0;
    Index heads = 0, group_size = 1, head_dim = 0;
    Index t_q = 0, t_k = 0, past = 0;  ///< query i is at position past + i
    bool causal = false;
    Scalar scale = 1;
    Scalar softcap = 0;        ///< above 0: logits become softcap * tanh(logit / softcap) before masks
    Index sliding_window = 0;  ///< above 0: query at position p sees keys from p - sliding_window + 1 on
    const Scalar* q = nullptr;  ///< [t_q x heads*head_dim], row stride q_stride, after rotary, not scaled
    Index q_stride = 0;
    const Scalar* k = nullptr;  ///< [t_k x kv_heads*head_dim], row stride kv_stride, after rotary
    Index kv_stride = 0;
    /// The keys as the streaming pass's `tile_product` read them ([kv_heads][head_dim][kt_stride], zero past t_k),
    /// or null where that pass used Eigen's product. With them the logits are recomputed by the same product in
    /// the same order, so they equal the streaming pass's bit for bit.
    const Scalar* kt = nullptr;
    Index kt_stride = 0;
    const Scalar* lse = nullptr;  ///< [heads x lse_stride]: each row's log-sum-exp of the scaled, masked logits
    Index lse_stride = 0;         ///< 0 means t_q
    const unsigned char* available =
        nullptr;  ///< [heads], non-zero where the head streamed (not skipped, not materialised)
    const matrix<Scalar>* attn_mask = nullptr;  ///< [t_q x t_k] or empty
    const bool_matrix* key_padding = nullptr;   ///< [batch x t_k] or empty
  };

  explicit pattern_rows(const source& s) : s_(s) {}

  int layer() const noexcept { return s_.layer; }
  Index batch_row() const noexcept { return s_.batch_row; }
  Index heads() const noexcept { return s_.heads; }
  Index queries() const noexcept { return s_.t_q; }
  Index keys() const noexcept { return s_.t_k; }
  /// Position of query 0 (the cache length in `forward_step`).
  Index past() const noexcept { return s_.past; }
  bool causal() const noexcept { return s_.causal; }
  /// Whether head h's rows can be read: it streamed in this call (heads skipped by `head_mask` or materialised
  /// because a hook wants their maps cannot).
  bool available(Index h) const noexcept { return h >= 0 && h < s_.heads && s_.available[h] != 0; }

  /// Writes rows r0 .. r0 + count - 1 of head h's pattern to `out` (count rows of `keys()` values, `out_stride`
  /// apart). Throws `argument_error` for a head that is not available or rows outside 0..queries().
  void rows(Index h, Index r0, Index count, Scalar* out, Index out_stride) const {
    write(h, r0, count, out, out_stride, fill::whole);
  }

  /// As `rows`, but in a causal view each row is written only up to the block's last visible column: returns that
  /// count (`keys()` without a causal mask, and for a block holding a NaN or fully masked row), columns from it on
  /// are left as they were. For an observer that reads a causal row only as far as it sees.
  Index visible_rows(Index h, Index r0, Index count, Scalar* out, Index out_stride) const {
    return write(h, r0, count, out, out_stride, fill::visible);
  }

  /// Row i's log-sum-exp of head h (`-inf` for a fully masked row, NaN for a row whose logits hold a NaN).
  Scalar log_sum_exp(Index h, Index i) const noexcept { return lse_at(h, i); }

  /// The view of the first `length` queries and keys: one sequence of a padded batch as if it ran alone (its
  /// padding cut off), for an observer written for one sequence (`sequence_observers`). Throws `argument_error`
  /// unless 1 <= length <= queries() and keys(), past() is 0, and the keys from `length` on carry no attention
  /// for the first `length` queries: causal, or masked as padding (`key_padding`) for this sequence.
  pattern_rows prefix(Index length) const {
    if (length < 1 || length > s_.t_q || length > s_.t_k) {
      detail::fail<argument_error>("pattern_rows: prefix length is ", length,
                                   ", expected 1 to min(queries, keys) = ", std::min(s_.t_q, s_.t_k));
    }
    if (s_.past != 0) detail::fail<argument_error>("pattern_rows: past is ", s_.past, ", expected 0 for a prefix");
    if (!s_.causal && length < s_.t_k) {
      const bool padded = s_.key_padding != nullptr && s_.key_padding->size() != 0;
      for (Index j = length; j < s_.t_k; ++j) {
        if (!padded || !(*s_.key_padding)(s_.batch_row, j)) {
          detail::fail<argument_error>("pattern_rows: key ", j, " of sequence ", s_.batch_row,
                                       " is not padding, expected every key from the prefix length ", length,
                                       " on masked (the rows would not sum to 1 over the prefix)");
        }
      }
    }
    source cut = s_;
    cut.lse_stride = lse_stride();
    cut.t_q = cut.t_k = length;
    return pattern_rows(cut);
  }

  /// As `visible_rows`, but the rows hold the scaled, masked logits x (-inf where a causal row does not see), so
  /// row i of the pattern is exp(x - log_sum_exp(h, i)); for an observer that exponentiates as it reads. Only for
  /// rows whose log-sum-exp is finite (what the rows hold otherwise is unspecified).
  Index visible_logits(Index h, Index r0, Index count, Scalar* out, Index out_stride) const {
    return write(h, r0, count, out, out_stride, fill::logits);
  }

 private:
  enum class fill { whole, visible, logits };
  Index lse_stride() const noexcept { return s_.lse_stride > 0 ? s_.lse_stride : s_.t_q; }
  Scalar lse_at(Index h, Index i) const noexcept { return s_.lse[h * lse_stride() + i]; }
  /// Key columns per chunk of `rows`: the chunk's transposed keys (head_dim x chunk) and logits stay in L2.
  static constexpr Index column_chunk = 512;

  /// `rows`, `visible_rows` or `visible_logits`.
  Index write(Index h, Index r0, Index count, Scalar* out, Index out_stride, fill how) const {
    const bool whole = how == fill::whole;
    if (!available(h)) {
      detail::fail<argument_error>("pattern_rows: head ", h, " is not available (",
                                   h < 0 || h >= s_.heads ? "out of range" : "skipped or materialised",
                                   "), expected a streamed head");
    }
    if (r0 < 0 || count < 0 || r0 + count > s_.t_q) {
      detail::fail<argument_error>("pattern_rows: rows [", r0, ", ", r0 + count, ") are outside the ", s_.t_q,
                                   " queries");
    }
    if (out_stride < s_.t_k)
      detail::fail<argument_error>("pattern_rows: out_stride is ", out_stride, ", expected >= ", s_.t_k);
    if (count == 0) return whole ? s_.t_k : 0;
    constexpr Scalar minus_infinity = -std::numeric_limits<Scalar>::infinity();
    const Index g = h / s_.group_size, t_k = s_.t_k, d = s_.head_dim;
    // A causal query at position p sees keys 0..p: columns past the block's last row are 0 without a product.
    const Index visible = s_.causal ? std::min(t_k, s_.past + r0 + count) : t_k;
    std::vector<Scalar> scaled(std::size_t(count * d));
    matrix_view<Scalar>(scaled.data(), count, d, Eigen::OuterStride<>(d)) =
        s_.scale *
        const_matrix_view<Scalar>(s_.q + r0 * s_.q_stride + h * d, count, d, Eigen::OuterStride<>(s_.q_stride));
    const bool mask = s_.attn_mask != nullptr && s_.attn_mask->size() != 0;
    const bool padding = s_.key_padding != nullptr && s_.key_padding->size() != 0;
    // Column chunks, each finished (logits, mask, exponentials) while its keys and rows are in cache.
    for (Index c0 = 0; c0 < visible; c0 += column_chunk) {
      const Index c1 = std::min(visible, c0 + column_chunk);
      logits(scaled.data(), count, g, c0, c1, out, out_stride);
      for (Index r = 0; r < count; ++r) {
        Scalar* row = out + r * out_stride;
        const Index i = r0 + r;
        const Index seen = std::max(c0, std::min(c1, s_.causal ? s_.past + i + 1 : t_k));
        if (s_.softcap > 0) {
          for (Index j = c0; j < seen; ++j) row[j] = s_.softcap * std::tanh(row[j] / s_.softcap);
        }
        if (s_.sliding_window > 0) {
          const Index first_seen = std::min(seen, s_.past + i - s_.sliding_window + 1);
          for (Index j = c0; j < first_seen; ++j) row[j] = minus_infinity;
        }
        if (mask) {
          for (Index j = c0; j < seen; ++j) row[j] += (*s_.attn_mask)(i, j);
        }
        if (padding) {
          for (Index j = c0; j < seen; ++j) {
            if ((*s_.key_padding)(s_.batch_row, j)) row[j] = minus_infinity;
          }
        }
        if (how == fill::logits) {
          std::fill(row + seen, row + c1, minus_infinity);
          continue;
        }
        const Scalar lse = lse_at(h, i);
        if (!std::isnan(lse) && lse != minus_infinity && seen > c0) detail::exp_shifted_sum(row + c0, seen - c0, lse);
        std::fill(row + seen, row + c1, Scalar(0));
      }
    }
    if (how == fill::logits) return visible;
    Index written = whole ? t_k : visible;
    for (Index r = 0; r < count; ++r) {
      const Scalar lse = lse_at(h, r0 + r);
      if (std::isnan(lse) || lse == minus_infinity) written = t_k;
    }
    for (Index r = 0; r < count; ++r) {
      Scalar* row = out + r * out_stride;
      const Scalar lse = lse_at(h, r0 + r);
      if (std::isnan(lse)) {
        std::fill(row, row + written, std::numeric_limits<Scalar>::quiet_NaN());
      } else if (lse == minus_infinity) {  // fully masked
        std::fill(row, row + written, Scalar(0));
      } else {  // exp(s - lse) is already normalised
        std::fill(row + visible, row + written, Scalar(0));
      }
    }
    return written;
  }

  /// Columns c0..c1 of the scaled logits of `count` scaled query rows against kv head g, into `out` (row stride
  /// `out_stride`), as the streaming pass formed them. With the transposed keys, `tile_product` over them in the
  /// same order as that pass: whole batches straight into `out`, the last (c1 - c0) % width keys through a
  /// one-batch buffer, since a full batch would write past the chunk (the transposed keys are zero past t_k).
  void logits(const Scalar* scaled, Index count, Index g, Index c0, Index c1, Scalar* out, Index out_stride) const {
    const Index d = s_.head_dim;
    if (s_.kt == nullptr) {
      const const_matrix_view<Scalar> q(scaled, count, d, Eigen::OuterStride<>(d));
      const const_matrix_view<Scalar> k(s_.k + c0 * s_.kv_stride + g * d, c1 - c0, d,
                                        Eigen::OuterStride<>(s_.kv_stride));
      matrix_view<Scalar>(out + c0, count, c1 - c0, Eigen::OuterStride<>(out_stride)).noalias() = q * k.transpose();
      return;
    }
    constexpr Index w = detail::tile_batch<Scalar>;
    const Scalar* kt_g = s_.kt + g * d * s_.kt_stride;
    const Index body = c0 + (c1 - c0) / w * w;
    // Slabs of 4 batches (the product's widest block): a slab's transposed keys (head_dim x 64 floats, 16 KiB)
    // stay in L1 while every 6-row tile of the block reads them. Each logit is the same sum in the same order.
    constexpr Index slab = 4 * w;
    for (Index c = c0; c < body; c += slab) {
      detail::tile_product<false>(scaled, d, kt_g + c, s_.kt_stride, out + c, out_stride, count,
                                  std::min(slab, body - c), d);
    }
    if (body < c1) {
      std::vector<Scalar> tail(std::size_t(count * w));
      detail::tile_product<false>(scaled, d, kt_g + body, s_.kt_stride, tail.data(), w, count, w, d);
      for (Index r = 0; r < count; ++r) {
        std::copy(tail.data() + r * w, tail.data() + r * w + (c1 - body), out + r * out_stride + body);
      }
    }
  }

  source s_;
};

/// Receives a `pattern_rows` view of each sequence of a `multi_head_attention` call (see the file comment). May
/// throw; the call then ends with that exception.
template <class Scalar>
class pattern_row_observer {
 public:
  virtual ~pattern_row_observer() = default;
  virtual void operator()(const pattern_rows<Scalar>& rows) = 0;
};

/// Hands each sequence of a padded batch (`forward_options::batch`, padding at the end) to an observer of its own,
/// as the view of that sequence's own length (`pattern_rows::prefix`), so an observer written for one sequence
/// serves one sequence of a batch unchanged. The observers must outlive it.
template <class Scalar>
class sequence_observers final : public pattern_row_observer<Scalar> {
 public:
  /// observers[b] (null: not observed) receives the rows of sequence b cut to lengths[b] tokens. Throws
  /// `argument_error` when the two differ in size.
  sequence_observers(std::vector<pattern_row_observer<Scalar>*> observers, std::vector<Index> lengths)
      : observers_(std::move(observers)), lengths_(std::move(lengths)) {
    if (observers_.size() != lengths_.size()) {
      detail::fail<argument_error>("sequence_observers: ", observers_.size(), " observers for ", lengths_.size(),
                                   " lengths, expected one length per observer");
    }
  }

  /// Throws `argument_error` for a batch row without an observer slot, and what `prefix` and the observer throw.
  void operator()(const pattern_rows<Scalar>& rows) override {
    const Index b = rows.batch_row();
    if (b < 0 || b >= Index(observers_.size())) {
      detail::fail<argument_error>("sequence_observers: batch row ", b, ", expected below the ", observers_.size(),
                                   " sequences observed");
    }
    if (observers_[std::size_t(b)] != nullptr) (*observers_[std::size_t(b)])(rows.prefix(lengths_[std::size_t(b)]));
  }

 private:
  std::vector<pattern_row_observer<Scalar>*> observers_;
  std::vector<Index> lengths_;
};

}  // namespace headlens
