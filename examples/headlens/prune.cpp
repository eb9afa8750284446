// `headlens prune`: which heads a model can lose, and the smaller checkpoint without them. A greedy plan prunes, at
// each step, the head whose removal raises the corpus loss least given the heads already gone (re-measured as heads
// go; analysis/pruning_plan.hpp), until a share of the heads is gone or the loss would grow past a budget, and
// reports the curve of heads pruned against loss change. With --output, the Hugging Face checkpoint is written again
// without those heads (per-layer head counts in config.json; models/pruned_checkpoint.hpp); headlens loads it back,
// and its outputs equal the masked model's.
//
//   headlens prune [--model DIR [--tokenizer PATH]] [--conllu FILE | --text FILE] [--context sentence|window]
//                  [--window N] [--stride N] [--max-units N] (--share S | --loss-budget B | --absolute-budget A)
//                  [--remeasure-every K] [--min-heads-per-layer M] [--format table|json] [--out FILE]
//                  [--output DIR] [--quiet]
//
// The loss is the task loss of `headlens importance` (next-token cross-entropy for a decoder; 1 - cosine to the
// unablated output for an encoder or sentence embedder, whose clean loss is 0: use --absolute-budget there).

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <headlens/analysis/pruning_plan.hpp>
#include <headlens/analysis/pruning_plan_json.hpp>
#include <headlens/models/pruned_checkpoint.hpp>

#include "ablation_input.hpp"
#include "command.hpp"
#include "corpus_input.hpp"
#include "model_loading.hpp"
#include "output_file.hpp"

namespace {

using headlens_cli::fail;

struct prune_args {
  std::string model, tokenizer, format = "table", out, output;
  headlens_cli::corpus_input input;
  headlens_cli::ablation_input units;
  std::optional<double> share, loss_budget, absolute_budget;
  int remeasure_every = 1, min_heads_per_layer = 0;
  bool quiet = false;
};

void write_table(std::ostream& out, const headlens::pruning_plan& plan, const std::string& model,
                 const std::string& source, const std::string& context) {
  out << "pruning plan: " << model << " on " << source << "\ncontext: " << context << "\nclean loss "
      << plan.clean_loss << "; " << to_string(plan.kind) << " ablation, greedy, re-measured every "
      << plan.remeasure_every << " step(s); stopped by " << plan.stopped_by << " after " << plan.order.size()
      << " of " << plan.pruned.total_heads() << " heads (" << std::fixed << std::setprecision(1)
      << 100.0 * plan.share() << "%), " << plan.evaluations << " corpus evaluations\n";
  out.unsetf(std::ios::floatfield);
  out << std::setprecision(6) << "\npruned  head   loss        change      relative\n";
  for (const headlens::pruning_step& s : plan.curve) {
    out << std::left << std::setw(8) << s.heads_pruned << std::setw(7)
        << (s.heads_pruned == 0 ? std::string("-") : headlens::to_string(s.head)) << std::setw(12) << s.loss
        << std::setw(12) << s.loss_change;
    if (std::isnan(s.relative_change)) {
      out << "-";
    } else {
      out << std::fixed << std::setprecision(3) << 100.0 * s.relative_change << "%";
      out.unsetf(std::ios::floatfield);
    }
    out << std::setprecision(6) << "\n";
  }
}

void run_prune(const prune_args& args) {
  const int goals = int(args.share.has_value()) + int(args.loss_budget.has_value()) +
                    int(args.absolute_budget.has_value());
  if (goals == 0) fail("give --share, --loss-budget or --absolute-budget: where the plan stops");
  if (!args.output.empty() && args.model.empty()) {
    fail("--output needs --model DIR, a Hugging Face checkpoint directory (USE-lite cannot be written back)");
  }
  if (!args.output.empty() && !std::filesystem::is_directory(args.model)) {
    fail("--output needs --model to be a Hugging Face checkpoint directory; ", args.model, " is not a directory");
  }
  const headlens_cli::corpus corpus = args.input.load();
  const std::unique_ptr<headlens::attention_model> model =
      headlens_cli::load_model(args.model, args.tokenizer, args.units.add_bos());
  if (!args.quiet) std::cerr << "headlens prune: " << model->description() << ", text " << corpus.source << "\n";
  const headlens_cli::ablation_setup setup = args.units.prepare(*model, corpus.documents, false, args.quiet, "prune");

  // The plan measures many head sets on every unit: the targets (each unit's cached layer inputs) are held.
  std::vector<std::unique_ptr<headlens::ablation_target>> targets;
  for (const headlens::ablation_unit& u : setup.units.units) targets.push_back(setup.target(*model, u));
  headlens::pruning_options options;
  options.target_share = args.share;
  options.loss_budget = args.loss_budget;
  options.absolute_loss_budget = args.absolute_budget;
  options.remeasure_every = args.remeasure_every;
  options.min_heads_per_layer = args.min_heads_per_layer;
  if (!args.quiet) {
    options.progress = [](const headlens::pruning_progress& p) {
      if (p.candidate == 0) {
        std::cerr << "headlens prune: " << p.heads_pruned << " heads pruned, loss change " << p.loss_change << ", "
                  << p.evaluations << " evaluations\n";
      }
    };
  }
  const headlens::pruning_plan plan = headlens::plan_pruning(headlens::target_pointers(targets), options);

  std::optional<headlens::pruned_checkpoint_summary> written;
  if (!args.output.empty()) written = headlens::write_pruned_checkpoint(args.model, plan.pruned, args.output);

  headlens_cli::write_output(args.out, [&](std::ostream& out) {
    if (args.format == "json") {
      nlohmann::json j = headlens::to_json(plan);
      j["model"] = model->description();
      j["corpus"] = corpus.source;
      j["context"] = setup.units.describe();
      if (written) {
        j["checkpoint"] = {{"directory", args.output},
                           {"heads_per_layer", written->heads_per_layer},
                           {"kv_heads_per_layer", written->kv_heads_per_layer},
                           {"parameters_before", written->parameters_before},
                           {"parameters_after", written->parameters_after}};
      }
      out << j.dump(2) << "\n";
      return;
    }
    write_table(out, plan, model->description(), corpus.source, setup.units.describe());
    if (written) {
      out << "\nwrote " << args.output << ": " << written->parameters_after << " of " << written->parameters_before
          << " parameters; heads per layer";
      for (headlens::Index h : written->heads_per_layer) out << " " << h;
      out << "\n";
    }
  });
}

void setup_prune(CLI::App& app) {
  auto args = std::make_shared<prune_args>();
  CLI::App* sub = app.add_subcommand(
      "prune",
      "Plan which heads a model can lose: greedily prune the head whose removal raises the corpus loss least, "
      "re-measured as heads go, until a share of heads is gone or a loss budget would be exceeded; print the curve "
      "of heads pruned against loss change, and with --output write the smaller checkpoint.");
  sub->add_option("--model", args->model, headlens_cli::model_option_help());
  sub->add_option("--tokenizer", args->tokenizer, headlens_cli::tokenizer_option_help());
  args->input.add_options(sub, /*with_strict=*/false);
  args->units.add_options(sub);
  auto* share = sub->add_option("--share", args->share, "stop when this share of all heads (0 to 1) is pruned")
                    ->check(CLI::Range(0.0, 1.0));
  auto* budget = sub->add_option("--loss-budget", args->loss_budget,
                                 "stop before the relative loss change would exceed this (0.005: 0.5%)")
                     ->check(CLI::NonNegativeNumber);
  auto* absolute = sub->add_option("--absolute-budget", args->absolute_budget,
                                   "stop before the absolute loss change would exceed this (for an encoder or "
                                   "sentence embedder, whose loss is 0 unablated)")
                       ->check(CLI::NonNegativeNumber);
  share->excludes(budget)->excludes(absolute);
  budget->excludes(absolute);
  sub->add_option("--remeasure-every", args->remeasure_every,
                  "re-measure every remaining head every K steps (default 1; 0: rank once, a one-shot plan)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--min-heads-per-layer", args->min_heads_per_layer, "never prune a layer below this many heads")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--format", args->format, "table (default) or json (the plan and the whole curve)")
      ->check(CLI::IsMember({"table", "json"}));
  sub->add_option("--out", args->out, "write the report to this file instead of stdout");
  sub->add_option("--output", args->output,
                  "write the pruned checkpoint to this directory (a Hugging Face --model only): model.safetensors "
                  "cut to the heads kept, config.json with per-layer head counts, the tokenizer files");
  sub->add_flag("--quiet", args->quiet, "no progress on stderr");
  sub->footer("Heads are named layer.head, from 0. Errors print one line, `headlens prune: <message>`, and exit "
              "with status 1 (2 for a malformed command line).");
  sub->callback([args] { run_prune(*args); });
}

const headlens_cli::register_command prune_command{"prune", setup_prune};

}  // namespace
