#pragma once
/// \file
/// Element types of the tensor file formats (NumPy .npy, safetensors), the `tensor` value they are read into,
/// and the conversions between stored elements and C++ scalars: IEEE half (float16), bfloat16 and the two 8-bit
/// float formats, written here so the readers need nothing beyond the standard library and Eigen.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// The element type of a stored tensor.
enum class dtype {
  bool8,        ///< one byte, 0 or 1
  int8,         ///< signed 8-bit integer
  int16,        ///< signed 16-bit integer
  int32,        ///< signed 32-bit integer
  int64,        ///< signed 64-bit integer
  uint8,        ///< unsigned 8-bit integer
  uint16,       ///< unsigned 16-bit integer
  uint32,       ///< unsigned 32-bit integer
  uint64,       ///< unsigned 64-bit integer
  float8_e4m3,  ///< 8-bit float, 4 exponent bits, 3 mantissa bits, no infinities (the "fn" variant)
  float8_e5m2,  ///< 8-bit float, 5 exponent bits, 2 mantissa bits (the top byte of a float16)
  float16,      ///< IEEE 754 binary16
  bfloat16,     ///< the top 16 bits of an IEEE binary32
  float32,      ///< IEEE 754 binary32
  float64,      ///< IEEE 754 binary64
};

/// Size in bytes of one element of `type`.
inline constexpr std::size_t dtype_size(dtype type) noexcept {
  switch (type) {
    case dtype::bool8:
    case dtype::int8:
    case dtype::uint8:
    case dtype::float8_e4m3:
    case dtype::float8_e5m2:
      return 1;
    case dtype::int16:
    case dtype::uint16:
    case dtype::float16:
    case dtype::bfloat16:
      return 2;
    case dtype::int32:
    case dtype::uint32:
    case dtype::float32:
      return 4;
    case dtype::int64:
    case dtype::uint64:
    case dtype::float64:
      return 8;
  }
  return 0;
}

/// Readable name of `type` for messages ("float32", "bfloat16", ...).
inline const char* dtype_name(dtype type) noexcept {
  switch (type) {
    case dtype::bool8: return "bool";
    case dtype::int8: return "int8";
    case dtype::int16: return "int16";
    case dtype::int32: return "int32";
    case dtype::int64: return "int64";
    case dtype::uint8: return "uint8";
    case dtype::uint16: return "uint16";
    case dtype::uint32: return "uint32";
    case dtype::uint64: return "uint64";
    case dtype::float8_e4m3: return "float8_e4m3";
    case dtype::float8_e5m2: return "float8_e5m2";
    case dtype::float16: return "float16";
    case dtype::bfloat16: return "bfloat16";
    case dtype::float32: return "float32";
    case dtype::float64: return "float64";
  }
  return "unknown";
}

/// True for the floating-point element types.
inline constexpr bool dtype_is_floating(dtype type) noexcept {
  return type == dtype::float8_e4m3 || type == dtype::float8_e5m2 || type == dtype::float16 ||
         type == dtype::bfloat16 || type == dtype::float32 || type == dtype::float64;
}

/// The element type that stores `Scalar` exactly: float, double, bool and the fixed-width integers.
/// `dtype_of<Scalar>::value` does not exist for other types, so writers reject them at compile time.
template <class Scalar, class = void>
struct dtype_of {};
template <>
struct dtype_of<float> : std::integral_constant<dtype, dtype::float32> {};
template <>
struct dtype_of<double> : std::integral_constant<dtype, dtype::float64> {};
template <>
struct dtype_of<bool> : std::integral_constant<dtype, dtype::bool8> {};
template <class Scalar>
struct dtype_of<Scalar, std::enable_if_t<std::is_integral<Scalar>::value && !std::is_same<Scalar, bool>::value>>
    : std::integral_constant<dtype, std::is_signed<Scalar>::value
                                        ? (sizeof(Scalar) == 1   ? dtype::int8
                                           : sizeof(Scalar) == 2 ? dtype::int16
                                           : sizeof(Scalar) == 4 ? dtype::int32
                                                                 : dtype::int64)
                                        : (sizeof(Scalar) == 1   ? dtype::uint8
                                           : sizeof(Scalar) == 2 ? dtype::uint16
                                           : sizeof(Scalar) == 4 ? dtype::uint32
                                                                 : dtype::uint64)> {};

/// An N-dimensional array in C (row-major) order: `data[((i0 * shape[1] + i1) * shape[2] + i2) ...]`.
/// A 0-dimensional tensor (empty `shape`) holds one value.
template <class Scalar>
struct tensor {
  std::vector<Index> shape;   ///< extent of each dimension, outermost first
  std::vector<Scalar> data;   ///< product(shape) values in C order

  /// Number of elements, product(shape) (1 for a 0-dimensional tensor).
  Index size() const noexcept { return static_cast<Index>(data.size()); }
  /// Number of dimensions.
  Index rank() const noexcept { return static_cast<Index>(shape.size()); }
};

/// Converts an IEEE 754 binary16 bit pattern to float, exactly (every half is a float): subnormals, signed
/// zeros, infinities and NaNs (the payload is kept in the top mantissa bits) included.
inline float half_to_float(std::uint16_t bits) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  std::uint32_t exponent = (bits >> 10) & 0x1Fu;
  std::uint32_t mantissa = bits & 0x3FFu;
  std::uint32_t out;
  if (exponent == 0x1Fu) {
    out = sign | 0x7F800000u | (mantissa << 13);  // infinity (mantissa 0) or NaN
  } else if (exponent != 0) {
    out = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    out = sign;  // signed zero
  } else {
    // Subnormal: value = mantissa * 2^-24. Shift the leading one up to the implicit bit and lower the exponent.
    std::int32_t e = 1;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    mantissa &= 0x3FFu;
    out = sign | (static_cast<std::uint32_t>(e + (127 - 15)) << 23) | (mantissa << 13);
  }
  float result;
  std::memcpy(&result, &out, sizeof result);
  return result;
}

/// Converts a bfloat16 bit pattern (the top half of a binary32) to float, exactly.
inline float bfloat16_to_float(std::uint16_t bits) noexcept {
  const std::uint32_t out = static_cast<std::uint32_t>(bits) << 16;
  float result;
  std::memcpy(&result, &out, sizeof result);
  return result;
}

/// Converts a float8 E5M2 bit pattern (the top byte of a binary16) to float, exactly.
inline float float8_e5m2_to_float(std::uint8_t bits) noexcept {
  return half_to_float(static_cast<std::uint16_t>(bits << 8));
}

/// Converts a float8 E4M3 ("fn": exponent bias 7, no infinities, S.1111.111 is NaN) bit pattern to float.
inline float float8_e4m3_to_float(std::uint8_t bits) noexcept {
  const bool negative = (bits & 0x80u) != 0;
  const int exponent = (bits >> 3) & 0xF;
  const int mantissa = bits & 0x7;
  float magnitude;
  if (exponent == 0xF && mantissa == 0x7) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -9);  // subnormal: mantissa/8 * 2^(1-7)
  } else {
    magnitude = std::ldexp(static_cast<float>(8 + mantissa), exponent - 7 - 3);
  }
  return negative ? -magnitude : magnitude;
}

/// Converts a float to the nearest binary16 bit pattern (round to nearest, ties to even); values beyond the
/// half range become infinity, NaN stays NaN.
inline std::uint16_t float_to_half(float value) noexcept {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const std::uint16_t sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t exponent = (bits >> 23) & 0xFFu;
  std::uint32_t mantissa = bits & 0x7FFFFFu;
  if (exponent == 0xFFu) {  // infinity or NaN (keep NaN quiet and non-zero)
    return static_cast<std::uint16_t>(sign | 0x7C00u | (mantissa != 0 ? 0x200u | (mantissa >> 13) : 0u));
  }
  const std::int32_t e = static_cast<std::int32_t>(exponent) - 127 + 15;
  if (e >= 0x1F) return static_cast<std::uint16_t>(sign | 0x7C00u);  // overflow
  if (e <= 0) {
    if (e < -10) return sign;  // below half the smallest subnormal: rounds to zero
    mantissa |= 0x800000u;     // implicit bit
    const std::uint32_t shift = static_cast<std::uint32_t>(14 - e);
    std::uint32_t half_mantissa = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half_mantissa & 1u))) ++half_mantissa;
    return static_cast<std::uint16_t>(sign | half_mantissa);  // a carry lands in the exponent, as it should
  }
  std::uint32_t out = (static_cast<std::uint32_t>(e) << 10) | (mantissa >> 13);
  const std::uint32_t rest = mantissa & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (out & 1u))) ++out;  // may carry into infinity, which is correct
  return static_cast<std::uint16_t>(sign | out);
}

/// Converts a float to the nearest bfloat16 bit pattern (round to nearest, ties to even); NaN stays NaN.
inline std::uint16_t float_to_bfloat16(float value) noexcept {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x7FFFFFu) != 0) {
    return static_cast<std::uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  }
  const std::uint32_t rounding = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>((bits + rounding) >> 16);
}

namespace detail {

/// True on little-endian hosts; the stored formats are little-endian, so only there may bytes be copied as is.
inline bool host_is_little_endian() noexcept {
  const std::uint16_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

/// "[2, 3, 4]"
inline std::string shape_string(const std::vector<Index>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

/// Product of the extents, or false when a negative extent or an overflow of std::uint64_t makes it meaningless.
inline bool element_count(const std::vector<Index>& shape, std::uint64_t& count) noexcept {
  std::uint64_t n = 1;
  for (Index extent : shape) {
    if (extent < 0) return false;
    const auto e = static_cast<std::uint64_t>(extent);
    if (e != 0 && n > std::numeric_limits<std::uint64_t>::max() / e) return false;
    n *= e;
  }
  count = n;
  return true;
}

/// Reads an unsigned little-endian integer of `size` bytes.
inline std::uint64_t load_le(const unsigned char* p, std::size_t size) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = size; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

/// Writes an unsigned little-endian integer of `size` bytes.
inline void store_le(unsigned char* p, std::uint64_t v, std::size_t size) noexcept {
  for (std::size_t i = 0; i < size; ++i) {
    p[i] = static_cast<unsigned char>(v & 0xFFu);
    v >>= 8;
  }
}

/// Whether values of element type `type` may be read as `Scalar`: floating scalars take every type, integer
/// scalars take integer and bool types (range-checked per value), bool takes bool only.
template <class Scalar>
bool can_convert(dtype type) noexcept {
  if (std::is_floating_point<Scalar>::value) return true;
  if (std::is_same<Scalar, bool>::value) return type == dtype::bool8;
  return !dtype_is_floating(type);
}

/// Converts `count` little-endian elements of `type` at `src` to `Scalar`, into `out[0, count)` (`out` is a
/// pointer or a std::vector, std::vector<bool> included). The caller has checked `can_convert<Scalar>(type)`.
/// An integer that does not fit `Scalar` throws `argument_error` naming `what`.
template <class Scalar, class Output>
void convert_elements(const unsigned char* src, dtype type, std::size_t count, Output& out,
                      const std::string& what) {
  static_assert(std::is_arithmetic<Scalar>::value, "headlens: tensors are read into arithmetic types");
  const std::size_t size = dtype_size(type);
  if constexpr (std::is_floating_point<Scalar>::value) {
    // Same representation (little-endian IEEE in the file and on the host): one copy.
    const bool same = host_is_little_endian() && ((type == dtype::float32 && std::is_same<Scalar, float>::value) ||
                                                  (type == dtype::float64 && std::is_same<Scalar, double>::value));
    if (same) {
      if (count != 0) std::memcpy(static_cast<void*>(&out[0]), src, count * size);
      return;
    }
  }
  for (std::size_t i = 0; i < count; ++i) {
    const unsigned char* p = src + i * size;
    const std::uint64_t raw = load_le(p, size);
    if constexpr (std::is_floating_point<Scalar>::value) {
      switch (type) {
        case dtype::bool8: out[i] = raw != 0 ? Scalar(1) : Scalar(0); break;
        case dtype::int8: out[i] = static_cast<Scalar>(static_cast<std::int8_t>(raw)); break;
        case dtype::int16: out[i] = static_cast<Scalar>(static_cast<std::int16_t>(raw)); break;
        case dtype::int32: out[i] = static_cast<Scalar>(static_cast<std::int32_t>(raw)); break;
        case dtype::int64: out[i] = static_cast<Scalar>(static_cast<std::int64_t>(raw)); break;
        case dtype::uint8:
        case dtype::uint16:
        case dtype::uint32:
        case dtype::uint64: out[i] = static_cast<Scalar>(raw); break;
        case dtype::float8_e4m3: out[i] = static_cast<Scalar>(float8_e4m3_to_float(static_cast<std::uint8_t>(raw))); break;
        case dtype::float8_e5m2: out[i] = static_cast<Scalar>(float8_e5m2_to_float(static_cast<std::uint8_t>(raw))); break;
        case dtype::float16: out[i] = static_cast<Scalar>(half_to_float(static_cast<std::uint16_t>(raw))); break;
        case dtype::bfloat16: out[i] = static_cast<Scalar>(bfloat16_to_float(static_cast<std::uint16_t>(raw))); break;
        case dtype::float32: {
          const auto b = static_cast<std::uint32_t>(raw);
          float f;
          std::memcpy(&f, &b, sizeof f);
          out[i] = static_cast<Scalar>(f);
          break;
        }
        case dtype::float64: {
          double d;
          std::memcpy(&d, &raw, sizeof d);
          out[i] = static_cast<Scalar>(d);
          break;
        }
      }
    } else if constexpr (std::is_same<Scalar, bool>::value) {
      out[i] = raw != 0;
    } else {
      // Integer target from an integer or bool source: widen to a signed/unsigned 64-bit value, check range.
      bool negative = false;
      std::int64_t signed_value = 0;
      switch (type) {
        case dtype::int8: signed_value = static_cast<std::int8_t>(raw); negative = signed_value < 0; break;
        case dtype::int16: signed_value = static_cast<std::int16_t>(raw); negative = signed_value < 0; break;
        case dtype::int32: signed_value = static_cast<std::int32_t>(raw); negative = signed_value < 0; break;
        case dtype::int64: signed_value = static_cast<std::int64_t>(raw); negative = signed_value < 0; break;
        default: break;
      }
      bool fits;
      if (negative) {
        fits = std::is_signed<Scalar>::value &&
               signed_value >= static_cast<std::int64_t>(std::numeric_limits<Scalar>::min());
      } else {
        fits = raw <= static_cast<std::uint64_t>(std::numeric_limits<Scalar>::max());
      }
      if (!fits) {
        fail<argument_error>(what, ": element ", i, " (",
                             negative ? std::to_string(signed_value) : std::to_string(raw),
                             ") does not fit the requested integer type");
      }
      out[i] = negative ? static_cast<Scalar>(signed_value) : static_cast<Scalar>(raw);
    }
  }
}

/// Writes `count` values of `Scalar` to `out` as little-endian elements of `dtype_of<Scalar>::value`
/// (`count * sizeof(Scalar)` bytes; bool as one byte 0 or 1).
template <class Scalar>
void encode_elements(const Scalar* values, std::size_t count, unsigned char* out) {
  constexpr dtype type = dtype_of<Scalar>::value;
  constexpr std::size_t size = dtype_size(type);
  for (std::size_t i = 0; i < count; ++i) {
    std::uint64_t raw;
    if constexpr (std::is_same<Scalar, bool>::value) {
      raw = values[i] ? 1u : 0u;
    } else if constexpr (std::is_same<Scalar, float>::value) {
      std::uint32_t b;
      std::memcpy(&b, &values[i], sizeof b);
      raw = b;
    } else if constexpr (std::is_same<Scalar, double>::value) {
      std::memcpy(&raw, &values[i], sizeof raw);
    } else {
      raw = static_cast<std::uint64_t>(values[i]);  // two's complement; store_le keeps the low `size` bytes
    }
    store_le(out + i * size, raw, size);
  }
}

}  // namespace detail
}  // namespace headlens
