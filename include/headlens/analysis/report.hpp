#pragma once
/// \file
/// Reports people can read from head verdicts: one row per head (layer, head, label, the four scores,
/// confidence, top evidence) and label counts per layer, per layer band (early, middle and late thirds) and for the
/// whole model, in percent: the "x% of heads are coreference heads" figures. Written as a terminal table,
/// Markdown or CSV by this header; JSON is in `headlens/analysis/report_json.hpp`. The formats are described in
/// `docs/report-schema.md`. A report may carry the causal check of its labels (`head_report::causal`, computed by
/// `headlens/analysis/causal_check.hpp`, described in `docs/causal-check.md`); every format then adds a section
/// for it, and without it the output is what it was.
///
///     auto verdicts = headlens::classify_heads(headlens::annotated_policy(), evidence);
///     headlens::head_report report = headlens::make_report(verdicts, "annotated");
///     headlens::write_table(std::cout, report);

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "headlens/analysis/causal_check_result.hpp"
#include "headlens/analysis/verdict.hpp"

namespace headlens {

/// How many heads got each label.
struct label_counts {
  std::array<std::int64_t, head_label_count> count{};  ///< indexed by `head_label`

  void add(head_label label) noexcept { ++count[static_cast<std::size_t>(label)]; }
  std::int64_t of(head_label label) const noexcept { return count[static_cast<std::size_t>(label)]; }
  /// Heads counted.
  std::int64_t total() const noexcept {
    std::int64_t n = 0;
    for (std::int64_t c : count) n += c;
    return n;
  }
  /// Share of the heads with `label`, in percent; 0 when no head was counted.
  double percent(head_label label) const noexcept {
    const std::int64_t n = total();
    return n == 0 ? 0.0 : 100.0 * static_cast<double>(of(label)) / static_cast<double>(n);
  }
};

/// Label counts of one layer.
struct layer_summary {
  int layer = 0;
  label_counts counts;
};

/// Label counts of a band of layers `[first_layer, last_layer]`; an empty band (a model with fewer than three
/// layers) has `first_layer > last_layer` and no heads.
struct band_summary {
  std::string name;  ///< "early", "middle" or "late"
  int first_layer = 0;
  int last_layer = -1;
  label_counts counts;
};

/// The band of `layer` in a model of `layer_count` layers: 0 (early), 1 (middle) or 2 (late), layer l falling in
/// band floor(3 l / layer_count). With 12 layers: 0-3, 4-7, 8-11; with 2 layers: 0 early, 1 middle, no late.
inline int layer_band(int layer, int layer_count) noexcept {
  if (layer_count <= 0 || layer < 0) return 0;
  const long long band = 3LL * layer / layer_count;
  return static_cast<int>(std::min<long long>(band, 2));
}

/// A report: the verdicts sorted by (layer, head) and their label counts.
struct head_report {
  std::string policy;                 ///< name of the policy that gave the verdicts (free text, may be empty)
  std::vector<head_verdict> heads;    ///< sorted by layer, then head
  std::vector<layer_summary> layers;  ///< one per layer that has heads, ascending
  std::array<band_summary, 3> bands;  ///< early, middle, late
  label_counts model;                 ///< every head
  int layer_count = 0;                ///< 1 + the largest layer index (0 without heads)
  /// The causal check of the labels, when it was run (`run_causal_check`); every format shows it then.
  std::optional<causal_check_result> causal;
};

/// Builds a report from verdicts in any order (they are sorted by layer and head). `policy` names the policy for
/// the report's header.
inline head_report make_report(std::vector<head_verdict> verdicts, std::string policy = {}) {
  head_report report;
  report.policy = std::move(policy);
  std::stable_sort(verdicts.begin(), verdicts.end(), [](const head_verdict& a, const head_verdict& b) {
    return a.layer != b.layer ? a.layer < b.layer : a.head < b.head;
  });
  report.heads = std::move(verdicts);
  for (const head_verdict& v : report.heads) report.layer_count = std::max(report.layer_count, v.layer + 1);
  static const char* const band_names[] = {"early", "middle", "late"};
  for (int b = 0; b < 3; ++b) {
    band_summary& band = report.bands[static_cast<std::size_t>(b)];
    band.name = band_names[b];
    band.first_layer = report.layer_count;  // narrowed below to the layers that fall in the band
    band.last_layer = -1;
    for (int l = 0; l < report.layer_count; ++l) {
      if (layer_band(l, report.layer_count) != b) continue;
      band.first_layer = std::min(band.first_layer, l);
      band.last_layer = std::max(band.last_layer, l);
    }
    if (band.last_layer < 0) band.first_layer = 0;
  }
  for (const head_verdict& v : report.heads) {
    if (report.layers.empty() || report.layers.back().layer != v.layer) report.layers.push_back({v.layer, {}});
    report.layers.back().counts.add(v.label);
    report.model.add(v.label);
    report.bands[static_cast<std::size_t>(layer_band(v.layer, report.layer_count))].counts.add(v.label);
  }
  return report;
}

namespace detail {

/// A score for a table cell: signed with two decimals, "-" for NaN.
inline std::string report_score(double value) {
  if (std::isnan(value)) return "-";
  std::ostringstream out;
  out << std::showpos << std::fixed << std::setprecision(2) << value;
  return out.str();
}

inline std::string report_number(double value, int digits = 2) {
  if (std::isnan(value)) return "";
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

/// The "top evidence" text of a verdict: its first `items` evidence items as `name value (baseline b)`.
inline std::string top_evidence_text(const head_verdict& v, std::size_t items) {
  std::string out;
  for (std::size_t i = 0; i < v.evidence.size() && i < items; ++i) {
    const evidence_item& e = v.evidence[i];
    if (!out.empty()) out += "; ";
    out += e.name + " " + report_number(e.value);
    if (e.has_baseline()) out += " (baseline " + report_number(e.baseline) + ")";
  }
  return out;
}

/// What a head row says after the numbers: the reason of an unassigned head, else its top evidence.
inline std::string head_note(const head_verdict& v, std::size_t items) {
  if (!v.assigned()) {
    const std::string evidence = top_evidence_text(v, items);
    return evidence.empty() ? v.reason : v.reason + " [" + evidence + "]";
  }
  return top_evidence_text(v, items);
}

inline std::string report_percent(const label_counts& counts, head_label label) {
  return report_number(counts.percent(label), 1) + "%";
}

inline std::string band_title(const band_summary& band) {
  if (band.last_layer < band.first_layer) return band.name + " (no layers)";
  if (band.last_layer == band.first_layer) return band.name + " (layer " + std::to_string(band.first_layer) + ")";
  return band.name + " (layers " + std::to_string(band.first_layer) + "-" + std::to_string(band.last_layer) + ")";
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
inline std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

/// A Markdown table cell: `|` escaped, line breaks as spaces.
inline std::string md_cell(std::string text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

/// A signed number with `digits` decimals for the causal check ("-" for NaN, "inf" / "-inf").
inline std::string report_signed(double value, int digits) {
  if (std::isnan(value)) return "-";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::ostringstream out;
  out << std::showpos << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

/// An unsigned number with `digits` decimals ("-" for NaN).
inline std::string report_plain(double value, int digits) {
  if (std::isnan(value)) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

/// The line that says how the causal check was run.
inline std::string causal_summary(const causal_check_result& c) {
  std::ostringstream out;
  out << to_string(c.kind) << " ablation, " << c.random_sets << " random head sets per label (seed " << c.seed
      << "), supported when p < " << c.alpha << " and the effect is above the random mean; " << c.units
      << (c.units == 1 ? " unit, " : " units, ") << c.tokens << " scored tokens";
  return out.str();
}

/// The causal check row of `label` for a head with that label, or nothing for an unassigned head.
inline const label_causal_check* causal_of(const head_report& report, head_label label) {
  if (!report.causal || label == head_label::unassigned) return nullptr;
  return &report.causal->labels[static_cast<std::size_t>(label)];
}

inline void report_pad(std::ostream& out, const std::string& text, std::size_t width, bool right = false) {
  if (right)
    out << std::string(width > text.size() ? width - text.size() : 0, ' ') << text;
  else
    out << text << std::string(width > text.size() ? width - text.size() : 0, ' ');
}

}  // namespace detail

/// Writes the report as a terminal table: one line per head, then the label percentages of the model, the three
/// bands and every layer. `top_evidence` evidence items are shown per head.
inline void write_table(std::ostream& out, const head_report& report, std::size_t top_evidence = 1) {
  out << "head report";
  if (!report.policy.empty()) out << " (" << report.policy << " policy)";
  out << ": " << report.heads.size() << (report.heads.size() == 1 ? " head in " : " heads in ") << report.layer_count
      << (report.layer_count == 1 ? " layer\n\n" : " layers\n\n");
  out << "layer  head  label        syntactic  coreference  discourse  positional  confidence  evidence / reason\n";
  for (const head_verdict& v : report.heads) {
    detail::report_pad(out, std::to_string(v.layer), 5, true);
    detail::report_pad(out, std::to_string(v.head), 6, true);
    out << "  ";
    detail::report_pad(out, std::string(to_string(v.label)), 11);
    detail::report_pad(out, detail::report_score(v.score(head_label::syntactic)), 11, true);
    detail::report_pad(out, detail::report_score(v.score(head_label::coreference)), 13, true);
    detail::report_pad(out, detail::report_score(v.score(head_label::discourse)), 11, true);
    detail::report_pad(out, detail::report_score(v.score(head_label::positional)), 12, true);
    detail::report_pad(out, detail::report_number(v.confidence), 12, true);
    out << "  " << detail::head_note(v, top_evidence) << "\n";
  }
  out << "\nlabels in percent     syntactic  coreference  discourse  positional  unassigned  heads\n";
  auto summary_line = [&out](const std::string& title, const label_counts& counts) {
    detail::report_pad(out, title, 20);
    for (head_label label : head_labels) {
      const std::size_t width = std::string(to_string(label)).size() + 2;
      detail::report_pad(out, detail::report_percent(counts, label), width, true);
    }
    detail::report_pad(out, std::to_string(counts.total()), 7, true);
    out << "\n";
  };
  summary_line("model", report.model);
  for (const band_summary& band : report.bands) summary_line(detail::band_title(band), band.counts);
  for (const layer_summary& layer : report.layers) summary_line("layer " + std::to_string(layer.layer), layer.counts);
  if (!report.causal) return;
  out << "\ncausal check: " << detail::causal_summary(*report.causal) << "\n";
  out << "label        heads  verdict           effect  random mean  random sd        z       p  phenomenon / other"
         "  note\n";
  for (const label_causal_check& c : report.causal->labels) {
    detail::report_pad(out, std::string(to_string(c.label)), 11);
    detail::report_pad(out, std::to_string(c.heads.size()), 7, true);
    out << "  ";
    detail::report_pad(out, std::string(to_string(c.verdict)), 13);
    detail::report_pad(out, detail::report_signed(c.effect, 4), 11, true);
    detail::report_pad(out, detail::report_signed(c.random_mean, 4), 13, true);
    detail::report_pad(out, detail::report_plain(c.random_sd, 4), 11, true);
    detail::report_pad(out, detail::report_signed(c.z, 2), 9, true);
    detail::report_pad(out, detail::report_plain(c.p_value, 4), 8, true);
    detail::report_pad(out, std::to_string(c.phenomenon_tokens) + " / " + std::to_string(c.other_tokens), 20, true);
    out << "  " << c.reason << "\n";
  }
}

/// Writes the report as Markdown: a heads table, then a summary table (model, bands, layers) in percent.
inline void write_markdown(std::ostream& out, const head_report& report, std::size_t top_evidence = 1) {
  out << "# Head report";
  if (!report.policy.empty()) out << " (" << report.policy << " policy)";
  out << "\n\n"
      << report.heads.size() << (report.heads.size() == 1 ? " head in " : " heads in ") << report.layer_count
      << (report.layer_count == 1 ? " layer.\n\n" : " layers.\n\n");
  out << "## Summary (percent of heads)\n\n";
  out << "| | syntactic | coreference | discourse | positional | unassigned | heads |\n";
  out << "|---|---:|---:|---:|---:|---:|---:|\n";
  auto summary_row = [&out](const std::string& title, const label_counts& counts) {
    out << "| " << title;
    for (head_label label : head_labels) out << " | " << detail::report_percent(counts, label);
    out << " | " << counts.total() << " |\n";
  };
  summary_row("model", report.model);
  for (const band_summary& band : report.bands) summary_row(detail::band_title(band), band.counts);
  for (const layer_summary& layer : report.layers) summary_row("layer " + std::to_string(layer.layer), layer.counts);
  out << "\n## Heads\n\n";
  out << "| layer | head | label | syntactic | coreference | discourse | positional | confidence | evidence / reason "
         "|\n";
  out << "|---:|---:|---|---:|---:|---:|---:|---:|---|\n";
  for (const head_verdict& v : report.heads) {
    out << "| " << v.layer << " | " << v.head << " | " << to_string(v.label);
    for (head_label c : head_categories) out << " | " << detail::report_score(v.score(c));
    out << " | " << detail::report_number(v.confidence) << " | " << detail::md_cell(detail::head_note(v, top_evidence))
        << " |\n";
  }
  if (!report.causal) return;
  out << "\n## Causal check\n\n"
      << detail::md_cell(detail::causal_summary(*report.causal)) << ". Effect: the mean loss change on the tokens of "
      << "the label's phenomenon minus that on the other tokens (positional: on every token), the label's heads "
         "ablated; p: the share of random head sets of the same size doing at least as well.\n\n";
  out << "| label | heads | verdict | effect | random mean | random sd | z | p | phenomenon tokens | other tokens | "
         "note "
         "|\n";
  out << "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const label_causal_check& c : report.causal->labels) {
    out << "| " << to_string(c.label) << " | " << c.heads.size() << " | " << to_string(c.verdict) << " | "
        << detail::report_signed(c.effect, 4) << " | " << detail::report_signed(c.random_mean, 4) << " | "
        << detail::report_plain(c.random_sd, 4) << " | " << detail::report_signed(c.z, 2) << " | "
        << detail::report_plain(c.p_value, 4) << " | " << c.phenomenon_tokens << " | " << c.other_tokens << " | "
        << detail::md_cell(c.reason) << " |\n";
  }
}

/// Writes one CSV row per head (RFC 4180, header line first):
/// `layer,head,label,syntactic,coreference,discourse,positional,confidence,reason,evidence,evidence_value,
/// evidence_baseline`. Scores are written with 6 decimals and left empty when NaN; `evidence*` is the first
/// evidence item (empty when none). The label counts are not in the CSV: they follow from the `label` column.
/// With a causal check (`report.causal`), each row ends with the check of the head's label,
/// `causal_verdict,causal_effect,causal_p` (empty for an unassigned head); `write_causal_csv` writes the check
/// itself, one row per label.
inline void write_csv(std::ostream& out, const head_report& report) {
  out << "layer,head,label,syntactic,coreference,discourse,positional,confidence,reason,evidence,evidence_value,"
         "evidence_baseline"
      << (report.causal ? ",causal_verdict,causal_effect,causal_p\n" : "\n");
  for (const head_verdict& v : report.heads) {
    out << v.layer << ',' << v.head << ',' << to_string(v.label);
    for (head_label c : head_categories) out << ',' << detail::report_number(v.score(c), 6);
    out << ',' << detail::report_number(v.confidence, 6) << ',' << detail::csv_field(v.reason);
    if (v.evidence.empty()) {
      out << ",,,";
    } else {
      const evidence_item& e = v.evidence.front();
      out << ',' << detail::csv_field(e.name) << ',' << detail::report_number(e.value, 6) << ','
          << (e.has_baseline() ? detail::report_number(e.baseline, 6) : std::string());
    }
    if (report.causal) {
      const label_causal_check* c = detail::causal_of(report, v.label);
      if (c == nullptr) {
        out << ",,,";
      } else {
        out << ',' << detail::csv_field(std::string(to_string(c->verdict))) << ','
            << detail::report_number(c->effect, 6) << ',' << detail::report_number(c->p_value, 6);
      }
    }
    out << '\n';
  }
}

/// Writes the causal check as CSV, one row per category (RFC 4180, header line first):
/// `label,heads,verdict,effect,phenomenon_change,other_change,random_mean,random_sd,z,p,random_sets,exact,scope,
/// phenomenon_tokens,other_tokens,reason`. `heads` lists the label's heads as `l.h` separated by spaces; numbers
/// have 6 decimals and are empty when not measured (`z` may be `inf` or `-inf`).
inline void write_causal_csv(std::ostream& out, const causal_check_result& check) {
  out << "label,heads,verdict,effect,phenomenon_change,other_change,random_mean,random_sd,z,p,random_sets,exact,"
         "scope,phenomenon_tokens,other_tokens,reason\n";
  for (const label_causal_check& c : check.labels) {
    std::string heads;
    for (const head_ref& h : c.heads) heads += (heads.empty() ? "" : " ") + to_string(h);
    const std::string z = std::isinf(c.z) ? (c.z > 0 ? "inf" : "-inf") : detail::report_number(c.z, 6);
    out << to_string(c.label) << ',' << heads << ',' << detail::csv_field(std::string(to_string(c.verdict))) << ','
        << detail::report_number(c.effect, 6) << ',' << detail::report_number(c.phenomenon_change, 6) << ','
        << detail::report_number(c.other_change, 6) << ',' << detail::report_number(c.random_mean, 6) << ','
        << detail::report_number(c.random_sd, 6) << ',' << z << ',' << detail::report_number(c.p_value, 6) << ','
        << c.random_effects.size() << ',' << (c.exact ? "true" : "false") << ','
        << detail::csv_field(std::string(to_string(c.scope))) << ',' << c.phenomenon_tokens << ',' << c.other_tokens
        << ',' << detail::csv_field(c.reason) << '\n';
  }
}

}  // namespace headlens
