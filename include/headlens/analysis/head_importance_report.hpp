#pragma once
/// \file
/// Head importance (analysis/head_importance.hpp) as people read it: a terminal table, Markdown and CSV (standard
/// library only; JSON is in analysis/head_importance_json.hpp). Each says what was run on what (model, corpus, the
/// unit of context), the clean loss, what the interval is, and for each ablation kind whether the ranking of heads
/// held across halves of the corpus; then one row per head. Numbers are written with 4 significant digits, "-" (empty
/// in CSV) where there is none (an interval over one document).
///
///     headlens::write_table(std::cout, result);   // or write_markdown, write_csv

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "headlens/analysis/head_importance.hpp"
#include "headlens/analysis/report.hpp"
#include "headlens/detail/number_text.hpp"

namespace headlens {

namespace detail {

/// A number with 4 significant digits, "-" when not finite.
inline std::string importance_number(double v, const char* none = "-") {
  if (!std::isfinite(v)) return none;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", v);
  return buffer;
}

inline std::string importance_interval(const document_interval& i) {
  if (!i.has_interval()) return "-";
  return "[" + importance_number(i.low) + ", " + importance_number(i.high) + "]";
}

inline std::string importance_level(const document_interval& i) {
  return importance_number(i.level * 100) + "%";
}

/// The lines every format starts with (without Markdown markup): run, context and counts, clean loss, what the
/// numbers are, and per kind the stability and the most important heads.
inline std::vector<std::string> importance_header(const head_importance_result& r, std::size_t top = 5) {
  std::vector<std::string> lines;
  std::string run = "head importance";
  if (!r.model.empty()) run += ": " + r.model;
  if (!r.corpus.empty()) run += " on " + r.corpus;
  lines.push_back(run);
  lines.push_back("context: " + (r.context.empty() ? std::string("(not given)") : r.context) + "; " +
                  with_commas(r.documents.size()) + (r.documents.size() == 1 ? " document, " : " documents, ") +
                  with_commas(r.sequences) + (r.sequences == 1 ? " sequence, " : " sequences, ") +
                  with_commas(r.tokens) + " tokens");
  std::string clean = "clean loss " + importance_number(r.clean.mean);
  if (r.clean.has_interval()) {
    clean += " (" + importance_level(r.clean) + " interval " + importance_number(r.clean.low) + " to " +
             importance_number(r.clean.high) + ")";
  }
  lines.push_back(clean);
  lines.push_back("change: the loss with one head ablated minus the clean loss, per sequence, averaged per document; "
                  "shown as the mean over documents and the " +
                  importance_level(r.clean) +
                  " Student-t interval of the per-document means (documents are the unit of spread); rank 1 is the "
                  "largest change");
  for (const importance_of_kind& k : r.kinds) {
    std::vector<const head_importance*> order;
    for (const head_importance& h : k.heads) order.push_back(&h);
    std::sort(order.begin(), order.end(), [](const head_importance* a, const head_importance* b) { return a->rank < b->rank; });
    std::string most;
    for (std::size_t i = 0; i < std::min(top, order.size()); ++i) {
      most += (i ? ", " : "") + to_string(order[i]->head) + " (" + importance_number(order[i]->change.mean) + ")";
    }
    lines.push_back(std::string(to_string(k.kind)) + " ablation: ranking " + k.stability.note +
                    (most.empty() ? "" : "; most important " + most));
  }
  return lines;
}

}  // namespace detail

/// Writes the result as a terminal table: the header lines, then per head its change, interval and rank under each
/// ablation kind.
inline void write_table(std::ostream& out, const head_importance_result& r) {
  for (const std::string& line : detail::importance_header(r)) out << line << "\n";
  out << "\nlayer  head";
  for (const importance_of_kind& k : r.kinds) {
    const std::string kind = to_string(k.kind);
    out << "  ";
    detail::report_pad(out, kind + " change", 12, true);
    out << "  ";
    detail::report_pad(out, "interval", 22);
    detail::report_pad(out, "rank", 5, true);
  }
  out << "\n";
  const std::size_t heads = r.kinds.empty() ? 0 : r.kinds.front().heads.size();
  for (std::size_t h = 0; h < heads; ++h) {
    const head_ref head = r.kinds.front().heads[h].head;
    detail::report_pad(out, std::to_string(head.layer), 5, true);
    detail::report_pad(out, std::to_string(head.head), 6, true);
    for (const importance_of_kind& k : r.kinds) {
      const head_importance& hi = k.heads[h];
      out << "  ";
      detail::report_pad(out, detail::importance_number(hi.change.mean), 12, true);
      out << "  ";
      detail::report_pad(out, detail::importance_interval(hi.change), 22);
      detail::report_pad(out, std::to_string(hi.rank), 5, true);
    }
    out << "\n";
  }
}

/// Writes the result as Markdown: a title, the header lines as a list, one table of heads.
inline void write_markdown(std::ostream& out, const head_importance_result& r) {
  const std::vector<std::string> header = detail::importance_header(r);
  out << "# Head importance\n\n";
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i == 0) {
      out << detail::md_cell(header[i]) << "\n\n";
    } else {
      out << "- " << detail::md_cell(header[i]) << "\n";
    }
  }
  out << "\n| layer | head |";
  for (const importance_of_kind& k : r.kinds) {
    const std::string kind = to_string(k.kind);
    out << ' ' << kind << " change | " << kind << ' ' << detail::importance_level(r.clean) << " interval | " << kind
        << " rank |";
  }
  out << "\n|---:|---:|";
  for (std::size_t i = 0; i < r.kinds.size(); ++i) out << "---:|---|---:|";
  out << "\n";
  const std::size_t heads = r.kinds.empty() ? 0 : r.kinds.front().heads.size();
  for (std::size_t h = 0; h < heads; ++h) {
    const head_ref head = r.kinds.front().heads[h].head;
    out << "| " << head.layer << " | " << head.head << " |";
    for (const importance_of_kind& k : r.kinds) {
      const head_importance& hi = k.heads[h];
      out << ' ' << detail::importance_number(hi.change.mean) << " | " << detail::importance_interval(hi.change)
          << " | " << hi.rank << " |";
    }
    out << "\n";
  }
}

/// Writes one CSV row per head and ablation kind (RFC 4180, header line first):
/// `kind,layer,head,change,low,high,sd,documents,rank,ranking_stable,split_half_rho,clean_loss`, numbers with 10
/// significant digits, empty where there is none. The context and the notes are in the other formats.
inline void write_csv(std::ostream& out, const head_importance_result& r) {
  out << "kind,layer,head,change,low,high,sd,documents,rank,ranking_stable,split_half_rho,clean_loss\n";
  const auto number = [](double v) {
    if (!std::isfinite(v)) return std::string();
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.10g", v);
    return std::string(buffer);
  };
  for (const importance_of_kind& k : r.kinds) {
    for (const head_importance& hi : k.heads) {
      out << to_string(k.kind) << ',' << hi.head.layer << ',' << hi.head.head << ',' << number(hi.change.mean) << ','
          << number(hi.change.low) << ',' << number(hi.change.high) << ',' << number(hi.change.sd) << ','
          << hi.change.documents << ',' << hi.rank << ',' << (k.stability.stable ? "true" : "false") << ','
          << number(k.stability.rho) << ',' << number(r.clean.mean) << '\n';
    }
  }
}

}  // namespace headlens
