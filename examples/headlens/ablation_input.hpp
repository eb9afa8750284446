#pragma once
// What the `headlens` subcommands that ablate heads (importance, prune, classify --causal-check) share: the unit of
// context (--context sentence|window, --window, --stride), how many units to use (--max-units), and the model-backed
// ablation targets (analysis/ablation_target.hpp) with the head means that mean ablation needs.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <headlens/analysis/ablation_units.hpp>
#include <headlens/analysis/document.hpp>
#include <headlens/models/attention_model.hpp>

#include "command.hpp"

namespace headlens_cli {

/// The units of context an ablation runs on, with what a target needs, ready to make one target per unit.
struct ablation_setup {
  headlens::ablation_units units;
  std::optional<headlens::head_means> means;  ///< set when mean ablation was asked for
  headlens::ablation_target_options target_options;  ///< `means` is filled in by `target`

  /// The target of unit `u` on `model` (the model must outlive it).
  std::unique_ptr<headlens::ablation_target> target(const headlens::attention_model& model,
                                                    const headlens::ablation_unit& u) const {
    headlens::ablation_target_options options = target_options;
    options.means = means ? &*means : nullptr;
    return model.make_ablation_target(u.ids, options);
  }
};

/// --context, --window, --stride, --max-units.
struct ablation_input {
  std::string context = "sentence";
  headlens::Index window = 64, stride = 0;
  std::size_t max_units = 0;

  /// Whether the model's beginning-of-text token should come first: for sentences read alone (the issue's
  /// "after the model's beginning-of-text token where it has one", e.g. GPT-2's <|endoftext|>, which GPT-2's
  /// tokenizer does not add by itself); windows are read as classify reads them.
  std::optional<bool> add_bos() const {
    return context == "sentence" ? std::optional<bool>(true) : std::nullopt;
  }

  void add_options(CLI::App* sub) {
    sub->add_option("--context", context,
                    "the unit of context the model reads: sentence (default: each annotated sentence alone, after the "
                    "model's beginning-of-text token where it has one, e.g. GPT-2's <|endoftext|>) or window (documents in windows of --window "
                    "words, as classify reads them)")
        ->check(CLI::IsMember({"sentence", "window"}));
    sub->add_option("--window", window, "--context window: words per window (default 64, fitted to the model's context)")
        ->check(CLI::Range(headlens::Index(2), headlens::Index(1) << 20));
    sub->add_option("--stride", stride, "--context window: words between window starts (default: half the window)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--max-units", max_units,
                    "use only the first N units (sentences or windows) of the corpus, in document order (0: all)");
  }

  /// Cuts `documents` into units for `model` and, when `mean_ablation`, collects the heads' mean z over them
  /// (progress on stderr unless `quiet`). Throws `usage_error` when no unit is left.
  ablation_setup prepare(const headlens::attention_model& model, const std::vector<headlens::document>& documents,
                         bool mean_ablation, bool quiet, const char* command) const {
    headlens::ablation_unit_options options;
    options.context = headlens::context_unit_from_string(context);
    options.window = window;
    options.stride = stride;
    ablation_setup setup;
    setup.units = headlens::make_ablation_units(model, documents, options);
    if (max_units > 0 && setup.units.units.size() > max_units) setup.units.units.resize(max_units);
    if (setup.units.units.empty()) {
      fail("no unit of context to measure: every ", context, " was too short for the model (", setup.units.too_short,
           " left out)");
    }
    if (mean_ablation) {
      if (!quiet) {
        std::cerr << "headlens " << command << ": mean z of every head over " << setup.units.units.size()
                  << " units (for mean ablation)\n";
      }
      std::vector<std::vector<std::int32_t>> sequences;
      sequences.reserve(setup.units.units.size());
      for (const headlens::ablation_unit& u : setup.units.units) sequences.push_back(u.ids);
      setup.means = model.collect_head_means(sequences);
    }
    return setup;
  }
};

/// Progress on stderr every `every` units and at the end, unless `quiet`.
inline std::function<void(std::size_t, std::size_t)> unit_progress(const char* command, const char* what, bool quiet,
                                                                    std::size_t every = 20) {
  if (quiet) return {};
  return [command, what, every](std::size_t done, std::size_t total) {
    if (done % every == 0 || done == total) {
      std::cerr << "headlens " << command << ": " << what << " " << done << " / " << total << "\n";
    }
  };
}

}  // namespace headlens_cli
