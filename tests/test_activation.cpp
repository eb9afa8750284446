// The vectorised activations (kernels/activation.hpp) against the textbook formulas written here with std::tanh,
// std::erf and std::exp in long double, over a range that includes large |x|, subnormals, NaN and infinities.
// Where the textbook form cancels (1 + tanh(u) and 1 + erf(x) for negative arguments, even in long double) the
// reference uses the complementary function: 2 e^(2u) / (1 + e^(2u)) and erfc(-x / sqrt 2).
//
// Tolerance: |fast - ref| <= (8 + k(x)) eps |ref| + 64 min_normal, eps the scalar's epsilon. k(x) = 4 x^2 + |x|^3 / 2
// for x < 0 and 0 otherwise: for negative x the activations are x times e^x (SiLU), e^(-x^2 / 2) (GELU) or
// e^(1.6 x + 0.07 x^3) (GELU-tanh), so the rounding of the argument alone moves the result by the condition number
// |x f'(x) / f(x)| (|x|, x^2, 0.2 |x|^3) ulps in any implementation, the reference's formula evaluated in Scalar
// included; k bounds it with room to spare. The floor covers results near the subnormal range (xsimd's float exp
// returns inf from x = 88.38 on, so silu(-88.5) is -0 where the exact value is -3e-37).

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "headlens/kernels/activation.hpp"

namespace test_activation {

namespace {

using headlens::activation_kind;

long double reference(activation_kind kind, long double x) {
  switch (kind) {
    case activation_kind::gelu_tanh: {
      const long double u = std::sqrt(2.0L / 3.14159265358979323846L) * (x + 0.044715L * x * x * x);
      if (!(u < 0)) return 0.5L * x * (1.0L + std::tanh(u));
      const long double e = std::exp(2.0L * u);
      return 0.5L * x * (2.0L * e / (1.0L + e));
    }
    case activation_kind::gelu_erf:
      return x < 0 ? 0.5L * x * std::erfc(-x / std::sqrt(2.0L)) : 0.5L * x * (1.0L + std::erf(x / std::sqrt(2.0L)));
    case activation_kind::silu:
      return x / (1.0L + std::exp(-x));
    case activation_kind::relu:
      return std::isnan(x) ? x : std::max(x, 0.0L);
  }
  return 0;
}

const char* name(activation_kind kind) {
  switch (kind) {
    case activation_kind::gelu_tanh:
      return "gelu_tanh";
    case activation_kind::gelu_erf:
      return "gelu_erf";
    case activation_kind::silu:
      return "silu";
    case activation_kind::relu:
      return "relu";
  }
  return "?";
}

template <class Scalar>
Scalar scalar_activation(activation_kind kind, Scalar x) {
  switch (kind) {
    case activation_kind::gelu_tanh:
      return headlens::gelu_tanh(x);
    case activation_kind::gelu_erf:
      return headlens::gelu_erf(x);
    case activation_kind::silu:
      return headlens::silu(x);
    case activation_kind::relu:
      return headlens::relu(x);
  }
  return 0;
}

template <class Scalar>
std::vector<Scalar> inputs() {
  using limits = std::numeric_limits<Scalar>;
  std::vector<Scalar> xs;
  for (int i = -4000; i <= 4000; ++i) xs.push_back(Scalar(i) * Scalar(0.0075));  // [-30, 30]
  for (Scalar big : {Scalar(1e-30), Scalar(1e-6), Scalar(0.5), Scalar(50), Scalar(88.5), Scalar(1e4), Scalar(1e13),
                     Scalar(1e20), limits::max(), limits::min(), limits::denorm_min(), Scalar(0)}) {
    xs.push_back(big);
    xs.push_back(-big);
  }
  xs.push_back(limits::quiet_NaN());
  xs.push_back(limits::infinity());
  xs.push_back(-limits::infinity());
  xs.push_back(Scalar(1.25));  // an odd count, so the last elements run through the scalar tail
  return xs;
}

template <class Scalar>
void check_close(activation_kind kind, Scalar x, Scalar fast) {
  using limits = std::numeric_limits<Scalar>;
  const long double ref = reference(kind, static_cast<long double>(x));
  INFO(name(kind) << "(" << x << ") = " << fast << ", reference " << static_cast<double>(ref));
  if (std::isnan(ref)) {
    CHECK(std::isnan(fast));
  } else if (std::isinf(ref)) {
    CHECK(fast == static_cast<Scalar>(ref));
  } else {
    const long double ax = std::fabs(static_cast<long double>(x));
    const long double k = x < 0 ? 4.0L * ax * ax + 0.5L * ax * ax * ax : 0.0L;
    const long double relative = ref == 0 ? 0.0L : (8.0L + k) * limits::epsilon() * std::fabs(ref);
    const long double tol = relative + 64.0L * limits::min();
    CHECK(std::fabs(static_cast<long double>(fast) - ref) <= tol);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("activations: SIMD body and scalar tail equal the textbook formulas", "[activation]", float,
                   double) {
  const activation_kind kind =
      GENERATE(activation_kind::gelu_tanh, activation_kind::gelu_erf, activation_kind::silu, activation_kind::relu);
  const std::vector<TestType> xs = inputs<TestType>();
  std::vector<TestType> ys = xs;
  headlens::apply_activation(kind, ys.data(), headlens::Index(ys.size()));
  for (std::size_t i = 0; i < xs.size(); ++i) check_close(kind, xs[i], ys[i]);
  for (TestType x : xs) check_close(kind, x, scalar_activation(kind, x));
}

TEMPLATE_TEST_CASE("activations: the edges are the documented values", "[activation]", float, double) {
  using limits = std::numeric_limits<TestType>;
  const TestType inf = limits::infinity(), nan = limits::quiet_NaN();
  for (activation_kind kind :
       {activation_kind::gelu_tanh, activation_kind::gelu_erf, activation_kind::silu, activation_kind::relu}) {
    INFO(name(kind));
    // Through the SIMD body (a full batch of each value) and the scalar tail (one more).
    for (TestType x : {nan, inf, -inf, -limits::max(), TestType(-1e4)}) {
      std::vector<TestType> ys(xsimd::batch<TestType>::size + 1, x);
      headlens::apply_activation(kind, ys.data(), headlens::Index(ys.size()));
      for (TestType y : ys) {
        INFO("x = " << x << ", y = " << y);
        if (std::isnan(x)) {
          CHECK(std::isnan(y));
        } else if (x == inf) {
          CHECK(y == inf);
        } else if (x == -inf) {
          CHECK((kind == activation_kind::relu ? y == 0 : std::isnan(y)));
        } else {
          CHECK(y == 0);  // large negative: 0 or -0, never NaN
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("activations: the gated form multiplies by act(gate)", "[activation]", float, double) {
  const activation_kind kind = GENERATE(activation_kind::silu, activation_kind::gelu_tanh);
  std::vector<TestType> gate, up;
  for (int i = 0; i < 37; ++i) {
    gate.push_back(TestType(i - 18) * TestType(0.37));
    up.push_back(TestType(1.5) - TestType(i) * TestType(0.11));
  }
  std::vector<TestType> x = up;
  headlens::apply_gated_activation(kind, gate.data(), x.data(), headlens::Index(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const long double ref = reference(kind, gate[i]) * static_cast<long double>(up[i]);
    INFO("gate " << gate[i] << " up " << up[i]);
    CHECK(std::fabs(static_cast<long double>(x[i]) - ref) <=
          200 * std::numeric_limits<TestType>::epsilon() * (std::fabs(ref) + 1e-30L));
  }
}

}  // namespace test_activation
