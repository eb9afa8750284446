#pragma once
/// \file
/// The main job as a library call: what each attention head of a model does, measured on a corpus.
///
///   documents (CoNLL-U, or plain text through `document_from_text`)
///    -> windows of words, each fitted to the model's context (`fit_windows`), tokenised once
///    -> the model's attention over each window, turned into word-level rows (to a word: the sum over its tokens;
///       from a word: the mean of its tokens' rows)
///    -> per-head features (`model_feature_accumulator`, exact fixed-point totals, mergeable across threads,
///       processes or MPI ranks) -> evidence -> a policy's verdicts -> a report.
///
/// ```
/// auto model = headlens::load_attention_model("path/to/model");
/// const headlens::head_analysis analysis(*model, headlens::read_conllu("corpus.conllu"));
/// const headlens::head_measurements measured = analysis.measure();
/// const auto verdicts = headlens::classify_heads(headlens::annotated_policy(), measured.features.evidence());
/// headlens::write_table(std::cout, headlens::make_report(verdicts, "annotated"));
/// ```
/// Short windows of similar length run several to a forward (`analysis_options::batch_tokens`).
/// `measure(shard, shards)` measures every `shards`-th batch only, so a corpus can be split across processes;
/// `head_measurements::merge` then adds the parts exactly (bit for bit whatever the split). Needs nlohmann_json
/// (through models/attention_model.hpp).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iomanip>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "headlens/analysis/alignment.hpp"
#include "headlens/analysis/document.hpp"
#include "headlens/analysis/features.hpp"
#include "headlens/analysis/streaming_features.hpp"
#include "headlens/error.hpp"
#include "headlens/kernels/parallel.hpp"
#include "headlens/models/attention_model.hpp"
#include "headlens/detail/number_text.hpp"

namespace headlens {

/// How `head_analysis` cuts documents into windows.
struct analysis_options {
  /// Words per window; a window whose words make more tokens than the model sees is narrowed, or split, to fit.
  Index window = 64;
  /// Words between window starts; 0: half the window.
  Index stride = 0;
  /// How features are measured (sinks apart or not, the row tolerance); `causal` is always the model's own.
  feature_options features;
  /// Measure from materialised [T x T] maps (`attention_model::attention`) instead of inside the streaming kernel
  /// (`observe_attention`, the default): the reference the streaming path is tested against.
  bool materialise = false;
  /// Threads (0: OpenMP's default): over batches of windows when they are short and many, else inside the kernels.
  Index threads = 0;
  /// Windows of at most half this many tokens go several to a forward (`attention_model::observe_attention_batch`),
  /// windows of similar length together, padded to the longest, up to this many token rows: the products of a
  /// 64-token window run at about 70% of the speed of a 256-token one. 0: one window per forward. The batches
  /// depend on the windows' lengths alone (not on threads or shards), so the results do too.
  Index batch_tokens = 256;
  /// Called after each measured window (from any thread, one call at a time) with (windows done, windows to do in this
  /// shard).
  std::function<void(std::size_t, std::size_t)> progress;
};

/// What the plan of a corpus holds (the same in every shard).
struct corpus_plan_counts {
  std::size_t documents = 0;         ///< documents with at least one word
  std::size_t words = 0;             ///< words of those documents
  std::size_t windows = 0;           ///< windows after fitting
  std::size_t refitted_windows = 0;  ///< windows narrowed or split to fit the model's context
  dangling_links dangling;           ///< links the reader dropped as leaving their document (excerpts)
};

/// What the measured windows add up to; exact under `merge` in any order (the dropped mass is fixed point).
struct window_counts {
  std::size_t windows = 0;               ///< windows measured
  std::size_t tokens = 0;                ///< tokens the model saw
  std::size_t clipped_windows = 0;       ///< windows of one word longer than the model's context, cut
  std::size_t words_without_tokens = 0;  ///< owned words with no token of their own (not measured)
  /// Per window, the mean over heads and owned words with tokens of the mass their rows put on tokens of no word
  /// (`word_attention::dropped_mass`), 2^-32 fixed point, summed over windows.
  std::int64_t dropped_mass = 0;

  /// The mean over windows of the dropped mass (0 without windows).
  double mean_dropped_mass() const noexcept {
    return windows == 0 ? 0.0 : static_cast<double>(dropped_mass) / detail::feature_mass_scale / double(windows);
  }
  void merge(const window_counts& o) noexcept {
    windows += o.windows;
    tokens += o.tokens;
    clipped_windows += o.clipped_windows;
    words_without_tokens += o.words_without_tokens;
    dropped_mass += o.dropped_mass;
  }
  bool operator==(const window_counts& o) const noexcept {
    return windows == o.windows && tokens == o.tokens && clipped_windows == o.clipped_windows &&
           words_without_tokens == o.words_without_tokens && dropped_mass == o.dropped_mass;
  }
};

/// The features of every head and the counts of the windows they came from.
struct head_measurements {
  model_feature_accumulator features;
  window_counts counts;

  /// Adds another shard's measurements (exact). Throws `argument_error` when the models' shapes differ.
  void merge(const head_measurements& o) {
    features.merge(o.features);
    counts.merge(o.counts);
  }
};

/// One document of a corpus, prepared once: its text, its analysis layout and its fitted windows, each window's
/// tokens computed once.
struct planned_document {
  const document* source = nullptr;
  document_text surface;
  std::unique_ptr<prepared_document> prepared;
  std::vector<word_window> windows;
  std::vector<std::vector<model_token>> tokens;  ///< per window, not clipped
};

/// A window of a planned corpus: document `document` (an index into `head_analysis::documents()`), its window
/// `window`, and `order`, its place among all the corpus's windows.
struct planned_window {
  std::size_t document = 0, window = 0, order = 0;
};

/// The whole job over a corpus for one model: plans the windows at construction (tokenising each once) and the
/// batches they run in, measures them on demand. The model and the documents must outlive it.
class head_analysis {
 public:
  /// Throws `argument_error` for a window below 2 words or a stride above the window, and when no document has a
  /// word; the tokenizer's errors (text that is not UTF-8, an unknown word of a word vocabulary).
  head_analysis(const attention_model& model, const std::vector<document>& documents, analysis_options options = {})
      : model_(model), options_(std::move(options)) {
    if (options_.window < 2) detail::fail<argument_error>("window is ", options_.window, ", expected at least 2 words");
    stride_ = options_.stride > 0 ? options_.stride : std::max<Index>(1, options_.window / 2);
    if (stride_ > options_.window) {
      detail::fail<argument_error>("stride is ", stride_, ", expected at most the window = ", options_.window);
    }
    if (options_.window > model_.max_tokens()) {
      detail::fail<argument_error>("window is ", options_.window, " words, but ", model_.description(),
                                   " sees at most ", model_.max_tokens(), " tokens; expected a window of at most ",
                                   model_.max_tokens(), " words");
    }
    for (const document& doc : documents) {
      if (doc.words.empty()) continue;
      plan(doc);
    }
    if (documents_.empty()) detail::fail<argument_error>("no document has a word, expected at least one word");
    plan_batches();
  }

  const attention_model& model() const noexcept { return model_; }
  Index window() const noexcept { return options_.window; }
  Index stride() const noexcept { return stride_; }
  const corpus_plan_counts& plan_counts() const noexcept { return plan_counts_; }
  const std::vector<planned_document>& documents() const noexcept { return documents_; }
  /// The batches the windows run in (see `analysis_options::batch_tokens`): each one forward, its windows of
  /// similar length; every window in exactly one. The same for every shard and thread count.
  const std::vector<std::vector<planned_window>>& batches() const noexcept { return batches_; }
  /// The ids window w of document d runs with: its tokens, clipped to the model's `max_tokens`.
  std::vector<std::int32_t> window_ids(const planned_window& w) const {
    std::vector<std::int32_t> ids = token_ids(documents_[w.document].tokens[w.window]);
    if (static_cast<Index>(ids.size()) > model_.max_tokens()) ids.resize(static_cast<std::size_t>(model_.max_tokens()));
    return ids;
  }

  /// The features of every head over batches k = shard, shard + shards, ... of `batches()`, with their counts.
  /// Short batches are measured several at once, one per thread (each merged exactly, so the result does not
  /// depend on the threads); long ones one at a time with every thread inside the kernels. Throws `argument_error`
  /// unless shard < shards; the model's errors (those of the earliest failing window, in corpus order).
  head_measurements measure(std::size_t shard = 0, std::size_t shards = 1) const {
    if (shards < 1 || shard >= shards) {
      detail::fail<argument_error>("shard is ", shard, " of ", shards, ", expected shard < shards");
    }
    std::vector<const std::vector<planned_window>*> todo;
    std::size_t windows = 0, longest = 0;
    for (std::size_t k = shard; k < batches_.size(); k += shards) {
      todo.push_back(&batches_[k]);
      windows += batches_[k].size();
      longest = std::max(longest, batch_rows(batches_[k]));
    }
    const int workers = window_workers(todo.size(), longest, detail::thread_count(options_.threads));
    std::vector<head_measurements> parts(std::size_t(workers), empty_measurements());
    std::vector<std::pair<std::size_t, std::exception_ptr>> errors(todo.size());
    std::mutex progress_lock;
    std::size_t done = 0;
    detail::parallel_for(Index(todo.size()), workers, [&](Index unit, int worker) {
#ifdef _OPENMP
      if (workers > 1) omp_set_num_threads(1);  // this thread's batch runs its kernels on this thread alone
#endif
      const std::vector<planned_window>& batch = *todo[std::size_t(unit)];
      try {
        measure_batch(batch, parts[std::size_t(worker)]);
      } catch (...) {
        std::size_t first = batch.front().order;
        for (const planned_window& w : batch) first = std::min(first, w.order);
        errors[std::size_t(unit)] = {first, std::current_exception()};
      }
      if (options_.progress) {
        const std::lock_guard<std::mutex> lock(progress_lock);
        options_.progress(done += batch.size(), windows);
      }
    });
    const std::pair<std::size_t, std::exception_ptr>* earliest = nullptr;
    for (const auto& e : errors) {
      if (e.second && (earliest == nullptr || e.first < earliest->first)) earliest = &e;
    }
    if (earliest != nullptr) std::rethrow_exception(earliest->second);
    head_measurements out = empty_measurements();
    for (const head_measurements& part : parts) out.merge(part);
    return out;
  }

  /// Batches of at most this many token rows are measured several at once when there are enough of them.
  static constexpr Index window_parallel_tokens = 2048;

  /// How many batches run at once, each on one thread, for `batches` batches of at most `longest` token rows on
  /// `threads` threads: all the threads when the batches are short and at least two per thread, else 1 (one batch
  /// at a time, every thread inside the kernels). `measure` follows it; a baseline that runs the same batches can.
  static int window_workers(std::size_t batches, std::size_t longest, int threads) noexcept {
    const bool by_batch =
        threads > 1 && batches >= 2 * std::size_t(threads) && longest <= std::size_t(window_parallel_tokens);
    return by_batch ? threads : 1;
  }

  /// Token rows of one forward over `batch`: its windows padded to the longest.
  std::size_t batch_rows(const std::vector<planned_window>& batch) const {
    std::size_t longest = 0;
    for (const planned_window& w : batch) longest = std::max(longest, clipped_tokens(w));
    return longest * batch.size();
  }

 private:
  std::size_t clipped_tokens(const planned_window& w) const {
    return std::min<std::size_t>(documents_[w.document].tokens[w.window].size(),
                                 static_cast<std::size_t>(model_.max_tokens()));
  }

  /// Windows by length (then corpus order); runs of them into batches of at most `batch_tokens` padded rows. A
  /// window of more than half of it, a window without tokens and every window of the materialised path run alone.
  void plan_batches() {
    std::vector<planned_window> all;
    for (std::size_t d = 0; d < documents_.size(); ++d) {
      for (std::size_t w = 0; w < documents_[d].windows.size(); ++w) all.push_back({d, w, all.size()});
    }
    const auto limit = static_cast<std::size_t>(std::max<Index>(options_.batch_tokens, 0));
    const auto alone = [&](const planned_window& w) {
      const std::size_t t = clipped_tokens(w);
      return options_.materialise || t == 0 || 2 * t > limit;
    };
    std::stable_sort(all.begin(), all.end(), [&](const planned_window& a, const planned_window& b) {
      return clipped_tokens(a) < clipped_tokens(b);
    });
    batches_.clear();
    for (const planned_window& w : all) {
      // Sorted by length, so w is the longest of the batch it joins.
      if (!alone(w) && !batches_.empty() && !alone(batches_.back().front()) &&
          (batches_.back().size() + 1) * clipped_tokens(w) <= limit) {
        batches_.back().push_back(w);
      } else {
        batches_.push_back({w});
      }
    }
  }

  head_measurements empty_measurements() const {
    feature_options features = options_.features;
    features.causal = model_.causal();
    return {model_feature_accumulator(int(model_.layers()), int(model_.heads()), features), {}};
  }

  void plan(const document& doc) {
    planned_document p;
    p.source = &doc;
    p.surface = document_surface_text(doc);
    p.prepared = std::make_unique<prepared_document>(doc);
    const std::vector<word_window> planned =
        make_windows(static_cast<Index>(doc.words.size()), options_.window, std::min(stride_, options_.window));
    // Fitting asks about several candidate spans; each answer's tokens are kept, so a window that fits is
    // tokenised once.
    std::map<std::pair<Index, Index>, std::vector<model_token>> seen;
    const auto tokens_of = [&](Index b, Index e) -> const std::vector<model_token>& {
      auto it = seen.find({b, e});
      if (it == seen.end()) it = seen.emplace(std::make_pair(b, e), model_.tokenize(span_text(p.surface, b, e))).first;
      return it->second;
    };
    p.windows = fit_windows(
        planned, [&](Index b, Index e) { return static_cast<Index>(tokens_of(b, e).size()) <= model_.max_tokens(); });
    for (const word_window& w : p.windows) {
      if (std::find(planned.begin(), planned.end(), w) == planned.end()) ++plan_counts_.refitted_windows;
      p.tokens.push_back(tokens_of(w.begin, w.end));
    }
    plan_counts_.windows += p.windows.size();
    plan_counts_.words += doc.words.size();
    plan_counts_.dangling.discourse += doc.dangling.discourse;
    plan_counts_.dangling.coreference += doc.dangling.coreference;
    ++plan_counts_.documents;
    documents_.push_back(std::move(p));
  }

  [[noreturn]] void out_of_memory(const planned_document& doc, std::size_t w) const {
    const Index T = std::min<Index>(static_cast<Index>(doc.tokens[w].size()), model_.max_tokens());
    const double gib = 1024.0 * 1024.0 * 1024.0;
    std::ostringstream what;
    what << std::setprecision(3);
    if (options_.materialise) {
      what << "maps of " << model_.layers() << " layers x " << model_.heads() << " heads x " << T << " x " << T
           << " tokens (" << double(model_.layers() * model_.heads()) * double(T) * double(T) * 4.0 / gib
           << " GiB of float)";
    } else {
      what << "the model's activations over " << T << " tokens";
    }
    detail::fail<budget_error>("out of memory measuring window ", w + 1, " of document '", doc.source->id, "' (words ",
                               doc.windows[w].begin, "..", doc.windows[w].end - 1, ", ", T,
                               " tokens) while allocating ", what.str(),
                               "; expected a shorter window (a smaller --window)",
                               options_.materialise ? " or the streaming path (no --materialise)" : "");
  }

  /// One batch into `out`: one forward with every window's features measured by its own observer, or, for a
  /// window without tokens or on the materialised path (each alone), from maps. Nothing is added unless every
  /// window succeeds; when memory runs out for a batch of several, its windows are measured one by one (so the
  /// error names the window).
  void measure_batch(const std::vector<planned_window>& batch, head_measurements& out) const {
    if (batch.size() > 1) {
      try {
        head_measurements mine = empty_measurements();
        measure_streaming(batch, mine);
        out.merge(mine);
      } catch (const std::bad_alloc&) {
        for (const planned_window& w : batch) measure_batch({w}, out);
      }
      return;
    }
    const planned_window& w = batch.front();
    const planned_document& doc = documents_[w.document];
    try {
      if (options_.materialise || doc.tokens[w.window].empty()) {
        measure_from_maps(doc, w.window, out);
      } else {
        measure_streaming(batch, out);
      }
    } catch (const std::bad_alloc&) {
      out_of_memory(doc, w.window);
    }
  }

  /// What a window runs with: its tokens (clipped to the model), their alignment to its words.
  struct window_input {
    std::vector<model_token> tokens;
    token_alignment alignment;
  };

  window_input prepare_window(const planned_document& doc, std::size_t w, window_counts& counts) const {
    const word_window& win = doc.windows[w];
    std::vector<char_span> spans;
    span_text(doc.surface, win.begin, win.end, &spans);
    window_input in;
    in.tokens = doc.tokens[w];
    if (static_cast<Index>(in.tokens.size()) > model_.max_tokens()) {
      in.tokens.resize(static_cast<std::size_t>(model_.max_tokens()));
      ++counts.clipped_windows;
    }
    ++counts.windows;
    counts.tokens += in.tokens.size();
    in.alignment = align_tokens(in.tokens, spans);
    for (Index v = win.own_begin; v < win.own_end; ++v) {
      if (in.alignment.tokens_per_word[static_cast<std::size_t>(v - win.begin)] == 0) ++counts.words_without_tokens;
    }
    return in;
  }

  /// Windows with tokens streamed in one forward (padded when several), each measured inside the kernel.
  void measure_streaming(const std::vector<planned_window>& batch, head_measurements& out) const {
    std::vector<window_input> inputs;
    inputs.reserve(batch.size());
    std::vector<std::vector<std::int32_t>> ids;
    std::vector<std::unique_ptr<streaming_word_features>> measures;
    std::vector<pattern_row_observer<float>*> observers;
    for (const planned_window& w : batch) {
      const planned_document& doc = documents_[w.document];
      inputs.push_back(prepare_window(doc, w.window, out.counts));
      ids.push_back(token_ids(inputs.back().tokens));
      measures.push_back(std::make_unique<streaming_word_features>(out.features, *doc.prepared, doc.windows[w.window],
                                                                   inputs.back().alignment));
      observers.push_back(measures.back().get());
    }
    model_.observe_attention_batch(ids, observers);
    for (const auto& measure : measures) {
      measure->commit();
      out.counts.dropped_mass += detail::feature_to_fixed(measure->mean_dropped_mass(), detail::feature_mass_scale);
    }
  }

  /// One window from its materialised maps (`attention_model::attention`); a window without tokens as masked rows.
  void measure_from_maps(const planned_document& doc, std::size_t w, head_measurements& out) const {
    const word_window& win = doc.windows[w];
    const window_input in = prepare_window(doc, w, out.counts);
    const std::vector<model_token>& tokens = in.tokens;
    const token_alignment& alignment = in.alignment;
    const Index n = win.size(), L = model_.layers(), H = model_.heads();
    if (tokens.empty()) {  // nothing to attend with: every word row is masked
      const matrix<float> zero = matrix<float>::Zero(n, n);
      for (int l = 0; l < L; ++l) {
        for (int h = 0; h < H; ++h) out.features.head(l, h).add(zero, *doc.prepared, win);
      }
      return;
    }
    const tensor<float> maps = model_.attention(token_ids(tokens));
    const Index T = maps.shape[2];
    word_attention<float> word_map;
    double dropped = 0;
    Index owned_with_tokens = 0;
    for (Index v = win.own_begin; v < win.own_end; ++v) {
      if (alignment.tokens_per_word[static_cast<std::size_t>(v - win.begin)] > 0) ++owned_with_tokens;
    }
    for (Index lh = 0; lh < L * H; ++lh) {
      const Eigen::Map<const matrix<float>> token_map(maps.data.data() + lh * T * T, T, T);
      token_to_word_map(token_map, alignment, word_map);
      out.features.head(int(lh / H), int(lh % H)).add(word_map.map, *doc.prepared, win);
      for (Index v = win.own_begin; v < win.own_end; ++v) dropped += word_map.dropped_mass[v - win.begin];
    }
    // The mean over heads and owned words with tokens (each word counted once, in the window that owns it).
    if (owned_with_tokens > 0) dropped /= static_cast<double>(owned_with_tokens * L * H);
    out.counts.dropped_mass += detail::feature_to_fixed(dropped, detail::feature_mass_scale);
  }

  /// The text of words [begin, end) of a document and, when asked, each word's bytes in it.
  static std::string span_text(const document_text& surface, Index begin, Index end,
                               std::vector<char_span>* spans = nullptr) {
    const auto first = static_cast<std::size_t>(begin), last = static_cast<std::size_t>(end - 1);
    const std::size_t base = surface.words[first].begin;
    if (spans != nullptr) {
      for (std::size_t v = first; v <= last; ++v) {
        spans->push_back({surface.words[v].begin - base, surface.words[v].end - base});
      }
    }
    return surface.text.substr(base, surface.words[last].end - base);
  }

  const attention_model& model_;
  analysis_options options_;
  Index stride_ = 1;
  corpus_plan_counts plan_counts_;
  std::vector<planned_document> documents_;
  std::vector<std::vector<planned_window>> batches_;
};


/// The report's first line: what was run on what, and what the windows lost, e.g. "USE-lite (2 layers x 4 heads) on
/// corpus.conllu\n2 documents, 1,289 words, 39 windows of up to 64 words (stride 32), 3,104 tokens; ...".
inline std::string describe_run(const head_analysis& analysis, const window_counts& counts, const std::string& source) {
  const corpus_plan_counts& plan = analysis.plan_counts();
  const Index max_tokens = analysis.model().max_tokens();
  std::ostringstream s;
  s << analysis.model().description() << " on " << source << "\n"
    << plan.documents << (plan.documents == 1 ? " document, " : " documents, ") << detail::with_commas(plan.words)
    << " words, " << counts.windows << " windows of up to " << analysis.window() << " words (stride "
    << analysis.stride() << "), " << detail::with_commas(counts.tokens) << " tokens";
  if (plan.dangling.total() > 0) {
    s << "; " << detail::with_commas(plan.dangling.discourse) << " discourse and "
      << detail::with_commas(plan.dangling.coreference)
      << " coreference links leaving their document (an excerpt) dropped";
  }
  if (plan.refitted_windows > 0) {
    s << "; " << plan.refitted_windows << " windows narrowed to fit the model's " << max_tokens << " tokens";
  }
  if (counts.clipped_windows > 0) {
    s << "; " << counts.clipped_windows << " single words longer than " << max_tokens << " tokens cut";
  }
  if (counts.words_without_tokens > 0) {
    s << "; " << detail::with_commas(counts.words_without_tokens)
      << " words without a token of their own (a token shared with a neighbour counts for the word it overlaps "
         "most), so not measured";
  }
  s << "; attention on tokens of no word (dropped from word maps) " << std::fixed << std::setprecision(3)
    << counts.mean_dropped_mass();
  return s.str();
}

}  // namespace headlens
