#pragma once
/// \file
/// The one pass over a word-level attention row that the feature accumulators (analysis/features.hpp) make:
/// `feature_sweep_row` (xsimd batches: masses, free mass and argmax, entropy, distance, per-segment masses), the
/// logarithm it uses (`entropy_log`), and the per-window scratch it reads (`feature_workspace`: the window's
/// segments, column spans and masks of punctuation, separators and free columns).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <headlens/analysis/alignment.hpp>
#include <headlens/analysis/prepared_document.hpp>
#include <headlens/types.hpp>
#include <limits>
#include <type_traits>
#include <vector>
#include <xsimd/xsimd.hpp>

namespace headlens {
namespace detail {

/// A run of window columns in one sentence, paragraph and discourse unit.
struct feature_segment {
  Index begin = 0;  ///< local (window) column
  Index end = 0;
  doc_index sentence = 0;
  doc_index paragraph = 0;
  doc_index unit = -1;
  Index local_unit = -1;  ///< unit - first unit of the window, -1 for none
};

/// Whether column `j` of `win` is a sink position: the window's first word (what the model saw first) or a separator
/// (sentence-final punctuation, the word-level stand-in for [SEP]).
inline bool is_sink_column(const prepared_document& doc, const word_window& win, Index j) {
  return j == 0 || doc.is_separator(win.begin + j);
}

/// The columns [begin, end) of a window that hold a column's sentence, its paragraph and its discourse unit.
struct feature_column_spans {
  Index sentence_begin = 0, sentence_end = 0;
  Index paragraph_begin = 0, paragraph_end = 0;
  Index unit_begin = 0, unit_end = 0;  ///< empty for a column of no unit
};

/// Per-window scratch shared by all heads of a window; sized once and reused.
struct feature_workspace {
  std::vector<feature_segment> segments;
  std::vector<double> segment_mass;
  /// Per column: its spans, valid when `spans_exact` (every sentence, paragraph and unit of the window is one run
  /// of columns, as in every document read from CoNLL-U). Then a row's cross-boundary masses are sums over three
  /// short spans instead of over every segment of the window, which at long context cost as much as the sweep.
  std::vector<feature_column_spans> spans;
  bool spans_exact = false;
  std::vector<float> punct_f, sep_f, free_f;  // 0/1 masks per window column; free: not a sink
  std::vector<double> punct_d, sep_d, free_d;
  std::vector<Index> free_before;  // free columns in [0, j), j = 0..n
  doc_index first_unit = 0;
  Index unit_count = 0;
  std::vector<double> unit_mass;        // unit_count x unit_count
  std::vector<std::int64_t> unit_rows;  // rows seen per local unit
  std::vector<char> tracked;            // per local unit: judged in this window
  Index row_end = 0;                    // rows to read: [own_begin - b, row_end)

  std::vector<xsimd::batch<float>> acc_f;  // per-segment accumulators
  std::vector<xsimd::batch<double>> acc_d;

  template <class Scalar>
  std::vector<xsimd::batch<Scalar>>& accumulators();
  template <class Scalar>
  const Scalar* punct() const;
  template <class Scalar>
  const Scalar* sep() const;
  template <class Scalar>
  const Scalar* free() const;

  void prepare(const prepared_document& doc, const word_window& win, bool sinks_apart);

 private:
  void prepare_spans(Index n);
};

template <>
inline const float* feature_workspace::punct<float>() const {
  return punct_f.data();
}
template <>
inline const double* feature_workspace::punct<double>() const {
  return punct_d.data();
}
template <>
inline const float* feature_workspace::sep<float>() const {
  return sep_f.data();
}
template <>
inline const double* feature_workspace::sep<double>() const {
  return sep_d.data();
}
template <>
inline const float* feature_workspace::free<float>() const {
  return free_f.data();
}
template <>
inline const double* feature_workspace::free<double>() const {
  return free_d.data();
}

/// Bit layout of the IEEE formats, for `entropy_log`.
template <class Scalar>
struct feature_float_layout;
template <>
struct feature_float_layout<float> {
  using bits = std::int32_t;
  static constexpr int mantissa = 23;
  static constexpr bits bias = 127, mantissa_mask = 0x7fffff, one = 0x3f800000;
};
template <>
struct feature_float_layout<double> {
  using bits = std::int64_t;
  static constexpr int mantissa = 52;
  static constexpr bits bias = 1023, mantissa_mask = 0xfffffffffffffLL, one = 0x3ff0000000000000LL;
};

/// Natural logarithm of positive, normal, finite values (callers clamp to the smallest normal): x = m 2^e with m in
/// [sqrt(1/2), sqrt(2)), log m = 2 atanh((m - 1) / (m + 1)) by its series (to t^9 for float, t^15 for double).
/// Error below 5e-7 (float) and 5e-14 (double) relative to max(1, |log x|) over the whole range. Used instead of
/// `xsimd::log`, whose AVX-512 version in xsimd 8.1 does not compile without optimisation (its integer `select` for
/// avx512bw fails at -O0 with GCC 12).
template <class Scalar>
xsimd::batch<Scalar> entropy_log(const xsimd::batch<Scalar>& x) {
  using batch = xsimd::batch<Scalar>;
  using layout = feature_float_layout<Scalar>;
  using int_batch = xsimd::batch<typename layout::bits>;
  const int_batch bits = xsimd::bitwise_cast<int_batch>(x);
  const int_batch exponent = (bits >> layout::mantissa) - int_batch(layout::bias);
  batch m = xsimd::bitwise_cast<batch>((bits & int_batch(layout::mantissa_mask)) | int_batch(layout::one));
  batch e = xsimd::batch_cast<Scalar>(exponent);
  const auto high = m > batch(Scalar(1.4142135623730951));
  m = xsimd::select(high, m * batch(Scalar(0.5)), m);
  e = xsimd::select(high, e + batch(Scalar(1)), e);
  const batch t = (m - batch(Scalar(1))) / (m + batch(Scalar(1)));
  const batch t2 = t * t;
  batch series;
  if constexpr (std::is_same<Scalar, float>::value) {  // to t^9: next term below 1e-9
    series = batch(Scalar(1.0 / 9));
    for (const double c : {1.0 / 7, 1.0 / 5, 1.0 / 3, 1.0})
      series = xsimd::fma(series, t2, batch(static_cast<Scalar>(c)));
  } else {  // to t^15: next term below 2e-14
    series = batch(Scalar(1.0 / 15));
    for (const double c : {1.0 / 13, 1.0 / 11, 1.0 / 9, 1.0 / 7, 1.0 / 5, 1.0 / 3, 1.0}) {
      series = xsimd::fma(series, t2, batch(static_cast<Scalar>(c)));
    }
  }
  return xsimd::fma(e, batch(Scalar(0.6931471805599453)), batch(Scalar(2)) * t * series);
}

/// What one sweep over a row measures. "Free" columns are those that are not sinks (see the file comment).
struct feature_row_stats {
  double sum = 0;       ///< row mass
  double free = 0;      ///< mass on free columns
  double sink = 0;      ///< mass on sink columns
  double plogp = 0;     ///< sum of p log p over free columns (p > 0)
  double distance = 0;  ///< sum of p |i - j| over free columns
  double punct = 0;     ///< mass on punctuation
  double sep = 0;       ///< mass on separators
  double max = 0;       ///< largest free entry (0 when none is positive)
  double min = 0;       ///< smallest entry
  Index arg = -1;       ///< first free column holding the largest free entry; -1 when no free entry is positive
};

/// One pass over row `p` of `n` entries (query column `li`) computing `feature_row_stats` and the free mass of every
/// segment into `seg_mass`. `pm`, `sm` and `fm` are 0/1 masks of punctuation, separators and free columns. Full SIMD
/// vectors; each vector adds into the accumulators of the (usually one to three) segments it overlaps; the last
/// partial vector is loaded ending at the row's end with the lanes already seen masked off; rows shorter than one
/// vector go through a scalar loop. `acc` holds (at least) one batch per segment.
///
/// FromLogits: the row holds logits x and is turned in place into p = exp(x - shift) as it is swept (the pattern
/// row of a streamed head, `shift` its log-sum-exp), and log p is x - shift, so no logarithm is taken.
template <class Scalar, bool FromLogits = false>
feature_row_stats feature_sweep_row(std::conditional_t<FromLogits, Scalar*, const Scalar*> p, Index n, Index li,
                                    const feature_segment* segs, std::size_t seg_count, const Scalar* pm,
                                    const Scalar* sm, const Scalar* fm, std::vector<xsimd::batch<Scalar>>& acc,
                                    double* seg_mass, Scalar shift = 0) {
  using batch = xsimd::batch<Scalar>;
  constexpr Index lanes = static_cast<Index>(batch::size);
  constexpr Scalar inf = std::numeric_limits<Scalar>::infinity();
  feature_row_stats out;
  if (n < lanes) {
    Scalar sum = 0, free = 0, sink = 0, plogp = 0, dist = 0, punct = 0, sep = 0, mx = 0, mn = inf;
    std::fill(seg_mass, seg_mass + seg_count, 0.0);  // segments the row does not reach (see `extent` below)
    std::size_t s = 0;
    Scalar seg_sum = 0;
    for (Index j = 0; j < n; ++j) {
      if constexpr (FromLogits) p[j] = std::exp(p[j] - shift);
      const Scalar v = p[j];
      const Scalar vf = v * fm[j];
      sum += v;
      free += vf;
      sink += v - vf;
      if (vf > 0) plogp += vf * std::log(vf);  // rows this short: the logarithm either way
      dist += vf * static_cast<Scalar>(j > li ? j - li : li - j);
      punct += v * pm[j];
      sep += v * sm[j];
      if (vf > mx) {
        mx = vf;
        out.arg = j;
      }
      mn = std::min(mn, v);
      seg_sum += vf;
      if (s < seg_count && j + 1 == segs[s].end) {
        seg_mass[s++] = static_cast<double>(seg_sum);
        seg_sum = 0;
      }
    }
    if (s < seg_count) seg_mass[s] = static_cast<double>(seg_sum);
    out.sum = sum, out.free = free, out.sink = sink, out.plogp = plogp, out.distance = dist;
    out.punct = punct, out.sep = sep, out.max = mx, out.min = mn;
    return out;
  }
  const batch zero(Scalar(0)), tiny(std::numeric_limits<Scalar>::min()), pinf(inf);
  alignas(64) Scalar lane_index[batch::size];
  for (std::size_t k = 0; k < batch::size; ++k) lane_index[k] = static_cast<Scalar>(k);
  const batch lane = batch::load_aligned(lane_index);
  const batch query(static_cast<Scalar>(li));
  // The free maximum starts at 0 and only a strictly larger entry takes it, so a row without free mass has no argmax.
  batch vsum = zero, vfree = zero, vsink = zero, vplogp = zero, vdist = zero, vpunct = zero, vsep = zero, vmax = zero,
        vidx(Scalar(-1)), vmin = pinf;
  for (std::size_t k = 0; k < seg_count; ++k) acc[k] = zero;
  std::size_t s = 0;
  // Adds v (lanes outside the segment masked off) to the accumulators of the segments overlapping [q, q + lanes).
  auto to_segments = [&](const batch& v, const batch& idx, Index q) {
    const Index q_end = q + lanes;
    while (s < seg_count && segs[s].begin < q_end) {
      const feature_segment& g = segs[s];
      if (g.begin <= q && g.end >= q_end) {
        acc[s] += v;
      } else {
        acc[s] += xsimd::select(
            (idx >= batch(static_cast<Scalar>(g.begin))) && (idx < batch(static_cast<Scalar>(g.end))), v, zero);
      }
      if (g.end <= q_end) {
        ++s;
      } else {
        break;
      }
    }
  };
  // Adds the vector v of columns [q, q + lanes) to every accumulator but the minimum; `logp` is log v from the
  // logits (FromLogits), else taken here.
  auto add = [&](const batch& v, batch logp, Index q) {
    const batch vf = v * batch::load_unaligned(fm + q);
    const batch idx = lane + batch(static_cast<Scalar>(q));
    vsum += v;
    vfree += vf;
    vsink += v - vf;
    if constexpr (!FromLogits) logp = entropy_log(xsimd::max(vf, tiny));
    vplogp += xsimd::select(vf > zero, vf * logp, zero);
    vdist += vf * xsimd::abs(idx - query);
    vpunct += v * batch::load_unaligned(pm + q);
    vsep += v * batch::load_unaligned(sm + q);
    const auto gt = vf > vmax;
    vmax = xsimd::select(gt, vf, vmax);
    vidx = xsimd::select(gt, idx, vidx);
    to_segments(vf, idx, q);
  };
  Index j = 0;
  const batch vshift(shift);
  for (; j + lanes <= n; j += lanes) {
    batch v = batch::load_unaligned(p + j);
    batch logp = zero;  // from the logits, or taken in `add`
    if constexpr (FromLogits) {
      logp = v - vshift;
      v = xsimd::exp(logp);
      v.store_unaligned(p + j);
    }
    add(v, logp, j);
    vmin = xsimd::min(vmin, v);
  }
  if (j < n) {
    // The rest as one vector ending at the row's end, the lanes before j (already counted) masked off.
    const Index q = n - lanes;
    const batch idx = lane + batch(static_cast<Scalar>(q));
    const auto valid = idx >= batch(static_cast<Scalar>(j));
    batch raw = batch::load_unaligned(p + q);
    batch logp = zero;  // from the logits, or taken in `add`
    if constexpr (FromLogits) {  // the lanes before j hold probabilities already and are stored back as they are
      logp = raw - vshift;
      raw = xsimd::select(valid, xsimd::exp(logp), raw);
      raw.store_unaligned(p + q);
    }
    add(xsimd::select(valid, raw, zero), logp, q);  // lanes already seen are 0 here, so they never win the max
    vmin = xsimd::min(vmin, xsimd::select(valid, raw, pinf));
  }
  out.sum = static_cast<double>(xsimd::hadd(vsum));
  out.free = static_cast<double>(xsimd::hadd(vfree));
  out.sink = static_cast<double>(xsimd::hadd(vsink));
  out.plogp = static_cast<double>(xsimd::hadd(vplogp));
  out.distance = static_cast<double>(xsimd::hadd(vdist));
  out.punct = static_cast<double>(xsimd::hadd(vpunct));
  out.sep = static_cast<double>(xsimd::hadd(vsep));
  alignas(64) Scalar mx[batch::size];
  alignas(64) Scalar ix[batch::size];
  alignas(64) Scalar mn[batch::size];
  vmax.store_aligned(mx);
  vidx.store_aligned(ix);
  vmin.store_aligned(mn);
  Scalar best = 0, low = inf;
  for (std::size_t k = 0; k < batch::size; ++k) {
    const Index i = static_cast<Index>(ix[k]);
    if (i >= 0 && (out.arg < 0 || mx[k] > best || (mx[k] == best && i < out.arg))) {
      best = mx[k];
      out.arg = i;
    }
    low = std::min(low, mn[k]);
  }
  out.max = static_cast<double>(best);
  out.min = static_cast<double>(low);
  // Segment masses. (Not xsimd::haddp, which would reduce batch::size segments at once: in xsimd 8.1 its AVX-512
  // float version returns the sums in the wrong lanes.)
  for (std::size_t k = 0; k < seg_count; ++k) seg_mass[k] = static_cast<double>(xsimd::hadd(acc[k]));
  return out;
}

template <>
inline std::vector<xsimd::batch<float>>& feature_workspace::accumulators<float>() {
  return acc_f;
}
template <>
inline std::vector<xsimd::batch<double>>& feature_workspace::accumulators<double>() {
  return acc_d;
}

/// Fills `spans` from the segments: runs of segments with the same sentence (paragraph, unit). `spans_exact` unless
/// some sentence, paragraph or unit (units only where a column has one) makes more than one run.
inline void feature_workspace::prepare_spans(Index n) {
  spans.assign(static_cast<std::size_t>(n), feature_column_spans{});
  spans_exact = true;
  std::vector<doc_index> runs;
  auto by = [&](doc_index feature_segment::*key, Index feature_column_spans::*begin, Index feature_column_spans::*end,
                bool none_apart) {
    runs.clear();
    for (std::size_t k = 0; k < segments.size();) {
      std::size_t e = k + 1;
      while (e < segments.size() && segments[e].*key == segments[k].*key) ++e;
      const doc_index id = segments[k].*key;
      const bool none = none_apart && id < 0;
      for (Index j = segments[k].begin; j < segments[e - 1].end; ++j) {
        spans[static_cast<std::size_t>(j)].*begin = none ? j : segments[k].begin;
        spans[static_cast<std::size_t>(j)].*end = none ? j : segments[e - 1].end;
      }
      if (!none) runs.push_back(id);
      k = e;
    }
    std::sort(runs.begin(), runs.end());
    if (std::adjacent_find(runs.begin(), runs.end()) != runs.end()) spans_exact = false;
  };
  by(&feature_segment::sentence, &feature_column_spans::sentence_begin, &feature_column_spans::sentence_end, false);
  by(&feature_segment::paragraph, &feature_column_spans::paragraph_begin, &feature_column_spans::paragraph_end, false);
  by(&feature_segment::unit, &feature_column_spans::unit_begin, &feature_column_spans::unit_end, true);
}

/// Sum of p[j] * fm[j] over columns [begin, end), in float lanes as the sweep's segment masses are.
template <class Scalar>
double feature_free_mass(const Scalar* p, const Scalar* fm, Index begin, Index end) {
  using batch = xsimd::batch<Scalar>;
  constexpr Index lanes = static_cast<Index>(batch::size);
  batch acc(Scalar(0));
  Index j = begin;
  for (; j + lanes <= end; j += lanes) acc += batch::load_unaligned(p + j) * batch::load_unaligned(fm + j);
  Scalar rest = xsimd::hadd(acc);
  for (; j < end; ++j) rest += p[j] * fm[j];
  return static_cast<double>(rest);
}

inline void feature_workspace::prepare(const prepared_document& doc, const word_window& win, bool sinks_apart) {
  const Index b = win.begin, e = win.end, n = e - b;
  segments.clear();
  for (Index j = 0; j < n; ++j) {
    const Index w = b + j;
    const doc_index s = doc.sentence_of(w), p = doc.paragraph_of(w), u = doc.unit_of(w);
    if (segments.empty() || segments.back().sentence != s || segments.back().paragraph != p ||
        segments.back().unit != u) {
      segments.push_back({j, j + 1, s, p, u, -1});
    } else {
      segments.back().end = j + 1;
    }
  }
  segment_mass.assign(segments.size(), 0.0);
  prepare_spans(n);
  acc_f.resize(segments.size());
  acc_d.resize(segments.size());
  punct_f.resize(static_cast<std::size_t>(n));
  sep_f.resize(static_cast<std::size_t>(n));
  punct_d.resize(static_cast<std::size_t>(n));
  sep_d.resize(static_cast<std::size_t>(n));
  free_f.resize(static_cast<std::size_t>(n));
  free_d.resize(static_cast<std::size_t>(n));
  free_before.assign(static_cast<std::size_t>(n) + 1, 0);
  for (Index j = 0; j < n; ++j) {
    const auto k = static_cast<std::size_t>(j);
    punct_f[k] = doc.is_punctuation(b + j) ? 1.0f : 0.0f;
    sep_f[k] = doc.is_separator(b + j) ? 1.0f : 0.0f;
    free_f[k] = sinks_apart && is_sink_column(doc, win, j) ? 0.0f : 1.0f;
    punct_d[k] = punct_f[k];
    sep_d[k] = sep_f[k];
    free_d[k] = free_f[k];
    free_before[k + 1] = free_before[k] + (free_f[k] != 0.0f ? 1 : 0);
  }
  // Units of the window: a contiguous range of unit ids.
  first_unit = -1;
  doc_index last_unit = -2;
  for (const feature_segment& sg : segments) {
    if (sg.unit < 0) continue;
    if (first_unit < 0) first_unit = sg.unit;
    last_unit = sg.unit;
  }
  unit_count = first_unit < 0 ? 0 : last_unit - first_unit + 1;
  for (feature_segment& sg : segments) sg.local_unit = sg.unit < 0 ? -1 : sg.unit - first_unit;
  unit_mass.assign(static_cast<std::size_t>(unit_count * unit_count), 0.0);
  unit_rows.assign(static_cast<std::size_t>(unit_count), 0);
  tracked.assign(static_cast<std::size_t>(unit_count), 0);
  row_end = win.own_end - b;
  for (Index k = 0; k < unit_count; ++k) {
    const Index ub = doc.unit_begin_[static_cast<std::size_t>(first_unit + k)];
    if (ub >= win.own_begin && ub < win.own_end && ub >= b) {
      tracked[static_cast<std::size_t>(k)] = 1;
      row_end = std::max(row_end, std::min(e, doc.unit_end_[static_cast<std::size_t>(first_unit + k)]) - b);
    }
  }
}

}  // namespace detail
}  // namespace headlens
