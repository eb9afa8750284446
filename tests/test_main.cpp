// Catch2's main, with every test case tagged by its file ("[#test_features]", as -# does): the unit tests share
// one executable, and tests/CMakeLists.txt discovers each file's test cases by that tag.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
  Catch::Session session;
  session.configData().filenamesAsTags = true;
  if (const int rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  return session.run();
}
