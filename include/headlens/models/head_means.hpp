#pragma once
/// \file
/// The mean z of every head over a reference corpus, what mean ablation puts in place of an ablated head's z
/// (analysis/ablation_target.hpp). Sums are kept in double with the token count, so means over parts of a corpus
/// merge exactly into the mean over all of it (up to double rounding, independent of the split).
///
///   head_means means = head_means_of(model, sequences);   // models/transformer_ablation.hpp, use_lite_ablation.hpp
///   means.merge(more);                                     // another share of the corpus
///   matrix<float> m = means.mean(layer);                   // [heads x head_dim]

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// Sums of every head's z rows over the tokens of a corpus, per layer [heads x head_dim] (layers may differ in
/// heads and width, as USE-lite's 64- and 128-wide heads do).
class head_means {
 public:
  head_means() = default;
  /// Zero sums for layers of `heads[l]` heads of width `head_dims[l]`. Throws `argument_error` when the lists
  /// differ in length or hold a negative count.
  head_means(const std::vector<int>& heads, const std::vector<Index>& head_dims) {
    if (heads.size() != head_dims.size()) {
      detail::fail<argument_error>("head_means: heads has ", heads.size(), " layers and head_dims ", head_dims.size(),
                                   ", expected the same");
    }
    for (std::size_t l = 0; l < heads.size(); ++l) {
      if (heads[l] < 0 || head_dims[l] < 0) {
        detail::fail<argument_error>("head_means: layer ", l, " has ", heads[l], " heads of width ", head_dims[l],
                                     ", expected counts >= 0");
      }
      sums_.push_back(matrix<double>::Zero(heads[l], head_dims[l]));
    }
  }

  int layer_count() const noexcept { return int(sums_.size()); }
  /// Heads in each layer.
  std::vector<int> heads_per_layer() const {
    std::vector<int> out;
    for (const matrix<double>& s : sums_) out.push_back(int(s.rows()));
    return out;
  }
  /// Width of each head's z in layer l.
  Index head_dim(int layer) const { return sums(layer).cols(); }
  /// Tokens summed (every head of every layer saw each of them).
  std::int64_t tokens() const noexcept { return tokens_; }

  /// The sums of layer l, [heads x head_dim]. Throws `argument_error` for a layer outside [0, layer_count()).
  const matrix<double>& sums(int layer) const {
    check_layer(layer);
    return sums_[std::size_t(layer)];
  }
  /// The mean z of layer l's heads, [heads x head_dim]. Throws `argument_error` for a bad layer or when no token
  /// has been summed.
  matrix<float> mean(int layer) const {
    check_layer(layer);
    if (tokens_ <= 0) detail::fail<argument_error>("head_means: no tokens summed, so no mean");
    return (sums_[std::size_t(layer)] / double(tokens_)).cast<float>();
  }

  /// Adds the z rows `rows` [n x head_dim] of one head (what a `z` hook sees). Does not count tokens: call
  /// `add_tokens` once per sequence. Throws `argument_error` / `shape_error` for a head or width that do not fit.
  template <class Rows>
  void add_rows(int layer, int head, const Rows& rows) {
    check_layer(layer);
    matrix<double>& s = sums_[std::size_t(layer)];
    if (head < 0 || head >= s.rows()) {
      detail::fail<argument_error>("head_means: head ", head, " of layer ", layer, " is outside [0, ", s.rows(), ")");
    }
    if (rows.cols() != s.cols()) {
      detail::fail<shape_error>("head_means: rows of layer ", layer, " head ", head, " have ", rows.cols(),
                                " columns, expected head_dim = ", s.cols());
    }
    for (Index r = 0; r < rows.rows(); ++r) {
      for (Index c = 0; c < rows.cols(); ++c) s(head, c) += double(rows(r, c));
    }
  }
  /// Counts `n` more tokens. Throws `argument_error` for n < 0.
  void add_tokens(std::int64_t n) {
    if (n < 0) detail::fail<argument_error>("head_means: n is ", n, ", expected >= 0");
    tokens_ += n;
  }

  /// Adds another share of the corpus. Throws `shape_error` when its layers, heads or widths differ.
  void merge(const head_means& other) {
    if (other.sums_.size() != sums_.size()) {
      detail::fail<shape_error>("head_means::merge: other has ", other.sums_.size(), " layers, expected ",
                                sums_.size());
    }
    for (std::size_t l = 0; l < sums_.size(); ++l) {
      if (other.sums_[l].rows() != sums_[l].rows() || other.sums_[l].cols() != sums_[l].cols()) {
        detail::fail<shape_error>("head_means::merge: layer ", l, " of other is [", other.sums_[l].rows(), " x ",
                                  other.sums_[l].cols(), "], expected [", sums_[l].rows(), " x ", sums_[l].cols(),
                                  "]");
      }
    }
    for (std::size_t l = 0; l < sums_.size(); ++l) sums_[l] += other.sums_[l];
    tokens_ += other.tokens_;
  }

 private:
  void check_layer(int layer) const {
    if (layer < 0 || layer >= layer_count()) {
      detail::fail<argument_error>("head_means: layer ", layer, " is outside [0, ", layer_count(), ")");
    }
  }

  std::vector<matrix<double>> sums_;
  std::int64_t tokens_ = 0;
};

namespace detail {

/// A hook set that adds every head's `z` rows (of batch row 0, the first `valid_rows` of them when set) to a
/// `head_means`. The caller counts the tokens.
struct head_mean_recorder {
  static constexpr point_set points{hook_point::z};
  head_means* means = nullptr;
  Index valid_rows = -1;  ///< rows of a view that are real tokens (-1: all)

  bool wants(const hook_context& ctx) const noexcept { return ctx.batch_row == 0; }
  template <class Scalar>
  void operator()(const hook_context& ctx, matrix_view<Scalar> view) {
    const Index n = valid_rows < 0 ? view.rows() : std::min(valid_rows, view.rows());
    means->add_rows(ctx.layer, ctx.head, view.topRows(n));
  }
};

}  // namespace detail

}  // namespace headlens
