#pragma once
/// \file
/// The optimal one-to-one assignment of rows to columns of a score matrix (the linear assignment problem), by the
/// Hungarian algorithm (Kuhn-Munkres with row and column potentials and shortest augmenting paths, O(n^2 m) for
/// n <= m). Rectangular matrices are handled: every row of the shorter side gets a distinct partner, the rest of
/// the longer side stays unmatched. Used by analysis/head_matching.hpp to pair the heads of two models.
///
///   matrix<double> score = ...;                                   // [rows x cols]
///   std::vector<Index> col = headlens::maximum_assignment(score); // col[r] = column of row r, or -1

#include <cmath>
#include <limits>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/types.hpp"

namespace headlens {

namespace detail {

/// Minimum-cost assignment of every row to a distinct column when rows <= cols: `col_of_row[r]`.
/// Potentials u (rows), v (columns) keep cost(i, j) - u[i] - v[j] >= 0 and 0 on matched pairs; each row is added
/// by a Dijkstra-like search for the cheapest augmenting path over reduced costs (the e-maxx formulation,
/// 1-based with a virtual column 0).
inline std::vector<Index> min_cost_assignment_wide(const matrix<double>& cost) {
  const Index n = cost.rows(), m = cost.cols();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(std::size_t(n + 1), 0.0), v(std::size_t(m + 1), 0.0);
  std::vector<Index> row_of_col(std::size_t(m + 1), 0), way(std::size_t(m + 1), 0);
  for (Index i = 1; i <= n; ++i) {
    row_of_col[0] = i;
    Index j0 = 0;
    std::vector<double> min_v(std::size_t(m + 1), inf);
    std::vector<char> used(std::size_t(m + 1), 0);
    do {
      used[std::size_t(j0)] = 1;
      const Index i0 = row_of_col[std::size_t(j0)];
      double delta = inf;
      Index j1 = 0;
      for (Index j = 1; j <= m; ++j) {
        if (used[std::size_t(j)]) continue;
        const double reduced = cost(i0 - 1, j - 1) - u[std::size_t(i0)] - v[std::size_t(j)];
        if (reduced < min_v[std::size_t(j)]) {
          min_v[std::size_t(j)] = reduced;
          way[std::size_t(j)] = j0;
        }
        if (min_v[std::size_t(j)] < delta) {
          delta = min_v[std::size_t(j)];
          j1 = j;
        }
      }
      for (Index j = 0; j <= m; ++j) {
        if (used[std::size_t(j)]) {
          u[std::size_t(row_of_col[std::size_t(j)])] += delta;
          v[std::size_t(j)] -= delta;
        } else {
          min_v[std::size_t(j)] -= delta;
        }
      }
      j0 = j1;
    } while (row_of_col[std::size_t(j0)] != 0);
    do {  // flip the augmenting path
      const Index j1 = way[std::size_t(j0)];
      row_of_col[std::size_t(j0)] = row_of_col[std::size_t(j1)];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<Index> col_of_row(std::size_t(n), -1);
  for (Index j = 1; j <= m; ++j) {
    if (row_of_col[std::size_t(j)] > 0) col_of_row[std::size_t(row_of_col[std::size_t(j)] - 1)] = j - 1;
  }
  return col_of_row;
}

}  // namespace detail

/// The assignment of rows to distinct columns that minimises the total `cost`: `result[r]` is row r's column, or
/// -1 when there are more rows than columns and r is left out. Every row is matched when rows <= cols, every
/// column when cols <= rows. Among equal optima, one is returned (deterministically).
/// Throws `argument_error` when an entry is not finite (naming it).
inline std::vector<Index> minimum_assignment(const matrix<double>& cost) {
  for (Index i = 0; i < cost.rows(); ++i) {
    for (Index j = 0; j < cost.cols(); ++j) {
      if (!std::isfinite(cost(i, j))) {
        detail::fail<argument_error>("cost(", i, ", ", j, ") is ", cost(i, j), ", expected a finite number");
      }
    }
  }
  if (cost.rows() == 0 || cost.cols() == 0) return std::vector<Index>(std::size_t(cost.rows()), -1);
  if (cost.rows() <= cost.cols()) return detail::min_cost_assignment_wide(cost);
  // Tall: assign the columns to rows instead, then invert.
  const matrix<double> transposed = cost.transpose();
  const std::vector<Index> row_of_col = detail::min_cost_assignment_wide(transposed);
  std::vector<Index> col_of_row(std::size_t(cost.rows()), -1);
  for (std::size_t j = 0; j < row_of_col.size(); ++j) col_of_row[std::size_t(row_of_col[j])] = Index(j);
  return col_of_row;
}

/// The assignment that maximises the total `score` (`minimum_assignment` of -score), same conventions. Throws
/// `argument_error` when an entry is not finite (naming `score(i, j)`).
inline std::vector<Index> maximum_assignment(const matrix<double>& score) {
  for (Index i = 0; i < score.rows(); ++i) {
    for (Index j = 0; j < score.cols(); ++j) {
      if (!std::isfinite(score(i, j))) {
        detail::fail<argument_error>("score(", i, ", ", j, ") is ", score(i, j), ", expected a finite number");
      }
    }
  }
  return minimum_assignment(-score);
}

}  // namespace headlens
