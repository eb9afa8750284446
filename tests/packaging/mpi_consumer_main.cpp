// The program the find_package consumer builds with headlens::mpi: the MPI component's headers compile and the
// program links against MPI. It is built, not run (running needs mpiexec; tests/mpi/ runs the real tool).
#include <headlens/mpi/measure_across_ranks.hpp>

#include <string>

int main(int argc, char** argv) {
  // Referenced, so its MPI calls must link; called only under mpiexec with an argument nobody passes here.
  auto* measure = &headlens::mpi::measure_across_ranks;
  if (argc > 1 && std::string(argv[1]) == "--init-mpi") {
    MPI_Init(&argc, &argv);
    MPI_Finalize();
  }
  return measure == nullptr ? 1 : 0;
}
