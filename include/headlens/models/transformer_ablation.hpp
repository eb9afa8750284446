#pragma once
/// \file
/// Head ablation on a `transformer<float>` (every decoder family, and the post-norm encoders BERT and RoBERTa):
/// `transformer_ablation_target`, the `ablation_target` of one sequence (models/layered_ablation_target.hpp says
/// how it reuses the layers below an ablation and skips masked heads), and `head_means_of`, the mean z of every
/// head over a corpus, for mean ablation.
///
/// Task loss (analysis/ablation_target.hpp): a model whose attention is causal is a decoder, scored by next-token
/// cross-entropy from its LM head (log-softmax in double; token 0 is not scored); otherwise an encoder, scored per
/// token by 1 - cosine of its final row (after the final norm, where there is one) to the unablated row.
///
///   transformer_ablation_target target(model, ids, {options, std::nullopt, &means});
///   head_set one(target.heads_per_layer());
///   one.insert({3, 5});
///   double delta = target.losses(one, ablation::zero).sequence - target.clean().sequence;

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/error.hpp"
#include "headlens/models/head_means.hpp"
#include "headlens/models/layered_ablation_target.hpp"
#include "headlens/models/transformer.hpp"
#include "headlens/types.hpp"

namespace headlens {

namespace detail {

/// Next-token cross-entropy of `ids` under `logits` [T x vocab] (row t predicts token t + 1), in double:
/// loss[t] = logsumexp(logits[t - 1]) - logits[t - 1][ids[t]] for t >= 1; token 0 is not scored; `sequence` is
/// the mean over scored tokens (0 for a one-token sequence, which has none).
template <class Logits>
token_losses next_token_losses(const Logits& logits, const std::vector<std::int32_t>& ids) {
  token_losses out;
  const std::size_t t = ids.size();
  out.loss.assign(t, 0.0);
  out.scored.assign(t, false);
  double total = 0;
  for (std::size_t i = 1; i < t; ++i) {
    const auto row = logits.row(Index(i - 1));
    double top = -INFINITY;
    for (Index j = 0; j < row.size(); ++j) top = std::max(top, double(row(j)));
    double sum = 0;
    for (Index j = 0; j < row.size(); ++j) sum += std::exp(double(row(j)) - top);
    out.loss[i] = top + std::log(sum) - double(row(ids[i]));
    out.scored[i] = true;
    total += out.loss[i];
  }
  out.sequence = t > 1 ? total / double(t - 1) : 0.0;
  return out;
}

/// A `transformer<float>` and one sequence, as `layered_ablation_target` runs them (see its file comment).
class transformer_stack {
 public:
  transformer_stack(const transformer<float>& model, std::vector<std::int32_t> ids)
      : model_(&model), ids_(std::move(ids)) {
    for (const decoder_block<float>& b : model.blocks()) heads_.push_back(int(b.attention().config().n_heads));
    decoder_ = model.blocks().empty() || model.blocks().front().attention().config().causal;
  }

  int layer_count() const noexcept { return int(model_->layer_count()); }
  const std::vector<int>& heads_per_layer() const noexcept { return heads_; }
  Index head_dim(int l) const { return model_->blocks()[std::size_t(l)].attention().config().head_size(); }
  Index token_count() const noexcept { return Index(ids_.size()); }
  /// Whether the loss is next-token cross-entropy (else 1 - cosine of output rows).
  bool decoder() const noexcept { return decoder_; }

  matrix<float> input(const forward_options<float>& o) const { return model_->embeddings(ids_, o); }
  template <class Hooks>
  matrix<float> layer(int l, const Eigen::Ref<const matrix<float>>& x, const forward_options<float>& o,
                      Hooks&& hooks) const {
    return model_->blocks()[std::size_t(l)].forward(x, o, std::forward<Hooks>(hooks));
  }
  matrix<float> output(matrix<float> x, const forward_options<float>& o) const {
    if (model_->final_norm().size() != 0) model_->final_norm().apply(x, x, o.threads);
    return x;
  }
  token_losses loss(const matrix<float>& rows, const matrix<float>& reference, const forward_options<float>& o) const {
    if (decoder_) return next_token_losses(model_->logits(rows, o.threads), ids_);
    return row_cosine_losses(rows, reference);
  }

 private:
  const transformer<float>* model_;
  std::vector<std::int32_t> ids_;
  std::vector<int> heads_;
  bool decoder_ = true;
};

}  // namespace detail

/// The `ablation_target` of one sequence of token ids on a `transformer<float>` (see the file comment). Refers to
/// `model`, which must outlive it.
class transformer_ablation_target final : public layered_ablation_target<detail::transformer_stack> {
 public:
  /// Runs the unablated model over `ids`. Throws `argument_error` for empty ids, an id outside the vocabulary, a
  /// sequence longer than the model's positions, or options `ablation_target_options` forbids; `shape_error` for
  /// means of another model.
  transformer_ablation_target(const transformer<float>& model, std::vector<std::int32_t> ids,
                              const ablation_target_options& options = {})
      : layered_ablation_target(detail::transformer_stack(model, std::move(ids)), options) {}
};

/// The mean z of every head of `model` over every token of `sequences`, each run alone with `options` (threads,
/// path; `head_mask` must be empty). Throws `argument_error` for an empty list or a set head mask, and what
/// `transformer::hidden_states` throws, naming the sequence.
inline head_means head_means_of(const transformer<float>& model,
                                const std::vector<std::vector<std::int32_t>>& sequences,
                                const forward_options<float>& options = {}) {
  if (sequences.empty()) detail::fail<argument_error>("sequences is empty, expected at least one sequence");
  if (!options.head_mask.empty()) {
    detail::fail<argument_error>("options.head_mask has ", options.head_mask.size(),
                                 " entries, expected it empty (means are over the unablated model)");
  }
  std::vector<int> heads;
  std::vector<Index> dims;
  for (const decoder_block<float>& b : model.blocks()) {
    heads.push_back(int(b.attention().config().n_heads));
    dims.push_back(b.attention().config().head_size());
  }
  head_means means(heads, dims);
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    try {
      model.hidden_states(sequences[s], options, detail::head_mean_recorder{&means});
    } catch (const argument_error& e) {
      detail::fail<argument_error>("sequences[", s, "]: ", detail::unprefixed(e));
    }
    means.add_tokens(std::int64_t(sequences[s].size()));
  }
  return means;
}

}  // namespace headlens
