#pragma once
/// \file
/// Which heads a model can lose: a greedy pruning plan over a corpus of `ablation_target`s
/// (analysis/ablation_target.hpp), for a target share of heads or a loss budget, with the curve of heads pruned
/// against the loss change.
///
/// The corpus loss of a set S of ablated heads is, by `pruning_options::weighting`:
/// - `sequence_mean` (the default): the mean over targets of `token_losses::sequence` (each sequence counts once,
///   whatever its length; the only choice for a sentence embedder, whose sequence loss is not a token mean);
/// - `token_weighted`: the sum over targets of the scored tokens' losses over the count of scored tokens (each token
///   counts once: long documents weigh more).
/// Its change is L(S) - L({}) and, relative, (L(S) - L({})) / L({}), defined when L({}) > 0 (a decoder's
/// cross-entropy; an encoder's 1 - cosine is 0 unablated, so give it an absolute budget).
///
/// The greedy step, re-measured as heads go: with P already pruned, ablate P + {c} for every remaining candidate c
/// over the whole corpus, and prune the c whose removal raises the loss least. A head that is harmless alone but
/// redundant with one already gone (two heads doing one job) is measured as it is now, not as it was on the full
/// model, which a one-shot ranking of single-head importance cannot see. A sweep costs one corpus evaluation per
/// candidate, so `remeasure_every = k` re-measures only every k steps and prunes the next heads of the last sweep's
/// ranking in between (each step's loss is still evaluated exactly: one corpus evaluation); `remeasure_every = 0`
/// measures once (the one-shot ranking). A step taken from an old ranking that would break the loss budget is
/// undone and followed by a fresh sweep, so the budget is respected whatever k is.
///
///   std::vector<std::unique_ptr<headlens::ablation_target>> corpus = ...;  // one per document
///   headlens::pruning_options o;
///   o.loss_budget = 0.005;  // at most +0.5% relative loss
///   headlens::pruning_plan plan = headlens::plan_pruning(headlens::target_pointers(corpus), o);
///   // plan.pruned: the head_set to prune; plan.curve: heads pruned -> loss change

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/error.hpp"

namespace headlens {

/// How the per-sequence losses of a corpus combine into one (see the file comment).
enum class corpus_weighting { sequence_mean, token_weighted };

inline const char* to_string(corpus_weighting w) noexcept {
  return w == corpus_weighting::sequence_mean ? "sequence_mean" : "token_weighted";
}

/// What `plan_pruning` reports while it works (for progress on stderr).
struct pruning_progress {
  int heads_pruned = 0;       ///< heads in the pruned set so far
  int heads_to_consider = 0;  ///< candidates left (heads not pruned and allowed)
  int candidate = 0;          ///< during a sweep: candidates measured so far in it (1-based); 0 outside a sweep
  int sweep_size = 0;         ///< during a sweep: candidates it measures
  long evaluations = 0;       ///< corpus evaluations so far (each is one `losses` call per target)
  double loss_change = 0;     ///< the pruned set's loss change so far
};

/// What to prune and how to measure it.
struct pruning_options {
  /// Stop when this share of all heads (0..1, rounded to the nearest count) is pruned.
  std::optional<double> target_share;
  /// Stop before the relative loss change (L(S) - L({})) / L({}) would exceed this (e.g. 0.005 for 0.5%).
  std::optional<double> loss_budget;
  /// Stop before the absolute loss change L(S) - L({}) would exceed this (for losses that are 0 unablated).
  std::optional<double> absolute_loss_budget;
  /// Zero (the head's work is skipped: what physical pruning does) or mean ablation.
  ablation kind = ablation::zero;
  corpus_weighting weighting = corpus_weighting::sequence_mean;
  /// Sweep the candidates every k steps (1: every step); 0: once, at the start (a one-shot ranking).
  int remeasure_every = 1;
  /// Never prune a layer below this many heads.
  int min_heads_per_layer = 0;
  /// Called after each candidate of a sweep and after each step; may be empty.
  std::function<void(const pruning_progress&)> progress;
};

/// One point of the curve: the loss with the first `heads_pruned` heads of the plan pruned.
struct pruning_step {
  int heads_pruned = 0;
  head_ref head;               ///< the head this step pruned (meaningless for step 0)
  double loss = 0;             ///< corpus loss with the heads pruned so far
  double loss_change = 0;      ///< loss - clean loss
  double relative_change = 0;  ///< loss_change / clean loss; NaN when the clean loss is not positive
  bool measured = false;       ///< the head was chosen by a sweep at this very step (not from an earlier ranking)
};

/// The plan: heads to prune, in order, and the curve.
struct pruning_plan {
  head_set pruned;                  ///< every head of the plan
  std::vector<head_ref> order;      ///< the heads in the order they were pruned
  std::vector<pruning_step> curve;  ///< curve[0]: nothing pruned; curve[i]: order[0..i-1] pruned
  double clean_loss = 0;
  ablation kind = ablation::zero;
  corpus_weighting weighting = corpus_weighting::sequence_mean;
  int remeasure_every = 1;
  long evaluations = 0;    ///< corpus evaluations spent
  std::string stopped_by;  ///< "target_share", "loss_budget", "absolute_loss_budget", "no_candidates"

  /// Share of all heads pruned.
  double share() const noexcept {
    const int total = pruned.total_heads();
    return total == 0 ? 0.0 : double(pruned.size()) / double(total);
  }
};

/// Borrowed pointers to the targets of a corpus held by `unique_ptr`.
template <class Ptr>
std::vector<const ablation_target*> target_pointers(const std::vector<Ptr>& targets) {
  std::vector<const ablation_target*> out;
  out.reserve(targets.size());
  for (const Ptr& t : targets) out.push_back(&*t);
  return out;
}

namespace detail {

/// The corpus loss of `losses` (one per target) as `weighting` says.
inline double corpus_loss(const std::vector<token_losses>& losses, corpus_weighting weighting) {
  if (weighting == corpus_weighting::sequence_mean) {
    double sum = 0;
    for (const token_losses& l : losses) sum += l.sequence;
    return losses.empty() ? 0.0 : sum / double(losses.size());
  }
  double sum = 0;
  long count = 0;
  for (const token_losses& l : losses) {
    for (std::size_t t = 0; t < l.loss.size() && t < l.scored.size(); ++t) {
      if (l.scored[t]) {
        sum += l.loss[t];
        ++count;
      }
    }
  }
  return count == 0 ? 0.0 : sum / double(count);
}

}  // namespace detail

/// The corpus loss with `ablated` removed as `kind` says (see the file comment for `weighting`). Throws the
/// targets' errors.
inline double corpus_loss(const std::vector<const ablation_target*>& corpus, const head_set& ablated, ablation kind,
                          corpus_weighting weighting) {
  std::vector<token_losses> losses;
  losses.reserve(corpus.size());
  for (const ablation_target* t : corpus) losses.push_back(ablated.empty() ? t->clean() : t->losses(ablated, kind));
  return detail::corpus_loss(losses, weighting);
}

/// The greedy plan (see the file comment). Throws `argument_error` for an empty corpus, a null target, targets of
/// different shapes, no stopping rule, a share outside [0, 1], a negative budget, a relative budget with a clean
/// loss that is not positive, a negative `remeasure_every` or `min_heads_per_layer`; and the targets' errors.
inline pruning_plan plan_pruning(const std::vector<const ablation_target*>& corpus, const pruning_options& options) {
  if (corpus.empty()) detail::fail<argument_error>("plan_pruning: corpus is empty, expected at least one target");
  for (std::size_t i = 0; i < corpus.size(); ++i) {
    if (corpus[i] == nullptr) detail::fail<argument_error>("plan_pruning: corpus[", i, "] is null");
    if (corpus[i]->heads_per_layer() != corpus.front()->heads_per_layer()) {
      detail::fail<argument_error>("plan_pruning: corpus[", i,
                                   "] has other heads per layer than corpus[0], expected targets of one model");
    }
  }
  if (!options.target_share && !options.loss_budget && !options.absolute_loss_budget) {
    detail::fail<argument_error>(
        "plan_pruning: no stopping rule, expected target_share, loss_budget or absolute_loss_budget");
  }
  if (options.target_share && !(*options.target_share >= 0 && *options.target_share <= 1)) {
    detail::fail<argument_error>("plan_pruning: target_share is ", *options.target_share, ", expected 0 to 1");
  }
  if (options.loss_budget && !(*options.loss_budget >= 0)) {
    detail::fail<argument_error>("plan_pruning: loss_budget is ", *options.loss_budget, ", expected >= 0");
  }
  if (options.absolute_loss_budget && !(*options.absolute_loss_budget >= 0)) {
    detail::fail<argument_error>("plan_pruning: absolute_loss_budget is ", *options.absolute_loss_budget,
                                 ", expected >= 0");
  }
  if (options.remeasure_every < 0) {
    detail::fail<argument_error>("plan_pruning: remeasure_every is ", options.remeasure_every,
                                 ", expected 0 (once) or more");
  }
  if (options.min_heads_per_layer < 0) {
    detail::fail<argument_error>("plan_pruning: min_heads_per_layer is ", options.min_heads_per_layer,
                                 ", expected >= 0");
  }

  const std::vector<int>& shape = corpus.front()->heads_per_layer();
  pruning_plan plan;
  plan.pruned = head_set(shape);
  plan.kind = options.kind;
  plan.weighting = options.weighting;
  plan.remeasure_every = options.remeasure_every;
  plan.clean_loss = corpus_loss(corpus, plan.pruned, options.kind, options.weighting);
  if (options.loss_budget && !(plan.clean_loss > 0)) {
    detail::fail<argument_error>("plan_pruning: loss_budget is relative but the clean loss is ", plan.clean_loss,
                                 ", expected above 0 (give absolute_loss_budget instead)");
  }
  const double clean = plan.clean_loss;
  const auto point = [&](int pruned, head_ref h, double loss, bool measured) {
    pruning_step s;
    s.heads_pruned = pruned;
    s.head = h;
    s.loss = loss;
    s.loss_change = loss - clean;
    s.relative_change = clean > 0 ? s.loss_change / clean : std::numeric_limits<double>::quiet_NaN();
    s.measured = measured;
    return s;
  };
  plan.curve.push_back(point(0, head_ref{}, clean, false));

  const int total = plan.pruned.total_heads();
  const int wanted = options.target_share ? int(std::lround(*options.target_share * double(total))) : total;
  const auto within_budget = [&](double loss) {
    const double change = loss - clean;
    if (options.absolute_loss_budget && change > *options.absolute_loss_budget) return false;
    if (options.loss_budget && change / clean > *options.loss_budget) return false;
    return true;
  };
  const auto budget_name = [&](double loss) -> std::string {
    const double change = loss - clean;
    if (options.absolute_loss_budget && change > *options.absolute_loss_budget) return "absolute_loss_budget";
    return "loss_budget";
  };
  std::vector<int> left_in_layer = shape;
  const auto allowed = [&](head_ref h) {
    return !plan.pruned.contains(h) && left_in_layer[std::size_t(h.layer)] > options.min_heads_per_layer;
  };
  const auto candidates = [&] {
    std::vector<head_ref> out;
    for (int l = 0; l < int(shape.size()); ++l) {
      for (int h = 0; h < shape[std::size_t(l)]; ++h) {
        if (allowed({l, h})) out.push_back({l, h});
      }
    }
    return out;
  };
  pruning_progress progress;
  const auto report = [&](int candidate, int sweep_size) {
    if (!options.progress) return;
    progress.heads_pruned = plan.pruned.size();
    progress.heads_to_consider = int(candidates().size());
    progress.candidate = candidate;
    progress.sweep_size = sweep_size;
    progress.evaluations = plan.evaluations;
    progress.loss_change = plan.curve.back().loss_change;
    options.progress(progress);
  };
  const auto evaluate = [&](const head_set& s) {
    ++plan.evaluations;
    return corpus_loss(corpus, s, options.kind, options.weighting);
  };

  // The last sweep's ranking (best first) with the loss each candidate had then, and how many steps it served.
  std::vector<std::pair<double, head_ref>> ranking;
  std::size_t next_in_ranking = 0;
  int steps_since_sweep = 0;
  bool swept_once = false;
  bool force_sweep = false;
  while (true) {
    if (plan.pruned.size() >= wanted) {
      plan.stopped_by = "target_share";
      break;
    }
    const bool sweep =
        !swept_once || force_sweep || (options.remeasure_every > 0 && steps_since_sweep >= options.remeasure_every);
    if (sweep) {
      const std::vector<head_ref> c = candidates();
      ranking.clear();
      next_in_ranking = 0;
      for (std::size_t i = 0; i < c.size(); ++i) {
        head_set s = plan.pruned;
        s.insert(c[i]);
        ranking.push_back({evaluate(s), c[i]});
        report(int(i + 1), int(c.size()));
      }
      // Ties keep the layer-by-layer order: the plan does not depend on the sort's implementation.
      std::stable_sort(ranking.begin(), ranking.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      swept_once = true;
      force_sweep = false;
      steps_since_sweep = 0;
    }
    while (next_in_ranking < ranking.size() && !allowed(ranking[next_in_ranking].second)) ++next_in_ranking;
    if (next_in_ranking >= ranking.size()) {
      if (sweep || options.remeasure_every == 0) {
        plan.stopped_by = "no_candidates";
        break;
      }
      force_sweep = true;  // the old ranking ran out (or only holds heads a layer minimum now forbids)
      continue;
    }
    const head_ref h = ranking[next_in_ranking].second;
    head_set s = plan.pruned;
    s.insert(h);
    const double loss = sweep ? ranking[next_in_ranking].first : evaluate(s);
    if (!within_budget(loss)) {
      if (sweep || options.remeasure_every == 0) {  // the best candidate measured now breaks the budget: done
        plan.stopped_by = budget_name(loss);
        break;
      }
      force_sweep = true;  // an old ranking's pick breaks it: measure afresh before giving up
      continue;
    }
    ++next_in_ranking;
    ++steps_since_sweep;
    plan.pruned = std::move(s);
    --left_in_layer[std::size_t(h.layer)];
    plan.order.push_back(h);
    plan.curve.push_back(point(plan.pruned.size(), h, loss, sweep));
    report(0, 0);
  }
  return plan;
}

}  // namespace headlens
