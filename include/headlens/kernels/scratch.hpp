#pragma once
/// \file
/// Scratch memory that a forward call borrows for its intermediate matrices (the fused q/k/v rows, z, the
/// [T_q x T_k] scores of materialised heads) and gives back when it returns.
///
/// Why not plain matrices per call: a forward at T = 512 (d_model 768) needs about 7 MB of intermediates, and
/// whether freeing them hands the pages back to the kernel depends on the allocator's trim threshold and on
/// everything else the program allocates. When it does, the next call page-faults every page in again and the
/// kernel zeroes it: measured here, that alone made a forward with every pattern hooked 1.2x slower on one thread
/// than the same forward with the allocator told never to trim. Borrowing from a per-thread pool makes repeated
/// calls reuse the same pages whatever the allocator does.
///
/// The pool keeps its memory after a call when it is at most HEADLENS_SCRATCH_KEEP_BYTES (64 MiB by default, 0 to
/// never keep it); larger intermediates (long contexts) are freed at the end of the call as before, so peak memory
/// is unchanged. One pool per thread and scalar type; a call made while the pool is borrowed (a hook that runs
/// another forward) gets memory of its own.

#include <cstddef>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/types.hpp"

#ifndef HEADLENS_SCRATCH_KEEP_BYTES
#define HEADLENS_SCRATCH_KEEP_BYTES (std::size_t(64) << 20)
#endif

namespace headlens {
namespace detail {

template <class Scalar>
struct scratch_pool {
  std::vector<Scalar> memory;
  bool busy = false;
};

template <class Scalar>
scratch_pool<Scalar>& thread_scratch_pool() noexcept {
  thread_local scratch_pool<Scalar> pool;
  return pool;
}

/// `elements` scalars for one call, carved into pieces with `take`; see the file comment. Not copyable.
template <class Scalar>
class scratch_lease {
 public:
  /// Pieces start on 64-byte boundaries relative to the lease's start (whole cache lines per piece).
  static constexpr Index granule = Index(64 / sizeof(Scalar));
  /// Elements a piece of `n` occupies in the lease (sum these to size a lease).
  static constexpr Index piece(Index n) noexcept { return (n + granule - 1) / granule * granule; }

  explicit scratch_lease(Index elements) : pool_(thread_scratch_pool<Scalar>()), capacity_(elements) {
    const std::size_t n = std::size_t(elements);
    if (pool_.busy) {
      own_.resize(n);
      data_ = own_.data();
      return;
    }
    if (pool_.memory.size() < n) {
      pool_.memory = std::vector<Scalar>();  // free the smaller block before taking the larger one
      pool_.memory.resize(n);
    }
    pool_.busy = borrowed_ = true;
    data_ = pool_.memory.data();
  }
  scratch_lease(const scratch_lease&) = delete;
  scratch_lease& operator=(const scratch_lease&) = delete;
  ~scratch_lease() {
    if (!borrowed_) return;
    if (pool_.memory.size() * sizeof(Scalar) > std::size_t(HEADLENS_SCRATCH_KEEP_BYTES)) {
      pool_.memory = std::vector<Scalar>();
    }
    pool_.busy = false;
  }

  /// The next `n` elements of the lease (uninitialised: whatever the previous call left).
  Scalar* take(Index n) noexcept {
    HEADLENS_ASSERT(used_ + n <= capacity_);
    Scalar* p = data_ + used_;
    used_ += piece(n);
    return p;
  }

 private:
  scratch_pool<Scalar>& pool_;
  Index capacity_;
  std::vector<Scalar> own_;
  Scalar* data_ = nullptr;
  Index used_ = 0;
  bool borrowed_ = false;
};

}  // namespace detail
}  // namespace headlens
