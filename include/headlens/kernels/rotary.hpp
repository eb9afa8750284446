#pragma once
/// \file
/// Rotary position embedding in Llama's rotate-half convention: within the first `rotary_dim` dims of each head,
/// dim i pairs with dim i + rotary_dim/2 and the pair turns by theta_i = position * base^(-2i/rotary_dim).
/// Angles are computed in double precision whatever the scalar type, so float and double agree to float's
/// rounding.

#include <cmath>
#include <vector>

#include "headlens/types.hpp"

namespace headlens {
namespace detail {

/// Rotates `n_heads` heads of `head_dim` columns in each of `rows` rows, in place. Row r has position
/// `position(r)`.
template <class Scalar, class Position>
void apply_rotary(Scalar* data, Index rows, Index row_stride, Index n_heads, Index head_dim, Index rotary_dim,
                  double base, Position position) {
  const Index half = rotary_dim / 2;
  std::vector<double> inverse_frequency(static_cast<std::size_t>(half));
  for (Index i = 0; i < half; ++i) {
    inverse_frequency[std::size_t(i)] = std::pow(base, -2.0 * double(i) / double(rotary_dim));
  }
  std::vector<Scalar> cosines(static_cast<std::size_t>(half)), sines(static_cast<std::size_t>(half));
  for (Index r = 0; r < rows; ++r) {
    const double p = double(position(r));
    for (Index i = 0; i < half; ++i) {
      const double angle = p * inverse_frequency[std::size_t(i)];
      cosines[std::size_t(i)] = Scalar(std::cos(angle));
      sines[std::size_t(i)] = Scalar(std::sin(angle));
    }
    Scalar* row = data + r * row_stride;
    for (Index h = 0; h < n_heads; ++h) {
      Scalar* head = row + h * head_dim;
      for (Index i = 0; i < half; ++i) {
        const Scalar a = head[i], b = head[i + half];
        const Scalar c = cosines[std::size_t(i)], s = sines[std::size_t(i)];
        head[i] = a * c - b * s;
        head[i + half] = b * c + a * s;
      }
    }
  }
}

}  // namespace detail
}  // namespace headlens
