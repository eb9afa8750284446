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

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <headlens/analysis/alignment.hpp>
#include <headlens/analysis/document.hpp>
#include <headlens/analysis/head_evidence.hpp>
#include <headlens/error.hpp>
#include <headlens/io/dtype.hpp>
#include <headlens/text/word_splitter.hpp>
#include <headlens/types.hpp>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>
#include <xsimd/xsimd.hpp>

namespace headlens {

/// Options of the feature accumulators.
struct feature_options {
  /// A row must sum to 1 or to 0 within this absolute tolerance; entries may not be below `-row_sum_tolerance`.
  double row_sum_tolerance = 1e-3;
  /// The maps come from a causal (decoder) model: row i has i + 1 keys, which sets the entropy normaliser.
  bool causal = false;
  /// Judge heads on the attention off the sink positions (the window's first word and the separators; see the file
  /// comment). `false` treats every column alike: no sinks, every figure over the whole row.
  bool sinks_apart = true;
};

namespace detail {

/// True for a form made only of punctuation: ASCII punctuation and the common UTF-8 quotes, dashes and ellipsis.
inline bool is_punctuation_form(std::string_view form) {
  if (form.empty()) return false;
  static constexpr std::string_view multibyte[] = {"\u201C", "\u201D", "\u2018", "\u2019", "\u2014", "\u2013",
                                                   "\u2026", "\u00AB", "\u00BB", "\u00BF", "\u00A1"};
  std::size_t i = 0;
  while (i < form.size()) {
    const unsigned char c = static_cast<unsigned char>(form[i]);
    if (c < 0x80) {
      const bool punct =
          (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
      if (!punct) return false;
      ++i;
      continue;
    }
    bool matched = false;
    for (std::string_view m : multibyte) {
      if (form.compare(i, m.size(), m) == 0) {
        i += m.size();
        matched = true;
        break;
      }
    }
    if (!matched) return false;
  }
  return true;
}

/// Fixed-point scales of the exact totals.
inline constexpr double feature_mass_scale = 4294967296.0;   // 2^32
inline constexpr double feature_distance_scale = 1048576.0;  // 2^20

inline std::int64_t feature_to_fixed(double value, double scale) {
  return static_cast<std::int64_t>(std::floor(value * scale + 0.5));
}

inline constexpr int feature_offset_slots = 2 * evidence_max_offset + 1;

}  // namespace detail

class head_feature_accumulator;
class model_feature_accumulator;
class streaming_word_features;
namespace detail {
struct feature_workspace;
struct window_measure;
}  // namespace detail

/// A document arranged for feature accumulation: per-word sentence, paragraph and discourse unit, punctuation,
/// dependency arcs with relation ids, coreference instances and their baselines. Built once per document and
/// shared by every head and window (read-only, so threads may share it). Holds no reference to the `document`.
class prepared_document {
 public:
  /// What a coreference instance needs at the row of its head word.
  struct coreference_instance {
    doc_index mention_begin = 0;            ///< first word of the mention
    doc_index cluster = 0;                  ///< its cluster
    doc_index latest_antecedent_begin = 0;  ///< largest begin of an earlier mention of the cluster
    int type = coreference_evidence::nominal;
    bool baseline_correct = false;  ///< the nearest earlier mention is of the same cluster
  };
  /// A word's membership in a mention.
  struct membership {
    doc_index cluster = 0;
    doc_index mention_end = 0;
  };

  prepared_document() = default;

  /// Arranges `doc`. Throws `argument_error` when an index in `doc` is out of range (a word's sentence or head,
  /// a mention's or unit's span) so that a hand-made document cannot make the accumulators read out of bounds.
  explicit prepared_document(const document& doc) {
    const Index n = static_cast<Index>(doc.words.size());
    words_ = n;
    const auto un = static_cast<std::size_t>(n);
    sentence_of_.assign(un, 0);
    paragraph_of_.assign(un, 0);
    unit_of_.assign(un, -1);
    punct_.assign(un, 0.0f);
    separator_.assign(un, 0.0f);
    head_.assign(un, -1);
    relation_.assign(un, -1);

    // Sentences and paragraphs.
    if (!doc.sentences.empty()) {
      for (std::size_t s = 0; s < doc.sentences.size(); ++s) {
        const sentence& sent = doc.sentences[s];
        if (sent.begin < 0 || sent.end > n || sent.begin > sent.end) {
          detail::fail<argument_error>("sentence ", s, " spans words [", sent.begin, ", ", sent.end,
                                       "), expected within [0, ", n, ")");
        }
        for (doc_index w = sent.begin; w < sent.end; ++w) {
          sentence_of_[static_cast<std::size_t>(w)] = static_cast<doc_index>(s);
          paragraph_of_[static_cast<std::size_t>(w)] = sent.paragraph;
        }
      }
    } else {
      sentences_from_punctuation_ = true;
      // The word splitter's sentence rule (text/word_splitter.hpp), over the words' forms.
      doc_index s = 0;
      sentence_splitter splitter;
      for (Index w = 0; w < n; ++w) {
        if (splitter.starts_sentence(doc.words[static_cast<std::size_t>(w)].form)) ++s;
        sentence_of_[static_cast<std::size_t>(w)] = s;
      }
    }

    // Words: punctuation, separators, dependency arcs.
    std::vector<std::string> names;
    for (Index w = 0; w < n; ++w) {
      const word& wd = doc.words[static_cast<std::size_t>(w)];
      const bool punct =
          wd.upos == "PUNCT" || ((wd.upos.empty() || wd.upos == "_") && detail::is_punctuation_form(wd.form));
      punct_[static_cast<std::size_t>(w)] = punct ? 1.0f : 0.0f;
      const bool last_of_sentence =
          w + 1 == n || sentence_of_[static_cast<std::size_t>(w + 1)] != sentence_of_[static_cast<std::size_t>(w)];
      separator_[static_cast<std::size_t>(w)] = (punct && last_of_sentence) ? 1.0f : 0.0f;
      if (wd.head != word::no_head) has_dependencies_ = true;
      if (wd.head >= 0) {
        if (wd.head >= n) detail::fail<argument_error>("word ", w, " has head ", wd.head, ", expected < ", n, " words");
        head_[static_cast<std::size_t>(w)] = wd.head;
        names.emplace_back(wd.base_deprel());
      }
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    relation_names_ = names;
    child_start_.assign(un + 1, 0);
    for (Index w = 0; w < n; ++w) {
      const word& wd = doc.words[static_cast<std::size_t>(w)];
      if (wd.head < 0) continue;
      const std::string_view rel = wd.base_deprel();
      relation_[static_cast<std::size_t>(w)] = static_cast<int>(
          std::lower_bound(relation_names_.begin(), relation_names_.end(), rel) - relation_names_.begin());
      ++child_start_[static_cast<std::size_t>(wd.head) + 1];
    }
    for (std::size_t w = 0; w < un; ++w) child_start_[w + 1] += child_start_[w];
    children_.assign(static_cast<std::size_t>(child_start_[un]), 0);
    {
      std::vector<Index> fill(child_start_.begin(), child_start_.end() - 1);
      for (Index w = 0; w < n; ++w) {
        const doc_index h = head_[static_cast<std::size_t>(w)];
        if (h >= 0) children_[static_cast<std::size_t>(fill[static_cast<std::size_t>(h)]++)] = w;
      }
    }

    // Discourse units.
    has_discourse_ = !doc.discourse_units.empty();
    for (std::size_t u = 0; u < doc.discourse_units.size(); ++u) {
      const discourse_unit& du = doc.discourse_units[u];
      if (du.begin < 0 || du.end > n || du.begin > du.end || (u > 0 && du.begin < doc.discourse_units[u - 1].end)) {
        detail::fail<argument_error>("discourse unit ", u, " spans words [", du.begin, ", ", du.end,
                                     "), expected increasing, non-overlapping spans within [0, ", n, ")");
      }
      if (du.parent >= static_cast<doc_index>(doc.discourse_units.size())) {
        detail::fail<argument_error>("discourse unit ", u, " has parent ", du.parent, ", expected < ",
                                     doc.discourse_units.size());
      }
      unit_begin_.push_back(du.begin);
      unit_end_.push_back(du.end);
      unit_parent_.push_back(du.parent);
      for (doc_index w = du.begin; w < du.end; ++w) unit_of_[static_cast<std::size_t>(w)] = static_cast<doc_index>(u);
    }

    // Coreference.
    has_coreference_ = !doc.mentions.empty();
    prepare_coreference(doc);
  }

  Index words() const noexcept { return words_; }
  bool has_dependencies() const noexcept { return has_dependencies_; }
  bool has_coreference() const noexcept { return has_coreference_; }
  bool has_discourse() const noexcept { return has_discourse_; }
  /// True when some layer beyond words and sentences is there (what `head_evidence::annotated` reports).
  bool annotated() const noexcept { return has_dependencies_ || has_coreference_ || has_discourse_; }
  /// True when the document had no sentences and they were split from punctuation.
  bool sentences_from_punctuation() const noexcept { return sentences_from_punctuation_; }
  doc_index sentence_of(Index w) const { return sentence_of_[static_cast<std::size_t>(w)]; }
  doc_index paragraph_of(Index w) const { return paragraph_of_[static_cast<std::size_t>(w)]; }
  /// Discourse unit of word w, -1 for none.
  doc_index unit_of(Index w) const { return unit_of_[static_cast<std::size_t>(w)]; }
  bool is_punctuation(Index w) const { return punct_[static_cast<std::size_t>(w)] != 0.0f; }
  /// Sentence-final punctuation (the word-level stand-in for a separator token).
  bool is_separator(Index w) const { return separator_[static_cast<std::size_t>(w)] != 0.0f; }
  /// The base relations of the document's arcs, sorted.
  const std::vector<std::string>& relation_names() const noexcept { return relation_names_; }
  /// Number of coreference instances (mentions with a head word and an earlier mention of their cluster).
  Index coreference_instances() const noexcept { return static_cast<Index>(coref_.size()); }

 private:
  friend class head_feature_accumulator;
  friend class model_feature_accumulator;
  friend struct detail::feature_workspace;
  friend struct detail::window_measure;

  void prepare_coreference(const document& doc) {
    const Index n = words_;
    const auto un = static_cast<std::size_t>(n);
    const std::size_t m_count = doc.mentions.size();
    for (std::size_t m = 0; m < m_count; ++m) {
      const mention& me = doc.mentions[m];
      if (me.begin < 0 || me.end > n || me.begin >= me.end) {
        detail::fail<argument_error>("mention ", m, " spans words [", me.begin, ", ", me.end,
                                     "), expected a non-empty span within [0, ", n, ")");
      }
      if (me.cluster < 0) detail::fail<argument_error>("mention ", m, " has cluster ", me.cluster, ", expected >= 0");
    }
    // Memberships per word (CSR).
    member_start_.assign(un + 1, 0);
    for (const mention& me : doc.mentions) {
      for (doc_index w = me.begin; w < me.end; ++w) ++member_start_[static_cast<std::size_t>(w) + 1];
    }
    for (std::size_t w = 0; w < un; ++w) member_start_[w + 1] += member_start_[w];
    members_.resize(static_cast<std::size_t>(member_start_[un]));
    {
      std::vector<Index> fill(member_start_.begin(), member_start_.end() - 1);
      for (const mention& me : doc.mentions) {
        for (doc_index w = me.begin; w < me.end; ++w) {
          members_[static_cast<std::size_t>(fill[static_cast<std::size_t>(w)]++)] = {me.cluster, me.end};
        }
      }
    }
    // Mentions by (end, begin), for the nearest preceding mention.
    std::vector<std::size_t> by_end(m_count);
    for (std::size_t m = 0; m < m_count; ++m) by_end[m] = m;
    std::sort(by_end.begin(), by_end.end(), [&](std::size_t a, std::size_t b) {
      const mention& x = doc.mentions[a];
      const mention& y = doc.mentions[b];
      return x.end != y.end ? x.end < y.end : (x.begin != y.begin ? x.begin < y.begin : a < b);
    });
    // Mentions per cluster (the document's cluster lists may be absent in a hand-made document).
    doc_index clusters = 0;
    for (const mention& me : doc.mentions) clusters = std::max(clusters, me.cluster + 1);
    std::vector<std::vector<std::size_t>> of_cluster(static_cast<std::size_t>(clusters));
    for (std::size_t m = 0; m < m_count; ++m)
      of_cluster[static_cast<std::size_t>(doc.mentions[m].cluster)].push_back(m);

    std::vector<std::pair<doc_index, coreference_instance>> instances;
    for (std::size_t m = 0; m < m_count; ++m) {
      const mention& me = doc.mentions[m];
      doc_index head = me.head;
      if (head < me.begin || head >= me.end) head = syntactic_head(doc, me);
      if (head < 0) continue;
      doc_index latest = -1;
      for (std::size_t other : of_cluster[static_cast<std::size_t>(me.cluster)]) {
        const mention& o = doc.mentions[other];
        if (other != m && o.end <= me.begin) latest = std::max(latest, o.begin);
      }
      if (latest < 0) continue;
      // Nearest preceding mention: the last in (end, begin) order with end <= me.begin.
      const auto it = std::upper_bound(by_end.begin(), by_end.end(), me.begin,
                                       [&](doc_index v, std::size_t x) { return v < doc.mentions[x].end; });
      HEADLENS_ASSERT(it != by_end.begin());
      const mention& nearest = doc.mentions[*(it - 1)];
      coreference_instance inst;
      inst.mention_begin = me.begin;
      inst.cluster = me.cluster;
      inst.latest_antecedent_begin = latest;
      const std::string& upos = doc.words[static_cast<std::size_t>(head)].upos;
      inst.type = upos == "PRON" ? coreference_evidence::pronoun
                                 : (upos == "PROPN" ? coreference_evidence::proper : coreference_evidence::nominal);
      inst.baseline_correct = nearest.cluster == me.cluster;
      instances.emplace_back(head, inst);
    }
    std::stable_sort(instances.begin(), instances.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    coref_start_.assign(un + 1, 0);
    for (const auto& entry : instances) ++coref_start_[static_cast<std::size_t>(entry.first) + 1];
    for (std::size_t w = 0; w < un; ++w) coref_start_[w + 1] += coref_start_[w];
    coref_.clear();
    for (const auto& entry : instances) coref_.push_back(entry.second);
  }

  Index words_ = 0;
  bool has_dependencies_ = false;
  bool has_coreference_ = false;
  bool has_discourse_ = false;
  bool sentences_from_punctuation_ = false;
  std::vector<doc_index> sentence_of_, paragraph_of_, unit_of_;
  std::vector<float> punct_, separator_;
  std::vector<doc_index> head_;
  std::vector<int> relation_;
  std::vector<std::string> relation_names_;
  std::vector<Index> child_start_;
  std::vector<doc_index> children_;
  std::vector<Index> unit_begin_, unit_end_;
  std::vector<doc_index> unit_parent_;
  std::vector<Index> coref_start_;
  std::vector<coreference_instance> coref_;
  std::vector<Index> member_start_;
  std::vector<membership> members_;
};

/// Exact totals of one relation in one direction.
struct relation_direction_totals {
  std::int64_t count = 0;    ///< instances
  std::int64_t correct = 0;  ///< instances whose argmax was right
  /// Instances whose target lies at offset d from the attending word, index d + evidence_max_offset.
  std::array<std::int64_t, detail::feature_offset_slots> at_offset{};

  bool operator==(const relation_direction_totals& o) const {
    return count == o.count && correct == o.correct && at_offset == o.at_offset;
  }
  relation_direction_totals& operator+=(const relation_direction_totals& o) {
    count += o.count;
    correct += o.correct;
    for (int d = 0; d < detail::feature_offset_slots; ++d)
      at_offset[static_cast<std::size_t>(d)] += o.at_offset[static_cast<std::size_t>(d)];
    return *this;
  }
};

/// Exact totals of one base relation.
struct relation_totals {
  std::string relation;
  relation_direction_totals dependent_to_head;
  relation_direction_totals head_to_dependent;

  bool operator==(const relation_totals& o) const {
    return relation == o.relation && dependent_to_head == o.dependent_to_head &&
           head_to_dependent == o.head_to_dependent;
  }
};

/// The whole state of one head's accumulator: integer counts and fixed-point sums (masses in units of 2^-32,
/// distances in units of 2^-20 words), so that adding two of them is exact. This is what is merged and what the
/// JSON form (analysis/features_json.hpp) stores.
struct head_feature_totals {
  int layer = 0;
  int head = 0;
  std::int64_t windows = 0;            ///< windows added
  std::int64_t annotated_windows = 0;  ///< of which from a document with annotations
  std::int64_t rows = 0;               ///< measured rows (owned, not fully masked)
  // positional
  std::array<std::int64_t, detail::feature_offset_slots> offset_mass{};  ///< fixed point, summed over rows
  std::array<std::int64_t, detail::feature_offset_slots> offset_rows{};  ///< rows where the offset exists in the window
  std::array<std::int64_t, detail::feature_offset_slots> argmax_at_offset{};  ///< rows whose free argmax is there
  std::array<std::int64_t, detail::feature_offset_slots> argmax_rows{};  ///< rows where the offset is a free column
  // sinks
  std::int64_t sink_mass = 0;  ///< fixed point, mass on sink columns summed over rows
  std::int64_t free_mass = 0;  ///< fixed point, mass on free columns summed over rows
  // general (over the free mass)
  std::int64_t entropy = 0;       ///< fixed point, sum of free mass x normalised entropy of the free attention
  std::int64_t entropy_mass = 0;  ///< fixed point, free mass of the rows with at least two free keys
  std::int64_t distance = 0;      ///< distance fixed point (2^-20 words), free mass x distance
  std::int64_t first_token_mass = 0;
  std::int64_t first_token_rows = 0;
  std::int64_t separator_mass = 0;
  std::int64_t punctuation_mass = 0;
  // discourse (free mass on words of other sentences, paragraphs, units)
  std::int64_t cross_sentence_mass = 0;
  std::int64_t cross_paragraph_mass = 0;
  std::int64_t cross_unit_mass = 0;
  std::int64_t unit_free_mass = 0;  ///< fixed point, free mass of the rows of words inside a discourse unit
  std::int64_t unit_rows = 0;       ///< rows of words inside a discourse unit
  std::int64_t units = 0;           ///< units judged
  std::int64_t units_related_correct = 0;
  std::int64_t units_chain_correct = 0;
  // coreference
  std::array<std::int64_t, coreference_evidence::type_count> coreference_count{};
  std::array<std::int64_t, coreference_evidence::type_count> coreference_correct{};
  std::array<std::int64_t, coreference_evidence::type_count> coreference_baseline_correct{};
  // syntactic
  std::vector<relation_totals> relations;  ///< sorted by relation name, only relations with instances

  bool operator==(const head_feature_totals& o) const {
    return layer == o.layer && head == o.head && windows == o.windows && annotated_windows == o.annotated_windows &&
           rows == o.rows && offset_mass == o.offset_mass && offset_rows == o.offset_rows &&
           argmax_at_offset == o.argmax_at_offset && argmax_rows == o.argmax_rows && sink_mass == o.sink_mass &&
           free_mass == o.free_mass && entropy == o.entropy && entropy_mass == o.entropy_mass &&
           distance == o.distance && first_token_mass == o.first_token_mass && first_token_rows == o.first_token_rows &&
           separator_mass == o.separator_mass && punctuation_mass == o.punctuation_mass &&
           cross_sentence_mass == o.cross_sentence_mass && cross_paragraph_mass == o.cross_paragraph_mass &&
           cross_unit_mass == o.cross_unit_mass && unit_free_mass == o.unit_free_mass && unit_rows == o.unit_rows &&
           units == o.units && units_related_correct == o.units_related_correct &&
           units_chain_correct == o.units_chain_correct && coreference_count == o.coreference_count &&
           coreference_correct == o.coreference_correct &&
           coreference_baseline_correct == o.coreference_baseline_correct && relations == o.relations;
  }
  bool operator!=(const head_feature_totals& o) const { return !(*this == o); }
};

namespace detail {

/// What one head measured in one window, before it is added to the totals (so that a bad row leaves the
/// accumulator untouched).
struct feature_window_totals {
  std::int64_t rows = 0;
  std::array<double, feature_offset_slots> offset_mass{};
  std::array<std::int64_t, feature_offset_slots> offset_rows{};
  std::array<std::int64_t, feature_offset_slots> argmax_at_offset{};
  std::array<std::int64_t, feature_offset_slots> argmax_rows{};
  double sink_mass = 0, free_mass = 0;
  double entropy = 0, entropy_mass = 0;
  double distance = 0;
  double first_token_mass = 0;
  std::int64_t first_token_rows = 0;
  double separator_mass = 0, punctuation_mass = 0;
  double cross_sentence_mass = 0, cross_paragraph_mass = 0, cross_unit_mass = 0, unit_free_mass = 0;
  std::int64_t unit_rows = 0, units = 0, units_related_correct = 0, units_chain_correct = 0;
  std::array<std::int64_t, coreference_evidence::type_count> coreference_count{}, coreference_correct{},
      coreference_baseline_correct{};
  /// Per relation of the prepared document: [0] dependent_to_head, [1] head_to_dependent.
  std::vector<std::array<relation_direction_totals, 2>> relations;

  void reset(std::size_t relation_count) {
    std::vector<std::array<relation_direction_totals, 2>> keep;
    keep.swap(relations);
    *this = feature_window_totals();
    relations.swap(keep);
    relations.assign(relation_count, {});
  }
};

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
template <class Scalar>
feature_row_stats feature_sweep_row(const Scalar* p, Index n, Index li, const feature_segment* segs,
                                    std::size_t seg_count, const Scalar* pm, const Scalar* sm, const Scalar* fm,
                                    std::vector<xsimd::batch<Scalar>>& acc, double* seg_mass) {
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
      const Scalar v = p[j];
      const Scalar vf = v * fm[j];
      sum += v;
      free += vf;
      sink += v - vf;
      if (vf > 0) plogp += vf * std::log(vf);
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
  Index j = 0;
  for (; j + lanes <= n; j += lanes) {
    const batch v = batch::load_unaligned(p + j);
    const batch vf = v * batch::load_unaligned(fm + j);
    const batch idx = lane + batch(static_cast<Scalar>(j));
    vsum += v;
    vfree += vf;
    vsink += v - vf;
    vplogp += xsimd::select(vf > zero, vf * entropy_log(xsimd::max(vf, tiny)), zero);
    vdist += vf * xsimd::abs(idx - query);
    vpunct += v * batch::load_unaligned(pm + j);
    vsep += v * batch::load_unaligned(sm + j);
    const auto gt = vf > vmax;
    vmax = xsimd::select(gt, vf, vmax);
    vidx = xsimd::select(gt, idx, vidx);
    vmin = xsimd::min(vmin, v);
    to_segments(vf, idx, j);
  }
  if (j < n) {
    // The rest as one vector ending at the row's end, the lanes before j (already counted) masked off.
    const Index q = n - lanes;
    const batch idx = lane + batch(static_cast<Scalar>(q));
    const auto valid = idx >= batch(static_cast<Scalar>(j));
    const batch raw = batch::load_unaligned(p + q);
    const batch v = xsimd::select(valid, raw, zero);
    const batch vf = v * batch::load_unaligned(fm + q);
    vsum += v;
    vfree += vf;
    vsink += v - vf;
    vplogp += xsimd::select(vf > zero, vf * entropy_log(xsimd::max(vf, tiny)), zero);
    vdist += vf * xsimd::abs(idx - query);
    vpunct += v * batch::load_unaligned(pm + q);
    vsep += v * batch::load_unaligned(sm + q);
    const auto gt = vf > vmax;  // lanes already seen are 0 here, so they never win
    vmax = xsimd::select(gt, vf, vmax);
    vidx = xsimd::select(gt, idx, vidx);
    vmin = xsimd::min(vmin, xsimd::select(valid, raw, pinf));
    to_segments(vf, idx, q);
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
      const Scalar* p = data + (li - li0) * row_stride;
      const Index swept = extent != nullptr ? std::clamp<Index>(extent[li - li0], 0, n) : n;
      // Every segment's mass only where the row's attention per unit wants it, or spans cannot stand in for it.
      const bool unit_row = row_local_unit >= 0 && ws.tracked[static_cast<std::size_t>(row_local_unit)];
      const bool by_segments = unit_row || !ws.spans_exact;
      feature_row_stats st = feature_sweep_row(p, swept, li, ws.segments.data(), by_segments ? seg_count : 0, pm,
                                               sm, fm, acc, ws.segment_mass.data());
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
        const feature_column_spans& sp = ws.spans[static_cast<std::size_t>(li)];
        same_sentence = scale * feature_free_mass(p, fm, sp.sentence_begin, std::min(sp.sentence_end, swept));
        same_paragraph = scale * feature_free_mass(p, fm, sp.paragraph_begin, std::min(sp.paragraph_end, swept));
        if (row_unit >= 0) same_unit = scale * feature_free_mass(p, fm, sp.unit_begin, std::min(sp.unit_end, swept));
      }
      out.cross_sentence_mass += free - same_sentence;
      out.cross_paragraph_mass += free - same_paragraph;
      if (row_unit >= 0) {
        out.cross_unit_mass += free - same_unit;
        out.unit_free_mass += free;
        ++out.unit_rows;
      }
      // Syntactic: an arc whose target is a sink is not judged (nor counted for the baseline).
      const Index e = win.end;
      const doc_index h = doc.head_[static_cast<std::size_t>(w)];
      if (h >= b && h < e && fm[h - b] != Scalar(0)) {
        auto& t = out.relations[static_cast<std::size_t>(doc.relation_[static_cast<std::size_t>(w)])][0];
        ++t.count;
        if (b + arg == h) ++t.correct;
        const Index d = h - w;
        if (d >= -evidence_max_offset && d <= evidence_max_offset)
          ++t.at_offset[static_cast<std::size_t>(d + evidence_max_offset)];
      }
      for (Index c = doc.child_start_[static_cast<std::size_t>(w)];
           c < doc.child_start_[static_cast<std::size_t>(w) + 1]; ++c) {
        const doc_index dep = doc.children_[static_cast<std::size_t>(c)];
        if (dep < b || dep >= e || fm[dep - b] == Scalar(0)) continue;
        auto& t = out.relations[static_cast<std::size_t>(doc.relation_[static_cast<std::size_t>(dep)])][1];
        ++t.count;
        if (b + arg == dep) ++t.correct;
        const Index d = dep - w;
        if (d >= -evidence_max_offset && d <= evidence_max_offset)
          ++t.at_offset[static_cast<std::size_t>(d + evidence_max_offset)];
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
