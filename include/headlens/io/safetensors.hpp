#pragma once
/// \file
/// safetensors files: a reader that validates the whole header on open, and a writer.
///
/// The format: 8 bytes holding the header length N (little-endian unsigned 64-bit), N bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}`,
/// then the data buffer; offsets are relative to the start of the data buffer, elements little-endian, C order.
///
/// Reads F64, F32, F16, BF16, F8_E4M3, F8_E5M2 (converted exactly to float or double), the integer types
/// I8..I64 and U8..U64, and BOOL. Every malformed file throws `format_error` naming the file, the byte offset and
/// what was wrong: a header length past the end, malformed JSON, an entry without dtype, shape or data_offsets,
/// an unknown dtype, offsets outside the data buffer, a byte count that does not match the shape, overlapping
/// tensors, metadata that is not string to string. Holes between tensors are tolerated.
///
///   headlens::safetensors_file f("model.safetensors");
///   headlens::matrix<float> w_q = f.read_matrix<float>("layers.0.attn.q.weight", d_model, d_model);

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "headlens/detail/binary_file.hpp"
#include "headlens/detail/json_subset.hpp"
#include "headlens/error.hpp"
#include "headlens/io/dtype.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// What a safetensors file says about one tensor.
struct safetensors_tensor_info {
  std::string name;              ///< the tensor's key in the header
  dtype type = dtype::float32;   ///< element type
  std::vector<Index> shape;      ///< extents, outermost first; empty for a scalar
  std::uint64_t begin = 0;       ///< first byte, relative to the start of the data buffer
  std::uint64_t end = 0;         ///< one past the last byte, relative to the start of the data buffer
  std::uint64_t header_offset = 0;  ///< byte offset of the tensor's key in the file (for messages)

  /// Number of elements, product(shape).
  Index size() const noexcept {
    Index n = 1;
    for (Index extent : shape) n *= extent;
    return n;
  }
};

namespace detail {

/// The safetensors dtype strings and our element types.
inline const std::vector<std::pair<const char*, dtype>>& safetensors_dtypes() {
  static const std::vector<std::pair<const char*, dtype>> table = {
      {"F64", dtype::float64},    {"F32", dtype::float32},        {"F16", dtype::float16},
      {"BF16", dtype::bfloat16},  {"F8_E4M3", dtype::float8_e4m3}, {"F8_E5M2", dtype::float8_e5m2},
      {"I64", dtype::int64},      {"I32", dtype::int32},          {"I16", dtype::int16},
      {"I8", dtype::int8},        {"U64", dtype::uint64},         {"U32", dtype::uint32},
      {"U16", dtype::uint16},     {"U8", dtype::uint8},           {"BOOL", dtype::bool8},
  };
  return table;
}

/// The safetensors name of `type` ("F32", ...).
inline const char* safetensors_dtype_name(dtype type) {
  for (const auto& entry : safetensors_dtypes()) {
    if (entry.second == type) return entry.first;
  }
  return "?";
}

}  // namespace detail

/// A safetensors file read into memory, its header validated. Tensors are converted on request.
class safetensors_file {
 public:
  /// Reads and validates the file at `path`. Throws `io_error` when it cannot be read and `format_error` (file,
  /// byte offset, what) when it is malformed.
  explicit safetensors_file(const std::string& path) : source_(path), bytes_(detail::read_file_bytes(path)) {
    parse();
  }

  /// Validates a complete safetensors file held in memory; `name` stands for the file in messages.
  /// Throws `format_error` when it is malformed.
  static safetensors_file from_memory(std::vector<unsigned char> bytes, std::string name = "<memory>") {
    safetensors_file file;
    file.source_ = std::move(name);
    file.bytes_ = std::move(bytes);
    file.parse();
    return file;
  }

  /// The file name (or buffer name) given on construction.
  const std::string& source() const noexcept { return source_; }

  /// Tensor names in the order of the header.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& t : tensors_) out.push_back(t.name);
    return out;
  }

  /// Number of tensors.
  std::size_t size() const noexcept { return tensors_.size(); }

  /// Whether a tensor named `name` exists.
  bool has(const std::string& name) const { return by_name_.count(name) != 0; }

  /// The dtype, shape and offsets of tensor `name`. Throws `argument_error` naming the key and some of the
  /// available keys when there is no such tensor.
  const safetensors_tensor_info& info(const std::string& name) const {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) missing(name);
    return tensors_[it->second];
  }

  /// The `__metadata__` string map (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  /// The stored bytes of tensor `name` (little-endian elements, C order) and their count. Valid while this
  /// object lives. Throws `argument_error` for an unknown name.
  std::pair<const unsigned char*, std::size_t> raw_bytes(const std::string& name) const {
    const safetensors_tensor_info& t = info(name);
    return {bytes_.data() + data_begin_ + t.begin, static_cast<std::size_t>(t.end - t.begin)};
  }

  /// Tensor `name` converted to `Scalar`, any rank. Floating `Scalar` accepts every dtype (F16, BF16 and the
  /// 8-bit floats are converted exactly); integer `Scalar` accepts integer and BOOL dtypes, each value
  /// range-checked; bool accepts BOOL. Throws `argument_error` for an unknown name, a conversion that is not
  /// allowed, or an integer that does not fit.
  template <class Scalar>
  tensor<Scalar> read_tensor(const std::string& name) const {
    const safetensors_tensor_info& t = info(name);
    if (!detail::can_convert<Scalar>(t.type)) {
      detail::fail<argument_error>("tensor '", name, "' in ", source_, " is ", detail::safetensors_dtype_name(t.type),
                                   ", which cannot be read as the requested scalar type");
    }
    tensor<Scalar> out;
    out.shape = t.shape;
    const auto count = static_cast<std::size_t>((t.end - t.begin) / dtype_size(t.type));
    out.data.resize(count);
    detail::convert_elements<Scalar>(bytes_.data() + data_begin_ + t.begin, t.type, count, out.data,
                             "tensor '" + name + "' in " + source_);
    return out;
  }

  /// 2-dimensional tensor `name` as a row-major matrix of `Scalar` (converted as in `read_tensor`); `rows` and
  /// `cols`, when not -1, are the expected extents. Throws `shape_error` naming the expected and the actual
  /// shape, and `argument_error` as `read_tensor`.
  template <class Scalar>
  matrix<Scalar> read_matrix(const std::string& name, Index rows = -1, Index cols = -1) const {
    const safetensors_tensor_info& t = info(name);
    if (t.shape.size() != 2 || (rows >= 0 && t.shape[0] != rows) || (cols >= 0 && t.shape[1] != cols)) {
      const std::string expected = "[" + (rows >= 0 ? std::to_string(rows) : std::string("rows")) + ", " +
                                   (cols >= 0 ? std::to_string(cols) : std::string("cols")) + "]";
      detail::fail<shape_error>("tensor '", name, "' in ", source_, " has shape ", detail::shape_string(t.shape),
                                ", expected ", expected);
    }
    const tensor<Scalar> values = read_tensor<Scalar>(name);
    matrix<Scalar> out(t.shape[0], t.shape[1]);
    std::copy(values.data.begin(), values.data.end(), out.data());
    return out;
  }

  /// 1-dimensional tensor `name` as a column vector of `Scalar` with `size` elements (any when -1). Throws
  /// `shape_error` naming the expected and the actual shape, and `argument_error` as `read_tensor`.
  template <class Scalar>
  vector<Scalar> read_vector(const std::string& name, Index size = -1) const {
    const safetensors_tensor_info& t = info(name);
    if (t.shape.size() != 1 || (size >= 0 && t.shape[0] != size)) {
      detail::fail<shape_error>("tensor '", name, "' in ", source_, " has shape ", detail::shape_string(t.shape),
                                ", expected [", size >= 0 ? std::to_string(size) : std::string("n"), "]");
    }
    const tensor<Scalar> values = read_tensor<Scalar>(name);
    vector<Scalar> out(t.shape[0]);
    std::copy(values.data.begin(), values.data.end(), out.data());
    return out;
  }

 private:
  safetensors_file() = default;

  [[noreturn]] void fail_at(std::uint64_t offset, const std::string& what) const {
    throw format_error::at_byte(source_, offset, what);
  }

  [[noreturn]] void missing(const std::string& name) const {
    constexpr std::size_t shown = 8;
    std::string available;
    for (std::size_t i = 0; i < tensors_.size() && i < shown; ++i) {
      available += (i == 0 ? "'" : ", '") + tensors_[i].name + "'";
    }
    if (tensors_.size() > shown) available += ", ... (" + std::to_string(tensors_.size() - shown) + " more)";
    if (tensors_.empty()) available = "none";
    detail::fail<argument_error>("no tensor named '", name, "' in ", source_, "; available: ", available);
  }

  /// Validates the header and fills tensors_, by_name_ and metadata_.
  void parse() {
    const std::size_t size = bytes_.size();
    if (size < 8) {
      fail_at(size, "truncated file: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
    }
    const std::uint64_t header_length = detail::load_le(bytes_.data(), 8);
    if (header_length > size - 8) {
      fail_at(0, "header length " + std::to_string(header_length) + " runs past the end of the file (" +
                     std::to_string(size) + " bytes)");
    }
    data_begin_ = 8 + static_cast<std::size_t>(header_length);
    const std::uint64_t buffer_size = size - data_begin_;
    const detail::json_value header = detail::parse_json(reinterpret_cast<const char*>(bytes_.data() + 8),
                                                         static_cast<std::size_t>(header_length), source_, 8);
    if (header.type != detail::json_value::kind::object) {
      fail_at(header.offset, std::string("the header is ") + detail::json_kind_name(header.type) +
                                 ", expected a JSON object");
    }
    for (const detail::json_member& member : header.object) {
      if (member.key == "__metadata__") {
        parse_metadata(member.value);
        continue;
      }
      tensors_.push_back(parse_entry(member, buffer_size));
      by_name_.emplace(member.key, tensors_.size() - 1);
    }
    check_overlaps();
  }

  void parse_metadata(const detail::json_value& value) {
    if (value.type != detail::json_value::kind::object) {
      fail_at(value.offset, std::string("__metadata__ is ") + detail::json_kind_name(value.type) +
                                ", expected an object of strings");
    }
    for (const detail::json_member& m : value.object) {
      if (m.value.type != detail::json_value::kind::string) {
        fail_at(m.value.offset, "__metadata__ value of '" + m.key + "' is " + detail::json_kind_name(m.value.type) +
                                    ", expected a string");
      }
      metadata_.emplace(m.key, m.value.string);
    }
  }

  const detail::json_value& require(const detail::json_member& entry, const char* key,
                                    detail::json_value::kind type) const {
    const detail::json_value* value = entry.value.find(key);
    if (value == nullptr) fail_at(entry.value.offset, "tensor '" + entry.key + "' has no \"" + key + "\"");
    if (value->type != type) {
      fail_at(value->offset, "tensor '" + entry.key + "': \"" + key + "\" is " + detail::json_kind_name(value->type) +
                                 ", expected " + detail::json_kind_name(type));
    }
    return *value;
  }

  safetensors_tensor_info parse_entry(const detail::json_member& entry, std::uint64_t buffer_size) const {
    using kind = detail::json_value::kind;
    const std::string& name = entry.key;
    if (entry.value.type != kind::object) {
      fail_at(entry.value.offset, "tensor '" + name + "' is " + detail::json_kind_name(entry.value.type) +
                                      ", expected an object with dtype, shape and data_offsets");
    }
    safetensors_tensor_info t;
    t.name = name;
    t.header_offset = entry.key_offset;

    const detail::json_value& type = require(entry, "dtype", kind::string);
    bool known = false;
    for (const auto& d : detail::safetensors_dtypes()) {
      if (type.string == d.first) {
        t.type = d.second;
        known = true;
      }
    }
    if (!known) {
      std::string list;
      for (const auto& d : detail::safetensors_dtypes()) list += std::string(list.empty() ? "" : " ") + d.first;
      fail_at(type.offset, "tensor '" + name + "': unknown dtype \"" + type.string + "\" (known: " + list + ")");
    }

    const detail::json_value& shape = require(entry, "shape", kind::array);
    for (const detail::json_value& extent : shape.array) {
      if (extent.type != kind::integer || extent.integer < 0) {
        fail_at(extent.offset, "tensor '" + name + "': shape entries must be non-negative integers");
      }
      t.shape.push_back(static_cast<Index>(extent.integer));
    }

    const detail::json_value& offsets = require(entry, "data_offsets", kind::array);
    if (offsets.array.size() != 2 || offsets.array[0].type != kind::integer ||
        offsets.array[1].type != kind::integer || offsets.array[0].integer < 0 || offsets.array[1].integer < 0) {
      fail_at(offsets.offset, "tensor '" + name + "': data_offsets must be two non-negative integers [begin, end]");
    }
    t.begin = static_cast<std::uint64_t>(offsets.array[0].integer);
    t.end = static_cast<std::uint64_t>(offsets.array[1].integer);
    const std::string range = "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
    if (t.begin > t.end) fail_at(offsets.offset, "tensor '" + name + "': data_offsets " + range + " end before they begin");
    if (t.end > buffer_size) {
      fail_at(offsets.offset, "tensor '" + name + "': data_offsets " + range + " run past the end of the " +
                                  std::to_string(buffer_size) + "-byte data buffer");
    }
    std::uint64_t count = 0;
    const std::uint64_t element_size = dtype_size(t.type);
    const bool countable = detail::element_count(t.shape, count) &&
                           count <= std::numeric_limits<std::uint64_t>::max() / element_size;
    if (!countable || count * element_size != t.end - t.begin) {
      fail_at(offsets.offset, "tensor '" + name + "': data_offsets " + range + " hold " +
                                  std::to_string(t.end - t.begin) + " bytes, but shape " +
                                  detail::shape_string(t.shape) + " of " + type.string + " needs " +
                                  (countable ? std::to_string(count * element_size) + " bytes"
                                             : std::string("more bytes than fit 64 bits")));
    }
    return t;
  }

  void check_overlaps() const {
    std::vector<std::size_t> order(tensors_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [this](std::size_t a, std::size_t b) {
      const auto& ta = tensors_[a];
      const auto& tb = tensors_[b];
      return ta.begin != tb.begin ? ta.begin < tb.begin : ta.end < tb.end;
    });
    const safetensors_tensor_info* furthest = nullptr;  // the tensor that reaches furthest so far
    for (std::size_t i : order) {
      const safetensors_tensor_info& t = tensors_[i];
      if (furthest != nullptr && t.begin < furthest->end && t.begin != t.end) {
        fail_at(t.header_offset, "tensor '" + t.name + "' (data_offsets [" + std::to_string(t.begin) + ", " +
                                     std::to_string(t.end) + "]) overlaps tensor '" + furthest->name + "' ([" +
                                     std::to_string(furthest->begin) + ", " + std::to_string(furthest->end) + "])");
      }
      if (furthest == nullptr || t.end > furthest->end) furthest = &t;
    }
  }

  std::string source_;
  std::vector<unsigned char> bytes_;
  std::size_t data_begin_ = 0;
  std::vector<safetensors_tensor_info> tensors_;
  std::unordered_map<std::string, std::size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

/// Builds a safetensors file from tensors added one by one (data copied on `add`), written in the order added.
class safetensors_writer {
 public:
  /// Adds `product(shape)` values of `Scalar` from `data` (C order) as tensor `name`, stored as `stored`: by
  /// default the type of `Scalar` (float -> F32, double -> F64, integers, bool); floating data may also be
  /// stored as float16 or bfloat16 (rounded to nearest even; double goes through float). Throws
  /// `argument_error` for a repeated or reserved name or an unsupported conversion, `shape_error` for a negative
  /// extent.
  template <class Scalar>
  void add(const std::string& name, const Scalar* data, const std::vector<Index>& shape,
           dtype stored = dtype_of<Scalar>::value) {
    if (name == "__metadata__") detail::fail<argument_error>("tensor name '__metadata__' is reserved by safetensors");
    for (const entry& e : entries_) {
      if (e.name == name) detail::fail<argument_error>("tensor '", name, "' was already added");
    }
    std::uint64_t count = 0;
    if (!detail::element_count(shape, count)) {
      detail::fail<shape_error>("tensor '", name, "': shape ", detail::shape_string(shape), " has a negative extent");
    }
    entry e;
    e.name = name;
    e.type = stored;
    e.shape = shape;
    const auto n = static_cast<std::size_t>(count);
    if (stored == dtype_of<Scalar>::value) {
      e.data.resize(n * sizeof(Scalar));
      if (n != 0) detail::encode_elements(data, n, e.data.data());
    } else if (std::is_floating_point<Scalar>::value &&
               (stored == dtype::float16 || stored == dtype::bfloat16 || stored == dtype::float32 ||
                stored == dtype::float64)) {
      e.data.resize(n * dtype_size(stored));
      for (std::size_t i = 0; i < n; ++i) {
        unsigned char* out = e.data.data() + i * dtype_size(stored);
        if (stored == dtype::float64) {
          const double v = static_cast<double>(data[i]);
          detail::encode_elements(&v, 1, out);
        } else if (stored == dtype::float32) {
          const float v = static_cast<float>(data[i]);
          detail::encode_elements(&v, 1, out);
        } else {
          const float v = static_cast<float>(data[i]);
          detail::store_le(out, stored == dtype::float16 ? float_to_half(v) : float_to_bfloat16(v), 2);
        }
      }
    } else {
      detail::fail<argument_error>("tensor '", name, "': cannot store ", dtype_name(dtype_of<Scalar>::value),
                                   " data as ", dtype_name(stored));
    }
    entries_.push_back(std::move(e));
  }

  /// Adds `size` bytes already encoded as `type` (little-endian, C order; e.g. `safetensors_file::raw_bytes` of
  /// another file) as tensor `name`, copied as they are. Throws `argument_error` for a repeated or reserved name,
  /// `shape_error` for a negative extent or a byte count that is not product(shape) * the dtype's size.
  void add_raw(const std::string& name, dtype type, const std::vector<Index>& shape, const unsigned char* data,
               std::size_t size) {
    if (name == "__metadata__") detail::fail<argument_error>("tensor name '__metadata__' is reserved by safetensors");
    for (const entry& e : entries_) {
      if (e.name == name) detail::fail<argument_error>("tensor '", name, "' was already added");
    }
    std::uint64_t count = 0;
    if (!detail::element_count(shape, count) ||
        count > std::numeric_limits<std::uint64_t>::max() / std::uint64_t(dtype_size(type)) ||
        count * std::uint64_t(dtype_size(type)) != std::uint64_t(size)) {
      detail::fail<shape_error>("tensor '", name, "': ", size, " bytes of ", detail::safetensors_dtype_name(type),
                                ", expected the product of shape ", detail::shape_string(shape), " times ",
                                dtype_size(type));
    }
    entry e;
    e.name = name;
    e.type = type;
    e.shape = shape;
    e.data.assign(data, data + size);
    entries_.push_back(std::move(e));
  }

  /// Adds a tensor; see the pointer overload. Throws `shape_error` when its data does not match its shape.
  template <class Scalar>
  void add(const std::string& name, const tensor<Scalar>& values, dtype stored = dtype_of<Scalar>::value) {
    std::uint64_t count = 0;
    if (!detail::element_count(values.shape, count) || count != values.data.size()) {
      detail::fail<shape_error>("tensor '", name, "' has ", values.data.size(), " values, expected the product of shape ",
                                detail::shape_string(values.shape));
    }
    if constexpr (std::is_same<Scalar, bool>::value) {  // std::vector<bool> has no data()
      const std::unique_ptr<bool[]> flat(new bool[values.data.size() + 1]);
      std::copy(values.data.begin(), values.data.end(), flat.get());
      add(name, flat.get(), values.shape, stored);
    } else {
      add(name, values.data.data(), values.shape, stored);
    }
  }

  /// Adds an Eigen matrix in C order whatever its storage order: a type that is a vector at compile time becomes
  /// a 1-dimensional tensor, anything else [rows, cols].
  template <class Derived>
  void add(const std::string& name, const Eigen::DenseBase<Derived>& values,
           dtype stored = dtype_of<typename Derived::Scalar>::value) {
    using Scalar = typename Derived::Scalar;
    const matrix<Scalar> row_major = values.derived();
    if (Derived::IsVectorAtCompileTime) {
      add(name, row_major.data(), std::vector<Index>{row_major.size()}, stored);
    } else {
      add(name, row_major.data(), std::vector<Index>{row_major.rows(), row_major.cols()}, stored);
    }
  }

  /// Sets a `__metadata__` entry.
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  /// The complete file: header length, JSON header padded with spaces to a multiple of 8 bytes, data.
  std::vector<unsigned char> bytes() const {
    std::string header = "{";
    bool first = true;
    if (!metadata_.empty()) {
      header += "\"__metadata__\":{";
      for (const auto& kv : metadata_) {
        if (!first) header += ",";
        first = false;
        header += detail::json_quote(kv.first) + ":" + detail::json_quote(kv.second);
      }
      header += "}";
      first = false;
    }
    std::uint64_t offset = 0;
    for (const entry& e : entries_) {
      if (!first) header += ",";
      first = false;
      header += detail::json_quote(e.name) + ":{\"dtype\":\"" + detail::safetensors_dtype_name(e.type) +
                "\",\"shape\":[";
      for (std::size_t i = 0; i < e.shape.size(); ++i) header += (i == 0 ? "" : ",") + std::to_string(e.shape[i]);
      header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + e.data.size()) + "]}";
      offset += e.data.size();
    }
    header += "}";
    header.append((8 - header.size() % 8) % 8, ' ');
    std::vector<unsigned char> out(8 + header.size() + static_cast<std::size_t>(offset));
    detail::store_le(out.data(), header.size(), 8);
    std::copy(header.begin(), header.end(), out.begin() + 8);
    std::size_t at = 8 + header.size();
    for (const entry& e : entries_) {
      std::copy(e.data.begin(), e.data.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
      at += e.data.size();
    }
    return out;
  }

  /// Writes the file to `path`. Throws `io_error` when it cannot be written.
  void write(const std::string& path) const {
    const std::vector<unsigned char> data = bytes();
    detail::write_file_bytes(path, data.data(), data.size());
  }

 private:
  struct entry {
    std::string name;
    dtype type;
    std::vector<Index> shape;
    std::vector<unsigned char> data;
  };
  std::vector<entry> entries_;
  std::map<std::string, std::string> metadata_;
};

/// Writes `tensors` (name -> tensor, stored as the type of `Scalar`) and `metadata` to a safetensors file.
/// Throws `shape_error` when a tensor's data does not match its shape and `io_error` when the file cannot be
/// written.
template <class Scalar>
void write_safetensors(const std::string& path, const std::map<std::string, tensor<Scalar>>& tensors,
                       const std::map<std::string, std::string>& metadata = {}) {
  safetensors_writer writer;
  for (const auto& kv : tensors) writer.add(kv.first, kv.second);
  for (const auto& kv : metadata) writer.set_metadata(kv.first, kv.second);
  writer.write(path);
}

}  // namespace headlens
