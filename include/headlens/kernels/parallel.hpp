#pragma once
/// \file
/// Threads for the kernels: OpenMP when the translation unit is compiled with it (`_OPENMP`; the CMake target links
/// OpenMP::OpenMP_CXX when found), serial otherwise.
///
/// Optional BLAS: with HEADLENS_USE_BLAS defined (the CMake option of that name links a BLAS), the projections go
/// to the BLAS's GEMM (`projection_product`).
///
/// Determinism: work is cut into units whose boundaries never depend on the thread count, and every unit is
/// computed by one thread in a fixed order, so results are bit-identical whatever the number of threads. That is
/// also why headlens cuts its big products itself (`for_each_product_block`) instead of letting Eigen thread them:
/// Eigen's own GEMM threading splits the work by thread count. The CMake target defines EIGEN_DONT_PARALLELIZE
/// when it links OpenMP, so an Eigen product called from inside a unit never spawns threads of its own.

#include <algorithm>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "headlens/kernels/tile_product.hpp"
#include "headlens/types.hpp"

namespace headlens {
namespace detail {

/// Threads a kernel will use: `requested` when positive, else OpenMP's default (OMP_NUM_THREADS or the core
/// count); always 1 without OpenMP.
inline int thread_count(Index requested) noexcept {
#ifdef _OPENMP
  return requested > 0 ? int(requested) : std::max(1, omp_get_max_threads());
#else
  (void)requested;
  return 1;
#endif
}

/// Calls body(unit, thread) for unit = 0..units-1 on up to `threads` threads (thread in 0..threads-1 names the
/// caller's workspace). Units are handed out dynamically, so uneven units (causal tiles) balance. `body` must
/// not throw.
template <class Body>
void parallel_for(Index units, int threads, Body&& body) {
#ifdef _OPENMP
  if (threads > 1 && units > 1) {
    const int used = int(std::min<Index>(threads, units));
#pragma omp parallel for schedule(dynamic, 1) num_threads(used)
    for (Index u = 0; u < units; ++u) body(u, omp_get_thread_num());
    return;
  }
#endif
  (void)threads;
  for (Index u = 0; u < units; ++u) body(u, 0);
}

/// Fixed cut of a product into blocks: rows in chunks of `product_row_chunk`, columns in chunks of
/// `product_col_chunk` (both independent of the thread count; large enough that Eigen's kernel runs at full
/// speed inside each block, small enough that T = 128 still gives every thread work).
inline constexpr Index product_row_chunk = 256;
inline constexpr Index product_col_chunk = 384;

/// Calls `block(r0, c0, nr, nc)` (or `block(r0, c0, nr, nc, thread)`, thread naming the caller's workspace) for
/// every block of the fixed cut of a `rows` x `cols` result, in parallel: the one definition of that cut, which every
/// projection path shares so that results never depend on the thread count.
template <class Block>
void for_each_product_block(Index rows, Index cols, int threads, Block&& block) {
  const Index row_blocks = (rows + product_row_chunk - 1) / product_row_chunk;
  const Index col_blocks = (cols + product_col_chunk - 1) / product_col_chunk;
  parallel_for(row_blocks * col_blocks, threads, [&](Index unit, int thread) {
    const Index r0 = (unit / col_blocks) * product_row_chunk, c0 = (unit % col_blocks) * product_col_chunk;
    const Index nr = std::min(product_row_chunk, rows - r0), nc = std::min(product_col_chunk, cols - c0);
    if constexpr (std::is_invocable<Block&, Index, Index, Index, Index, int>::value) {
      block(r0, c0, nr, nc, thread);
    } else {
      (void)thread;
      block(r0, c0, nr, nc);
    }
  });
}

/// Threads a product of `rows` x `cols` can keep busy: one per block of the fixed cut, at most `threads`.
inline int product_threads(Index rows, Index cols, int threads) noexcept {
  const Index blocks =
      ((rows + product_row_chunk - 1) / product_row_chunk) * ((cols + product_col_chunk - 1) / product_col_chunk);
  return int(std::max<Index>(1, std::min<Index>(threads, blocks)));
}

/// dst = (alpha lhs) rhs, cut into fixed blocks computed in parallel. `dst` is a writable Eigen expression (a
/// matrix or a map); `lhs` and `rhs` are Eigen expressions supporting middleRows / middleCols. Eigen folds alpha
/// into its GEMM kernel.
template <class Dst, class Lhs, class Rhs, class Alpha = typename std::decay_t<Dst>::Scalar>
void partitioned_product(Dst&& dst, const Lhs& lhs, const Rhs& rhs, int threads, Alpha alpha = Alpha(1)) {
  for_each_product_block(dst.rows(), dst.cols(), threads, [&](Index r0, Index c0, Index nr, Index nc) {
    dst.block(r0, c0, nr, nc).noalias() = (alpha * lhs.middleRows(r0, nr)) * rhs.middleCols(c0, nc);
  });
}

#ifdef HEADLENS_USE_BLAS
// The Fortran BLAS interface, which every BLAS (OpenBLAS, BLIS, MKL, the reference) exports.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
// OpenBLAS only (weak: null with any other BLAS).
int openblas_get_num_threads(void) __attribute__((weak));
}

/// True when the BLAS threads each call itself (OpenBLAS with more than one thread): then a projection is one BLAS
/// call from the calling thread. Otherwise (a single-threaded BLAS, or OpenBLAS with OPENBLAS_NUM_THREADS=1)
/// headlens cuts it into its fixed blocks and issues one call per block from its own threads, which also keeps
/// results independent of the thread count and leaves no BLAS threads spinning beside headlens's.
inline bool blas_threads_itself() noexcept {
  return &openblas_get_num_threads != nullptr && openblas_get_num_threads() > 1;
}

/// One BLAS GEMM: row-major dst = lhs rhs (as column-major dst^T = rhs^T lhs^T: rhs goes first).
template <class Scalar, class Dst, class Lhs, class Rhs>
void blas_gemm(Dst&& dst, const Lhs& lhs, const Rhs& rhs) {
  const int m = int(dst.cols()), n = int(dst.rows()), k = int(lhs.cols());
  const int ldb = int(rhs.outerStride()), lda = int(lhs.outerStride()), ldc = int(dst.outerStride());
  const Scalar one = 1, zero = 0;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    dst.setZero();
    return;
  }
  if constexpr (std::is_same<Scalar, float>::value) {
    sgemm_("N", "N", &m, &n, &k, &one, rhs.data(), &ldb, lhs.data(), &lda, &zero, dst.data(), &ldc);
  } else {
    dgemm_("N", "N", &m, &n, &k, &one, rhs.data(), &ldb, lhs.data(), &lda, &zero, dst.data(), &ldc);
  }
}
#endif

/// Row-major views with unit inner stride: what the projections multiply (a matrix, a Ref, or a block of columns).
template <class Scalar>
using row_major_ref = Eigen::Ref<matrix<Scalar>, 0, Eigen::OuterStride<>>;
template <class Scalar>
using const_row_major_ref = Eigen::Ref<const matrix<Scalar>, 0, Eigen::OuterStride<>>;

/// Columns per `tile_product` call inside a projection block: 64 columns of the right-hand side over the whole
/// depth (768 x 64 floats = 192 KiB for d_model 768) stay in L2 while every row of the block passes over them.
inline constexpr Index projection_tile_cols = 64;

/// Depth of one pass of a projection tile. The MLP's W_out (depth 3072: 64 columns of it are 768 KiB of floats,
/// most of L2) ran at 56% of one core's FMA peak where depth-768 products ran at 88%; in passes of 256 rows that
/// accumulate into c (64 KiB of the right-hand side each) every depth runs alike (measured 80-92% for depth 3072
/// with passes of 1024 down to 256, on a loaded machine). Each element is still the sum in order 0..depth-1 (c
/// is stored and reloaded exactly), so the cut changes no bit.
#ifndef HEADLENS_PROJECTION_DEPTH_CHUNK
#define HEADLENS_PROJECTION_DEPTH_CHUNK 256
#endif
inline constexpr Index projection_depth_chunk = HEADLENS_PROJECTION_DEPTH_CHUNK;

/// c = a b for one tile of a projection, in passes of `projection_depth_chunk` over the depth.
template <class Scalar>
void projection_tile(const Scalar* a, Index lda, const Scalar* b, Index ldb, Scalar* c, Index ldc, Index m, Index n,
                     Index depth) noexcept {
  tile_product<false>(a, lda, b, ldb, c, ldc, m, n, std::min(depth, projection_depth_chunk));
  for (Index p = projection_depth_chunk; p < depth; p += projection_depth_chunk) {
    tile_product<true>(a + p, lda, b + p * ldb, ldb, c, ldc, m, n, std::min(depth - p, projection_depth_chunk));
  }
}

/// What a projection does to each block after computing it: nothing (see `projection_product`).
struct no_epilogue {
  void operator()(Index, Index, Index, Index) const noexcept {}
};

/// dst = lhs * rhs for the projections (x W_qkv, z W_o, the MLP, the LM head). With HEADLENS_USE_BLAS (CMake option
/// of that name) the BLAS's sgemm/dgemm computes it (see `blas_threads_itself` for how it is threaded); otherwise,
/// when the column count is a multiple of the SIMD width (every d_model and head layout of real models),
/// `tile_product` over the fixed blocks of `for_each_product_block`, 64 columns at a time (one core: 217-236
/// GFLOP/s where Eigen 3.4's GEMM reaches 91-160 on the shapes of a BERT-base layer); else Eigen's product per
/// block. Either way each element is computed by one thread in a fixed order, so results do not depend on the
/// thread count. Only the projections go to the BLAS: the attention tiles are small products issued from
/// headlens's own threads, where a threaded BLAS would oversubscribe the cores (which is why headlens does not
/// define EIGEN_USE_BLAS).
///
/// `epilogue(r0, c0, nr, nc)` runs on each block of dst right after the block is computed, by the thread that
/// computed it, while it is in cache (a bias, an activation); it must be element-wise (or at least confined to its
/// block) and must not throw.
template <class Scalar, class Epilogue = no_epilogue>
void projection_product(row_major_ref<Scalar> dst, const const_row_major_ref<Scalar>& lhs,
                        const const_row_major_ref<Scalar>& rhs, int threads, Epilogue&& epilogue = Epilogue{}) {
#ifdef HEADLENS_USE_BLAS
  if constexpr (std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value) {
    if (blas_threads_itself()) {
      blas_gemm<Scalar>(dst, lhs, rhs);
      if constexpr (!std::is_same<std::decay_t<Epilogue>, no_epilogue>::value) {
        for_each_product_block(dst.rows(), dst.cols(), threads, epilogue);
      }
      return;
    }
    for_each_product_block(dst.rows(), dst.cols(), threads, [&](Index r0, Index c0, Index nr, Index nc) {
      blas_gemm<Scalar>(dst.block(r0, c0, nr, nc), lhs.middleRows(r0, nr), rhs.middleCols(c0, nc));
      epilogue(r0, c0, nr, nc);
    });
    return;
  }
#endif
  const Index rows = dst.rows(), cols = dst.cols(), depth = lhs.cols();
  if (cols % tile_batch<Scalar> == 0 && depth > 0) {
    for_each_product_block(rows, cols, threads, [&](Index r0, Index c0, Index nr, Index nc) {
      const Index c1 = c0 + nc;
      for (Index c = c0; c < c1; c += projection_tile_cols) {
        projection_tile(lhs.data() + r0 * lhs.outerStride(), lhs.outerStride(), rhs.data() + c, rhs.outerStride(),
                        dst.data() + r0 * dst.outerStride() + c, dst.outerStride(), nr,
                        std::min(projection_tile_cols, c1 - c), depth);
      }
      epilogue(r0, c0, nr, nc);
    });
    return;
  }
  for_each_product_block(rows, cols, threads, [&](Index r0, Index c0, Index nr, Index nc) {
    dst.block(r0, c0, nr, nc).noalias() = lhs.middleRows(r0, nr) * rhs.middleCols(c0, nc);
    epilogue(r0, c0, nr, nc);
  });
}

/// dst = lhs * rhs_t^T with rhs_t [cols x depth] row-major: the LM head tied to the token embedding (logits =
/// h E^T, E [vocab x d]) without a transposed copy of E. Each fixed block of dst is computed transposed, as
/// E_block h_block^T by `tile_product` (E's rows broadcast, h^T in SIMD batches), into a per-thread buffer, then
/// written back transposed while it is in cache. `scratch` is [threads x block] + [depth x padded rows] elements,
/// `projection_transposed_scratch`. Deterministic: each element is the sum over the depth in order.
template <class Scalar>
Index projection_transposed_scratch(Index rows, Index depth, int threads) noexcept {
  const Index padded = (rows + tile_batch<Scalar> - 1) / tile_batch<Scalar> * tile_batch<Scalar>;
  return Index(threads) * product_col_chunk * std::min(padded, product_row_chunk) + depth * padded;
}
template <class Scalar>
void projection_product_transposed(row_major_ref<Scalar> dst, const const_row_major_ref<Scalar>& lhs,
                                   const const_row_major_ref<Scalar>& rhs_t, int threads, Scalar* scratch) {
  const Index rows = dst.rows(), depth = lhs.cols();
  const Index padded = (rows + tile_batch<Scalar> - 1) / tile_batch<Scalar> * tile_batch<Scalar>;
  const Index buffer = product_col_chunk * std::min(padded, product_row_chunk);
  // lhs^T [depth x padded], zero in the padding columns, so every block's product is whole batches wide.
  Scalar* lhs_t = scratch + Index(threads) * buffer;
  Eigen::Map<matrix<Scalar>> lhs_t_map(lhs_t, depth, padded);
  lhs_t_map.leftCols(rows) = lhs.transpose();
  lhs_t_map.rightCols(padded - rows).setZero();
  for_each_product_block(rows, dst.cols(), threads, [&](Index r0, Index c0, Index nr, Index nc, int thread) {
    const Index nr_padded =
        std::min(padded - r0, (nr + tile_batch<Scalar> - 1) / tile_batch<Scalar> * tile_batch<Scalar>);
    Scalar* out_t = scratch + Index(thread) * buffer;  // [nc x nr_padded]
    for (Index c = 0; c < nr_padded; c += projection_tile_cols) {
      projection_tile(rhs_t.data() + c0 * rhs_t.outerStride(), rhs_t.outerStride(), lhs_t + r0 + c, padded, out_t + c,
                      nr_padded, nc, std::min(projection_tile_cols, nr_padded - c), depth);
    }
    dst.block(r0, c0, nr, nc) =
        Eigen::Map<const matrix<Scalar>, 0, Eigen::OuterStride<>>(out_t, nc, nr, Eigen::OuterStride<>(nr_padded))
            .transpose();
  });
}

}  // namespace detail
}  // namespace headlens
