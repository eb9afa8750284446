#pragma once
// How every `headlens` subcommand writes what it produces: to stdout, or to a file written whole or not at all (into
// `path`.tmp-<pid>, renamed once complete), so a failure, or a failing MPI rank, never leaves a partial report.

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <ostream>
#include <string>

#include "command.hpp"

namespace headlens_cli {

/// Writes `path` whole with `write`; `option` names it in messages ("--out"). Throws `usage_error`.
inline void write_whole(const std::string& path, const char* option, const std::function<void(std::ostream&)>& write) {
  // Removed on every way out (a throw from `write`, a failed write or rename) unless renamed to `path`.
  struct temporary_file {
    std::string path;
    bool renamed = false;
    ~temporary_file() {
      if (!renamed) std::remove(path.c_str());
    }
  } temporary{path + ".tmp-" + std::to_string(::getpid())};
  {
    std::ofstream file(temporary.path, std::ios::binary);  // closed before the temporary is removed
    if (!file) fail("cannot open ", option, " ", path, " for writing");
    write(file);
    file.flush();
    if (!file) fail("cannot write ", option, " ", path);
  }
  if (std::rename(temporary.path.c_str(), path.c_str()) != 0) {
    fail("cannot write ", option, " ", path, " (renaming ", temporary.path, " failed)");
  }
  temporary.renamed = true;
}

/// Writes with `write` to `path` as `write_whole` does (option --out), or to stdout when `path` is empty.
inline void write_output(const std::string& path, const std::function<void(std::ostream&)>& write) {
  if (!path.empty()) {
    write_whole(path, "--out", write);
    return;
  }
  write(std::cout);
  std::cout.flush();
  if (!std::cout) fail("cannot write the output");
}

}  // namespace headlens_cli
