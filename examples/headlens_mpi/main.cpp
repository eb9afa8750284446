// `headlens-mpi`: `headlens classify` with its windows shared out over MPI ranks.
//
//   mpirun -np N headlens-mpi classify [the arguments of headlens classify]
//
// Rank r measures windows k with k % N == r (include/headlens/mpi/measure_across_ranks.hpp); rank 0 merges the
// exact totals in rank order and alone writes the verdicts and the report, which are byte for byte those of
// `headlens classify` with the same arguments. Every rank reads the documents and loads the model itself.
//
// Failure: the ranks agree on success before the reduction (include/headlens/mpi/rank_agreement.hpp), so none
// waits for a rank that has thrown. The lowest failing rank prints its one line, `headlens-mpi classify:
// <message>`, and every rank exits non-zero; --out and --evidence are written whole or not at all.
//
// HEADLENS_MPI_FAULT=<rank> makes that rank throw as it starts measuring, HEADLENS_MPI_FAULT=<rank>:kill makes it
// kill itself (SIGKILL): the failure tests (tests/mpi/) use them.

#include <mpi.h>

#include <csignal>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include <CLI/CLI.hpp>
#include <headlens/mpi/measure_across_ranks.hpp>
#include <headlens/mpi/rank_agreement.hpp>

#include "classify.hpp"
#include "command.hpp"
#include "error_line.hpp"

namespace {

/// Acts on HEADLENS_MPI_FAULT when it names this rank.
void inject_fault(int rank) {
  const char* fault = std::getenv("HEADLENS_MPI_FAULT");
  if (fault == nullptr || *fault == '\0') return;
  const std::string spec = fault;
  const std::string target = spec.substr(0, spec.find(':'));
  if (target != std::to_string(rank)) return;
  if (spec.size() > target.size() && spec.substr(target.size()) == ":kill") std::raise(SIGKILL);
  headlens_cli::fail("fault injected on rank ", rank, " (HEADLENS_MPI_FAULT=", spec, ")");
}

/// Runs the command line on this rank; returns the exit status and sets `message` to what this rank has to say.
int run(int argc, char** argv, headlens::mpi::rank_agreement& agreement, std::string& message) {
  CLI::App app{
      "headlens-mpi: `headlens classify` with its windows shared out over MPI ranks; rank 0 writes the "
      "report (the same bytes as headlens classify)",
      "headlens-mpi"};
  app.require_subcommand(1);
  headlens_cli::classify_run classify;
  classify.writes_report = agreement.rank() == 0;
  classify.measure = [&agreement](const headlens::head_analysis& analysis) {
    try {
      inject_fault(agreement.rank());
    } catch (...) {
      agreement.agree(false);
      throw;
    }
    return headlens::mpi::measure_across_ranks(analysis, agreement);
  };
  headlens_cli::add_classify_command(app, std::move(classify));

  const auto prefix = [&] { return headlens_cli::command_prefix(app, "headlens-mpi") + ": "; };
  try {
    headlens_cli::set_invoked_command(argc, argv);
    app.parse(argc, argv);
    return 0;
  } catch (const CLI::Success& e) {  // --help: every rank parsed it, rank 0 prints it
    if (agreement.rank() == 0) return app.exit(e);
    return 0;
  } catch (const CLI::ParseError& e) {
    message = prefix() + headlens_cli::one_line(e.what()) + " (run with --help for usage)";
    return e.get_exit_code() != 0 ? 2 : 0;
  } catch (const headlens::mpi::rank_error&) {
    return 1;  // another rank failed and says why
  } catch (const std::bad_alloc&) {
    message =
        prefix() + "out of memory; expected less input at once (a shorter --window, fewer tokens, a smaller model)";
    return 1;
  } catch (const std::exception& e) {
    message = prefix() + headlens_cli::one_line(e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int status = 1;
  {
    headlens::mpi::rank_agreement agreement(MPI_COMM_WORLD);
    std::string message;
    status = run(argc, argv, agreement, message);
    // A rank that stopped before measuring (bad arguments, an unreadable file, a model that does not load) still
    // joins the agreement the others wait in. Of the ranks that failed up to it only the lowest speaks, so an
    // error every rank meets (a missing --conllu) prints once; a failure after it (rank 0 writing) is rank 0's.
    const int first_failed = agreement.agreed() ? agreement.first_failed_rank() : agreement.agree(status == 0);
    if (status == 0 && first_failed >= 0) status = 1;
    if (!message.empty() && (first_failed < 0 || first_failed == agreement.rank())) {
      std::cerr << message << "\n" << std::flush;
    }
  }
  MPI_Finalize();
  return status;
}
