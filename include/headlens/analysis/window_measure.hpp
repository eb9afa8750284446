#pragma once
/// \file
/// `window_measure`: the features of one head's word-level map over a prepared window (what each row adds to
/// `feature_window_totals`; the rules are in analysis/features.hpp's file comment), row by row or a block at a
/// time, so the materialised path and the streaming kernel (analysis/streaming_features.hpp) measure alike.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <headlens/analysis/alignment.hpp>
#include <headlens/analysis/feature_options.hpp>
#include <headlens/analysis/feature_sweep.hpp>
#include <headlens/analysis/feature_totals.hpp>
#include <headlens/analysis/prepared_document.hpp>
#include <headlens/error.hpp>
#include <headlens/types.hpp>
#include <vector>
#include <xsimd/xsimd.hpp>

namespace headlens {
namespace detail {

/// Measures rows of one head's map over a prepared window into `out`: `begin`, then `rows` over the rows
/// `first_row(win)` .. `end_row(ws)` in order (in one call or in consecutive blocks, so a streaming kernel can hand
/// them over a block at a time), then `finish`; `run` does all three over a whole map. Throws `argument_error` for
/// a bad row.
struct window_measure {
  template <class Scalar>
  static void run(const Scalar* data, Index row_stride, const prepared_document& doc, const word_window& win,
                  feature_workspace& ws, const feature_options& options, feature_window_totals& out) {
    begin(ws);
    const Index first = first_row(win);
    rows(data + first * row_stride, row_stride, first, end_row(ws), doc, win, ws, options, out);
    finish(doc, win, ws, out);
  }

  /// The first and one past the last row (window-local) that `rows` reads: the owned rows, and the rows of
  /// discourse units that begin among them.
  static Index first_row(const word_window& win) noexcept { return std::max<Index>(win.own_begin - win.begin, 0); }
  static Index end_row(const feature_workspace& ws) noexcept { return ws.row_end; }

  static void begin(feature_workspace& ws) {
    std::fill(ws.unit_mass.begin(), ws.unit_mass.end(), 0.0);
    std::fill(ws.unit_rows.begin(), ws.unit_rows.end(), 0);
  }

  /// Measures window-local rows li0 .. li1 - 1; row li is at data + (li - li0) * row_stride. `extent`, when given,
  /// says that row li is 0 from column extent[li - li0] on (a causal row past the words its tokens see): only its
  /// first extent[li - li0] entries are read, the rest are taken as 0 and need not be written. With `renormalise`
  /// each row is measured as divided by its own sum (a row of 0 stays masked), so a streaming caller can hand over
  /// rows that still hold mass on tokens of no word, in place, without writing a renormalised copy.
  template <class Scalar>
  static void rows(const Scalar* data, Index row_stride, Index li0, Index li1, const prepared_document& doc,
                   const word_window& win, feature_workspace& ws, const feature_options& options,
                   feature_window_totals& out, const Index* extent = nullptr, bool renormalise = false) {
    // Not from logits: the rows are only read.
    measure<Scalar, false>(const_cast<Scalar*>(data), row_stride, li0, li1, doc, win, ws, options, out, extent,
                           renormalise, nullptr);
  }

  /// `rows` over rows that hold logits: row li becomes exp(x - shift[li - li0]) in place as it is swept (up to its
  /// extent), and is measured as that pattern row, so a streaming caller need not exponentiate it first.
  template <class Scalar>
  static void rows_from_logits(Scalar* data, Index row_stride, Index li0, Index li1, const prepared_document& doc,
                               const word_window& win, feature_workspace& ws, const feature_options& options,
                               feature_window_totals& out, const Index* extent, bool renormalise,
                               const Scalar* shift) {
    measure<Scalar, true>(data, row_stride, li0, li1, doc, win, ws, options, out, extent, renormalise, shift);
  }

 private:
  template <class Scalar, bool FromLogits>
  static void measure(Scalar* data, Index row_stride, Index li0, Index li1, const prepared_document& doc,
                      const word_window& win, feature_workspace& ws, const feature_options& options,
                      feature_window_totals& out, const Index* extent, bool renormalise, const Scalar* shift) {
    const Index b = win.begin, n = win.size();
    const Index own_end = win.own_end - b;
    const double tol = options.row_sum_tolerance;
    const Scalar* pm = ws.template punct<Scalar>();
    const Scalar* sm = ws.template sep<Scalar>();
    const Scalar* fm = ws.template free<Scalar>();
    std::vector<xsimd::batch<Scalar>>& acc = ws.template accumulators<Scalar>();
    const std::size_t seg_count = ws.segments.size();
    for (Index li = li0; li < li1; ++li) {
      const Index w = b + li;
      const bool owned = li < own_end;
      const doc_index row_unit = doc.unit_of(w);
      const Index row_local_unit = row_unit < 0 ? -1 : row_unit - ws.first_unit;
      if (!owned && (row_local_unit < 0 || !ws.tracked[static_cast<std::size_t>(row_local_unit)])) continue;
      Scalar* p = data + (li - li0) * row_stride;
      const Index swept = extent != nullptr ? std::clamp<Index>(extent[li - li0], 0, n) : n;
      // Every segment's mass only where the row's attention per unit wants it, or spans cannot stand in for it.
      const bool unit_row = row_local_unit >= 0 && ws.tracked[static_cast<std::size_t>(row_local_unit)];
      const bool by_segments = unit_row || !ws.spans_exact;
      feature_row_stats st = feature_sweep_row<Scalar, FromLogits>(
          p, swept, li, ws.segments.data(), by_segments ? seg_count : 0, pm, sm, fm, acc, ws.segment_mass.data(),
          FromLogits ? shift[li - li0] : Scalar(0));
      // Every mass is linear in the row; sum (c p log(c p)) = c sum p log p + c log c sum p over the free columns.
      const double scale = renormalise && st.sum > 0 && std::isfinite(st.sum) ? 1.0 / st.sum : 1.0;
      if (scale != 1.0) {
        st.plogp = scale * st.plogp + scale * std::log(scale) * st.free;
        for (double* m : {&st.sum, &st.free, &st.sink, &st.distance, &st.punct, &st.sep, &st.max, &st.min}) *m *= scale;
        if (by_segments) {
          for (std::size_t k = 0; k < seg_count; ++k) ws.segment_mass[k] *= scale;
        }
      }
      const double sum = st.sum;
      const Index arg = st.arg;  // free argmax, -1 for none
      const double plogp = st.plogp;
      if (!std::isfinite(sum) || !std::isfinite(plogp) || !std::isfinite(st.max) || st.min < -tol) {
        for (Index j = 0; j < swept; ++j) {
          const double v = static_cast<double>(p[j]);
          if (!std::isfinite(v))
            fail<argument_error>("map row ", li, " (word ", w, ") holds ", v, " at column ", j,
                                 ", expected finite values");
          if (v < -tol)
            fail<argument_error>("map row ", li, " (word ", w, ") holds ", v, " at column ", j,
                                 ", expected values >= ", -tol);
        }
      }
      const bool masked = std::abs(sum) <= tol;
      if (!masked && std::abs(sum - 1.0) > tol) {
        fail<argument_error>("map row ", li, " (word ", w, ") sums to ", sum, ", expected 1 or 0 (tolerance ", tol,
                             ")");
      }
      if (masked) continue;

      // Discourse units: every read row of a unit adds to its attention per unit.
      if (unit_row) {
        double* to = ws.unit_mass.data() + row_local_unit * ws.unit_count;
        for (std::size_t k = 0; k < seg_count; ++k) {
          if (ws.segments[k].local_unit >= 0) to[ws.segments[k].local_unit] += ws.segment_mass[k];
        }
        ++ws.unit_rows[static_cast<std::size_t>(row_local_unit)];
      }
      if (!owned) continue;

      ++out.rows;
      // Sinks (the file comment says why the rest is judged on the free mass).
      const double free = st.free;
      out.sink_mass += st.sink;
      out.free_mass += free;
      // Positional: masses as they are; the argmax share only where the offset is a free column.
      for (int d = -evidence_max_offset; d <= evidence_max_offset; ++d) {
        const Index j = li + d;
        if (j < 0 || j >= n) continue;
        const auto slot = static_cast<std::size_t>(d + evidence_max_offset);
        if (j < swept) out.offset_mass[slot] += scale * static_cast<double>(p[j]);
        ++out.offset_rows[slot];
        if (fm[j] != Scalar(0)) ++out.argmax_rows[slot];
      }
      const Index top = arg - li;
      if (arg >= 0 && top >= -evidence_max_offset && top <= evidence_max_offset)
        ++out.argmax_at_offset[static_cast<std::size_t>(top + evidence_max_offset)];
      // General. Entropy of the free attention q = p / free over the free keys, weighted by the free mass:
      // free H(q) = -sum p log p + free log free (>= 0; rounding can take it just below).
      const Index free_keys = ws.free_before[static_cast<std::size_t>(options.causal ? li + 1 : n)];
      if (free_keys >= 2 && free > 0) {
        out.entropy += std::max(0.0, -plogp + free * std::log(free)) / std::log(static_cast<double>(free_keys));
        out.entropy_mass += free;
      }
      out.distance += st.distance;
      if (li > 0) {
        out.first_token_mass += swept > 0 ? scale * static_cast<double>(p[0]) : 0.0;
        ++out.first_token_rows;
      }
      out.separator_mass += st.sep;
      out.punctuation_mass += st.punct;
      // Cross-boundary masses.
      const doc_index row_sentence = doc.sentence_of(w), row_paragraph = doc.paragraph_of(w);
      double same_sentence = 0, same_paragraph = 0, same_unit = 0;
      if (by_segments) {
        for (std::size_t k = 0; k < seg_count; ++k) {
          const feature_segment& sg = ws.segments[k];
          if (sg.sentence == row_sentence) same_sentence += ws.segment_mass[k];
          if (sg.paragraph == row_paragraph) same_paragraph += ws.segment_mass[k];
          if (row_unit >= 0 && sg.unit == row_unit) same_unit += ws.segment_mass[k];
        }
      } else {
        // The free mass on a span of the swept row: summed over it, or for a span wider than half the row (a
        // one-paragraph document) as the free mass less the mass outside it, so no span reads the row again.
        const auto free_within = [&](Index begin, Index end) {
          end = std::min(end, swept);
          if (end <= begin) return 0.0;
          if (2 * (end - begin) <= swept) return scale * feature_free_mass(p, fm, begin, end);
          return free - scale * (feature_free_mass(p, fm, 0, begin) + feature_free_mass(p, fm, end, swept));
        };
        const feature_column_spans& sp = ws.spans[static_cast<std::size_t>(li)];
        same_sentence = free_within(sp.sentence_begin, sp.sentence_end);
        same_paragraph = free_within(sp.paragraph_begin, sp.paragraph_end);
        if (row_unit >= 0) same_unit = free_within(sp.unit_begin, sp.unit_end);
      }
      out.cross_sentence_mass += free - same_sentence;
      out.cross_paragraph_mass += free - same_paragraph;
      if (row_unit >= 0) {
        out.cross_unit_mass += free - same_unit;
        out.unit_free_mass += free;
        ++out.unit_rows;
      }
      // Syntactic: an arc whose target is a sink is not judged (nor counted for the baseline). The arc's
      // relation is its dependent's; direction 0 is dependent_to_head, 1 head_to_dependent.
      const Index e = win.end;
      const auto judge_arc = [&](doc_index target, doc_index dependent, int direction) {
        if (target < b || target >= e || fm[target - b] == Scalar(0)) return;
        auto& t = out.relations[static_cast<std::size_t>(doc.relation_[static_cast<std::size_t>(dependent)])]
                               [static_cast<std::size_t>(direction)];
        ++t.count;
        if (b + arg == target) ++t.correct;
        const Index d = target - w;
        if (d >= -evidence_max_offset && d <= evidence_max_offset)
          ++t.at_offset[static_cast<std::size_t>(d + evidence_max_offset)];
      };
      judge_arc(doc.head_[static_cast<std::size_t>(w)], static_cast<doc_index>(w), 0);
      for (Index c = doc.child_start_[static_cast<std::size_t>(w)];
           c < doc.child_start_[static_cast<std::size_t>(w) + 1]; ++c) {
        const doc_index dep = doc.children_[static_cast<std::size_t>(c)];
        judge_arc(dep, dep, 1);
      }
      // Coreference.
      for (Index c = doc.coref_start_[static_cast<std::size_t>(w)];
           c < doc.coref_start_[static_cast<std::size_t>(w) + 1]; ++c) {
        const auto& inst = doc.coref_[static_cast<std::size_t>(c)];
        if (inst.latest_antecedent_begin < b) continue;
        const auto type = static_cast<std::size_t>(inst.type);
        ++out.coreference_count[type];
        if (inst.baseline_correct) ++out.coreference_baseline_correct[type];
        if (arg < 0) continue;
        const Index a = b + arg;
        bool right = false;
        for (Index m = doc.member_start_[static_cast<std::size_t>(a)];
             m < doc.member_start_[static_cast<std::size_t>(a) + 1]; ++m) {
          const auto& mb = doc.members_[static_cast<std::size_t>(m)];
          if (mb.cluster == inst.cluster && mb.mention_end <= inst.mention_begin) {
            right = true;
            break;
          }
        }
        if (right) ++out.coreference_correct[type];
      }
    }
  }

 public:
  /// The per-window measures that need every row: related discourse units.
  static void finish(const prepared_document& doc, const word_window& win, const feature_workspace& ws,
                     feature_window_totals& out) {
    // Related units.
    for (Index k = 0; k < ws.unit_count; ++k) {
      if (!ws.tracked[static_cast<std::size_t>(k)] || ws.unit_rows[static_cast<std::size_t>(k)] == 0) continue;
      const doc_index u = ws.first_unit + k;
      const doc_index parent = doc.unit_parent_[static_cast<std::size_t>(u)];
      if (parent < 0) continue;
      const Index pb = doc.unit_begin_[static_cast<std::size_t>(parent)],
                  pe = doc.unit_end_[static_cast<std::size_t>(parent)];
      if (pe <= win.begin || pb >= win.end) continue;
      const double* from = ws.unit_mass.data() + k * ws.unit_count;
      Index best = -1;
      double best_mass = 0;
      for (Index v = 0; v < ws.unit_count; ++v) {
        if (v == k) continue;
        if (from[v] > best_mass) {
          best_mass = from[v];
          best = v;
        }
      }
      ++out.units;
      if (best >= 0 && ws.first_unit + best == parent) ++out.units_related_correct;
      if (parent == u - 1) ++out.units_chain_correct;
    }
  }
};

inline void check_feature_window(const prepared_document& doc, const word_window& win, Index rows, Index cols) {
  if (rows != cols)
    fail<shape_error>("attention map is ", rows, " x ", cols, ", expected a square map over the window's words");
  if (win.begin < 0 || win.end > doc.words() || win.begin > win.end) {
    fail<argument_error>("window [", win.begin, ", ", win.end, ") is not within the document's ", doc.words(),
                         " words");
  }
  if (win.own_begin < win.begin || win.own_end > win.end || win.own_begin > win.own_end) {
    fail<argument_error>("window owns words [", win.own_begin, ", ", win.own_end, "), expected within its words [",
                         win.begin, ", ", win.end, ")");
  }
  if (rows != win.size()) {
    if (win.begin == 0 && win.end == doc.words()) {
      fail<shape_error>("attention map is ", rows, " x ", cols, " but the document has ", doc.words(), " words");
    }
    fail<shape_error>("attention map is ", rows, " x ", cols, " but the window [", win.begin, ", ", win.end, ") has ",
                      win.size(), " words");
  }
}

}  // namespace detail
}  // namespace headlens
