// The program both packaging consumers build: it must compile and run against headlens however it was obtained.
#include <headlens/headlens.hpp>
#include <strings.h>  // POSIX index(): a user's `using namespace headlens;` must not make `Index` ambiguous

#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>

// What a user's first program writes.
using namespace headlens;
using namespace Eigen;

int main() {
  const Index tokens = 3;  // headlens::Index is Eigen::Index: one type, whichever namespace names it
  static_assert(std::is_same<headlens::Index, Eigen::Index>::value, "headlens::Index is Eigen's");
  // The error hierarchy: a shape_error is caught as a headlens::error, with the message format of the library.
  try {
    headlens::detail::fail<headlens::shape_error>("x.cols() is ", 700, ", expected d_model = ", 768);
    return 1;
  } catch (const headlens::error& e) {
    if (std::string(e.what()) != "headlens: x.cols() is 700, expected d_model = 768") {
      std::fprintf(stderr, "unexpected message: %s\n", e.what());
      return 1;
    }
  }

  // A tiny attention whose answer is known without headlens: with W_q = W_k = 0 every score is 0, so each query
  // attends uniformly to all keys; with W_v = W_o = I (and no biases) each output row is the mean of the rows of x.
  headlens::attention_config config;
  config.d_model = 4;
  config.n_heads = 2;
  config.bias = false;
  headlens::attention_weights<double> w;
  w.w_q = w.w_k = headlens::matrix<double>::Zero(4, 4);
  w.w_v = w.w_o = headlens::matrix<double>::Identity(4, 4);
  const headlens::multi_head_attention<double> layer(config, w);

  headlens::matrix<double> x(tokens, 4);
  x << 1, 2, 3, 4,  //
      5, 6, 7, 8,   //
      -3, 1, 0, 2;
  const headlens::matrix<double> out = layer.forward(x);
  const Eigen::RowVectorXd mean = x.colwise().mean();
  for (Eigen::Index i = 0; i < out.rows(); ++i) {
    if ((out.row(i) - mean).cwiseAbs().maxCoeff() > 1e-12) {
      std::fprintf(stderr, "attention row %d differs from the mean of x\n", static_cast<int>(i));
      return 1;
    }
  }

  // Bad input is reported with the typed exception, never a crash.
  try {
    (void)layer.forward(headlens::matrix<double>::Zero(3, 5));
    std::fprintf(stderr, "a [3 x 5] input to a d_model = 4 layer was accepted\n");
    return 1;
  } catch (const headlens::shape_error&) {
  }
  std::puts("headlens consumer: ok");
  return 0;
}
