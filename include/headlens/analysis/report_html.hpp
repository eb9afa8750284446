#pragma once
/// \file
/// A head report as one self-contained HTML page (inline CSS and JavaScript; no network, no external script or
/// font): a grid of layers x heads coloured by label, the confidence as the cell's strength and number, the label
/// percentages of each layer as a small stacked bar, and for the head clicked: its scores, the evidence behind its
/// label (value and baseline), and its attention over an example sentence picked from a list, drawn on canvas as
/// token-to-token lines (queries on the left, keys on the right) and as a heatmap. When the report carries a causal
/// check (`head_report::causal`), a section shows it per label (verdict, effect against the random head sets drawn
/// as a strip, p-value, reason) and the head panel says how its label fared; without one, the page is as before.
///
///     headlens::html_maps maps;
///     maps.add("The cat sat.", {"The", "cat", "sat", "."}, buffer.data(), layers, heads);  // [layers][heads][4][4]
///     headlens::write_html(file, report, maps);
///
/// All text (titles, tokens, evidence names, reasons) is data: it is written into the page as JSON inside a
/// `<script type="application/json">` element with `<`, `>`, `&`, U+2028 and U+2029 escaped, and put on the page
/// with `textContent`, so no word (`</script>`, quotes, `<b>`) can end a script or add markup.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <locale>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "headlens/analysis/causal_check_result.hpp"
#include "headlens/analysis/report.hpp"
#include "headlens/analysis/verdict.hpp"
#include "headlens/analysis/verdict_json.hpp"
#include "headlens/detail/html_escape.hpp"
#include "headlens/error.hpp"

namespace headlens {

/// One example text with the attention of every head over it.
struct html_example {
  std::string title;                ///< shown in the sentence picker (free text)
  std::vector<std::string> tokens;  ///< the n tokens or words, as they should be shown
  int layers = 0;                   ///< layers in `maps`
  int heads = 0;                    ///< heads per layer in `maps`
  /// Attention, row-major [layers][heads][n][n]: row i (the query, "from") over columns j (the keys, "to"). Values
  /// are written rounded to `html_options::decimals`; NaN is written as 0.
  std::vector<float> maps;
  std::string note;  ///< shown under the map, e.g. how the map was made (free text; optional)
};

/// The example sentences a page embeds: the caller picks a few short ones (the maps dominate the file's size:
/// about layers x heads x n^2 x 4 bytes per example at 3 decimals).
struct html_maps {
  std::vector<html_example> examples;

  /// Adds an example from a contiguous row-major [layers, heads, n, n] buffer, n = tokens.size(); `maps` must hold
  /// layers * heads * n * n values. Throws `argument_error` when layers or heads is below 1 or there is no token.
  template <class Scalar>
  void add(std::string title, std::vector<std::string> tokens, const Scalar* maps, int layers, int heads,
           std::string note = {}) {
    if (layers < 1 || heads < 1) {
      detail::fail<argument_error>("html_maps::add: example '", title, "' has ", layers, " layers x ", heads,
                                   " heads, expected at least 1 x 1");
    }
    if (tokens.empty()) detail::fail<argument_error>("html_maps::add: example '", title, "' has no token");
    html_example e;
    e.title = std::move(title);
    e.tokens = std::move(tokens);
    e.layers = layers;
    e.heads = heads;
    e.note = std::move(note);
    const std::size_t n = e.tokens.size();
    const std::size_t count = static_cast<std::size_t>(layers) * static_cast<std::size_t>(heads) * n * n;
    e.maps.resize(count);
    for (std::size_t i = 0; i < count; ++i) e.maps[i] = static_cast<float>(maps[i]);
    examples.push_back(std::move(e));
  }
};

/// How the page is written.
struct html_options {
  std::string title = "headlens head report";  ///< the page's title and heading
  std::string note;                            ///< one line under the heading (model, text), free text; optional
  int decimals = 3;                            ///< decimals kept in the maps, 1 to 6
};

namespace detail {

/// A JSON number with 6 significant digits in the classic locale; `null` when not finite.
inline std::string html_json_number(double value) {
  if (!std::isfinite(value)) return "null";
  std::ostringstream out;
  out.imbue(std::locale::classic());
  out.precision(6);
  out << value;
  return out.str();
}

/// Label counts as a JSON array in `head_labels` order.
inline std::string html_json_counts(const label_counts& counts) {
  std::string out = "[";
  for (std::size_t i = 0; i < head_label_count; ++i) {
    if (i) out += ',';
    out += std::to_string(counts.count[i]);
  }
  return out + "]";
}

/// The causal check as the JSON object of `causal_check_to_json` (report_json.hpp), written with the standard
/// library and safe inside `<script>`.
inline void append_causal_json(std::string& json, const causal_check_result& c) {
  json += "{\"ablation\":" + json_string_literal(to_string(c.kind));
  json += ",\"random_sets\":" + std::to_string(c.random_sets) + ",\"seed\":" + std::to_string(c.seed);
  json += ",\"alpha\":" + json_number_exact(c.alpha) + ",\"units\":" + std::to_string(c.units);
  json += ",\"tokens\":" + std::to_string(c.tokens) + ",\"labels\":[";
  for (std::size_t i = 0; i < c.labels.size(); ++i) {
    const label_causal_check& l = c.labels[i];
    if (i) json += ',';
    json += "{\"label\":" + json_string_literal(to_string(l.label)) + ",\"heads\":[";
    for (std::size_t h = 0; h < l.heads.size(); ++h) {
      if (h) json += ',';
      json += "{\"layer\":" + std::to_string(l.heads[h].layer) + ",\"head\":" + std::to_string(l.heads[h].head) + "}";
    }
    json += "],\"verdict\":" + json_string_literal(to_string(l.verdict));
    json += ",\"reason\":" + json_string_literal(l.reason);
    json += ",\"phenomenon_tokens\":" + std::to_string(l.phenomenon_tokens);
    json += ",\"other_tokens\":" + std::to_string(l.other_tokens);
    json += ",\"phenomenon_change\":" + json_number_exact(l.phenomenon_change);
    json += ",\"other_change\":" + json_number_exact(l.other_change);
    json += ",\"effect\":" + json_number_exact(l.effect);
    json += ",\"scope\":" + json_string_literal(to_string(l.scope));
    json += ",\"possible_sets\":" + json_number_exact(l.possible_sets);
    json += std::string(",\"exact\":") + (l.exact ? "true" : "false") + ",\"random_effects\":[";
    for (std::size_t k = 0; k < l.random_effects.size(); ++k) {
      if (k) json += ',';
      json += json_number_exact(l.random_effects[k]);
    }
    json += "],\"random_mean\":" + json_number_exact(l.random_mean);
    json += ",\"random_sd\":" + json_number_exact(l.random_sd);
    json += ",\"z\":" + json_number_exact(l.z);
    json += ",\"random_at_least\":" + std::to_string(l.random_at_least);
    json += ",\"p_value\":" + json_number_exact(l.p_value) + "}";
  }
  json += "]}";
}

/// The page's stylesheet.
inline constexpr std::string_view html_report_css = R"HLCSS(
:root{--syntactic:#0072b2;--coreference:#d55e00;--discourse:#009e73;--positional:#e69f00;--unassigned:#8c8c8c;
--ink:#1d2330;--muted:#5b6475;--line:#d9dde5;--panel:#ffffff;--bg:#f4f6f9;--cell:46px}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"DejaVu Sans",sans-serif}
header{padding:18px 28px 10px;background:var(--panel);border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0 0 2px}
h2{font-size:15px;margin:0 0 10px}
h3{font-size:13px;margin:18px 0 6px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.note,.summary,.hint,.caption{color:var(--muted);margin:2px 0}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin:10px 0 4px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.swatch{width:12px;height:12px;border-radius:3px;display:inline-block}
main{display:flex;flex-wrap:wrap;gap:20px;padding:20px 28px;align-items:flex-start}
section{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:16px 18px}
#grid-panel{flex:0 1 auto;max-width:100%;overflow-x:auto}
#detail{flex:1 1 560px;min-width:360px}
.grid{display:grid;gap:4px;align-items:center}
.grid .colhead,.grid .rowhead{font-size:12px;color:var(--muted);text-align:center;white-space:nowrap}
.grid .rowhead{text-align:right;padding-right:6px}
.cell{width:var(--cell);height:var(--cell);border-radius:6px;border:2px solid transparent;padding:0;cursor:pointer;
font:600 12px/1 system-ui,sans-serif;color:#fff;display:flex;flex-direction:column;align-items:center;
justify-content:center;gap:2px;text-shadow:0 0 2px rgba(0,0,0,.35)}
.cell small{font-weight:500;font-size:9px;opacity:.9}
.cell.light{color:var(--ink);text-shadow:none}
.cell:hover{border-color:#9aa3b5}
.cell.selected{border-color:var(--ink);box-shadow:0 0 0 2px #fff inset}
.cell:focus-visible{outline:2px solid var(--ink);outline-offset:1px}
.gap{width:var(--cell);height:var(--cell)}
.bar{display:flex;width:130px;height:14px;border-radius:3px;overflow:hidden;background:#eceff4;margin-left:10px}
.bar span{display:block;height:100%}
.barlabel{font-size:11px;color:var(--muted);margin-left:6px;white-space:nowrap}
.controls{display:flex;flex-wrap:wrap;gap:14px;align-items:center;margin:8px 0 12px}
select{font:inherit;padding:3px 6px;max-width:420px}
.views{display:flex;flex-wrap:wrap;gap:22px;align-items:flex-start}
.views figure{margin:0}
.views figcaption{font-size:12px;color:var(--muted);margin-bottom:4px}
canvas{display:block;background:#fff}
table{border-collapse:collapse;font-size:13px}
td,th{padding:4px 10px 4px 0;text-align:left;vertical-align:middle;border-bottom:1px solid #eef0f4}
th{font-weight:600;color:var(--muted);font-size:12px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.scores td.best{font-weight:700}
.ebar{position:relative;width:120px;height:10px;background:#eceff4;border-radius:2px}
.ebar i{position:absolute;left:0;top:0;bottom:0;border-radius:2px}
.ebar b{position:absolute;top:-3px;bottom:-3px;width:2px;background:var(--ink)}
.reason{margin:6px 0;padding:6px 10px;background:#f6f7fa;border-left:3px solid var(--unassigned)}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
#causal{flex:1 1 100%}
#causal td.verdict{font-weight:600}
#causal td.supported{color:#1a7f37}
#causal td.not-supported{color:#b35900}
#causal td.not-testable{color:var(--muted)}
#causal td.note{color:var(--muted);max-width:380px}
#causal td.heads{max-width:220px;font-variant-numeric:tabular-nums}
)HLCSS";

/// The page's script (data in the `headlens-data` element; every text goes through `textContent`).
inline constexpr std::string_view html_report_js = R"HLJS(
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('headlens-data').textContent);
  var LABELS = ['syntactic', 'coreference', 'discourse', 'positional', 'unassigned'];
  var CATEGORIES = LABELS.slice(0, 4);  // the labels that have a score
  var COLORS = {syntactic: [0, 114, 178], coreference: [213, 94, 0], discourse: [0, 158, 115],
                positional: [230, 159, 0], unassigned: [140, 140, 140]};
  var state = {head: null, example: 0, row: -1};
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function rgb(label, a) {
    var c = COLORS[label] || COLORS.unassigned;
    return 'rgba(' + c[0] + ',' + c[1] + ',' + c[2] + ',' + (a === undefined ? 1 : a) + ')';
  }
  function fmt(v, d) { return (v === null || v === undefined) ? '\u2013' : Number(v).toFixed(d === undefined ? 2 : d); }
  function signed(v) { return (v === null || v === undefined) ? '\u2013' : (v >= 0 ? '+' : '') + Number(v).toFixed(2); }
  function pct(c, i) { var t = 0; c.forEach(function (x) { t += x; }); return t ? 100 * c[i] / t : 0; }
  function cellAlpha(conf) { var c = conf === null ? 0 : Math.max(0, Math.min(1, conf)); return 0.22 + 0.78 * c; }

  // ---- header ----
  var nHeads = data.heads.length;
  $('summary').textContent = nHeads + (nHeads === 1 ? ' head' : ' heads') + ' in ' + data.layer_count +
      (data.layer_count === 1 ? ' layer' : ' layers') + (data.policy ? ', ' + data.policy + ' policy' : '') +
      '. Model: ' + LABELS.map(function (l, i) { return l + ' ' + pct(data.model, i).toFixed(0) + '%'; }).join(', ') + '.';
  var legend = $('legend');
  LABELS.forEach(function (l) {
    var s = el('span'); var sw = el('i', 'swatch'); sw.style.background = rgb(l); s.appendChild(sw);
    s.appendChild(document.createTextNode(l)); legend.appendChild(s);
  });
  var lg = el('span', 'hint', 'cell strength and number: confidence'); legend.appendChild(lg);

  // ---- grid: layers x heads, a bar of label percentages per layer ----
  var grid = $('grid');
  var cols = data.head_count;
  if (cols > 16) document.documentElement.style.setProperty('--cell', cols > 32 ? '20px' : '30px');
  grid.style.gridTemplateColumns = 'auto repeat(' + cols + ', var(--cell)) auto';
  var byPos = {};
  data.heads.forEach(function (h, i) { byPos[h.layer + ':' + h.head] = i; });
  grid.appendChild(el('div', 'colhead', cols > 8 ? 'head' : ''));
  for (var c = 0; c < cols; ++c) grid.appendChild(el('div', 'colhead', cols > 8 ? String(c) : 'head ' + c));
  grid.appendChild(el('div', 'colhead', 'labels in layer'));
  var counts = {};
  data.layers.forEach(function (x) { counts[x.layer] = x.counts; });
  function bar(cnt, titleText) {
    var wrap = el('div'); wrap.style.display = 'flex'; wrap.style.alignItems = 'center';
    var b = el('div', 'bar'); var tip = [];
    LABELS.forEach(function (l, i) {
      var p = pct(cnt, i); if (p <= 0) return;
      var s = el('span'); s.style.width = p + '%'; s.style.background = rgb(l); b.appendChild(s);
      tip.push(l + ' ' + p.toFixed(1) + '%');
    });
    b.title = titleText + ': ' + tip.join(', ');
    wrap.appendChild(b);
    var total = 0; cnt.forEach(function (x) { total += x; });
    wrap.appendChild(el('span', 'barlabel', total ? (total - cnt[4]) + ' of ' + total + ' assigned' : ''));
    return wrap;
  }
  var cells = [];
  for (var l = 0; l < data.layer_count; ++l) {
    grid.appendChild(el('div', 'rowhead', 'layer ' + l));
    for (var h = 0; h < cols; ++h) {
      var k = byPos[l + ':' + h];
      if (k === undefined) { grid.appendChild(el('div', 'gap')); continue; }
      var v = data.heads[k];
      var cell = el('button', 'cell');
      var a = cellAlpha(v.confidence);
      cell.style.background = rgb(v.label, a);
      if (a < 0.55) cell.className += ' light';
      cell.setAttribute('data-layer', v.layer); cell.setAttribute('data-head', v.head);
      cell.title = 'layer ' + v.layer + ', head ' + v.head + ': ' + v.label + ' (confidence ' + fmt(v.confidence) + ')' +
          (v.reason ? ' \u2013 ' + v.reason : '');
      cell.setAttribute('aria-label', cell.title);
      if (cols <= 32) {
        cell.appendChild(el('span', null, fmt(v.confidence)));
        if (cols <= 16) cell.appendChild(el('small', null, v.label.slice(0, 4)));
      }
      cell.addEventListener('click', (function (idx) { return function () { select(idx, true); }; })(k));
      cells[k] = cell;
      grid.appendChild(cell);
    }
    grid.appendChild(counts[l] ? bar(counts[l], 'layer ' + l) : el('div'));
  }
  function summaryRow(title, cnt) {
    grid.appendChild(el('div', 'rowhead', title));
    var span = el('div'); span.style.gridColumn = 'span ' + Math.max(1, cols); grid.appendChild(span);
    grid.appendChild(bar(cnt, title));
  }
  if (data.layer_count >= 3) {  // early, middle and late thirds of the layers
    data.bands.forEach(function (b) {
      summaryRow(b.name + ' (' + (b.first === b.last ? b.first : b.first + '\u2013' + b.last) + ')', b.counts);
    });
  }
  summaryRow('model', data.model);

  // ---- example picker ----
  var picker = $('example');
  data.examples.forEach(function (e, i) {
    var o = el('option', null, e.title + ' (' + e.tokens.length + ' tokens)'); o.value = String(i); picker.appendChild(o);
  });
  if (!data.examples.length) {
    picker.disabled = true; picker.appendChild(el('option', null, 'no example maps in this report'));
  }
  picker.addEventListener('change', function () { state.example = Number(picker.value); state.row = -1; draw(); });
  var views = document.getElementsByName('view');
  for (var vi = 0; vi < views.length; ++vi) views[vi].addEventListener('change', draw);
  function viewMode() { for (var i = 0; i < views.length; ++i) if (views[i].checked) return views[i].value; return 'both'; }

  // ---- the selected head ----
  function select(k, byUser) {
    state.head = k;
    cells.forEach(function (c, i) { if (c) c.classList.toggle('selected', i === k); });
    var v = data.heads[k];
    $('detail-title').textContent = 'Layer ' + v.layer + ', head ' + v.head;
    var pill = $('detail-label'); pill.textContent = v.label; pill.style.background = rgb(v.label);
    $('detail-confidence').textContent = 'confidence ' + fmt(v.confidence);
    var reason = $('detail-reason');
    reason.textContent = v.reason ? (v.label === 'unassigned' ? 'Unassigned: ' : 'Note: ') + v.reason : '';
    reason.style.display = v.reason ? '' : 'none';
    var dc = $('detail-causal');
    if (dc) {
      var check = causalByLabel[v.label];
      dc.textContent = check ? 'Causal check of the ' + v.label + ' label: ' + check.verdict +
          (check.verdict === 'not testable' ? ' (' + check.reason + ')' :
           ' (effect ' + signed4(check.effect) + ', p = ' + fmt(check.p_value, 4) + ')') :
          'Unassigned: no causal check.';
    }
    var st = $('scores'); st.textContent = '';
    var best = -1, bestV = -Infinity;
    var scores = CATEGORIES.map(function (c) { return v.scores[c]; });
    scores.forEach(function (s, i) { if (s !== null && s > bestV) { bestV = s; best = i; } });
    var hr = el('tr'); hr.appendChild(el('th', null, 'score'));
    var br = el('tr'); br.appendChild(el('td', null, 'margin'));
    scores.forEach(function (s, i) {
      hr.appendChild(el('th', null, LABELS[i]));
      var td = el('td', 'num' + (i === best ? ' best' : ''), signed(s)); td.style.color = s !== null && s > 0 ? rgb(LABELS[i]) : '';
      br.appendChild(td);
    });
    st.appendChild(hr); st.appendChild(br);
    var et = $('evidence'); et.textContent = '';
    var eh = el('tr');
    ['measure', 'value', 'baseline', ''].forEach(function (t) { eh.appendChild(el('th', null, t)); });
    et.appendChild(eh);
    if (!v.evidence.length) { var r0 = el('tr'); var td0 = el('td', null, 'no evidence'); td0.colSpan = 4; r0.appendChild(td0); et.appendChild(r0); }
    v.evidence.forEach(function (e) {
      var r = el('tr');
      r.appendChild(el('td', null, e.name));
      r.appendChild(el('td', 'num', fmt(e.value, 3)));
      r.appendChild(el('td', 'num', e.baseline === null ? '' : fmt(e.baseline, 3)));
      var tdb = el('td');
      if (e.value !== null && e.value >= 0 && e.value <= 1 && (e.baseline === null || (e.baseline >= 0 && e.baseline <= 1))) {
        var eb = el('div', 'ebar'); var fill = el('i'); fill.style.width = (100 * e.value) + '%';
        fill.style.background = rgb(v.label, 0.8); eb.appendChild(fill);
        if (e.baseline !== null) { var tick = el('b'); tick.style.left = 'calc(' + (100 * e.baseline) + '% - 1px)'; eb.appendChild(tick); }
        eb.title = 'value ' + fmt(e.value, 3) + (e.baseline === null ? '' : ', baseline ' + fmt(e.baseline, 3) + ' (the black tick)');
        tdb.appendChild(eb);
      }
      r.appendChild(tdb);
      et.appendChild(r);
    });
    draw();
    // Below the grid (a narrow window or a big model): bring the head's panel into view.
    var panel = $('detail');
    if (byUser && panel.getBoundingClientRect().top > window.innerHeight - 80) panel.scrollIntoView({behavior: 'smooth'});
  }

  // ---- drawing ----
  function setup(canvas, w, hgt) {
    var r = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * r); canvas.height = Math.round(hgt * r);
    canvas.style.width = w + 'px'; canvas.style.height = hgt + 'px';
    var ctx = canvas.getContext('2d'); ctx.setTransform(r, 0, 0, r, 0, 0); ctx.clearRect(0, 0, w, hgt);
    return ctx;
  }
  function clip(t, n) { return t.length > n ? t.slice(0, n - 1) + '\u2026' : t; }
  function headMap(ex, v) {
    if (v.layer >= ex.layers || v.head >= ex.heads) return null;
    var n = ex.tokens.length, base = (v.layer * ex.heads + v.head) * n * n, m = [];
    for (var i = 0; i < n; ++i) {
      var row = new Array(n);
      for (var j = 0; j < n; ++j) row[j] = ex.maps[base + i * n + j] / data.scale;
      m.push(row);
    }
    return m;
  }
  var FONT = '12px system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif';
  function drawLines(canvas, ex, m, v) {
    var n = ex.tokens.length, rowH = 20, colW = 105, gapW = 120, top = 8;
    var w = colW * 2 + gapW, hgt = top * 2 + n * rowH;
    var ctx = setup(canvas, w, hgt);
    ctx.font = FONT; ctx.textBaseline = 'middle';
    var x0 = colW - 4, x1 = colW + gapW + 4;
    for (var i = 0; i < n; ++i) {
      if (state.row >= 0 && i !== state.row) continue;
      for (var j = 0; j < n; ++j) {
        var a = m[i][j]; if (a <= 0.005) continue;
        ctx.strokeStyle = rgb(v.label, Math.min(1, a)); ctx.lineWidth = state.row >= 0 ? 3 : 2;
        ctx.beginPath(); ctx.moveTo(x0, top + (i + 0.5) * rowH); ctx.lineTo(x1, top + (j + 0.5) * rowH); ctx.stroke();
      }
    }
    for (var t = 0; t < n; ++t) {
      var y = top + (t + 0.5) * rowH;
      ctx.fillStyle = state.row === t ? rgb(v.label, 0.18) : 'rgba(0,0,0,0)';
      ctx.fillRect(0, y - rowH / 2 + 1, colW - 2, rowH - 2);
      ctx.fillStyle = '#1d2330';
      ctx.textAlign = 'right'; ctx.fillText(clip(ex.tokens[t], 14), colW - 10, y);
      var into = 0; for (var q = 0; q < n; ++q) into += m[q][t];
      ctx.fillStyle = state.row >= 0 ? rgb(v.label, Math.min(1, 0.25 + m[state.row][t])) : '#1d2330';
      ctx.textAlign = 'left'; ctx.fillText(clip(ex.tokens[t], 14), colW + gapW + 10, y);
    }
    canvas.onmousemove = function (ev) {
      var rect = canvas.getBoundingClientRect(), x = ev.clientX - rect.left, yy = ev.clientY - rect.top;
      var r = x < colW ? Math.floor((yy - top) / rowH) : -1;
      if (r >= n) r = -1;
      if (r !== state.row) { state.row = r; drawLines(canvas, ex, m, v); }
    };
    canvas.onmouseleave = function () { if (state.row !== -1) { state.row = -1; drawLines(canvas, ex, m, v); } };
  }
  function drawHeatmap(canvas, ex, m, v) {
    var n = ex.tokens.length, cs = Math.max(6, Math.min(26, Math.floor(440 / n)));
    var probe = setup(canvas, 1, 1); probe.font = FONT;
    var lab = 0; ex.tokens.forEach(function (t) { lab = Math.max(lab, probe.measureText(clip(t, 14)).width); });
    lab = Math.ceil(lab) + 10;
    var w = lab + n * cs + 4, hgt = lab + n * cs + 4;
    var ctx = setup(canvas, w, hgt);
    ctx.font = FONT;
    var c = COLORS[v.label] || COLORS.unassigned;
    for (var i = 0; i < n; ++i) {
      for (var j = 0; j < n; ++j) {
        var a = Math.max(0, Math.min(1, m[i][j]));
        ctx.fillStyle = 'rgb(' + Math.round(255 - (255 - c[0]) * a) + ',' + Math.round(255 - (255 - c[1]) * a) + ',' +
            Math.round(255 - (255 - c[2]) * a) + ')';
        ctx.fillRect(lab + j * cs, lab + i * cs, cs, cs);
      }
    }
    ctx.strokeStyle = '#d9dde5'; ctx.lineWidth = 1; ctx.strokeRect(lab - 0.5, lab - 0.5, n * cs + 1, n * cs + 1);
    ctx.fillStyle = '#1d2330'; ctx.textBaseline = 'middle';
    if (cs >= 9) {
      ctx.textAlign = 'right';
      for (var r = 0; r < n; ++r) ctx.fillText(clip(ex.tokens[r], 14), lab - 5, lab + (r + 0.5) * cs);
      for (var k = 0; k < n; ++k) {
        ctx.save(); ctx.translate(lab + (k + 0.5) * cs, lab - 5); ctx.rotate(-Math.PI / 2);
        ctx.textAlign = 'left'; ctx.fillText(clip(ex.tokens[k], 14), 0, 0); ctx.restore();
      }
    }
    canvas.title = 'rows: from (query); columns: to (key); colour strength = attention, 0 (white) to 1';
  }
  function draw() {
    var lines = $('lines'), heat = $('heatmap'), caption = $('map-caption');
    var mode = viewMode();
    lines.parentNode.style.display = mode === 'heatmap' ? 'none' : '';
    heat.parentNode.style.display = mode === 'lines' ? 'none' : '';
    if (state.head === null || !data.examples.length) {
      setup(lines, 1, 1); setup(heat, 1, 1);
      caption.textContent = data.examples.length ? 'Click a head to see its attention.' :
          'This report embeds no example maps.';
      return;
    }
    var v = data.heads[state.head], ex = data.examples[state.example];
    var m = headMap(ex, v);
    if (!m) {
      setup(lines, 1, 1); setup(heat, 1, 1);
      caption.textContent = 'This example has no map for layer ' + v.layer + ', head ' + v.head + '.';
      return;
    }
    drawLines(lines, ex, m, v);
    drawHeatmap(heat, ex, m, v);
    lines.setAttribute('data-head', v.layer + ':' + v.head);
    heat.setAttribute('data-head', v.layer + ':' + v.head);
    caption.textContent = 'Layer ' + v.layer + ', head ' + v.head + ' over \u201c' + ex.title + '\u201d: each token ' +
        '(left, the query) to the tokens it attends to (right, the keys); line strength = attention. ' +
        'Hover a token on the left to see its row alone.' + (ex.note ? ' ' + ex.note : '');
  }

  // ---- the causal check (only when the report carries one) ----
  function drawStrip(canvas, c) {
    var w = 170, hgt = 24, ctx = setup(canvas, w, hgt);
    var xs = c.random_effects.filter(function (x) { return x !== null; });
    if (c.effect === null || !xs.length) return;
    var lo = Math.min(c.effect, Math.min.apply(null, xs)), hi = Math.max(c.effect, Math.max.apply(null, xs));
    if (hi - lo < 1e-12) { lo -= 1; hi += 1; }
    function x(v) { return 6 + (w - 12) * (v - lo) / (hi - lo); }
    ctx.strokeStyle = 'rgba(91,100,117,0.55)'; ctx.lineWidth = 1;
    xs.forEach(function (v) { ctx.beginPath(); ctx.moveTo(x(v), 6); ctx.lineTo(x(v), hgt - 6); ctx.stroke(); });
    ctx.strokeStyle = rgb(c.label); ctx.lineWidth = 3;
    ctx.beginPath(); ctx.moveTo(x(c.effect), 2); ctx.lineTo(x(c.effect), hgt - 2); ctx.stroke();
    canvas.title = 'grey: the effects of ' + xs.length + ' random head sets; coloured: the label\'s heads (' +
        signed4(c.effect) + ')';
  }
  function signed4(v) {
    if (v === null || v === undefined) return '\u2013';
    return (v >= 0 ? '+' : '') + Number(v).toFixed(4);
  }
  var causalByLabel = {};
  if (data.causal && $('causal-table')) {
    var cc = data.causal;
    $('causal-summary').textContent = cc.ablation + ' ablation of each label\'s heads against ' + cc.random_sets +
        ' random head sets of the same size (seed ' + cc.seed + '); supported when p < ' + cc.alpha +
        ' and the effect is above the random mean. ' + cc.units + (cc.units === 1 ? ' unit, ' : ' units, ') +
        cc.tokens + ' scored tokens.';
    var ct = $('causal-table');
    var chr = el('tr');
    ['label', 'heads', 'verdict', 'effect', 'label vs random sets', 'random mean \u00b1 sd', 'z', 'p',
     'tokens (phenomenon / other)', 'note'].forEach(function (t) { chr.appendChild(el('th', null, t)); });
    ct.appendChild(chr);
    cc.labels.forEach(function (c) {
      causalByLabel[c.label] = c;
      var r = el('tr'); r.setAttribute('data-label', c.label);
      var tdl = el('td'); var pl = el('span', 'pill', c.label); pl.style.background = rgb(c.label); tdl.appendChild(pl);
      r.appendChild(tdl);
      r.appendChild(el('td', 'heads', c.heads.length ? c.heads.map(function (h) { return h.layer + '.' + h.head; }).join(' ') : 'none'));
      r.appendChild(el('td', 'verdict ' + c.verdict.replace(' ', '-'), c.verdict));
      r.appendChild(el('td', 'num', signed4(c.effect)));
      var tds = el('td'); var cv = el('canvas'); cv.width = 1; cv.height = 1; tds.appendChild(cv); r.appendChild(tds);
      r.appendChild(el('td', 'num', c.random_mean === null ? '\u2013' : signed4(c.random_mean) + ' \u00b1 ' + fmt(c.random_sd, 4)));
      r.appendChild(el('td', 'num', c.z === null ? '\u2013' : fmt(c.z, 2)));
      r.appendChild(el('td', 'num', c.p_value === null ? '\u2013' : fmt(c.p_value, 4)));
      r.appendChild(el('td', 'num', c.phenomenon_tokens + ' / ' + c.other_tokens));
      r.appendChild(el('td', 'note', c.reason));
      ct.appendChild(r);
      drawStrip(cv, c);
    });
  }

  if (data.heads.length) {
    var first = 0;  // open on the most confident assigned head, else the first
    data.heads.forEach(function (h, i) {
      var f = data.heads[first];
      if (h.label !== 'unassigned' && (f.label === 'unassigned' || (h.confidence || 0) > (f.confidence || 0))) first = i;
    });
    select(first);
  } else {
    draw();
  }
  document.documentElement.setAttribute('data-headlens-ready', '1');
})();
)HLJS";

/// Records uncaught errors and console.error calls into `window.headlensErrors` (first script on the page, so it
/// also sees a syntax error of the main script).
inline constexpr std::string_view html_report_error_recorder = R"HLJS(
window.headlensErrors = [];
window.addEventListener('error', function (e) {
  window.headlensErrors.push('error: ' + (e.message || (e.target && e.target.tagName) || 'unknown'));
}, true);
window.addEventListener('unhandledrejection', function (e) { window.headlensErrors.push('rejection: ' + e.reason); });
(function () {
  var original = console.error;
  console.error = function () {
    window.headlensErrors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
})();
)HLJS";

}  // namespace detail

/// Writes `report` as one self-contained HTML page (see the file comment) with the example sentences of `maps`
/// (none is allowed: the page then shows the grid, labels and evidence only). Throws `shape_error` when an
/// example's `maps` does not hold layers * heads * n * n values, `argument_error` when an example has no token or
/// fewer than 1 layer or head, or `options.decimals` is outside 1..6. Nothing is written when it throws.
inline void write_html(std::ostream& out, const head_report& report, const html_maps& maps = {},
                       const html_options& options = {}) {
  if (options.decimals < 1 || options.decimals > 6) {
    detail::fail<argument_error>("write_html: options.decimals is ", options.decimals, ", expected 1 to 6");
  }
  for (std::size_t k = 0; k < maps.examples.size(); ++k) {
    const html_example& e = maps.examples[k];
    if (e.layers < 1 || e.heads < 1) {
      detail::fail<argument_error>("write_html: example ", k, " ('", e.title, "') has ", e.layers, " layers x ",
                                   e.heads, " heads, expected at least 1 x 1");
    }
    if (e.tokens.empty()) detail::fail<argument_error>("write_html: example ", k, " ('", e.title, "') has no token");
    const std::size_t n = e.tokens.size();
    const std::size_t expected = static_cast<std::size_t>(e.layers) * static_cast<std::size_t>(e.heads) * n * n;
    if (e.maps.size() != expected) {
      detail::fail<shape_error>("write_html: example ", k, " ('", e.title, "') has ", e.maps.size(),
                                " map values, expected layers x heads x n x n = ", e.layers, " x ", e.heads, " x ", n,
                                " x ", n, " = ", expected);
    }
  }
  double scale = 1;
  for (int d = 0; d < options.decimals; ++d) scale *= 10;

  int head_count = 0;
  for (const head_verdict& v : report.heads) head_count = std::max(head_count, v.head + 1);

  // The data, as JSON safe inside <script> (every string through json_string_literal).
  std::string json;
  json.reserve(4096);
  json += "{\"policy\":" + detail::json_string_literal(report.policy);
  json += ",\"layer_count\":" + std::to_string(report.layer_count);
  json += ",\"head_count\":" + std::to_string(head_count);
  json += ",\"scale\":" + detail::html_json_number(scale);
  json += ",\"heads\":[";
  for (std::size_t i = 0; i < report.heads.size(); ++i) {
    const head_verdict& v = report.heads[i];
    if (i) json += ',';
    append_verdict_json(json, v);  // the schema of the JSON report (analysis/verdict_json.hpp)
  }
  json += "],\"layers\":[";
  for (std::size_t i = 0; i < report.layers.size(); ++i) {
    if (i) json += ',';
    json += "{\"layer\":" + std::to_string(report.layers[i].layer) +
            ",\"counts\":" + detail::html_json_counts(report.layers[i].counts) + "}";
  }
  json += "],\"bands\":[";
  bool first_band = true;
  for (const band_summary& band : report.bands) {
    if (band.last_layer < band.first_layer) continue;  // no layer in this band (a model of 1 or 2 layers)
    if (!first_band) json += ',';
    first_band = false;
    json += "{\"name\":" + detail::json_string_literal(band.name) + ",\"first\":" + std::to_string(band.first_layer) +
            ",\"last\":" + std::to_string(band.last_layer) + ",\"counts\":" + detail::html_json_counts(band.counts) +
            "}";
  }
  json += "],\"model\":" + detail::html_json_counts(report.model);
  json += ",\"examples\":[";
  for (std::size_t k = 0; k < maps.examples.size(); ++k) {
    const html_example& e = maps.examples[k];
    if (k) json += ',';
    json += "{\"title\":" + detail::json_string_literal(e.title) + ",\"layers\":" + std::to_string(e.layers) +
            ",\"heads\":" + std::to_string(e.heads) + ",\"tokens\":[";
    for (std::size_t t = 0; t < e.tokens.size(); ++t) {
      if (t) json += ',';
      json += detail::json_string_literal(e.tokens[t]);
    }
    json += "],\"note\":" + detail::json_string_literal(e.note) + ",\"maps\":[";
    for (std::size_t i = 0; i < e.maps.size(); ++i) {
      if (i) json += ',';
      const double value = static_cast<double>(e.maps[i]);
      json += std::to_string(std::isfinite(value) ? static_cast<long long>(std::llround(value * scale)) : 0LL);
    }
    json += "]}";
  }
  json += "]";
  if (report.causal) {
    json += ",\"causal\":";
    detail::append_causal_json(json, *report.causal);
  }
  json += "}";

  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<meta name=\"generator\" content=\"headlens\">\n"
      << "<title>" << detail::html_escape(options.title) << "</title>\n"
      << "<script>" << detail::html_report_error_recorder << "</script>\n"
      << "<style>" << detail::html_report_css << "</style>\n</head>\n<body>\n<header>\n"
      << "<h1>" << detail::html_escape(options.title) << "</h1>\n";
  if (!options.note.empty()) out << "<p class=\"note\">" << detail::html_escape(options.note) << "</p>\n";
  out << "<p class=\"summary\" id=\"summary\"></p>\n<div class=\"legend\" id=\"legend\"></div>\n</header>\n<main>\n"
      << "<section id=\"grid-panel\">\n<h2>Heads by layer</h2>\n<div class=\"grid\" id=\"grid\"></div>\n"
      << "<p class=\"hint\">Click a head to see its evidence and its attention.</p>\n"
      << "<noscript><p>This report needs JavaScript to draw; the data is in the headlens-data element.</p></noscript>\n"
      << "</section>\n<section id=\"detail\">\n"
      << "<h2><span id=\"detail-title\">No head selected</span> <span class=\"pill\" id=\"detail-label\"></span> "
      << "<span class=\"hint\" id=\"detail-confidence\"></span></h2>\n"
      << "<p class=\"reason\" id=\"detail-reason\" style=\"display:none\"></p>\n"
      << (report.causal ? "<p class=\"hint\" id=\"detail-causal\"></p>\n" : "")
      << "<table class=\"scores\" id=\"scores\"></table>\n"
      << "<h3>Attention</h3>\n<div class=\"controls\">\n"
      << "<label>Sentence <select id=\"example\"></select></label>\n<span>"
      << "<label><input type=\"radio\" name=\"view\" value=\"both\" checked> both</label> "
      << "<label><input type=\"radio\" name=\"view\" value=\"lines\"> lines</label> "
      << "<label><input type=\"radio\" name=\"view\" value=\"heatmap\"> heatmap</label></span>\n</div>\n"
      << "<div class=\"views\">\n<figure><figcaption>from (query) &rarr; to (key)</figcaption>"
      << "<canvas id=\"lines\" width=\"1\" height=\"1\"></canvas></figure>\n"
      << "<figure><figcaption>heatmap: rows from, columns to</figcaption>"
      << "<canvas id=\"heatmap\" width=\"1\" height=\"1\"></canvas></figure>\n</div>\n"
      << "<p class=\"caption\" id=\"map-caption\"></p>\n"
      << "<h3>Evidence</h3>\n<table id=\"evidence\"></table>\n</section>\n";
  if (report.causal) {
    out << "<section id=\"causal\">\n<h2>Causal check of the labels</h2>\n"
        << "<p class=\"hint\" id=\"causal-summary\"></p>\n<table id=\"causal-table\"></table>\n"
        << "<p class=\"hint\">Effect: the mean loss change on the tokens of the label&rsquo;s phenomenon minus that on "
        << "the other tokens (positional: on every token) when the label&rsquo;s heads are ablated. p: the share of "
        << "random head sets, counting the label&rsquo;s own, whose effect is at least as large. A supported label "
        << "is evidence that the model uses those heads for the phenomenon, not a full account of what they do.</p>\n"
        << "</section>\n";
  }
  out << "</main>\n"
      << "<script type=\"application/json\" id=\"headlens-data\">" << json << "</script>\n"
      << "<script>" << detail::html_report_js << "</script>\n</body>\n</html>\n";
}

}  // namespace headlens
