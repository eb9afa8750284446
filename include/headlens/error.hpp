#pragma once
/// \file
/// The exception hierarchy of headlens. Every error a user can cause is reported by one of these types, with a
/// message that names the argument, the value it had and what was expected:
///   `headlens: x.cols() is 700, expected d_model = 768`.
/// "No verdict" results (an unassigned head, a missing optional input) are values, never exceptions.

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace headlens {

/// Root of every exception headlens throws.
class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error(what) {}
};

/// An array had the wrong number of rows, columns or elements.
class shape_error : public error {
 public:
  using error::error;
};

/// An argument had a value outside its domain (a negative count, heads not divisible by kv heads, ...).
class argument_error : public error {
 public:
  using error::error;
};

/// Input data held a value the caller asked us to reject (NaN or infinity under `check_finite`).
class numeric_error : public error {
 public:
  using error::error;
};

/// A request would use more memory than the budget the caller gave.
class budget_error : public error {
 public:
  using error::error;
};

/// A file (or byte buffer) was malformed. Carries where: the file name and either a line (text formats) or a
/// byte offset (binary formats); the message repeats both so that `what()` alone is enough.
class format_error : public error {
 public:
  format_error(std::string file, std::uint64_t line, std::uint64_t byte_offset, const std::string& what)
      : error(what), file_(std::move(file)), line_(line), byte_offset_(byte_offset) {}

  /// Name of the file, or a description of the buffer ("<memory>").
  const std::string& file() const noexcept { return file_; }
  /// 1-based line of a text format, 0 when not applicable.
  std::uint64_t line() const noexcept { return line_; }
  /// Byte offset in a binary format, 0 when not applicable.
  std::uint64_t byte_offset() const noexcept { return byte_offset_; }

  /// A text-format error at `file:line`.
  static format_error at_line(const std::string& file, std::uint64_t line, const std::string& what) {
    return format_error(file, line, 0, "headlens: " + file + ":" + std::to_string(line) + ": " + what);
  }
  /// A binary-format error at a byte offset of `file`.
  static format_error at_byte(const std::string& file, std::uint64_t offset, const std::string& what) {
    return format_error(file, 0, offset, "headlens: " + file + " at byte " + std::to_string(offset) + ": " + what);
  }

 private:
  std::string file_;
  std::uint64_t line_;
  std::uint64_t byte_offset_;
};

/// A file could not be opened, read or written.
class io_error : public error {
 public:
  using error::error;
};

namespace detail {

/// Builds a message with the "headlens: " prefix from streamable parts.
template <class... Parts>
std::string message(const Parts&... parts) {
  std::ostringstream out;
  out << "headlens: ";
  (out << ... << parts);
  return out.str();
}

/// The message of `e` without its "headlens: " prefix, to quote inside another message.
inline std::string unprefixed(const std::exception& e) {
  const std::string what = e.what();
  const std::string prefix = "headlens: ";
  return what.compare(0, prefix.size(), prefix) == 0 ? what.substr(prefix.size()) : what;
}

/// Throws E with a message built from the parts.
template <class E, class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw E(message(parts...));
}

}  // namespace detail
}  // namespace headlens

/// Internal consistency check, compiled out under NDEBUG (like eigen_assert). Never for user input: user input is
/// validated at the boundary and reported with an exception.
#ifndef HEADLENS_ASSERT
#ifdef NDEBUG
#define HEADLENS_ASSERT(cond) ((void)0)
#else
#include <cassert>
#define HEADLENS_ASSERT(cond) assert(cond)
#endif
#endif
