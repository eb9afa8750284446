#pragma once
/// \file
/// SHA-256 (FIPS 180-4), streaming, standard library only: the digest head cards record for every model and corpus
/// file they were measured on, so that a reader can tell whether a card belongs to the file in front of it.
///
///     headlens::detail::sha256 h;
///     h.update(bytes.data(), bytes.size());          // as many times as needed
///     std::string hex = headlens::detail::to_hex(h.finish());
///     headlens::detail::file_digest d = headlens::detail::sha256_file("model.safetensors");  // d.sha256, d.bytes
///
/// Not a security boundary: it identifies files, it does not authenticate them.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "headlens/error.hpp"

namespace headlens {
namespace detail {

/// Incremental SHA-256: `update` any number of times, then `finish` once (after which the object starts over).
class sha256 {
 public:
  using digest = std::array<std::uint8_t, 32>;

  sha256() noexcept { reset(); }

  /// Starts a new message.
  void reset() noexcept {
    static constexpr std::uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    for (int i = 0; i < 8; ++i) state_[i] = initial[i];
    length_ = 0;
    buffered_ = 0;
  }

  /// Appends `size` bytes at `data` to the message.
  void update(const void* data, std::size_t size) noexcept {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    length_ += static_cast<std::uint64_t>(size);
    if (buffered_ > 0) {
      const std::size_t take = std::min<std::size_t>(size, 64 - buffered_);
      std::memcpy(buffer_ + buffered_, bytes, take);
      buffered_ += take;
      bytes += take;
      size -= take;
      if (buffered_ < 64) return;
      compress(buffer_);
      buffered_ = 0;
    }
    for (; size >= 64; bytes += 64, size -= 64) compress(bytes);
    if (size > 0) std::memcpy(buffer_, bytes, size);
    buffered_ = size;
  }
  void update(std::string_view text) noexcept { update(text.data(), text.size()); }

  /// The digest of everything appended since the last reset; resets.
  digest finish() noexcept {
    const std::uint64_t bits = length_ * 8;
    static constexpr std::uint8_t pad[64] = {0x80};
    update(pad, buffered_ < 56 ? 56 - buffered_ : 120 - buffered_);
    std::uint8_t tail[8];
    for (int i = 0; i < 8; ++i) tail[i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
    update(tail, 8);
    digest out{};
    for (int i = 0; i < 8; ++i) {
      for (int b = 0; b < 4; ++b) out[std::size_t(4 * i + b)] = static_cast<std::uint8_t>(state_[i] >> (24 - 8 * b));
    }
    reset();
    return out;
  }

 private:
  static constexpr std::uint32_t rotr(std::uint32_t x, int n) noexcept { return (x >> n) | (x << (32 - n)); }

  void compress(const std::uint8_t* block) noexcept {
    static constexpr std::uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    std::uint32_t w[64];
    for (int t = 0; t < 16; ++t) {
      w[t] = std::uint32_t(block[4 * t]) << 24 | std::uint32_t(block[4 * t + 1]) << 16 |
             std::uint32_t(block[4 * t + 2]) << 8 | std::uint32_t(block[4 * t + 3]);
    }
    for (int t = 16; t < 64; ++t) {
      const std::uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      const std::uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3], e = state_[4], f = state_[5],
                  g = state_[6], h = state_[7];
    for (int t = 0; t < 64; ++t) {
      const std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[t] + w[t];
      const std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state_[0] += a;
    state_[1] += b;
    state_[2] += c;
    state_[3] += d;
    state_[4] += e;
    state_[5] += f;
    state_[6] += g;
    state_[7] += h;
  }

  std::uint32_t state_[8];
  std::uint64_t length_;  // bytes appended
  std::uint8_t buffer_[64];
  std::size_t buffered_;  // bytes waiting in buffer_
};

/// A digest as 64 lower-case hex digits (as `sha256sum` prints it).
inline std::string to_hex(const sha256::digest& d) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (std::uint8_t byte : d) {
    out += digits[byte >> 4];
    out += digits[byte & 15];
  }
  return out;
}

/// SHA-256 of `bytes` as hex.
inline std::string sha256_hex(std::string_view bytes) {
  sha256 h;
  h.update(bytes);
  return to_hex(h.finish());
}

/// What `sha256_file` measured.
struct file_digest {
  std::string sha256;      ///< 64 lower-case hex digits
  std::uint64_t bytes = 0; ///< the file's size
};

/// SHA-256 and size of the file at `path`, read in 1 MiB chunks (memory does not grow with the file). Throws
/// `io_error` naming the path when it cannot be opened or read.
inline file_digest sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail<io_error>("cannot open ", path, " to hash it");
  sha256 h;
  file_digest out;
  std::vector<char> chunk(std::size_t(1) << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const std::streamsize got = in.gcount();
    if (got > 0) {
      h.update(chunk.data(), static_cast<std::size_t>(got));
      out.bytes += static_cast<std::uint64_t>(got);
    }
  }
  if (in.bad()) fail<io_error>("cannot read ", path, " (after ", out.bytes, " bytes) to hash it");
  out.sha256 = to_hex(h.finish());
  return out;
}

}  // namespace detail
}  // namespace headlens
