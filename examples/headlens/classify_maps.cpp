// `headlens classify-maps`: labels every head of a model that runs elsewhere, from attention maps dumped to .npy
// (e.g. from PyTorch) over the words of CoNLL-U documents.
//
//   headlens classify-maps --conllu DOC.conllu --maps MAPS.npy [--conllu DOC2.conllu --maps MAPS2.npy ...]
//                          [--policy annotated|heuristic] [--format table|json|csv|md] [--out FILE] [--causal]
//
// Matching rule: the documents of the --conllu files, taken in order (a file's documents in file order, a file
// without `# newdoc` being one document), are matched one to one with the --maps files in the order given. So each
// single-document file takes one --maps; a file holding three documents takes three consecutive --maps. Each MAPS is
// float32 or float64 of shape [layers, heads, W, W] over the W words (syntactic words: not multiword tokens, not
// empty nodes) of its document, rows summing to 1 (or 0 for a fully masked row); every MAPS has the same layers and
// heads. Any CoNLL-U file works: layers it lacks (no Entity= coreference, no Discourse= units, HEAD `_`) simply give
// no evidence for that category.

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
};

std::string shape_text(const std::vector<headlens::index>& shape) {
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

/// Adds one document's maps to the accumulator (created from the first maps file's layers and heads).
template <class Scalar>
void add_maps(const headlens::npy_array& array, const located_document& d, const headlens::feature_options& options,
              std::optional<headlens::model_feature_accumulator>& acc, std::string& first_maps) {
  const std::vector<headlens::index>& s = array.shape;
  const auto words = static_cast<headlens::index>(d.doc.words.size());
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
  headlens::feature_options options;
  options.causal = args.causal;
  for (std::size_t k = 0; k < docs.size(); ++k) {
    const headlens::npy_array array = headlens::read_npy(args.maps[k]);
    if (array.type == headlens::dtype::float32) {
      add_maps<float>(array, docs[k], options, acc, first_maps);
    } else if (array.type == headlens::dtype::float64) {
      add_maps<double>(array, docs[k], options, acc, first_maps);
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
  sub->add_option("--format", args->format, "table, json, csv or md (default table)")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}));
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
