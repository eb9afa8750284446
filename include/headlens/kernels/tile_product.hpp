#pragma once
/// \file
/// The two products of a streaming attention tile, as one register-blocked kernel over xsimd batches:
///   c (+)= a b,   a [m x k] row-major, b [k x n] row-major with n a multiple of the batch width, c [m x n].
/// For the logits, a = the unit's scaled queries and b = the key tile transposed (head_dim x keys); for the
/// output, a = the tile's exponentials and b = the value tile as it lies in memory (keys x head_dim), accumulated
/// into the unit's output. Blocks of up to 6 rows x 4 batches (64 floats with AVX-512) stay in registers for the
/// whole depth: one pass over a and b, no packed copies, c loaded and stored once per block. Eigen's GEMM packs
/// both operands for each such small product and, at depth 64, stores its accumulators every 64 FMAs.
///
/// Every element of c is the sum over the depth in order 0..k-1 whatever the block shape, so results do not depend
/// on how a caller cuts the rows.

#include <xsimd/xsimd.hpp>

#include "headlens/types.hpp"

namespace headlens {
namespace detail {

/// Width of the batches the tile products use for Scalar.
template <class Scalar>
inline constexpr Index tile_batch = Index(xsimd::batch<Scalar>::size);

/// One block: rows R, columns C batches.
template <class Scalar, int R, int C, bool Accumulate>
inline void tile_product_block(const Scalar* a, Index lda, const Scalar* b, Index ldb, Scalar* c, Index ldc,
                               Index depth) noexcept {
  using batch = xsimd::batch<Scalar>;
  constexpr Index w = Index(batch::size);
  batch acc[R][C];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < C; ++j) {
      acc[r][j] = Accumulate ? batch::load_unaligned(c + r * ldc + j * w) : batch(Scalar(0));
    }
  }
  for (Index p = 0; p < depth; ++p) {
    batch bv[C];
    for (int j = 0; j < C; ++j) bv[j] = batch::load_unaligned(b + p * ldb + j * w);
    for (int r = 0; r < R; ++r) {
      const batch av(a[r * lda + p]);
      for (int j = 0; j < C; ++j) acc[r][j] = xsimd::fma(av, bv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < C; ++j) acc[r][j].store_unaligned(c + r * ldc + j * w);
  }
}

/// Rows R of c, every column block.
template <class Scalar, int R, bool Accumulate>
inline void tile_product_rows(const Scalar* a, Index lda, const Scalar* b, Index ldb, Scalar* c, Index ldc,
                              Index batches, Index depth) noexcept {
  constexpr Index w = tile_batch<Scalar>;
  Index j = 0;
  for (; j + 4 <= batches; j += 4) {
    tile_product_block<Scalar, R, 4, Accumulate>(a, lda, b + j * w, ldb, c + j * w, ldc, depth);
  }
  switch (batches - j) {
    case 3: tile_product_block<Scalar, R, 3, Accumulate>(a, lda, b + j * w, ldb, c + j * w, ldc, depth); break;
    case 2: tile_product_block<Scalar, R, 2, Accumulate>(a, lda, b + j * w, ldb, c + j * w, ldc, depth); break;
    case 1: tile_product_block<Scalar, R, 1, Accumulate>(a, lda, b + j * w, ldb, c + j * w, ldc, depth); break;
    default: break;
  }
}

/// c (+)= a b for a [m x depth], b [depth x n], c [m x n], all row-major with the given row strides; n must be a
/// multiple of `tile_batch<Scalar>`. Accumulate adds to c; otherwise c is overwritten.
template <bool Accumulate, class Scalar>
void tile_product(const Scalar* a, Index lda, const Scalar* b, Index ldb, Scalar* c, Index ldc, Index m, Index n,
                  Index depth) noexcept {
  const Index batches = n / tile_batch<Scalar>;
  Index i = 0;
  for (; i + 6 <= m; i += 6) {
    tile_product_rows<Scalar, 6, Accumulate>(a + i * lda, lda, b, ldb, c + i * ldc, ldc, batches, depth);
  }
  const Scalar* a_rest = a + i * lda;
  Scalar* c_rest = c + i * ldc;
  switch (m - i) {
    case 5: tile_product_rows<Scalar, 5, Accumulate>(a_rest, lda, b, ldb, c_rest, ldc, batches, depth); break;
    case 4: tile_product_rows<Scalar, 4, Accumulate>(a_rest, lda, b, ldb, c_rest, ldc, batches, depth); break;
    case 3: tile_product_rows<Scalar, 3, Accumulate>(a_rest, lda, b, ldb, c_rest, ldc, batches, depth); break;
    case 2: tile_product_rows<Scalar, 2, Accumulate>(a_rest, lda, b, ldb, c_rest, ldc, batches, depth); break;
    case 1: tile_product_rows<Scalar, 1, Accumulate>(a_rest, lda, b, ldb, c_rest, ldc, batches, depth); break;
    default: break;
  }
}

}  // namespace detail
}  // namespace headlens
