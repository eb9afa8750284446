// `headlens classify-maps`: labels every head of a model that runs elsewhere, from attention maps dumped to .npy
// (e.g. from PyTorch) over the words of CoNLL-U documents.
//
//   headlens classify-maps --conllu DOC.conllu --maps MAPS.npy [--conllu DOC2.conllu --maps MAPS2.npy ...]
//                          [--policy annotated|heuristic] [--format table|json|csv|md|html] [--out FILE] [--causal]
//                          [--html-examples N] [--html-max-words N]
//
// Matching rule: the documents of the --conllu files, taken in order (a file's documents in file order, a file
// without `# newdoc` being one document), are matched one to one with the --maps files in the order given. So each
// single-document file takes one --maps; a file holding three documents takes three consecutive --maps. Each MAPS is
// float32 or float64 of shape [layers, heads, W, W] over the W words (syntactic words: not multiword tokens, not
// empty nodes) of its document, rows summing to 1 (or 0 for a fully masked row); every MAPS has the same layers and
// heads. Any CoNLL-U file works: layers it lacks (no Entity= coreference, no Discourse= units, HEAD `_`) simply give
// no evidence for that category.
//
// --format html writes one self-contained page (headlens/analysis/report_html.hpp) that embeds the attention of every
// head over a few example sentences: the first sentences of 3 to --html-max-words words, spread over the documents,
// each sentence's block of its document's maps (attention to words outside the sentence is not shown).

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/features.hpp>
#include <headlens/analysis/policies.hpp>
#include <headlens/analysis/report.hpp>
#include <headlens/analysis/report_html.hpp>
#include <headlens/analysis/report_json.hpp>
#include <headlens/io/npy.hpp>

#include "command.hpp"

namespace {

using headlens_cli::fail;

struct classify_maps_args {
  std::vector<std::string> conllu, maps;
  std::string policy = "annotated";
  std::string format = "table";
  std::string out;
  bool causal = false;
  std::size_t html_examples = 6;
  std::size_t html_max_words = 40;
};

std::string shape_text(const std::vector<headlens::Index>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

/// A document with where it came from, for messages.
struct located_document {
  headlens::document doc;
  std::string file;
  std::size_t index_in_file = 0;  // 0-based

  std::string name() const {
    std::string text = "document " + std::to_string(index_in_file + 1) + " of " + file;
    if (!doc.id.empty()) text += " ('" + doc.id + "')";
    return text;
  }
};

/// Adds up to `count` example sentences of `d` (5 to `max_words` words, in document order) to the HTML maps: each
/// sentence's diagonal block of the document's maps, every row renormalised to sum 1 within the sentence (a head
/// that spreads over the whole document would otherwise look empty); the page says how much of the attention
/// stayed inside the sentence.
template <class Scalar>
void add_html_examples(const headlens::tensor<Scalar>& maps, const located_document& d, std::size_t count,
                       std::size_t max_words, headlens::html_maps& out) {
  const headlens::Index layers = maps.shape[0], heads = maps.shape[1], words = maps.shape[2];
  std::size_t added = 0;
  for (std::size_t s = 0; s < d.doc.sentences.size() && added < count; ++s) {
    const headlens::sentence& sent = d.doc.sentences[s];
    const headlens::Index begin = sent.begin, n = sent.end - sent.begin;
    if (n < 5 || static_cast<std::size_t>(n) > max_words) continue;
    std::vector<std::string> tokens;
    std::string text;
    for (headlens::Index w = begin; w < sent.end; ++w) {
      tokens.push_back(d.doc.words[static_cast<std::size_t>(w)].form);
      if (!text.empty()) text += ' ';
      text += tokens.back();
    }
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    const std::string where = d.doc.id.empty() ? "document " + std::to_string(d.index_in_file + 1) : d.doc.id;
    std::vector<double> block(static_cast<std::size_t>(layers * heads * n * n));
    double inside = 0, rows = 0;
    for (headlens::Index lh = 0; lh < layers * heads; ++lh) {
      for (headlens::Index i = 0; i < n; ++i) {
        double* row = block.data() + (lh * n + i) * n;
        double sum = 0, total = 0;
        const Scalar* full = maps.data.data() + (lh * words + begin + i) * words;
        for (headlens::Index j = 0; j < words; ++j) total += static_cast<double>(full[j]);
        for (headlens::Index j = 0; j < n; ++j) sum += row[j] = static_cast<double>(full[begin + j]);
        if (sum > 0) {
          for (headlens::Index j = 0; j < n; ++j) row[j] /= sum;
        }
        if (total > 0) {
          inside += sum / total;
          rows += 1;
        }
      }
    }
    const int percent = rows > 0 ? static_cast<int>(100 * inside / rows + 0.5) : 0;
    out.add(where + ", sentence " + std::to_string(s + 1) + ": " + text, std::move(tokens), block.data(),
            static_cast<int>(layers), static_cast<int>(heads),
            "Rows are renormalised within the sentence: over all heads, " + std::to_string(percent) +
                "% of a word's attention stays inside it (the rest goes to other sentences of the document).");
    ++added;
  }
}

/// Adds one document's maps to the accumulator (created from the first maps file's layers and heads), and up to
/// `html_count` example sentences to `html` when it is given.
template <class Scalar>
void add_maps(const headlens::npy_array& array, const located_document& d, const headlens::feature_options& options,
              std::optional<headlens::model_feature_accumulator>& acc, std::string& first_maps,
              headlens::html_maps* html, std::size_t html_count, std::size_t html_max_words) {
  const std::vector<headlens::Index>& s = array.shape;
  const auto words = static_cast<headlens::Index>(d.doc.words.size());
  if (s.size() != 4 || s[2] != s[3]) {
    fail("maps ", array.source, " have shape ", shape_text(s), ", expected [layers, heads, W, W]");
  }
  if (s[0] < 1 || s[1] < 1)
    fail("maps ", array.source, " have shape ", shape_text(s), ", expected at least 1 layer and 1 head");
  if (s[2] != words) {
    fail("maps ", array.source, " are over W = ", s[2], " words, but ", d.name(), " has ", words,
         " words (count the integer-ID lines; multiword tokens and empty nodes are not words)");
  }
  if (!acc) {
    acc.emplace(static_cast<int>(s[0]), static_cast<int>(s[1]), options);
    first_maps = array.source;
  } else if (s[0] != acc->layers() || s[1] != acc->heads()) {
    fail("maps ", array.source, " have ", s[0], " layers x ", s[1], " heads, expected ", acc->layers(), " x ",
         acc->heads(), " as in ", first_maps);
  }
  const headlens::tensor<Scalar> maps = headlens::as_tensor<Scalar>(array);
  const headlens::prepared_document prepared(d.doc);
  try {
    acc->add(maps, prepared);
  } catch (const headlens::error& e) {
    std::string what = e.what();
    if (what.rfind("headlens: ", 0) == 0) what.erase(0, 10);
    fail("maps ", array.source, " (", d.name(), "): ", what);
  }
  if (html != nullptr && html_count > 0) add_html_examples(maps, d, html_count, html_max_words, *html);
}

void run_classify_maps(const classify_maps_args& args) {
  // Every input is checked before any output is written.
  std::vector<located_document> docs;
  for (const std::string& path : args.conllu) {
    std::vector<headlens::document> in_file = headlens::read_conllu(path);
    if (in_file.empty()) fail("--conllu ", path, " holds no document (no sentence)");
    for (std::size_t i = 0; i < in_file.size(); ++i) docs.push_back({std::move(in_file[i]), path, i});
  }
  if (docs.size() != args.maps.size()) {
    fail("the --conllu files hold ", docs.size(), " document", docs.size() == 1 ? "" : "s", " but ", args.maps.size(),
         " --maps file", args.maps.size() == 1 ? " was" : "s were",
         " given; give one --maps per document, in order (a file's documents in file order)");
  }

  std::optional<headlens::model_feature_accumulator> acc;
  std::string first_maps;
  // HTML examples: spread over the documents, ceil(N / documents) from each until N are taken.
  headlens::html_maps html;
  headlens::html_maps* html_out = args.format == "html" ? &html : nullptr;
  const std::size_t html_per_doc = (args.html_examples + docs.size() - 1) / docs.size();
  headlens::feature_options options;
  options.causal = args.causal;
  for (std::size_t k = 0; k < docs.size(); ++k) {
    const headlens::npy_array array = headlens::read_npy(args.maps[k]);
    if (array.type == headlens::dtype::float32) {
      add_maps<float>(array, docs[k], options, acc, first_maps, html_out,
                      std::min(html_per_doc, args.html_examples - html.examples.size()), args.html_max_words);
    } else if (array.type == headlens::dtype::float64) {
      add_maps<double>(array, docs[k], options, acc, first_maps, html_out,
                       std::min(html_per_doc, args.html_examples - html.examples.size()), args.html_max_words);
    } else {
      fail("maps ", array.source, " have dtype ", headlens::dtype_name(array.type), ", expected float32 or float64");
    }
  }

  const std::vector<headlens::head_evidence> evidence = acc->evidence();
  std::vector<headlens::head_verdict> verdicts;
  if (args.policy == "heuristic") {
    verdicts = headlens::classify_heads(headlens::heuristic_policy(), evidence);
  } else {
    verdicts = headlens::classify_heads(headlens::annotated_policy(), evidence);
  }
  const headlens::head_report report = headlens::make_report(std::move(verdicts), args.policy);

  std::ofstream file;
  if (!args.out.empty()) {
    file.open(args.out, std::ios::binary);
    if (!file) fail("cannot open ", args.out, " for writing");
  }
  std::ostream& out = args.out.empty() ? std::cout : file;
  if (args.format == "json") {
    headlens::write_json(out, report);
  } else if (args.format == "csv") {
    headlens::write_csv(out, report);
  } else if (args.format == "md") {
    headlens::write_markdown(out, report);
  } else if (args.format == "html") {
    headlens::html_options html_options;
    html_options.title = "headlens head report (" + args.policy + " policy)";
    html_options.note = std::to_string(docs.size()) + (docs.size() == 1 ? " document" : " documents") + " from " +
                        args.conllu.front() + (args.conllu.size() > 1 ? " and more" : "") + "; maps from " +
                        args.maps.front() + (args.maps.size() > 1 ? " and more" : "");
    headlens::write_html(out, report, html, html_options);
  } else {
    headlens::write_table(out, report);
  }
  out.flush();
  if (!out) fail("could not write the report", args.out.empty() ? std::string() : " to " + args.out);
}

void setup_classify_maps(CLI::App& app) {
  auto args = std::make_shared<classify_maps_args>();
  CLI::App* sub = app.add_subcommand(
      "classify-maps",
      "Label every attention head (syntactic, coreference, discourse, positional or unassigned, with the reason) "
      "from word-level attention maps over annotated CoNLL-U documents, e.g. maps dumped from PyTorch.");
  sub->add_option("--conllu", args->conllu,
                  "CoNLL-U file(s); their documents, in order, are matched one to one with the --maps files (a file "
                  "with several `# newdoc` documents takes that many consecutive --maps). Any CoNLL-U works: missing "
                  "layers (coreference, discourse, dependencies) just give no evidence")
      ->required()
      ->take_all();
  sub->add_option("--maps", args->maps,
                  "MAPS.npy per document, float32 or float64, shape [layers, heads, W, W] over the document's W words "
                  "(rows sum to 1, or 0 for a fully masked row); the same layers and heads in every file")
      ->required()
      ->take_all();
  sub->add_option("--policy", args->policy,
                  "annotated (margins over the literature's baselines, using the annotations) or heuristic (no "
                  "annotations: positional, long-range discourse, sink and broad heads only). Default annotated")
      ->check(CLI::IsMember({"annotated", "heuristic"}));
  sub->add_option("--format", args->format,
                  "table, json, csv, md or html (default table); html is one self-contained page with the attention "
                  "of every head over a few example sentences")
      ->check(CLI::IsMember({"table", "json", "csv", "md", "html"}));
  sub->add_option("--html-examples", args->html_examples,
                  "with --format html: how many example sentences the page embeds (default 6; 0 for none)");
  sub->add_option("--html-max-words", args->html_max_words,
                  "with --format html: longest example sentence, in words (default 40)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--out", args->out, "write the report to FILE instead of standard output");
  sub->add_flag("--causal", args->causal,
                "the maps come from a causal (decoder) model: row i has i + 1 keys, which sets the entropy normaliser");
  sub->footer(
      "Errors print one line, `headlens classify-maps: <message>`, and exit with status 1 (2 for a malformed "
      "command line). Report formats: docs/report-schema.md; policies: docs/policies.md.");
  sub->callback([args] { run_classify_maps(*args); });
}

const headlens_cli::register_command classify_maps_command{"classify-maps", setup_classify_maps};

}  // namespace
