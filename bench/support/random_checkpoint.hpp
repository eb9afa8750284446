#pragma once
// The tensors of a checkpoint with random weights, for benchmarks that time a whole model: what a forward costs
// depends on the shapes, not on trained values. Weights are normal(0, 0.02), as GPT-2 and Llama initialise;
// norms and biases are given constants.

#include <headlens/io/dtype.hpp>

#include <cstddef>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace headlens_bench {

class random_checkpoint {
 public:
  explicit random_checkpoint(unsigned seed) : rng_(seed) {}

  /// Adds `name` with `shape`: random normal(0, 0.02) values, or `constant` everywhere when it is given.
  void add(const std::string& name, std::vector<headlens::Index> shape) { add(name, std::move(shape), false, 0); }
  void add(const std::string& name, std::vector<headlens::Index> shape, float constant) {
    add(name, std::move(shape), true, constant);
  }

  const std::map<std::string, headlens::tensor<float>>& tensors() const { return tensors_; }

 private:
  void add(const std::string& name, std::vector<headlens::Index> shape, bool constant, float value) {
    headlens::tensor<float> x;
    std::size_t n = 1;
    for (headlens::Index s : shape) n *= std::size_t(s);
    x.shape = std::move(shape);
    x.data.resize(n);
    for (float& v : x.data) v = constant ? value : normal_(rng_);
    tensors_.emplace(name, std::move(x));
  }

  std::mt19937 rng_;
  std::normal_distribution<float> normal_{0.0f, 0.02f};
  std::map<std::string, headlens::tensor<float>> tensors_;
};

}  // namespace headlens_bench
