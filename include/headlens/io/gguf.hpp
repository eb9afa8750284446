#pragma once
/// \file
/// GGUF files (llama.cpp's model format, versions 2 and 3): a reader that validates the whole header against
/// the file size on open, and dequantises tensors on request (io/ggml_quants.hpp). The file is memory-mapped, so
/// opening a large model costs only its header.
///
/// The format (little-endian): "GGUF", uint32 version, uint64 tensor count, uint64 metadata count; the metadata,
/// each a string key (uint64 length + bytes), a uint32 value type and the value (uint8 .. float64, bool, string,
/// or an array: uint32 element type, uint64 count, elements; arrays nest); the tensor infos, each a string name,
/// uint32 n_dims, uint64 dims[n_dims] (ne0 first: ne0 is the contiguous axis, the row length), uint32 ggml type,
/// uint64 offset relative to the data section; padding to `general.alignment` (a uint32 power of two, default
/// 32); the data section. A tensor of dims [ne0, ne1] is ne1 rows of ne0 elements: a weight matrix
/// [in, out] in GGUF's order is PyTorch's [out, in].
///
/// Every count, length, offset and tensor extent is checked against the bytes that remain before anything is
/// allocated, so a huge count in a small file is an error, not a gigabyte allocation. Malformed input throws
/// `format_error` naming the file and the byte offset: a bad magic, an unsupported version, truncation, a count
/// or string length past the end of the file, an unknown value type, arrays nested deeper than 8, a duplicate
/// key or tensor name, a bad `general.alignment`, more than 4 dims, a dims product that overflows, an unknown
/// ggml type, a row length that is not a whole number of blocks, an unaligned tensor offset, a tensor past the
/// end of the file.
///
///   headlens::gguf_file f("model.gguf");
///   std::uint64_t layers = f.get_uint("llama.block_count");
///   headlens::matrix<float> w = f.read_matrix<float>("blk.0.attn_q.weight");   // [out x in], dequantised

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "headlens/detail/read_only_mapping.hpp"
#include "headlens/error.hpp"
#include "headlens/io/dtype.hpp"
#include "headlens/io/ggml_quants.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// The value types of GGUF metadata, numbered as stored.
enum class gguf_type : std::uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};

/// GGUF's name of a value type ("uint32", "string", ...).
inline const char* gguf_type_name(gguf_type type) noexcept {
  switch (type) {
    case gguf_type::uint8: return "uint8";
    case gguf_type::int8: return "int8";
    case gguf_type::uint16: return "uint16";
    case gguf_type::int16: return "int16";
    case gguf_type::uint32: return "uint32";
    case gguf_type::int32: return "int32";
    case gguf_type::float32: return "float32";
    case gguf_type::boolean: return "bool";
    case gguf_type::string: return "string";
    case gguf_type::array: return "array";
    case gguf_type::uint64: return "uint64";
    case gguf_type::int64: return "int64";
    case gguf_type::float64: return "float64";
  }
  return "unknown";
}

namespace detail {

/// Bytes of a fixed-size GGUF value, 0 for string and array.
inline constexpr std::uint64_t gguf_scalar_size(gguf_type type) noexcept {
  switch (type) {
    case gguf_type::uint8:
    case gguf_type::int8:
    case gguf_type::boolean: return 1;
    case gguf_type::uint16:
    case gguf_type::int16: return 2;
    case gguf_type::uint32:
    case gguf_type::int32:
    case gguf_type::float32: return 4;
    case gguf_type::uint64:
    case gguf_type::int64:
    case gguf_type::float64: return 8;
    default: return 0;
  }
}

inline constexpr bool gguf_is_integer(gguf_type t) noexcept {
  return t == gguf_type::uint8 || t == gguf_type::int8 || t == gguf_type::uint16 || t == gguf_type::int16 ||
         t == gguf_type::uint32 || t == gguf_type::int32 || t == gguf_type::uint64 || t == gguf_type::int64;
}
inline constexpr bool gguf_is_signed(gguf_type t) noexcept {
  return t == gguf_type::int8 || t == gguf_type::int16 || t == gguf_type::int32 || t == gguf_type::int64;
}
inline constexpr bool gguf_is_float(gguf_type t) noexcept {
  return t == gguf_type::float32 || t == gguf_type::float64;
}

}  // namespace detail

/// One metadata value. Scalars: integers and bool in `bits` (two's complement, sign-extended for the signed
/// types), floats in `number`, strings in `string`. Arrays: `element_type` and the elements in the one vector
/// that fits it (`array_bits`, `array_numbers`, `array_strings`, or `array_items` for nested arrays).
struct gguf_value {
  gguf_type type = gguf_type::uint8;
  std::uint64_t offset = 0;  ///< byte offset of the value (after its type tag) in the file; 0 for built values
  std::uint64_t bits = 0;
  double number = 0;
  std::string string;
  gguf_type element_type = gguf_type::uint8;
  std::vector<std::uint64_t> array_bits;
  std::vector<double> array_numbers;
  std::vector<std::string> array_strings;
  std::vector<gguf_value> array_items;

  /// Number of elements of an array (0 for a scalar).
  std::uint64_t size() const noexcept {
    if (type != gguf_type::array) return 0;
    if (element_type == gguf_type::string) return array_strings.size();
    if (element_type == gguf_type::array) return array_items.size();
    if (detail::gguf_is_float(element_type)) return array_numbers.size();
    return array_bits.size();
  }

  /// "uint32", "array of string", ... for messages.
  std::string type_description() const {
    return type == gguf_type::array ? std::string("array of ") + gguf_type_name(element_type) : gguf_type_name(type);
  }

  // Builders for the writer.
  static gguf_value scalar(gguf_type t, std::uint64_t b) {
    gguf_value v;
    v.type = t;
    v.bits = b;
    return v;
  }
  static gguf_value of_uint32(std::uint32_t x) { return scalar(gguf_type::uint32, x); }
  static gguf_value of_uint64(std::uint64_t x) { return scalar(gguf_type::uint64, x); }
  static gguf_value of_int32(std::int32_t x) { return scalar(gguf_type::int32, std::uint64_t(std::int64_t(x))); }
  static gguf_value of_bool(bool x) { return scalar(gguf_type::boolean, x ? 1 : 0); }
  static gguf_value of_float32(float x) {
    gguf_value v;
    v.type = gguf_type::float32;
    v.number = x;
    return v;
  }
  static gguf_value of_float64(double x) {
    gguf_value v;
    v.type = gguf_type::float64;
    v.number = x;
    return v;
  }
  static gguf_value of_string(std::string x) {
    gguf_value v;
    v.type = gguf_type::string;
    v.string = std::move(x);
    return v;
  }
  static gguf_value of_strings(std::vector<std::string> x) {
    gguf_value v;
    v.type = gguf_type::array;
    v.element_type = gguf_type::string;
    v.array_strings = std::move(x);
    return v;
  }
  static gguf_value of_float32s(const std::vector<float>& x) {
    gguf_value v;
    v.type = gguf_type::array;
    v.element_type = gguf_type::float32;
    v.array_numbers.assign(x.begin(), x.end());
    return v;
  }
  static gguf_value of_int32s(const std::vector<std::int32_t>& x) {
    gguf_value v;
    v.type = gguf_type::array;
    v.element_type = gguf_type::int32;
    for (std::int32_t e : x) v.array_bits.push_back(std::uint64_t(std::int64_t(e)));
    return v;
  }
};

/// What a GGUF file says about one tensor.
struct gguf_tensor_info {
  std::string name;
  std::vector<std::uint64_t> dims;  ///< ne0 (the contiguous row length) first
  std::uint32_t type = 0;           ///< ggml type number (see `ggml_type`)
  std::uint64_t offset = 0;         ///< first byte, relative to the data section
  std::uint64_t bytes = 0;          ///< bytes of data
  std::uint64_t info_offset = 0;    ///< byte offset of the tensor's info in the file (for messages)

  /// Number of elements, the product of dims.
  std::uint64_t element_count() const noexcept {
    std::uint64_t n = 1;
    for (std::uint64_t d : dims) n *= d;
    return n;
  }
  /// Elements per row (ne0).
  std::uint64_t row_length() const noexcept { return dims.empty() ? 1 : dims[0]; }
  /// Rows: the product of every dim after ne0.
  std::uint64_t row_count() const noexcept { return dims.empty() ? 1 : element_count() / (dims[0] ? dims[0] : 1); }
  /// "[256, 512]" in GGUF's order (ne0 first).
  std::string dims_string() const {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
  }
};

namespace detail {

/// A bounds-checked little-endian reader over the header; every failure is a `format_error` at its offset.
class gguf_cursor {
 public:
  gguf_cursor(const std::string& file, const unsigned char* data, std::uint64_t size)
      : file_(file), data_(data), size_(size) {}

  std::uint64_t position() const noexcept { return pos_; }
  std::uint64_t remaining() const noexcept { return size_ - pos_; }

  [[noreturn]] void fail_at(std::uint64_t offset, const std::string& what) const {
    throw format_error::at_byte(file_, offset, what);
  }

  void need(std::uint64_t n, const char* what) const {
    if (n > remaining()) {
      fail_at(pos_, std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes, only " +
                        std::to_string(remaining()) + " remain in the file of " + std::to_string(size_) + " bytes");
    }
  }
  std::uint64_t read_uint(std::uint64_t n, const char* what) {
    need(n, what);
    const std::uint64_t v = load_le(data_ + pos_, std::size_t(n));
    pos_ += n;
    return v;
  }
  std::uint32_t u32(const char* what) { return std::uint32_t(read_uint(4, what)); }
  std::uint64_t u64(const char* what) { return read_uint(8, what); }

  /// Checks that `count` items of at least `min_size` bytes each can still fit, before anything is allocated.
  void check_count(std::uint64_t count, std::uint64_t min_size, std::uint64_t at, const char* what) const {
    if (min_size != 0 && count > remaining() / min_size) {
      fail_at(at, std::string(what) + " is " + std::to_string(count) + ", but the " + std::to_string(remaining()) +
                      " bytes left in the file hold at most " + std::to_string(remaining() / min_size));
    }
  }

  std::string string(const char* what) {
    const std::uint64_t at = pos_;
    const std::uint64_t length = u64(what);
    if (length > remaining()) {
      fail_at(at, std::string(what) + " length is " + std::to_string(length) + ", past the end of the file (" +
                      std::to_string(remaining()) + " bytes left)");
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), std::size_t(length));
    pos_ += length;
    return s;
  }

 private:
  const std::string& file_;
  const unsigned char* data_;
  std::uint64_t size_;
  std::uint64_t pos_ = 0;
};

inline std::uint64_t gguf_min_size(gguf_type t) noexcept {
  if (t == gguf_type::string) return 8;
  if (t == gguf_type::array) return 12;
  return gguf_scalar_size(t);
}

inline gguf_type gguf_read_type(gguf_cursor& c, const char* what) {
  const std::uint64_t at = c.position();
  const std::uint32_t t = c.u32(what);
  if (t > 12) c.fail_at(at, std::string(what) + " is " + std::to_string(t) + ", expected a GGUF value type 0..12");
  return gguf_type(t);
}

inline std::uint64_t gguf_read_scalar_bits(gguf_cursor& c, gguf_type t) {
  const std::uint64_t n = gguf_scalar_size(t);
  std::uint64_t v = c.read_uint(n, "a metadata value");
  if (gguf_is_signed(t) && n < 8 && (v >> (8 * n - 1)) != 0) v |= ~std::uint64_t(0) << (8 * n);
  return v;
}

inline double gguf_read_float(gguf_cursor& c, gguf_type t) {
  if (t == gguf_type::float32) {
    const std::uint32_t b = c.u32("a float32 value");
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  const std::uint64_t b = c.u64("a float64 value");
  double f;
  std::memcpy(&f, &b, 8);
  return f;
}

inline gguf_value gguf_read_value(gguf_cursor& c, gguf_type t, int depth) {
  gguf_value v;
  v.type = t;
  v.offset = c.position();
  if (t == gguf_type::string) {
    v.string = c.string("a string value");
  } else if (gguf_is_float(t)) {
    v.number = gguf_read_float(c, t);
  } else if (t != gguf_type::array) {
    v.bits = gguf_read_scalar_bits(c, t);
    if (t == gguf_type::boolean && v.bits > 1) c.fail_at(v.offset, "a bool value is " + std::to_string(v.bits) + ", expected 0 or 1");
  } else {
    if (depth >= 8) c.fail_at(v.offset, "arrays nested deeper than 8 levels");
    v.element_type = gguf_read_type(c, "an array's element type");
    const std::uint64_t count_at = c.position();
    const std::uint64_t count = c.u64("an array's element count");
    c.check_count(count, gguf_min_size(v.element_type), count_at, "an array's element count");
    const std::size_t n = std::size_t(count);
    if (v.element_type == gguf_type::string) {
      v.array_strings.reserve(n);
      for (std::size_t i = 0; i < n; ++i) v.array_strings.push_back(c.string("a string in an array"));
    } else if (v.element_type == gguf_type::array) {
      v.array_items.reserve(n);
      for (std::size_t i = 0; i < n; ++i) v.array_items.push_back(gguf_read_value(c, gguf_type::array, depth + 1));
    } else if (gguf_is_float(v.element_type)) {
      v.array_numbers.reserve(n);
      for (std::size_t i = 0; i < n; ++i) v.array_numbers.push_back(gguf_read_float(c, v.element_type));
    } else {
      v.array_bits.reserve(n);
      for (std::size_t i = 0; i < n; ++i) v.array_bits.push_back(gguf_read_scalar_bits(c, v.element_type));
    }
  }
  return v;
}

}  // namespace detail

/// A GGUF file, its header validated on open and its data memory-mapped. Tensors are dequantised on request.
/// Thread safety: every member is const after construction.
class gguf_file {
 public:
  /// Opens and validates `path` (see the file comment). Throws `io_error` when it cannot be read and
  /// `format_error` (file, byte offset) when it is malformed.
  explicit gguf_file(const std::string& path) : name_(path), bytes_(path) { parse(); }

  /// Validates a GGUF file held in memory; `name` stands for the file in messages.
  static gguf_file from_bytes(std::vector<unsigned char> bytes, const std::string& name = "<memory>") {
    return gguf_file(std::move(bytes), name);
  }

  const std::string& file_name() const noexcept { return name_; }
  std::uint32_t version() const noexcept { return version_; }
  std::uint64_t alignment() const noexcept { return alignment_; }
  /// Byte offset of the data section (aligned).
  std::uint64_t data_offset() const noexcept { return data_offset_; }
  /// Size of the file in bytes.
  std::uint64_t file_size() const noexcept { return bytes_.size(); }
  /// Whether the data is memory-mapped (rather than read into memory).
  bool is_mapped() const noexcept { return bytes_.is_mapped(); }

  /// The metadata in file order.
  const std::vector<std::pair<std::string, gguf_value>>& metadata() const noexcept { return metadata_; }
  /// The value of `key`, or nullptr.
  const gguf_value* find(const std::string& key) const {
    const auto it = key_index_.find(key);
    return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
  }
  bool has(const std::string& key) const { return find(key) != nullptr; }

  /// The value of `key` as an unsigned integer. Throws `format_error` when the key is missing (at the start of
  /// the metadata), not an integer, or negative (at the value).
  std::uint64_t get_uint(const std::string& key) const {
    const gguf_value& v = require(key);
    if (!detail::gguf_is_integer(v.type) || (detail::gguf_is_signed(v.type) && std::int64_t(v.bits) < 0)) {
      bad(key, v, "a non-negative integer");
    }
    return v.bits;
  }
  std::uint64_t get_uint_or(const std::string& key, std::uint64_t fallback) const {
    return has(key) ? get_uint(key) : fallback;
  }
  /// The value of `key` as a number (any integer or float type).
  double get_number(const std::string& key) const {
    const gguf_value& v = require(key);
    if (detail::gguf_is_float(v.type)) return v.number;
    if (!detail::gguf_is_integer(v.type)) bad(key, v, "a number");
    return detail::gguf_is_signed(v.type) ? double(std::int64_t(v.bits)) : double(v.bits);
  }
  double get_number_or(const std::string& key, double fallback) const {
    return has(key) ? get_number(key) : fallback;
  }
  bool get_bool(const std::string& key) const {
    const gguf_value& v = require(key);
    if (v.type != gguf_type::boolean) bad(key, v, "a bool");
    return v.bits != 0;
  }
  const std::string& get_string(const std::string& key) const {
    const gguf_value& v = require(key);
    if (v.type != gguf_type::string) bad(key, v, "a string");
    return v.string;
  }
  std::string get_string_or(const std::string& key, const std::string& fallback) const {
    return has(key) ? get_string(key) : fallback;
  }
  /// An array of strings (tokenizer.ggml.tokens, ...).
  const std::vector<std::string>& get_strings(const std::string& key) const {
    const gguf_value& v = require(key);
    if (v.type != gguf_type::array || v.element_type != gguf_type::string) bad(key, v, "an array of string");
    return v.array_strings;
  }
  /// An array of numbers (integers converted to double).
  std::vector<double> get_numbers(const std::string& key) const {
    const gguf_value& v = require(key);
    if (v.type != gguf_type::array) bad(key, v, "an array of numbers");
    if (detail::gguf_is_float(v.element_type)) return v.array_numbers;
    if (!detail::gguf_is_integer(v.element_type)) bad(key, v, "an array of numbers");
    std::vector<double> out;
    out.reserve(v.array_bits.size());
    for (std::uint64_t b : v.array_bits) {
      out.push_back(detail::gguf_is_signed(v.element_type) ? double(std::int64_t(b)) : double(b));
    }
    return out;
  }
  /// Throws `format_error` at `key`'s value saying it is `is` and was expected to be `expected`.
  [[noreturn]] void bad_value(const std::string& key, const std::string& is, const std::string& expected) const {
    const gguf_value* v = find(key);
    throw format_error::at_byte(name_, v ? v->offset : metadata_offset_,
                                "metadata " + key + " is " + is + ", expected " + expected);
  }

  /// The tensor infos in file order.
  const std::vector<gguf_tensor_info>& tensors() const noexcept { return tensors_; }
  /// The tensor named `name`, or nullptr.
  const gguf_tensor_info* find_tensor(const std::string& name) const {
    const auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
  }
  /// The tensor named `name`. Throws `format_error` (at the tensor infos) when there is none.
  const gguf_tensor_info& tensor(const std::string& name) const {
    const gguf_tensor_info* t = find_tensor(name);
    if (t == nullptr) throw format_error::at_byte(name_, tensor_infos_offset_, "no tensor named " + name);
    return *t;
  }
  /// The stored bytes of `t` (`t.bytes` of them), valid while the file lives.
  const unsigned char* tensor_data(const gguf_tensor_info& t) const noexcept {
    return bytes_.data() + data_offset_ + t.offset;
  }

  /// Every element of `name`, dequantised, in storage order (ne0 fastest). Throws `format_error` for a missing
  /// tensor or one whose type cannot be converted.
  std::vector<float> read_floats(const std::string& name) const {
    const gguf_tensor_info& t = tensor(name);
    check_convertible(t);
    std::vector<float> out(std::size_t(t.element_count()));
    if (!out.empty()) dequantize_row(t.type, tensor_data(t), out.data(), t.element_count());
    return out;
  }

  /// Tensor `name` as a [rows x ne0] matrix (rows = the product of the other dims), dequantised: the layout of
  /// PyTorch's [out, in] weights. Throws `format_error` for a missing tensor or an unconvertible type.
  template <class Scalar>
  matrix<Scalar> read_matrix(const std::string& name) const {
    const gguf_tensor_info& t = tensor(name);
    check_convertible(t);
    const Index rows = Index(t.row_count()), cols = Index(t.row_length());
    matrix<Scalar> m(rows, cols);
    const std::uint64_t row_bytes = ggml_row_bytes(t.type, t.row_length());
    std::vector<float> row(static_cast<std::size_t>(cols));
    for (Index r = 0; r < rows; ++r) {
      dequantize_row(t.type, tensor_data(t) + std::uint64_t(r) * row_bytes, row.data(), std::uint64_t(cols));
      for (Index c = 0; c < cols; ++c) m(r, c) = Scalar(row[std::size_t(c)]);
    }
    return m;
  }

  /// Tensor `name` as a vector of every element, dequantised.
  template <class Scalar>
  vector<Scalar> read_vector(const std::string& name) const {
    const std::vector<float> v = read_floats(name);
    vector<Scalar> out(Index(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) out[Index(i)] = Scalar(v[i]);
    return out;
  }

 private:
  gguf_file(std::vector<unsigned char> bytes, const std::string& name) : name_(name), bytes_(std::move(bytes)) {
    parse();
  }

  const gguf_value& require(const std::string& key) const {
    const gguf_value* v = find(key);
    if (v == nullptr) throw format_error::at_byte(name_, metadata_offset_, "metadata key " + key + " is missing");
    return *v;
  }
  [[noreturn]] void bad(const std::string& key, const gguf_value& v, const char* expected) const {
    throw format_error::at_byte(name_, v.offset,
                                "metadata " + key + " is a " + v.type_description() + ", expected " + expected);
  }
  void check_convertible(const gguf_tensor_info& t) const {
    if (!ggml_traits(t.type).convertible) {
      throw format_error::at_byte(name_, t.info_offset,
                                  "tensor " + t.name + " has ggml type " + ggml_type_name(t.type) +
                                      ", which cannot be converted (supported: F32, F16, BF16, F64, Q8_0, Q4_0, "
                                      "Q4_K, Q6_K)");
    }
  }

  void parse() {
    const std::uint64_t size = bytes_.size();
    detail::gguf_cursor c(name_, bytes_.data(), size);
    c.need(4, "the magic \"GGUF\"");
    if (std::memcmp(bytes_.data(), "GGUF", 4) != 0) {
      std::string shown;
      for (int i = 0; i < 4; ++i) {
        const unsigned char ch = bytes_.data()[i];
        shown += (ch >= 32 && ch < 127) ? std::string(1, char(ch)) : "\\x" + std::string(1, "0123456789abcdef"[ch >> 4]) +
                                                                         std::string(1, "0123456789abcdef"[ch & 15]);
      }
      c.fail_at(0, "magic is \"" + shown + "\", expected \"GGUF\" (not a GGUF file)");
    }
    c.read_uint(4, "the magic");
    version_ = c.u32("the version");
    if (version_ != 2 && version_ != 3) {
      c.fail_at(4, "version is " + std::to_string(version_) + ", expected 2 or 3" +
                       (version_ == 1 ? " (version 1 files are not supported)" : "") +
                       ((version_ & 0xFFFF) == 0 ? " (a big-endian file?)" : ""));
    }
    const std::uint64_t tensor_count = c.u64("the tensor count");
    const std::uint64_t kv_count = c.u64("the metadata count");
    // Smallest possible entries: a key (8-byte length) + type tag + 1-byte value; a tensor info with an empty
    // name, one dim, type and offset.
    c.check_count(kv_count, 13, 16, "the metadata count");
    c.check_count(tensor_count, 32, 8, "the tensor count");

    metadata_offset_ = c.position();
    metadata_.reserve(std::size_t(kv_count));
    for (std::uint64_t i = 0; i < kv_count; ++i) {
      const std::uint64_t at = c.position();
      std::string key = c.string("a metadata key");
      const gguf_type t = detail::gguf_read_type(c, "a metadata value type");
      gguf_value v = detail::gguf_read_value(c, t, 0);
      if (key_index_.count(key) != 0) c.fail_at(at, "metadata key " + key + " appears twice");
      key_index_.emplace(key, metadata_.size());
      metadata_.emplace_back(std::move(key), std::move(v));
    }

    if (const gguf_value* a = find("general.alignment")) {
      if (a->type != gguf_type::uint32) {
        c.fail_at(a->offset, "general.alignment is a " + a->type_description() + ", expected a uint32");
      }
      if (a->bits == 0 || (a->bits & (a->bits - 1)) != 0) {
        c.fail_at(a->offset, "general.alignment is " + std::to_string(a->bits) + ", expected a power of two");
      }
      alignment_ = a->bits;
    }

    tensor_infos_offset_ = c.position();
    tensors_.reserve(std::size_t(tensor_count));
    for (std::uint64_t i = 0; i < tensor_count; ++i) {
      gguf_tensor_info t;
      t.info_offset = c.position();
      t.name = c.string("a tensor name");
      const std::uint64_t dims_at = c.position();
      const std::uint32_t n_dims = c.u32("a tensor's dimension count");
      if (n_dims < 1 || n_dims > 4) {
        c.fail_at(dims_at, "tensor " + t.name + " has " + std::to_string(n_dims) + " dimensions, expected 1 to 4");
      }
      std::uint64_t elements = 1;
      for (std::uint32_t d = 0; d < n_dims; ++d) {
        const std::uint64_t at = c.position();
        const std::uint64_t extent = c.u64("a tensor dimension");
        const std::uint64_t limit = std::uint64_t(std::numeric_limits<std::int64_t>::max());
        if (extent > limit || (extent != 0 && elements > limit / extent)) {
          c.fail_at(at, "tensor " + t.name + " dimension " + std::to_string(d) + " is " + std::to_string(extent) +
                            ", the element count overflows");
        }
        elements *= extent;
        t.dims.push_back(extent);
      }
      const std::uint64_t type_at = c.position();
      t.type = c.u32("a tensor's type");
      const ggml_type_traits traits = ggml_traits(t.type);
      if (traits.name == nullptr) {
        c.fail_at(type_at, "tensor " + t.name + " has unknown ggml type " + std::to_string(t.type));
      }
      if (t.dims[0] % traits.block_size != 0) {
        c.fail_at(dims_at, "tensor " + t.name + " has rows of " + std::to_string(t.dims[0]) + " elements, expected a " +
                               "multiple of " + traits.name + "'s block size " + std::to_string(traits.block_size));
      }
      if (elements / traits.block_size > std::numeric_limits<std::uint64_t>::max() / traits.block_bytes) {
        c.fail_at(dims_at, "tensor " + t.name + " is too large");
      }
      t.bytes = elements / traits.block_size * traits.block_bytes;
      const std::uint64_t offset_at = c.position();
      t.offset = c.u64("a tensor's offset");
      if (t.offset % alignment_ != 0) {
        c.fail_at(offset_at, "tensor " + t.name + " offset " + std::to_string(t.offset) +
                                 " is not a multiple of the alignment " + std::to_string(alignment_));
      }
      if (tensor_index_.count(t.name) != 0) c.fail_at(t.info_offset, "tensor name " + t.name + " appears twice");
      tensor_index_.emplace(t.name, tensors_.size());
      tensors_.push_back(std::move(t));
    }

    const std::uint64_t end = c.position();
    data_offset_ = end + (alignment_ - end % alignment_) % alignment_;
    for (const gguf_tensor_info& t : tensors_) {
      const std::uint64_t room = data_offset_ <= size ? size - data_offset_ : 0;
      if (t.offset > room || t.bytes > room - t.offset) {
        c.fail_at(t.info_offset, "tensor " + t.name + " (" + ggml_type_name(t.type) + " " + t.dims_string() +
                                     ", " + std::to_string(t.bytes) + " bytes at data offset " +
                                     std::to_string(t.offset) + ") runs past the end of the file (data section of " +
                                     std::to_string(room) + " bytes from byte " + std::to_string(data_offset_) + ")");
      }
    }
  }

  std::string name_;
  detail::read_only_mapping bytes_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  std::uint64_t metadata_offset_ = 24;
  std::uint64_t tensor_infos_offset_ = 24;
  std::vector<std::pair<std::string, gguf_value>> metadata_;
  std::unordered_map<std::string, std::size_t> key_index_;
  std::vector<gguf_tensor_info> tensors_;
  std::unordered_map<std::string, std::size_t> tensor_index_;
};

}  // namespace headlens
