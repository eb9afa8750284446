#pragma once
/// \file
/// Hook points, the context every hook call receives, and the hook-set interface the kernels call.
///
/// A *hook set* is any type with
///   - `static constexpr point_set points`: the points it may ever want (a compile-time superset; a point not in it
///     is never asked about and costs nothing), and
///   - `void operator()(const hook_context&, matrix_view<Scalar>)`: called with the data at a point. Writing to the
///     view changes everything downstream (an intervention). The view is valid only during the call.
/// and optionally
///   - `bool wants(const hook_context&) const`: a run-time filter, asked before the data is formed (default: yes).
///     Points nobody wants are not materialised: a `head_out` split per head, or a score matrix, is formed only
///     when some call to `wants` said yes.
/// `no_hooks` is the default hook set: it wants nothing, so the uninstrumented kernel compiles to the same code as
/// a kernel with no hook support at all.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "headlens/types.hpp"

namespace headlens {

/// The per-head intermediates of one attention layer, in the order they are computed.
enum class hook_point : std::uint8_t {
  q,         ///< query of one head, [T_q x head_dim], after rotary
  k,         ///< key of one kv head, [T_k x head_dim], after rotary
  v,         ///< value of one kv head, [T_k x head_dim]
  scores,    ///< scaled and masked logits of one head, [T_q x T_k], before softmax
  pattern,   ///< attention weights of one head, [T_q x T_k], rows sum to 1 (0 for fully masked rows)
  z,         ///< pattern times value of one head, [T_q x head_dim]
  head_out,  ///< one head's contribution to the output, z W_o[head], [T_q x d_model] (no bias)
  out,       ///< the layer's output, [T_q x d_model], bias included
};

/// Number of hook points.
inline constexpr int hook_point_count = 8;

/// The name of a point as users write it ("q", "pattern", "head_out", ...).
constexpr std::string_view to_string(hook_point point) noexcept {
  constexpr std::string_view names[hook_point_count] = {"q", "k", "v", "scores", "pattern", "z", "head_out", "out"};
  return names[static_cast<int>(point)];
}

/// Parses a point name; empty when the name is not a point.
constexpr std::optional<hook_point> parse_hook_point(std::string_view name) noexcept {
  for (int i = 0; i < hook_point_count; ++i) {
    if (to_string(static_cast<hook_point>(i)) == name) return static_cast<hook_point>(i);
  }
  return std::nullopt;
}

/// A set of hook points, usable at compile time.
class point_set {
 public:
  constexpr point_set() noexcept = default;
  constexpr point_set(std::initializer_list<hook_point> points) noexcept {
    for (hook_point p : points) bits_ |= bit(p);
  }
  /// Every point.
  static constexpr point_set all() noexcept { return from_bits((1u << hook_point_count) - 1u); }
  constexpr bool contains(hook_point p) const noexcept { return (bits_ & bit(p)) != 0; }
  constexpr bool empty() const noexcept { return bits_ == 0; }
  constexpr point_set operator|(point_set other) const noexcept { return from_bits(bits_ | other.bits_); }
  constexpr point_set operator&(point_set other) const noexcept { return from_bits(bits_ & other.bits_); }
  constexpr bool operator==(point_set other) const noexcept { return bits_ == other.bits_; }
  constexpr bool operator!=(point_set other) const noexcept { return bits_ != other.bits_; }

 private:
  static constexpr std::uint32_t bit(hook_point p) noexcept { return 1u << static_cast<int>(p); }
  static constexpr point_set from_bits(std::uint32_t bits) noexcept {
    point_set s;
    s.bits_ = bits;
    return s;
  }
  std::uint32_t bits_ = 0;
};

/// Where a hook call comes from. Token ranges are positions in the sequence (after a KV cache's earlier tokens).
struct hook_context {
  int layer = 0;            ///< layer index given to the attention module
  int head = -1;            ///< query head; for `k` and `v` the kv head; -1 for `out`
  int kv_head = -1;         ///< kv head serving `head` (GQA/MQA); -1 for `out`
  Index batch_row = 0;      ///< sequence within the batch
  Index token_begin = 0;    ///< first query position the data covers
  Index token_end = 0;      ///< one past the last query position the data covers
  hook_point point = hook_point::out;
};

/// Selects hook calls by layer, head and point; -1 matches every layer or head.
struct hook_filter {
  int layer = -1;
  int head = -1;
  point_set points = point_set::all();

  /// True when the call described by `ctx` is selected.
  constexpr bool matches(const hook_context& ctx) const noexcept {
    return points.contains(ctx.point) && (layer < 0 || layer == ctx.layer) && (head < 0 || head == ctx.head);
  }
};

/// The default hook set: wants nothing, costs nothing.
struct no_hooks {
  static constexpr point_set points{};
  template <class View>
  void operator()(const hook_context&, View&&) const noexcept {}
};

namespace detail {

template <class Hooks, class = void>
struct has_wants : std::false_type {};
template <class Hooks>
struct has_wants<Hooks, std::void_t<decltype(std::declval<const Hooks&>().wants(std::declval<const hook_context&>()))>>
    : std::true_type {};

/// Compile-time: may `Hooks` ever want point P? HEADLENS_DISABLE_HOOKS makes the answer always no, removing every
/// hook call: it exists only so a benchmark can build the kernels without hook support and show that the default
/// hook set costs nothing.
template <class Hooks, hook_point P>
constexpr bool may_want() noexcept {
#ifdef HEADLENS_DISABLE_HOOKS
  return false;
#else
  return std::decay_t<Hooks>::points.contains(P);
#endif
}

/// Run-time: does `hooks` want this call? (Only asked when `may_want` is true.)
template <class Hooks>
bool wants(const Hooks& hooks, const hook_context& ctx) {
  if constexpr (has_wants<Hooks>::value) {
    return hooks.wants(ctx);
  } else {
    return true;
  }
}

/// Calls the hook at point P when the hook set may want it and does; compiles to nothing for `no_hooks`.
template <hook_point P, class Hooks, class Scalar>
void fire(Hooks& hooks, hook_context ctx, Scalar* data, Index rows, Index cols, Index row_stride) {
  if constexpr (may_want<Hooks, P>()) {
    ctx.point = P;
    if (wants(hooks, ctx)) hooks(static_cast<const hook_context&>(ctx), matrix_view<Scalar>(data, rows, cols, Eigen::OuterStride<>(row_stride)));
  } else {
    (void)hooks, (void)ctx, (void)data, (void)rows, (void)cols, (void)row_stride;
  }
}

/// True when the hook set wants point P for this context (false at compile time when it never can).
template <hook_point P, class Hooks>
bool wanted(const Hooks& hooks, hook_context ctx) {
  if constexpr (may_want<Hooks, P>()) {
    ctx.point = P;
    return wants(hooks, ctx);
  } else {
    (void)hooks, (void)ctx;
    return false;
  }
}

}  // namespace detail

/// Several hook sets called in order as one (e.g. an intervention, then a cache that records its effect). Holds
/// references: the parts must outlive it.
template <class... Parts>
class hook_list {
 public:
  static constexpr point_set points = (point_set{} | ... | std::decay_t<Parts>::points);

  explicit hook_list(Parts&... parts) : parts_(parts...) {}

  bool wants(const hook_context& ctx) const {
    return std::apply([&](const auto&... p) { return (part_wants(p, ctx) || ...); }, parts_);
  }

  template <class Scalar>
  void operator()(const hook_context& ctx, matrix_view<Scalar> view) {
    std::apply([&](auto&... p) { (call_part(p, ctx, view), ...); }, parts_);
  }

 private:
  template <class Part>
  static bool part_wants(const Part& part, const hook_context& ctx) {
    return std::decay_t<Part>::points.contains(ctx.point) && detail::wants(part, ctx);
  }
  template <class Part, class Scalar>
  static void call_part(Part& part, const hook_context& ctx, matrix_view<Scalar> view) {
    if constexpr (!std::decay_t<Part>::points.empty()) {
      if (part_wants(part, ctx)) part(ctx, view);
    }
  }
  std::tuple<Parts&...> parts_;
};

/// Combines hook sets into one that calls each in the order given.
template <class... Parts>
hook_list<Parts...> combine_hooks(Parts&... parts) {
  return hook_list<Parts...>(parts...);
}

}  // namespace headlens
