#pragma once
/// \file
/// Head ablation on USE-lite (models/use_lite.hpp): `use_lite_ablation_target`, the `ablation_target` of one
/// sequence (models/layered_ablation_target.hpp says how it reuses the layers below an ablation and skips masked
/// heads), and `head_means_of`, the mean z of every head over a corpus, for mean ablation.
///
/// Task loss (analysis/ablation_target.hpp), a sentence embedder's: per token, 1 - cosine of its last-layer row to
/// the unablated row; `sequence`, 1 - cosine of the sentence embedding (pooled, tanh, normalised) to the unablated
/// one. Ids are clipped to the first 128 tokens, as the model clips them.
///
/// Optional header, like use_lite.hpp: needs nlohmann_json.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/error.hpp"
#include "headlens/models/head_means.hpp"
#include "headlens/models/layered_ablation_target.hpp"
#include "headlens/models/use_lite.hpp"
#include "headlens/types.hpp"

namespace headlens {

namespace detail {

/// USE-lite and one sequence, as `layered_ablation_target` runs them.
class use_lite_stack {
 public:
  use_lite_stack(const use_lite_model& model, std::vector<std::int32_t> ids)
      : model_(&model), ids_(std::move(ids)), heads_(use_lite_model::n_layers, use_lite_model::n_heads) {}

  int layer_count() const noexcept { return use_lite_model::n_layers; }
  const std::vector<int>& heads_per_layer() const noexcept { return heads_; }
  Index head_dim(int l) const noexcept {
    return (l == 0 ? use_lite_model::embedding_width : use_lite_model::width) / use_lite_model::n_heads;
  }
  Index token_count() const noexcept {
    return std::min<Index>(Index(ids_.size()), use_lite_model::max_tokens);
  }

  matrix<float> input(const forward_options<float>&) const { return model_->layer_input(ids_); }
  template <class Hooks>
  matrix<float> layer(int l, const Eigen::Ref<const matrix<float>>& x, const forward_options<float>& o,
                      Hooks&& hooks) const {
    return model_->layer(l, x, o, std::forward<Hooks>(hooks));
  }
  matrix<float> output(matrix<float> x, const forward_options<float>&) const { return x; }
  token_losses loss(const matrix<float>& rows, const matrix<float>& reference, const forward_options<float>&) const {
    token_losses out = row_cosine_losses(rows, reference);
    out.sequence = one_minus_cosine(model_->sentence_embedding(rows), model_->sentence_embedding(reference));
    return out;
  }

 private:
  const use_lite_model* model_;
  std::vector<std::int32_t> ids_;
  std::vector<int> heads_;
};

}  // namespace detail

/// The `ablation_target` of one sequence of token ids on USE-lite (see the file comment). Refers to `model`, which
/// must outlive it.
class use_lite_ablation_target final : public layered_ablation_target<detail::use_lite_stack> {
 public:
  /// Runs the unablated model over `ids`. Throws `argument_error` for empty ids, an id outside the vocabulary or
  /// options `ablation_target_options` forbids; `shape_error` for means of another model.
  use_lite_ablation_target(const use_lite_model& model, std::vector<std::int32_t> ids,
                           const ablation_target_options& options = {})
      : layered_ablation_target(detail::use_lite_stack(model, std::move(ids)), options) {}
};

/// The mean z of every head of USE-lite over every token of `sequences` (each clipped to 128 tokens, run alone).
/// Throws `argument_error` for an empty list, and what `use_lite_model::forward` throws, naming the sequence.
inline head_means head_means_of(const use_lite_model& model, const std::vector<std::vector<std::int32_t>>& sequences) {
  if (sequences.empty()) detail::fail<argument_error>("sequences is empty, expected at least one sequence");
  const detail::use_lite_stack shape(model, {});
  head_means means(shape.heads_per_layer(), {shape.head_dim(0), shape.head_dim(1)});
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    try {
      model.forward(sequences[s], detail::head_mean_recorder{&means});
    } catch (const argument_error& e) {
      detail::fail<argument_error>("sequences[", s, "]: ", detail::unprefixed(e));
    }
    means.add_tokens(std::min<std::int64_t>(std::int64_t(sequences[s].size()), use_lite_model::max_tokens));
  }
  return means;
}

}  // namespace headlens
