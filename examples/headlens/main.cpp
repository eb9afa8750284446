// `headlens`: the command-line tool. Each subcommand lives in its own file of examples/headlens/ and registers
// itself (see command.hpp); this file only parses and reports.
//
// Exit status: 0 on success (and for --help), 1 when a subcommand fails, 2 for a command line CLI11 rejects. Every
// failure prints exactly one line on stderr: `headlens <subcommand>: <message>`.

#include <algorithm>
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include <CLI/CLI.hpp>

#include "command.hpp"

namespace {

/// "headlens" followed by the subcommands the command line selected ("headlens attention").
std::string prefix(const CLI::App& app) {
  std::string name = "headlens";
  for (const CLI::App* sub = &app;;) {
    const auto selected = sub->get_subcommands();
    if (selected.empty()) break;
    sub = selected.front();
    name += " " + sub->get_name();
  }
  return name;
}

/// A message on one line, without the library's own "headlens: " prefix (the caller adds the subcommand's).
std::string one_line(std::string text) {
  const std::string library_prefix = "headlens: ";
  if (text.compare(0, library_prefix.size(), library_prefix) == 0) text.erase(0, library_prefix.size());
  std::replace(text.begin(), text.end(), '\n', ' ');
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"headlens: multi-head attention with per-head instrumentation, from files", "headlens"};
  app.require_subcommand(1);

  auto& registered = headlens_cli::commands();
  std::sort(registered.begin(), registered.end(),
            [](const headlens_cli::command& a, const headlens_cli::command& b) { return a.name < b.name; });
  for (const auto& command : registered) command.setup(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << prefix(app) << ": " << one_line(e.what()) << " (run with --help for usage)\n";
    return e.get_exit_code() != 0 ? 2 : 0;
  } catch (const std::bad_alloc&) {
    // Where the library knows what it was allocating it says so (budget_error); this is the rest.
    std::cerr << prefix(app) << ": out of memory; expected less input at once (a shorter --window, fewer tokens, "
              << "a smaller model)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << prefix(app) << ": " << one_line(e.what()) << "\n";
    return 1;
  }
  return 0;
}
