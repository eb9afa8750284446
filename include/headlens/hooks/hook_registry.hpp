#pragma once
/// \file
/// `hook_registry<Scalar>`: the run-time form of a hook set, for tools and scripting. Callbacks are attached with
/// a `hook_filter` (layer, head, points) and removed by handle; the kernels ask `wants` before forming any data,
/// so a registry with one `pattern` observer on one head costs the other heads nothing beyond the check.

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"

namespace headlens {

template <class Scalar>
class hook_registry {
 public:
  /// A callback gets the context and a view of the data, valid only during the call; writing to it intervenes.
  using callback = std::function<void(const hook_context&, matrix_view<Scalar>)>;
  /// Identifies an attached callback.
  using handle = std::uint64_t;

  static constexpr point_set points = point_set::all();

  /// Attaches `fn` for the calls `filter` selects; callbacks run in the order they were added. Throws
  /// `argument_error` when called from inside a callback, or when `fn` is empty.
  handle add(const hook_filter& filter, callback fn) {
    check_not_dispatching("add");
    if (!fn) detail::fail<argument_error>("hook_registry::add: fn is empty, expected a callable");
    entries_.push_back(entry{next_handle_, filter, std::move(fn)});
    return next_handle_++;
  }

  /// Detaches a callback; false when no callback has that handle.
  bool remove(handle h) {
    check_not_dispatching("remove");
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->id == h) {
        entries_.erase(it);
        return true;
      }
    }
    return false;
  }

  /// Detaches every callback.
  void clear() {
    check_not_dispatching("clear");
    entries_.clear();
  }

  /// Callbacks attached.
  std::size_t size() const noexcept { return entries_.size(); }

  /// True when some callback's filter selects the call.
  bool wants(const hook_context& ctx) const noexcept {
    for (const entry& e : entries_) {
      if (e.filter.matches(ctx)) return true;
    }
    return false;
  }

  /// Runs every selected callback in order.
  void operator()(const hook_context& ctx, matrix_view<Scalar> view) {
    dispatching_ = true;
    try {
      for (entry& e : entries_) {
        if (e.filter.matches(ctx)) e.fn(ctx, view);
      }
    } catch (...) {
      dispatching_ = false;
      throw;
    }
    dispatching_ = false;
  }

 private:
  struct entry {
    handle id;
    hook_filter filter;
    callback fn;
  };

  void check_not_dispatching(const char* what) const {
    if (dispatching_) {
      detail::fail<argument_error>("hook_registry::", what,
                                   " was called from inside a hook callback, expected it between forward calls");
    }
  }

  std::vector<entry> entries_;
  handle next_handle_ = 1;
  bool dispatching_ = false;
};

}  // namespace headlens
