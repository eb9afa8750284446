#pragma once
/// \file
/// A streaming CoNLL-U reader that yields one annotated `document` at a time (dependency trees, sentences,
/// paragraphs, CorefUD coreference, GUM eRST discourse units).
///
/// What is read, and how:
/// - Documents start at `# newdoc` (id from `# newdoc id = ...`); a file without any is one document. A
///   `# newdoc` followed by no sentence yields nothing.
/// - Paragraphs start at `# newpar` (and `# newpar id = ...`, but not GUM's `# newpar_block`) and at the first
///   sentence of each document, so a file without `# newpar` has one paragraph per document.
/// - Sentences: `# sent_id` and `# text` are kept; other comments are skipped.
/// - Words are the lines with an integer ID. Multiword tokens (`3-4`) are kept as surface information in
///   `document::multiword_tokens`. Empty nodes (`5.1`) are not words (they have no HEAD and no place in the
///   word sequence a model sees); they are checked and skipped, except that `Entity=` brackets on them still
///   count: a mention opened on an empty node starts at the next word, one closed on it ends at the previous
///   word, and a mention made only of empty nodes is dropped.
/// - Coreference from MISC `Entity=` (CorefUD bracket notation): `(eid-attr-...` opens a mention on this word,
///   `eid)` closes the innermost open mention with that id, `(eid-...)` is a one-word mention. Attributes are
///   positional, named by the `# global.Entity = ...` comment (default `eid-etype-head-other`, CorefUD's).
///   The `head` attribute (1-based position inside the mention) gives `mention::head`; without one, GUM's
///   `minspan` attribute (`GRP-etype-infstat-salience-centering-minspan-link-identity`) gives it from its first
///   position (on the GUM dev split that is the dependency head of the span for 95% of mentions;
///   `syntactic_head` gives the tree's reading). A discontinuous mention (`eid[1/2]`) is read as
///   one mention per part, all in the same cluster. Mentions may not cross a sentence boundary (GUM never does)
///   unless `conllu_options::mentions_cross_sentences` is set; none may cross a document boundary.
///   `Bridge=` and `SplitAnte=` are not read.
/// - Discourse from MISC `Discourse=` (GUM eRST): `relation:unit->target[:...]` or `ROOT:unit[:...]` on the first
///   word of each elementary discourse unit, then optional secondary relations `;relation:unit->target[:...]`.
///   Fields after the target (in GUM, numbers and the signals of the relation) are not read. A unit runs until the next
///   unit's first word.
///
/// Excerpts: links that leave the document (a discourse relation to a unit that was cut away, a mention whose
/// other bracket was) are dropped and counted in `document::dangling`, unless `conllu_options::strict`. A unit
/// whose parent is dropped keeps its relation label and gets `parent = -1`.
///
/// Malformed input throws `format_error` with the file name, the 1-based line and what was wrong, quoting the bad
/// value: wrong column count; an ID that is not an integer, a range or an empty node; IDs out of sequence; a HEAD
/// that is not an integer or points outside its sentence or to its own word; heads that form a cycle (a sentence
/// may have several roots, but every word must reach one); unbalanced `Entity=` brackets; bad
/// `Discourse=` syntax; a comment line inside a sentence; and, when strict, a link that leaves the document.

#include <headlens/analysis/detail/conllu_text.hpp>
#include <headlens/analysis/detail/corefud_entities.hpp>
#include <headlens/analysis/document.hpp>
#include <headlens/error.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <istream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace headlens {

/// Options of `conllu_reader`.
struct conllu_options {
  /// Let coreference mentions stay open across sentence boundaries (allowed by CorefUD for some treebanks; GUM
  /// never does it). When false, a mention still open at the end of a sentence is a `format_error`. A mention
  /// open at the end of a document is always one.
  bool mentions_cross_sentences = false;
  /// Reject links that leave the document, as a `format_error`: a `Discourse=` relation to a unit the document
  /// lacks, an `Entity=` closing bracket with no open mention, a mention still open at the end of the document.
  /// When false (the default), such links are what a file cut from a larger one (an excerpt) has: each is
  /// dropped and counted in `document::dangling`, and the rest of the document is read as usual.
  bool strict = false;
};

/// Reads a CoNLL-U file one document at a time; at most one document's words are held in memory, so files of any
/// size stream. The conventions are described at the top of this header.
///
///     headlens::conllu_reader reader("en_gum-ud-dev.conllu");
///     headlens::document doc;
///     while (reader.next(doc)) { ... }
class conllu_reader {
 public:
  /// Reads from `in`, which must outlive the reader; `name` names the source in error messages.
  explicit conllu_reader(std::istream& in, std::string name = "<stream>", conllu_options options = {})
      : in_(&in), name_(std::move(name)), options_(options), entities_(options.strict) {}

  /// Opens the file at `path`. Throws `io_error` when it cannot be opened.
  explicit conllu_reader(const std::string& path, conllu_options options = {})
      : owned_(std::make_unique<std::ifstream>(path, std::ios::binary)),
        name_(path),
        options_(options),
        entities_(options.strict) {
    if (!*owned_) detail::fail<io_error>("cannot open CoNLL-U file '", path, "'");
    in_ = owned_.get();
  }

  /// Reads the next document into `doc` (cleared first, its capacity reused). Returns false, leaving `doc`
  /// empty, when the input holds no further document. Throws `format_error` on malformed input and `io_error`
  /// when the stream fails other than at its end; after a throw the reader must not be used again.
  bool next(document& doc) {
    doc.clear();
    reset_document_state();
    if (at_end_) return false;
    if (have_pending_doc_) {
      doc.id = pending_doc_id_;
      have_pending_doc_ = false;
    }
    while (std::getline(*in_, line_)) {
      ++line_no_;
      std::string_view line(line_);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line_no_ == 1 && detail::starts_with(line, "\xEF\xBB\xBF")) line.remove_prefix(3);
      if (detail::trim(line).empty()) {
        end_sentence(doc);
        continue;
      }
      if (line[0] == '#') {
        if (in_sentence_) {
          fail(line_no_,
               "comment line inside a sentence (comments must precede its word lines): " + detail::quoted(line));
        }
        if (read_comment(line, doc)) {
          finish_document(doc);
          return true;
        }
        continue;
      }
      read_token_line(line, doc);
    }
    if (in_->bad()) detail::fail<io_error>("error while reading CoNLL-U from '", name_, "'");
    at_end_ = true;
    end_sentence(doc);
    if (doc.sentences.empty()) {
      doc.clear();
      return false;
    }
    finish_document(doc);
    return true;
  }

  /// Name of the source, as used in error messages.
  const std::string& name() const noexcept { return name_; }
  /// Number of lines read so far.
  std::uint64_t line() const noexcept { return line_no_; }

 private:
  struct pending_unit {
    long long id;
    doc_index begin;
    std::uint64_t line;
    std::string label;
    long long target;  // file unit id, or 0 for ROOT
    bool root;
    std::vector<std::pair<std::string, long long>> secondary;
  };

  [[noreturn]] void fail(std::uint64_t line, const std::string& what) const {
    throw format_error::at_line(name_, line, what);
  }

  void reset_document_state() {
    entities_.start_document();
    units_.clear();
    unit_ids_.clear();
  }

  // Returns true when the comment starts a new document and the current one has sentences (so it is complete).
  bool read_comment(std::string_view line, document& doc) {
    std::string_view body = detail::trim(line.substr(1));
    std::string_view key = body;
    std::string_view value;
    const std::size_t eq = body.find('=');
    if (eq != std::string_view::npos) {
      key = detail::trim(body.substr(0, eq));
      value = detail::trim(body.substr(eq + 1));
    }
    if (key == "newdoc" || detail::starts_with(key, "newdoc ")) {
      const std::string_view id = key == "newdoc id" ? value : std::string_view();
      pending_newpar_ = true;
      if (doc.sentences.empty()) {
        doc.id.assign(id);
        reset_document_state();
        return false;
      }
      have_pending_doc_ = true;
      pending_doc_id_.assign(id);
      return true;
    }
    if (key == "newpar" || detail::starts_with(key, "newpar ")) {
      pending_newpar_ = true;
    } else if (key == "sent_id") {
      pending_sent_id_.assign(value);
    } else if (key == "text") {
      pending_text_.assign(value);
    } else if (key == "global.Entity") {
      entities_.set_layout(value);
    }
    return false;
  }

  void start_sentence(document& doc) {
    in_sentence_ = true;
    const doc_index index = static_cast<doc_index>(doc.sentences.size());
    if (pending_newpar_ || doc.paragraphs.empty()) {
      if (!doc.paragraphs.empty()) doc.paragraphs.back().end = index;
      doc.paragraphs.push_back(paragraph{index, index + 1});
    }
    pending_newpar_ = false;
    sentence s;
    s.begin = static_cast<doc_index>(doc.words.size());
    s.end = s.begin;
    s.paragraph = static_cast<doc_index>(doc.paragraphs.size()) - 1;
    s.id = std::move(pending_sent_id_);
    s.text = std::move(pending_text_);
    pending_sent_id_.clear();
    pending_text_.clear();
    doc.sentences.push_back(std::move(s));
    sentence_lines_.clear();
    raw_heads_.clear();
    mwt_last_id_ = 0;
    mwt_line_ = 0;
    first_mwt_ = doc.multiword_tokens.size();
  }

  void read_token_line(std::string_view line, document& doc) {
    std::string_view cols[10];
    std::size_t count = 0;
    std::string_view rest = line;
    while (true) {
      const std::size_t tab = rest.find('\t');
      if (count < 10) cols[count] = rest.substr(0, tab);
      ++count;
      if (tab == std::string_view::npos) break;
      rest.remove_prefix(tab + 1);
    }
    if (count != 10) {
      fail(line_no_,
           "expected 10 tab-separated columns, found " + std::to_string(count) + " in " + detail::quoted(line));
    }
    if (!in_sentence_) start_sentence(doc);
    sentence& sent = doc.sentences.back();
    const long long words_so_far = static_cast<long long>(doc.words.size()) - sent.begin;
    const std::string_view id = cols[0];
    const std::size_t sep = id.find_first_of("-.");
    long long first = 0;
    long long second = 0;
    if (sep == std::string_view::npos) {
      if (!detail::parse_integer(id, first) || first < 1) fail(line_no_, bad_id(id));
      if (first != words_so_far + 1) {
        fail(line_no_,
             "word ID " + detail::quoted(id) + " is out of sequence, expected " + std::to_string(words_so_far + 1));
      }
      read_word(cols, doc, first);
    } else if (!detail::parse_integer(id.substr(0, sep), first) || !detail::parse_integer(id.substr(sep + 1), second)) {
      fail(line_no_, bad_id(id));
    } else if (id[sep] == '-') {
      if (first != words_so_far + 1 || second < first || first <= mwt_last_id_) {
        fail(line_no_, "multiword token " + detail::quoted(id) + " must span the next words, starting at word " +
                           std::to_string(words_so_far + 1));
      }
      multiword_token token;
      token.begin = static_cast<doc_index>(doc.words.size());
      token.end = token.begin + static_cast<doc_index>(second - first + 1);
      token.form.assign(cols[1]);
      token.space_after = !has_space_after_no(cols[9]);
      doc.multiword_tokens.push_back(std::move(token));
      mwt_last_id_ = second;
      mwt_line_ = line_no_;
    } else {
      if (first != words_so_far || second < 1) {
        fail(line_no_, "empty node " + detail::quoted(id) + " is out of sequence, expected " +
                           std::to_string(words_so_far) + ".N after word " + std::to_string(words_so_far));
      }
      // Empty nodes are not words; only their coreference brackets count (see the header comment).
      std::string_view entity;
      if (find_misc(cols[9], "Entity", entity)) {
        const doc_index next_word = static_cast<doc_index>(doc.words.size());
        entities_.read(entity, next_word, next_word, name_, line_no_, doc);
      }
    }
  }

  static constexpr long long unannotated_head = std::numeric_limits<long long>::min();

  static std::string bad_id(std::string_view id) {
    return "ID " + detail::quoted(id) + " is not a word number (3), a multiword range (3-4) or an empty node (3.1)";
  }

  static bool find_misc(std::string_view misc, std::string_view key, std::string_view& value) {
    if (misc == "_") return false;
    while (!misc.empty()) {
      const std::size_t bar = misc.find('|');
      const std::string_view item = misc.substr(0, bar);
      if (item.size() > key.size() && item[key.size()] == '=' && item.compare(0, key.size(), key) == 0) {
        value = item.substr(key.size() + 1);
        return true;
      }
      if (bar == std::string_view::npos) break;
      misc.remove_prefix(bar + 1);
    }
    return false;
  }

  static bool has_space_after_no(std::string_view misc) {
    std::string_view value;
    return find_misc(misc, "SpaceAfter", value) && value == "No";
  }

  void read_word(const std::string_view (&cols)[10], document& doc, long long id) {
    const doc_index index = static_cast<doc_index>(doc.words.size());
    long long head = unannotated_head;
    if (cols[6] != "_") {
      if (!detail::parse_integer(cols[6], head, true)) {
        fail(line_no_, "HEAD " + detail::quoted(cols[6]) + " of word " + std::to_string(id) + " is not an integer");
      }
    }
    raw_heads_.push_back(head);
    sentence_lines_.push_back(line_no_);
    word w;
    w.form.assign(cols[1]);
    w.lemma.assign(cols[2]);
    w.upos.assign(cols[3]);
    w.deprel.assign(cols[7]);
    w.sentence = static_cast<doc_index>(doc.sentences.size()) - 1;
    w.space_after = !has_space_after_no(cols[9]);
    if (id <= mwt_last_id_) w.space_after = id == mwt_last_id_ ? doc.multiword_tokens.back().space_after : false;
    doc.words.push_back(std::move(w));
    doc.sentences.back().end = index + 1;

    const std::string_view misc = cols[9];
    if (misc == "_") return;
    std::string_view value;
    if (find_misc(misc, "Entity", value)) entities_.read(value, index, index + 1, name_, line_no_, doc);
    if (find_misc(misc, "Discourse", value)) read_discourse(value, index);
  }

  void read_discourse(std::string_view value, doc_index word_index) {
    pending_unit unit;
    unit.begin = word_index;
    unit.line = line_no_;
    unit.root = false;
    unit.target = 0;
    bool primary = true;
    std::string_view rest = value;
    while (true) {
      const std::size_t semi = rest.find(';');
      const std::string_view rel = rest.substr(0, semi);
      const std::size_t c1 = rel.find(':');
      const std::string_view label = rel.substr(0, c1);
      const std::string_view ends =
          c1 == std::string_view::npos ? std::string_view() : rel.substr(c1 + 1, rel.find(':', c1 + 1) - c1 - 1);
      const std::size_t arrow = ends.find("->");
      long long from = 0;
      long long to = 0;
      bool ok = !label.empty() && c1 != std::string_view::npos;
      if (ok && primary && label == "ROOT") {
        ok = detail::parse_integer(ends, from);
        unit.root = true;
      } else if (ok) {
        ok = arrow != std::string_view::npos && detail::parse_integer(ends.substr(0, arrow), from) &&
             detail::parse_integer(ends.substr(arrow + 2), to);
      }
      if (!ok) {
        fail(line_no_, "Discourse value " + detail::quoted(value) + " is malformed at " + detail::quoted(rel) +
                           ": expected 'relation:unit->target' or 'ROOT:unit'");
      }
      if (primary) {
        unit.id = from;
        unit.label.assign(label);
        unit.target = to;
      } else {
        unit.secondary.emplace_back(std::string(label), to);
      }
      primary = false;
      if (semi == std::string_view::npos) break;
      rest.remove_prefix(semi + 1);
    }
    const auto inserted = unit_ids_.emplace(unit.id, static_cast<doc_index>(units_.size()));
    if (!inserted.second) {
      fail(line_no_, "Discourse unit " + std::to_string(unit.id) + " in " + detail::quoted(value) +
                         " was already defined on line " +
                         std::to_string(units_[static_cast<std::size_t>(inserted.first->second)].line));
    }
    units_.push_back(std::move(unit));
  }

  void end_sentence(document& doc) {
    if (!in_sentence_) return;
    in_sentence_ = false;
    sentence& sent = doc.sentences.back();
    const long long n = sent.end - sent.begin;
    if (n == 0) fail(line_no_, "the sentence ending here has no words, only multiword tokens or empty nodes");
    if (doc.multiword_tokens.size() > first_mwt_ && doc.multiword_tokens.back().end > sent.end) {
      fail(mwt_line_, "multiword token ending at word " + std::to_string(mwt_last_id_) +
                          " runs past the end of its sentence of " + std::to_string(n) + " words");
    }
    for (long long i = 0; i < n; ++i) {
      const long long h = raw_heads_[static_cast<std::size_t>(i)];
      word& w = doc.words[static_cast<std::size_t>(sent.begin + i)];
      if (h == unannotated_head) {
        w.head = word::no_head;
        continue;
      }
      if (h < 0 || h > n) {
        fail(sentence_lines_[static_cast<std::size_t>(i)],
             "HEAD " + std::to_string(h) + " of word " + std::to_string(i + 1) + " points outside its sentence of " +
                 std::to_string(n) + " words");
      }
      if (h == i + 1) {
        fail(sentence_lines_[static_cast<std::size_t>(i)],
             "HEAD " + std::to_string(h) + " of word " + std::to_string(i + 1) + " points to the word itself");
      }
      w.head = h == 0 ? -1 : sent.begin + static_cast<doc_index>(h) - 1;
    }
    check_acyclic(doc, sent);
    entities_.end_sentence(options_.mentions_cross_sentences, name_, line_no_);
  }

  // Every word must reach the root (or a word without HEAD) by following heads; a cycle would make code that
  // walks up the tree loop forever. Linear: each word is walked once.
  void check_acyclic(const document& doc, const sentence& sent) {
    const std::size_t n = static_cast<std::size_t>(sent.end - sent.begin);
    walk_state_.assign(n, 0);  // 0 unseen, 1 on the current walk, 2 reaches the root
    for (std::size_t start = 0; start < n; ++start) {
      std::size_t j = start;
      while (walk_state_[j] == 0) {
        walk_state_[j] = 1;
        const doc_index head = doc.words[static_cast<std::size_t>(sent.begin) + j].head;
        if (head < 0) break;
        j = static_cast<std::size_t>(head - sent.begin);
      }
      if (walk_state_[j] == 1 && doc.words[static_cast<std::size_t>(sent.begin) + j].head >= 0) {
        std::string cycle = std::to_string(j + 1);
        for (std::size_t k = j;;) {
          k = static_cast<std::size_t>(doc.words[static_cast<std::size_t>(sent.begin) + k].head - sent.begin);
          cycle += " -> " + std::to_string(k + 1);
          if (k == j) break;
        }
        fail(sentence_lines_[j], "HEAD of word " + std::to_string(j + 1) + " is part of a cycle (" + cycle +
                                     "): the sentence is not a tree");
      }
      for (std::size_t k = start; walk_state_[k] == 1;) {
        walk_state_[k] = 2;
        const doc_index head = doc.words[static_cast<std::size_t>(sent.begin) + k].head;
        if (head < 0) break;
        k = static_cast<std::size_t>(head - sent.begin);
      }
    }
  }

  void finish_document(document& doc) {
    entities_.finish_document(name_, doc);
    if (!doc.paragraphs.empty()) doc.paragraphs.back().end = static_cast<doc_index>(doc.sentences.size());

    const doc_index total = static_cast<doc_index>(doc.words.size());
    doc.discourse_units.reserve(units_.size());
    for (std::size_t u = 0; u < units_.size(); ++u) {
      pending_unit& p = units_[u];
      discourse_unit unit;
      unit.begin = p.begin;
      unit.end = u + 1 < units_.size() ? units_[u + 1].begin : total;
      unit.id = p.id;
      unit.relation = std::move(p.label);
      unit.parent = p.root ? -1 : resolve_unit(p, p.target, doc);
      for (auto& s : p.secondary) {
        const doc_index target = resolve_unit(p, s.second, doc);
        if (target >= 0) unit.secondary.push_back(discourse_relation{std::move(s.first), target});
      }
      doc.discourse_units.push_back(std::move(unit));
    }
  }

  // The index of unit `target`; -1, counted as dangling, when the document lacks it and the reading is lenient.
  doc_index resolve_unit(const pending_unit& from, long long target, document& doc) const {
    const auto found = unit_ids_.find(target);
    if (found == unit_ids_.end() && !options_.strict) {
      ++doc.dangling.discourse;
      return -1;
    }
    if (found == unit_ids_.end()) {
      fail(from.line, "Discourse unit " + std::to_string(from.id) + " points to unit " + std::to_string(target) +
                          ", which its document does not have");
    }
    return found->second;
  }

  std::unique_ptr<std::istream> owned_;
  std::istream* in_ = nullptr;
  std::string name_;
  conllu_options options_;
  std::string line_;
  std::uint64_t line_no_ = 0;
  bool at_end_ = false;
  bool in_sentence_ = false;

  // Comments seen before the next sentence or document.
  bool have_pending_doc_ = false;
  std::string pending_doc_id_;
  bool pending_newpar_ = false;
  std::string pending_sent_id_;
  std::string pending_text_;

  detail::corefud_entities entities_;  // coreference of the document being read

  // The sentence being read.
  std::vector<long long> raw_heads_;
  std::vector<std::uint64_t> sentence_lines_;
  std::vector<unsigned char> walk_state_;
  long long mwt_last_id_ = 0;
  std::uint64_t mwt_line_ = 0;
  std::size_t first_mwt_ = 0;

  // The document being read.
  std::vector<pending_unit> units_;
  std::unordered_map<long long, doc_index> unit_ids_;
};

/// Reads every document of the CoNLL-U file at `path`. Throws `io_error` when it cannot be opened and
/// `format_error` when it is malformed. For large files prefer `conllu_reader`, which streams.
inline std::vector<document> read_conllu(const std::string& path, conllu_options options = {}) {
  conllu_reader reader(path, options);
  std::vector<document> docs;
  document doc;
  while (reader.next(doc)) docs.push_back(std::move(doc));
  return docs;
}

/// Parses CoNLL-U text held in memory; `name` names it in error messages. Throws `format_error` when malformed.
inline std::vector<document> parse_conllu(const std::string& text, const std::string& name = "<memory>",
                                          conllu_options options = {}) {
  std::istringstream in(text);
  conllu_reader reader(in, name, options);
  std::vector<document> docs;
  document doc;
  while (reader.next(doc)) docs.push_back(std::move(doc));
  return docs;
}

}  // namespace headlens
