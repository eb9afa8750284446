#pragma once
/// \file
/// `activation_cache<Scalar>`: a hook set that keeps copies of chosen points of chosen (layer, head) pairs under a
/// memory budget, and `run_with_cache`, which checks the budget against the shapes before running anything.

#include <cstddef>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/kernels/multi_head_attention.hpp"

namespace headlens {

/// Cached activations, keyed by (point, layer, head, batch row). For `k` and `v` the head is the kv head; for
/// `out` it is -1. Storing the same key again replaces the entry (a later forward call, or the next decoding
/// step).
template <class Scalar>
class activation_cache {
 public:
  static constexpr point_set points = point_set::all();

  /// Caches what `filter` selects, holding at most `budget_bytes` bytes of activation data.
  explicit activation_cache(const hook_filter& filter = {}, std::size_t budget_bytes = std::size_t(1) << 30)
      : filter_(filter), budget_(budget_bytes) {}

  bool wants(const hook_context& ctx) const noexcept { return filter_.matches(ctx); }

  /// Stores a copy of the view. Throws `budget_error` before allocating when it would exceed the budget.
  void operator()(const hook_context& ctx, matrix_view<Scalar> view) {
    const key k{ctx.point, ctx.layer, ctx.head, ctx.batch_row};
    const std::size_t needed = std::size_t(view.size()) * sizeof(Scalar);
    auto it = entries_.find(k);
    const std::size_t replaced = it == entries_.end() ? 0 : std::size_t(it->second.size()) * sizeof(Scalar);
    if (bytes_ - replaced + needed > budget_) {
      detail::fail<budget_error>("activation_cache: storing ", to_string(ctx.point), " of layer ", ctx.layer,
                                 ", head ", ctx.head, ", batch row ", ctx.batch_row, " needs ", needed,
                                 " bytes; the cache holds ", bytes_, " of its budget of ", budget_, " bytes");
    }
    if (it == entries_.end()) it = entries_.emplace(k, matrix<Scalar>()).first;
    it->second = view;
    bytes_ = bytes_ - replaced + needed;
  }

  /// True when the entry exists.
  bool contains(hook_point point, int layer, int head, Index batch_row = 0) const {
    return entries_.count(key{point, layer, head, batch_row}) != 0;
  }

  /// The cached data. Throws `argument_error` when absent.
  const matrix<Scalar>& get(hook_point point, int layer, int head, Index batch_row = 0) const {
    const auto it = entries_.find(key{point, layer, head, batch_row});
    if (it == entries_.end()) {
      detail::fail<argument_error>("activation_cache has no ", to_string(point), " for layer ", layer, ", head ", head,
                                   ", batch row ", batch_row, " (", entries_.size(), " entries cached)");
    }
    return it->second;
  }

  /// Bytes of activation data held.
  std::size_t bytes() const noexcept { return bytes_; }
  /// The budget in bytes.
  std::size_t budget() const noexcept { return budget_; }
  /// Entries held.
  std::size_t size() const noexcept { return entries_.size(); }
  /// What the cache selects.
  const hook_filter& filter() const noexcept { return filter_; }
  /// Drops every entry.
  void clear() noexcept {
    entries_.clear();
    bytes_ = 0;
  }

 private:
  using key = std::tuple<hook_point, int, int, Index>;
  hook_filter filter_;
  std::size_t budget_;
  std::size_t bytes_ = 0;
  std::map<key, matrix<Scalar>> entries_;
};

/// Bytes that caching `filter`'s selection of one forward call of `config` (as layer `layer`) would take, for
/// `batch` sequences of T_q queries over T_k keys.
inline std::size_t activation_bytes(const attention_config& config, int layer, const hook_filter& filter, Index batch,
                                    Index t_q, Index t_k, std::size_t scalar_size) {
  if (filter.layer >= 0 && filter.layer != layer) return 0;
  const Index dh = config.head_size(), heads = config.n_heads, kv = config.kv_heads();
  const auto selected = [&](Index n) -> Index { return filter.head < 0 ? n : (filter.head < n ? 1 : 0); };
  Index elements = 0;
  const auto add = [&](hook_point p, Index count, Index rows, Index cols) {
    if (filter.points.contains(p)) elements += count * rows * cols;
  };
  add(hook_point::q, selected(heads), t_q, dh);
  add(hook_point::k, selected(kv), t_k, dh);
  add(hook_point::v, selected(kv), t_k, dh);
  add(hook_point::scores, selected(heads), t_q, t_k);
  add(hook_point::pattern, selected(heads), t_q, t_k);
  add(hook_point::z, selected(heads), t_q, dh);
  add(hook_point::head_out, selected(heads), t_q, config.d_model);
  add(hook_point::out, filter.head < 0 ? 1 : 0, t_q, config.d_model);
  return std::size_t(elements * batch) * scalar_size;
}

/// Runs self-attention and caches what `filter` selects (TransformerLens's run_with_cache). Throws `budget_error`
/// before running when the selection cannot fit in `budget_bytes`; `extra` hooks run before the cache sees the
/// data, so the cache records their effect.
template <class Scalar, class Hooks = no_hooks>
std::pair<matrix<Scalar>, activation_cache<Scalar>> run_with_cache(const multi_head_attention<Scalar>& mha,
                                                                   const detail::type_identity_t<Eigen::Ref<const matrix<Scalar>>>& x,
                                                                   const hook_filter& filter, std::size_t budget_bytes,
                                                                   const forward_options<Scalar>& options = {},
                                                                   Hooks&& extra = Hooks{}) {
  const Index batch = options.batch > 0 ? options.batch : 1;
  const Index t = x.rows() / batch;
  const std::size_t needed = activation_bytes(mha.config(), mha.layer(), filter, batch, t, t, sizeof(Scalar));
  if (needed > budget_bytes) {
    detail::fail<budget_error>("run_with_cache: caching the selected points needs ", needed,
                               " bytes, over the budget of ", budget_bytes, " bytes");
  }
  activation_cache<Scalar> cache(filter, budget_bytes);
  auto hooks = combine_hooks(extra, cache);
  matrix<Scalar> out = mha.forward(x, options, hooks);
  return {std::move(out), std::move(cache)};
}

}  // namespace headlens
