// multi_head_attention against PyTorch: fixtures written by tools/make_attention_fixtures.py from
// torch.nn.MultiheadAttention (self, cross, causal, padded) and from a plain-torch Llama-style reference (GQA,
// rotary), in float32 and float64. Each case checks the output and every head's pattern (through a `pattern` hook):
// float against torch within 1e-5 of the output scale, double within 1e-10 of torch's float64 run and within 1e-12
// of the long-double reference in tests/support. No Python is needed here; see tests/data/pytorch/README.md.

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include <headlens/io/npy.hpp>
#include <headlens/io/safetensors.hpp>
#include <headlens/kernels/multi_head_attention.hpp>

#include "support/reference_attention.hpp"

namespace test_pytorch {

using namespace headlens;
using idx = headlens::Index;  // plain `index` also names a function of <strings.h>

namespace {

std::string fixture(const std::string& name, const std::string& file) {
  return std::string(HEADLENS_TEST_DATA_DIR) + "/pytorch/" + name + "/" + file;
}

/// "x" -> "x.npy" for float, "x_f64.npy" for double: the fixture of torch's run in the same precision.
template <class Scalar>
std::string variant(const std::string& stem) {
  return stem + (std::is_same<Scalar, double>::value ? "_f64.npy" : ".npy");
}

/// An .npy fixture as doubles (float32 widens exactly), with its shape checked.
tensor<double> load(const std::string& path, const std::vector<idx>& shape) {
  tensor<double> t = as_tensor<double>(read_npy(path));
  REQUIRE(t.shape == shape);
  return t;
}

/// max |actual - expected| / max(1, max |expected|).
template <class Scalar>
double scaled_error(const Scalar* actual, const std::vector<double>& expected) {
  double diff = 0, scale = 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    diff = std::max(diff, std::abs(double(actual[i]) - expected[i]));
    scale = std::max(scale, std::abs(expected[i]));
  }
  return diff / scale;
}

/// With HEADLENS_PRINT_ERRORS set in the environment, prints each measured error (for reports; off in CTest).
void report(const char* what, const char* name, bool masked, double error) {
  if (std::getenv("HEADLENS_PRINT_ERRORS") != nullptr) {
    std::printf("%-7s%-12s %-28s %.3g\n", name, masked ? " (attn_mask)" : "", what, error);
  }
}

/// Records every head's pattern into [batch x n_heads x T_q x T_k], C order, as the fixtures store them.
template <class Scalar>
struct pattern_recorder {
  static constexpr point_set points{hook_point::pattern};
  idx heads = 0, t_q = 0, t_k = 0;
  std::vector<Scalar> values;
  int calls = 0;
  pattern_recorder(idx batch, idx heads_, idx t_q_, idx t_k_)
      : heads(heads_), t_q(t_q_), t_k(t_k_), values(std::size_t(batch * heads_ * t_q_ * t_k_), Scalar(-1)) {}
  void operator()(const hook_context& ctx, matrix_view<Scalar> p) {
    REQUIRE(p.rows() == t_q);
    REQUIRE(p.cols() == t_k);
    Scalar* dst = values.data() + ((ctx.batch_row * heads + ctx.head) * t_q) * t_k;
    for (idx i = 0; i < t_q; ++i)
      for (idx j = 0; j < t_k; ++j) dst[i * t_k + j] = p(i, j);
    ++calls;
  }
};

enum class layout { pytorch_mha, llama };

/// One fixture directory and what the script built it with.
struct fixture_case {
  const char* name;
  layout weights;
  attention_config config;
  idx batch, t_q, t_k;
  bool cross = false, padded = false;
};

attention_config make_config(idx d_model, idx heads, idx kv_heads, idx head_dim, bool causal, bool bias,
                             bool rotary) {
  attention_config c;
  c.d_model = d_model;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = head_dim;
  c.causal = causal;
  c.bias = bias;
  c.rotary = rotary;
  c.rotary_base = 10000;
  return c;
}

const fixture_case cases[] = {
    {"self", layout::pytorch_mha, make_config(20, 4, 4, 5, false, true, false), 1, 7, 7},
    {"cross", layout::pytorch_mha, make_config(18, 3, 3, 6, false, true, false), 1, 5, 8, /*cross=*/true},
    {"causal", layout::pytorch_mha, make_config(16, 2, 2, 8, true, true, false), 1, 9, 9},
    {"padded", layout::pytorch_mha, make_config(20, 4, 4, 5, false, true, false), 3, 9, 9, false, /*padded=*/true},
    {"gqa", layout::llama, make_config(18, 4, 2, 5, false, true, false), 1, 7, 7},  // q/k/v biases, none on o
    {"rotary", layout::llama, make_config(24, 4, 2, 6, true, false, true), 2, 9, 9},
};

/// The fixture's input shape: [T x d] for one sequence, [B x T x d] for a batch (as the script saved it).
std::vector<idx> rows_shape(idx batch, idx t, idx width) {
  return batch == 1 ? std::vector<idx>{t, width} : std::vector<idx>{batch, t, width};
}

/// The layer's weights from the fixture's safetensors file, through the factory that matches its layout.
template <class Scalar>
attention_weights<Scalar> load_weights(const fixture_case& c) {
  const safetensors_file file(fixture(c.name, "weights.safetensors"));
  if (c.weights == layout::pytorch_mha) {
    return attention_weights<Scalar>::from_pytorch_mha(
        file.read_matrix<Scalar>("in_proj_weight"), file.read_vector<Scalar>("in_proj_bias"),
        file.read_matrix<Scalar>("out_proj.weight"), file.read_vector<Scalar>("out_proj.bias"));
  }
  const auto bias = [&](const std::string& name, idx size) -> vector<Scalar> {
    if (!c.config.bias) return {};
    return file.has(name) ? file.read_vector<Scalar>(name, size) : vector<Scalar>(vector<Scalar>::Zero(size));
  };
  const idx hd = c.config.n_heads * c.config.head_dim, kvd = c.config.kv_heads() * c.config.head_dim;
  return attention_weights<Scalar>::from_linear(
      file.read_matrix<Scalar>("q_proj.weight"), file.read_matrix<Scalar>("k_proj.weight"),
      file.read_matrix<Scalar>("v_proj.weight"), file.read_matrix<Scalar>("o_proj.weight"),
      bias("q_proj.bias", hd), bias("k_proj.bias", kvd), bias("v_proj.bias", kvd),
      bias("o_proj.bias", c.config.d_model));
}

/// The same layer for the long-double reference, built straight from the file (no headlens factory involved):
/// PyTorch's [out x in] weights transposed into the x W convention, in_proj_weight cut into q, k, v by hand.
reference::layer reference_layer(const fixture_case& c) {
  const safetensors_file file(fixture(c.name, "weights.safetensors"));
  const auto mat = [&](const std::string& name) {
    const tensor<double> t = file.read_tensor<double>(name);
    reference::mat m(t.shape[0], t.shape[1]);
    for (idx i = 0; i < m.rows(); ++i)
      for (idx j = 0; j < m.cols(); ++j) m(i, j) = t.data[std::size_t(i * m.cols() + j)];
    return m;
  };
  const auto vec = [&](const std::string& name) {
    std::vector<reference::real> v;
    if (file.has(name))
      for (double value : file.read_tensor<double>(name).data) v.push_back(value);
    return v;
  };
  reference::layer L;
  L.d_model = int(c.config.d_model);
  L.n_heads = int(c.config.n_heads);
  L.n_kv_heads = int(c.config.kv_heads());
  L.head_dim = int(c.config.head_dim);
  L.causal = c.config.causal;
  L.rotary = c.config.rotary;
  L.rotary_base = c.config.rotary_base;
  if (c.weights == layout::pytorch_mha) {
    const reference::mat in = mat("in_proj_weight");
    const std::vector<reference::real> b = vec("in_proj_bias");
    const int e = L.d_model;
    L.w_q = in.block(0, 0, e, e).transpose();
    L.w_k = in.block(e, 0, e, e).transpose();
    L.w_v = in.block(2 * e, 0, e, e).transpose();
    L.b_q.assign(b.begin(), b.begin() + e);
    L.b_k.assign(b.begin() + e, b.begin() + 2 * e);
    L.b_v.assign(b.begin() + 2 * e, b.end());
    L.w_o = mat("out_proj.weight").transpose();
    L.b_o = vec("out_proj.bias");
  } else {
    L.w_q = mat("q_proj.weight").transpose();
    L.w_k = mat("k_proj.weight").transpose();
    L.w_v = mat("v_proj.weight").transpose();
    L.w_o = mat("o_proj.weight").transpose();
    L.b_q = vec("q_proj.bias");
    L.b_k = vec("k_proj.bias");
    L.b_v = vec("v_proj.bias");
    L.b_o = vec("o_proj.bias");
  }
  return L;
}

template <class Scalar>
matrix<Scalar> rows_of(const tensor<double>& t, idx width) {
  matrix<Scalar> m(idx(t.data.size()) / width, width);
  for (idx i = 0; i < m.size(); ++i) m.data()[i] = Scalar(t.data[std::size_t(i)]);
  return m;
}

/// What the long-double reference gives for the fixture's double-precision inputs: output rows [B*T_q x d] and
/// patterns in the fixtures' C order.
struct reference_run {
  std::vector<double> out, patterns;
};

reference_run run_reference(const fixture_case& c, const tensor<double>& x, const tensor<double>& memory,
                            const bool_matrix& padding) {
  const reference::layer L = reference_layer(c);
  const idx d = c.config.d_model;
  reference_run r;
  std::vector<std::vector<double>> per_sequence_patterns;
  r.patterns.assign(std::size_t(c.batch * c.config.n_heads * c.t_q * c.t_k), 0);
  for (idx b = 0; b < c.batch; ++b) {
    reference::mat xb(c.t_q, d), source(c.t_k, d);
    for (idx i = 0; i < c.t_q; ++i)
      for (idx j = 0; j < d; ++j) xb(i, j) = x.data[std::size_t((b * c.t_q + i) * d + j)];
    if (c.cross) {
      for (idx i = 0; i < c.t_k; ++i)
        for (idx j = 0; j < d; ++j) source(i, j) = memory.data[std::size_t((b * c.t_k + i) * d + j)];
    } else {
      source = xb;
    }
    std::vector<bool> key_padding;
    if (c.padded)
      for (idx j = 0; j < c.t_k; ++j) key_padding.push_back(padding(b, j));
    const auto res = reference::attend(L, xb, source, reference::iota(c.t_q), reference::iota(c.t_k), key_padding);
    for (idx i = 0; i < c.t_q; ++i)
      for (idx j = 0; j < d; ++j) r.out.push_back(double(res.out(i, j)));
    for (idx h = 0; h < c.config.n_heads; ++h)
      for (idx i = 0; i < c.t_q; ++i)
        for (idx j = 0; j < c.t_k; ++j)
          r.patterns[std::size_t(((b * c.config.n_heads + h) * c.t_q + i) * c.t_k + j)] =
              double(res.patterns[std::size_t(h)](i, j));
  }
  return r;
}

}  // namespace

TEMPLATE_TEST_CASE("multi_head_attention reproduces PyTorch's output and per-head weights", "[pytorch]", float,
                   double) {
  using Scalar = TestType;
  const auto case_index = GENERATE(range(0, int(sizeof(cases) / sizeof(cases[0]))));
  const fixture_case& c = cases[case_index];
  // The causal fixture is also run as torch ran it: config.causal off, its triu(-inf) attn_mask added instead.
  const bool mask_instead_of_causal = std::string(c.name) == "causal" ? GENERATE(false, true) : false;
  CAPTURE(c.name, mask_instead_of_causal);
  const idx d = c.config.d_model, heads = c.config.n_heads;

  attention_config config = c.config;
  forward_options<Scalar> options;
  options.batch = c.batch;
  if (mask_instead_of_causal) {
    config.causal = false;
    const tensor<double> mask = load(fixture(c.name, "attn_mask.npy"), {c.t_q, c.t_k});
    options.attn_mask = rows_of<Scalar>(mask, c.t_k);
    CHECK(std::isinf(options.attn_mask(0, 1)));
  }
  if (c.padded) {
    const npy_array raw = read_npy(fixture(c.name, "key_padding.npy"));
    REQUIRE(raw.type == dtype::bool8);
    const tensor<bool> p = as_tensor<bool>(raw);
    REQUIRE(p.shape == std::vector<idx>{c.batch, c.t_k});
    options.key_padding.resize(c.batch, c.t_k);
    for (idx i = 0; i < options.key_padding.size(); ++i) options.key_padding.data()[i] = p.data[std::size_t(i)];
  }
  const multi_head_attention<Scalar> mha(config, load_weights<Scalar>(c));

  const tensor<double> x = load(fixture(c.name, variant<Scalar>("x")), rows_shape(c.batch, c.t_q, d));
  tensor<double> memory;
  pattern_recorder<Scalar> recorder(c.batch, heads, c.t_q, c.t_k);
  matrix<Scalar> out;
  if (c.cross) {
    memory = load(fixture(c.name, variant<Scalar>("memory")), rows_shape(c.batch, c.t_k, d));
    out = mha.forward_cross(rows_of<Scalar>(x, d), rows_of<Scalar>(memory, d), options, recorder);
  } else {
    out = mha.forward(rows_of<Scalar>(x, d), options, recorder);
  }
  REQUIRE(out.rows() == c.batch * c.t_q);
  REQUIRE(recorder.calls == c.batch * heads);

  std::vector<idx> pattern_shape{heads, c.t_q, c.t_k};
  if (c.batch > 1) pattern_shape.insert(pattern_shape.begin(), c.batch);
  const tensor<double> torch_out = load(fixture(c.name, variant<Scalar>("out")), rows_shape(c.batch, c.t_q, d));
  const tensor<double> torch_pattern = load(fixture(c.name, variant<Scalar>("pattern")), pattern_shape);
  const double out_error = scaled_error(out.data(), torch_out.data);
  const double pattern_error = scaled_error(recorder.values.data(), torch_pattern.data);

  if (std::is_same<Scalar, float>::value) {
    // torch's float64 run is the better answer; float must be as close to it as to torch's float32 run.
    const double out_error_f64 = scaled_error(out.data(), load(fixture(c.name, "out_f64.npy"), torch_out.shape).data);
    report("float out vs torch f32", c.name, mask_instead_of_causal, out_error);
    report("float pattern vs torch f32", c.name, mask_instead_of_causal, pattern_error);
    report("float out vs torch f64", c.name, mask_instead_of_causal, out_error_f64);
    CHECK(out_error <= 1e-5);
    CHECK(pattern_error <= 1e-5);
    CHECK(out_error_f64 <= 1e-5);
  } else {
    const reference_run ref = run_reference(c, x, memory, options.key_padding);
    const double out_error_ref = scaled_error(out.data(), ref.out);
    const double pattern_error_ref = scaled_error(recorder.values.data(), ref.patterns);
    // The fixture itself: torch's float64 run agrees with the long-double reference, so a failure above points at
    // headlens, not at the fixture.
    const double torch_error_ref = scaled_error(torch_out.data.data(), ref.out);
    report("double out vs torch f64", c.name, mask_instead_of_causal, out_error);
    report("double pattern vs torch f64", c.name, mask_instead_of_causal, pattern_error);
    report("double out vs reference", c.name, mask_instead_of_causal, out_error_ref);
    report("double pattern vs reference", c.name, mask_instead_of_causal, pattern_error_ref);
    report("torch f64 out vs reference", c.name, mask_instead_of_causal, torch_error_ref);
    CHECK(out_error <= 1e-10);
    CHECK(pattern_error <= 1e-10);
    CHECK(out_error_ref <= 1e-12);
    CHECK(pattern_error_ref <= 1e-12);
    CHECK(torch_error_ref <= 1e-12);
  }
}

TEST_CASE("the padded fixture puts zero weight on every padding key", "[pytorch][batch]") {
  // A check of the fixture, not of the kernel: torch's patterns put no weight on padding keys, so the padded case
  // above really tests masking (a kernel that ignored key_padding would fail it).
  const tensor<double> p = load(fixture("padded", "pattern_f64.npy"), {3, 4, 9, 9});
  const tensor<bool> padding = as_tensor<bool>(read_npy(fixture("padded", "key_padding.npy")));
  int masked = 0;
  for (idx b = 0; b < 3; ++b)
    for (idx h = 0; h < 4; ++h)
      for (idx i = 0; i < 9; ++i)
        for (idx j = 0; j < 9; ++j)
          if (padding.data[std::size_t(b * 9 + j)]) {
            CHECK(p.data[std::size_t(((b * 4 + h) * 9 + i) * 9 + j)] == 0.0);
            ++masked;
          }
  CHECK(masked == 4 * 9 * (3 + 5));
}

}  // namespace test_pytorch
