#pragma once
/// \file
/// Per-head features from word-level attention maps, accumulated over any number of documents and windows and
/// finalised into `head_evidence` (analysis/head_evidence.hpp), the evidence the classifier policies judge.
///
/// Use:
/// ```
/// const prepared_document doc(annotated);                 // once per document, shared by every head
/// model_feature_accumulator acc(layers, heads);
/// for (const word_window& win : make_windows(doc.words(), 256, 128))
///   acc.add(maps_for(win), doc, win);                      // [layers, heads, n, n], n = win.size()
/// std::vector<head_evidence> evidence = acc.evidence();    // layer-major
/// ```
///
/// ## Input
/// One head's word-level map over a window `[b, e)` of a document: an `n x n` row-major matrix (`n = e - b`),
/// row r being the attention *from* word `b + r`, each row summing to 1, or to 0 for a fully masked row
/// (within `feature_options::row_sum_tolerance`). Entries must be finite and not below `-row_sum_tolerance`.
///
/// ## Which rows and positions count, and why
/// - Only the rows the window *owns* (`word_window::own_begin..own_end`, see `make_windows`) are measured, so a
///   word is counted once however the windows overlap. Rows outside that range are not read (nor validated),
///   except the rows of a discourse unit that starts inside the owned range (see discourse below).
/// - Fully masked rows (sum 0) are skipped entirely: there is no attention to measure.
/// - Positional mass at offset d is averaged over the rows where word `i + d` exists in the window: the first
///   word has no previous word, so it does not count towards `previous_mass`, and a head that always attends to
///   the previous word has `previous_mass` 1. Likewise the share of rows whose argmax is at `top_offset` is taken
///   over the rows where that offset exists (Voita et al. 2019 count "cases" where the position is possible).
/// - `first_token_mass` excludes the window's first row: its attention to itself is self-attention, not a sink
///   (and under a causal mask it is 1 by construction).
///
/// ## Sinks: heads are judged on the attention they do not park
/// Real models put much of their attention on a sink, a position the model uses as a no-op when the head's
/// function does not apply: [CLS] and [SEP] in BERT (Clark et al. 2019, section 3), the first token in decoders
/// (Xiao et al. 2023, "attention sinks"). Judged on every column, a head that follows dependency arcs with 55% of
/// its mass and parks 45% on the window's first word has its argmax on the sink for the rows whose arc is spread
/// out, and its "cross-sentence" mass is the sink's. So (with `feature_options::sinks_apart`, the default):
/// - The sink positions of a window are its first word (what the model saw first) and the separators
///   (sentence-final punctuation, the word-level stand-in for [SEP]). Tokens the model adds (BOS, [CLS], [SEP])
///   are not words: `token_to_word_map` (analysis/alignment.hpp) drops their mass and renormalises each word row,
///   which is the same conditioning applied here; it reports that mass as `dropped_mass`.
/// - The other columns are *free*; a row's *free mass* is its mass on them. `sink_mass` (evidence: the mean over
///   rows) is reported apart, beside the first-word, separator and punctuation masses, which stay over all columns.
/// - Argmax tests use the row's *free argmax*: its first largest entry among the free columns, none when no free
///   entry is positive (then every argmax test of the row is wrong). Clark et al. read attention to [SEP] as a
///   no-op of heads whose function does not apply (section 3.2), so the function is in the rest. An instance whose
///   answer is a sink (an arc to the window's first word or to a separator, an offset landing on a sink) is not judged,
///   for the head nor for its baseline: an argmax that cannot land there cannot be right or wrong there. Coreference
///   instances are all judged; an antecedent made only of sink words (a one-word mention opening the window) cannot be
///   found.
/// - Masses and shapes describe the free attention q = p / free: entropy (normalised by log of the row's free
///   keys), mean distance and cross-sentence / paragraph / unit masses are free-mass-weighted means, i.e. ratios of
///   sums over rows (free x H(q) / log keys over free; the free mass on other sentences over the free mass), so a
///   row that parks everything on a sink weighs nothing instead of dividing by a tiny free mass. Related units sum
///   free mass. Offset masses (`offset_mass`, previous / self / next) stay over all columns: they say where mass
///   goes, sink or not, and no rule reads them.
/// - `sinks_apart = false` measures every column alike (no sink; free = whole row), the figures as they were
///   before sinks were set apart.
/// - The argmax otherwise excludes nothing: self-attention stays a candidate, as in Clark et al. (2019); an argmax
///   on the word itself simply counts as wrong for the syntactic, coreference and discourse tests.
/// - Entropy is normalised by `log(free keys)`, the free columns of the row's keys (the window; with
///   `feature_options::causal`, row i has keys 0..i); rows with fewer than 2 free keys carry no entropy.
///
/// ## Syntactic (Clark et al. 2019, section 4.2)
/// Per base UD relation (`nsubj` for `nsubj:pass`) and direction: for every arc dependent -> head with both words
/// in the window (and the target free), the dependent's row is right when its free argmax is the head
/// (dependent_to_head), and the head's row is right when its argmax is that dependent (head_to_dependent; a head with
/// several dependents of one relation is one instance per arc, so at most one of them can be right, as in Clark et
/// al.). Roots have no arc. The baseline is the best fixed offset: for each offset d in -8..+8 the share of instances
/// whose target lies at `i + d`; the best d (ties: smaller |d|, then negative) is the baseline. Arcs longer than 8
/// words count as instances no offset gets right.
///
/// ## Coreference (Clark et al. 2019, section 4.3)
/// An instance is a mention with a head word (`mention::head`, else `syntactic_head`) and at least one earlier
/// mention of its cluster (one that ends before it begins) lying wholly inside the window. The head word's row is
/// right when its argmax falls on any word of such an earlier mention. The nearest-mention baseline picks the
/// mention (of any cluster) that ends last before the instance begins (ties: the one that begins last) and is
/// right when that mention is of the same cluster. Types come from the UPOS of the head word: PRON pronoun,
/// PROPN proper, anything else nominal.
///
/// ## Discourse (Huber & Carenini 2022)
/// Cross-sentence, cross-paragraph and cross-unit mass: the share of the free mass on words of other sentences,
/// paragraphs and discourse units (cross-unit over the rows of words inside a unit). Related unit: a unit is judged in
/// the window that owns its first word, from all its rows in that window; its attention to each other unit is the sum
/// over its rows of their mass on that unit's words; it is right when the most attended other unit (ties: the
/// earlier one; no mass outside itself is wrong) is its parent. Units whose parent has no word in the window are
/// not judged. The chain baseline is right when the parent is the previous unit.
///
/// ## Documents without annotations
/// A document without a dependency layer (every HEAD `_`) gives no syntactic evidence, one without mentions no
/// coreference evidence, one without discourse units no discourse-unit evidence (counts stay 0). A document with
/// no sentences at all (words built by hand; `document_from_text` gives sentences) is split into sentences by the
/// word splitter's rule (text/word_splitter.hpp): after sentence-final punctuation (forms made of `.`, `!`, `?`,
/// `…`), closing quotes and brackets following it staying in the sentence; it has one paragraph. Punctuation without
/// UPOS is recognised from its form. `head_evidence::annotated` is true when some window came from a document with a
/// dependency, coreference or discourse layer.
///
/// ## Exact merging
/// Counts are integers, and masses are summed per window in double, then rounded to fixed point (2^-32 of a unit
/// of mass, 2^-20 of a word of distance) and added as 64-bit integers, so accumulators fed the same windows in any
/// split and merged in any order are equal bit for bit. The fixed point is exact to about 1e-10 per window and
/// holds about 2^31 rows of mass per head (about 8 million 256-word windows) before overflowing.
///
/// ## Speed
/// Each measured row is read once, in order, with xsimd batches (sum, free and sink mass, entropy, distance,
/// punctuation and separator mass, free maximum and argmax, and the free mass per sentence / paragraph / unit
/// segment in the same sweep; the free mask is one more load per vector);
/// only the 17 entries around the diagonal are read again. Nothing is allocated per row; per window a workspace
/// sized once is reused.
///
/// ## Where the parts live
/// `feature_options` (analysis/feature_options.hpp), `prepared_document` (analysis/prepared_document.hpp), the exact
/// totals (analysis/feature_totals.hpp), the row sweep (analysis/feature_sweep.hpp) and the window measure
/// (analysis/window_measure.hpp); this header holds the accumulators and includes them all.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <headlens/analysis/alignment.hpp>
#include <headlens/analysis/document.hpp>
#include <headlens/analysis/feature_options.hpp>
#include <headlens/analysis/feature_totals.hpp>
#include <headlens/analysis/head_evidence.hpp>
#include <headlens/analysis/prepared_document.hpp>
#include <headlens/analysis/window_measure.hpp>
#include <headlens/error.hpp>
#include <headlens/io/dtype.hpp>
#include <headlens/types.hpp>
#include <string>
#include <utility>
#include <vector>

namespace headlens {

class streaming_word_features;

/// Accumulates the features of one attention head over any number of windows and documents; `evidence()` turns
/// them into `head_evidence`. Copyable, mergeable (exactly, see the file comment), serialisable through
/// analysis/features_json.hpp. Not thread-safe: use one per thread and `merge`.
class head_feature_accumulator {
 public:
  explicit head_feature_accumulator(int layer = 0, int head = 0, feature_options options = {}) : options_(options) {
    totals_.layer = layer;
    totals_.head = head;
  }
  /// Restores an accumulator from its totals (as read from JSON).
  explicit head_feature_accumulator(head_feature_totals totals, feature_options options = {})
      : options_(options), totals_(std::move(totals)) {}

  int layer() const noexcept { return totals_.layer; }
  int head() const noexcept { return totals_.head; }
  const feature_options& options() const noexcept { return options_; }
  const head_feature_totals& totals() const noexcept { return totals_; }

  /// Adds one head's word-level map over `window` of `doc` (`map` is `window.size()` square, row-major).
  /// Throws `shape_error` when the map is not square or its size is not the window's (or the document's) word
  /// count, and `argument_error` for a window outside the document or a row that holds a non-finite or negative
  /// value or does not sum to 1 or 0 (naming the row, its word and its sum). On a throw nothing is added.
  void add(const Eigen::Ref<const matrix<float>, 0, Eigen::OuterStride<>>& map, const prepared_document& doc,
           const word_window& window) {
    add_impl(map.data(), map.outerStride(), map.rows(), map.cols(), doc, window);
  }
  /// See the float overload.
  void add(const Eigen::Ref<const matrix<double>, 0, Eigen::OuterStride<>>& map, const prepared_document& doc,
           const word_window& window) {
    add_impl(map.data(), map.outerStride(), map.rows(), map.cols(), doc, window);
  }
  /// Adds a map over the whole document (`map` is W x W for the document's W words).
  void add(const Eigen::Ref<const matrix<float>, 0, Eigen::OuterStride<>>& map, const prepared_document& doc) {
    add(map, doc, whole_document(doc.words()));
  }
  /// See the float overload.
  void add(const Eigen::Ref<const matrix<double>, 0, Eigen::OuterStride<>>& map, const prepared_document& doc) {
    add(map, doc, whole_document(doc.words()));
  }
  /// Adds a map given as a pointer to `window.size()` rows of `window.size()` values, `row_stride` apart.
  template <class Scalar>
  void add(const Scalar* map, Index row_stride, const prepared_document& doc, const word_window& window) {
    add_impl(map, row_stride, window.size(), window.size(), doc, window);
  }

  /// Adds another accumulator's totals (exact). Throws `argument_error` when it is for another (layer, head).
  /// Throws `argument_error` too when the two were measured with different `causal` or `sinks_apart` options.
  void merge(const head_feature_accumulator& other) {
    if (other.options_.causal != options_.causal || other.options_.sinks_apart != options_.sinks_apart) {
      detail::fail<argument_error>("cannot merge features measured with causal = ", other.options_.causal,
                                   ", sinks_apart = ", other.options_.sinks_apart,
                                   " into ones with causal = ", options_.causal,
                                   ", sinks_apart = ", options_.sinks_apart);
    }
    merge_totals(other.totals_);
  }

  /// The evidence so far.
  head_evidence evidence() const;

  bool operator==(const head_feature_accumulator& o) const { return totals_ == o.totals_; }
  bool operator!=(const head_feature_accumulator& o) const { return !(*this == o); }

 private:
  friend class model_feature_accumulator;
  friend class streaming_word_features;

  template <class Scalar>
  void add_impl(const Scalar* data, Index stride, Index rows, Index cols, const prepared_document& doc,
                const word_window& window) {
    detail::check_feature_window(doc, window, rows, cols);
    workspace_.prepare(doc, window, options_.sinks_apart);
    scratch_.reset(doc.relation_names().size());
    detail::window_measure::run(data, stride, doc, window, workspace_, options_, scratch_);
    commit(scratch_, doc);
  }

  void commit(const detail::feature_window_totals& w, const prepared_document& doc);
  void merge_totals(const head_feature_totals& o);

  feature_options options_;
  head_feature_totals totals_;
  detail::feature_workspace workspace_;
  detail::feature_window_totals scratch_;
};

inline void head_feature_accumulator::commit(const detail::feature_window_totals& w, const prepared_document& doc) {
  using detail::feature_distance_scale;
  using detail::feature_mass_scale;
  using detail::feature_to_fixed;
  head_feature_totals& t = totals_;
  ++t.windows;
  if (doc.annotated()) ++t.annotated_windows;
  t.rows += w.rows;
  for (std::size_t d = 0; d < t.offset_mass.size(); ++d) {
    t.offset_mass[d] += feature_to_fixed(w.offset_mass[d], feature_mass_scale);
    t.offset_rows[d] += w.offset_rows[d];
    t.argmax_at_offset[d] += w.argmax_at_offset[d];
    t.argmax_rows[d] += w.argmax_rows[d];
  }
  t.sink_mass += feature_to_fixed(w.sink_mass, feature_mass_scale);
  t.free_mass += feature_to_fixed(w.free_mass, feature_mass_scale);
  t.entropy += feature_to_fixed(w.entropy, feature_mass_scale);
  t.entropy_mass += feature_to_fixed(w.entropy_mass, feature_mass_scale);
  t.distance += feature_to_fixed(w.distance, feature_distance_scale);
  t.first_token_mass += feature_to_fixed(w.first_token_mass, feature_mass_scale);
  t.first_token_rows += w.first_token_rows;
  t.separator_mass += feature_to_fixed(w.separator_mass, feature_mass_scale);
  t.punctuation_mass += feature_to_fixed(w.punctuation_mass, feature_mass_scale);
  t.cross_sentence_mass += feature_to_fixed(w.cross_sentence_mass, feature_mass_scale);
  t.cross_paragraph_mass += feature_to_fixed(w.cross_paragraph_mass, feature_mass_scale);
  t.cross_unit_mass += feature_to_fixed(w.cross_unit_mass, feature_mass_scale);
  t.unit_free_mass += feature_to_fixed(w.unit_free_mass, feature_mass_scale);
  t.unit_rows += w.unit_rows;
  t.units += w.units;
  t.units_related_correct += w.units_related_correct;
  t.units_chain_correct += w.units_chain_correct;
  for (std::size_t k = 0; k < t.coreference_count.size(); ++k) {
    t.coreference_count[k] += w.coreference_count[k];
    t.coreference_correct[k] += w.coreference_correct[k];
    t.coreference_baseline_correct[k] += w.coreference_baseline_correct[k];
  }
  const std::vector<std::string>& names = doc.relation_names();
  for (std::size_t r = 0; r < w.relations.size(); ++r) {
    const auto& rel = w.relations[r];
    if (rel[0].count == 0 && rel[1].count == 0) continue;
    auto it = std::lower_bound(t.relations.begin(), t.relations.end(), names[r],
                               [](const relation_totals& x, const std::string& name) { return x.relation < name; });
    if (it == t.relations.end() || it->relation != names[r]) {
      relation_totals fresh;
      fresh.relation = names[r];
      it = t.relations.insert(it, std::move(fresh));
    }
    it->dependent_to_head += rel[0];
    it->head_to_dependent += rel[1];
  }
}

inline void head_feature_accumulator::merge_totals(const head_feature_totals& o) {
  head_feature_totals& t = totals_;
  if (o.layer != t.layer || o.head != t.head) {
    detail::fail<argument_error>("cannot merge the features of layer ", o.layer, " head ", o.head, " into layer ",
                                 t.layer, " head ", t.head);
  }
  t.windows += o.windows;
  t.annotated_windows += o.annotated_windows;
  t.rows += o.rows;
  for (std::size_t d = 0; d < t.offset_mass.size(); ++d) {
    t.offset_mass[d] += o.offset_mass[d];
    t.offset_rows[d] += o.offset_rows[d];
    t.argmax_at_offset[d] += o.argmax_at_offset[d];
    t.argmax_rows[d] += o.argmax_rows[d];
  }
  t.sink_mass += o.sink_mass;
  t.free_mass += o.free_mass;
  t.entropy += o.entropy;
  t.entropy_mass += o.entropy_mass;
  t.distance += o.distance;
  t.first_token_mass += o.first_token_mass;
  t.first_token_rows += o.first_token_rows;
  t.separator_mass += o.separator_mass;
  t.punctuation_mass += o.punctuation_mass;
  t.cross_sentence_mass += o.cross_sentence_mass;
  t.cross_paragraph_mass += o.cross_paragraph_mass;
  t.cross_unit_mass += o.cross_unit_mass;
  t.unit_free_mass += o.unit_free_mass;
  t.unit_rows += o.unit_rows;
  t.units += o.units;
  t.units_related_correct += o.units_related_correct;
  t.units_chain_correct += o.units_chain_correct;
  for (std::size_t k = 0; k < t.coreference_count.size(); ++k) {
    t.coreference_count[k] += o.coreference_count[k];
    t.coreference_correct[k] += o.coreference_correct[k];
    t.coreference_baseline_correct[k] += o.coreference_baseline_correct[k];
  }
  for (const relation_totals& rel : o.relations) {
    auto it = std::lower_bound(t.relations.begin(), t.relations.end(), rel.relation,
                               [](const relation_totals& x, const std::string& name) { return x.relation < name; });
    if (it == t.relations.end() || it->relation != rel.relation) {
      t.relations.insert(it, rel);
    } else {
      it->dependent_to_head += rel.dependent_to_head;
      it->head_to_dependent += rel.head_to_dependent;
    }
  }
}

namespace detail {

inline double feature_ratio(std::int64_t num, std::int64_t den) {
  return den > 0 ? static_cast<double>(num) / static_cast<double>(den) : 0.0;
}
inline double feature_fixed_mean(std::int64_t sum, double scale, std::int64_t den) {
  return den > 0 ? static_cast<double>(sum) / scale / static_cast<double>(den) : 0.0;
}

/// The best fixed offset: most instances at it; ties to the smaller |d|, then the negative one.
inline int best_fixed_offset(const std::array<std::int64_t, feature_offset_slots>& counts) {
  int best = 0;
  std::int64_t best_count = -1;
  for (int a = 0; a <= evidence_max_offset; ++a) {
    for (int d : {-a, a}) {
      const std::int64_t c = counts[static_cast<std::size_t>(d + evidence_max_offset)];
      if (c > best_count) {
        best_count = c;
        best = d;
      }
      if (a == 0) break;
    }
  }
  return best;
}

}  // namespace detail

inline head_evidence head_feature_accumulator::evidence() const {
  using detail::feature_fixed_mean;
  using detail::feature_mass_scale;
  using detail::feature_ratio;
  const head_feature_totals& t = totals_;
  head_evidence ev;
  ev.layer = t.layer;
  ev.head = t.head;
  ev.windows = t.windows;
  ev.annotated = t.annotated_windows > 0;

  positional_evidence& pos = ev.positional;
  for (std::size_t d = 0; d < pos.offset_mass.size(); ++d)
    pos.offset_mass[d] = feature_fixed_mean(t.offset_mass[d], feature_mass_scale, t.offset_rows[d]);
  pos.self_mass = pos.offset_mass[evidence_max_offset];
  pos.previous_mass = pos.offset_mass[evidence_max_offset - 1];
  pos.next_mass = pos.offset_mass[evidence_max_offset + 1];
  pos.top_offset = detail::best_fixed_offset(t.argmax_at_offset);
  const auto top = static_cast<std::size_t>(pos.top_offset + evidence_max_offset);
  pos.top_offset_share = feature_ratio(t.argmax_at_offset[top], t.argmax_rows[top]);
  pos.rows = t.rows;

  for (const relation_totals& rel : t.relations) {
    for (int dir = 0; dir < 2; ++dir) {
      const relation_direction_totals& r = dir == 0 ? rel.dependent_to_head : rel.head_to_dependent;
      if (r.count == 0) continue;
      relation_evidence re;
      re.relation = rel.relation;
      re.dependent_to_head = dir == 0;
      re.accuracy = feature_ratio(r.correct, r.count);
      re.baseline_offset = detail::best_fixed_offset(r.at_offset);
      re.baseline_accuracy =
          feature_ratio(r.at_offset[static_cast<std::size_t>(re.baseline_offset + evidence_max_offset)], r.count);
      re.count = r.count;
      ev.syntactic.relations.push_back(std::move(re));
    }
  }
  std::stable_sort(ev.syntactic.relations.begin(), ev.syntactic.relations.end(),
                   [](const relation_evidence& a, const relation_evidence& b) {
                     if (a.margin() != b.margin()) return a.margin() > b.margin();
                     if (a.count != b.count) return a.count > b.count;
                     if (a.relation != b.relation) return a.relation < b.relation;
                     return a.dependent_to_head && !b.dependent_to_head;
                   });

  coreference_evidence& co = ev.coreference;
  std::int64_t all = 0, all_correct = 0, all_baseline = 0;
  for (std::size_t k = 0; k < co.count.size(); ++k) {
    co.count[k] = t.coreference_count[k];
    co.accuracy[k] = feature_ratio(t.coreference_correct[k], t.coreference_count[k]);
    co.baseline_accuracy[k] = feature_ratio(t.coreference_baseline_correct[k], t.coreference_count[k]);
    all += t.coreference_count[k];
    all_correct += t.coreference_correct[k];
    all_baseline += t.coreference_baseline_correct[k];
  }
  co.overall_count = all;
  co.overall_accuracy = feature_ratio(all_correct, all);
  co.overall_baseline_accuracy = feature_ratio(all_baseline, all);

  discourse_evidence& di = ev.discourse;
  // Shares of the free mass: ratios of two fixed-point sums of the same scale.
  di.cross_sentence_mass = feature_ratio(t.cross_sentence_mass, t.free_mass);
  di.cross_paragraph_mass = feature_ratio(t.cross_paragraph_mass, t.free_mass);
  di.cross_unit_mass = feature_ratio(t.cross_unit_mass, t.unit_free_mass);
  di.related_unit_accuracy = feature_ratio(t.units_related_correct, t.units);
  di.chain_baseline_accuracy = feature_ratio(t.units_chain_correct, t.units);
  di.unit_count = t.units;
  di.rows = t.rows;

  general_evidence& ge = ev.general;
  ge.entropy = feature_ratio(t.entropy, t.entropy_mass);
  ge.mean_distance = t.free_mass > 0 ? static_cast<double>(t.distance) / detail::feature_distance_scale /
                                           (static_cast<double>(t.free_mass) / feature_mass_scale)
                                     : 0.0;
  ge.sink_mass = feature_fixed_mean(t.sink_mass, feature_mass_scale, t.rows);
  ge.first_token_mass = feature_fixed_mean(t.first_token_mass, feature_mass_scale, t.first_token_rows);
  ge.separator_mass = feature_fixed_mean(t.separator_mass, feature_mass_scale, t.rows);
  ge.punctuation_mass = feature_fixed_mean(t.punctuation_mass, feature_mass_scale, t.rows);
  ge.rows = t.rows;
  return ev;
}

/// One `head_feature_accumulator` per (layer, head) of a model, fed [layers, heads, n, n] tensors of maps. The
/// window layout (segments, masks, units) is prepared once per window for all heads, and a bad map leaves every
/// head untouched.
class model_feature_accumulator {
 public:
  model_feature_accumulator() = default;
  /// Throws `argument_error` unless `layers >= 1` and `heads >= 1`.
  model_feature_accumulator(int layers, int heads, feature_options options = {})
      : layers_(layers), heads_(heads), options_(options) {
    if (layers < 1 || heads < 1) {
      detail::fail<argument_error>("model_feature_accumulator needs layers >= 1 and heads >= 1, got ", layers, " x ",
                                   heads);
    }
    for (int l = 0; l < layers; ++l) {
      for (int h = 0; h < heads; ++h) heads_acc_.emplace_back(l, h, options);
    }
    scratch_.resize(heads_acc_.size());
  }

  int layers() const noexcept { return layers_; }
  int heads() const noexcept { return heads_; }
  const feature_options& options() const noexcept { return options_; }
  /// The accumulator of (layer, head). Throws `argument_error` when out of range.
  const head_feature_accumulator& head(int layer, int head) const { return heads_acc_[slot(layer, head)]; }
  head_feature_accumulator& head(int layer, int head) { return heads_acc_[slot(layer, head)]; }
  /// All accumulators, layer-major.
  const std::vector<head_feature_accumulator>& accumulators() const noexcept { return heads_acc_; }

  /// Adds the maps of every head over `window`: `maps` points to `layers * heads * n * n` values in C order
  /// ([layer][head][row][column], n = window.size()). Throws as `head_feature_accumulator::add` (the message
  /// naming the layer and head) and `shape_error` when `layers`/`heads`/`n` do not match; on a throw nothing
  /// is added to any head.
  template <class Scalar>
  void add(const Scalar* maps, Index layers, Index heads, Index n, const prepared_document& doc,
           const word_window& window) {
    if (layers != layers_ || heads != heads_) {
      detail::fail<shape_error>("maps have ", layers, " layers x ", heads, " heads, expected ", layers_, " x ", heads_);
    }
    detail::check_feature_window(doc, window, n, n);
    workspace_.prepare(doc, window, options_.sinks_apart);
    const Index per_head = n * n;
    for (std::size_t k = 0; k < heads_acc_.size(); ++k) {
      scratch_[k].reset(doc.relation_names().size());
      try {
        detail::window_measure::run(maps + static_cast<Index>(k) * per_head, n, doc, window, workspace_, options_,
                                    scratch_[k]);
      } catch (const argument_error& e) {
        const std::string what = e.what();
        detail::fail<argument_error>("layer ", heads_acc_[k].layer(), " head ", heads_acc_[k].head(), ": ",
                                     what.substr(what.rfind("headlens: ", 0) == 0 ? 10 : 0));
      }
    }
    for (std::size_t k = 0; k < heads_acc_.size(); ++k) heads_acc_[k].commit(scratch_[k], doc);
  }

  /// Adds a tensor of shape [layers, heads, n, n] (e.g. read from a .npy) over `window`.
  template <class Scalar>
  void add(const tensor<Scalar>& maps, const prepared_document& doc, const word_window& window) {
    if (maps.shape.size() != 4 || maps.shape[2] != maps.shape[3]) {
      std::string shape = "[";
      for (std::size_t k = 0; k < maps.shape.size(); ++k) shape += (k ? ", " : "") + std::to_string(maps.shape[k]);
      detail::fail<shape_error>("maps have shape ", shape, "], expected [layers, heads, W, W]");
    }
    if (maps.shape[2] != window.size()) {
      if (window.begin == 0 && window.end == doc.words()) {
        detail::fail<shape_error>("maps are over ", maps.shape[2], " words but the document has ", doc.words(),
                                  " words");
      }
      detail::fail<shape_error>("maps are over ", maps.shape[2], " words but the window [", window.begin, ", ",
                                window.end, ") has ", window.size());
    }
    add(maps.data.data(), maps.shape[0], maps.shape[1], maps.shape[2], doc, window);
  }
  /// Adds a tensor of shape [layers, heads, W, W] over a whole document.
  template <class Scalar>
  void add(const tensor<Scalar>& maps, const prepared_document& doc) {
    add(maps, doc, whole_document(doc.words()));
  }

  /// Adds another model's accumulators (exact). Throws `argument_error` when the shapes differ.
  void merge(const model_feature_accumulator& other) {
    if (other.layers_ != layers_ || other.heads_ != heads_) {
      detail::fail<argument_error>("cannot merge features of ", other.layers_, " x ", other.heads_, " heads into ",
                                   layers_, " x ", heads_);
    }
    for (std::size_t k = 0; k < heads_acc_.size(); ++k) heads_acc_[k].merge(other.heads_acc_[k]);
  }

  /// Evidence of every head, layer-major (index layer * heads + head).
  std::vector<head_evidence> evidence() const {
    std::vector<head_evidence> out;
    out.reserve(heads_acc_.size());
    for (const head_feature_accumulator& acc : heads_acc_) out.push_back(acc.evidence());
    return out;
  }

  bool operator==(const model_feature_accumulator& o) const {
    return layers_ == o.layers_ && heads_ == o.heads_ && heads_acc_ == o.heads_acc_;
  }
  bool operator!=(const model_feature_accumulator& o) const { return !(*this == o); }

 private:
  std::size_t slot(int layer, int head) const {
    if (layer < 0 || layer >= layers_ || head < 0 || head >= heads_) {
      detail::fail<argument_error>("head (", layer, ", ", head, ") is outside the model's ", layers_, " x ", heads_,
                                   " heads");
    }
    return static_cast<std::size_t>(layer) * static_cast<std::size_t>(heads_) + static_cast<std::size_t>(head);
  }

  int layers_ = 0;
  int heads_ = 0;
  feature_options options_;
  std::vector<head_feature_accumulator> heads_acc_;
  detail::feature_workspace workspace_;
  std::vector<detail::feature_window_totals> scratch_;
};

/// Evidence of every head of a model from one document's maps, a [layers, heads, W, W] tensor over its W words
/// (e.g. `as_tensor<float>(read_npy(path))`). Throws as `model_feature_accumulator::add`.
template <class Scalar>
std::vector<head_evidence> head_evidence_from_maps(const tensor<Scalar>& maps, const document& doc,
                                                   feature_options options = {}) {
  if (maps.shape.size() != 4) {
    detail::fail<shape_error>("maps have ", maps.shape.size(), " dimensions, expected 4: [layers, heads, W, W]");
  }
  if (maps.shape[0] < 1 || maps.shape[1] < 1) {
    detail::fail<shape_error>("maps have ", maps.shape[0], " layers and ", maps.shape[1],
                              " heads, expected at least 1 each");
  }
  const prepared_document prepared(doc);
  model_feature_accumulator acc(static_cast<int>(maps.shape[0]), static_cast<int>(maps.shape[1]), options);
  acc.add(maps, prepared);
  return acc.evidence();
}

}  // namespace headlens
