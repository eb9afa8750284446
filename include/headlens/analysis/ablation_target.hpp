#pragma once
/// \file
/// What every ablation experiment (head importance, the causal check of labels, pruning plans) evaluates: one
/// sequence of one model, its per-token task loss unablated, and the same loss with a chosen set of heads ablated.
/// Experiments are written against `ablation_target` alone, so they run on any model that provides one (and on a
/// synthetic target in tests).
///
/// Task losses, per token (a larger value is worse):
/// - a decoder: the cross-entropy of token t given tokens 0..t-1 (`scored[0]` is false: nothing predicts it);
/// - an encoder or sentence embedder: 1 - cosine of token t's output row to the unablated one (so 0 unablated).
/// `sequence` is the loss of the whole sequence: the mean over scored tokens, or for a sentence embedder (USE-lite)
/// 1 - cosine of the pooled embedding to the unablated one.
///
/// Ablations: `zero` removes a head's output (its z is zero: the head's work is skipped, as
/// `forward_options::head_mask` does); `mean` replaces the head's z at every token by its mean over a reference
/// corpus, which the target was given when it was made.

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "headlens/error.hpp"

namespace headlens {

/// One head of one layer.
struct head_ref {
  int layer = 0;
  int head = 0;
  friend bool operator==(const head_ref& a, const head_ref& b) noexcept {
    return a.layer == b.layer && a.head == b.head;
  }
  friend bool operator!=(const head_ref& a, const head_ref& b) noexcept { return !(a == b); }
  friend bool operator<(const head_ref& a, const head_ref& b) noexcept {
    return a.layer != b.layer ? a.layer < b.layer : a.head < b.head;
  }
};

/// `l.h`, as reports name a head.
inline std::string to_string(const head_ref& h) { return std::to_string(h.layer) + "." + std::to_string(h.head); }

/// A set of heads of a model whose layers have `heads_per_layer()[l]` heads each (layers may differ, as in a
/// pruned model).
class head_set {
 public:
  head_set() = default;
  /// The empty set over a model of this shape. Throws `argument_error` for a negative head count.
  explicit head_set(std::vector<int> heads_per_layer) : heads_per_layer_(std::move(heads_per_layer)) {
    member_.resize(heads_per_layer_.size());
    for (std::size_t l = 0; l < heads_per_layer_.size(); ++l) {
      if (heads_per_layer_[l] < 0) {
        detail::fail<argument_error>("heads_per_layer[", l, "] is ", heads_per_layer_[l], ", expected >= 0");
      }
      member_[l].assign(std::size_t(heads_per_layer_[l]), false);
    }
  }

  const std::vector<int>& heads_per_layer() const noexcept { return heads_per_layer_; }
  int layer_count() const noexcept { return int(heads_per_layer_.size()); }
  /// Heads the model has in all.
  int total_heads() const noexcept {
    int n = 0;
    for (int h : heads_per_layer_) n += h;
    return n;
  }
  /// Heads in the set.
  int size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  bool contains(head_ref h) const {
    check(h, "contains");
    return member_[std::size_t(h.layer)][std::size_t(h.head)];
  }
  void insert(head_ref h) {
    check(h, "insert");
    auto&& bit = member_[std::size_t(h.layer)][std::size_t(h.head)];
    if (!bit) ++size_;
    bit = true;
  }
  void erase(head_ref h) {
    check(h, "erase");
    auto&& bit = member_[std::size_t(h.layer)][std::size_t(h.head)];
    if (bit) --size_;
    bit = false;
  }
  /// The heads of layer l that are NOT in the set, as `forward_options::head_mask` takes them (true: run).
  std::vector<bool> keep_mask(int layer) const {
    check(head_ref{layer, 0}, "keep_mask", /*head_may_be_absent=*/true);
    std::vector<bool> keep = member_[std::size_t(layer)];
    keep.flip();
    return keep;
  }
  /// Whether layer l has a head in the set.
  bool touches(int layer) const {
    check(head_ref{layer, 0}, "touches", true);
    const auto& m = member_[std::size_t(layer)];
    return std::find(m.begin(), m.end(), true) != m.end();
  }
  /// The lowest layer with a head in the set, or layer_count() when the set is empty: everything below it can be
  /// reused from an unablated run.
  int lowest_layer() const noexcept {
    for (int l = 0; l < layer_count(); ++l) {
      for (bool b : member_[std::size_t(l)]) {
        if (b) return l;
      }
    }
    return layer_count();
  }
  /// The heads in the set, layer by layer.
  std::vector<head_ref> heads() const {
    std::vector<head_ref> out;
    for (int l = 0; l < layer_count(); ++l) {
      for (int h = 0; h < heads_per_layer_[std::size_t(l)]; ++h) {
        if (member_[std::size_t(l)][std::size_t(h)]) out.push_back({l, h});
      }
    }
    return out;
  }

 private:
  void check(head_ref h, const char* what, bool head_may_be_absent = false) const {
    if (h.layer < 0 || h.layer >= layer_count()) {
      detail::fail<argument_error>("head_set::", what, ": layer ", h.layer, " is outside [0, ", layer_count(), ")");
    }
    const int n = heads_per_layer_[std::size_t(h.layer)];
    if (!head_may_be_absent && (h.head < 0 || h.head >= n)) {
      detail::fail<argument_error>("head_set::", what, ": head ", h.head, " of layer ", h.layer, " is outside [0, ",
                                   n, ")");
    }
  }

  std::vector<int> heads_per_layer_;
  std::vector<std::vector<bool>> member_;
  int size_ = 0;
};

/// How an ablated head is removed (see the file comment).
enum class ablation { zero, mean };

inline const char* to_string(ablation a) noexcept { return a == ablation::zero ? "zero" : "mean"; }

/// Per-token losses of one sequence (see the file comment for what the loss is).
struct token_losses {
  std::vector<double> loss;  ///< [T]; meaningful where `scored`
  std::vector<bool> scored;  ///< [T]: whether token t has a loss (false for a decoder's first token)
  double sequence = 0;       ///< the loss of the whole sequence
};

/// One sequence of one model, ready to be evaluated with heads ablated. Implementations cache what an ablation
/// does not change (the input of every layer below the lowest ablated one), so a sweep over single heads costs far
/// less than a full forward per head. Not thread-safe: one target serves one thread.
class ablation_target {
 public:
  virtual ~ablation_target() = default;
  /// Heads in each layer of the model.
  virtual const std::vector<int>& heads_per_layer() const = 0;
  /// Tokens in the sequence.
  /// (std::ptrdiff_t is headlens::Index, Eigen's index type: this header and what builds on it, such as head cards,
  /// need no Eigen.)
  virtual std::ptrdiff_t token_count() const = 0;
  /// The losses of the unablated model.
  virtual const token_losses& clean() const = 0;
  /// The losses with every head of `ablated` removed as `kind` says. Throws `argument_error` when `ablated` is
  /// shaped for another model, or when `kind` is `mean` and the target was made without means.
  virtual token_losses losses(const head_set& ablated, ablation kind) const = 0;
};

}  // namespace headlens
