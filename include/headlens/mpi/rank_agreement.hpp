#pragma once
/// \file
/// Agreement on success across the ranks of an MPI communicator, taken before any collective that needs every
/// rank's data. A rank that has thrown must not leave the others waiting in a reduction that it will never join:
/// so each rank, whether it has its data or has failed, joins one allreduce of its status, and all of them learn
/// which rank failed first. Needs MPI (link `headlens::mpi`); the rest of headlens does not.

#include <mpi.h>

#include <string>

#include "headlens/error.hpp"

namespace headlens {
namespace mpi {

/// Another rank failed, so this one stopped before the collective that needed it. The failing rank reports its own
/// error; this one only says who failed.
class rank_error : public error {
 public:
  rank_error(const std::string& what, int failed_rank) : error(what), failed_rank_(failed_rank) {}
  /// The lowest rank that failed.
  int failed_rank() const noexcept { return failed_rank_; }

 private:
  int failed_rank_;
};

/// The once-per-run agreement of every rank of a communicator on whether all of them succeeded.
class rank_agreement {
 public:
  /// Throws `argument_error` when `comm` is MPI_COMM_NULL or MPI is not initialised.
  explicit rank_agreement(MPI_Comm comm) : comm_(comm) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (initialised == 0)
      detail::fail<argument_error>("MPI is not initialised, expected MPI_Init before the ranks agree");
    if (comm == MPI_COMM_NULL) detail::fail<argument_error>("communicator is MPI_COMM_NULL, expected a communicator");
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }

  MPI_Comm communicator() const noexcept { return comm_; }
  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }

  /// Collective: every rank of the communicator calls it exactly once, with whether it succeeded so far. Returns
  /// the lowest rank that did not (-1 when all did). Throws `argument_error` when called a second time (that call
  /// would pair with another collective of the other ranks).
  int agree(bool succeeded) {
    if (agreed_) detail::fail<argument_error>("ranks have already agreed, expected one agreement per run");
    agreed_ = true;
    const int mine = succeeded ? size_ : rank_;
    int first = size_;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm_);
    first_failed_ = first == size_ ? -1 : first;
    return first_failed_;
  }

  /// Whether `agree` has been called on this rank.
  bool agreed() const noexcept { return agreed_; }
  /// The lowest rank that failed by the agreement (-1: none, or not agreed yet).
  int first_failed_rank() const noexcept { return first_failed_; }

  /// After a successful `agree(true)` on this rank: throws `rank_error` naming the failed rank when another one
  /// failed. Does nothing when all succeeded.
  void throw_if_failed() const {
    if (first_failed_ >= 0) {
      throw rank_error("headlens: rank " + std::to_string(first_failed_) + " of " + std::to_string(size_) +
                           " failed, so rank " + std::to_string(rank_) + " stopped before the reduction",
                       first_failed_);
    }
  }

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  bool agreed_ = false;
  int first_failed_ = -1;
};

}  // namespace mpi
}  // namespace headlens
