#pragma once
/// \file
/// A head card (analysis/head_card.hpp) as a self-contained HTML fragment: one `<section class="hl-card">` with
/// its own scoped `<style>`, no script and no external resource, to be placed in the HTML report
/// (analysis/report_html.hpp) or any page. It says what the Markdown form says (head_card_markdown.hpp): what was
/// measured and what was not, the provenance, the label counts with each label's causal status, the causal
/// checks, and a table of heads with a column per measured section. Colours follow the report page's label
/// variables (`--syntactic`, ...) when the page defines them. Every text is HTML-escaped. Standard library only.
///
///     headlens::write_head_card_html(out, card);                 // the fragment, with its <style>
///     headlens::write_head_card_html(out, card, {false});        // without: put head_card_html_css in <head>

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "headlens/analysis/head_card.hpp"
#include "headlens/analysis/head_card_markdown.hpp"
#include "headlens/detail/html_escape.hpp"

namespace headlens {

/// The fragment's stylesheet; every rule is scoped to `.hl-card`.
inline constexpr std::string_view head_card_html_css = R"HLCSS(
.hl-card{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink,#1d2330);
background:var(--panel,#fff);border:1px solid var(--line,#d9dde5);border-radius:8px;padding:16px 18px;margin:16px 0}
.hl-card h2{font-size:17px;margin:0 0 4px}
.hl-card h3{font-size:13px;margin:16px 0 6px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted,#5b6475)}
.hl-card p{margin:2px 0}
.hl-card .hl-muted{color:var(--muted,#5b6475)}
.hl-card ul{margin:4px 0;padding-left:20px}
.hl-card table{border-collapse:collapse;font-size:13px;margin:4px 0}
.hl-card th,.hl-card td{border-bottom:1px solid var(--line,#d9dde5);padding:3px 8px;text-align:left;vertical-align:top}
.hl-card th{font-weight:600;color:var(--muted,#5b6475);font-size:12px}
.hl-card td.hl-num{text-align:right;font-variant-numeric:tabular-nums}
.hl-card code{font-size:12px;word-break:break-all}
.hl-card .hl-label{display:inline-block;padding:0 7px;border-radius:9px;color:#fff;font-size:12px;font-weight:600}
.hl-card .hl-syntactic{background:var(--syntactic,#0072b2)}
.hl-card .hl-coreference{background:var(--coreference,#d55e00)}
.hl-card .hl-discourse{background:var(--discourse,#009e73)}
.hl-card .hl-positional{background:var(--positional,#e69f00)}
.hl-card .hl-unassigned{background:var(--unassigned,#8c8c8c)}
.hl-card .hl-supported{color:#1a7f37;font-weight:600}
.hl-card .hl-unchecked,.hl-card .hl-not-supported,.hl-card .hl-not-testable{color:#9a6700}
.hl-card .hl-scroll{overflow-x:auto}
)HLCSS";

/// How the fragment is written.
struct head_card_html_options {
  bool include_style = true;  ///< write `head_card_html_css` in a `<style>` inside the section
  std::string id = "head-card";  ///< the section's `id` (for links from the page); empty: none
};

namespace detail {

/// The class that colours a causal status.
inline const char* card_causal_class(const head_card& card, head_label label) {
  const card_causal_check* c = card.causal_check(label);
  if (label == head_label::unassigned) return "hl-muted";
  if (!c) return "hl-unchecked";
  switch (c->verdict) {
    case causal_verdict::supported:
      return "hl-supported";
    case causal_verdict::not_supported:
      return "hl-not-supported";
    case causal_verdict::not_testable:
      break;
  }
  return "hl-not-testable";
}

}  // namespace detail

/// Writes the card as an HTML fragment (see the file comment).
inline void write_head_card_html(std::ostream& out, const head_card& card, const head_card_html_options& options = {}) {
  using detail::html_escape;
  const card_provenance& p = card.provenance;
  out << "<section class=\"hl-card\"";
  if (!options.id.empty()) out << " id=\"" << html_escape(options.id) << "\"";
  out << ">\n";
  if (options.include_style) out << "<style>" << head_card_html_css << "</style>\n";
  out << "<h2>Head card: " << html_escape(card.model.name) << "</h2>\n";
  if (!card.model.description.empty()) out << "<p>" << html_escape(card.model.description) << "</p>\n";
  out << "<p class=\"hl-muted\">" << html_escape(detail::card_model_text(card.model)) << ". " << card.heads.size()
      << " of " << card.model.total_heads() << " heads described. Format " << head_card_format << " "
      << head_card_major_version << "." << head_card_minor_version << ".</p>\n";

  out << "<h3>What was measured</h3>\n<ul>\n";
  for (const std::string& line : detail::card_measured_lines(card)) out << "<li>" << html_escape(line) << "</li>\n";
  out << "</ul>\n";

  out << "<h3>Provenance</h3>\n";
  if (p.files.empty()) {
    out << "<p class=\"hl-muted\">No file hashes recorded.</p>\n";
  } else {
    out << "<div class=\"hl-scroll\"><table>\n<tr><th>role</th><th>path</th><th>sha256</th><th>bytes</th></tr>\n";
    for (const card_file& f : p.files) {
      out << "<tr><td>" << html_escape(f.role) << "</td><td>" << html_escape(f.path) << "</td><td><code>"
          << html_escape(f.sha256) << "</code></td><td class=\"hl-num\">" << f.bytes << "</td></tr>\n";
    }
    out << "</table></div>\n";
  }
  out << "<p>analysis: " << html_escape(detail::card_parameters_text(p.analysis)) << "</p>\n";
  out << "<p>headlens " << html_escape(p.headlens_version) << ", created " << html_escape(p.created)
      << "</p>\n";
  if (!p.command.empty()) out << "<p>command: <code>" << html_escape(p.command) << "</code></p>\n";

  const head_card_summary s = summarize(card);
  out << "<h3>Summary</h3>\n<table>\n<tr><th>label</th><th>heads</th><th>percent</th><th>causal check</th></tr>\n";
  for (head_label label : head_labels) {
    const std::string name(to_string(label));
    out << "<tr><td><span class=\"hl-label hl-" << name << "\">" << name << "</span></td><td class=\"hl-num\">"
        << s.labels.of(label) << "</td><td class=\"hl-num\">" << detail::report_percent(s.labels, label)
        << "</td><td class=\"" << detail::card_causal_class(card, label) << "\">"
        << html_escape(detail::card_causal_text(card, label)) << "</td></tr>\n";
  }
  out << "<tr><td>all</td><td class=\"hl-num\">" << s.labels.total() << "</td><td></td><td></td></tr>\n</table>\n";

  if (!card.causal_checks.empty()) {
    out << "<h3>Causal checks</h3>\n<p class=\"hl-muted\">The label's heads ablated against as many random heads; "
           "effect: loss change on the label's tokens minus on the other tokens.</p>\n"
        << "<div class=\"hl-scroll\"><table>\n<tr><th>label</th><th>heads</th><th>ablation</th><th>tokens</th>"
           "<th>effect</th><th>random</th><th>p</th><th>draws</th><th>verdict</th><th>reason</th></tr>\n";
    for (const card_causal_check& c : card.causal_checks) {
      out << "<tr><td>" << to_string(c.label) << "</td><td class=\"hl-num\">" << c.heads << "</td><td>"
          << html_escape(c.ablation) << "</td><td>" << html_escape(c.tokens) << "</td><td class=\"hl-num\">"
          << detail::card_signed(c.effect) << "</td><td class=\"hl-num\">" << detail::card_signed(c.random_effect)
          << "</td><td class=\"hl-num\">" << detail::card_text_number(c.p_value) << "</td><td class=\"hl-num\">"
          << c.draws << "</td><td class=\"" << detail::card_causal_class(card, c.label) << "\">"
          << to_string(c.verdict) << "</td><td>" << html_escape(c.reason) << "</td></tr>\n";
    }
    out << "</table></div>\n";
  }

  out << "<h3>Heads</h3>\n<div class=\"hl-scroll\"><table>\n<tr><th>layer</th>";
  for (const std::string& c : detail::card_head_columns(card)) out << "<th>" << html_escape(c) << "</th>";
  out << "</tr>\n";
  for (const card_head* h : detail::card_heads_in_order(card)) {
    const std::vector<std::string> cells = detail::card_head_cells(card, *h);
    const std::string label(to_string(h->verdict.label));
    out << "<tr><td class=\"hl-num\">" << h->verdict.layer << "</td>";
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i == 1) {
        out << "<td><span class=\"hl-label hl-" << label << "\">" << label << "</span></td>";
      } else if (i == 7) {
        out << "<td class=\"" << detail::card_causal_class(card, h->verdict.label) << "\">"
            << html_escape(cells[i]) << "</td>";
      } else {
        out << "<td" << (i == 0 || (i >= 2 && i <= 6) ? " class=\"hl-num\"" : "") << ">" << html_escape(cells[i])
            << "</td>";
      }
    }
    out << "</tr>\n";
  }
  out << "</table></div>\n</section>\n";
}

}  // namespace headlens
