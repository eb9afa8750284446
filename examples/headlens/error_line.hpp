#pragma once
// The one line a failed command prints on stderr, `<program> <subcommand>: <message>`, shared by `headlens`
// (main.cpp) and `headlens-mpi` (examples/headlens_mpi/main.cpp).

#include <algorithm>
#include <string>

#include <CLI/CLI.hpp>

namespace headlens_cli {

/// The program's name followed by the subcommands the command line selected ("headlens attention").
inline std::string command_prefix(const CLI::App& app, std::string name) {
  for (const CLI::App* sub = &app;;) {
    const auto selected = sub->get_subcommands();
    if (selected.empty()) break;
    sub = selected.front();
    name += " " + sub->get_name();
  }
  return name;
}

/// A message on one line, without the library's own "headlens: " prefix (the caller adds the subcommand's).
inline std::string one_line(std::string text) {
  const std::string library_prefix = "headlens: ";
  if (text.compare(0, library_prefix.size(), library_prefix) == 0) text.erase(0, library_prefix.size());
  std::replace(text.begin(), text.end(), '\n', ' ');
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

}  // namespace headlens_cli
