// `headlens match`: which head of model B attends like which head of model A, on the same text. Both models run on
// every sentence; their maps become word-level maps (so different tokenizers compare); every pair of heads gets a
// similarity (mean over word rows of 1 - Jensen-Shannon divergence, see analysis/head_matching.hpp) and the
// Hungarian algorithm pairs the heads one to one for the largest total.
//
//   headlens match [--model A [--tokenizer PATH]] --model-b B [--tokenizer-b PATH] [--conllu FILE | --text FILE]
//                  [--max-sentences N] [--format table|json] [--out FILE]
//
// table: one line per matched pair (A's layer.head, B's layer.head, similarity, whether they are each other's best
// match), then a summary. json: {"model_a", "model_b", "sentences", "skipped_sentences", "heads_a", "heads_b",
// "pairs": [{"a", "b", "similarity", "best_for_a", "best_for_b", "mutual"}], "similarity": [[...]], "counts"}.
// The default model A is USE-lite and the default text the bundled GUM sample. Progress goes to stderr.

#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/head_matching.hpp>
#include <headlens/analysis/text_document.hpp>

#include "command.hpp"
#include "corpus_input.hpp"
#include "model_loading.hpp"
#include "output_file.hpp"

namespace {

using headlens_cli::fail;

struct match_args {
  std::string model, tokenizer, model_b, tokenizer_b, format = "table", out;
  headlens_cli::corpus_input input;
  headlens::Index max_sentences = 0;
};

void run_match(const match_args& args) {
  if (args.model_b.empty()) fail("--model-b is required: the model to match model A's heads against");
  if (args.max_sentences < 0) fail("--max-sentences is ", args.max_sentences, ", expected >= 0");
  const headlens_cli::corpus input = args.input.load();
  const std::vector<headlens::document>& documents = input.documents;
  const std::string& source = input.source;
  const std::unique_ptr<headlens::attention_model> a = headlens_cli::load_model(args.model, args.tokenizer);
  const std::unique_ptr<headlens::attention_model> b = headlens_cli::load_model(args.model_b, args.tokenizer_b);
  std::cerr << "headlens match: A = " << a->description() << ", B = " << b->description() << ", text " << source
            << "\n";
  headlens::head_comparison_options options;
  options.max_sentences = args.max_sentences;
  options.progress = [](std::size_t done, std::size_t total) {
    if (done % 20 == 0 || done == total) std::cerr << "  sentence " << done << " / " << total << "\n";
  };
  const headlens::head_similarity s = headlens::compare_heads(*a, *b, documents, options);
  const std::vector<headlens::head_match> pairs = headlens::match_heads(s);
  double total = 0;
  int mutual = 0;
  for (const headlens::head_match& m : pairs) {
    total += m.similarity;
    mutual += m.mutual() ? 1 : 0;
  }
  const double mean = pairs.empty() ? 0.0 : total / double(pairs.size());

  if (args.format == "json") {
    nlohmann::json list = nlohmann::json::array();
    for (const headlens::head_match& m : pairs) {
      list.push_back({{"a", headlens::head_label(m.a, s.heads_a)},
                      {"b", headlens::head_label(m.b, s.heads_b)},
                      {"similarity", m.similarity},
                      {"best_for_a", m.best_for_a},
                      {"best_for_b", m.best_for_b},
                      {"mutual", m.mutual()}});
    }
    nlohmann::json similarity = nlohmann::json::array(), counts = nlohmann::json::array();
    for (headlens::Index i = 0; i < s.similarity.rows(); ++i) {
      nlohmann::json row = nlohmann::json::array(), count_row = nlohmann::json::array();
      for (headlens::Index j = 0; j < s.similarity.cols(); ++j) {
        row.push_back(s.similarity(i, j));
        count_row.push_back(s.counts(i, j));
      }
      similarity.push_back(std::move(row));
      counts.push_back(std::move(count_row));
    }
    const nlohmann::json out = {
        {"model_a", a->description()},
        {"model_b", b->description()},
        {"text", source},
        {"similarity_definition", "mean over word rows of 1 - Jensen-Shannon divergence (bits) between the two heads' "
                                  "word-level attention rows, restricted to the words both models can attend to and "
                                  "renormalised"},
        {"sentences", s.sentences},
        {"skipped_sentences", s.skipped_sentences},
        {"heads_a", {{"layers", s.layers_a}, {"heads", s.heads_a}}},
        {"heads_b", {{"layers", s.layers_b}, {"heads", s.heads_b}}},
        {"mean_matched_similarity", mean},
        {"mutual_pairs", mutual},
        {"pairs", std::move(list)},
        {"similarity", std::move(similarity)},
        {"counts", std::move(counts)}};
    headlens_cli::write_output(args.out, [&](std::ostream& o) { o << out.dump(2) << "\n"; });
    return;
  }
  headlens_cli::write_output(args.out, [&](std::ostream& o) {
    o << "# A: " << a->description() << "\n# B: " << b->description() << "\n# " << s.sentences
      << " sentences compared (" << s.skipped_sentences << " skipped) from " << source << "\n";
    o << std::left << std::setw(8) << "A" << std::setw(8) << "B" << std::setw(12) << "similarity"
      << "mutual\n";
    for (const headlens::head_match& m : pairs) {
      o << std::setw(8) << headlens::head_label(m.a, s.heads_a) << std::setw(8) << headlens::head_label(m.b, s.heads_b)
        << std::setw(12) << std::fixed << std::setprecision(4) << m.similarity
        << (m.mutual() ? "yes" : m.best_for_a ? "A's best" : m.best_for_b ? "B's best" : "no") << "\n";
    }
    o << pairs.size() << " pairs, mean similarity " << std::fixed << std::setprecision(4) << mean << ", " << mutual
      << " mutual best matches\n";
  });
}

void setup_match(CLI::App& app) {
  auto args = std::make_shared<match_args>();
  CLI::App* sub = app.add_subcommand(
      "match",
      "Pair the attention heads of two models one to one by how alike they attend on the same text: word-level "
      "maps (so different tokenizers compare), similarity = mean over word rows of 1 - Jensen-Shannon divergence, "
      "optimal pairing by the Hungarian algorithm. A similarity of maps is correlational, not proof that two heads "
      "do the same job.");
  sub->add_option("--model", args->model, std::string("model A: ") + headlens_cli::model_option_help());
  sub->add_option("--tokenizer", args->tokenizer,
                  std::string("a tokenizer for model A other than its own: ") + headlens_cli::tokenizer_option_help());
  sub->add_option("--model-b", args->model_b, "model B (required), any kind --model takes");
  sub->add_option("--tokenizer-b", args->tokenizer_b, "a tokenizer for model B other than the one in its directory");
  args->input.add_options(sub, /*with_strict=*/false);
  sub->add_option("--max-sentences", args->max_sentences, "stop after this many compared sentences (0: all)");
  sub->add_option("--format", args->format, "table (default) or json (with the full similarity matrix)")
      ->check(CLI::IsMember({"table", "json"}));
  sub->add_option("--out", args->out, "write the result to this file instead of stdout");
  sub->footer("Heads are named layer.head, from 0. Errors print one line, `headlens match: <message>`, and exit "
              "with status 1 (2 for a malformed command line).");
  sub->callback([args] { run_match(*args); });
}

const headlens_cli::register_command match_command{"match", setup_match};

}  // namespace
