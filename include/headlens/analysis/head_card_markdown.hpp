#pragma once
/// \file
/// A head card (analysis/head_card.hpp) as Markdown, for a code review or a model's documentation: what was
/// measured and what was not, the provenance, the label counts with each label's causal status, and one table of
/// heads per layer. Standard library only.
///
/// Sections that were not measured are named as such ("importance: not measured", "not causally checked") and get
/// no column in the head tables: the text says no more than the card does.
///
///     headlens::write_head_card_markdown(std::cout, card);

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "headlens/analysis/head_card.hpp"
#include "headlens/analysis/report.hpp"

namespace headlens {
namespace detail {

/// A number for a card's text: `digits` decimals, "n/a" for NaN.
inline std::string card_text_number(double value, int digits = 3) {
  if (std::isnan(value)) return "n/a";
  return report_number(value, digits);
}

/// A signed change with its interval: `+0.123 [+0.100, +0.150]`; "n/a" when not measured.
inline std::string card_estimate_text(const card_estimate& e) {
  if (std::isnan(e.value)) return "n/a";
  std::ostringstream out;
  out << std::showpos << std::fixed << std::setprecision(3) << e.value;
  if (!std::isnan(e.low) || !std::isnan(e.high)) {
    out << " [";
    if (std::isnan(e.low)) out << "n/a"; else out << e.low;
    out << ", ";
    if (std::isnan(e.high)) out << "n/a"; else out << e.high;
    out << "]";
  }
  return out.str();
}

inline std::string card_signed(double value) {
  if (std::isnan(value)) return "n/a";
  std::ostringstream out;
  out << std::showpos << std::fixed << std::setprecision(4) << value;
  return out.str();
}

/// "supported (p = 0.010, 20 draws)" or "not causally checked": the causal check of `label`, in words.
inline std::string card_causal_text(const head_card& card, head_label label) {
  if (label == head_label::unassigned) return "no label to check";
  const card_causal_check* c = card.causal_check(label);
  if (!c) return "not causally checked";
  std::string out(to_string(c->verdict));
  if (c->verdict == causal_verdict::not_testable) return c->reason.empty() ? out : out + ": " + c->reason;
  return out + " (p = " + card_text_number(c->p_value) + ", " + std::to_string(c->draws) + " draws)";
}

inline std::string card_parameters_text(const card_parameters& parameters) {
  std::string out;
  for (const auto& [name, value] : parameters) out += (out.empty() ? "" : ", ") + name + " = " + value;
  return out.empty() ? "none" : out;
}

inline std::string card_model_text(const card_model& m) {
  std::string out = std::to_string(m.layers()) + (m.layers() == 1 ? " layer, " : " layers, ");
  bool uniform = true;
  for (int h : m.heads_per_layer) uniform = uniform && h == m.heads_per_layer.front();
  if (uniform && !m.heads_per_layer.empty()) {
    out += std::to_string(m.heads_per_layer.front()) + " heads per layer";
  } else {
    out += std::to_string(m.total_heads()) + " heads (per layer:";
    for (int h : m.heads_per_layer) out += " " + std::to_string(h);
    out += ")";
  }
  if (!m.kv_heads_per_layer.empty()) {
    out += ", key/value heads per layer:";
    for (int h : m.kv_heads_per_layer) out += " " + std::to_string(h);
  }
  return out + (m.causal ? ", causal (decoder)" : ", bidirectional (encoder)");
}

/// One line per measurement section: its setting, or "not measured".
inline std::vector<std::string> card_measured_lines(const head_card& card) {
  std::vector<std::string> lines;
  const card_provenance& p = card.provenance;
  lines.push_back("Labels: policy " + (p.policy.empty() ? std::string("(unnamed)") : p.policy) + " (parameters: " +
                  card_parameters_text(p.policy_parameters) +
                  "), from attention maps: a correlation, which only a causal check supports");
  std::string causal = "Causal check: ";
  for (std::size_t c = 0; c < head_category_count; ++c) {
    causal += (c ? "; " : "") + std::string(to_string(head_categories[c])) + " " +
              card_causal_text(card, head_categories[c]);
  }
  lines.push_back(causal);
  if (card.importance) {
    const card_importance_run& r = *card.importance;
    std::string stable = !r.ranking_stable ? "ranking stability not checked"
                                           : (*r.ranking_stable ? "ranking stable" : "ranking NOT stable");
    stable += " across halves of the corpus";
    if (!std::isnan(r.ranking_agreement)) stable += " (agreement " + card_text_number(r.ranking_agreement) + ")";
    lines.push_back("Importance: loss change when a head is ablated; loss " + r.loss + ", context " + r.context +
                    ", interval " + r.interval + ", " + std::to_string(r.documents) + " documents; " + stable);
  } else {
    lines.push_back("Importance: not measured");
  }
  if (card.sparsity) {
    lines.push_back("Sparsity: " + card.sparsity->mode + " " + card.sparsity->setting +
                    ", task-loss change of the whole model " + card_signed(card.sparsity->loss_change));
  } else {
    lines.push_back("Sparsity: not measured");
  }
  if (!card.matches.empty()) {
    std::string m = "Matches: against";
    for (std::size_t i = 0; i < card.matches.size(); ++i) {
      const card_match_run& r = card.matches[i];
      m += (i ? "; " : " ") + r.model + " (" + std::to_string(r.sentences) + " sentences" +
           (r.method.empty() ? "" : ", " + r.method) + ")";
    }
    lines.push_back(m + "; similar maps on this text, not proof of the same function");
  } else {
    lines.push_back("Matches: not measured");
  }
  if (card.pruning) {
    lines.push_back("Pruning: plan " + card.pruning->target + ", " + std::to_string(card.pruning->pruned_heads) +
                    " heads pruned, task-loss change " + card_signed(card.pruning->loss_change));
  } else {
    lines.push_back("Pruning: not planned");
  }
  return lines;
}

/// The cells of one head, in the order of `card_head_columns`.
inline std::vector<std::string> card_head_cells(const head_card& card, const card_head& h) {
  const head_verdict& v = h.verdict;
  std::vector<std::string> cells = {std::to_string(v.head), std::string(to_string(v.label)),
                                    report_number(v.confidence)};
  for (head_label c : head_categories) cells.push_back(report_score(v.score(c)));
  cells.push_back(card_causal_text(card, v.label));
  if (card.importance) {
    cells.push_back(h.importance ? card_estimate_text(h.importance->zero) : "n/a");
    cells.push_back(h.importance ? card_estimate_text(h.importance->mean) : "n/a");
    cells.push_back(h.importance && h.importance->rank > 0 ? std::to_string(h.importance->rank) : "n/a");
  }
  if (card.sparsity) {
    cells.push_back(h.sparsity ? "dropped " + card_text_number(h.sparsity->dropped) + ", kept " +
                                     card_text_number(h.sparsity->mass_kept) + ", error " +
                                     card_text_number(h.sparsity->output_error)
                               : "n/a");
  }
  if (!card.matches.empty()) {
    std::string m;
    for (const card_match& x : h.matches) {
      m += (m.empty() ? "" : "; ") + x.model + " " + std::to_string(x.layer) + "." + std::to_string(x.head) + " (" +
           card_text_number(x.similarity) + (x.mutual ? ", mutual" : "") + ")";
    }
    cells.push_back(m.empty() ? "none" : m);
  }
  if (card.pruning) {
    cells.push_back(!h.pruning ? "n/a" : h.pruning->pruned ? "pruned (step " + std::to_string(h.pruning->step) + ")"
                                                           : "kept");
  }
  // The report's note (an unassigned head's reason, else the top evidence), and an assigned head's own note.
  std::string note = head_note(v, 3);
  if (v.assigned() && !v.reason.empty()) note += (note.empty() ? "" : "; ") + std::string("note: ") + v.reason;
  cells.push_back(note);
  return cells;
}

/// The card's heads by layer, then head (a card read from a file keeps the file's order).
inline std::vector<const card_head*> card_heads_in_order(const head_card& card) {
  std::vector<const card_head*> heads;
  for (const card_head& h : card.heads) heads.push_back(&h);
  std::stable_sort(heads.begin(), heads.end(), [](const card_head* a, const card_head* b) { return a->position() < b->position(); });
  return heads;
}

/// Column titles of the head tables (only the measured sections get a column).
inline std::vector<std::string> card_head_columns(const head_card& card) {
  std::vector<std::string> columns = {"head", "label", "confidence"};
  for (head_label c : head_categories) columns.push_back(std::string(to_string(c)));
  columns.push_back("causal check of label");
  if (card.importance) {
    columns.push_back("importance, zero ablation");
    columns.push_back("importance, mean ablation");
    columns.push_back("rank");
  }
  if (card.sparsity) columns.push_back("sparsity");
  if (!card.matches.empty()) columns.push_back("matched head");
  if (card.pruning) columns.push_back("pruning");
  columns.push_back("evidence / reason");
  return columns;
}

}  // namespace detail

/// Writes the card as Markdown (see the file comment).
inline void write_head_card_markdown(std::ostream& out, const head_card& card) {
  const card_provenance& p = card.provenance;
  out << "# Head card: " << card.model.name << "\n\n";
  if (!card.model.description.empty()) out << card.model.description << "\n\n";
  out << detail::card_model_text(card.model) << ". " << card.heads.size() << " of " << card.model.total_heads()
      << " heads described. Format " << head_card_format << " " << head_card_major_version << "."
      << head_card_minor_version << ".\n\n";

  out << "## What was measured\n\n";
  for (const std::string& line : detail::card_measured_lines(card)) out << "- " << line << "\n";

  out << "\n## Provenance\n\n";
  if (p.files.empty()) {
    out << "No file hashes recorded.\n\n";
  } else {
    out << "| role | path | sha256 | bytes |\n|---|---|---|---:|\n";
    for (const card_file& f : p.files) {
      out << "| " << detail::md_cell(f.role) << " | " << detail::md_cell(f.path) << " | `" << f.sha256 << "` | "
          << f.bytes << " |\n";
    }
    out << "\n";
  }
  out << "- analysis: " << detail::md_cell(detail::card_parameters_text(p.analysis)) << "\n";
  out << "- headlens " << p.headlens_version << ", created " << p.created << "\n";
  if (!p.command.empty()) out << "- command: `" << p.command << "`\n";

  const head_card_summary s = summarize(card);
  out << "\n## Summary\n\n| | heads | percent | causal check |\n|---|---:|---:|---|\n";
  for (head_label label : head_labels) {
    out << "| " << to_string(label) << " | " << s.labels.of(label) << " | " << detail::report_percent(s.labels, label)
        << " | " << detail::card_causal_text(card, label) << " |\n";
  }
  out << "| all | " << s.labels.total() << " | | |\n";
  if (!card.causal_checks.empty()) {
    out << "\nCausal checks (the label's heads ablated against as many random heads, loss change on the label's "
           "tokens minus the other tokens):\n\n"
        << "| label | heads | ablation | tokens | effect | random | p | draws | verdict | reason |\n"
        << "|---|---:|---|---|---:|---:|---:|---:|---|---|\n";
    for (const card_causal_check& c : card.causal_checks) {
      out << "| " << to_string(c.label) << " | " << c.heads << " | " << detail::md_cell(c.ablation) << " | "
          << detail::md_cell(c.tokens) << " | " << detail::card_signed(c.effect) << " | "
          << detail::card_signed(c.random_effect) << " | " << detail::card_text_number(c.p_value) << " | " << c.draws
          << " | " << to_string(c.verdict) << " | " << detail::md_cell(c.reason) << " |\n";
    }
  }

  out << "\n## Heads\n";
  const std::vector<std::string> columns = detail::card_head_columns(card);
  int layer = -1;
  for (const card_head* head : detail::card_heads_in_order(card)) {
    const card_head& h = *head;
    if (h.verdict.layer != layer) {
      layer = h.verdict.layer;
      out << "\n### Layer " << layer << "\n\n|";
      for (const std::string& c : columns) out << " " << c << " |";
      out << "\n|";
      for (std::size_t c = 0; c < columns.size(); ++c) out << (c == 0 || (c >= 2 && c <= 6) ? "---:|" : "---|");
      out << "\n";
    }
    out << "|";
    for (const std::string& cell : detail::card_head_cells(card, h)) out << " " << detail::md_cell(cell) << " |";
    out << "\n";
  }
}

}  // namespace headlens
