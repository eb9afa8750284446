#pragma once
/// \file
/// The array types that cross the headlens API. Rows are tokens, so matrices are row-major.

#include <Eigen/Core>
#include <cstdint>

namespace headlens {

/// Index type for sizes and positions (Eigen's).
using Eigen::Index;

/// A dense row-major matrix; rows are tokens.
template <class Scalar>
using matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A dense column vector (biases, per-row statistics).
template <class Scalar>
using vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// A boolean mask, row-major.
using bool_matrix = Eigen::Array<bool, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A mutable view of a row-major block with an arbitrary row stride, as handed to hooks (one head's columns of a
/// [T x heads*head_dim] buffer, or a whole [T x T] map).
template <class Scalar>
using matrix_view = Eigen::Map<matrix<Scalar>, Eigen::Unaligned, Eigen::OuterStride<>>;

/// A read-only view with an arbitrary row stride.
template <class Scalar>
using const_matrix_view = Eigen::Map<const matrix<Scalar>, Eigen::Unaligned, Eigen::OuterStride<>>;

namespace detail {
/// Blocks template argument deduction through a parameter (C++20's std::type_identity_t).
template <class T>
struct type_identity {
  using type = T;
};
template <class T>
using type_identity_t = typename type_identity<T>::type;
}  // namespace detail

}  // namespace headlens
