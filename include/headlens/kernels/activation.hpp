#pragma once
/// \file
/// The activations inside transformer MLPs (GELU with the tanh approximation, exact GELU, SiLU, ReLU): one scalar
/// function each, and `apply_activation` over contiguous memory, written once over `xsimd::batch` with a scalar
/// tail.
///
/// The formulas are chosen to stay accurate where the textbook ones cancel: 0.5 (1 + tanh(u)) = 1 / (1 + e^-2u),
/// so GELU-tanh is x / (1 + e^-2u), and exact GELU is 0.5 x erfc(-x / sqrt 2). Outcomes at the edges, for every
/// activation: NaN in gives NaN out; +inf gives +inf; -inf gives NaN for the GELUs and SiLU (the formula's
/// -inf * 0, as the textbook formulas give) and 0 for ReLU; finite x of any size gives a finite result (large
/// negative x: -0 or a tiny negative number, never NaN).

#include <cmath>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "headlens/types.hpp"

namespace headlens {

/// The activation inside an MLP.
enum class activation_kind {
  gelu_tanh,  ///< GPT-2's `gelu_new` / `gelu_pytorch_tanh`
  gelu_erf,   ///< exact GELU (`gelu`)
  silu,       ///< SiLU, Llama's `silu`
  relu,       ///< max(x, 0) (USE-lite's FFN); NaN stays NaN
};

namespace detail {
// Written once for a scalar and for an xsimd batch: the scalar tail and the SIMD body compute the same formula.
template <class T, class Scalar>
T gelu_tanh_formula(const T& x) noexcept {
  using std::exp;
  using xsimd::exp;
  const T u = T(Scalar(0.7978845608028654)) * (x + T(Scalar(0.044715)) * x * x * x);  // sqrt(2 / pi) (x + c x^3)
  return x / (T(Scalar(1)) + exp(T(Scalar(-2)) * u));
}
template <class T, class Scalar>
T gelu_erf_formula(const T& x) noexcept {
  using std::erfc;
  using xsimd::erfc;
  const T z = x * T(Scalar(-0.7071067811865476));
  if constexpr (std::is_same<T, xsimd::batch<double>>::value) {
    // xsimd 8.1's double erfc is off by up to 1e-9 relative in the tail (x < -5 here); double is the reference
    // type, so it gets std::erfc lane by lane.
    alignas(T::arch_type::alignment()) double lanes[T::size];
    z.store_aligned(lanes);
    for (double& v : lanes) v = std::erfc(v);
    return T(Scalar(0.5)) * x * T::load_aligned(lanes);
  } else {
    return T(Scalar(0.5)) * x * erfc(z);
  }
}
template <class T, class Scalar>
T silu_formula(const T& x) noexcept {
  using std::exp;
  using xsimd::exp;
  return x / (T(Scalar(1)) + exp(-x));
}
}  // namespace detail

/// GELU, tanh approximation (GPT-2's `gelu_new`, PyTorch's `gelu(approximate='tanh')`).
template <class Scalar>
Scalar gelu_tanh(Scalar x) noexcept {
  return detail::gelu_tanh_formula<Scalar, Scalar>(x);
}

/// GELU, exact: x * Phi(x) (PyTorch's default `gelu`).
template <class Scalar>
Scalar gelu_erf(Scalar x) noexcept {
  return detail::gelu_erf_formula<Scalar, Scalar>(x);
}

/// SiLU (swish): x * sigmoid(x).
template <class Scalar>
Scalar silu(Scalar x) noexcept {
  return detail::silu_formula<Scalar, Scalar>(x);
}

/// ReLU: max(x, 0); NaN stays NaN (std::max would not say which).
template <class Scalar>
Scalar relu(Scalar x) noexcept {
  return x < Scalar(0) ? Scalar(0) : x;
}

namespace detail {

// One functor per activation, callable on a scalar and on an xsimd batch, so a loop is compiled once per kind.
template <class Scalar>
struct gelu_tanh_op {
  template <class T>
  T operator()(const T& x) const noexcept {
    return gelu_tanh_formula<T, Scalar>(x);
  }
};
template <class Scalar>
struct gelu_erf_op {
  template <class T>
  T operator()(const T& x) const noexcept {
    return gelu_erf_formula<T, Scalar>(x);
  }
};
template <class Scalar>
struct silu_op {
  template <class T>
  T operator()(const T& x) const noexcept {
    return silu_formula<T, Scalar>(x);
  }
};
template <class Scalar>
struct relu_op {
  Scalar operator()(Scalar x) const noexcept { return relu(x); }
  template <class A>
  xsimd::batch<Scalar, A> operator()(const xsimd::batch<Scalar, A>& x) const noexcept {
    return xsimd::select(x < xsimd::batch<Scalar, A>(Scalar(0)), xsimd::batch<Scalar, A>(Scalar(0)), x);
  }
};

/// Calls `visit(op)` with the functor of `kind`.
template <class Scalar, class Visit>
void visit_activation(activation_kind kind, Visit&& visit) noexcept {
  switch (kind) {
    case activation_kind::gelu_tanh:
      visit(gelu_tanh_op<Scalar>{});
      return;
    case activation_kind::gelu_erf:
      visit(gelu_erf_op<Scalar>{});
      return;
    case activation_kind::silu:
      visit(silu_op<Scalar>{});
      return;
    case activation_kind::relu:
      visit(relu_op<Scalar>{});
      return;
  }
}

}  // namespace detail

/// x[i] = act(x[i]) for the `n` contiguous elements at `x`.
template <class Scalar>
void apply_activation(activation_kind kind, Scalar* x, Index n) noexcept {
  using batch = xsimd::batch<Scalar>;
  constexpr Index w = Index(batch::size);
  detail::visit_activation<Scalar>(kind, [&](auto act) {
    Index i = 0;
    for (; i + w <= n; i += w) act(batch::load_unaligned(x + i)).store_unaligned(x + i);
    for (; i < n; ++i) x[i] = act(x[i]);
  });
}

/// x[i] *= act(gate[i]) for `n` contiguous elements: the hidden layer of a gated (SwiGLU) MLP.
template <class Scalar>
void apply_gated_activation(activation_kind kind, const Scalar* gate, Scalar* x, Index n) noexcept {
  using batch = xsimd::batch<Scalar>;
  constexpr Index w = Index(batch::size);
  detail::visit_activation<Scalar>(kind, [&](auto act) {
    Index i = 0;
    for (; i + w <= n; i += w) {
      (act(batch::load_unaligned(gate + i)) * batch::load_unaligned(x + i)).store_unaligned(x + i);
    }
    for (; i < n; ++i) x[i] *= act(gate[i]);
  });
}

/// Applies `kind` to every element of the matrix `x` in place.
template <class Scalar>
void apply_activation(activation_kind kind, matrix<Scalar>& x) noexcept {
  apply_activation(kind, x.data(), x.size());
}

}  // namespace headlens
