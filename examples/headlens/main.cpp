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
#include "error_line.hpp"

namespace {

std::string prefix(const CLI::App& app) { return headlens_cli::command_prefix(app, "headlens"); }
using headlens_cli::one_line;

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"headlens: multi-head attention with per-head instrumentation, from files", "headlens"};
  app.require_subcommand(1);

  auto& registered = headlens_cli::commands();
  std::sort(registered.begin(), registered.end(),
            [](const headlens_cli::command& a, const headlens_cli::command& b) { return a.name < b.name; });
  for (const auto& command : registered) command.setup(app);

  try {
    headlens_cli::set_invoked_command(argc, argv);
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
