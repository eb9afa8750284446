#pragma once
// Helpers for tests/test_gpt2.cpp and test_llama.cpp: the golden files of tests/data/models/<family>/ (written by
// tools/make_model_fixtures.py), a hook that records every head's pattern, and rewriting a checkpoint with a change
// (renamed, dropped, reshaped or re-typed tensors) in memory to provoke each loader error.

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "headlens/hooks/hook_registry.hpp"
#include "headlens/io/npy.hpp"
#include "headlens/io/safetensors.hpp"

namespace model_fixtures {

/// One golden sequence: ids, logits [T x vocab] and attention [layers x heads x T x T] (float32 on disk, computed
/// in float64 by the reference).
template <class Scalar>
struct golden {
  std::vector<std::int32_t> ids;
  headlens::matrix<Scalar> logits;
  headlens::tensor<Scalar> attention;
};

/// Tolerances of a model run against the goldens: float64 reference results stored as float32.
template <class Scalar>
double logits_tolerance() {
  return std::is_same<Scalar, float>::value ? 1e-4 : 1e-5;
}
template <class Scalar>
double attention_tolerance() {
  return std::is_same<Scalar, float>::value ? 1e-4 : 1e-6;
}

template <class Scalar>
golden<Scalar> read_golden(const std::string& dir, int k) {
  const std::string stem = dir + "/seq_" + std::to_string(k) + "_";
  golden<Scalar> g;
  g.ids = headlens::as_tensor<std::int32_t>(headlens::read_npy(stem + "ids.npy")).data;
  g.logits = headlens::read_npy_matrix<Scalar>(stem + "logits.npy");
  g.attention = headlens::as_tensor<Scalar>(headlens::read_npy(stem + "attention.npy"));
  return g;
}

/// Records the `pattern` of every head of every layer into [layers x heads x T x T].
template <class Scalar>
struct pattern_recorder {
  headlens::hook_registry<Scalar> registry;
  headlens::tensor<Scalar> maps;
  int calls = 0;

  pattern_recorder(headlens::Index layers, headlens::Index heads, headlens::Index t) {
    maps.shape = {layers, heads, t, t};
    maps.data.assign(std::size_t(layers * heads * t * t), Scalar(-1));
    registry.add({-1, -1, {headlens::hook_point::pattern}},
                 [this, heads, t](const headlens::hook_context& ctx, headlens::matrix_view<Scalar> view) {
                   ++calls;
                   Scalar* out = maps.data.data() + (ctx.layer * heads + ctx.head) * t * t;
                   for (headlens::Index i = 0; i < t; ++i)
                     for (headlens::Index j = 0; j < t; ++j) out[i * t + j] = view(i, j);
                 });
  }
};

template <class Scalar>
double max_abs_diff(const std::vector<Scalar>& a, const std::vector<Scalar>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

template <class Scalar>
double max_abs_diff(const headlens::matrix<Scalar>& a, const headlens::matrix<Scalar>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return INFINITY;
  return (a.template cast<double>() - b.template cast<double>()).cwiseAbs().maxCoeff();
}

/// What to do with one tensor when rewriting a checkpoint: write `values` under `name` as `stored`, or skip it.
struct rewrite_entry {
  std::string name;
  headlens::tensor<float> values;
  headlens::dtype stored = headlens::dtype::float32;
  bool keep = true;
};

/// A copy of `file` in memory after `edit` has seen every tensor (as float), named `name` in messages.
inline headlens::safetensors_file rewrite(const headlens::safetensors_file& file,
                                          const std::function<void(rewrite_entry&)>& edit,
                                          const std::string& name = "edited.safetensors") {
  headlens::safetensors_writer writer;
  for (const std::string& key : file.names()) {
    rewrite_entry e{key, file.read_tensor<float>(key)};
    edit(e);
    if (!e.keep) continue;
    if (e.stored == headlens::dtype::int32) {
      std::vector<std::int32_t> ints(e.values.data.begin(), e.values.data.end());
      writer.add(e.name, ints.data(), e.values.shape);
    } else {
      writer.add(e.name, e.values.data.data(), e.values.shape, e.stored);
    }
  }
  return headlens::safetensors_file::from_memory(writer.bytes(), name);
}

}  // namespace model_fixtures
