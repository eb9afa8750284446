#pragma once
/// \file
/// Which tokens of one sequence carry the phenomenon a head label claims, read from the gold annotations of the
/// document the sequence comes from. The causal check of labels (`headlens/analysis/causal_check.hpp`) ablates the
/// heads of a label and compares the loss change on these tokens with the change on the other tokens.
///
/// A sequence ("unit": a sentence, or a window of a document) is given as `token_word`: for each token, the
/// document-level index of the word it covers, or -1 for a token covering no word (BOS, [CLS], [SEP]). A word is
/// *in the unit* when at least one token covers it; its *first token* is the lowest such token.
///
/// What a token t of word w can use depends on the model:
/// - a decoder (`causal = true`) is scored at token t on predicting token t from tokens 0..t-1, so a word is
///   *visible* to t when its first token is before t;
/// - an encoder (`causal = false`) sees the whole unit, so every word of the unit other than w is visible to t.
///
/// Per category, token t (of word w) carries the phenomenon when:
/// - syntactic: w's dependency head, or one of w's dependents, is a word visible to t (the arc the model may use);
/// - coreference: w lies in a mention that has an antecedent visible to t, an antecedent being an earlier mention
///   of the same cluster that ends where the mention begins or before (the definition the coreference features
///   use, `prepared_document`); a mention cut by the unit's edge counts for its words inside the unit;
/// - discourse: t is the first token of the first word of a sentence or of a discourse unit (a sentence or unit
///   that begins before the unit does has no first token in it);
/// - positional: always (every token).
/// Tokens covering no word carry only the positional phenomenon.

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <vector>

#include "headlens/analysis/document.hpp"
#include "headlens/analysis/verdict.hpp"
#include "headlens/error.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// The tokens of one unit that carry each category's phenomenon (see the file comment), and whether the
/// document has the annotations each category needs.
struct phenomenon_tokens {
  /// Per category, in `head_categories` order: [T] whether token t carries the phenomenon.
  std::array<std::vector<bool>, head_category_count> carries;
  /// Per category: whether the document has the annotation layer the category needs: a dependency head on at
  /// least one word (syntactic), at least one coreference mention (coreference), at least one sentence or
  /// discourse unit (discourse); positional needs none and is always true.
  std::array<bool, head_category_count> annotated{};
  /// Whether the document has discourse units (without them, discourse tokens are sentence starts only).
  bool discourse_units = false;

  /// The tokens of `category`. Throws `argument_error` for `head_label::unassigned`, which claims no phenomenon.
  const std::vector<bool>& of(head_label category) const {
    const auto i = static_cast<std::size_t>(category);
    if (i >= head_category_count) {
      detail::fail<argument_error>("phenomenon_tokens::of: label '", to_string(category),
                                   "' claims no phenomenon, expected syntactic, coreference, discourse or positional");
    }
    return carries[i];
  }
  /// Whether the document has the annotations `category` needs (false for `unassigned`).
  bool has_annotations(head_label category) const noexcept {
    const auto i = static_cast<std::size_t>(category);
    return i < head_category_count && annotated[i];
  }
};

/// The phenomenon tokens of the unit `token_word` of `doc` (see the file comment), for a decoder when `causal`.
/// Throws `argument_error` naming the value when a `token_word` entry is below -1 or not a word of `doc`, or when
/// an index of `doc` this function follows is out of range (a word's head, a mention's span or cluster, a
/// sentence's or discourse unit's first word).
inline phenomenon_tokens find_phenomenon_tokens(const document& doc, const std::vector<Index>& token_word,
                                                bool causal) {
  const auto word_count = static_cast<doc_index>(doc.words.size());
  const std::size_t T = token_word.size();
  constexpr doc_index none = std::numeric_limits<doc_index>::max();

  // The words in the unit: a range [lo, hi] and each word's first token (none: not in the unit).
  doc_index lo = none, hi = -1;
  for (std::size_t t = 0; t < T; ++t) {
    const Index w = token_word[t];
    if (w < -1 || w >= word_count) {
      detail::fail<argument_error>("find_phenomenon_tokens: token_word[", t, "] is ", w,
                                   ", expected -1 (no word) or a word index in [0, ", word_count, ") of document '",
                                   doc.id, "'");
    }
    if (w >= 0) {
      lo = std::min<doc_index>(lo, w);
      hi = std::max<doc_index>(hi, w);
    }
  }
  const std::size_t span = hi >= lo ? static_cast<std::size_t>(hi - lo + 1) : 0;
  std::vector<doc_index> first(span, none);
  for (std::size_t t = 0; t < T; ++t) {
    const Index w = token_word[t];
    if (w >= 0) {
      doc_index& f = first[static_cast<std::size_t>(w - lo)];
      f = std::min<doc_index>(f, static_cast<doc_index>(t));
    }
  }
  auto first_of = [&](doc_index w) -> doc_index {  // first token of word w, none when not in the unit
    return w >= lo && w <= hi ? first[static_cast<std::size_t>(w - lo)] : none;
  };
  // Whether a word whose earliest relevant token is `f` is visible to token t (the word is not t's own).
  auto visible = [causal](doc_index f, std::size_t t) {
    return f != none && (!causal || f < static_cast<doc_index>(t));
  };

  phenomenon_tokens out;
  for (auto& c : out.carries) c.assign(T, false);
  auto& syntactic = out.carries[static_cast<std::size_t>(head_label::syntactic)];
  auto& coreference = out.carries[static_cast<std::size_t>(head_label::coreference)];
  auto& discourse = out.carries[static_cast<std::size_t>(head_label::discourse)];
  auto& positional = out.carries[static_cast<std::size_t>(head_label::positional)];
  positional.assign(T, true);

  // Annotations present.
  for (std::size_t w = 0; w < doc.words.size(); ++w) {
    const doc_index h = doc.words[w].head;
    if (h != word::no_head && (h < -1 || h >= word_count)) {
      detail::fail<argument_error>("find_phenomenon_tokens: word ", w, " of document '", doc.id, "' has head ", h,
                                   ", expected -1 (root), ", word::no_head, " (none) or a word index in [0, ",
                                   word_count, ")");
    }
    if (h != word::no_head) out.annotated[static_cast<std::size_t>(head_label::syntactic)] = true;
  }
  out.annotated[static_cast<std::size_t>(head_label::coreference)] = !doc.mentions.empty();
  out.discourse_units = !doc.discourse_units.empty();
  out.annotated[static_cast<std::size_t>(head_label::discourse)] = !doc.sentences.empty() || out.discourse_units;
  out.annotated[static_cast<std::size_t>(head_label::positional)] = true;
  if (span == 0) return out;

  // Syntactic: per unit word, the earliest first token among its head and its dependents in the unit.
  std::vector<doc_index> arc_first(span, none);
  for (doc_index d = lo; d <= hi; ++d) {
    const doc_index fd = first_of(d);
    const doc_index h = doc.words[static_cast<std::size_t>(d)].head;
    if (fd == none || h < 0 || h == d) continue;
    const doc_index fh = first_of(h);
    if (fh == none) continue;
    doc_index& at_d = arc_first[static_cast<std::size_t>(d - lo)];  // d sees its head
    at_d = std::min(at_d, fh);
    doc_index& at_h = arc_first[static_cast<std::size_t>(h - lo)];  // h sees its dependent d
    at_h = std::min(at_h, fd);
  }

  // Coreference: per unit word, the earliest first token of an antecedent of a mention holding the word.
  std::vector<doc_index> antecedent_first(span, none);
  doc_index clusters = 0;
  for (std::size_t m = 0; m < doc.mentions.size(); ++m) {
    const mention& me = doc.mentions[m];
    if (me.begin < 0 || me.end > word_count || me.begin >= me.end || me.cluster < 0) {
      detail::fail<argument_error>("find_phenomenon_tokens: mention ", m, " of document '", doc.id, "' spans [",
                                   me.begin, ", ", me.end, ") in cluster ", me.cluster,
                                   ", expected a non-empty span of words in [0, ", word_count, ") and a cluster >= 0");
    }
    clusters = std::max(clusters, me.cluster + 1);
  }
  std::vector<std::vector<std::size_t>> of_cluster(static_cast<std::size_t>(clusters));
  for (std::size_t m = 0; m < doc.mentions.size(); ++m) {
    const mention& me = doc.mentions[m];
    if (me.end > lo && me.begin <= hi) of_cluster[static_cast<std::size_t>(me.cluster)].push_back(m);
  }
  for (const auto& members : of_cluster) {
    for (std::size_t m : members) {
      const mention& me = doc.mentions[m];
      doc_index earliest = none;
      for (std::size_t a : members) {
        const mention& ante = doc.mentions[a];
        if (a == m || ante.end > me.begin) continue;
        for (doc_index w = std::max(ante.begin, lo); w < std::min(ante.end, hi + 1); ++w)
          earliest = std::min(earliest, first_of(w));
      }
      if (earliest == none) continue;
      for (doc_index w = std::max(me.begin, lo); w < std::min(me.end, hi + 1); ++w) {
        doc_index& e = antecedent_first[static_cast<std::size_t>(w - lo)];
        e = std::min(e, earliest);
      }
    }
  }

  for (std::size_t t = 0; t < T; ++t) {
    const Index w = token_word[t];
    if (w < 0) continue;
    const auto i = static_cast<std::size_t>(w - lo);
    syntactic[t] = visible(arc_first[i], t);
    coreference[t] = visible(antecedent_first[i], t);
  }

  // Discourse: first tokens of sentences and discourse units that begin inside the unit.
  auto mark_start = [&](doc_index begin, const char* what, std::size_t k) {
    if (begin < 0 || begin >= word_count) {
      detail::fail<argument_error>("find_phenomenon_tokens: ", what, " ", k, " of document '", doc.id,
                                   "' begins at word ", begin, ", expected a word index in [0, ", word_count, ")");
    }
    const doc_index f = first_of(begin);
    if (f != none) discourse[static_cast<std::size_t>(f)] = true;
  };
  for (std::size_t s = 0; s < doc.sentences.size(); ++s) {
    if (doc.sentences[s].begin < doc.sentences[s].end) mark_start(doc.sentences[s].begin, "sentence", s);
  }
  for (std::size_t u = 0; u < doc.discourse_units.size(); ++u) {
    if (doc.discourse_units[u].begin < doc.discourse_units[u].end)
      mark_start(doc.discourse_units[u].begin, "discourse unit", u);
  }
  return out;
}

}  // namespace headlens
