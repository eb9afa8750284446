#pragma once
// Random attention layers and inputs for tests, in both the library's types and the reference's.

#include <random>

#include <headlens/kernels/multi_head_attention.hpp>

#include "reference_attention.hpp"

namespace testing_support {

struct layer_shape {
  int d_model, n_heads, n_kv_heads, head_dim;
  bool causal = false, bias = true, rotary = false;
  int rotary_dim = 0;
};

inline reference::mat random_mat(std::mt19937& rng, int rows, int cols, double spread = 1.0) {
  std::normal_distribution<double> normal(0.0, spread);
  reference::mat m(rows, cols);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) m(i, j) = normal(rng);
  return m;
}

inline std::vector<reference::real> random_vec(std::mt19937& rng, int n, double spread = 0.5) {
  std::normal_distribution<double> normal(0.0, spread);
  std::vector<reference::real> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

inline reference::layer random_reference_layer(const layer_shape& s, unsigned seed) {
  std::mt19937 rng(seed);
  reference::layer L;
  L.d_model = s.d_model;
  L.n_heads = s.n_heads;
  L.n_kv_heads = s.n_kv_heads;
  L.head_dim = s.head_dim;
  L.causal = s.causal;
  L.rotary = s.rotary;
  L.rotary_dim = s.rotary_dim;
  const double spread = 1.0 / std::sqrt(double(s.d_model));
  L.w_q = random_mat(rng, s.d_model, s.n_heads * s.head_dim, spread);
  L.w_k = random_mat(rng, s.d_model, s.n_kv_heads * s.head_dim, spread);
  L.w_v = random_mat(rng, s.d_model, s.n_kv_heads * s.head_dim, spread);
  L.w_o = random_mat(rng, s.n_heads * s.head_dim, s.d_model, spread);
  if (s.bias) {
    L.b_q = random_vec(rng, s.n_heads * s.head_dim);
    L.b_k = random_vec(rng, s.n_kv_heads * s.head_dim);
    L.b_v = random_vec(rng, s.n_kv_heads * s.head_dim);
    L.b_o = random_vec(rng, s.d_model);
  }
  return L;
}

template <class Scalar>
headlens::matrix<Scalar> to_matrix(const reference::mat& m) {
  return m.cast<Scalar>();
}

template <class Scalar>
headlens::vector<Scalar> to_vector(const std::vector<reference::real>& v) {
  headlens::vector<Scalar> out(static_cast<Eigen::Index>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) out[Eigen::Index(i)] = Scalar(v[i]);
  return out;
}

inline headlens::attention_config config_of(const layer_shape& s) {
  headlens::attention_config c;
  c.d_model = s.d_model;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.head_dim = s.head_dim;
  c.causal = s.causal;
  c.bias = s.bias;
  c.rotary = s.rotary;
  c.rotary_dim = s.rotary_dim;
  return c;
}

template <class Scalar>
headlens::attention_weights<Scalar> weights_of(const reference::layer& L) {
  headlens::attention_weights<Scalar> w;
  w.w_q = to_matrix<Scalar>(L.w_q);
  w.w_k = to_matrix<Scalar>(L.w_k);
  w.w_v = to_matrix<Scalar>(L.w_v);
  w.w_o = to_matrix<Scalar>(L.w_o);
  w.b_q = to_vector<Scalar>(L.b_q);
  w.b_k = to_vector<Scalar>(L.b_k);
  w.b_v = to_vector<Scalar>(L.b_v);
  w.b_o = to_vector<Scalar>(L.b_o);
  return w;
}

template <class Scalar>
headlens::multi_head_attention<Scalar> module_of(const layer_shape& s, const reference::layer& L, int layer = 0) {
  return headlens::multi_head_attention<Scalar>(config_of(s), weights_of<Scalar>(L), layer);
}

/// Largest absolute difference divided by the larger of 1 and the largest magnitude of the expected values.
template <class Derived>
double scaled_error(const Eigen::MatrixBase<Derived>& actual, const reference::mat& expected) {
  const double scale = std::max<double>(1.0, double(expected.cwiseAbs().maxCoeff()));
  return double((actual.template cast<reference::real>() - expected).cwiseAbs().maxCoeff()) / scale;
}

/// Tolerance for comparing a kernel in Scalar to the long-double reference.
template <class Scalar>
constexpr double tolerance() {
  return std::is_same<Scalar, float>::value ? 1e-5 : 1e-12;
}

}  // namespace testing_support
