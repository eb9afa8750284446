#pragma once
/// \file
/// The bytes of a whole file, memory-mapped read-only where POSIX mmap is available (so a multi-gigabyte weight
/// file is paged in on demand, not copied), read into memory otherwise, or owned bytes handed in by the caller.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "headlens/detail/binary_file.hpp"
#include "headlens/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define HEADLENS_HAVE_MMAP 1
#endif

namespace headlens {
namespace detail {

/// Read-only bytes of a file or buffer; movable, not copyable. `data()` stays valid while the object lives.
class read_only_mapping {
 public:
  read_only_mapping() = default;

  /// Maps `path` (falls back to reading it whole when mapping fails). Throws `io_error` naming the path.
  explicit read_only_mapping(const std::string& path) {
#ifdef HEADLENS_HAVE_MMAP
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) fail<io_error>("cannot open ", path, " for reading: ", errno_text(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int code = errno;
      ::close(fd);
      fail<io_error>("cannot determine the size of ", path, ": ", errno_text(code));
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
      void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        ::close(fd);
        mapped_ = p;
        data_ = static_cast<const unsigned char*>(p);
        size_ = static_cast<std::size_t>(st.st_size);
        return;
      }
    }
    ::close(fd);
#endif
    owned_ = read_file_bytes(path);
    data_ = owned_.data();
    size_ = owned_.size();
  }

  /// Takes ownership of `bytes`.
  explicit read_only_mapping(std::vector<unsigned char> bytes) : owned_(std::move(bytes)) {
    data_ = owned_.data();
    size_ = owned_.size();
  }

  read_only_mapping(const read_only_mapping&) = delete;
  read_only_mapping& operator=(const read_only_mapping&) = delete;
  read_only_mapping(read_only_mapping&& other) noexcept { *this = std::move(other); }
  read_only_mapping& operator=(read_only_mapping&& other) noexcept {
    if (this != &other) {
      release();
      owned_ = std::move(other.owned_);
      mapped_ = other.mapped_;
      size_ = other.size_;
      data_ = mapped_ != nullptr ? other.data_ : owned_.data();
      other.mapped_ = nullptr;
      other.data_ = nullptr;
      other.size_ = 0;
    }
    return *this;
  }
  ~read_only_mapping() { release(); }

  const unsigned char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  /// Whether the bytes are a memory mapping (rather than a copy).
  bool is_mapped() const noexcept { return mapped_ != nullptr; }

 private:
  void release() noexcept {
#ifdef HEADLENS_HAVE_MMAP
    if (mapped_ != nullptr) ::munmap(mapped_, size_);
#endif
    mapped_ = nullptr;
  }

  std::vector<unsigned char> owned_;
  void* mapped_ = nullptr;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detail
}  // namespace headlens
