#pragma once
/// \file
/// NumPy `.npy` files: read (format versions 1.0, 2.0 and 3.0) and write (1.0, or 2.0 for headers past 64 KiB).
///
/// Reads arrays in C order of bool (`|b1`), signed and unsigned integers of 1, 2, 4 and 8 bytes, and float16,
/// float32 and float64, little- or big-endian (big-endian data is byte-swapped on read). Fortran-order arrays,
/// structured dtypes and every other dtype are rejected with a `format_error`. Every malformed file throws
/// `format_error` naming the file, the byte offset and what was wrong.
///
///   headlens::npy_array a = headlens::read_npy("pattern.npy");            // any supported dtype, any rank
///   headlens::matrix<float> p = headlens::as_matrix<float>(a, 12, 12);     // checks the shape, converts
///   headlens::write_npy("maps.npy", maps.data(), {layers, heads, T, T});   // N-d, C order

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "headlens/detail/binary_file.hpp"
#include "headlens/error.hpp"
#include "headlens/io/dtype.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// An array read from a `.npy` file, its elements kept as stored (converted to little-endian).
struct npy_array {
  std::string source;                ///< the file name (or buffer name) it was read from, for messages
  dtype type = dtype::float64;       ///< element type
  std::vector<Index> shape;          ///< extents, outermost first; empty for a 0-dimensional array
  std::vector<unsigned char> bytes;  ///< size() * dtype_size(type) bytes, little-endian, C order

  /// Number of elements, product(shape).
  Index size() const noexcept {
    Index n = 1;
    for (Index extent : shape) n *= extent;
    return n;
  }
};

namespace detail {

/// A Python literal in a .npy header: a string, True/False/None, an integer, or a tuple or list of literals.
struct npy_literal {
  enum class kind { string, boolean, none, integer, sequence };
  kind type = kind::none;
  std::size_t pos = 0;  ///< offset of the first character within the header text
  std::string text;
  bool flag = false;
  std::int64_t number = 0;
  std::vector<npy_literal> items;
};

/// Parses the Python dict literal of a .npy header:
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` followed by spaces and a newline.
class npy_header_parser {
 public:
  npy_header_parser(const char* text, std::size_t size, const std::string& file, std::uint64_t base)
      : text_(text), size_(size), file_(file), base_(base) {}

  /// The (key, value) pairs in order; throws `format_error` at the offending byte.
  std::vector<std::pair<std::string, npy_literal>> parse() {
    std::vector<std::pair<std::string, npy_literal>> entries;
    skip_space();
    if (pos_ >= size_ || text_[pos_] != '{') fail_here("the header does not start with a dict '{'");
    ++pos_;
    for (;;) {
      skip_space();
      if (pos_ < size_ && text_[pos_] == '}') {
        ++pos_;
        break;
      }
      if (pos_ >= size_ || (text_[pos_] != '\'' && text_[pos_] != '"')) fail_here("expected a quoted key");
      const std::size_t key_pos = pos_;
      std::string key = parse_string();
      for (const auto& entry : entries) {
        if (entry.first == key) fail_at(key_pos, "duplicate key '" + key + "'");
      }
      skip_space();
      if (pos_ >= size_ || text_[pos_] != ':') fail_here("expected ':' after key '" + key + "'");
      ++pos_;
      skip_space();
      npy_literal value = parse_value(0);
      entries.emplace_back(std::move(key), std::move(value));
      skip_space();
      if (pos_ < size_ && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < size_ && text_[pos_] == '}') {
        ++pos_;
        break;
      }
      fail_here("expected ',' or '}' in the header dict");
    }
    skip_space();
    if (pos_ != size_) fail_here("unexpected text after the header dict");
    return entries;
  }

  [[noreturn]] void fail_at(std::size_t pos, const std::string& what) const {
    throw format_error::at_byte(file_, base_ + pos, "invalid .npy header: " + what);
  }

 private:
  [[noreturn]] void fail_here(const std::string& what) const {
    fail_at(pos_, pos_ >= size_ ? what + ", found the end of the header" : what);
  }

  void skip_space() noexcept {
    while (pos_ < size_ && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool match_word(const char* word) noexcept {
    std::size_t n = 0;
    while (word[n] != '\0') ++n;
    if (size_ - pos_ < n) return false;
    for (std::size_t i = 0; i < n; ++i) {
      if (text_[pos_ + i] != word[i]) return false;
    }
    const std::size_t after = pos_ + n;
    if (after < size_) {
      const char c = text_[after];
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') return false;
    }
    pos_ = after;
    return true;
  }

  std::string parse_string() {
    const std::size_t start = pos_;
    const char quote = text_[pos_++];
    std::string out;
    for (;;) {
      if (pos_ >= size_ || text_[pos_] == '\n') fail_at(start, "unterminated string");
      const char c = text_[pos_++];
      if (c == quote) return out;
      if (c == '\\') {
        if (pos_ >= size_) fail_at(start, "unterminated string");
        out += text_[pos_++];  // descr strings never need escapes; take the next character as is
        continue;
      }
      out += c;
    }
  }

  npy_literal parse_value(int depth) {
    if (depth > 32) fail_here("nesting too deep");
    npy_literal value;
    value.pos = pos_;
    if (pos_ >= size_) fail_here("expected a value");
    const char c = text_[pos_];
    if (c == '\'' || c == '"') {
      value.type = npy_literal::kind::string;
      value.text = parse_string();
    } else if (c == '(' || c == '[') {
      const char close = c == '(' ? ')' : ']';
      value.type = npy_literal::kind::sequence;
      ++pos_;
      for (;;) {
        skip_space();
        if (pos_ < size_ && text_[pos_] == close) {
          ++pos_;
          break;
        }
        value.items.push_back(parse_value(depth + 1));
        skip_space();
        if (pos_ < size_ && text_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < size_ && text_[pos_] == close) {
          ++pos_;
          break;
        }
        fail_here(std::string("expected ',' or '") + close + "'");
      }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      value.type = npy_literal::kind::integer;
      bool negative = false;
      if (c == '-') {
        negative = true;
        ++pos_;
      }
      if (pos_ >= size_ || text_[pos_] < '0' || text_[pos_] > '9') fail_here("expected a digit");
      std::int64_t n = 0;
      while (pos_ < size_ && text_[pos_] >= '0' && text_[pos_] <= '9') {
        const int digit = text_[pos_] - '0';
        if (n > (std::numeric_limits<std::int64_t>::max() - digit) / 10) fail_at(value.pos, "integer out of range");
        n = n * 10 + digit;
        ++pos_;
      }
      if (pos_ < size_ && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;  // Python 2 long suffix
      if (pos_ < size_ && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
        fail_at(value.pos, "expected an integer, found a float");
      }
      value.number = negative ? -n : n;
    } else if (match_word("True")) {
      value.type = npy_literal::kind::boolean;
      value.flag = true;
    } else if (match_word("False")) {
      value.type = npy_literal::kind::boolean;
    } else if (match_word("None")) {
      value.type = npy_literal::kind::none;
    } else {
      fail_here("expected a string, True, False, an integer or a tuple");
    }
    return value;
  }

  const char* text_;
  std::size_t size_;
  const std::string& file_;
  std::uint64_t base_;
  std::size_t pos_ = 0;
};

/// The dtype of a .npy descr string such as "<f4"; sets `big_endian`. Returns false when unsupported.
inline bool npy_parse_descr(const std::string& descr, dtype& type, bool& big_endian) noexcept {
  if (descr.size() != 3) return false;
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '|') return false;
  big_endian = order == '>';
  const char kind = descr[1];
  const char size = descr[2];
  switch (kind) {
    case 'b':
      if (size != '1') return false;
      type = dtype::bool8;
      break;
    case 'i':
      switch (size) {
        case '1': type = dtype::int8; break;
        case '2': type = dtype::int16; break;
        case '4': type = dtype::int32; break;
        case '8': type = dtype::int64; break;
        default: return false;
      }
      break;
    case 'u':
      switch (size) {
        case '1': type = dtype::uint8; break;
        case '2': type = dtype::uint16; break;
        case '4': type = dtype::uint32; break;
        case '8': type = dtype::uint64; break;
        default: return false;
      }
      break;
    case 'f':
      switch (size) {
        case '2': type = dtype::float16; break;
        case '4': type = dtype::float32; break;
        case '8': type = dtype::float64; break;
        default: return false;
      }
      break;
    default:
      return false;
  }
  // '|' (not applicable) is only meaningful for one-byte types, and numpy writes multi-byte types with '<'/'>'.
  return order != '|' || dtype_size(type) == 1;
}

/// The descr numpy writes for `type` ("<f4", "|b1", ...).
inline std::string npy_descr(dtype type) {
  switch (type) {
    case dtype::bool8: return "|b1";
    case dtype::int8: return "|i1";
    case dtype::uint8: return "|u1";
    case dtype::int16: return "<i2";
    case dtype::int32: return "<i4";
    case dtype::int64: return "<i8";
    case dtype::uint16: return "<u2";
    case dtype::uint32: return "<u4";
    case dtype::uint64: return "<u8";
    case dtype::float16: return "<f2";
    case dtype::float32: return "<f4";
    case dtype::float64: return "<f8";
    default: break;
  }
  fail<argument_error>("dtype ", dtype_name(type), " cannot be written to a .npy file");
}

/// The complete .npy preamble and header (magic, version, length, dict, padding) for an array of `type` and
/// `shape`, padded so that the data starts at a multiple of 64 bytes.
inline std::string npy_header(dtype type, const std::vector<Index>& shape) {
  std::string dict = "{'descr': '" + npy_descr(type) + "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) dict += ", ";
    dict += std::to_string(shape[i]);
  }
  if (shape.size() == 1) dict += ",";
  dict += "), }";
  std::size_t preamble = 10;  // magic (6) + version (2) + 2-byte length
  std::size_t total = preamble + dict.size() + 1;
  std::size_t padded = (total + 63) / 64 * 64;
  unsigned char major = 1;
  if (padded - preamble > 0xFFFFu) {
    major = 2;
    preamble = 12;
    total = preamble + dict.size() + 1;
    padded = (total + 63) / 64 * 64;
  }
  const std::size_t header_length = padded - preamble;
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  unsigned char length[4];
  store_le(length, header_length, preamble - 8);
  out.append(reinterpret_cast<const char*>(length), preamble - 8);
  out += dict;
  out.append(padded - total, ' ');
  out += '\n';
  return out;
}

}  // namespace detail

/// Parses a complete `.npy` file held in memory. `name` is used in error messages and stored in `source`.
/// Throws `format_error` (with `name` and the byte offset) for a bad magic string, an unsupported version, a
/// truncated file, a header length past the end, an unparseable or incomplete header dict, an unsupported dtype,
/// Fortran order, a negative extent, or data whose size does not match the shape.
inline npy_array read_npy_from_memory(const void* data, std::size_t size, const std::string& name = "<memory>") {
  const auto* bytes = static_cast<const unsigned char*>(data);
  static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  for (std::size_t i = 0; i < 6; ++i) {
    if (i >= size) {
      throw format_error::at_byte(name, size, "truncated file: " + std::to_string(size) + " bytes, shorter than the .npy magic string");
    }
    if (bytes[i] != magic[i]) throw format_error::at_byte(name, i, "not a .npy file: bad magic string");
  }
  if (size < 8) throw format_error::at_byte(name, size, "truncated file: the format version is missing");
  const unsigned major = bytes[6];
  const unsigned minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0) {
    throw format_error::at_byte(name, 6,
                                "unsupported .npy format version " + std::to_string(major) + "." +
                                    std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  const std::size_t length_size = major == 1 ? 2 : 4;
  const std::size_t header_begin = 8 + length_size;
  if (size < header_begin) throw format_error::at_byte(name, size, "truncated file: the header length is missing");
  const std::uint64_t header_length = detail::load_le(bytes + 8, length_size);
  if (header_length > size - header_begin) {
    throw format_error::at_byte(name, 8,
                                "header length " + std::to_string(header_length) + " runs past the end of the file (" +
                                    std::to_string(size) + " bytes, header starts at byte " +
                                    std::to_string(header_begin) + ")");
  }
  const auto header_size = static_cast<std::size_t>(header_length);
  const char* header_text = reinterpret_cast<const char*>(bytes + header_begin);
  detail::npy_header_parser parser(header_text, header_size, name, header_begin);
  const auto entries = parser.parse();

  npy_array out;
  out.source = name;
  const detail::npy_literal* descr = nullptr;
  const detail::npy_literal* fortran = nullptr;
  const detail::npy_literal* shape = nullptr;
  for (const auto& entry : entries) {
    if (entry.first == "descr") descr = &entry.second;
    else if (entry.first == "fortran_order") fortran = &entry.second;
    else if (entry.first == "shape") shape = &entry.second;
    else parser.fail_at(entry.second.pos, "unexpected key '" + entry.first + "' (expected descr, fortran_order, shape)");
  }
  if (descr == nullptr || fortran == nullptr || shape == nullptr) {
    parser.fail_at(0, std::string("missing key '") + (descr == nullptr ? "descr" : fortran == nullptr ? "fortran_order" : "shape") + "'");
  }

  bool big_endian = false;
  if (descr->type != detail::npy_literal::kind::string) {
    throw format_error::at_byte(name, header_begin + descr->pos,
                                "unsupported dtype: structured arrays are not supported (expected a descr string)");
  }
  if (!detail::npy_parse_descr(descr->text, out.type, big_endian)) {
    throw format_error::at_byte(name, header_begin + descr->pos,
                                "unsupported dtype '" + descr->text +
                                    "' (supported: bool |b1, integers i1 i2 i4 i8 u1 u2 u4 u8, floats f2 f4 f8)");
  }
  if (fortran->type != detail::npy_literal::kind::boolean) {
    parser.fail_at(fortran->pos, "fortran_order must be True or False");
  }
  if (fortran->flag) {
    throw format_error::at_byte(name, header_begin + fortran->pos,
                                "fortran_order is True; only C-order arrays are supported "
                                "(save np.ascontiguousarray(a) instead)");
  }
  if (shape->type != detail::npy_literal::kind::sequence) parser.fail_at(shape->pos, "shape must be a tuple of integers");
  for (const detail::npy_literal& extent : shape->items) {
    if (extent.type != detail::npy_literal::kind::integer) parser.fail_at(extent.pos, "shape must be a tuple of integers");
    if (extent.number < 0) parser.fail_at(extent.pos, "negative extent " + std::to_string(extent.number) + " in shape");
    out.shape.push_back(static_cast<Index>(extent.number));
  }

  const std::size_t data_begin = header_begin + header_size;
  const std::size_t available = size - data_begin;
  const std::size_t element_size = dtype_size(out.type);
  std::uint64_t count = 0;
  if (!detail::element_count(out.shape, count)) {
    parser.fail_at(shape->pos, "shape " + detail::shape_string(out.shape) + " has more elements than fit 64 bits");
  }
  if (count > available / element_size) {
    throw format_error::at_byte(name, size,
                                "truncated data: shape " + detail::shape_string(out.shape) + " needs " +
                                    std::to_string(count) + " elements of " + dtype_name(out.type) + " (" +
                                    std::to_string(element_size) + " bytes each), the file has " +
                                    std::to_string(available) + " bytes after the header");
  }
  const std::size_t needed = static_cast<std::size_t>(count) * element_size;
  if (needed != available) {
    throw format_error::at_byte(name, data_begin + needed,
                                std::to_string(available - needed) + " bytes after the data of shape " +
                                    detail::shape_string(out.shape) + " of " + dtype_name(out.type) + " (" +
                                    std::to_string(needed) + " bytes expected after the header)");
  }
  out.bytes.assign(bytes + data_begin, bytes + data_begin + needed);
  if (big_endian && element_size > 1) {
    for (std::size_t i = 0; i < needed; i += element_size) {
      for (std::size_t a = i, b = i + element_size - 1; a < b; ++a, --b) std::swap(out.bytes[a], out.bytes[b]);
    }
  }
  return out;
}

/// Reads a `.npy` file. Throws `io_error` when it cannot be read and `format_error` (see
/// `read_npy_from_memory`) when it is malformed.
inline npy_array read_npy(const std::string& path) {
  const std::vector<unsigned char> bytes = detail::read_file_bytes(path);
  return read_npy_from_memory(bytes.data(), bytes.size(), path);
}

/// The elements of `array` converted to `Scalar`, with its shape. Floating scalars accept every dtype (float32
/// <-> float64 included); integer scalars accept integer and bool dtypes; bool accepts bool only. Throws
/// `argument_error` for a conversion that is not allowed or an integer that does not fit `Scalar`.
template <class Scalar>
tensor<Scalar> as_tensor(const npy_array& array) {
  if (!detail::can_convert<Scalar>(array.type)) {
    detail::fail<argument_error>(array.source, ": cannot read ", dtype_name(array.type),
                                 " data as the requested scalar type");
  }
  tensor<Scalar> out;
  out.shape = array.shape;
  const std::size_t count = array.bytes.size() / dtype_size(array.type);
  out.data.resize(count);
  detail::convert_elements<Scalar>(array.bytes.data(), array.type, count, out.data, array.source);
  return out;
}

/// `array` as a row-major matrix of `Scalar` (converted as in `as_tensor`). The array must be 2-dimensional;
/// `rows` and `cols`, when not -1, are the expected extents. Throws `shape_error` naming the expected and the
/// actual shape, and `argument_error` for a dtype that cannot convert.
template <class Scalar>
matrix<Scalar> as_matrix(const npy_array& array, Index rows = -1, Index cols = -1) {
  if (array.shape.size() != 2 || (rows >= 0 && array.shape[0] != rows) || (cols >= 0 && array.shape[1] != cols)) {
    const std::string expected = "[" + (rows >= 0 ? std::to_string(rows) : std::string("rows")) + ", " +
                                 (cols >= 0 ? std::to_string(cols) : std::string("cols")) + "]";
    detail::fail<shape_error>(array.source, " has shape ", detail::shape_string(array.shape), ", expected ", expected);
  }
  tensor<Scalar> values = as_tensor<Scalar>(array);
  matrix<Scalar> out(array.shape[0], array.shape[1]);
  if (!values.data.empty()) std::copy(values.data.begin(), values.data.end(), out.data());
  return out;
}

/// `array` as a column vector of `Scalar`. The array must be 1-dimensional with `size` elements (any when -1).
/// Throws `shape_error` naming the expected and the actual shape.
template <class Scalar>
vector<Scalar> as_vector(const npy_array& array, Index size = -1) {
  if (array.shape.size() != 1 || (size >= 0 && array.shape[0] != size)) {
    detail::fail<shape_error>(array.source, " has shape ", detail::shape_string(array.shape), ", expected [",
                              size >= 0 ? std::to_string(size) : std::string("n"), "]");
  }
  tensor<Scalar> values = as_tensor<Scalar>(array);
  vector<Scalar> out(array.shape[0]);
  if (!values.data.empty()) std::copy(values.data.begin(), values.data.end(), out.data());
  return out;
}

/// Reads a 2-dimensional `.npy` file as a matrix; see `read_npy` and `as_matrix`.
template <class Scalar>
matrix<Scalar> read_npy_matrix(const std::string& path, Index rows = -1, Index cols = -1) {
  return as_matrix<Scalar>(read_npy(path), rows, cols);
}

/// The bytes of a `.npy` file holding `product(shape)` values of `Scalar` from `data` in C order. `Scalar` is
/// float, double, bool or a fixed-width integer. Throws `shape_error` for a negative extent.
template <class Scalar>
std::vector<unsigned char> npy_bytes(const Scalar* data, const std::vector<Index>& shape) {
  std::uint64_t count = 0;
  if (!detail::element_count(shape, count)) {
    detail::fail<shape_error>("cannot write shape ", detail::shape_string(shape), " to .npy: negative extent or overflow");
  }
  const std::string header = detail::npy_header(dtype_of<Scalar>::value, shape);
  std::vector<unsigned char> out(header.begin(), header.end());
  const std::size_t offset = out.size();
  out.resize(offset + static_cast<std::size_t>(count) * sizeof(Scalar));
  if (count != 0) detail::encode_elements(data, static_cast<std::size_t>(count), out.data() + offset);
  return out;
}

/// Writes `product(shape)` values of `Scalar` from `data` (C order) to a `.npy` file at `path`, e.g. attention
/// maps of shape [layers, heads, T, T]. Throws `shape_error` for a negative extent and `io_error` when the file
/// cannot be written.
template <class Scalar>
void write_npy(const std::string& path, const Scalar* data, const std::vector<Index>& shape) {
  const std::vector<unsigned char> bytes = npy_bytes(data, shape);
  detail::write_file_bytes(path, bytes.data(), bytes.size());
}

/// Writes a tensor to a `.npy` file; see the pointer overload.
template <class Scalar>
void write_npy(const std::string& path, const tensor<Scalar>& values) {
  std::uint64_t count = 0;
  if (!detail::element_count(values.shape, count) || count != values.data.size()) {
    detail::fail<shape_error>("tensor has ", values.data.size(), " values, expected product of shape ",
                              detail::shape_string(values.shape));
  }
  if constexpr (std::is_same<Scalar, bool>::value) {  // std::vector<bool> has no data()
    const std::unique_ptr<bool[]> flat(new bool[values.data.size() + 1]);
    std::copy(values.data.begin(), values.data.end(), flat.get());
    write_npy(path, flat.get(), values.shape);
  } else {
    write_npy(path, values.data.data(), values.shape);
  }
}

/// Writes an Eigen matrix or vector to a `.npy` file in C order, whatever its storage order: a type that is a
/// vector at compile time becomes a 1-dimensional array, anything else [rows, cols]. Throws `io_error`.
template <class Derived>
void write_npy(const std::string& path, const Eigen::DenseBase<Derived>& values) {
  using Scalar = typename Derived::Scalar;
  const matrix<Scalar> row_major = values.derived();  // evaluates expressions, fixes the storage order
  if (Derived::IsVectorAtCompileTime) {
    write_npy(path, row_major.data(), std::vector<Index>{row_major.size()});
  } else {
    write_npy(path, row_major.data(), std::vector<Index>{row_major.rows(), row_major.cols()});
  }
}

}  // namespace headlens
