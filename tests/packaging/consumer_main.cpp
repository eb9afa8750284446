// The program both packaging consumers build: it must compile and run against headlens however it was obtained.
#include <headlens/headlens.hpp>

#include <cstdio>
#include <string>

int main() {
  // A public type from the umbrella header, used through the exception hierarchy.
  try {
    headlens::detail::fail<headlens::shape_error>("x.cols() is ", 700, ", expected d_model = ", 768);
  } catch (const headlens::error& e) {
    if (std::string(e.what()) != "headlens: x.cols() is 700, expected d_model = 768") {
      std::fprintf(stderr, "unexpected message: %s\n", e.what());
      return 1;
    }
  }
  headlens::matrix<float> x = headlens::matrix<float>::Ones(2, 3);
  if (x.sum() != 6.0f) return 1;
  std::puts("headlens consumer: ok");
  return 0;
}
