#pragma once
// The plumbing every `headlens` subcommand shares: a registry that each subcommand's .cpp joins with one static
// object (so adding `classify`, `maps`, ... is adding a file; main.cpp never changes), and the error type that
// main.cpp turns into the one-line `headlens <subcommand>: <message>` on stderr.

#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace headlens_cli {

/// One subcommand: `setup` adds it to the top-level app (options, description, callback that does the work).
struct command {
  std::string name;
  std::function<void(CLI::App& app)> setup;
};

/// Every registered subcommand, in registration order (main sorts them by name for a stable --help).
inline std::vector<command>& commands() {
  static std::vector<command> all;
  return all;
}

/// Registers a subcommand from a namespace-scope static object:
///   static const headlens_cli::register_command attention_command{"attention", setup_attention};
struct register_command {
  register_command(std::string name, std::function<void(CLI::App&)> setup) {
    commands().push_back({std::move(name), std::move(setup)});
  }
};

/// The command line the tool was started with, words joined by spaces (set by main before parsing), for the
/// provenance of what a subcommand writes (a head card's `command`).
inline std::string& invoked_command() {
  static std::string line;
  return line;
}

/// Sets `invoked_command` from main's arguments.
inline void set_invoked_command(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) line += (i > 0 ? " " : "") + std::string(argv[i]);
  invoked_command() = line;
}

/// A bad argument or input found by a subcommand itself (headlens's own exceptions are reported the same way).
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Concatenates streamable parts into a message.
template <class... Parts>
std::string message(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

/// Throws `usage_error` with the concatenated parts.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw usage_error(message(parts...));
}

}  // namespace headlens_cli
