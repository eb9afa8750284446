#pragma once
/// \file
/// The annotated document that head analysis measures attention against: words with their dependency tree,
/// sentences, paragraphs, coreference mentions and clusters, and discourse units. Filled by the CoNLL-U reader
/// (`headlens/analysis/conllu.hpp`), but plain data: tests and users may build one by hand.
///
/// Conventions, shared by every index in this header:
/// - word indices are document-level and 0-based: the first word of the second sentence follows the last word
///   of the first sentence;
/// - spans are half-open, `[begin, end)`, in words (or in sentences for paragraphs);
/// - "no such thing" is a negative index (`-1` for a root, `word::no_head` for an unannotated HEAD), never an
///   exception.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace headlens {

/// Index of a word, sentence, mention or unit inside one document. The same type as `headlens::index`
/// (`Eigen::Index`), so word indices can address rows of attention maps directly.
using doc_index = std::ptrdiff_t;

/// One syntactic word (a CoNLL-U line whose ID is an integer). Multiword tokens and empty nodes are not words;
/// see `multiword_token` and `conllu_reader`.
struct word {
  /// HEAD was `_` (a file without a dependency layer): the word has neither a head nor the root.
  static constexpr doc_index no_head = -2;

  std::string form;    ///< FORM
  std::string lemma;   ///< LEMMA (`_` when absent)
  std::string upos;    ///< UPOS (`_` when absent)
  std::string deprel;  ///< DEPREL with its subtype, e.g. `nsubj:pass` (`_` when absent)
  /// HEAD as a document-level word index; -1 for the root of a sentence; `no_head` when HEAD was `_`.
  doc_index head = -1;
  doc_index sentence = 0;   ///< index of the sentence that holds the word
  bool space_after = true;  ///< false when MISC had `SpaceAfter=No` (see `multiword_token` for words inside one)

  /// The universal relation without its subtype: `nsubj` for `nsubj:pass`, `root` for `root`. A view into
  /// `deprel`, valid while the word lives and `deprel` is unchanged.
  std::string_view base_deprel() const noexcept {
    std::string_view rel(deprel);
    return rel.substr(0, rel.find(':'));
  }
  /// True when this word is the root of its sentence (HEAD was 0).
  bool is_root() const noexcept { return head == -1; }
};

/// A multiword token (CoNLL-U ID `3-4`): surface information only. The words `[begin, end)` are the syntactic
/// words it spells. Words inside one get `space_after = false`, except the last, which takes the token's
/// `SpaceAfter`.
struct multiword_token {
  doc_index begin = 0;  ///< first word
  doc_index end = 0;    ///< one past the last word
  std::string form;     ///< the surface form, e.g. `daughter's`
  bool space_after = true;
};

/// One sentence: the words `[begin, end)` and its `# sent_id` / `# text` comments (empty when absent).
struct sentence {
  doc_index begin = 0;
  doc_index end = 0;
  doc_index paragraph = 0;  ///< index of the paragraph that holds the sentence
  std::string id;           ///< `# sent_id = ...`
  std::string text;         ///< `# text = ...`

  doc_index size() const noexcept { return end - begin; }
};

/// One paragraph: the sentences `[begin, end)` (sentence indices, not words). A document without `# newpar`
/// comments has one paragraph spanning all its sentences.
struct paragraph {
  doc_index begin = 0;
  doc_index end = 0;
};

/// Where a mention's head word came from.
enum class mention_head_source {
  none,        ///< the annotation names no head: `mention::head` is -1
  head_field,  ///< the CorefUD `head` attribute (1-based position inside the mention)
  minspan,     ///< GUM's `minspan` attribute (its first position inside the mention; see `conllu_reader`)
};

/// A coreference mention: the words `[begin, end)` referring to the entity `cluster`.
struct mention {
  doc_index begin = 0;
  doc_index end = 0;
  doc_index cluster = 0;    ///< index into `document::clusters`
  std::string entity_type;  ///< the `etype` attribute (`person`, `abstract`, ...), empty when absent
  /// The head word as a document-level index when the annotation gives one (see `head_source`), else -1.
  /// `syntactic_head(doc, m)` computes one from the dependency tree instead.
  doc_index head = -1;
  mention_head_source head_source = mention_head_source::none;

  doc_index size() const noexcept { return end - begin; }
};

/// A coreference cluster (entity): all mentions sharing one entity id.
struct cluster {
  std::string id;                   ///< the entity id as written in the file (`eid`, GUM's `GRP`)
  std::string entity_type;          ///< the `etype` of its first typed mention
  std::vector<doc_index> mentions;  ///< indices into `document::mentions`, in document order
};

/// A secondary discourse relation of a unit (eRST allows several relations per unit).
struct discourse_relation {
  std::string label;      ///< e.g. `joint-list`
  doc_index target = -1;  ///< index into `document::discourse_units`
};

/// An elementary discourse unit: the words `[begin, end)` from the token that carries its `Discourse=`
/// annotation up to the next unit's first word (or the end of the document).
struct discourse_unit {
  doc_index begin = 0;
  doc_index end = 0;
  long long id = 0;  ///< the unit number in the file (1-based in GUM)
  /// The label of the relation to `parent` as written, e.g. `elaboration-attribute` or `joint-list_m` (the
  /// `_m` suffix marks a multinuclear relation); `ROOT` for the root of the discourse tree.
  std::string relation;
  /// Index of the unit it attaches to; -1 for the root, and for a unit of an excerpt whose parent was left out
  /// (its `relation` keeps the label; the link is counted in `document::dangling`).
  doc_index parent = -1;
  std::vector<discourse_relation> secondary;  ///< further relations after `;`, in file order

  doc_index size() const noexcept { return end - begin; }
  /// The relation class before the first `-`: `elaboration` for `elaboration-attribute`.
  std::string_view relation_class() const noexcept {
    std::string_view rel(relation);
    return rel.substr(0, rel.find('-'));
  }
  /// True for a multinuclear relation (label ends in `_m`).
  bool multinuclear() const noexcept {
    return relation.size() >= 2 && relation.compare(relation.size() - 2, 2, "_m") == 0;
  }
};

/// Links of a source that pointed outside the document read from it, dropped while reading (a file cut from a
/// larger one, such as an excerpt of GUM). Zero for a complete document; see `conllu_options::strict`.
struct dangling_links {
  std::size_t discourse = 0;    ///< discourse relations (primary or secondary) to a unit the document lacks
  std::size_t coreference = 0;  ///< `Entity=` mentions whose opening or closing bracket the document lacks

  std::size_t total() const noexcept { return discourse + coreference; }
};

/// One annotated document. Layers the file does not have are empty (coreference, discourse); every document has
/// at least one paragraph when it has sentences.
struct document {
  std::string id;  ///< `# newdoc id = ...`, empty when absent
  std::vector<word> words;
  std::vector<sentence> sentences;
  std::vector<paragraph> paragraphs;
  std::vector<multiword_token> multiword_tokens;
  std::vector<mention> mentions;  ///< sorted by begin, then longer first (an enclosing mention before its parts)
  std::vector<cluster> clusters;  ///< in order of first mention
  std::vector<discourse_unit> discourse_units;  ///< in file order
  dangling_links dangling;                      ///< links the reader dropped because they left the document

  /// Empties every layer, keeping capacity (the reader reuses one document).
  void clear() {
    id.clear();
    words.clear();
    sentences.clear();
    paragraphs.clear();
    multiword_tokens.clear();
    mentions.clear();
    clusters.clear();
    discourse_units.clear();
    dangling = {};
  }
  /// Paragraph index of word `w`. Precondition (unchecked): `0 <= w < words.size()`.
  doc_index paragraph_of(doc_index w) const {
    const doc_index s = words[static_cast<std::size_t>(w)].sentence;
    return sentences[static_cast<std::size_t>(s)].paragraph;
  }
};

/// The syntactic head of the span `[begin, end)` of `doc`: the first word of the span whose HEAD lies outside the
/// span (or is the root). Returns -1 for an empty or out-of-range span, or when every word's head is inside the
/// span or unannotated (only possible with a malformed tree).
inline doc_index syntactic_head(const document& doc, doc_index begin, doc_index end) {
  if (begin < 0 || end > static_cast<doc_index>(doc.words.size()) || begin >= end) return -1;
  for (doc_index w = begin; w < end; ++w) {
    const doc_index h = doc.words[static_cast<std::size_t>(w)].head;
    if (h == -1 || (h >= 0 && (h < begin || h >= end))) return w;
  }
  return -1;
}

/// The syntactic head of a mention's span; see the overload on a span.
inline doc_index syntactic_head(const document& doc, const mention& m) { return syntactic_head(doc, m.begin, m.end); }

}  // namespace headlens
