// `headlens sparsity`: what sparse attention costs a model (issue 11 §4). Every head keeps only the k largest
// weights of each row (--top-k K) or the weights of at least tau (--threshold TAU), renormalised
// (kernels/attention_sparsity.hpp); for each head, the share of attention weights dropped, the attention mass kept
// and the relative error of its output against dense attention (kernels/sparsity_statistics.hpp), and for the model
// the change in the task loss against dense attention over a corpus (the loss of `headlens importance`).
//
//   headlens sparsity [--model PATH [--tokenizer PATH]] [--conllu FILE | --text FILE] [--context sentence|window]
//                     [--window N] [--stride N] [--max-units N] (--top-k K | --threshold TAU)
//                     [--format table|json] [--out FILE] [--quiet]

#include <cmath>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <headlens/kernels/attention_sparsity.hpp>
#include <headlens/kernels/sparsity_statistics.hpp>
#include <nlohmann/json.hpp>

#include "ablation_input.hpp"
#include "command.hpp"
#include "corpus_input.hpp"
#include "model_loading.hpp"
#include "output_file.hpp"

namespace {

using headlens_cli::fail;

struct sparsity_args {
  std::string model, tokenizer, format = "table", out;
  headlens_cli::corpus_input input;
  headlens_cli::ablation_input units;
  std::optional<headlens::Index> top_k;
  std::optional<double> threshold;
  bool quiet = false;
};

void run_sparsity(const sparsity_args& args) {
  if (args.top_k.has_value() == args.threshold.has_value()) fail("give --top-k K or --threshold TAU (one of them)");
  headlens::attention_sparsity sparsity;
  std::string setting;
  if (args.top_k) {
    sparsity.mode = headlens::sparsity_mode::top_k;
    sparsity.k = *args.top_k;
    setting = "top-k " + std::to_string(*args.top_k);
  } else {
    sparsity.mode = headlens::sparsity_mode::threshold;
    sparsity.tau = *args.threshold;
    std::ostringstream text;
    text << "threshold " << *args.threshold;
    setting = text.str();
  }
  sparsity.validate();
  const headlens_cli::corpus corpus = args.input.load();
  const std::unique_ptr<headlens::attention_model> model =
      headlens_cli::load_model(args.model, args.tokenizer, args.units.add_bos());
  if (!args.quiet) {
    std::cerr << "headlens sparsity: " << model->description() << ", " << setting << ", text " << corpus.source
              << "\n";
  }
  headlens_cli::ablation_setup setup = args.units.prepare(*model, corpus.documents, false, args.quiet, "sparsity");

  // Each unit: the dense run is the reference, the sparse run (reported per head) is `losses` of no head ablated.
  headlens::sparsity_statistics report;
  setup.target_options.reference = setup.target_options.forward;
  setup.target_options.forward.sparsity = sparsity;
  setup.target_options.forward.sparsity_report = &report;
  const std::size_t n = setup.units.units.size();
  const auto progress = headlens_cli::unit_progress("sparsity", "unit", args.quiet);
  const headlens::head_set none(model->heads_per_layer());
  double clean = 0, change = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const std::unique_ptr<headlens::ablation_target> target = setup.target(*model, setup.units.units[k]);
    const double dense = target->clean().sequence;
    const double sparse = target->losses(none, headlens::ablation::zero).sequence;
    clean += dense;
    change += sparse - dense;
    if (progress) progress(k + 1, n);
  }
  if (report.layers() == 0) {
    fail(model->description(), " ran without reporting any sparse head: its attention does not take sparse attention "
         "options");
  }
  clean /= double(n);
  change /= double(n);
  const double relative = clean > 0 ? change / clean : std::nan("");
  const headlens::head_sparsity all = report.total();

  headlens_cli::write_output(args.out, [&](std::ostream& out) {
    if (args.format == "json") {
      nlohmann::json heads = nlohmann::json::array();
      for (int l = 0; l < report.layers(); ++l) {
        for (headlens::Index h = 0; h < report.heads(l); ++h) {
          const headlens::head_sparsity& s = report.head(l, h);
          heads.push_back({{"layer", l},
                           {"head", h},
                           {"dropped", s.dropped_share()},
                           {"mass_kept", s.mean_mass_kept()},
                           {"output_error", s.output_error()},
                           {"skipped_key_tiles", s.skipped_tile_share()}});
        }
      }
      const nlohmann::json j = {{"model", model->description()},
                                {"corpus", corpus.source},
                                {"context", setup.units.describe()},
                                {"setting", setting},
                                {"units", n},
                                {"dense_loss", clean},
                                {"loss_change", change},
                                {"relative_loss_change", std::isnan(relative) ? nlohmann::json() : nlohmann::json(relative)},
                                {"dropped", all.dropped_share()},
                                {"mass_kept", all.mean_mass_kept()},
                                {"output_error", all.output_error()},
                                {"heads", heads}};
      out << j.dump(2) << "\n";
      return;
    }
    out << "sparse attention: " << model->description() << " on " << corpus.source << "\ncontext: "
        << setup.units.describe() << "\nsetting: " << setting
        << " (kept weights renormalised; kernels/attention_sparsity.hpp)\n";
    out << "task loss: dense " << clean << ", sparse " << clean + change << ", change " << change;
    if (!std::isnan(relative)) out << " (" << std::fixed << std::setprecision(3) << 100.0 * relative << "%)";
    out.unsetf(std::ios::floatfield);
    out << "\nall heads: " << std::fixed << std::setprecision(1) << 100.0 * all.dropped_share()
        << "% of weights dropped, " << 100.0 * all.mean_mass_kept() << "% of the mass kept, output error "
        << std::setprecision(4) << all.output_error() << "\n\nlayer  head  dropped  mass kept  output error\n";
    for (int l = 0; l < report.layers(); ++l) {
      for (headlens::Index h = 0; h < report.heads(l); ++h) {
        const headlens::head_sparsity& s = report.head(l, h);
        out << std::setw(5) << l << std::setw(6) << h << std::setw(8) << std::setprecision(1)
            << 100.0 * s.dropped_share() << "%" << std::setw(10) << 100.0 * s.mean_mass_kept() << "%"
            << std::setw(14) << std::setprecision(4) << s.output_error() << "\n";
      }
    }
  });
}

void setup_sparsity(CLI::App& app) {
  auto args = std::make_shared<sparsity_args>();
  CLI::App* sub = app.add_subcommand(
      "sparsity",
      "What sparse attention costs: keep only the k largest weights of each row (--top-k) or those of at least tau "
      "(--threshold), renormalised; per head the share of weights dropped, the mass kept and the output error, and "
      "the model's task-loss change against dense attention over a corpus.");
  sub->add_option("--model", args->model, headlens_cli::model_option_help());
  sub->add_option("--tokenizer", args->tokenizer, headlens_cli::tokenizer_option_help());
  args->input.add_options(sub, /*with_strict=*/false);
  args->units.add_options(sub);
  auto* k = sub->add_option("--top-k", args->top_k, "keep the K largest weights of each row")
                ->check(CLI::PositiveNumber);
  auto* t = sub->add_option("--threshold", args->threshold, "keep the weights of at least TAU (0 to 1)")
                ->check(CLI::Range(0.0, 1.0));
  k->excludes(t);
  sub->add_option("--format", args->format, "table (default) or json")->check(CLI::IsMember({"table", "json"}));
  sub->add_option("--out", args->out, "write the report to this file instead of stdout");
  sub->add_flag("--quiet", args->quiet, "no progress on stderr");
  sub->footer("Errors print one line, `headlens sparsity: <message>`, and exit with status 1 (2 for a malformed "
              "command line).");
  sub->callback([args] { run_sparsity(*args); });
}

const headlens_cli::register_command sparsity_command{"sparsity", setup_sparsity};

}  // namespace
