// Head matching across models (analysis/head_matching.hpp, analysis/optimal_assignment.hpp): the Hungarian
// assignment against brute force over every injective assignment, the row similarity against the entropy form of
// the Jensen-Shannon divergence, a model against a copy of itself with heads permuted within layers (and noise),
// and bad input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "headlens/analysis/head_matching.hpp"
#include "headlens/analysis/optimal_assignment.hpp"
#include "headlens/analysis/text_document.hpp"
#include "headlens/models/attention_model.hpp"

namespace test_head_matching {

namespace {

using Catch::Matchers::Contains;
using headlens::Index;
using headlens::matrix;

const std::string models_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models";
const std::string gpt2_dir = models_dir + "/gpt2";

/// The best total over every injective map of the shorter side into the longer one (brute force).
double brute_force_best(const matrix<double>& m, bool maximise) {
  const bool wide = m.rows() <= m.cols();
  const Index n = wide ? m.rows() : m.cols(), k = wide ? m.cols() : m.rows();
  std::vector<Index> perm(static_cast<std::size_t>(k));
  std::iota(perm.begin(), perm.end(), 0);
  double best = maximise ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  do {
    double total = 0;
    for (Index i = 0; i < n; ++i) total += wide ? m(i, perm[std::size_t(i)]) : m(perm[std::size_t(i)], i);
    best = maximise ? std::max(best, total) : std::min(best, total);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

/// Checks `col` is a valid assignment of `m` (distinct columns, min(rows, cols) pairs) and returns its total.
double checked_total(const matrix<double>& m, const std::vector<Index>& col) {
  REQUIRE(Index(col.size()) == m.rows());
  std::vector<char> used(std::size_t(m.cols()), 0);
  double total = 0;
  Index pairs = 0;
  for (Index r = 0; r < m.rows(); ++r) {
    const Index c = col[std::size_t(r)];
    if (c < 0) continue;
    REQUIRE(c < m.cols());
    REQUIRE(used[std::size_t(c)] == 0);
    used[std::size_t(c)] = 1;
    total += m(r, c);
    ++pairs;
  }
  REQUIRE(pairs == std::min(m.rows(), m.cols()));
  return total;
}

/// 1 - JSD in bits through entropies, JSD = H((p+q)/2) - (H(p) + H(q))/2: a formula independent of the code's.
double entropy_similarity(std::vector<double> p, std::vector<double> q) {
  const auto norm = [](std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    for (double& x : v) x /= s;
  };
  norm(p);
  norm(q);
  const auto H = [](const std::vector<double>& v) {
    double h = 0;
    for (double x : v) h -= x > 0 ? x * std::log(x) / std::log(2.0) : 0.0;
    return h;
  };
  std::vector<double> m(p.size());
  for (std::size_t k = 0; k < p.size(); ++k) m[k] = 0.5 * (p[k] + q[k]);
  return 1.0 - (H(m) - 0.5 * (H(p) + H(q)));
}

headlens::tensor<float> maps_of(Index layers, Index heads, Index W, const std::vector<float>& values) {
  headlens::tensor<float> t;
  t.shape = {layers, heads, W, W};
  t.data = values;
  return t;
}

// A small random GPT-2-shaped transformer (LayerNorms of ones, random projections) over the GPT-2 fixture's
// vocabulary, so that its heads attend in distinct ways.
headlens::transformer_weights<float> random_weights(Index vocab, std::mt19937& rng) {
  const Index d = 16, H = 4, ff = 32, layers = 2, positions = 64;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const auto random = [&](Index r, Index c, float scale) {
    matrix<float> m(r, c);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = scale * normal(rng);
    return m;
  };
  const auto rand_vec = [&](Index n, float scale) {
    headlens::vector<float> v(n);
    for (Index i = 0; i < n; ++i) v[i] = scale * normal(rng);
    return v;
  };
  const auto layer_norm = [&] {
    return headlens::normalization<float>::layer(headlens::vector<float>::Ones(d), headlens::vector<float>::Zero(d),
                                                 1e-5);
  };
  headlens::transformer_weights<float> w;
  w.token_embedding = random(vocab, d, 1.0f);
  w.position_embedding = random(positions, d, 1.0f);
  for (Index l = 0; l < layers; ++l) {
    headlens::block_weights<float> b;
    b.attention_norm = layer_norm();
    b.attention.d_model = d;
    b.attention.n_heads = H;
    b.attention.causal = true;
    b.attention.bias = true;
    headlens::attention_weights<float>& a = b.attention_projections;
    a.w_q = random(d, d, 0.8f);
    a.w_k = random(d, d, 0.8f);
    a.w_v = random(d, d, 0.3f);
    a.w_o = random(d, d, 0.3f);
    a.b_q = rand_vec(d, 0.1f);
    a.b_k = rand_vec(d, 0.1f);
    a.b_v = rand_vec(d, 0.1f);
    a.b_o = rand_vec(d, 0.1f);
    b.mlp_norm = layer_norm();
    b.feed_forward.w_in = random(d, ff, 0.3f);
    b.feed_forward.b_in = rand_vec(ff, 0.1f);
    b.feed_forward.w_out = random(ff, d, 0.3f);
    b.feed_forward.b_out = rand_vec(d, 0.1f);
    w.blocks.push_back(std::move(b));
  }
  w.final_norm = layer_norm();
  return w;
}

/// New head k of layer l is old head perm[l][k]: the per-head column blocks of W_q, W_k, W_v (and their biases)
/// and the row blocks of W_o move together, so the layer's output is unchanged.
headlens::transformer_weights<float> permuted(headlens::transformer_weights<float> w,
                                              const std::vector<std::vector<Index>>& perm) {
  for (std::size_t l = 0; l < w.blocks.size(); ++l) {
    headlens::attention_weights<float>& a = w.blocks[l].attention_projections;
    const headlens::attention_weights<float> old = a;
    const Index H = w.blocks[l].attention.n_heads, hd = a.w_q.cols() / H;
    for (Index k = 0; k < H; ++k) {
      const Index from = perm[l][std::size_t(k)];
      a.w_q.middleCols(k * hd, hd) = old.w_q.middleCols(from * hd, hd);
      a.w_k.middleCols(k * hd, hd) = old.w_k.middleCols(from * hd, hd);
      a.w_v.middleCols(k * hd, hd) = old.w_v.middleCols(from * hd, hd);
      a.b_q.segment(k * hd, hd) = old.b_q.segment(from * hd, hd);
      a.b_k.segment(k * hd, hd) = old.b_k.segment(from * hd, hd);
      a.b_v.segment(k * hd, hd) = old.b_v.segment(from * hd, hd);
      a.w_o.middleRows(k * hd, hd) = old.w_o.middleRows(from * hd, hd);
    }
  }
  return w;
}

void add_noise(headlens::transformer_weights<float>& w, float scale, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, scale);
  for (auto& b : w.blocks) {
    for (matrix<float>* m : {&b.attention_projections.w_q, &b.attention_projections.w_k,
                             &b.attention_projections.w_v, &b.attention_projections.w_o}) {
      for (Index i = 0; i < m->size(); ++i) m->data()[i] += normal(rng);
    }
  }
}

std::unique_ptr<headlens::attention_model> as_model(headlens::transformer_weights<float> w) {
  return std::make_unique<headlens::detail::transformer_attention_model>(
      headlens::model_family::gpt2, headlens::transformer<float>(std::move(w)), headlens::load_tokenizer(gpt2_dir),
      std::nullopt, 64);
}

const char* const sample_text =
    "The cat sat on the mat. A dog barked at the mailman yesterday. She gave him the book that he wanted. "
    "Rain fell all night over the quiet town. The children played in the park after school. "
    "We will meet at noon near the old bridge.";

}  // namespace

TEST_CASE("optimal_assignment: Hungarian equals brute force on random square and rectangular matrices",
          "[head_matching]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::uniform_int_distribution<int> small(0, 3);
  int cases = 0;
  for (Index rows = 1; rows <= 7; ++rows) {
    for (Index cols = 1; cols <= 7; ++cols) {
      for (int trial = 0; trial < 4; ++trial) {
        matrix<double> m(rows, cols);
        // Odd trials: small integers, so ties abound.
        for (Index i = 0; i < m.size(); ++i) m.data()[i] = trial % 2 ? double(small(rng)) : uniform(rng);
        CHECK(checked_total(m, headlens::maximum_assignment(m)) == Approx(brute_force_best(m, true)).margin(1e-12));
        CHECK(checked_total(m, headlens::minimum_assignment(m)) == Approx(brute_force_best(m, false)).margin(1e-12));
        ++cases;
      }
    }
  }
  CHECK(cases == 196);
}

TEST_CASE("optimal_assignment: known answers, ties, empty and non-finite input", "[head_matching]") {
  matrix<double> cost(3, 3);
  cost << 4, 1, 3, 2, 0, 5, 3, 2, 2;  // optimum 1 + 2 + 2 = 5: row 0 -> 1, row 1 -> 0, row 2 -> 2
  CHECK(headlens::minimum_assignment(cost) == std::vector<Index>{1, 0, 2});
  const matrix<double> ties = matrix<double>::Constant(4, 4, 0.5);
  CHECK(checked_total(ties, headlens::maximum_assignment(ties)) == Approx(2.0));
  matrix<double> tall(3, 2);
  tall << 0, 9, 8, 0, 7, 1;  // best: row 0 -> 1 (9), row 1 -> 0 (8); row 2 left out
  CHECK(headlens::maximum_assignment(tall) == std::vector<Index>{1, 0, -1});
  CHECK(headlens::maximum_assignment(matrix<double>(0, 3)).empty());
  CHECK(headlens::maximum_assignment(matrix<double>(2, 0)) == std::vector<Index>{-1, -1});
  matrix<double> bad = matrix<double>::Zero(2, 2);
  bad(1, 0) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_AS(headlens::maximum_assignment(bad), headlens::argument_error);
  REQUIRE_THROWS_WITH(headlens::maximum_assignment(bad), Contains("score(1, 0) is nan, expected a finite number"));
  bad(1, 0) = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_WITH(headlens::minimum_assignment(bad), Contains("cost(1, 0) is inf, expected a finite number"));
}

TEST_CASE("head_similarity_accumulator: 1 - JSD per row, causal restriction and unusable words", "[head_matching]") {
  // One layer; A has 1 head, B has 2; 3 words.
  const std::vector<float> a = {0.5f, 0.5f, 0.0f, 0.2f, 0.3f, 0.5f, 0.1f, 0.1f, 0.8f};
  const std::vector<float> b = {1.0f, 0.0f, 0.0f, 0.6f, 0.2f, 0.2f, 0.3f, 0.3f, 0.4f,  // head 0
                                0.5f, 0.5f, 0.0f, 0.2f, 0.3f, 0.5f, 0.1f, 0.1f, 0.8f}; // head 1 = A's head
  {
    headlens::head_similarity_accumulator acc(1, 1, false, 1, 2, false);
    acc.add(maps_of(1, 1, 3, a), maps_of(1, 2, 3, b));
    const headlens::head_similarity s = acc.result();
    REQUIRE(s.similarity.rows() == 1);
    REQUIRE(s.similarity.cols() == 2);
    const double expected = (entropy_similarity({0.5, 0.5, 0}, {1, 0, 0}) + entropy_similarity({.2, .3, .5}, {.6, .2, .2}) +
                             entropy_similarity({.1, .1, .8}, {.3, .3, .4})) / 3;
    CHECK(s.similarity(0, 0) == Approx(expected).epsilon(1e-6));
    CHECK(s.similarity(0, 1) == Approx(1.0).epsilon(1e-9));
    CHECK(s.counts(0, 0) == 3);
    CHECK(s.sentences == 1);
  }
  {  // causal: row 0 has one visible word (skipped); rows restricted to words 0..i and renormalised
    headlens::head_similarity_accumulator acc(1, 1, false, 1, 2, true);
    acc.add(maps_of(1, 1, 3, a), maps_of(1, 2, 3, b));
    const headlens::head_similarity s = acc.result();
    const double expected = (entropy_similarity({.2, .3}, {.6, .2}) + entropy_similarity({.1, .1, .8}, {.3, .3, .4})) / 2;
    CHECK(s.similarity(0, 0) == Approx(expected).epsilon(1e-6));
    CHECK(s.counts(0, 0) == 2);
  }
  {  // word 1 has no tokens in one model: row 1 and column 1 are left out
    headlens::head_similarity_accumulator acc(1, 1, false, 1, 2, false);
    acc.add(maps_of(1, 1, 3, a), maps_of(1, 2, 3, b), {true, false, true});
    const headlens::head_similarity s = acc.result();
    const double expected = (entropy_similarity({0.5, 0}, {1, 0}) + entropy_similarity({.1, .8}, {.3, .4})) / 2;
    CHECK(s.similarity(0, 0) == Approx(expected).epsilon(1e-6));
    CHECK(s.counts(0, 0) == 2);
  }
}

TEST_CASE("head matching: a copy with heads permuted within layers and noise gives the permutation back",
          "[head_matching]") {
  std::mt19937 rng(2024);
  const Index vocab = headlens::load_tokenizer(gpt2_dir).vocab_size();
  const headlens::transformer_weights<float> original = random_weights(vocab, rng);
  const std::vector<std::vector<Index>> perm = {{2, 0, 3, 1}, {3, 2, 1, 0}};
  const auto model_a = as_model(original);
  const auto exact_copy = as_model(permuted(original, perm));
  const std::vector<std::int32_t> ids = headlens::token_ids(model_a->tokenize("The cat sat on the mat."));
  REQUIRE(ids.size() >= 5);

  // The permutation leaves the outputs unchanged and moves the maps.
  const matrix<float> logits_a = model_a->logits(ids), logits_copy = exact_copy->logits(ids);
  CHECK((logits_a - logits_copy).cwiseAbs().maxCoeff() < 1e-4f);
  const headlens::tensor<float> maps_a = model_a->attention(ids), maps_copy = exact_copy->attention(ids);
  const Index T = Index(ids.size());
  float worst = 0;
  for (Index l = 0; l < 2; ++l) {
    for (Index k = 0; k < 4; ++k) {
      const float* moved = maps_copy.data.data() + (l * 4 + k) * T * T;
      const float* from = maps_a.data.data() + (l * 4 + perm[std::size_t(l)][std::size_t(k)]) * T * T;
      for (Index e = 0; e < T * T; ++e) worst = std::max(worst, std::abs(moved[e] - from[e]));
    }
  }
  CHECK(worst < 1e-5f);

  headlens::transformer_weights<float> noisy = permuted(original, perm);
  add_noise(noisy, 0.02f, rng);
  const auto model_b = as_model(std::move(noisy));
  const std::vector<headlens::document> docs = {headlens::document_from_text(sample_text, "sample")};
  std::size_t progress_calls = 0;
  headlens::head_comparison_options options;
  options.progress = [&](std::size_t, std::size_t) { ++progress_calls; };
  const headlens::head_similarity s = headlens::compare_heads(*model_a, *model_b, docs, options);
  CHECK(s.sentences == 6);
  CHECK(progress_calls == 6);
  const std::vector<headlens::head_match> pairs = headlens::match_heads(s);
  REQUIRE(pairs.size() == 8);
  for (const headlens::head_match& m : pairs) {
    // B's head k of layer l is A's head perm[l][k].
    const Index l = m.b / 4, k = m.b % 4;
    INFO("A " << headlens::head_label(m.a, 4) << " -> B " << headlens::head_label(m.b, 4) << " similarity "
              << m.similarity);
    CHECK(m.a == l * 4 + perm[std::size_t(l)][std::size_t(k)]);
    CHECK(m.mutual());
    CHECK(m.similarity > 0.95);
  }
}

TEST_CASE("head matching: a model against itself is maximal on the diagonal", "[head_matching]") {
  const auto model = headlens::load_attention_model(gpt2_dir);
  const std::vector<headlens::document> docs = {headlens::document_from_text(sample_text, "sample")};
  const headlens::head_similarity s = headlens::compare_heads(*model, *model, docs);
  const Index n = s.total_heads_a();
  REQUIRE(n == model->layers() * model->heads());
  REQUIRE(s.similarity.rows() == n);
  for (Index h = 0; h < n; ++h) {
    CHECK(s.similarity(h, h) == Approx(1.0).epsilon(1e-9));
    CHECK(s.similarity.row(h).maxCoeff() <= s.similarity(h, h));
    CHECK(s.similarity.col(h).maxCoeff() <= s.similarity(h, h));
    CHECK(s.counts(h, h) > 0);
  }
  double total = 0;
  for (const headlens::head_match& m : headlens::match_heads(s)) total += m.similarity;
  CHECK(total == Approx(double(n)).epsilon(1e-9));
  CHECK(headlens::head_label(5, 4) == "1.1");
}

TEST_CASE("head matching: bad input", "[head_matching]") {
  REQUIRE_THROWS_AS(headlens::head_similarity_accumulator(0, 4, false, 1, 1, false), headlens::argument_error);
  REQUIRE_THROWS_WITH(headlens::head_similarity_accumulator(0, 4, false, 1, 1, false),
                      Contains("model A has 0 layers x 4 heads, expected at least one head"));
  REQUIRE_THROWS_WITH(headlens::head_similarity_accumulator(1, 1, false, 2, 0, false),
                      Contains("model B has 2 layers x 0 heads, expected at least one head"));
  headlens::head_similarity_accumulator acc(1, 1, false, 1, 1, false);
  const std::vector<float> three(9, 1.0f / 3), two(4, 0.5f);
  REQUIRE_THROWS_AS(acc.add(maps_of(1, 1, 3, three), maps_of(1, 1, 2, two)), headlens::shape_error);
  REQUIRE_THROWS_WITH(acc.add(maps_of(1, 1, 3, three), maps_of(1, 1, 2, two)),
                      Contains("word_maps_b has 2 words, expected word_maps_a's 3 (the same words)"));
  REQUIRE_THROWS_WITH(acc.add(maps_of(1, 1, 3, three), maps_of(2, 1, 3, std::vector<float>(18, 0.f))),
                      Contains("word_maps_b has shape [2, 1, 3, 3], expected [1, 1, W, W]"));
  REQUIRE_THROWS_WITH(acc.add(maps_of(1, 1, 3, three), maps_of(1, 1, 3, three), {true, false}),
                      Contains("usable has 2 entries, expected one per word = 3"));
  CHECK(acc.sentences() == 0);
  REQUIRE_THROWS_WITH(headlens::match_heads(headlens::head_similarity{}),
                      Contains("similarity is 0 x 0, expected at least one head each"));

  const auto model = headlens::load_attention_model(gpt2_dir);
  const std::vector<headlens::document> empty = {headlens::document_from_text("", "empty")};
  REQUIRE_THROWS_AS(headlens::compare_heads(*model, *model, empty), headlens::argument_error);
  REQUIRE_THROWS_WITH(headlens::compare_heads(*model, *model, empty),
                      Contains("no sentence could be compared (0 sentences, 0 skipped"));
  headlens::head_comparison_options options;
  options.min_words = 50;
  REQUIRE_THROWS_WITH(headlens::compare_heads(*model, *model, {headlens::document_from_text(sample_text, "s")}, options),
                      Contains("(6 sentences, 6 skipped: fewer than 50 words"));
}

}  // namespace test_head_matching
