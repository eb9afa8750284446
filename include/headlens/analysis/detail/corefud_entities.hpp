#pragma once
/// \file
/// CorefUD `Entity=` bracket notation (internal part of the CoNLL-U reader): turns the brackets of one document
/// into `document::mentions` and `document::clusters`. The conventions are described in
/// `headlens/analysis/conllu.hpp`.

#include <algorithm>
#include <cstdint>
#include <headlens/analysis/detail/conllu_text.hpp>
#include <headlens/analysis/document.hpp>
#include <headlens/error.hpp>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace headlens {
namespace detail {

/// Collects the coreference mentions of one document from its `Entity=` values, checking that brackets balance.
/// Every error is a `format_error` at the file and line given to the call that found it.
class corefud_entities {
 public:
  /// When `strict`, a bracket whose other half is missing is a `format_error`; otherwise (the default, for
  /// excerpts) its mention is dropped and counted in `document::dangling`.
  explicit corefud_entities(bool strict = false) : strict_(strict) {}

  /// Reads a `# global.Entity = ...` layout: the positions of the `etype`, `head` and `minspan` attributes (the
  /// first attribute is always the entity id). Until one is read, CorefUD's default `eid-etype-head-other`.
  void set_layout(std::string_view layout) {
    etype_field_ = -1;
    head_field_ = -1;
    minspan_field_ = -1;
    int field = 0;
    while (true) {
      const std::size_t dash = layout.find('-');
      const std::string_view name = layout.substr(0, dash);
      if (name == "etype") etype_field_ = field;
      if (name == "head") head_field_ = field;
      if (name == "minspan") minspan_field_ = field;
      if (dash == std::string_view::npos) break;
      layout.remove_prefix(dash + 1);
      ++field;
    }
  }

  /// Forgets the previous document's open mentions and cluster ids (the layout stays).
  void start_document() {
    open_.clear();
    cluster_ids_.clear();
  }

  /// Reads one `Entity=` value found on line `line` of `file`. A mention opened here starts at word `begin`; one
  /// closed here ends before word `end` (`end == begin + 1` on a word; `end == begin` on an empty node, where
  /// `begin` is the next word). Mentions with no word are dropped.
  void read(std::string_view value, doc_index begin, doc_index end, const std::string& file, std::uint64_t line,
            document& doc) {
    std::size_t i = 0;
    while (i < value.size()) {
      if (value[i] == '(') {
        std::size_t j = value.find_first_of("()", i + 1);
        if (j == std::string_view::npos) j = value.size();
        open_mention m = parse_opening(value.substr(i + 1, j - i - 1), value, file, line, doc);
        m.begin = begin;
        if (j < value.size() && value[j] == ')') {
          close(m, end, file, doc);
          i = j + 1;
        } else {
          open_.push_back(std::move(m));
          i = j;
        }
      } else {
        const std::size_t j = value.find(')', i);
        const std::string_view key = value.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
        if (j == std::string_view::npos || key.empty() || key.find('(') != std::string_view::npos) {
          throw format_error::at_line(file, line,
                                      "Entity value " + detail::quoted(value) + " is malformed at " +
                                          detail::quoted(value.substr(i)) + ": expected '(id-...' or 'id)'");
        }
        auto it = std::find_if(open_.rbegin(), open_.rend(), [&](const open_mention& m) { return m.key == key; });
        if (it == open_.rend() && !strict_) {  // opened before the excerpt began
          ++doc.dangling.coreference;
          i = j + 1;
          continue;
        }
        if (it == open_.rend()) {
          throw format_error::at_line(file, line,
                                      "Entity closing bracket " + detail::quoted(std::string(key) + ")") +
                                          " has no open mention with id " + detail::quoted(key));
        }
        open_mention m = std::move(*it);
        open_.erase(std::next(it).base());
        close(m, end, file, doc);
        i = j + 1;
      }
    }
  }

  /// At the end of a sentence (ending at `line`): unless `allow_open`, no mention may still be open.
  void end_sentence(bool allow_open, const std::string& file, std::uint64_t line) const {
    if (allow_open || open_.empty()) return;
    const open_mention& m = open_.back();
    throw format_error::at_line(file, m.line,
                                "Entity mention " + detail::quoted("(" + m.key) +
                                    " opened here is still open at the end of " + "its sentence (line " +
                                    std::to_string(line) + ")");
  }

  /// At the end of a document: checks that every mention was closed (when not strict, drops and counts the open
  /// ones: the excerpt ended before their closing brackets), sorts the mentions (by begin, the longer
  /// first), lists each cluster's mentions and drops clusters left without any (those only on empty nodes).
  void finish_document(const std::string& file, document& doc) {
    if (!strict_) {
      doc.dangling.coreference += open_.size();
      open_.clear();
    }
    if (!open_.empty()) {
      const open_mention& m = open_.back();
      throw format_error::at_line(
          file, m.line,
          "Entity mention " + detail::quoted("(" + m.key) + " opened here is still open at the end of its document");
    }
    std::stable_sort(doc.mentions.begin(), doc.mentions.end(), [](const mention& a, const mention& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
    });
    for (std::size_t i = 0; i < doc.mentions.size(); ++i) {
      doc.clusters[static_cast<std::size_t>(doc.mentions[i].cluster)].mentions.push_back(static_cast<doc_index>(i));
    }
    if (std::any_of(doc.clusters.begin(), doc.clusters.end(), [](const cluster& c) { return c.mentions.empty(); })) {
      std::vector<doc_index> renumber(doc.clusters.size(), -1);
      std::vector<cluster> kept;
      for (std::size_t c = 0; c < doc.clusters.size(); ++c) {
        if (doc.clusters[c].mentions.empty()) continue;
        renumber[c] = static_cast<doc_index>(kept.size());
        kept.push_back(std::move(doc.clusters[c]));
      }
      doc.clusters = std::move(kept);
      for (mention& m : doc.mentions) m.cluster = renumber[static_cast<std::size_t>(m.cluster)];
    }
  }

 private:
  struct open_mention {
    std::string key;         // the id as written, with a discontinuous-part suffix if any
    doc_index cluster = 0;   // index into document::clusters
    doc_index begin = 0;     // first word
    std::uint64_t line = 0;  // line of the opening bracket
    std::string etype;
    long long head_pos = 0;  // 1-based position inside the mention, 0 when none
    mention_head_source source = mention_head_source::none;
  };

  open_mention parse_opening(std::string_view body, std::string_view value, const std::string& file, std::uint64_t line,
                             document& doc) {
    open_mention m;
    m.line = line;
    int field = 0;
    std::string_view rest = body;
    while (true) {
      const std::size_t dash = rest.find('-');
      const std::string_view item = rest.substr(0, dash);
      if (field == 0) {
        if (item.empty()) {
          throw format_error::at_line(file, line,
                                      "Entity mention " + detail::quoted("(" + std::string(body)) + " in " +
                                          detail::quoted(value) + " has an empty id");
        }
        m.key.assign(item);
      } else if (field == etype_field_) {
        m.etype.assign(item);
      } else if (field == head_field_ && !item.empty() && item != "_") {
        long long pos = 0;
        if (!parse_integer(item, pos) || pos < 1) {
          throw format_error::at_line(file, line,
                                      "Entity mention " + detail::quoted("(" + std::string(body)) + " has head " +
                                          detail::quoted(item) + ", expected a 1-based position inside the mention");
        }
        m.head_pos = pos;
        m.source = mention_head_source::head_field;
      } else if (field == minspan_field_ && m.source == mention_head_source::none) {
        long long pos = 0;
        const std::string_view lead = item.substr(0, item.find_first_of(",-"));
        if (parse_integer(lead, pos) && pos >= 1) {
          m.head_pos = pos;
          m.source = mention_head_source::minspan;
        }
      }
      if (dash == std::string_view::npos) break;
      rest.remove_prefix(dash + 1);
      ++field;
    }
    // A discontinuous part `e5[1/2]` belongs to the cluster `e5`.
    const std::string cluster_key(std::string_view(m.key).substr(0, m.key.find('[')));
    auto found = cluster_ids_.find(cluster_key);
    if (found == cluster_ids_.end()) {
      const doc_index index = static_cast<doc_index>(doc.clusters.size());
      cluster c;
      c.id = cluster_key;
      doc.clusters.push_back(std::move(c));
      found = cluster_ids_.emplace(cluster_key, index).first;
    }
    m.cluster = found->second;
    return m;
  }

  void close(open_mention& open, doc_index end, const std::string& file, document& doc) const {
    if (end <= open.begin) return;  // only empty nodes: not a mention over words
    mention m;
    m.begin = open.begin;
    m.end = end;
    m.cluster = open.cluster;
    m.entity_type = std::move(open.etype);
    if (open.source != mention_head_source::none) {
      if (open.head_pos <= m.size()) {
        m.head = m.begin + static_cast<doc_index>(open.head_pos) - 1;
        m.head_source = open.source;
      } else if (open.source == mention_head_source::head_field) {
        throw format_error::at_line(file, open.line,
                                    "Entity mention " + detail::quoted(open.key) + " has head " +
                                        std::to_string(open.head_pos) + " but spans only " + std::to_string(m.size()) +
                                        " word(s)");
      }
    }
    cluster& c = doc.clusters[static_cast<std::size_t>(m.cluster)];
    if (c.entity_type.empty()) c.entity_type = m.entity_type;
    doc.mentions.push_back(std::move(m));
  }

  bool strict_ = false;
  // Attribute positions (CorefUD's default `eid-etype-head-other` until `set_layout`).
  int etype_field_ = 1;
  int head_field_ = 2;
  int minspan_field_ = -1;
  std::vector<open_mention> open_;
  std::unordered_map<std::string, doc_index> cluster_ids_;
};

}  // namespace detail
}  // namespace headlens
