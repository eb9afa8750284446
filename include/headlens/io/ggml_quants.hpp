#pragma once
/// \file
/// ggml's tensor element types (the `ggml_type` numbers stored in GGUF files) and the conversion of their blocks
/// to float and back, written from the published block layouts:
///
///   F32, F16, BF16   one element per 4 / 2 / 2 bytes (IEEE binary32, binary16, the top half of a binary32)
///   Q8_0   32 elements in 34 bytes: fp16 d, int8 q[32];                 x[i] = q[i] * d
///   Q4_0   32 elements in 18 bytes: fp16 d, uint8 qs[16];               x[i] = ((qs[i] & 15) - 8) * d,
///                                                                       x[i + 16] = ((qs[i] >> 4) - 8) * d
///   Q4_K   256 elements in 144 bytes: fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128]. Eight sub-blocks of 32
///          each have a 6-bit scale sc_j and a 6-bit min m_j packed in `scales` (j < 4: sc = s[j] & 63,
///          m = s[j + 4] & 63; j >= 4: sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4, m = (s[j + 4] >> 4) |
///          (s[j] >> 6) << 4). Bytes qs[32c .. 32c + 31] hold sub-block 2c in their low nibbles and sub-block
///          2c + 1 in their high nibbles; x = (d * sc_j) * q - (dmin * m_j).
///   Q6_K   256 elements in 210 bytes: uint8 ql[128], uint8 qh[64], int8 scales[16], fp16 d. Each half h of 128
///          elements uses ql[64h ..], qh[32h ..]; for l < 32 the 6-bit values of elements 128h + l + 32k
///          (k = 0..3) are: the low nibble of ql[l] (k = 0), of ql[l + 32] (k = 1), the high nibble of ql[l]
///          (k = 2), of ql[l + 32] (k = 3), each with bits 2k, 2k + 1 of qh[l] on top; element e of the super-block
///          has scale scales[e / 16]; x = (d * scale) * (q - 32).
///
/// Element counts along a row must be multiples of the block size (32, or 256 for the K-quants): GGUF stores a
/// tensor as rows of ne0 elements, and blocks never straddle rows.
///
/// The quantisers are simple round-to-nearest encoders of the same layouts. They are not ggml's (which search
/// for better scales); any block they write is valid, and dequantises the same everywhere.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "headlens/error.hpp"
#include "headlens/io/dtype.hpp"

namespace headlens {

/// The ggml element types, numbered as GGUF stores them. Only the named ones are read; other numbers are valid
/// ggml types that this library does not convert.
enum class ggml_type : std::uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q8_1 = 9,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  q8_k = 15,
  i8 = 24,
  i16 = 25,
  i32 = 26,
  i64 = 27,
  f64 = 28,
  bf16 = 30,
};

/// Layout of one ggml type: elements per block and bytes per block.
struct ggml_type_traits {
  const char* name = nullptr;      ///< ggml's name ("F32", "Q4_K", ...)
  std::uint32_t block_size = 0;    ///< elements per block (1 for plain types)
  std::uint32_t block_bytes = 0;   ///< bytes per block
  bool convertible = false;        ///< whether `dequantize_row` reads it
};

/// The layout of type number `type`, or a traits value with `name == nullptr` for a number ggml does not define
/// (or one of the types it removed). Types this library cannot convert still have a size, so a file holding them
/// can be opened and its other tensors read.
inline ggml_type_traits ggml_traits(std::uint32_t type) noexcept {
  switch (type) {
    case 0: return {"F32", 1, 4, true};
    case 1: return {"F16", 1, 2, true};
    case 2: return {"Q4_0", 32, 18, true};
    case 3: return {"Q4_1", 32, 20, false};
    case 6: return {"Q5_0", 32, 22, false};
    case 7: return {"Q5_1", 32, 24, false};
    case 8: return {"Q8_0", 32, 34, true};
    case 9: return {"Q8_1", 32, 36, false};
    case 10: return {"Q2_K", 256, 84, false};
    case 11: return {"Q3_K", 256, 110, false};
    case 12: return {"Q4_K", 256, 144, true};
    case 13: return {"Q5_K", 256, 176, false};
    case 14: return {"Q6_K", 256, 210, true};
    case 15: return {"Q8_K", 256, 292, false};
    case 16: return {"IQ2_XXS", 256, 66, false};
    case 17: return {"IQ2_XS", 256, 74, false};
    case 18: return {"IQ3_XXS", 256, 98, false};
    case 19: return {"IQ1_S", 256, 50, false};
    case 20: return {"IQ4_NL", 32, 18, false};
    case 21: return {"IQ3_S", 256, 110, false};
    case 22: return {"IQ2_S", 256, 82, false};
    case 23: return {"IQ4_XS", 256, 136, false};
    case 24: return {"I8", 1, 1, false};
    case 25: return {"I16", 1, 2, false};
    case 26: return {"I32", 1, 4, false};
    case 27: return {"I64", 1, 8, false};
    case 28: return {"F64", 1, 8, true};
    case 29: return {"IQ1_M", 256, 56, false};
    case 30: return {"BF16", 1, 2, true};
    case 34: return {"TQ1_0", 256, 54, false};
    case 35: return {"TQ2_0", 256, 66, false};
    case 39: return {"MXFP4", 32, 17, false};
    default: return {};
  }
}

/// ggml's name of `type` ("Q4_K"), or "type N" for a number it does not define.
inline std::string ggml_type_name(std::uint32_t type) {
  const ggml_type_traits t = ggml_traits(type);
  return t.name != nullptr ? std::string(t.name) : "type " + std::to_string(type);
}

namespace detail {

inline float load_half(const unsigned char* p) noexcept {
  return half_to_float(static_cast<std::uint16_t>(p[0] | (p[1] << 8)));
}

inline void store_half(unsigned char* p, float v) noexcept {
  const std::uint16_t h = float_to_half(v);
  p[0] = static_cast<unsigned char>(h & 0xFF);
  p[1] = static_cast<unsigned char>(h >> 8);
}

/// The 6-bit scale and min of sub-block j (0..7) of a Q4_K block's 12 packed bytes.
inline void q4_k_scale_min(int j, const unsigned char* s, int& scale, int& min) noexcept {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

inline int round_clamp(float v, int lo, int hi) noexcept {
  const float r = std::nearbyint(v);
  if (!(r >= float(lo))) return lo;  // NaN goes to lo
  if (r > float(hi)) return hi;
  return int(r);
}

}  // namespace detail

/// Bytes that `count` elements of `type` take, or 0 when `count` is not a whole number of blocks or the type is
/// unknown. `count` must be small enough for the product not to overflow (the GGUF reader checks that first).
inline std::uint64_t ggml_row_bytes(std::uint32_t type, std::uint64_t count) noexcept {
  const ggml_type_traits t = ggml_traits(type);
  if (t.name == nullptr || count % t.block_size != 0) return 0;
  return count / t.block_size * t.block_bytes;
}

/// Converts `count` elements of `type` at `src` (`ggml_row_bytes(type, count)` bytes, little-endian) to float
/// in `out`. Throws `argument_error` when the type is not one this library converts (F32, F16, BF16, F64, Q8_0,
/// Q4_0, Q4_K, Q6_K) or `count` is not a multiple of its block size.
inline void dequantize_row(std::uint32_t type, const unsigned char* src, float* out, std::uint64_t count) {
  const ggml_type_traits t = ggml_traits(type);
  if (!t.convertible) {
    detail::fail<argument_error>("ggml type ", ggml_type_name(type),
                                 " cannot be converted (supported: F32, F16, BF16, F64, Q8_0, Q4_0, Q4_K, Q6_K)");
  }
  if (count % t.block_size != 0) {
    detail::fail<argument_error>("element count ", count, " of a ", t.name, " row is not a multiple of ",
                                 t.block_size);
  }
  const std::uint64_t blocks = count / t.block_size;
  switch (static_cast<ggml_type>(type)) {
    case ggml_type::f32:
      for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint32_t bits = static_cast<std::uint32_t>(detail::load_le(src + 4 * i, 4));
        std::memcpy(out + i, &bits, 4);
      }
      return;
    case ggml_type::f64:
      for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint64_t bits = detail::load_le(src + 8 * i, 8);
        double v;
        std::memcpy(&v, &bits, 8);
        out[i] = static_cast<float>(v);
      }
      return;
    case ggml_type::f16:
      for (std::uint64_t i = 0; i < count; ++i) out[i] = detail::load_half(src + 2 * i);
      return;
    case ggml_type::bf16:
      for (std::uint64_t i = 0; i < count; ++i) {
        out[i] = bfloat16_to_float(static_cast<std::uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
      }
      return;
    case ggml_type::q8_0:
      for (std::uint64_t b = 0; b < blocks; ++b, src += 34, out += 32) {
        const float d = detail::load_half(src);
        for (int i = 0; i < 32; ++i) out[i] = float(static_cast<std::int8_t>(src[2 + i])) * d;
      }
      return;
    case ggml_type::q4_0:
      for (std::uint64_t b = 0; b < blocks; ++b, src += 18, out += 32) {
        const float d = detail::load_half(src);
        const unsigned char* qs = src + 2;
        for (int i = 0; i < 16; ++i) {
          out[i] = float((qs[i] & 0xF) - 8) * d;
          out[i + 16] = float((qs[i] >> 4) - 8) * d;
        }
      }
      return;
    case ggml_type::q4_k:
      for (std::uint64_t b = 0; b < blocks; ++b, src += 144) {
        const float d = detail::load_half(src), dmin = detail::load_half(src + 2);
        const unsigned char* scales = src + 4;
        const unsigned char* qs = src + 16;
        for (int c = 0; c < 4; ++c, qs += 32) {
          int sc_lo, m_lo, sc_hi, m_hi;
          detail::q4_k_scale_min(2 * c, scales, sc_lo, m_lo);
          detail::q4_k_scale_min(2 * c + 1, scales, sc_hi, m_hi);
          const float d_lo = d * float(sc_lo), min_lo = dmin * float(m_lo);
          const float d_hi = d * float(sc_hi), min_hi = dmin * float(m_hi);
          for (int l = 0; l < 32; ++l) *out++ = d_lo * float(qs[l] & 0xF) - min_lo;
          for (int l = 0; l < 32; ++l) *out++ = d_hi * float(qs[l] >> 4) - min_hi;
        }
      }
      return;
    case ggml_type::q6_k:
      for (std::uint64_t b = 0; b < blocks; ++b, src += 210, out += 256) {
        const float d = detail::load_half(src + 208);
        for (int h = 0; h < 2; ++h) {
          const unsigned char* ql = src + 64 * h;
          const unsigned char* qh = src + 128 + 32 * h;
          const std::int8_t* sc = reinterpret_cast<const std::int8_t*>(src + 192 + 8 * h);
          float* y = out + 128 * h;
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * float(sc[is]) * float(q1);
            y[l + 32] = d * float(sc[is + 2]) * float(q2);
            y[l + 64] = d * float(sc[is + 4]) * float(q3);
            y[l + 96] = d * float(sc[is + 6]) * float(q4);
          }
        }
      }
      return;
    default:
      HEADLENS_ASSERT(false);
  }
}

/// Encodes `count` floats as `type` into `dst` (`ggml_row_bytes(type, count)` bytes): round to nearest with
/// per-block scales chosen from the block's range. Supports F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K; throws
/// `argument_error` for other types or a count that is not a multiple of the block size.
inline void quantize_row(std::uint32_t type, const float* x, unsigned char* dst, std::uint64_t count) {
  const ggml_type_traits t = ggml_traits(type);
  const ggml_type k = static_cast<ggml_type>(type);
  if (!t.convertible || k == ggml_type::f64) {
    detail::fail<argument_error>("ggml type ", ggml_type_name(type),
                                 " cannot be written (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)");
  }
  if (count % t.block_size != 0) {
    detail::fail<argument_error>("element count ", count, " of a ", t.name, " row is not a multiple of ",
                                 t.block_size);
  }
  const std::uint64_t blocks = count / t.block_size;
  switch (k) {
    case ggml_type::f32:
      for (std::uint64_t i = 0; i < count; ++i) {
        std::uint32_t bits;
        std::memcpy(&bits, x + i, 4);
        detail::store_le(dst + 4 * i, bits, 4);
      }
      return;
    case ggml_type::f16:
      for (std::uint64_t i = 0; i < count; ++i) detail::store_half(dst + 2 * i, x[i]);
      return;
    case ggml_type::bf16:
      for (std::uint64_t i = 0; i < count; ++i) detail::store_le(dst + 2 * i, float_to_bfloat16(x[i]), 2);
      return;
    case ggml_type::q8_0:
      for (std::uint64_t b = 0; b < blocks; ++b, x += 32, dst += 34) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
        detail::store_half(dst, amax / 127);
        const float d = detail::load_half(dst);  // quantise against the scale as stored
        for (int i = 0; i < 32; ++i) {
          dst[2 + i] = static_cast<unsigned char>(static_cast<std::int8_t>(d > 0 ? detail::round_clamp(x[i] / d, -127, 127) : 0));
        }
      }
      return;
    case ggml_type::q4_0:
      for (std::uint64_t b = 0; b < blocks; ++b, x += 32, dst += 18) {
        float extreme = 0;  // the value of largest magnitude maps to -8, the code with no positive twin
        for (int i = 0; i < 32; ++i) {
          if (std::fabs(x[i]) > std::fabs(extreme)) extreme = x[i];
        }
        detail::store_half(dst, extreme / -8);
        const float d = detail::load_half(dst);
        for (int i = 0; i < 16; ++i) {
          const int lo = d != 0 ? detail::round_clamp(x[i] / d + 8, 0, 15) : 8;
          const int hi = d != 0 ? detail::round_clamp(x[i + 16] / d + 8, 0, 15) : 8;
          dst[2 + i] = static_cast<unsigned char>(lo | (hi << 4));
        }
      }
      return;
    case ggml_type::q4_k:
      for (std::uint64_t b = 0; b < blocks; ++b, x += 256, dst += 144) {
        float scale[8], min[8], max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; ++j) {
          float lo = 0, hi = 0;  // the range always includes 0, so mins stay non-negative
          for (int i = 0; i < 32; ++i) {
            lo = std::min(lo, x[32 * j + i]);
            hi = std::max(hi, x[32 * j + i]);
          }
          scale[j] = (hi - lo) / 15;
          min[j] = -lo;
          max_scale = std::max(max_scale, scale[j]);
          max_min = std::max(max_min, min[j]);
        }
        detail::store_half(dst, max_scale / 63);
        detail::store_half(dst + 2, max_min / 63);
        const float d = detail::load_half(dst), dmin = detail::load_half(dst + 2);
        int sc[8], m[8];
        for (int j = 0; j < 8; ++j) {
          sc[j] = d > 0 ? detail::round_clamp(scale[j] / d, 0, 63) : 0;
          m[j] = dmin > 0 ? detail::round_clamp(min[j] / dmin, 0, 63) : 0;
        }
        unsigned char* s = dst + 4;
        for (int j = 0; j < 4; ++j) {
          s[j] = static_cast<unsigned char>(sc[j] | ((sc[j + 4] >> 4) << 6));
          s[j + 4] = static_cast<unsigned char>(m[j] | ((m[j + 4] >> 4) << 6));
          s[j + 8] = static_cast<unsigned char>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
        }
        unsigned char* qs = dst + 16;
        for (int c = 0; c < 4; ++c) {
          for (int l = 0; l < 32; ++l) {
            int q[2];
            for (int half = 0; half < 2; ++half) {
              const int j = 2 * c + half;
              const float step = d * float(sc[j]);
              q[half] = step > 0 ? detail::round_clamp((x[32 * j + l] + dmin * float(m[j])) / step, 0, 15) : 0;
            }
            qs[32 * c + l] = static_cast<unsigned char>(q[0] | (q[1] << 4));
          }
        }
      }
      return;
    case ggml_type::q6_k:
      for (std::uint64_t b = 0; b < blocks; ++b, x += 256, dst += 210) {
        float scale[16], max_scale = 0;
        for (int j = 0; j < 16; ++j) {
          float amax = 0;
          for (int i = 0; i < 16; ++i) amax = std::max(amax, std::fabs(x[16 * j + i]));
          scale[j] = amax / 31;
          max_scale = std::max(max_scale, scale[j]);
        }
        detail::store_half(dst + 208, max_scale / 127);
        const float d = detail::load_half(dst + 208);
        int sc[16];
        for (int j = 0; j < 16; ++j) {
          sc[j] = d > 0 ? detail::round_clamp(scale[j] / d, -128, 127) : 0;
          dst[192 + j] = static_cast<unsigned char>(static_cast<std::int8_t>(sc[j]));
        }
        int q[256];
        for (int e = 0; e < 256; ++e) {
          const float step = d * float(sc[e / 16]);
          q[e] = (step != 0 ? detail::round_clamp(x[e] / step, -32, 31) : 0) + 32;
        }
        for (int h = 0; h < 2; ++h) {
          unsigned char* ql = dst + 64 * h;
          unsigned char* qh = dst + 128 + 32 * h;
          const int* v = q + 128 * h;
          for (int l = 0; l < 32; ++l) {
            ql[l] = static_cast<unsigned char>((v[l] & 0xF) | ((v[l + 64] & 0xF) << 4));
            ql[l + 32] = static_cast<unsigned char>((v[l + 32] & 0xF) | ((v[l + 96] & 0xF) << 4));
            qh[l] = static_cast<unsigned char>((v[l] >> 4) | ((v[l + 32] >> 4) << 2) | ((v[l + 64] >> 4) << 4) |
                                               ((v[l + 96] >> 4) << 6));
          }
        }
      }
      return;
    default:
      HEADLENS_ASSERT(false);
  }
}

}  // namespace headlens
