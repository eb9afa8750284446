#pragma once
// What every harness in tests/fuzz/ checks its invariants with: a broken invariant aborts, which libFuzzer and the
// corpus replay (replay_main.hpp) both report as a finding, with the harness named by the run.

#include <cstdio>
#include <cstdlib>

namespace headlens_fuzz {

/// Aborts with `what` on stderr unless `condition` holds.
inline void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace headlens_fuzz

using headlens_fuzz::require;
