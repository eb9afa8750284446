#pragma once
/// \file
/// Rotary position embedding: within the first `rotary_dim` dims of each head, dim i pairs with dim i + rotary_dim/2
/// (Hugging Face's rotate-half convention) or dims 2i and 2i + 1 pair (interleaved: GPT-J, Meta's Llama), and
/// pair i turns by theta_i = position * base^(-2i/rotary_dim).
/// Angles are computed in double precision whatever the scalar type, so float and double agree to float's
/// rounding. The frequencies may be rescaled (`rotary_scaling`: linear, Llama 3.1's llama3).

#include <cmath>
#include <vector>

#include "headlens/kernels/attention_config.hpp"
#include "headlens/types.hpp"

namespace headlens {
namespace detail {

/// The rotary_dim / 2 inverse frequencies base^(-2i/rotary_dim), rescaled as `scaling` says (see
/// `rotary_scaling` in kernels/attention_config.hpp).
inline std::vector<double> rotary_inverse_frequencies(Index rotary_dim, double base, const rotary_scaling& scaling) {
  const Index half = rotary_dim / 2;
  std::vector<double> inverse(static_cast<std::size_t>(half));
  constexpr double two_pi = 6.283185307179586;
  for (Index i = 0; i < half; ++i) {
    double f = std::pow(base, -2.0 * double(i) / double(rotary_dim));
    if (scaling.type == rotary_scaling::kind::linear) {
      f /= scaling.factor;
    } else if (scaling.type == rotary_scaling::kind::llama3) {
      const double wavelength = two_pi / f;
      const double low = scaling.original_max_positions / scaling.low_freq_factor;
      const double high = scaling.original_max_positions / scaling.high_freq_factor;
      if (wavelength > low) {
        f /= scaling.factor;
      } else if (wavelength >= high) {  // between the bands: blend the scaled and the original frequency
        const double s = (scaling.original_max_positions / wavelength - scaling.low_freq_factor) /
                         (scaling.high_freq_factor - scaling.low_freq_factor);
        f = (1 - s) * f / scaling.factor + s * f;
      }
    }
    inverse[std::size_t(i)] = f;
  }
  return inverse;
}

/// Rotates `n_heads` heads of `head_dim` columns in each of `rows` rows, in place. Row r has position
/// `position(r)`.
/// `interleaved` pairs dims (2i, 2i + 1) instead of (i, i + rotary_dim / 2).
template <class Scalar, class Position>
void apply_rotary(Scalar* data, Index rows, Index row_stride, Index n_heads, Index head_dim, Index rotary_dim,
                  double base, Position position, const rotary_scaling& scaling = {}, bool interleaved = false) {
  const Index half = rotary_dim / 2;
  const std::vector<double> inverse_frequency = rotary_inverse_frequencies(rotary_dim, base, scaling);
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
      const Index step = interleaved ? 2 : 1, partner = interleaved ? 1 : half;
      for (Index i = 0; i < half; ++i) {
        Scalar& a = head[i * step];
        Scalar& b = head[i * step + partner];
        const Scalar a0 = a, b0 = b;
        const Scalar c = cosines[std::size_t(i)], s = sines[std::size_t(i)];
        a = a0 * c - b0 * s;
        b = b0 * c + a0 * s;
      }
    }
  }
}

}  // namespace detail
}  // namespace headlens
