#pragma once
/// \file
/// The causal check of head labels: does removing the heads that carry a label hurt the model on the tokens of the
/// phenomenon the label claims, more than removing as many other heads does?
///
/// For each category (syntactic, coreference, discourse, positional) with at least one head:
/// 1. Ablate the label's heads (zero ablation by default, mean ablation as an option) on every unit, and take the
///    loss change of each scored token, ablated minus clean (`ablation_target`).
/// 2. The *effect* of a head set is the mean loss change over the phenomenon tokens minus the mean loss change over
///    the other tokens (`headlens/analysis/phenomenon_tokens.hpp`), each mean pooled over the scored tokens of all
///    units (every token weighs the same; a long unit weighs more than a short one). For positional, where every
///    token is the phenomenon, the effect is the mean loss change over all scored tokens. The contrast asks whether
///    the heads matter *for the phenomenon*, not merely whether they matter.
/// 3. Draw N random sets of as many heads, none of them the label's (`causal_check_options::random_sets`, default
///    50, at least 20), and compute their effects the same way. Sets are drawn in the same layers as the label's
///    heads (the same count per layer), so a label is compared with heads at the same depth. When a layer has too
///    few other heads, or the same layers hold fewer than 20 distinct sets, the sets are drawn from every other
///    head of the model instead, and the label's `reason` says so (`random_scope::any_layer`). When the scope holds
///    no more distinct sets than N, every one of them is evaluated once (`exact`), an exact permutation test.
///    Otherwise sets are drawn uniformly and independently (a Monte Carlo permutation test); each label draws from
///    its own stream derived from the seed and the label, so the draws are deterministic and do not depend on the
///    other labels.
/// 4. p = (1 + #{random effects >= the label's effect}) / (1 + number of random sets): the share of random sets
///    that do at least as well, counting the label's own set (Phipson & Smyth 2010), so p >= 1 / (N + 1). Ties
///    (within 1e-12 relative) count against the label. Effect size: z = (effect - random mean) / random sd.
/// 5. Verdict: "supported" when p < alpha (default 0.05) and the effect is above the random mean; "not supported"
///    otherwise; "not testable", with the reason, when no head carries the label, no unit's document has the
///    annotations the label needs (coreference mentions, dependency heads), no scored token carries the phenomenon
///    or no other token is left to compare with, or there are too few other heads to draw 20 distinct random sets
///    (the label's heads are every head, or nearly). With between 1 and 19 distinct sets (a small model: USE-lite
///    has 8 heads) the label is still compared with every one of them and the numbers are reported, but p cannot
///    fall below 1/20, so the verdict is "not testable".
///
/// Cost: per unit, one clean evaluation and one ablated evaluation per distinct head set (labels' sets and random
/// sets; a set drawn twice is evaluated once): about 4 (N + 1) for four labelled categories.
///
///     std::vector<headlens::causal_unit> units;
///     units.emplace_back(doc, token_word, target, /*causal=*/true);      // one per sentence or window
///     headlens::causal_check_result r = headlens::run_causal_check(units, verdicts);
///     report.causal = r;                                                 // every report format shows it
///
/// A unit at a time (targets made and freed one by one): `causal_check check(heads_per_layer, verdicts);
/// check.add(unit); ... check.result()`.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/analysis/causal_check_result.hpp"
#include "headlens/analysis/document.hpp"
#include "headlens/analysis/phenomenon_tokens.hpp"
#include "headlens/analysis/verdict.hpp"
#include "headlens/error.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// The fewest random head sets a label is compared with (then p can reach 1/21 < 0.05).
inline constexpr std::size_t causal_check_min_random_sets = 20;

/// Below this share of scored tokens outside the phenomenon, a label's note warns that its effect is nearly its
/// effect on every token (the contrast has little to contrast with).
inline constexpr double causal_check_few_other_tokens = 0.05;

/// One sequence the check evaluates: the document it comes from, per token the document-level word index it
/// covers (-1 for tokens covering no word, such as BOS), the target that evaluates it with heads ablated (of
/// `token_word.size()` tokens), and whether the model is a decoder (see `find_phenomenon_tokens`). Holds pointers:
/// the document and the target must outlive the unit's use.
struct causal_unit {
  causal_unit(const document& doc, std::vector<Index> token_word, const ablation_target& target, bool causal)
      : doc(&doc), token_word(std::move(token_word)), target(&target), causal(causal) {}

  const document* doc = nullptr;
  std::vector<Index> token_word;
  const ablation_target* target = nullptr;
  bool causal = false;
};

/// How the check runs.
struct causal_check_options {
  ablation kind = ablation::zero;  ///< how heads are removed (mean needs targets made with means)
  std::size_t random_sets = 50;    ///< N: random head sets per label, at least `causal_check_min_random_sets`
  std::uint64_t seed = 1;          ///< seed of the random draws
  double alpha = 0.05;             ///< "supported" needs p < alpha; in (0, 1)
  /// Called after each evaluation with (evaluations done, evaluations in all) by `run_causal_check`, and with
  /// (done, evaluations per unit) within each `causal_check::add`. Optional.
  std::function<void(std::size_t, std::size_t)> progress;
};

namespace detail {

/// SplitMix64 (Steele, Lea & Flood 2014): small, fast, and the same numbers on every platform (unlike the standard
/// library's distributions), so a seed reproduces the draws everywhere.
class causal_rng {
 public:
  causal_rng(std::uint64_t seed, std::uint64_t stream) : state_(mix(seed) ^ mix(stream + 0x632be59bd9b4e019ULL)) {}
  std::uint64_t next() noexcept { return mix(state_ += 0x9e3779b97f4a7c15ULL); }
  /// Uniform in [0, n), n >= 1, without modulo bias (rejection of the 2^64 mod n lowest values).
  std::uint64_t below(std::uint64_t n) noexcept {
    const std::uint64_t limit = (0 - n) % n;
    for (;;) {
      const std::uint64_t r = next();
      if (r >= limit) return r % n;
    }
  }

 private:
  static std::uint64_t mix(std::uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t state_;
};

/// n choose k as a double (exact while below 2^53, which is where exactness matters here).
inline double causal_binomial(std::size_t n, std::size_t k) {
  if (k > n) return 0;
  k = std::min(k, n - k);
  double r = 1;
  for (std::size_t i = 1; i <= k; ++i) r = r * static_cast<double>(n - k + i) / static_cast<double>(i);
  return std::round(r);
}

/// A group of a random draw: `count` heads out of `pool`.
struct causal_draw_group {
  std::vector<head_ref> pool;
  std::size_t count = 0;
};

/// Every `count`-combination of `pool`, in lexicographic order of positions.
inline std::vector<std::vector<head_ref>> causal_combinations(const causal_draw_group& g) {
  std::vector<std::vector<head_ref>> out;
  const std::size_t n = g.pool.size(), k = g.count;
  if (k > n) return out;
  std::vector<std::size_t> at(k);
  for (std::size_t i = 0; i < k; ++i) at[i] = i;
  for (;;) {
    std::vector<head_ref> combo;
    for (std::size_t i : at) combo.push_back(g.pool[i]);
    out.push_back(std::move(combo));
    std::size_t i = k;
    while (i > 0 && at[i - 1] == n - k + i - 1) --i;
    if (i == 0) break;
    ++at[i - 1];
    for (std::size_t j = i; j < k; ++j) at[j] = at[j - 1] + 1;
  }
  return out;
}

inline std::string causal_join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "; " + b;
}

inline std::string causal_plural(double n, const char* one, const char* many) {
  std::string count = n < 1e15 ? std::to_string(static_cast<long long>(n)) : std::to_string(n);
  return count + " " + (n == 1 ? one : many);
}

}  // namespace detail

/// The causal check, a unit at a time (see the file comment). The head sets are planned and drawn when it is
/// made; `add` evaluates one unit; `result` gives the verdicts over the units added so far.
class causal_check {
 public:
  /// Plans the check for a model with `heads_per_layer` heads per layer, whose heads `verdicts` label (exactly one
  /// verdict per head). Throws `shape_error` naming the head when a verdict names a head the model lacks, two
  /// verdicts name one head, or a head has none; `argument_error` when `options.random_sets` is below 20 or
  /// `options.alpha` is outside (0, 1), or a head count is negative.
  causal_check(std::vector<int> heads_per_layer, const std::vector<head_verdict>& verdicts,
               causal_check_options options = {})
      : options_(std::move(options)), heads_per_layer_(std::move(heads_per_layer)) {
    if (options_.random_sets < causal_check_min_random_sets) {
      detail::fail<argument_error>("causal_check: options.random_sets is ", options_.random_sets,
                                   ", expected >= ", causal_check_min_random_sets);
    }
    if (!(options_.alpha > 0 && options_.alpha < 1)) {
      detail::fail<argument_error>("causal_check: options.alpha is ", options_.alpha, ", expected in (0, 1)");
    }
    const head_set all(heads_per_layer_);  // validates the head counts
    std::vector<head_set> of_label(head_category_count, all);
    head_set seen = all;
    for (std::size_t i = 0; i < verdicts.size(); ++i) {
      const head_verdict& v = verdicts[i];
      if (v.layer < 0 || v.layer >= all.layer_count()) {
        detail::fail<shape_error>("causal_check: verdicts[", i, "] is for head ", v.layer, ".", v.head,
                                  ", but the model has ", all.layer_count(), " layers");
      }
      if (v.head < 0 || v.head >= heads_per_layer_[static_cast<std::size_t>(v.layer)]) {
        detail::fail<shape_error>("causal_check: verdicts[", i, "] is for head ", v.layer, ".", v.head, ", but layer ",
                                  v.layer, " has ", heads_per_layer_[static_cast<std::size_t>(v.layer)], " heads");
      }
      const head_ref h{v.layer, v.head};
      if (seen.contains(h))
        detail::fail<shape_error>("causal_check: verdicts[", i, "] is a second verdict for head ", to_string(h));
      seen.insert(h);
      if (v.label != head_label::unassigned) of_label[static_cast<std::size_t>(v.label)].insert(h);
    }
    if (seen.size() != all.total_heads()) {
      detail::fail<shape_error>("causal_check: ", verdicts.size(), " verdicts for a model of ", all.total_heads(),
                                " heads: head ", to_string(first_missing(seen)), " has no verdict");
    }
    for (std::size_t c = 0; c < head_category_count; ++c) plan(c, of_label[c]);
  }

  /// Evaluates one unit: its clean losses and its losses with each planned head set ablated. Throws `shape_error`
  /// when the unit's target is shaped for another model or has another token count than `token_word`,
  /// `argument_error` when a word index is outside the document (naming the unit, the token and the value) or the
  /// unit has no document or target, `numeric_error` when a scored loss is not finite. Whatever the target throws
  /// (e.g. `argument_error` for mean ablation without means) passes through.
  void add(const causal_unit& unit) {
    const std::size_t u = units_;
    if (unit.doc == nullptr || unit.target == nullptr) {
      detail::fail<argument_error>("causal_check: unit ", u, " has no ", unit.doc == nullptr ? "document" : "target");
    }
    const ablation_target& target = *unit.target;
    if (target.heads_per_layer() != heads_per_layer_) {
      detail::fail<shape_error>("causal_check: unit ", u, ": the target's model has heads per layer ",
                                shape_text(target.heads_per_layer()), ", expected ", shape_text(heads_per_layer_),
                                " as the verdicts");
    }
    const Index T = target.token_count();
    if (static_cast<Index>(unit.token_word.size()) != T) {
      detail::fail<shape_error>("causal_check: unit ", u, ": token_word has ", unit.token_word.size(),
                                " entries, expected the target's token count ", T);
    }
    phenomenon_tokens pt;
    try {
      pt = find_phenomenon_tokens(*unit.doc, unit.token_word, unit.causal);
    } catch (const argument_error& e) {
      throw argument_error(detail::message("causal_check: unit ", u, ": ", detail::unprefixed(e)));
    }
    const token_losses& clean = target.clean();
    check_losses(clean, T, u, "the clean losses");
    const std::vector<bool>& scored = clean.scored;

    // Everything is summed into locals first, so a unit that throws half-way leaves the totals as they were.
    std::array<std::vector<loss_sums>, head_category_count> unit_sums;
    for (std::size_t c = 0; c < head_category_count; ++c) unit_sums[c].assign(labels_[c].sums.size(), loss_sums{});
    for (std::size_t k = 0; k < sets_.size(); ++k) {
      const token_losses ablated = target.losses(sets_[k], options_.kind);
      check_losses(ablated, T, u, "the losses with heads " + set_text(sets_[k]) + " ablated");
      for (const auto& ref : uses_[k]) {
        const std::size_t c = ref.first;
        const bool all = c == static_cast<std::size_t>(head_label::positional);
        const std::vector<bool>& carries = pt.carries[c];
        loss_sums& acc = unit_sums[c][ref.second];
        for (Index t = 0; t < T; ++t) {
          const auto i = static_cast<std::size_t>(t);
          if (!scored[i]) continue;
          const double d = ablated.loss[i] - clean.loss[i];
          if (!std::isfinite(d)) {
            detail::fail<numeric_error>("causal_check: unit ", u, ", token ", t, ": the loss with heads ",
                                        set_text(sets_[k]), " ablated is ", ablated.loss[i], " (clean ", clean.loss[i],
                                        "), expected a finite number");
          }
          if (all || carries[i]) {
            acc.phenomenon += d;
          } else {
            acc.other += d;
          }
        }
      }
      if (options_.progress) options_.progress(k + 1, sets_.size());
    }

    for (std::size_t c = 0; c < head_category_count; ++c) {
      label_state& s = labels_[c];
      if (pt.annotated[c]) s.annotated = true;
      const std::vector<bool>& carries = pt.carries[c];
      for (Index t = 0; t < T; ++t) {
        if (!scored[static_cast<std::size_t>(t)]) continue;
        if (carries[static_cast<std::size_t>(t)] || c == static_cast<std::size_t>(head_label::positional))
          ++s.phenomenon_tokens;
        else
          ++s.other_tokens;
      }
      for (std::size_t k = 0; k < s.sums.size(); ++k) {
        s.sums[k].phenomenon += unit_sums[c][k].phenomenon;
        s.sums[k].other += unit_sums[c][k].other;
      }
    }
    if (pt.discourse_units) discourse_units_ = true;
    for (Index t = 0; t < T; ++t) tokens_ += scored[static_cast<std::size_t>(t)] ? 1 : 0;
    ++units_;
  }

  /// The verdicts over the units added so far (see the file comment).
  causal_check_result result() const {
    causal_check_result r;
    r.kind = options_.kind;
    r.random_sets = options_.random_sets;
    r.seed = options_.seed;
    r.alpha = options_.alpha;
    r.units = units_;
    r.tokens = tokens_;
    for (std::size_t c = 0; c < head_category_count; ++c) {
      const label_state& s = labels_[c];
      label_causal_check& out = r.labels[c];
      const head_label label = head_categories[c];
      out.label = label;
      out.heads = s.heads.heads();
      out.phenomenon_tokens = s.phenomenon_tokens;
      out.other_tokens = s.other_tokens;
      out.scope = s.scope;
      out.possible_sets = s.possible_sets;
      out.exact = s.exact;
      out.verdict = causal_verdict::not_testable;
      if (s.heads.empty()) {
        out.reason = "no head carries the label";
        continue;
      }
      if (units_ > 0 && !s.annotated) {
        out.reason = label == head_label::coreference
                         ? "annotations missing: no unit's document has coreference mentions"
                     : label == head_label::syntactic ? "annotations missing: no unit's document has dependency heads"
                                                      : "annotations missing: no unit's document has sentences";
        continue;
      }
      if (!s.untestable.empty()) {
        out.reason = s.untestable;
        continue;
      }
      if (units_ == 0) {
        out.reason = "no unit was evaluated";
        continue;
      }
      if (s.phenomenon_tokens == 0) {
        out.reason = "no scored token carries the phenomenon in the units";
        continue;
      }
      const bool all = label == head_label::positional;
      if (!all && s.other_tokens == 0) {
        out.reason = "every scored token carries the phenomenon: no other token to compare with";
        continue;
      }
      auto effect = [&](const loss_sums& x) {
        const double p = x.phenomenon / static_cast<double>(s.phenomenon_tokens);
        return all ? p : p - x.other / static_cast<double>(s.other_tokens);
      };
      out.phenomenon_change = s.sums[0].phenomenon / static_cast<double>(s.phenomenon_tokens);
      if (!all) out.other_change = s.sums[0].other / static_cast<double>(s.other_tokens);
      out.effect = effect(s.sums[0]);
      const std::size_t R = s.sums.size() - 1;
      double mean = 0;
      for (std::size_t k = 1; k <= R; ++k) {
        out.random_effects.push_back(effect(s.sums[k]));
        mean += out.random_effects.back();
      }
      mean /= static_cast<double>(R);
      double ss = 0;
      for (double e : out.random_effects) ss += (e - mean) * (e - mean);
      out.random_mean = mean;
      out.random_sd = R > 1 ? std::sqrt(ss / static_cast<double>(R - 1)) : 0.0;
      const double diff = out.effect - mean;
      out.z = out.random_sd > 0 ? diff / out.random_sd
                                : (diff > 0   ? std::numeric_limits<double>::infinity()
                                   : diff < 0 ? -std::numeric_limits<double>::infinity()
                                              : 0.0);
      const double tie = 1e-12 * std::max(1.0, std::fabs(out.effect));
      for (double e : out.random_effects) out.random_at_least += e >= out.effect - tie ? 1 : 0;
      out.p_value = static_cast<double>(1 + out.random_at_least) / static_cast<double>(1 + R);
      out.verdict = out.p_value < options_.alpha && out.effect > out.random_mean ? causal_verdict::supported
                                                                                 : causal_verdict::not_supported;
      if (!s.too_few.empty()) {
        out.verdict = causal_verdict::not_testable;
        out.reason = s.too_few;
        continue;
      }
      out.reason = s.note;
      if (label == head_label::discourse && !discourse_units_) {
        out.reason = detail::causal_join(out.reason, "sentence starts only: no discourse units annotated");
      }
      const double other_share =
          static_cast<double>(s.other_tokens) / static_cast<double>(s.phenomenon_tokens + s.other_tokens);
      if (!all && other_share < causal_check_few_other_tokens) {
        // E.g. syntactic in an encoder, where nearly every word has its head or a dependent in the unit.
        std::ostringstream note;
        note << "only " << s.other_tokens << " of " << s.phenomenon_tokens + s.other_tokens
             << " scored tokens do not carry the phenomenon: the effect is close to the heads' effect on every token";
        out.reason = detail::causal_join(out.reason, note.str());
      }
    }
    return r;
  }

  /// Ablated evaluations each unit costs (distinct head sets over all labels).
  std::size_t evaluations_per_unit() const noexcept { return sets_.size(); }
  /// The heads carrying `category` (the empty set for `unassigned`).
  const head_set& label_heads(head_label category) const { return labels_[index_of(category)].heads; }
  /// The random sets `category` is compared with, in draw order (empty when not testable).
  const std::vector<head_set>& random_sets(head_label category) const { return labels_[index_of(category)].random; }
  const causal_check_options& options() const noexcept { return options_; }

 private:
  struct loss_sums {
    double phenomenon = 0;
    double other = 0;
  };
  struct label_state {
    head_set heads;
    std::vector<head_set> random;
    std::string untestable;  ///< why no random set could be drawn
    std::string too_few;     ///< why the sets drawn cannot give a verdict (the numbers are still computed)
    std::string note;        ///< how they were drawn, when worth saying
    random_scope scope = random_scope::none;
    double possible_sets = 0;
    bool exact = false;
    bool annotated = false;
    std::int64_t phenomenon_tokens = 0;
    std::int64_t other_tokens = 0;
    std::vector<loss_sums> sums;  ///< [0]: the label's heads; [1 + r]: random set r
  };

  static std::size_t index_of(head_label category) {
    const auto i = static_cast<std::size_t>(category);
    if (i >= head_category_count) {
      detail::fail<argument_error>("causal_check: label '", to_string(category),
                                   "' is not checked, expected syntactic, coreference, discourse or positional");
    }
    return i;
  }

  static std::string shape_text(const std::vector<int>& hpl) {
    std::string out = "[";
    for (std::size_t l = 0; l < hpl.size(); ++l) out += (l ? ", " : "") + std::to_string(hpl[l]);
    return out + "]";
  }

  static std::string set_text(const head_set& s) {
    std::string out = "{";
    for (const head_ref& h : s.heads()) out += (out.size() > 1 ? ", " : "") + to_string(h);
    return out + "}";
  }

  head_ref first_missing(const head_set& seen) const {
    for (int l = 0; l < seen.layer_count(); ++l) {
      for (int h = 0; h < heads_per_layer_[static_cast<std::size_t>(l)]; ++h) {
        if (!seen.contains({l, h})) return {l, h};
      }
    }
    return {};
  }

  void check_losses(const token_losses& x, Index T, std::size_t u, const std::string& what) const {
    if (static_cast<Index>(x.loss.size()) != T || static_cast<Index>(x.scored.size()) != T) {
      detail::fail<shape_error>("causal_check: unit ", u, ": ", what, " have ", x.loss.size(), " losses and ",
                                x.scored.size(), " scored flags, expected the target's token count ", T);
    }
    for (Index t = 0; t < T; ++t) {
      const auto i = static_cast<std::size_t>(t);
      if (x.scored[i] && !std::isfinite(x.loss[i])) {
        detail::fail<numeric_error>("causal_check: unit ", u, ", token ", t, ": ", what, " hold ", x.loss[i],
                                    ", expected a finite number");
      }
    }
  }

  /// Registers `s` as slot `slot` of label `c`, evaluating each distinct set once per unit.
  void use(const head_set& s, std::size_t c, std::size_t slot) {
    const std::vector<head_ref> key = s.heads();
    auto it = set_index_.find(key);
    if (it == set_index_.end()) {
      it = set_index_.emplace(key, sets_.size()).first;
      sets_.push_back(s);
      uses_.emplace_back();
    }
    uses_[it->second].emplace_back(c, slot);
  }

  /// Decides where label c's random sets come from and draws them (see the file comment).
  void plan(std::size_t c, const head_set& heads) {
    label_state& s = labels_[c];
    s.heads = heads;
    if (heads.empty()) return;
    const std::size_t k = static_cast<std::size_t>(heads.size());
    const std::size_t N = options_.random_sets;
    const std::size_t least = causal_check_min_random_sets;

    std::vector<detail::causal_draw_group> same;
    detail::causal_draw_group any;
    any.count = k;
    bool same_possible = true;
    std::string short_layer;
    double same_sets = 1;
    for (int l = 0; l < heads.layer_count(); ++l) {
      detail::causal_draw_group g;
      for (int h = 0; h < heads_per_layer_[static_cast<std::size_t>(l)]; ++h) {
        if (heads.contains({l, h})) {
          ++g.count;
        } else {
          g.pool.push_back({l, h});
          any.pool.push_back({l, h});
        }
      }
      if (g.count == 0) continue;
      if (g.pool.size() < g.count) {
        if (same_possible) {
          short_layer = "layer " + std::to_string(l) + " has " +
                        detail::causal_plural(static_cast<double>(g.pool.size()), "other head", "other heads") +
                        " for " + detail::causal_plural(static_cast<double>(g.count), "label head", "label heads");
        }
        same_possible = false;
      }
      same_sets *= detail::causal_binomial(g.pool.size(), g.count);
      same.push_back(std::move(g));
    }
    const double any_sets = detail::causal_binomial(any.pool.size(), k);

    std::vector<detail::causal_draw_group> groups;
    if (same_possible && same_sets >= static_cast<double>(least)) {
      s.scope = random_scope::same_layers;
      s.possible_sets = same_sets;
      groups = std::move(same);
    } else if (any_sets >= static_cast<double>(least)) {
      s.scope = random_scope::any_layer;
      s.possible_sets = any_sets;
      s.note = "random sets drawn from any layer: " +
               (same_possible
                    ? "the same layers hold only " + detail::causal_plural(same_sets, "distinct set", "distinct sets")
                    : short_layer);
      groups.push_back(std::move(any));
    } else {
      if (any.pool.empty()) {
        s.untestable = "the label's heads are every head of the model: no other head to draw";
      } else if (any.pool.size() < k) {
        s.untestable = "only " +
                       detail::causal_plural(static_cast<double>(any.pool.size()), "other head", "other heads") +
                       " for " + detail::causal_plural(static_cast<double>(k), "label head", "label heads");
      } else {
        // A small model (USE-lite has 8 heads): too few sets for a verdict, but the label is still compared with
        // every one of them, so the report can say where it ranks.
        std::ostringstream why;
        why << "only " << detail::causal_plural(any_sets, "distinct set", "distinct sets") << " of "
            << detail::causal_plural(static_cast<double>(k), "other head", "other heads")
            << (any_sets == 1 ? " exists" : " exist") << ", fewer than the " << least
            << " a verdict needs (p cannot fall below 1/" << static_cast<long long>(any_sets) + 1
            << "); the numbers compare the label with all of them";
        s.too_few = why.str();
        s.scope = random_scope::any_layer;
        s.possible_sets = any_sets;
        groups.push_back(std::move(any));
      }
      if (s.too_few.empty()) return;
    }

    const head_set empty(heads_per_layer_);
    if (s.possible_sets <= static_cast<double>(N)) {
      // Few enough: every possible set once (an exact test), as the product of each group's combinations.
      s.exact = true;
      std::vector<std::vector<std::vector<head_ref>>> combos;
      for (const auto& g : groups) combos.push_back(detail::causal_combinations(g));
      std::vector<std::size_t> at(combos.size(), 0);
      for (;;) {
        head_set r = empty;
        for (std::size_t g = 0; g < combos.size(); ++g) {
          for (const head_ref& h : combos[g][at[g]]) r.insert(h);
        }
        s.random.push_back(std::move(r));
        std::size_t g = combos.size();
        while (g > 0 && ++at[g - 1] == combos[g - 1].size()) at[--g] = 0;
        if (g == 0) break;
      }
      s.note = detail::causal_join(
          s.note, "all " + detail::causal_plural(s.possible_sets, "possible random set", "possible random sets") +
                      " evaluated (exact test)");
    } else {
      detail::causal_rng rng(options_.seed, c);
      for (std::size_t r = 0; r < N; ++r) {
        head_set drawn = empty;
        for (auto& g : groups) {  // partial Fisher-Yates: the first `count` of a shuffled pool
          for (std::size_t i = 0; i < g.count; ++i) {
            const std::size_t j = i + static_cast<std::size_t>(rng.below(g.pool.size() - i));
            std::swap(g.pool[i], g.pool[j]);
            drawn.insert(g.pool[i]);
          }
        }
        s.random.push_back(std::move(drawn));
      }
    }
    s.sums.assign(1 + s.random.size(), loss_sums{});
    use(heads, c, 0);
    for (std::size_t r = 0; r < s.random.size(); ++r) use(s.random[r], c, 1 + r);
  }

  causal_check_options options_;
  std::vector<int> heads_per_layer_;
  std::array<label_state, head_category_count> labels_;
  std::vector<head_set> sets_;  ///< distinct sets to evaluate, in planning order
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> uses_;  ///< per set: (label, slot) using it
  std::map<std::vector<head_ref>, std::size_t> set_index_;
  std::size_t units_ = 0;
  std::int64_t tokens_ = 0;
  bool discourse_units_ = false;
};

/// Runs the causal check over `units` (see the file comment): plans the sets from the first unit's target shape
/// and `verdicts`, then evaluates every unit in order. `options.progress`, when set, is called after each
/// evaluation with (done, units x evaluations per unit). Throws `argument_error` when `units` is empty, and what
/// `causal_check` and `causal_check::add` throw.
inline causal_check_result run_causal_check(const std::vector<causal_unit>& units,
                                            const std::vector<head_verdict>& verdicts,
                                            const causal_check_options& options = {}) {
  if (units.empty()) detail::fail<argument_error>("run_causal_check: units is empty, expected at least one unit");
  if (units.front().target == nullptr) detail::fail<argument_error>("run_causal_check: unit 0 has no target");
  // The check reports progress within a unit; this adds the units already done.
  std::size_t base = 0, total = 0;
  causal_check_options inner = options;
  if (options.progress) {
    inner.progress = [&options, &base, &total](std::size_t done, std::size_t) { options.progress(base + done, total); };
  }
  causal_check check(units.front().target->heads_per_layer(), verdicts, inner);
  total = check.evaluations_per_unit() * units.size();
  for (const causal_unit& unit : units) {
    check.add(unit);
    base += check.evaluations_per_unit();
  }
  return check.result();
}

}  // namespace headlens
