#pragma once
/// \file
/// `head_analysis::measure` over the ranks of an MPI communicator: rank r of n measures windows k with
/// k % n == r, and the root receives every rank's totals and merges them in rank order. The totals are fixed-point
/// integers (analysis/features_json.hpp carries them exactly), so the root's result equals one process measuring
/// every window, bit for bit, for any number of ranks.
///
/// ```
/// MPI_Init(&argc, &argv);
/// headlens::mpi::rank_agreement agreement(MPI_COMM_WORLD);
/// const headlens::head_analysis analysis(*model, documents);       // the same plan on every rank
/// const headlens::head_measurements measured = headlens::mpi::measure_across_ranks(analysis, agreement);
/// if (agreement.rank() == 0) { /* evidence, policy, report from `measured` */ }
/// ```
/// Needs MPI (link `headlens::mpi`) and nlohmann_json.

#include <mpi.h>

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "headlens/analysis/features_json.hpp"
#include "headlens/analysis/head_analysis.hpp"
#include "headlens/error.hpp"
#include "headlens/mpi/rank_agreement.hpp"

namespace headlens {
namespace mpi {
namespace detail {

/// One rank's measurements as text: the features in their exact JSON form, and the window counts.
inline std::string measurements_to_text(const head_measurements& m) {
  const window_counts& c = m.counts;
  return nlohmann::json{{"features", features_to_json(m.features)},
                        {"counts",
                         {{"windows", c.windows},
                          {"tokens", c.tokens},
                          {"clipped_windows", c.clipped_windows},
                          {"words_without_tokens", c.words_without_tokens},
                          {"dropped_mass", c.dropped_mass}}}}
      .dump();
}

/// Reads `measurements_to_text`'s form back; throws `format_error` naming the rank it came from.
inline head_measurements measurements_from_text(const std::string& text, int rank) {
  const std::string source = "the measurements of rank " + std::to_string(rank);
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    head_measurements m{features_from_json(j.at("features"), source), {}};
    const nlohmann::json& c = j.at("counts");
    c.at("windows").get_to(m.counts.windows);
    c.at("tokens").get_to(m.counts.tokens);
    c.at("clipped_windows").get_to(m.counts.clipped_windows);
    c.at("words_without_tokens").get_to(m.counts.words_without_tokens);
    c.at("dropped_mass").get_to(m.counts.dropped_mass);
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw format_error(source, 0, 0, "headlens: " + source + ": malformed: " + e.what());
  }
}

}  // namespace detail

/// Measures this rank's share of `analysis`'s batches of windows, then (once every rank has agreed that it
/// succeeded) gathers every rank's totals at `root` and merges them in rank order. Collective over `agreement`'s communicator: every
/// rank calls it with an analysis of the same documents, model and options. Returns at the root the measurements of
/// the whole corpus, elsewhere this rank's own share.
///
/// Uses `agreement` (which must not have agreed yet): when measuring throws on this rank, it agrees on failure and
/// rethrows; when another rank failed, it throws `rank_error` naming that rank; so no rank waits in the gather for
/// one that has thrown. A rank that failed before calling this must call `agreement.agree(false)` instead.
/// Throws `argument_error` for a root outside the communicator; the model's errors.
inline head_measurements measure_across_ranks(const head_analysis& analysis, rank_agreement& agreement, int root = 0) {
  if (root < 0 || root >= agreement.size()) {
    headlens::detail::fail<argument_error>("root is ", root, ", expected a rank of 0..", agreement.size() - 1);
  }
  const int rank = agreement.rank(), size = agreement.size();
  head_measurements mine;
  std::string text;
  try {
    mine = analysis.measure(static_cast<std::size_t>(rank), static_cast<std::size_t>(size));
    if (size > 1) text = detail::measurements_to_text(mine);
    if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      headlens::detail::fail<budget_error>("the measurements of rank ", rank, " are ", text.size(),
                                           " bytes, expected at most ", std::numeric_limits<int>::max(),
                                           " for one MPI message");
    }
  } catch (...) {
    agreement.agree(false);
    throw;
  }
  agreement.agree(true);
  agreement.throw_if_failed();
  if (size == 1) return mine;

  // Every rank learns every length, so a total too large for one MPI message is refused by all of them at once.
  const MPI_Comm comm = agreement.communicator();
  const int length = static_cast<int>(text.size());
  std::vector<int> lengths(static_cast<std::size_t>(size)), offsets(static_cast<std::size_t>(size));
  MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm);
  std::size_t total = 0;
  for (std::size_t r = 0; r < lengths.size(); ++r) {
    if (total > static_cast<std::size_t>(std::numeric_limits<int>::max() - lengths[r])) {
      headlens::detail::fail<budget_error>("the measurements of ", size, " ranks exceed ",
                                           std::numeric_limits<int>::max(), " bytes, expected fewer heads or ranks");
    }
    offsets[r] = static_cast<int>(total);
    total += static_cast<std::size_t>(lengths[r]);
  }
  std::string all(rank == root ? total : 0, '\0');
  MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, root, comm);
  if (rank != root) return mine;

  // Rank order, as the unsharded test merges: the totals are integers, so any order gives the same sums.
  head_measurements merged;
  for (int r = 0; r < size; ++r) {
    const auto k = static_cast<std::size_t>(r);
    head_measurements part =
        r == root ? mine
                  : detail::measurements_from_text(
                        all.substr(static_cast<std::size_t>(offsets[k]), static_cast<std::size_t>(lengths[k])), r);
    if (r == 0) {
      merged = std::move(part);
    } else {
      merged.merge(part);
    }
  }
  return merged;
}

}  // namespace mpi
}  // namespace headlens
