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

#include <cmath>
#include <limits>
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
    const Scalar* q = nullptr;  ///< [t_q x heads*head_dim], row stride q_stride, after rotary, not scaled
    Index q_stride = 0;
    const Scalar* k = nullptr;  ///< [t_k x kv_heads*head_dim], row stride kv_stride, after rotary
    Index kv_stride = 0;
    /// The keys as the streaming pass's `tile_product` read them ([kv_heads][head_dim][kt_stride], zero past t_k),
    /// or null where that pass used Eigen's product. With them the logits are recomputed by the same product in
    /// the same order, so they equal the streaming pass's bit for bit.
    const Scalar* kt = nullptr;
    Index kt_stride = 0;
    const Scalar* lse = nullptr;  ///< [heads x t_q]: each row's log-sum-exp of the scaled, masked logits
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
    if (count == 0) return;
    using const_view = const_matrix_view<Scalar>;
    using view = matrix_view<Scalar>;
    constexpr Scalar minus_infinity = -std::numeric_limits<Scalar>::infinity();
    const Index g = h / s_.group_size, t_k = s_.t_k;
    // A causal query at position p sees keys 0..p: columns past the block's last row are 0 without a product.
    const Index visible = s_.causal ? std::min(t_k, s_.past + r0 + count) : t_k;
    const_view q_h(s_.q + r0 * s_.q_stride + h * s_.head_dim, count, s_.head_dim, Eigen::OuterStride<>(s_.q_stride));
    if (s_.kt != nullptr) {
      logits_from_transposed_keys(q_h, g, visible, out, out_stride);
    } else {
      const_view k_g(s_.k + g * s_.head_dim, visible, s_.head_dim, Eigen::OuterStride<>(s_.kv_stride));
      view s(out, count, visible, Eigen::OuterStride<>(out_stride));
      s.noalias() = (s_.scale * q_h) * k_g.transpose();
    }
    const bool mask = s_.attn_mask != nullptr && s_.attn_mask->size() != 0;
    const bool padding = s_.key_padding != nullptr && s_.key_padding->size() != 0;
    for (Index r = 0; r < count; ++r) {
      Scalar* row = out + r * out_stride;
      const Index i = r0 + r;
      const Scalar lse = s_.lse[h * s_.t_q + i];
      const Index seen = s_.causal ? std::min(t_k, s_.past + i + 1) : t_k;
      if (mask) {
        for (Index j = 0; j < seen; ++j) row[j] += (*s_.attn_mask)(i, j);
      }
      if (padding) {
        for (Index j = 0; j < seen; ++j) {
          if ((*s_.key_padding)(s_.batch_row, j)) row[j] = minus_infinity;
        }
      }
      if (std::isnan(lse)) {
        std::fill(row, row + t_k, std::numeric_limits<Scalar>::quiet_NaN());
        continue;
      }
      if (lse == minus_infinity) {  // fully masked
        std::fill(row, row + t_k, Scalar(0));
        continue;
      }
      detail::exp_shifted_sum(row, seen, lse);  // the sum is not needed: the row is already normalised
      std::fill(row + seen, row + t_k, Scalar(0));
    }
  }

 private:
  /// The scaled logits of the rows of `q_h` against keys 0..visible-1 of kv head g, as the streaming pass formed
  /// them: the queries scaled first, then `tile_product` over the transposed keys. Whole batches of keys go
  /// straight into `out`; the last visible % width keys through a one-batch buffer, since a full batch would
  /// write past the row (the transposed keys are zero there, so the extra logits are never wrong, only unwanted).
  template <class Queries>
  void logits_from_transposed_keys(const Queries& q_h, Index g, Index visible, Scalar* out, Index out_stride) const {
    constexpr Index w = detail::tile_batch<Scalar>;
    const Index count = q_h.rows(), d = s_.head_dim;
    std::vector<Scalar> scaled(std::size_t(count * d));
    matrix_view<Scalar> qs(scaled.data(), count, d, Eigen::OuterStride<>(d));
    qs = s_.scale * q_h;
    const Scalar* kt_g = s_.kt + g * d * s_.kt_stride;
    const Index body = visible / w * w;
    if (body > 0) detail::tile_product<false>(scaled.data(), d, kt_g, s_.kt_stride, out, out_stride, count, body, d);
    if (body < visible) {
      std::vector<Scalar> tail(std::size_t(count * w));
      detail::tile_product<false>(scaled.data(), d, kt_g + body, s_.kt_stride, tail.data(), w, count, w, d);
      for (Index r = 0; r < count; ++r) {
        std::copy(tail.data() + r * w, tail.data() + r * w + (visible - body), out + r * out_stride + body);
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

}  // namespace headlens
