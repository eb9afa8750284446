#pragma once
/// \file
/// Per-token head gating: an intervention that scales each head's output token by token by a gate in [0, 1]
/// computed on the fly, the mechanism behind dynamic head routing.
///
/// The gate of (layer, head, token) comes from a callable `double(const gate_input<Scalar>&)` that sees the
/// head's z row at that token (the caller's function of the token's state) and, when the gating's statistics are
/// attached to the forward options, the head's own attention statistics for that row (max weight, argmax,
/// entropy, mass on marked keys such as a first-token sink, mass in the same segment; kernels/
/// streaming_statistics.hpp). The statistics are accumulated inside the streaming kernel's tile loop, so a
/// statistics gate keeps every head on the streaming path: no [T x T] map is formed. A gate that needs more of
/// the pattern than these statistics (e.g. the mass on a token class) can mark those keys
/// (`statistics().marked`); one that needs the whole row must observe `pattern`, which forces the materialised
/// path for that head.
///
/// The gating acts at `z` (z_h row i times g is o_h row i times g, since o_h = z_h W_o[h]): gate 1 leaves the row
/// untouched, so the output is bit-identical to a run without the gating; gate 0 zeroes the row, exactly like
/// zero-ablating the head's `z` (or `head_out`) at that token; a gate in between scales the row.
///
///   head_gating<float, sink_gate> gating(sink_gate{0.5});    // off where >= 50% of the attention is on a sink
///   gating.statistics().marked = {true, false, ...};          // the sink: the first of the T keys
///   forward_options<float> options;
///   gating.attach(options);                                   // the kernel fills the gating's statistics
///   auto out = layer.forward(x, options, gating);             // or model.forward(ids, options, gating)
///   double off = gating.record().share_off();                 // share of (head, token) pairs gated off
///
/// Gating a head off at a token saves no work by itself (the head's z is computed, then zeroed). Work is saved by
/// `forward_options::head_mask` for heads that are off at every token: decide them from a cheap run (a prefix, a
/// previous window, a calibration text) with `gate_record::head_masks`, then run with the masks (see
/// examples/head_gating.cpp and docs/head-gating.md).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/hooks/hook_registry.hpp"
#include "headlens/kernels/multi_head_attention.hpp"
#include "headlens/kernels/streaming_statistics.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// One head's attention statistics for one query row (see kernels/streaming_statistics.hpp for each).
template <class Scalar>
struct token_statistics {
  Scalar max_weight = 0;    ///< largest weight of the row
  Index argmax = -1;        ///< key index of that weight (-1 for a fully masked row)
  Scalar entropy = 0;       ///< nats
  Scalar same_segment = 0;  ///< mass on keys of the query's segment (0 without `segment_ids`)
  Scalar marked_mass = 0;   ///< mass on the marked keys (0 without `marked`)
};

/// What a gate sees for one token of one head. The views are valid only during the gate's call.
template <class Scalar>
struct gate_input {
  int layer = 0;
  int head = 0;
  int kv_head = 0;
  Index batch_row = 0;
  Index token = 0;  ///< position in the sequence (after a KV cache's earlier tokens)
  /// The head's z row at this token, before gating [head_dim].
  Eigen::Map<const Eigen::Matrix<Scalar, 1, Eigen::Dynamic>> z{nullptr, 0};
  /// The head's statistics for this row; null unless the gating's statistics were attached to the options.
  const token_statistics<Scalar>* statistics = nullptr;
};

/// Totals of the gates of one head (over tokens, batch rows and calls).
struct gate_tally {
  std::uint64_t tokens = 0;   ///< gates computed
  std::uint64_t off = 0;      ///< gates equal to 0
  std::uint64_t partial = 0;  ///< gates strictly between 0 and 1
  double sum = 0;             ///< sum of the gates

  /// Share of the tokens gated off (0 when none were seen).
  double share_off() const noexcept { return tokens == 0 ? 0.0 : double(off) / double(tokens); }
  /// Mean gate (1 when none were seen: nothing was gated).
  double mean() const noexcept { return tokens == 0 ? 1.0 : sum / double(tokens); }
};

/// What the gates were: a tally per (layer, head) and, when asked for, every gate value.
class gate_record {
 public:
  /// The tally of one head; an empty tally for a head never gated.
  gate_tally head(int layer, int head) const {
    const auto it = tallies_.find({layer, head});
    return it == tallies_.end() ? gate_tally{} : it->second;
  }
  /// Every head's tally, by (layer, head).
  const std::map<std::pair<int, int>, gate_tally>& heads() const noexcept { return tallies_; }
  /// The tally over every (head, token) pair.
  gate_tally total() const noexcept {
    gate_tally t;
    for (const auto& entry : tallies_) {
      t.tokens += entry.second.tokens;
      t.off += entry.second.off;
      t.partial += entry.second.partial;
      t.sum += entry.second.sum;
    }
    return t;
  }
  /// Share of the (head, token) pairs gated off.
  double share_off() const noexcept { return total().share_off(); }

  /// The gates of (layer, head, batch row) by token position, from the last call that covered each position
  /// (positions no call covered hold NaN). Empty unless the gating keeps gates (`head_gating_options`).
  const std::vector<double>& gates(int layer, int head, Index batch_row = 0) const {
    const auto it = values_.find({layer, head, batch_row});
    if (it == values_.end()) {
      detail::fail<argument_error>("gate_record::gates: no gates kept for layer ", layer, ", head ", head,
                                   ", batch row ", batch_row,
                                   "; expected a head the gating saw with head_gating_options::keep_gates");
    }
    return it->second;
  }

  /// `forward_options::head_mask` for each of `layers` layers of `heads` heads: false (skip the head's work) for
  /// every head whose share of tokens gated off is at least `min_share_off`; heads never gated stay true. With
  /// `min_share_off` 1 a head is skipped only when it was off at every token seen. Throws `argument_error` for
  /// `min_share_off` outside (0, 1] or non-positive sizes, or a recorded head outside them.
  std::vector<std::vector<bool>> head_masks(Index layers, Index heads, double min_share_off = 1.0) const {
    if (!(min_share_off > 0.0 && min_share_off <= 1.0)) {
      detail::fail<argument_error>("gate_record::head_masks: min_share_off is ", min_share_off,
                                   ", expected a value in (0, 1]");
    }
    if (layers < 1 || heads < 1) {
      detail::fail<argument_error>("gate_record::head_masks: layers is ", layers, " and heads is ", heads,
                                   ", expected both >= 1");
    }
    std::vector<std::vector<bool>> masks(std::size_t(layers), std::vector<bool>(std::size_t(heads), true));
    for (const auto& [key, tally] : tallies_) {
      if (key.first < 0 || key.first >= layers || key.second < 0 || key.second >= heads) {
        detail::fail<argument_error>("gate_record::head_masks: layer ", key.first, ", head ", key.second,
                                     " was gated, expected layer < ", layers, " and head < ", heads);
      }
      if (tally.tokens > 0 && tally.share_off() >= min_share_off) {
        masks[std::size_t(key.first)][std::size_t(key.second)] = false;
      }
    }
    return masks;
  }

  /// Forgets everything recorded.
  void clear() noexcept {
    tallies_.clear();
    values_.clear();
  }

  // ---- used by head_gating ---------------------------------------------------------------------------------------
  gate_tally& tally(int layer, int head) { return tallies_[{layer, head}]; }
  std::vector<double>& values(int layer, int head, Index batch_row, Index token_end) {
    std::vector<double>& v = values_[{layer, head, batch_row}];
    if (Index(v.size()) < token_end) v.resize(std::size_t(token_end), std::nan(""));
    return v;
  }

 private:
  std::map<std::pair<int, int>, gate_tally> tallies_;
  std::map<std::tuple<int, int, Index>, std::vector<double>> values_;
};

/// Where and how a `head_gating` acts.
struct head_gating_options {
  /// The layers and heads gated (-1: all); its points are ignored (the gating acts at `z`).
  int layer = -1;
  int head = -1;
  /// Keep every gate value in the record (memory: 8 bytes per (layer, head, token)); otherwise tallies only.
  bool keep_gates = false;
};

/// The per-token head-gating intervention: a hook set (compile time, or in a `hook_registry` via `add_to`) that
/// multiplies each selected head's z row at each token by `gate(input)`. See the file comment. Throws
/// `argument_error` from the forward call when a gate is NaN or outside [0, 1] (naming layer, head, token and
/// value): gates are not clamped, because a gate outside its range is a bug in the rule, not a value to round.
/// Not thread-safe: one forward call at a time (hooks are called from the calling thread).
template <class Scalar, class Gate>
class head_gating {
 public:
  static constexpr point_set points{hook_point::z};

  explicit head_gating(Gate gate, head_gating_options options = {})
      : gate_(std::move(gate)), options_(options), statistics_(/*max_offset=*/0) {}

  /// The statistics the kernel fills for the gates when attached: set `marked` (e.g. the first token, a sink)
  /// or `segment_ids` here before the forward call.
  attention_statistics<Scalar>& statistics() noexcept { return statistics_; }

  /// Points `options.statistics` at the gating's statistics, so gates see each row's statistics. Each head's
  /// statistics are consumed by its gates (cleared after use), so a later call that is not attached cannot see
  /// stale ones. Without it, `gate_input::statistics` is null.
  void attach(forward_options<Scalar>& options) noexcept { options.statistics = &statistics_; }

  /// Adds the gating to a registry (layers and heads as in the options, point `z`); the gating must outlive the
  /// registry's use of it and stay where it is (the registry holds its address). Returns the registry's handle.
  typename hook_registry<Scalar>::handle add_to(hook_registry<Scalar>& registry) {
    hook_filter filter;
    filter.layer = options_.layer;
    filter.head = options_.head;
    filter.points = points;
    return registry.add(filter, [this](const hook_context& ctx, matrix_view<Scalar> z) { (*this)(ctx, z); });
  }

  /// What the gates were.
  const gate_record& record() const noexcept { return record_; }
  gate_record& record() noexcept { return record_; }
  const Gate& gate() const noexcept { return gate_; }

  bool wants(const hook_context& ctx) const noexcept {
    return ctx.point == hook_point::z && (options_.layer < 0 || options_.layer == ctx.layer) &&
           (options_.head < 0 || options_.head == ctx.head);
  }

  /// Gates the z rows of one head ([tokens x head_dim], valid only during the call).
  void operator()(const hook_context& ctx, matrix_view<Scalar> z) {
    if (ctx.point != hook_point::z) return;
    head_statistics<Scalar>* hs = fresh_statistics(ctx, z.rows());
    gate_tally& tally = record_.tally(ctx.layer, ctx.head);
    std::vector<double>* kept =
        options_.keep_gates ? &record_.values(ctx.layer, ctx.head, ctx.batch_row, ctx.token_end) : nullptr;
    token_statistics<Scalar> row_statistics;
    for (Index r = 0; r < z.rows(); ++r) {
      Scalar* row = z.data() + r * z.outerStride();
      if (hs != nullptr) {
        const std::size_t i = std::size_t(r);
        row_statistics.max_weight = hs->max_weight[i];
        row_statistics.argmax = hs->argmax[i];
        row_statistics.entropy = hs->entropy[i];
        row_statistics.same_segment = hs->same_segment[i];
        row_statistics.marked_mass = hs->marked_mass[i];
      }
      const gate_input<Scalar> input{ctx.layer,
                                     ctx.head,
                                     ctx.kv_head,
                                     ctx.batch_row,
                                     ctx.token_begin + r,
                                     {row, z.cols()},
                                     hs != nullptr ? &row_statistics : nullptr};
      const double g = double(gate_(input));
      if (!(g >= 0.0 && g <= 1.0)) {
        detail::fail<argument_error>("head_gating: the gate of layer ", ctx.layer, ", head ", ctx.head, ", token ",
                                     input.token, " (batch row ", ctx.batch_row, ") is ", g,
                                     ", expected a value in [0, 1]");
      }
      ++tally.tokens;
      tally.sum += g;
      if (kept != nullptr) (*kept)[std::size_t(input.token)] = g;
      if (g == 1.0) continue;  // untouched: gate 1 is no gating, bit for bit
      if (g == 0.0) {
        ++tally.off;
        std::fill(row, row + z.cols(), Scalar(0));  // as zero ablation: a NaN or infinity in z becomes 0 too
      } else {
        ++tally.partial;
        const Scalar factor = Scalar(g);
        for (Index c = 0; c < z.cols(); ++c) row[c] *= factor;
      }
    }
    if (hs != nullptr) {  // consumed: a later call that is not attached sees none instead of stale ones
      hs->max_weight.clear();
      hs->argmax.clear();
      hs->entropy.clear();
      hs->same_segment.clear();
      hs->marked_mass.clear();
    }
  }

 private:
  // The head's statistics of this very call, or null when the statistics were not attached to it (never
  // prepared, or prepared for another shape, or already consumed).
  head_statistics<Scalar>* fresh_statistics(const hook_context& ctx, Index rows) {
    if (ctx.batch_row >= statistics_.batch() || ctx.head < 0 || ctx.head >= statistics_.heads()) return nullptr;
    head_statistics<Scalar>& hs = statistics_.mutable_head(ctx.batch_row, ctx.head);
    const std::size_t n = std::size_t(rows);
    if (hs.max_weight.size() != n || hs.argmax.size() != n || hs.entropy.size() != n ||
        hs.same_segment.size() != n || hs.marked_mass.size() != n) {
      return nullptr;
    }
    return &hs;
  }

  Gate gate_;
  head_gating_options options_;
  attention_statistics<Scalar> statistics_;
  gate_record record_;
};

/// Makes a `head_gating` from any gate callable (the type of a lambda cannot be spelt).
template <class Scalar, class Gate>
head_gating<Scalar, std::decay_t<Gate>> make_head_gating(Gate&& gate, head_gating_options options = {}) {
  return head_gating<Scalar, std::decay_t<Gate>>(std::forward<Gate>(gate), options);
}

namespace detail {
template <class Scalar>
const token_statistics<Scalar>& required_statistics(const gate_input<Scalar>& in, const char* rule) {
  if (in.statistics == nullptr) {
    fail<argument_error>(rule, ": layer ", in.layer, ", head ", in.head, ", token ", in.token,
                         " has no attention statistics, expected head_gating::attach(options) before the forward call");
  }
  return *in.statistics;
}
}  // namespace detail

/// A statistics gate: off (0) where at least `threshold` of the row's attention is on the marked keys (mark the
/// first token to gate attention sinks: `gating.statistics().marked`), on (1) elsewhere. Needs the statistics
/// attached (else `argument_error`).
struct sink_gate {
  double threshold = 0.5;
  template <class Scalar>
  double operator()(const gate_input<Scalar>& in) const {
    return double(detail::required_statistics(in, "sink_gate").marked_mass) >= threshold ? 0.0 : 1.0;
  }
};

/// A statistics gate: off (0) where the row's entropy, divided by log(token + 1), is at least `threshold`, on (1)
/// elsewhere (and at token 0). log(p + 1) is the largest entropy of a causal self-attention row at position p, so
/// the ratio is 1 for uniform attention over what the token sees. Needs the statistics attached.
struct entropy_gate {
  double threshold = 0.9;
  template <class Scalar>
  double operator()(const gate_input<Scalar>& in) const {
    const double entropy = double(detail::required_statistics(in, "entropy_gate").entropy);
    if (in.token < 1) return 1.0;
    return entropy / std::log(double(in.token + 1)) >= threshold ? 0.0 : 1.0;
  }
};

}  // namespace headlens
