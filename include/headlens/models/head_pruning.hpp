#pragma once
/// \file
/// Physical pruning: a smaller model without some heads, whose outputs equal the original model's with those heads
/// zero-ablated (`forward_options::head_mask`, or a zero ablation of their z).
///
/// Per layer, a pruned query head loses its columns of W_q (and b_q) and its rows of W_o; b_o stays (a masked head
/// contributes nothing, the bias still adds). Key/value heads (GQA, MQA): a kv head goes only when every query
/// head it serves goes; otherwise it stays. The kernel's groups are uniform (query head h reads kv head
/// h / group), so when the surviving groups differ in size (4 heads on 2 kv heads, head 0 pruned: groups of 1 and
/// 2), kv heads are repeated so that every copy serves g query heads, g the greatest common divisor of the group
/// sizes: here g = 1 and kv head 1 is stored twice. That stays exact; the k and v projections then shrink less (or
/// even grow), which `layer_pruning::kv_sources` shows. Multi-head attention (MHA) never repeats anything.
/// A layer whose every head is pruned keeps its first head with a zero W_o (rows of zeros): the layer's attention
/// then adds b_o only, as the masked model does, and no block without attention is needed.
/// head_dim and the logit scale stay the unpruned model's (`attention_config::head_dim` is set explicitly).
/// Mean-ablated heads: the overload with `z_means` folds each removed head's constant output into b_o.
///
///   headlens::head_set gone(weights_heads_per_layer);  gone.insert({0, 3});
///   headlens::transformer<float> small(headlens::prune_heads(weights, gone));
///
/// Writing a pruned checkpoint to disk: models/pruned_checkpoint.hpp.

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/error.hpp"
#include "headlens/kernels/attention_config.hpp"
#include "headlens/models/transformer.hpp"

namespace headlens {

/// How one attention layer's heads map from the original layer to the pruned one.
struct layer_pruning {
  Index heads = 0, kv_heads = 0;  ///< the original layer's query and kv heads
  std::vector<Index> kept;        ///< original query heads kept, in order (the pruned layer's head i is kept[i])
  std::vector<Index> kv_sources;  ///< the pruned layer's kv head j is the original kv head kv_sources[j]
  bool zero_output = false;       ///< every head was pruned: kept = {0} with a zero W_o (see the file comment)

  /// The original query heads removed, in order.
  std::vector<Index> removed() const {
    std::vector<Index> out;
    for (Index h = 0; h < heads; ++h) {
      if (zero_output || std::find(kept.begin(), kept.end(), h) == kept.end()) out.push_back(h);
    }
    return out;
  }
};

/// The mapping for a layer of `heads` query heads on `kv_heads` kv heads when `removed[h]` heads go (see the file
/// comment). Throws `argument_error` when `removed` has not `heads` entries or the counts do not fit.
inline layer_pruning plan_layer_pruning(Index heads, Index kv_heads, const std::vector<bool>& removed) {
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0) {
    detail::fail<argument_error>("plan_layer_pruning: ", heads, " heads on ", kv_heads,
                                 " kv heads, expected heads a positive multiple of kv_heads");
  }
  if (Index(removed.size()) != heads) {
    detail::fail<argument_error>("plan_layer_pruning: removed has ", removed.size(), " entries, expected ", heads);
  }
  layer_pruning p;
  p.heads = heads;
  p.kv_heads = kv_heads;
  const Index group = heads / kv_heads;
  std::vector<Index> kept_in_group(std::size_t(kv_heads), 0);
  for (Index h = 0; h < heads; ++h) {
    if (!removed[std::size_t(h)]) {
      p.kept.push_back(h);
      ++kept_in_group[std::size_t(h / group)];
    }
  }
  if (p.kept.empty()) {
    p.zero_output = true;
    p.kept = {0};
    p.kv_sources = {0};
    return p;
  }
  Index g = 0;
  for (Index c : kept_in_group) g = std::gcd(g, c);
  for (Index j = 0; j < kv_heads; ++j) {
    for (Index copy = 0; copy < kept_in_group[std::size_t(j)] / g; ++copy) p.kv_sources.push_back(j);
  }
  return p;
}

/// The mapping of every layer of a model whose blocks have `configs` when the heads of `removed` go. Throws
/// `argument_error` when `removed` is shaped for another model.
inline std::vector<layer_pruning> plan_pruning_layout(const std::vector<attention_config>& configs,
                                                      const head_set& removed) {
  if (removed.layer_count() != int(configs.size())) {
    detail::fail<argument_error>("removed has ", removed.layer_count(), " layers, expected the model's ",
                                 configs.size());
  }
  std::vector<layer_pruning> out;
  for (std::size_t l = 0; l < configs.size(); ++l) {
    const Index heads = configs[l].n_heads;
    if (removed.heads_per_layer()[l] != heads) {
      detail::fail<argument_error>("removed has ", removed.heads_per_layer()[l], " heads in layer ", l,
                                   ", expected the model's ", heads);
    }
    std::vector<bool> gone = removed.keep_mask(int(l));
    gone.flip();
    out.push_back(plan_layer_pruning(heads, configs[l].kv_heads(), gone));
  }
  return out;
}

namespace detail {

// Columns (or rows, `rows` true) of `m` in blocks of `width` starting at each of `blocks` * width + `offset`.
template <class Scalar>
matrix<Scalar> select_blocks(const matrix<Scalar>& m, const std::vector<Index>& blocks, Index width, bool rows) {
  matrix<Scalar> out = rows ? matrix<Scalar>(Index(blocks.size()) * width, m.cols())
                            : matrix<Scalar>(m.rows(), Index(blocks.size()) * width);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (rows) {
      out.middleRows(Index(i) * width, width) = m.middleRows(blocks[i] * width, width);
    } else {
      out.middleCols(Index(i) * width, width) = m.middleCols(blocks[i] * width, width);
    }
  }
  return out;
}

template <class Scalar>
vector<Scalar> select_blocks(const vector<Scalar>& v, const std::vector<Index>& blocks, Index width) {
  if (v.size() == 0) return v;
  vector<Scalar> out(Index(blocks.size()) * width);
  for (std::size_t i = 0; i < blocks.size(); ++i)
    out.segment(Index(i) * width, width) = v.segment(blocks[i] * width, width);
  return out;
}

}  // namespace detail

/// One attention layer's config and weights with the heads `p` drops removed (see the file comment).
template <class Scalar>
std::pair<attention_config, attention_weights<Scalar>> prune_attention(const attention_config& config,
                                                                       const attention_weights<Scalar>& w,
                                                                       const layer_pruning& p) {
  const Index hd = config.head_size();
  attention_config c = config;
  c.head_dim = hd;
  c.n_heads = Index(p.kept.size());
  c.n_kv_heads = Index(p.kv_sources.size());
  attention_weights<Scalar> out = w;
  out.w_q = detail::select_blocks(w.w_q, p.kept, hd, false);
  out.b_q = detail::select_blocks(w.b_q, p.kept, hd);
  out.w_k = detail::select_blocks(w.w_k, p.kv_sources, hd, false);
  out.b_k = detail::select_blocks(w.b_k, p.kv_sources, hd);
  out.w_v = detail::select_blocks(w.w_v, p.kv_sources, hd, false);
  out.b_v = detail::select_blocks(w.b_v, p.kv_sources, hd);
  out.w_o = detail::select_blocks(w.w_o, p.kept, hd, true);
  if (p.zero_output) out.w_o.setZero();
  return {c, std::move(out)};
}

/// The weights of `w`'s model without the heads of `removed` (see the file comment): build a `transformer` from
/// them. Throws `argument_error` when `removed` is shaped for another model (layers, heads per layer) and
/// `shape_error` when a block's attention weights do not fit its config.
template <class Scalar>
transformer_weights<Scalar> prune_heads(transformer_weights<Scalar> w, const head_set& removed) {
  std::vector<attention_config> configs;
  for (std::size_t l = 0; l < w.blocks.size(); ++l) {
    const block_weights<Scalar>& b = w.blocks[l];
    const Index heads = b.attention.n_heads, hd = b.attention.head_size();
    const attention_weights<Scalar>& a = b.attention_projections;
    if (a.w_q.cols() != heads * hd || a.w_o.rows() != heads * hd || a.w_k.cols() != b.attention.kv_heads() * hd ||
        a.w_v.cols() != b.attention.kv_heads() * hd) {
      detail::fail<shape_error>("blocks[", l, "].attention_projections: w_q is [", a.w_q.rows(), " x ", a.w_q.cols(),
                                "], w_k [", a.w_k.rows(), " x ", a.w_k.cols(), "], w_o [", a.w_o.rows(), " x ",
                                a.w_o.cols(), "], expected ", heads, " heads and ", b.attention.kv_heads(),
                                " kv heads of ", hd);
    }
    configs.push_back(b.attention);
  }
  const std::vector<layer_pruning> layout = plan_pruning_layout(configs, removed);
  for (std::size_t l = 0; l < w.blocks.size(); ++l) {
    block_weights<Scalar>& b = w.blocks[l];
    auto pruned = prune_attention(b.attention, b.attention_projections, layout[l]);
    b.attention = pruned.first;
    b.attention_projections = std::move(pruned.second);
  }
  return w;
}

/// As `prune_heads(w, removed)`, for heads MEAN-ablated rather than zero-ablated: a head whose z is replaced at
/// every token by a constant mean m_h contributes the constant m_h W_o[h], which is folded into b_o, so the result
/// equals the mean-ablated model (analysis/ablation_target.hpp's `ablation::mean`). `z_means[l]` is
/// [n_heads x head_dim] for layer l (rows of heads not removed are not read). A layer without biases gets them
/// (zeros for q, k, v: the kernel's biases come all or none). Throws as `prune_heads`, and `shape_error` when
/// `z_means` has not one [n_heads x head_dim] matrix per layer.
template <class Scalar>
transformer_weights<Scalar> prune_heads(transformer_weights<Scalar> w, const head_set& removed,
                                        const std::vector<matrix<Scalar>>& z_means) {
  if (z_means.size() != w.blocks.size()) {
    detail::fail<shape_error>("z_means has ", z_means.size(), " layers, expected ", w.blocks.size());
  }
  for (std::size_t l = 0; l < w.blocks.size(); ++l) {
    block_weights<Scalar>& b = w.blocks[l];
    const Index heads = b.attention.n_heads, hd = b.attention.head_size(), d = b.attention.d_model;
    if (z_means[l].rows() != heads || z_means[l].cols() != hd) {
      detail::fail<shape_error>("z_means[", l, "] is [", z_means[l].rows(), " x ", z_means[l].cols(), "], expected [",
                                heads, " x ", hd, "]");
    }
    if (!removed.touches(int(l))) continue;
    attention_weights<Scalar>& a = b.attention_projections;
    if (a.w_o.rows() != heads * hd || a.w_o.cols() != d) break;  // prune_heads below names the misshapen weight
    if (a.b_o.size() == 0) {
      b.attention.bias = true;
      a.b_q = vector<Scalar>::Zero(a.w_q.cols());
      a.b_k = vector<Scalar>::Zero(a.w_k.cols());
      a.b_v = vector<Scalar>::Zero(a.w_v.cols());
      a.b_o = vector<Scalar>::Zero(d);
    }
    for (Index h = 0; h < heads; ++h) {
      if (!removed.contains({int(l), int(h)})) continue;
      a.b_o += (z_means[l].row(h) * a.w_o.middleRows(h * hd, hd)).transpose();
    }
  }
  return prune_heads(std::move(w), removed);
}

/// Query heads per layer of `w` (for a `head_set` over its model).
template <class Scalar>
std::vector<int> heads_per_layer(const transformer_weights<Scalar>& w) {
  std::vector<int> out;
  for (const block_weights<Scalar>& b : w.blocks) out.push_back(int(b.attention.n_heads));
  return out;
}

}  // namespace headlens
