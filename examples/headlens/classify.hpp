#pragma once
// `headlens classify` as a command other programs add to their own command line: `headlens` (classify.cpp
// registers it with the default run) and `headlens-mpi` (examples/headlens_mpi/, which measures over MPI ranks and
// writes the report on rank 0 only).

#include <functional>

#include <CLI/CLI.hpp>
#include <headlens/analysis/head_analysis.hpp>

namespace headlens_cli {

/// How one process takes part in a classify run.
struct classify_run {
  /// Measures the planned windows; empty: every window here (`head_analysis::measure()`).
  std::function<headlens::head_measurements(const headlens::head_analysis&)> measure;
  /// Whether this process draws the progress bar and writes the summary, the evidence and the report.
  bool writes_report = true;
};

/// Adds the `classify` subcommand, run as `run` says, to `app`.
void add_classify_command(CLI::App& app, classify_run run);

}  // namespace headlens_cli
