// `headlens importance`: how much each attention head matters to its model (Michel et al. 2019): the change in the
// task loss when that head alone is ablated, over a corpus, with a 95% interval from the spread across documents and
// a check that the ranking of heads holds across halves of the corpus (analysis/head_importance.hpp).
//
//   headlens importance [--model PATH [--tokenizer PATH]] [--conllu FILE | --text FILE]
//                       [--context sentence|window] [--window N] [--stride N] [--max-units N]
//                       [--ablation zero|mean|both] [--format table|json|csv|md] [--out FILE] [--quiet]
//
// Task loss: next-token cross-entropy for a decoder; 1 - cosine to the unablated output for an encoder (per token)
// and a sentence embedder such as USE-lite (its sentence embedding). Each unit of context runs once unablated; an
// ablated run starts from the cached input of the lowest ablated layer, with the ablated head's work skipped
// (models/layered_ablation_target.hpp). Progress goes to stderr.

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <headlens/analysis/head_importance.hpp>
#include <headlens/analysis/head_importance_json.hpp>
#include <headlens/analysis/head_importance_report.hpp>

#include "ablation_input.hpp"
#include "command.hpp"
#include "corpus_input.hpp"
#include "model_loading.hpp"
#include "output_file.hpp"

namespace {

using headlens_cli::fail;

struct importance_args {
  std::string model, tokenizer, ablation = "both", format = "table", out;
  headlens_cli::corpus_input input;
  headlens_cli::ablation_input units;
  bool quiet = false;
};

void run_importance(const importance_args& args) {
  const headlens_cli::corpus corpus = args.input.load();
  const std::unique_ptr<headlens::attention_model> model =
      headlens_cli::load_model(args.model, args.tokenizer, args.units.add_bos());
  const bool mean = args.ablation != "zero";
  if (!args.quiet) {
    std::cerr << "headlens importance: " << model->description() << ", " << args.ablation << " ablation, text "
              << corpus.source << "\n";
  }
  const headlens_cli::ablation_setup setup = args.units.prepare(*model, corpus.documents, mean, args.quiet, "importance");
  const headlens::ablation_corpus ablation_corpus = headlens::make_ablation_corpus(
      setup.units, [&](const headlens::ablation_unit& u) { return setup.target(*model, u); });

  headlens::importance_options options;
  if (args.ablation == "zero") options.kinds = {headlens::ablation::zero};
  if (args.ablation == "mean") options.kinds = {headlens::ablation::mean};
  options.pass.progress = headlens_cli::unit_progress("importance", "unit", args.quiet);
  headlens::head_importance_result result = headlens::measure_head_importance(ablation_corpus, options);
  result.model = model->description();
  result.corpus = corpus.source;
  result.context = setup.units.describe();

  headlens_cli::write_output(args.out, [&](std::ostream& out) {
    if (args.format == "json") {
      headlens::write_json(out, result);
    } else if (args.format == "csv") {
      headlens::write_csv(out, result);
    } else if (args.format == "md") {
      headlens::write_markdown(out, result);
    } else {
      headlens::write_table(out, result);
    }
  });
}

void setup_importance(CLI::App& app) {
  auto args = std::make_shared<importance_args>();
  CLI::App* sub = app.add_subcommand(
      "importance",
      "How much each attention head matters: the change in the task loss (next-token cross-entropy for a decoder, "
      "1 - cosine to the unablated output for an encoder or sentence embedder) when that head alone is ablated, over "
      "a corpus, with a 95% interval across documents and a split-half check of the ranking.");
  sub->add_option("--model", args->model, headlens_cli::model_option_help());
  sub->add_option("--tokenizer", args->tokenizer, headlens_cli::tokenizer_option_help());
  args->input.add_options(sub, /*with_strict=*/false);
  args->units.add_options(sub);
  sub->add_option("--ablation", args->ablation,
                  "zero (the head's output removed), mean (its z replaced by its mean over the corpus) or both "
                  "(default)")
      ->check(CLI::IsMember({"zero", "mean", "both"}));
  sub->add_option("--format", args->format, "table (default), json (reads back), csv or md")
      ->check(CLI::IsMember({"table", "json", "csv", "md"}));
  sub->add_option("--out", args->out, "write the report to this file instead of stdout");
  sub->add_flag("--quiet", args->quiet, "no progress on stderr");
  sub->footer("Heads are named layer.head, from 0. Errors print one line, `headlens importance: <message>`, and exit "
              "with status 1 (2 for a malformed command line).");
  sub->callback([args] { run_importance(*args); });
}

const headlens_cli::register_command importance_command{"importance", setup_importance};

}  // namespace
