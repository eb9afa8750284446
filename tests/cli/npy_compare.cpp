// npy_compare GOT.npy WANT.npy TOLERANCE [--any-dtype]
//
// Exit 0 when GOT has WANT's shape (and dtype, unless --any-dtype) and max |got - want| / max(1, max |want|) is at
// most TOLERANCE; otherwise print why on stderr and exit 1. Used by the `headlens attention` CLI tests, so that no
// Python is needed at test time.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <headlens/io/npy.hpp>

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 5 && std::string(argv[4]) == "--any-dtype")) {
    std::fprintf(stderr, "usage: npy_compare GOT.npy WANT.npy TOLERANCE [--any-dtype]\n");
    return 2;
  }
  try {
    const headlens::npy_array got = headlens::read_npy(argv[1]), want = headlens::read_npy(argv[2]);
    const double tolerance = std::strtod(argv[3], nullptr);
    if (got.shape != want.shape) {
      std::fprintf(stderr, "npy_compare: %s has shape %s, expected %s (from %s)\n", argv[1],
                   headlens::detail::shape_string(got.shape).c_str(), headlens::detail::shape_string(want.shape).c_str(),
                   argv[2]);
      return 1;
    }
    if (argc == 4 && got.type != want.type) {
      std::fprintf(stderr, "npy_compare: %s has dtype %s, expected %s (from %s)\n", argv[1],
                   headlens::dtype_name(got.type), headlens::dtype_name(want.type), argv[2]);
      return 1;
    }
    const auto a = headlens::as_tensor<double>(got), b = headlens::as_tensor<double>(want);
    double diff = 0, scale = 1;
    for (std::size_t i = 0; i < b.data.size(); ++i) {
      const double d = std::abs(a.data[i] - b.data[i]);
      diff = std::isnan(d) ? INFINITY : std::max(diff, d);
      scale = std::max(scale, std::abs(b.data[i]));
    }
    const double error = diff / scale;
    std::printf("npy_compare: %s vs %s: max |diff| / max(1, max |want|) = %.3g (tolerance %.3g)\n", argv[1], argv[2],
                error, tolerance);
    if (!(error <= tolerance)) {
      std::fprintf(stderr, "npy_compare: %s differs from %s by %.3g of the scale, above %.3g\n", argv[1], argv[2], error,
                   tolerance);
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "npy_compare: %s\n", e.what());
    return 1;
  }
}
