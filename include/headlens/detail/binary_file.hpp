#pragma once
/// \file
/// Whole-file binary reads and writes for the file-format readers, reporting failures as `io_error`.

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <ios>
#include <string>
#include <vector>

#include "headlens/error.hpp"

namespace headlens {
namespace detail {

/// The text of errno for messages ("No such file or directory"), or "unknown error".
inline std::string errno_text(int code) {
  const char* text = code != 0 ? std::strerror(code) : nullptr;
  return text != nullptr ? std::string(text) : std::string("unknown error");
}

/// Reads the whole file at `path`. Throws `io_error` naming the path when it cannot be opened or read.
inline std::vector<unsigned char> read_file_bytes(const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail<io_error>("cannot open ", path, " for reading: ", errno_text(errno));
  const std::streamoff end = in.tellg();
  if (end < 0) fail<io_error>("cannot determine the size of ", path);
  std::vector<unsigned char> bytes(static_cast<std::size_t>(end));
  in.seekg(0, std::ios::beg);
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()))) {
    fail<io_error>("cannot read ", path, ": ", errno_text(errno));
  }
  return bytes;
}

/// Writes `size` bytes to `path`, replacing the file. Throws `io_error` naming the path on failure.
inline void write_file_bytes(const std::string& path, const void* data, std::size_t size) {
  errno = 0;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail<io_error>("cannot open ", path, " for writing: ", errno_text(errno));
  if (size != 0) out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) fail<io_error>("cannot write ", path, ": ", errno_text(errno));
}

}  // namespace detail
}  // namespace headlens
