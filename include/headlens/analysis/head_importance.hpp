#pragma once
/// \file
/// Head importance (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"): for every head, how much the
/// task loss grows when that head alone is ablated (zero or mean ablation, analysis/ablation_target.hpp), over a
/// corpus, with an interval from the spread across documents and a check that the ranking of heads is stable.
///
/// What is measured, for head h and ablation kind k:
/// - per sequence s (a sentence or window, analysis/ablation_units.hpp): `losses({h}, k).sequence -
///   clean().sequence`;
/// - per document: the mean of that over the document's sequences (each sequence counts once, whatever its length);
/// - over the corpus: the mean over documents, with the 95% Student-t interval of that mean from the spread of the
///   per-document values (`interval_over_documents`). Documents, not sequences or tokens, are the unit of spread:
///   the sentences of one text are not independent draws.
/// - stability: documents are split into alternate halves (the 1st, 3rd, 5th, ... document in corpus order against
///   the 2nd, 4th, ...); the heads are ranked by their mean change on each half and Spearman's rho of the two
///   rankings is reported. The ranking is called stable when rho >= 0.5 (`importance_options::stable_rho`) with at
///   least 2 documents in each half and 3 heads; otherwise the report says why not.
///
/// Everything is written against `ablation_target` alone, so it runs on any model that makes one. Results do not
/// depend on the number of threads: every sequence is measured by one thread and the sums run in corpus order.
///
/// ```
/// const headlens::ablation_units units = headlens::make_ablation_units(*model, docs, {});  // analysis/ablation_units.hpp
/// // A model-backed target per unit, e.g. (models: make_ablation_target, collect_head_means):
/// //   means = model->collect_head_means(ids of every unit); target_options.means = &means;
/// const headlens::ablation_corpus corpus = headlens::make_ablation_corpus(units, [&](const headlens::ablation_unit& u) {
///   return model->make_ablation_target(u.ids, target_options);
/// });
/// headlens::head_importance_result result = headlens::measure_head_importance(corpus);
/// result.model = model->description(), result.corpus = "dev.conllu", result.context = units.describe();
/// headlens::write_table(std::cout, result);  // analysis/head_importance_report.hpp; JSON: head_importance_json.hpp
/// ```

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <exception>
#include <functional>
#include <iomanip>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/analysis/ablation_unit.hpp"
#include "headlens/analysis/statistics.hpp"
#include "headlens/error.hpp"
#include "headlens/kernels/parallel.hpp"

namespace headlens {

/// The sequences of a corpus, each with the document it belongs to and its `ablation_target`. Either made on demand
/// (`make(k)` called when sequence k is measured, the target dropped afterwards: memory for one target per thread,
/// each call measures every target afresh) or held (made once by the caller, reused by every call: what a pruning
/// plan that evaluates many head sets wants). With several threads, `make` is called from several threads at once,
/// for different k, and held targets are each used by one thread at a time.
class ablation_corpus {
 public:
  using factory = std::function<std::unique_ptr<ablation_target>(std::size_t sequence)>;

  /// Sequence k belongs to document `documents[k]` and is made by `make(k)`. Throws `argument_error` when
  /// `documents` is empty or `make` is empty.
  ablation_corpus(std::vector<std::size_t> documents, factory make)
      : documents_(std::move(documents)), make_(std::move(make)) {
    if (documents_.empty()) detail::fail<argument_error>("documents is empty, expected at least one sequence");
    if (!make_) detail::fail<argument_error>("make is empty, expected a function that makes sequence k's target");
  }
  /// Sequence k belongs to document `documents[k]`; its target is `targets[k]`. Throws `argument_error` when
  /// `documents` is empty, the sizes differ, or a target is null (naming it).
  ablation_corpus(std::vector<std::size_t> documents, std::vector<std::unique_ptr<ablation_target>> targets)
      : documents_(std::move(documents)), held_(std::move(targets)) {
    if (documents_.empty()) detail::fail<argument_error>("documents is empty, expected at least one sequence");
    if (held_.size() != documents_.size()) {
      detail::fail<argument_error>("targets has ", held_.size(), " entries, expected one per sequence = ",
                                   documents_.size());
    }
    for (std::size_t k = 0; k < held_.size(); ++k) {
      if (!held_[k]) detail::fail<argument_error>("targets[", k, "] is null, expected a target");
    }
  }

  std::size_t size() const noexcept { return documents_.size(); }
  /// The document of sequence k (unchecked).
  std::size_t document_of(std::size_t k) const noexcept { return documents_[k]; }
  const std::vector<std::size_t>& sequence_documents() const noexcept { return documents_; }
  /// The distinct documents, ascending: the corpus order that the per-document results and the halves follow.
  std::vector<std::size_t> documents() const {
    std::vector<std::size_t> out = documents_;
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
  bool holds_targets() const noexcept { return !held_.empty(); }

  /// Calls `f(const ablation_target&)` with sequence k's target (made for the call when not held). Throws
  /// `argument_error` when `make(k)` returns null, and what `make` and `f` throw.
  template <class F>
  void visit(std::size_t k, F&& f) const {
    if (!held_.empty()) {
      f(static_cast<const ablation_target&>(*held_[k]));
      return;
    }
    const std::unique_ptr<ablation_target> target = make_(k);
    if (!target) detail::fail<argument_error>("make(", k, ") returned null, expected sequence ", k, "'s target");
    f(static_cast<const ablation_target&>(*target));
  }

 private:
  std::vector<std::size_t> documents_;
  factory make_;
  std::vector<std::unique_ptr<ablation_target>> held_;
};

/// The corpus of `units` (analysis/ablation_units.hpp), sequence k being `units.units[k]`, its target made on demand
/// by `make(units.units[k])`. `units` must outlive the corpus. Throws `argument_error` when `make` is empty or there
/// is no unit.
inline ablation_corpus make_ablation_corpus(const ablation_units& units,
                                            std::function<std::unique_ptr<ablation_target>(const ablation_unit&)> make) {
  if (!make) detail::fail<argument_error>("make is empty, expected a function that makes a unit's target");
  if (units.units.empty()) detail::fail<argument_error>("units has no unit, expected at least one");
  std::vector<std::size_t> documents;
  for (const ablation_unit& u : units.units) documents.push_back(u.document);
  const ablation_unit* first = units.units.data();
  return ablation_corpus(std::move(documents),
                         [first, make = std::move(make)](std::size_t k) { return make(first[k]); });
}

/// Threads and progress of a pass over a corpus.
struct corpus_pass_options {
  /// Sequences measured at once, each on one thread (0: OpenMP's default). 1, the default, leaves every thread to
  /// the model's kernels.
  Index threads = 1;
  /// Called after each sequence (one call at a time, from any thread) with (sequences done, sequences in all).
  std::function<void(std::size_t, std::size_t)> progress;
  /// Confidence level of the intervals.
  double level = 0.95;
};

/// The loss of a corpus unablated and with one head set ablated, per document and over documents.
struct corpus_loss {
  std::vector<std::size_t> documents;  ///< the documents, ascending
  std::vector<double> clean;           ///< per document: the mean over its sequences of the clean loss
  std::vector<double> change;          ///< per document: the mean over its sequences of ablated - clean loss
  document_interval clean_interval;    ///< over documents
  document_interval change_interval;   ///< over documents
};

namespace detail {

inline std::string heads_text(const std::vector<int>& heads_per_layer) {
  std::string out = "[";
  for (std::size_t l = 0; l < heads_per_layer.size(); ++l) out += (l ? ", " : "") + std::to_string(heads_per_layer[l]);
  return out + "]";
}

/// Refuses a target of another shape than `expected`, naming sequence k.
inline void check_target_shape(const ablation_target& target, const std::vector<int>& expected, std::size_t k,
                               std::size_t document, const char* expected_from) {
  if (target.heads_per_layer() != expected) {
    detail::fail<argument_error>("sequence ", k, " (document ", document, ") has heads per layer ",
                                 heads_text(target.heads_per_layer()), ", expected ", heads_text(expected), " as ",
                                 expected_from, ": a target made for another model");
  }
}

inline double checked_loss(double value, std::size_t k, std::size_t document, const char* what) {
  if (!std::isfinite(value)) {
    detail::fail<numeric_error>("sequence ", k, " (document ", document, "): the ", what, " loss is ", value,
                                ", expected a finite loss");
  }
  return value;
}

/// Runs `body(k, target)` for every sequence of `corpus`, on `options.threads` threads, the first sequence alone
/// first (so `on_first` can read the model's shape before any other runs). Rethrows the error of the earliest
/// failing sequence.
template <class First, class Body>
void for_each_sequence(const ablation_corpus& corpus, const corpus_pass_options& options, First&& on_first,
                       Body&& body) {
  const std::size_t n = corpus.size();
  std::mutex progress_lock;
  std::size_t done = 0;
  const auto report = [&] {
    if (!options.progress) return;
    const std::lock_guard<std::mutex> lock(progress_lock);
    options.progress(++done, n);
  };
  corpus.visit(0, [&](const ablation_target& t) {
    on_first(t);
    body(std::size_t(0), t);
  });
  report();
  if (n == 1) return;
  const int workers = detail::thread_count(options.threads);
  std::vector<std::exception_ptr> errors(n - 1);
  detail::parallel_for(Index(n - 1), workers, [&](Index unit, int) {
#ifdef _OPENMP
    if (workers > 1) omp_set_num_threads(1);  // this thread's sequence runs its kernels on this thread alone
#endif
    const std::size_t k = std::size_t(unit) + 1;
    try {
      corpus.visit(k, [&](const ablation_target& t) { body(k, t); });
    } catch (...) {
      errors[std::size_t(unit)] = std::current_exception();
    }
    report();
  });
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

/// Per document (ascending) the mean of `per_sequence` over its sequences, summed in sequence order.
inline std::vector<double> document_means(const ablation_corpus& corpus, const std::vector<std::size_t>& documents,
                                          const std::vector<double>& per_sequence) {
  std::vector<double> sum(documents.size(), 0.0);
  std::vector<std::size_t> count(documents.size(), 0);
  for (std::size_t k = 0; k < corpus.size(); ++k) {
    const auto at = std::size_t(std::lower_bound(documents.begin(), documents.end(), corpus.document_of(k)) -
                                documents.begin());
    sum[at] += per_sequence[k];
    ++count[at];
  }
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i] /= double(count[i]);
  return sum;
}

}  // namespace detail

/// The loss change of the whole corpus when every head of `ablated` is removed as `kind` says (what a pruning plan
/// or a causal check asks of a head set): per sequence `losses(ablated, kind).sequence - clean().sequence`,
/// averaged per document, then over documents with an interval. The target is asked even for an empty set: 0 for a
/// plain target, the cost of the forward options alone for one whose `losses` run differently from `clean` (e.g.
/// sparse attention against a dense reference).
/// Throws `argument_error` when `ablated` or a target is shaped for another model (naming the sequence), and
/// `numeric_error` for a non-finite loss; the targets' errors (e.g. `mean` on a target made without means).
inline corpus_loss corpus_loss_change(const ablation_corpus& corpus, const head_set& ablated, ablation kind,
                                      const corpus_pass_options& options = {}) {
  std::vector<double> clean(corpus.size()), change(corpus.size());
  detail::for_each_sequence(
      corpus, options,
      [&](const ablation_target& first) {
        if (first.heads_per_layer() != ablated.heads_per_layer()) {
          detail::fail<argument_error>("ablated is shaped for heads per layer ", detail::heads_text(ablated.heads_per_layer()),
                                       ", expected the model's ", detail::heads_text(first.heads_per_layer()));
        }
      },
      [&](std::size_t k, const ablation_target& t) {
        const std::size_t d = corpus.document_of(k);
        detail::check_target_shape(t, ablated.heads_per_layer(), k, d, "ablated");
        clean[k] = detail::checked_loss(t.clean().sequence, k, d, "clean");
        change[k] = detail::checked_loss(t.losses(ablated, kind).sequence, k, d, "ablated") - clean[k];
      });
  corpus_loss out;
  out.documents = corpus.documents();
  out.clean = detail::document_means(corpus, out.documents, clean);
  out.change = detail::document_means(corpus, out.documents, change);
  out.clean_interval = interval_over_documents(out.clean, options.level);
  out.change_interval = interval_over_documents(out.change, options.level);
  return out;
}

/// What `measure_head_importance` measures and how it judges the ranking.
struct importance_options {
  std::vector<ablation> kinds{ablation::zero, ablation::mean};  ///< each measured for every head, in this order
  /// The ranking is stable when the split-half Spearman rho is at least this...
  double stable_rho = 0.5;
  /// ...with at least this many documents in each half.
  std::size_t min_half_documents = 2;
  corpus_pass_options pass;  ///< threads, progress (one call per sequence), the intervals' level
};

/// One head's importance under one kind of ablation.
struct head_importance {
  head_ref head;
  document_interval change;          ///< loss change over documents (mean, sd, interval)
  std::vector<double> per_document;  ///< per document (ascending): the mean change over its sequences
  std::size_t rank = 0;              ///< 1 for the largest mean change (ties: the earlier head)
};

/// Whether the ranking of heads holds across halves of the corpus (see the file comment).
struct ranking_stability {
  std::size_t first_half = 0, second_half = 0;          ///< documents in each half
  double rho = std::numeric_limits<double>::quiet_NaN();  ///< Spearman's rho of the halves' rankings (NaN: none)
  double threshold = 0.5;
  bool stable = false;
  std::string note;  ///< one sentence for the report: the figure and, when not stable, why
};

/// Every head's importance under one kind of ablation.
struct importance_of_kind {
  ablation kind = ablation::zero;
  std::vector<head_importance> heads;  ///< layer by layer
  ranking_stability stability;
};

/// The result of `measure_head_importance`: a plain struct the report writers read.
struct head_importance_result {
  std::string model;    ///< what the model is, for reports (set by the caller)
  std::string corpus;   ///< what the corpus is, for reports (set by the caller)
  std::string context;  ///< the unit of context (`ablation_units::describe`; set by the caller)
  std::vector<int> heads_per_layer;
  std::vector<std::size_t> documents;  ///< ascending
  std::size_t sequences = 0;
  std::size_t tokens = 0;              ///< over all sequences
  document_interval clean;             ///< the clean loss over documents
  std::vector<double> clean_per_document;
  std::vector<importance_of_kind> kinds;

  /// The results of `kind`, or null when it was not measured.
  const importance_of_kind* find(ablation kind) const noexcept {
    for (const importance_of_kind& k : kinds) {
      if (k.kind == kind) return &k;
    }
    return nullptr;
  }
};

namespace detail {

/// The split-half check on per-head, per-document changes `per_document[head][document]`.
inline ranking_stability split_half_stability(const std::vector<std::vector<double>>& per_document,
                                              std::size_t documents, const importance_options& options) {
  ranking_stability out;
  out.threshold = options.stable_rho;
  out.first_half = (documents + 1) / 2;
  out.second_half = documents / 2;
  std::ostringstream note;
  note << std::fixed << std::setprecision(2);
  const std::size_t heads = per_document.size();
  if (heads < 3) {
    note << "not checked: " << heads << (heads == 1 ? " head" : " heads") << ", a ranking needs at least 3";
    out.note = note.str();
    return out;
  }
  if (out.second_half >= 1) {
    std::vector<double> a(heads, 0.0), b(heads, 0.0);
    for (std::size_t h = 0; h < heads; ++h) {
      for (std::size_t i = 0; i < documents; ++i) (i % 2 == 0 ? a : b)[h] += per_document[h][i];
      a[h] /= double(out.first_half);
      b[h] /= double(out.second_half);
    }
    out.rho = spearman_rho(a, b);
  }
  const auto halves = [&] {
    note << " between alternate documents (" << out.first_half << " and " << out.second_half << ")";
  };
  if (out.second_half < options.min_half_documents) {
    note << "not stable: too few documents (" << documents << "), the split-half check needs at least "
         << options.min_half_documents << " in each half";
  } else if (std::isnan(out.rho)) {
    note << "not stable: every head has the same importance on one half, so the halves' rankings cannot be compared";
    halves();
  } else if (out.rho < options.stable_rho) {
    note << "not stable: split-half Spearman rho " << out.rho << " < " << options.stable_rho;
    halves();
    note << "; read the ranking as noise at this corpus size";
  } else {
    out.stable = true;
    note << "stable: split-half Spearman rho " << out.rho << " >= " << options.stable_rho;
    halves();
  }
  out.note = note.str();
  return out;
}

}  // namespace detail

/// Every head's importance over `corpus`: for each kind of `options.kinds` and each head h, the loss change with h
/// alone ablated, per document and over documents with an interval, the heads' ranks and the split-half stability
/// of the ranking (see the file comment). Each sequence's target is made once (when not held) and serves the clean
/// loss and every ablation. `model`, `corpus` and `context` of the result are left empty for the caller.
/// Throws `argument_error` when `options.kinds` is empty or repeats a kind, `stable_rho` is outside [-1, 1], a
/// target is shaped for another model than the first sequence's (naming the sequence); `numeric_error` for a
/// non-finite loss; the targets' errors (e.g. `mean` on a target made without means).
inline head_importance_result measure_head_importance(const ablation_corpus& corpus,
                                                      const importance_options& options = {}) {
  if (options.kinds.empty()) detail::fail<argument_error>("kinds is empty, expected zero, mean or both");
  for (std::size_t i = 0; i < options.kinds.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (options.kinds[i] == options.kinds[j]) {
        detail::fail<argument_error>("kinds[", i, "] is ", to_string(options.kinds[i]), " again, expected each kind once");
      }
    }
  }
  if (!(options.stable_rho >= -1 && options.stable_rho <= 1)) {
    detail::fail<argument_error>("stable_rho is ", options.stable_rho, ", expected -1 <= stable_rho <= 1");
  }
  const std::size_t n = corpus.size(), kinds = options.kinds.size();
  head_importance_result out;
  std::vector<head_set> singles;  // one set per head, made from the first target's shape
  std::vector<head_ref> heads;
  std::vector<double> clean(n);
  std::vector<std::vector<double>> change;  // [kind * heads + head][sequence]
  std::vector<std::size_t> tokens(n, 0);
  detail::for_each_sequence(
      corpus, options.pass,
      [&](const ablation_target& first) {
        out.heads_per_layer = first.heads_per_layer();
        const head_set empty(out.heads_per_layer);
        for (int l = 0; l < empty.layer_count(); ++l) {
          for (int h = 0; h < out.heads_per_layer[std::size_t(l)]; ++h) {
            heads.push_back({l, h});
            singles.push_back(empty);
            singles.back().insert({l, h});
          }
        }
        change.assign(kinds * heads.size(), std::vector<double>(n, 0.0));
      },
      [&](std::size_t k, const ablation_target& t) {
        const std::size_t d = corpus.document_of(k);
        detail::check_target_shape(t, out.heads_per_layer, k, d, "sequence 0");
        tokens[k] = std::size_t(std::max<Index>(t.token_count(), 0));
        clean[k] = detail::checked_loss(t.clean().sequence, k, d, "clean");
        for (std::size_t c = 0; c < kinds; ++c) {
          for (std::size_t h = 0; h < heads.size(); ++h) {
            const double ablated = t.losses(singles[h], options.kinds[c]).sequence;
            change[c * heads.size() + h][k] = detail::checked_loss(ablated, k, d, "ablated") - clean[k];
          }
        }
      });
  out.documents = corpus.documents();
  out.sequences = n;
  for (std::size_t t : tokens) out.tokens += t;
  out.clean_per_document = detail::document_means(corpus, out.documents, clean);
  out.clean = interval_over_documents(out.clean_per_document, options.pass.level);
  for (std::size_t c = 0; c < kinds; ++c) {
    importance_of_kind kind;
    kind.kind = options.kinds[c];
    std::vector<std::vector<double>> per_document;
    for (std::size_t h = 0; h < heads.size(); ++h) {
      head_importance hi;
      hi.head = heads[h];
      hi.per_document = detail::document_means(corpus, out.documents, change[c * heads.size() + h]);
      hi.change = interval_over_documents(hi.per_document, options.pass.level);
      per_document.push_back(hi.per_document);
      kind.heads.push_back(std::move(hi));
    }
    std::vector<std::size_t> order(heads.size());
    for (std::size_t h = 0; h < order.size(); ++h) order[h] = h;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return kind.heads[a].change.mean > kind.heads[b].change.mean;
    });
    for (std::size_t r = 0; r < order.size(); ++r) kind.heads[order[r]].rank = r + 1;
    kind.stability = detail::split_half_stability(per_document, out.documents.size(), options);
    out.kinds.push_back(std::move(kind));
  }
  return out;
}

}  // namespace headlens
