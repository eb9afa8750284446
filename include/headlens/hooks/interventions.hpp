#pragma once
/// \file
/// Interventions: callables `void(const hook_context&, matrix_view<Scalar>)` that rewrite the data at a hook
/// point. Choose where they act with a `hook_filter`, either in a `hook_registry` or, at compile time, with
/// `targeted(filter, fn)`. To skip a head's work entirely, rather than zero its result, use
/// `forward_options::head_mask`. To scale a head's output token by token by a gate computed on the fly (per-token
/// head gating, from the head's statistics or the caller's function of z), see hooks/head_gating.hpp.

#include <utility>

#include "headlens/error.hpp"
#include "headlens/hooks/activation_cache.hpp"
#include "headlens/hooks/hook_point.hpp"

namespace headlens {

/// Zero ablation: the data becomes zero.
struct zero_ablation {
  template <class Scalar>
  void operator()(const hook_context&, matrix_view<Scalar> view) const {
    view.setZero();
  }
};

/// Mean ablation over positions: every row becomes the mean of the rows (per column) of this very call.
struct mean_ablation_over_positions {
  template <class Scalar>
  void operator()(const hook_context&, matrix_view<Scalar> view) const {
    const Eigen::Matrix<Scalar, 1, Eigen::Dynamic> mean = view.colwise().mean();
    view.rowwise() = mean;
  }
};

/// Mean ablation with a mean taken elsewhere (e.g. over a reference batch, see `mean_of_rows`): every row becomes
/// `mean`. Throws `shape_error` when the width differs.
template <class Scalar>
struct mean_ablation {
  Eigen::Matrix<Scalar, 1, Eigen::Dynamic> mean;

  void operator()(const hook_context& ctx, matrix_view<Scalar> view) const {
    if (mean.size() != view.cols()) {
      detail::fail<shape_error>("mean_ablation: mean has ", mean.size(), " entries, expected the width of ",
                                to_string(ctx.point), " = ", view.cols());
    }
    view.rowwise() = mean;
  }
};

/// The mean row of a set of cached activations (rows of several runs stacked), for `mean_ablation`.
template <class Scalar>
Eigen::Matrix<Scalar, 1, Eigen::Dynamic> mean_of_rows(const matrix<Scalar>& rows) {
  if (rows.rows() == 0) detail::fail<shape_error>("mean_of_rows: rows.rows() is 0, expected at least one row");
  return rows.colwise().mean();
}

/// Scales the data by a factor (scaling a head's output: use it at `head_out` or `z`).
struct scale_by {
  double factor = 1.0;
  template <class Scalar>
  void operator()(const hook_context&, matrix_view<Scalar> view) const {
    view *= Scalar(factor);
  }
};

/// Activation patching: replaces the data with what `source` cached at the same point, layer, head and batch row
/// in a run on another input. Throws `argument_error` when the source has no such entry and `shape_error` when
/// its shape differs. The source must outlive the patch.
template <class Scalar>
struct patch_from {
  const activation_cache<Scalar>* source = nullptr;

  void operator()(const hook_context& ctx, matrix_view<Scalar> view) const {
    if (source == nullptr) detail::fail<argument_error>("patch_from: source is null, expected an activation_cache");
    const matrix<Scalar>& cached = source->get(ctx.point, ctx.layer, ctx.head, ctx.batch_row);
    if (cached.rows() != view.rows() || cached.cols() != view.cols()) {
      detail::fail<shape_error>("patch_from: cached ", to_string(ctx.point), " of layer ", ctx.layer, ", head ",
                                ctx.head, " is [", cached.rows(), " x ", cached.cols(), "], expected [", view.rows(),
                                " x ", view.cols(), "]");
    }
    view = cached;
  }
};

/// A hook set that runs `fn` on the calls `filter` selects.
template <class Fn>
struct targeted_hook {
  static constexpr point_set points = point_set::all();
  hook_filter filter;
  Fn fn;

  bool wants(const hook_context& ctx) const noexcept { return filter.matches(ctx); }
  template <class Scalar>
  void operator()(const hook_context& ctx, matrix_view<Scalar> view) {
    fn(ctx, view);
  }
};

/// Makes a compile-time hook set from a filter and an intervention (or any callable).
template <class Fn>
targeted_hook<std::decay_t<Fn>> targeted(const hook_filter& filter, Fn&& fn) {
  return targeted_hook<std::decay_t<Fn>>{filter, std::forward<Fn>(fn)};
}

}  // namespace headlens
