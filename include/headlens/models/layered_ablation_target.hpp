#pragma once
/// \file
/// `layered_ablation_target`: the `ablation_target` (analysis/ablation_target.hpp) of any model that runs layer by
/// layer, and `ablation_target_options`, what every model-backed target is made with.
///
/// The unablated forward runs once, when the target is made, and keeps the input of every layer (the residual
/// stream). `losses(set, kind)` restarts at `set.lowest_layer()` from the kept input and runs each later layer with
/// its own head mask (`forward_options::head_mask`: a masked head's scores, pattern and z are not computed), so
/// ablating one head of layer l costs the layers l..L-1 and the loss, and the masked head's work is skipped.
///
/// - Zero ablation: the head is masked (its z is zero).
/// - Mean ablation: the head is masked and its mean z projected by the layer's output projection, mean_z W_o[h], a
///   constant row, is added to the layer's attention output (an `out` hook, so no kernel changes). The rows are
///   formed once per target by the layer itself: a one-token probe whose `z` hook puts the means in and whose
///   `head_out` hook reads mean_z W_o[h] back, so the projection is exactly the layer's own (USE-lite's wider
///   layer-0 projection included).
///
/// What a model provides (`Stack`): `layer_count()`, `heads_per_layer()`, `head_dim(l)`, `token_count()`,
/// `input(options)` (block 0's input for the target's ids), `layer(l, x, options, hooks)` (block l),
/// `output(x, options)` (the rows the loss reads, from the last block's output), and
/// `loss(rows, reference_rows, options)` (`token_losses` of `rows` against the unablated `reference_rows`).
/// models/transformer_ablation.hpp and models/use_lite_ablation.hpp define the two stacks of headlens.

#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/kernels/multi_head_attention.hpp"
#include "headlens/models/head_means.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// What a model-backed `ablation_target` is made with.
struct ablation_target_options {
  /// Options of every run of the model (threads, path, and whatever the kernels add, e.g. sparsity). `batch` must
  /// be 1 and `head_mask`, `key_padding` and `positions` empty: the target sets each layer's head mask itself.
  forward_options<float> forward;
  /// When set, `clean()` (and, for encoders and sentence embedders, the rows every loss compares to) comes from a
  /// run with these options instead, and `losses(empty set)` is the run with `forward`: e.g. dense here and sparse
  /// attention in `forward` measures what sparsity costs in task loss. Same constraints as `forward`.
  std::optional<forward_options<float>> reference;
  /// Means for mean ablation (read while the target is made; not kept). Without them, `losses(set, mean)` throws.
  const head_means* means = nullptr;
};

namespace detail {

/// 1 - cosine of two rows in double; exactly 0 when the rows are equal bit for bit (so an unablated row has loss
/// 0), 1 when one of them is zero and the other not.
template <class A, class B>
double one_minus_cosine(const A& a, const B& b) {
  double dot = 0, aa = 0, bb = 0;
  bool same = true;
  for (Index j = 0; j < a.size(); ++j) {
    const double x = double(a(j)), y = double(b(j));
    same = same && a(j) == b(j);
    dot += x * y;
    aa += x * x;
    bb += y * y;
  }
  if (same) return 0.0;
  if (aa == 0 || bb == 0) return 1.0;
  return 1.0 - dot / std::sqrt(aa * bb);
}

/// Per-token 1 - cosine of each row of `rows` to the same row of `reference`, every token scored, `sequence` their
/// mean (an encoder's task loss).
template <class Rows>
token_losses row_cosine_losses(const Rows& rows, const Rows& reference) {
  token_losses out;
  const Index t = rows.rows();
  out.loss.resize(std::size_t(t));
  out.scored.assign(std::size_t(t), true);
  double total = 0;
  for (Index r = 0; r < t; ++r) {
    out.loss[std::size_t(r)] = one_minus_cosine(rows.row(r), reference.row(r));
    total += out.loss[std::size_t(r)];
  }
  out.sequence = t > 0 ? total / double(t) : 0.0;
  return out;
}

/// Adds a constant row to the attention output (`out`) of the layers that have one: mean ablation's mean_z W_o.
struct add_rows_at_out {
  static constexpr point_set points{hook_point::out};
  const std::vector<vector<float>>* rows = nullptr;  ///< [layer] -> [d] or empty

  bool wants(const hook_context& ctx) const noexcept {
    return ctx.layer >= 0 && std::size_t(ctx.layer) < rows->size() && (*rows)[std::size_t(ctx.layer)].size() != 0;
  }
  void operator()(const hook_context& ctx, matrix_view<float> view) const {
    view.rowwise() += (*rows)[std::size_t(ctx.layer)].transpose();
  }
};

/// The one-token probe of one layer: every head's z becomes its mean, and each head's `head_out` (mean_z W_o[h],
/// no bias) is read into `projected` [heads x d].
struct mean_projection_probe {
  static constexpr point_set points{hook_point::z, hook_point::head_out};
  int layer = 0;
  const matrix<float>* means = nullptr;  ///< [heads x head_dim]
  matrix<float>* projected = nullptr;    ///< [heads x d_out], filled here

  bool wants(const hook_context& ctx) const noexcept { return ctx.layer == layer && ctx.batch_row == 0; }
  void operator()(const hook_context& ctx, matrix_view<float> view) const {
    if (ctx.point == hook_point::z) {
      view.rowwise() = means->row(ctx.head);
    } else {
      if (projected->rows() != means->rows() || projected->cols() != view.cols()) {
        projected->setZero(means->rows(), view.cols());
      }
      projected->row(ctx.head) = view.row(0);
    }
  }
};

/// Checks the options a target is given (see `ablation_target_options`).
inline void check_target_forward_options(const forward_options<float>& o, const char* name) {
  if (o.batch != 1) detail::fail<argument_error>(name, ".batch is ", o.batch, ", expected 1 (one sequence)");
  if (!o.head_mask.empty()) {
    detail::fail<argument_error>(name, ".head_mask has ", o.head_mask.size(),
                                 " entries, expected it empty (the target masks each layer's heads itself)");
  }
  if (o.key_padding.size() != 0) {
    detail::fail<argument_error>(name, ".key_padding is set, expected it empty (one unpadded sequence)");
  }
}

}  // namespace detail

/// The `ablation_target` of a model that runs layer by layer (see the file comment). Holds the model's stack by
/// value (the stack refers to the model, which must outlive the target). Not thread-safe, as every target; targets
/// of one model may run on different threads at once (the model is only read). `options.forward.row_observer` and
/// `statistics`, when set, see every run (the unablated one and each `losses`).
template <class Stack>
class layered_ablation_target : public ablation_target {
 public:
  /// Runs the unablated model (twice with `options.reference`) and keeps every layer's input. Throws
  /// `argument_error` for options as `ablation_target_options` forbids, `shape_error` when `options.means` is
  /// shaped for another model and `argument_error` when it holds no tokens, and what the model throws for its ids.
  layered_ablation_target(Stack stack, const ablation_target_options& options)
      : stack_(std::move(stack)), options_(options.forward), heads_(stack_.heads_per_layer()) {
    options_.head_mask.clear();
    detail::check_target_forward_options(options.forward, "options.forward");
    if (options.reference) detail::check_target_forward_options(*options.reference, "options.reference");
    const int L = stack_.layer_count();
    inputs_.reserve(std::size_t(L));
    matrix<float> x = stack_.input(options_);
    for (int l = 0; l < L; ++l) {
      inputs_.push_back(x);
      x = stack_.layer(l, inputs_.back(), options_, no_hooks{});
    }
    const matrix<float> base_rows = stack_.output(std::move(x), options_);
    if (options.reference) {
      matrix<float> r = stack_.input(*options.reference);
      for (int l = 0; l < L; ++l) r = stack_.layer(l, r, *options.reference, no_hooks{});
      reference_rows_ = stack_.output(std::move(r), *options.reference);
      clean_ = stack_.loss(reference_rows_, reference_rows_, options_);
      base_ = stack_.loss(base_rows, reference_rows_, options_);
    } else {
      reference_rows_ = base_rows;
      clean_ = stack_.loss(reference_rows_, reference_rows_, options_);
      base_ = clean_;
    }
    if (options.means != nullptr) project_means(*options.means);
  }

  const std::vector<int>& heads_per_layer() const override { return heads_; }
  Index token_count() const override { return stack_.token_count(); }
  const token_losses& clean() const override { return clean_; }
  /// Whether the target was made with means (so `losses(set, ablation::mean)` works).
  bool has_means() const noexcept { return !projected_means_.empty(); }

  token_losses losses(const head_set& ablated, ablation kind) const override {
    if (ablated.heads_per_layer() != heads_) {
      detail::fail<argument_error>("ablated is a head_set over ", describe(ablated.heads_per_layer()),
                                   ", expected this model's ", describe(heads_));
    }
    if (kind == ablation::mean && !has_means()) {
      detail::fail<argument_error>("kind is mean, but the target was made without head means "
                                   "(ablation_target_options::means)");
    }
    if (ablated.empty()) return base_;
    const int L = int(heads_.size());
    const int first = ablated.lowest_layer();
    std::vector<vector<float>> rows(kind == ablation::mean ? std::size_t(L) : 0);
    forward_options<float> o = options_;
    matrix<float> x;
    for (int l = first; l < L; ++l) {
      if (ablated.touches(l)) {
        o.head_mask = ablated.keep_mask(l);
        if (kind == ablation::mean) {
          const matrix<float>& p = projected_means_[std::size_t(l)];
          rows[std::size_t(l)] = vector<float>::Zero(p.cols());
          for (int h = 0; h < heads_[std::size_t(l)]; ++h) {
            if (!o.head_mask[std::size_t(h)]) rows[std::size_t(l)] += p.row(h).transpose();
          }
        }
      } else {
        o.head_mask.clear();
      }
      const matrix<float>& in = l == first ? inputs_[std::size_t(l)] : x;
      if (kind == ablation::mean) {
        x = stack_.layer(l, in, o, detail::add_rows_at_out{&rows});
      } else {
        x = stack_.layer(l, in, o, no_hooks{});
      }
    }
    return stack_.loss(stack_.output(std::move(x), options_), reference_rows_, options_);
  }

  /// The model's stack (for tests and tools).
  const Stack& stack() const noexcept { return stack_; }

 private:
  static std::string describe(const std::vector<int>& heads) {
    std::string s = std::to_string(heads.size()) + " layers of [";
    for (std::size_t l = 0; l < heads.size(); ++l) s += (l ? ", " : "") + std::to_string(heads[l]);
    return s + "] heads";
  }

  void project_means(const head_means& means) {
    const int L = int(heads_.size());
    if (means.heads_per_layer() != heads_) {
      detail::fail<shape_error>("options.means is over ", describe(means.heads_per_layer()), ", expected ",
                                describe(heads_));
    }
    if (means.tokens() <= 0) detail::fail<argument_error>("options.means holds no tokens, expected a mean over some");
    forward_options<float> probe_options;
    probe_options.threads = options_.threads;
    projected_means_.resize(std::size_t(L));
    for (int l = 0; l < L; ++l) {
      const matrix<float> m = means.mean(l);
      const Index want = stack_.head_dim(l);
      if (m.cols() != want) {
        detail::fail<shape_error>("options.means: layer ", l, " heads are ", m.cols(), " wide, expected head_dim = ",
                                  want);
      }
      matrix<float>& p = projected_means_[std::size_t(l)];
      // Any finite row serves (z is overwritten); the layer's own first input row keeps every norm well defined.
      const matrix<float> x = inputs_[std::size_t(l)].topRows(1);
      stack_.layer(l, x, probe_options, detail::mean_projection_probe{l, &m, &p});
      if (p.rows() != m.rows()) {
        detail::fail<argument_error>("layer ", l, " fired no head_out for the mean probe");  // a stack bug
      }
    }
  }

  Stack stack_;
  forward_options<float> options_;
  std::vector<int> heads_;
  std::vector<matrix<float>> inputs_;           ///< [layer] -> the layer's unablated input
  matrix<float> reference_rows_;                ///< what `loss` compares to
  token_losses clean_, base_;                   ///< reference run; the run with `options.forward`
  std::vector<matrix<float>> projected_means_;  ///< [layer] -> [heads x d]: mean_z W_o[h]
};

}  // namespace headlens
