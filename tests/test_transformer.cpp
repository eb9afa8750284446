// The transformer block on the threaded kernels (models/transformer.hpp): the MLPs, the norms and the LM head
// against straightforward double-precision references written here, and whole forwards bit-identical whatever the
// thread count. Shapes cross the kernels' block edges: T = 300 rows (the product cut is 256 rows; 300 is not a
// multiple of the SIMD width), an odd vocabulary (Eigen's product for an untied head, the transposed kernel for a
// tied one).

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "headlens/models/transformer.hpp"

namespace test_transformer {

namespace {

using headlens::Index;
template <class S>
using matrix = headlens::matrix<S>;
template <class S>
using vector = headlens::vector<S>;

template <class S>
matrix<S> random_matrix(Index rows, Index cols, unsigned seed, double spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, spread);
  matrix<S> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = S(normal(rng));
  return m;
}
template <class S>
vector<S> random_vector(Index n, unsigned seed, double spread) {
  return random_matrix<S>(n, 1, seed, spread);
}

double gelu_tanh_ref(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / 3.141592653589793) * (x + 0.044715 * x * x * x)));
}
double silu_ref(double x) { return x / (1.0 + std::exp(-x)); }

template <class S>
headlens::mlp<S> make_mlp(headlens::mlp_kind kind, Index d, Index ff, unsigned seed) {
  headlens::mlp<S> m;
  m.kind = kind;
  m.activation =
      kind == headlens::mlp_kind::gated ? headlens::activation_kind::silu : headlens::activation_kind::gelu_tanh;
  m.w_in = random_matrix<S>(d, ff, seed, 1.0 / std::sqrt(double(d)));
  m.w_out = random_matrix<S>(ff, d, seed + 1, 1.0 / std::sqrt(double(ff)));
  m.b_in = random_vector<S>(ff, seed + 2, 0.1);
  m.b_out = random_vector<S>(d, seed + 3, 0.1);
  if (kind == headlens::mlp_kind::gated) {
    m.w_gate = random_matrix<S>(d, ff, seed + 4, 1.0 / std::sqrt(double(d)));
    m.b_gate = random_vector<S>(ff, seed + 5, 0.1);
  }
  return m;
}

// The MLP's published maths in double, one element at a time.
template <class S>
matrix<double> mlp_reference(const headlens::mlp<S>& m, const matrix<S>& x) {
  const matrix<double> xd = x.template cast<double>();
  matrix<double> hidden = xd * m.w_in.template cast<double>();
  hidden.rowwise() += m.b_in.template cast<double>().transpose();
  if (m.kind == headlens::mlp_kind::gated) {
    matrix<double> gate = xd * m.w_gate.template cast<double>();
    gate.rowwise() += m.b_gate.template cast<double>().transpose();
    for (Index i = 0; i < hidden.size(); ++i) hidden.data()[i] *= silu_ref(gate.data()[i]);
  } else {
    for (Index i = 0; i < hidden.size(); ++i) hidden.data()[i] = gelu_tanh_ref(hidden.data()[i]);
  }
  matrix<double> out = hidden * m.w_out.template cast<double>();
  out.rowwise() += m.b_out.template cast<double>().transpose();
  return out;
}

template <class S>
double max_abs_diff(const matrix<S>& a, const matrix<double>& b) {
  return (a.template cast<double>() - b).cwiseAbs().maxCoeff();
}

template <class S>
headlens::transformer<S> make_model(bool llama_like, Index vocab, bool tied, bool causal = false) {
  const Index d = 64, ff = 176, max_t = 320;  // ff: 11 SIMD batches, not a multiple of the 64-column tile
  headlens::transformer_weights<S> w;
  w.token_embedding = random_matrix<S>(vocab, d, 11, 0.5);
  if (!llama_like) w.position_embedding = random_matrix<S>(max_t, d, 12, 0.1);
  for (int l = 0; l < 2; ++l) {
    headlens::block_weights<S> b;
    const unsigned s = 100 + 20 * unsigned(l);
    b.attention.d_model = d;
    b.attention.n_heads = 4;
    b.attention.causal = causal;
    b.attention.bias = !llama_like;
    if (llama_like) {
      b.attention.n_kv_heads = 2;
      b.attention.rotary = true;
      b.attention_norm = headlens::normalization<S>::rms(random_vector<S>(d, s, 0.2).array() + S(1), 1e-6);
      b.mlp_norm = headlens::normalization<S>::rms(random_vector<S>(d, s + 1, 0.2).array() + S(1), 1e-6);
    } else {
      b.attention_norm = headlens::normalization<S>::layer(random_vector<S>(d, s, 0.2).array() + S(1),
                                                           random_vector<S>(d, s + 1, 0.1), 1e-5);
      b.mlp_norm = headlens::normalization<S>::layer(random_vector<S>(d, s + 2, 0.2).array() + S(1),
                                                     random_vector<S>(d, s + 3, 0.1), 1e-5);
    }
    const Index kv = b.attention.kv_heads() * b.attention.head_size();
    b.attention_projections.w_q = random_matrix<S>(d, d, s + 4, 0.125);
    b.attention_projections.w_k = random_matrix<S>(d, kv, s + 5, 0.125);
    b.attention_projections.w_v = random_matrix<S>(d, kv, s + 6, 0.125);
    b.attention_projections.w_o = random_matrix<S>(d, d, s + 7, 0.125);
    if (!llama_like) {
      b.attention_projections.b_q = random_vector<S>(d, s + 9, 0.1);
      b.attention_projections.b_k = random_vector<S>(kv, s + 10, 0.1);
      b.attention_projections.b_v = random_vector<S>(kv, s + 11, 0.1);
      b.attention_projections.b_o = random_vector<S>(d, s + 12, 0.1);
    }
    b.feed_forward = make_mlp<S>(llama_like ? headlens::mlp_kind::gated : headlens::mlp_kind::plain, d, ff, s + 8);
    w.blocks.push_back(std::move(b));
  }
  w.final_norm = headlens::normalization<S>::layer(random_vector<S>(d, 13, 0.2).array() + S(1),
                                                   random_vector<S>(d, 14, 0.1), 1e-5);
  if (!tied) {
    w.lm_head = random_matrix<S>(d, vocab, 15, 0.125);
    w.lm_head_bias = random_vector<S>(vocab, 16, 0.1);
  }
  return headlens::transformer<S>(std::move(w));
}

std::vector<std::int32_t> ids(Index t, Index vocab) {
  std::vector<std::int32_t> out;
  for (Index i = 0; i < t; ++i) out.push_back(std::int32_t((i * 37 + 5) % vocab));
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("mlp: the GELU MLP and SwiGLU equal the published maths", "[transformer]", float, double) {
  const auto kind = GENERATE(headlens::mlp_kind::plain, headlens::mlp_kind::gated);
  const headlens::Index t = GENERATE(1, 7, 300);
  const headlens::Index d = 48, ff = 208;  // 208 = 3 tiles of 64 columns + one of 16
  const auto m = make_mlp<TestType>(kind, d, ff, 7);
  const matrix<TestType> x = random_matrix<TestType>(t, d, 9, 1.0);
  const matrix<double> ref = mlp_reference(m, x);
  // Float: sums of 48 and 208 products of O(1) terms; 1e-5 is ~100 ulps of the largest outputs.
  const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-12;
  CHECK(max_abs_diff<TestType>(m(x, 1), ref) < tol);
  CHECK(max_abs_diff<TestType>(m(x, 2), ref) < tol);
  matrix<TestType> residual = random_matrix<TestType>(t, d, 10, 1.0);
  const matrix<double> expected = residual.template cast<double>() + ref;
  m.add_to(x, residual, 2);
  CHECK(max_abs_diff<TestType>(residual, expected) < tol);
}

TEMPLATE_TEST_CASE("mlp and norms: bad shapes are shape errors that name the argument", "[transformer]", float,
                   double) {
  const auto m = make_mlp<TestType>(headlens::mlp_kind::plain, 16, 32, 1);
  const matrix<TestType> x = matrix<TestType>::Zero(3, 17);
  REQUIRE_THROWS_AS(m(x), headlens::shape_error);
  REQUIRE_THROWS_WITH(m(x), Catch::Matchers::Contains("x.cols() is 17, expected the MLP's input width 16"));
  matrix<TestType> residual = matrix<TestType>::Zero(4, 16);
  REQUIRE_THROWS_WITH(m.add_to(matrix<TestType>::Zero(3, 16), residual),
                      Catch::Matchers::Contains("residual is [4 x 16], expected [3 x 16]"));
  const auto norm = headlens::normalization<TestType>::rms(vector<TestType>::Ones(16), 1e-6);
  REQUIRE_THROWS_WITH(norm(x), Catch::Matchers::Contains("x.cols() is 17, expected the norm's width 16"));
}

TEMPLATE_TEST_CASE("transformer: the LM head equals hidden W (+ b), tied or not", "[transformer]", float, double) {
  const bool tied = GENERATE(true, false);
  const headlens::Index vocab = GENERATE(83, 96);
  const auto model = make_model<TestType>(false, vocab, tied);
  const headlens::Index t = GENERATE(5, 300);
  const matrix<TestType> hidden = random_matrix<TestType>(t, model.d_model(), 21, 1.0);
  matrix<double> ref = hidden.template cast<double>() * model.token_embedding().template cast<double>().transpose();
  if (!tied) {
    // Rebuild what the model holds from the same seeds.
    ref = hidden.template cast<double>() * random_matrix<double>(model.d_model(), vocab, 15, 0.125);
    ref.rowwise() += random_vector<double>(vocab, 16, 0.1).transpose();
  }
  const double tol = std::is_same<TestType, float>::value ? 2e-5 : 1e-12;
  CHECK(max_abs_diff<TestType>(model.logits(hidden, 1), ref) < tol);
  CHECK(max_abs_diff<TestType>(model.logits(hidden, 2), ref) < tol);
}

TEMPLATE_TEST_CASE("transformer: forwards are bit-identical on 1, 2 and 3 threads", "[transformer]", float, double) {
  const bool llama_like = GENERATE(false, true);
  const bool tied = GENERATE(true, false);
  const headlens::Index vocab = GENERATE(83, 96);
  const auto model = make_model<TestType>(llama_like, vocab, tied);
  const auto tokens = ids(300, vocab);
  headlens::forward_options<TestType> options;
  options.threads = 1;
  const matrix<TestType> one = model.forward(tokens, options);
  REQUIRE(one.allFinite());
  for (headlens::Index threads : {2, 3}) {
    options.threads = threads;
    const matrix<TestType> many = model.forward(tokens, options);
    CHECK((many.array() == one.array()).all());
  }
  // Decoding in steps on 2 threads gives the one-thread forward's rows (same kernels, rows cut differently).
  headlens::transformer_cache<TestType> cache;
  options.threads = 2;
  const auto first =
      model.forward_step(std::vector<std::int32_t>(tokens.begin(), tokens.begin() + 200), cache, options);
  const auto rest = model.forward_step(std::vector<std::int32_t>(tokens.begin() + 200, tokens.end()), cache, options);
  const double tol = std::is_same<TestType, float>::value ? 1e-4 : 1e-10;
  CHECK((first.template cast<double>() - one.topRows(200).template cast<double>()).cwiseAbs().maxCoeff() < tol);
  CHECK((rest.template cast<double>() - one.bottomRows(100).template cast<double>()).cwiseAbs().maxCoeff() < tol);
}

TEMPLATE_TEST_CASE("transformer: a padded batch gives each sequence the hidden states it has alone", "[transformer]",
                   float, double) {
  const bool llama_like = GENERATE(false, true);
  const bool causal = GENERATE(false, true);
  INFO("llama-like " << llama_like << " causal " << causal);
  const headlens::Index vocab = 83;
  const auto model = make_model<TestType>(llama_like, vocab, true, causal);
  std::vector<std::vector<std::int32_t>> batch{ids(37, vocab), ids(70, vocab), ids(1, vocab), ids(70, vocab)};
  for (auto& id : batch[1]) id = (id + 11) % std::int32_t(vocab);
  batch[3][69] = 4;  // equal lengths but not equal sequences
  headlens::forward_options<TestType> options;
  options.threads = 2;
  const matrix<TestType> h = model.hidden_states_batch(batch, options);
  REQUIRE(h.rows() == 4 * 70);
  REQUIRE(h.cols() == model.d_model());
  const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-12;
  for (std::size_t b = 0; b < batch.size(); ++b) {
    INFO("sequence " << b);
    const matrix<TestType> alone = model.hidden_states(batch[b], options);
    const auto mine = h.middleRows(headlens::Index(b) * 70, alone.rows());
    CHECK((mine.template cast<double>() - alone.template cast<double>()).cwiseAbs().maxCoeff() < tol);
  }
  // The batch is bit-identical on any number of threads.
  options.threads = 1;
  CHECK((model.hidden_states_batch(batch, options).array() == h.array()).all());

  CHECK_THROWS_WITH(model.hidden_states_batch({}), Catch::Matchers::Contains("batch is empty"));
  CHECK_THROWS_WITH(model.hidden_states_batch({ids(3, vocab), {1, 83}}),
                    Catch::Matchers::Contains("batch[1]: token id 83 at position 1 is out of range"));
  CHECK_THROWS_WITH(model.hidden_states_batch({ids(3, vocab), {}}),
                    Catch::Matchers::Contains("batch[1]: ids is empty"));
  if (!llama_like) {
    CHECK_THROWS_WITH(model.hidden_states_batch({ids(3, vocab), ids(321, vocab)}),
                      Catch::Matchers::Contains("batch[1]: ids has 321 tokens, expected at most max_positions = 320"));
  }
  options.key_padding = headlens::bool_matrix::Constant(2, 3, false);
  CHECK_THROWS_WITH(model.hidden_states_batch({ids(3, vocab), ids(3, vocab)}, options),
                    Catch::Matchers::Contains("options.key_padding is set, expected it empty"));
}

}  // namespace test_transformer
