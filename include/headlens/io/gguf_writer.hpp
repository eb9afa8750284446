#pragma once
/// \file
/// Writes GGUF version 3 files (the layout is described in io/gguf.hpp): metadata in the order it was set,
/// tensors quantised from float rows into any type `quantize_row` writes (io/ggml_quants.hpp), every tensor
/// offset and the data section aligned to `general.alignment`.
///
///   headlens::gguf_writer w;
///   w.set("general.architecture", headlens::gguf_value::of_string("llama"));
///   w.add_tensor("blk.0.attn_q.weight", headlens::ggml_type::q4_k, {256, 256}, weights.data());  // [out x in] rows
///   w.write("model.gguf");

#include <cerrno>
#include <cstddef>
#include <fstream>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "headlens/detail/binary_file.hpp"
#include "headlens/error.hpp"
#include "headlens/io/ggml_quants.hpp"
#include "headlens/io/gguf.hpp"

namespace headlens {

/// Collects metadata and tensors, then writes them as one GGUF v3 file.
class gguf_writer {
 public:
  /// `alignment` must be a power of two; anything other than 32 is written as `general.alignment`.
  explicit gguf_writer(std::uint32_t alignment = 32) : alignment_(alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      detail::fail<argument_error>("alignment is ", alignment, ", expected a power of two");
    }
    if (alignment != 32) set("general.alignment", gguf_value::of_uint32(alignment));
  }

  /// Sets `key` to `value` (replacing an earlier value of the same key, keeping its place).
  void set(const std::string& key, gguf_value value) {
    for (auto& kv : metadata_) {
      if (kv.first == key) {
        kv.second = std::move(value);
        return;
      }
    }
    metadata_.emplace_back(key, std::move(value));
  }

  /// Adds tensor `name` of GGUF dims `dims` (ne0 first) from `values` (the product of dims floats, ne0 fastest:
  /// a PyTorch [out, in] matrix in row-major order has dims {in, out}), encoded as `type`. Throws
  /// `argument_error` for a duplicate name, no dims or more than 4, a type `quantize_row` cannot write, or an ne0
  /// that is not a multiple of the type's block size.
  void add_tensor(const std::string& name, ggml_type type, const std::vector<std::uint64_t>& dims,
                  const float* values) {
    const std::uint32_t t = static_cast<std::uint32_t>(type);
    const ggml_type_traits traits = ggml_traits(t);
    check_new(name, dims);
    if (traits.name == nullptr || dims[0] % traits.block_size != 0) {
      detail::fail<argument_error>("tensor ", name, ": ne0 = ", dims[0], " is not a multiple of the block size of ",
                                   ggml_type_name(t));
    }
    std::uint64_t rows = 1;
    for (std::size_t i = 1; i < dims.size(); ++i) rows *= dims[i];
    const std::uint64_t row_bytes = ggml_row_bytes(t, dims[0]);
    std::vector<unsigned char> data(std::size_t(rows * row_bytes));
    for (std::uint64_t r = 0; r < rows; ++r) quantize_row(t, values + r * dims[0], data.data() + r * row_bytes, dims[0]);
    tensors_.push_back({name, dims, t, std::move(data)});
  }

  /// Adds tensor `name` from bytes already encoded as ggml type `type` (checked against the dims' size).
  void add_raw_tensor(const std::string& name, std::uint32_t type, const std::vector<std::uint64_t>& dims,
                      std::vector<unsigned char> data) {
    check_new(name, dims);
    std::uint64_t elements = 1;
    for (std::uint64_t d : dims) elements *= d;
    const ggml_type_traits traits = ggml_traits(type);
    if (traits.name == nullptr || dims[0] % traits.block_size != 0 || ggml_row_bytes(type, elements) != data.size()) {
      detail::fail<argument_error>("tensor ", name, ": ", data.size(), " bytes do not hold ", elements,
                                   " elements of ", ggml_type_name(type));
    }
    tensors_.push_back({name, dims, type, std::move(data)});
  }

  /// The whole file.
  std::vector<unsigned char> bytes() const {
    std::vector<unsigned char> out = header();
    for (const stored& t : tensors_) {
      out.insert(out.end(), t.data.begin(), t.data.end());
      out.resize(std::size_t(out.size() + padded(t.data.size()) - t.data.size()), 0);
    }
    return out;
  }

  /// Writes the file to `path`, streaming the tensors (no second copy of the data in memory). Throws `io_error`
  /// naming the path on failure.
  void write(const std::string& path) const {
    errno = 0;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) detail::fail<io_error>("cannot open ", path, " for writing: ", detail::errno_text(errno));
    const std::vector<unsigned char> head = header();
    out.write(reinterpret_cast<const char*>(head.data()), std::streamsize(head.size()));
    const std::vector<char> zeros(alignment_, 0);
    for (const stored& t : tensors_) {
      out.write(reinterpret_cast<const char*>(t.data.data()), std::streamsize(t.data.size()));
      out.write(zeros.data(), std::streamsize(padded(t.data.size()) - t.data.size()));
    }
    out.close();
    if (!out) detail::fail<io_error>("cannot write ", path, ": ", detail::errno_text(errno));
  }

 private:
  /// Everything before the data section: magic, version, counts, metadata, tensor infos, padding.
  std::vector<unsigned char> header() const {
    std::vector<unsigned char> out;
    put(out, "GGUF", 4);
    put_uint(out, 3, 4);
    put_uint(out, tensors_.size(), 8);
    put_uint(out, metadata_.size(), 8);
    for (const auto& kv : metadata_) {
      put_string(out, kv.first);
      put_uint(out, std::uint32_t(kv.second.type), 4);
      put_value(out, kv.second);
    }
    std::uint64_t offset = 0;
    for (const stored& t : tensors_) {
      put_string(out, t.name);
      put_uint(out, t.dims.size(), 4);
      for (std::uint64_t d : t.dims) put_uint(out, d, 8);
      put_uint(out, t.type, 4);
      put_uint(out, offset, 8);
      offset += padded(t.data.size());
    }
    out.resize(std::size_t(padded(out.size())), 0);
    return out;
  }

  struct stored {
    std::string name;
    std::vector<std::uint64_t> dims;
    std::uint32_t type;
    std::vector<unsigned char> data;
  };

  void check_new(const std::string& name, const std::vector<std::uint64_t>& dims) const {
    if (dims.empty() || dims.size() > 4) {
      detail::fail<argument_error>("tensor ", name, " has ", dims.size(), " dims, expected 1 to 4");
    }
    for (const stored& t : tensors_) {
      if (t.name == name) detail::fail<argument_error>("tensor ", name, " was added twice");
    }
  }

  std::uint64_t padded(std::uint64_t n) const { return n + (alignment_ - n % alignment_) % alignment_; }

  static void put(std::vector<unsigned char>& out, const void* p, std::size_t n) {
    const unsigned char* b = static_cast<const unsigned char*>(p);
    out.insert(out.end(), b, b + n);
  }
  static void put_uint(std::vector<unsigned char>& out, std::uint64_t v, std::size_t n) {
    unsigned char b[8];
    detail::store_le(b, v, n);
    put(out, b, n);
  }
  static void put_string(std::vector<unsigned char>& out, const std::string& s) {
    put_uint(out, s.size(), 8);
    put(out, s.data(), s.size());
  }
  static void put_float(std::vector<unsigned char>& out, gguf_type t, double v) {
    if (t == gguf_type::float32) {
      const float f = float(v);
      std::uint32_t b;
      std::memcpy(&b, &f, 4);
      put_uint(out, b, 4);
    } else {
      std::uint64_t b;
      std::memcpy(&b, &v, 8);
      put_uint(out, b, 8);
    }
  }
  static void put_value(std::vector<unsigned char>& out, const gguf_value& v) {
    if (v.type == gguf_type::string) {
      put_string(out, v.string);
    } else if (detail::gguf_is_float(v.type)) {
      put_float(out, v.type, v.number);
    } else if (v.type != gguf_type::array) {
      put_uint(out, v.bits, std::size_t(detail::gguf_scalar_size(v.type)));
    } else {
      put_uint(out, std::uint32_t(v.element_type), 4);
      put_uint(out, v.size(), 8);
      if (v.element_type == gguf_type::string) {
        for (const std::string& s : v.array_strings) put_string(out, s);
      } else if (v.element_type == gguf_type::array) {
        for (const gguf_value& item : v.array_items) put_value(out, item);
      } else if (detail::gguf_is_float(v.element_type)) {
        for (double x : v.array_numbers) put_float(out, v.element_type, x);
      } else {
        for (std::uint64_t b : v.array_bits) put_uint(out, b, std::size_t(detail::gguf_scalar_size(v.element_type)));
      }
    }
  }

  std::uint32_t alignment_;
  std::vector<std::pair<std::string, gguf_value>> metadata_;
  std::vector<stored> tensors_;
};

}  // namespace headlens
