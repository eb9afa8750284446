#pragma once
/// \file
/// The small statistics that ablation reports (head importance, causal checks, pruning curves) share, written from
/// their textbook definitions with the standard library only:
/// - `interval_over_documents`: the mean of one value per document with a Student-t interval from their spread
///   (documents are the unit of spread: tokens of one document are not independent draws);
/// - `student_t_quantile`: the quantile of Student's t distribution, from the regularised incomplete beta function
///   (a continued fraction, DLMF 8.17.22, evaluated by the modified Lentz method) and bisection;
/// - `spearman_rho`: Spearman's rank correlation, ties given their average rank.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <vector>

#include "headlens/error.hpp"

namespace headlens {

namespace detail {

/// The regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1.
inline double regularized_incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use I_x(a, b) = 1 - I_{1-x}(b, a) above.
  if (x > (a + 1) / (a + b + 2)) return 1 - regularized_incomplete_beta(b, a, 1 - x);
  const double log_front = a * std::log(x) + b * std::log1p(-x) - std::log(a) -
                           (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
  // 1 / (1 + d1 / (1 + d2 / (1 + ...))) by the modified Lentz method.
  constexpr double tiny = 1e-300;
  double f = tiny, c = f, d = 0;
  for (int j = 1; j < 10000; ++j) {
    double num = 1;
    if (j > 1) {
      const int k = j - 1;  // d_k
      const double m = double(k / 2);
      num = k % 2 == 1 ? -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
                       : m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    }
    d = 1 + num * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double step = c * d;
    f *= step;
    if (std::fabs(step - 1) < 1e-15) break;
  }
  return std::exp(log_front) * f;
}

}  // namespace detail

/// P(T <= t) for Student's t with `df` degrees of freedom. Throws `argument_error` unless df > 0.
inline double student_t_cdf(double t, double df) {
  if (!(df > 0)) detail::fail<argument_error>("df is ", df, ", expected > 0");
  if (std::isnan(t)) return t;
  const double tail = 0.5 * detail::regularized_incomplete_beta(df / 2, 0.5, df / (df + t * t));
  return t >= 0 ? 1 - tail : tail;
}

/// The t with P(T <= t) = p for Student's t with `df` degrees of freedom (e.g. 12.706 for p = 0.975, df = 1).
/// Throws `argument_error` unless 0 < p < 1 and df > 0.
inline double student_t_quantile(double p, double df) {
  if (!(p > 0 && p < 1)) detail::fail<argument_error>("p is ", p, ", expected 0 < p < 1");
  if (!(df > 0)) detail::fail<argument_error>("df is ", df, ", expected > 0");
  if (p == 0.5) return 0;
  if (p < 0.5) return -student_t_quantile(1 - p, df);
  double lo = 0, hi = 1;
  while (student_t_cdf(hi, df) < p && hi < 1e300) hi *= 2;
  for (int i = 0; i < 200 && hi - lo > 1e-13 * hi; ++i) {
    const double mid = lo + (hi - lo) / 2;
    (student_t_cdf(mid, df) < p ? lo : hi) = mid;
  }
  return lo + (hi - lo) / 2;
}

/// A mean over documents with its spread. With one document there is no spread: `sd`, `low` and `high` are NaN.
struct document_interval {
  std::size_t documents = 0;  ///< how many values (documents) the mean is over
  double mean = std::numeric_limits<double>::quiet_NaN();
  double sd = std::numeric_limits<double>::quiet_NaN();    ///< sample standard deviation (n - 1) over documents
  double low = std::numeric_limits<double>::quiet_NaN();   ///< the interval's bounds
  double high = std::numeric_limits<double>::quiet_NaN();
  double level = 0.95;  ///< the interval's confidence level

  bool has_interval() const noexcept { return documents >= 2 && std::isfinite(low) && std::isfinite(high); }
};

/// The mean of `values` (one per document) and the `level` Student-t interval of it: mean +- t_{(1 + level) / 2,
/// n - 1} * sd / sqrt(n), sd the sample standard deviation. Sums are taken in order, so the result is the same for
/// the same values. Throws `argument_error` for no value, a non-finite value (naming its index) or a level outside
/// (0, 1).
inline document_interval interval_over_documents(const std::vector<double>& values, double level = 0.95) {
  if (!(level > 0 && level < 1)) detail::fail<argument_error>("level is ", level, ", expected 0 < level < 1");
  if (values.empty()) detail::fail<argument_error>("values is empty, expected one value per document");
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) detail::fail<argument_error>("values[", i, "] is ", values[i], ", expected finite");
  }
  document_interval out;
  out.level = level;
  out.documents = values.size();
  const double n = double(values.size());
  double sum = 0;
  for (double v : values) sum += v;
  out.mean = sum / n;
  if (values.size() < 2) return out;
  double squares = 0;
  for (double v : values) squares += (v - out.mean) * (v - out.mean);
  out.sd = std::sqrt(squares / (n - 1));
  const double half = student_t_quantile((1 + level) / 2, n - 1) * out.sd / std::sqrt(n);
  out.low = out.mean - half;
  out.high = out.mean + half;
  return out;
}

/// Ranks of `values`, 1 for the smallest, ties given the mean of the ranks they span.
inline std::vector<double> average_ranks(const std::vector<double>& values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> rank(values.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j + 1 < order.size() && values[order[j + 1]] == values[order[i]]) ++j;
    const double r = (double(i) + double(j)) / 2 + 1;
    for (std::size_t k = i; k <= j; ++k) rank[order[k]] = r;
    i = j + 1;
  }
  return rank;
}

/// Spearman's rho of `a` and `b`: the Pearson correlation of their average ranks. NaN when either has fewer than 2
/// distinct values (no ranking to compare). Throws `argument_error` when the sizes differ or a value is NaN.
inline double spearman_rho(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) detail::fail<argument_error>("a has ", a.size(), " values and b ", b.size(), ", expected as many");
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) detail::fail<argument_error>("value ", i, " is NaN, expected a number");
  }
  const std::vector<double> ra = average_ranks(a), rb = average_ranks(b);
  const double n = double(a.size());
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ma += ra[i], mb += rb[i];
  ma /= n;
  mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (!(saa > 0 && sbb > 0)) return std::numeric_limits<double>::quiet_NaN();
  return sab / std::sqrt(saa * sbb);
}

}  // namespace headlens
