#pragma once
// A deliberately plain attention in long double, written from the definition and sharing no code with the
// library's kernels: explicit loops, explicit dot products, explicit rotary pairs. Tests compare the kernels to it.

#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Core>

namespace reference {

using real = long double;
using mat = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct layer {
  int d_model = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  bool causal = false, rotary = false;
  real rotary_base = 10000, scale = 0;  // scale 0 -> 1/sqrt(head_dim)
  int rotary_dim = 0;                   // 0 -> head_dim
  mat w_q, w_k, w_v, w_o;               // x W convention
  std::vector<real> b_q, b_k, b_v, b_o; // empty = none
};

struct result {
  mat out;                    // [T_q x d_model]
  std::vector<mat> scores;    // per head, [T_q x T_k], after masks
  std::vector<mat> patterns;  // per head
  std::vector<mat> z;         // per head, [T_q x head_dim]
};

inline mat project(const mat& x, const mat& w, const std::vector<real>& b) {
  mat y(x.rows(), w.cols());
  for (int i = 0; i < x.rows(); ++i)
    for (int j = 0; j < w.cols(); ++j) {
      real s = b.empty() ? 0 : b[j];
      for (int k = 0; k < x.cols(); ++k) s += x(i, k) * w(k, j);
      y(i, j) = s;
    }
  return y;
}

inline void rotate(mat& m, int heads, int head_dim, int rotary_dim, real base, const std::vector<long>& positions) {
  const int half = rotary_dim / 2;
  for (int r = 0; r < m.rows(); ++r)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < half; ++i) {
        const real theta = real(positions[r]) * std::pow(base, -real(2 * i) / real(rotary_dim));
        const real a = m(r, h * head_dim + i), b = m(r, h * head_dim + i + half);
        m(r, h * head_dim + i) = a * std::cos(theta) - b * std::sin(theta);
        m(r, h * head_dim + i + half) = b * std::cos(theta) + a * std::sin(theta);
      }
}

// Attention of queries x over keys/values from `source`. query_positions/key_positions drive rotary and causal
// masking (query at position p sees keys at positions <= p). key_padding[j] true hides key j. attn_mask is added.
inline result attend(const layer& L, const mat& x, const mat& source, const std::vector<long>& query_positions,
                     const std::vector<long>& key_positions, const std::vector<bool>& key_padding = {},
                     const mat& attn_mask = mat(), const std::vector<bool>& head_mask = {}) {
  const int hd = L.head_dim, rd = L.rotary_dim ? L.rotary_dim : hd;
  mat q = project(x, L.w_q, L.b_q), k = project(source, L.w_k, L.b_k), v = project(source, L.w_v, L.b_v);
  if (L.rotary) {
    rotate(q, L.n_heads, hd, rd, L.rotary_base, query_positions);
    rotate(k, L.n_kv_heads, hd, rd, L.rotary_base, key_positions);
  }
  const real scale = L.scale != 0 ? L.scale : 1 / std::sqrt(real(hd));
  const int tq = int(x.rows()), tk = int(source.rows()), group = L.n_heads / L.n_kv_heads;
  result r;
  mat z_all = mat::Zero(tq, L.n_heads * hd);
  for (int h = 0; h < L.n_heads; ++h) {
    const int g = h / group;
    mat s(tq, tk), p(tq, tk), z = mat::Zero(tq, hd);
    for (int i = 0; i < tq; ++i) {
      for (int j = 0; j < tk; ++j) {
        real dot = 0;
        for (int c = 0; c < hd; ++c) dot += q(i, h * hd + c) * k(j, g * hd + c);
        s(i, j) = dot * scale + (attn_mask.size() ? attn_mask(i, j) : 0);
        const bool hidden = (!key_padding.empty() && key_padding[j]) ||
                            (L.causal && key_positions[j] > query_positions[i]);
        if (hidden) s(i, j) = -std::numeric_limits<real>::infinity();
      }
      real m = -std::numeric_limits<real>::infinity();
      for (int j = 0; j < tk; ++j) m = std::max(m, s(i, j));
      real sum = 0;
      for (int j = 0; j < tk; ++j) {
        p(i, j) = std::isinf(m) ? 0 : std::exp(s(i, j) - m);
        sum += p(i, j);
      }
      for (int j = 0; j < tk; ++j) p(i, j) = sum > 0 ? p(i, j) / sum : 0;
      for (int c = 0; c < hd; ++c)
        for (int j = 0; j < tk; ++j) z(i, c) += p(i, j) * v(j, g * hd + c);
    }
    const bool skipped = !head_mask.empty() && !head_mask[h];
    if (skipped) z.setZero();
    r.scores.push_back(s);
    r.patterns.push_back(p);
    r.z.push_back(z);
    z_all.middleCols(h * hd, hd) = z;
  }
  r.out = project(z_all, L.w_o, L.b_o);
  return r;
}

inline std::vector<long> iota(long n, long start = 0) {
  std::vector<long> v(n);
  for (long i = 0; i < n; ++i) v[i] = start + i;
  return v;
}

}  // namespace reference
