#pragma once
/// \file
/// `prepared_document`: a document arranged once for feature accumulation (analysis/features.hpp): per word its
/// sentence, paragraph and discourse unit, punctuation and separators, dependency arcs with relation ids,
/// coreference instances and their baselines. Shared read-only by every head and window.

#include <algorithm>
#include <cstdint>
#include <headlens/analysis/document.hpp>
#include <headlens/analysis/head_evidence.hpp>
#include <headlens/error.hpp>
#include <headlens/text/word_splitter.hpp>
#include <headlens/types.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace headlens {
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

}  // namespace detail

class head_feature_accumulator;
class model_feature_accumulator;
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

}  // namespace headlens
