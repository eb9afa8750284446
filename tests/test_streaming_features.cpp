// analysis/streaming_features.hpp: the word features `streaming_word_features` measures inside the kernel equal
// those of the long-double reference's pattern (tests/support/reference_attention.hpp) turned into word maps by
// `token_to_word_map` and measured on the materialised path, causal and not, for every layout of tokens over words
// it handles differently: one token per word after a token of no word (a BOS), words of several tokens, words
// without tokens and tokens of no word inside the window (the fast path's runs), a token of no word inside a word
// and a word whose tokens come after the next word's (the scalar path), each long enough for several row blocks.

#include <catch2/catch.hpp>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "headlens/analysis/conllu.hpp"
#include "headlens/analysis/streaming_features.hpp"
#include "support/feature_totals.hpp"
#include "support/random_layer.hpp"

namespace test_streaming_features {

namespace {

using headlens::doc_index;
using headlens::Index;

const std::string gum_sample = std::string(HEADLENS_TEST_DATA_DIR) + "/gum/gum_cc_by_sample.conllu";

headlens::token_alignment alignment_of(const std::vector<doc_index>& word_of_token, Index words) {
  headlens::token_alignment a;
  a.word_of_token = word_of_token;
  a.tokens_per_word.assign(std::size_t(words), 0);
  for (doc_index w : word_of_token) {
    if (w >= 0) ++a.tokens_per_word[std::size_t(w)];
  }
  for (Index c : a.tokens_per_word) a.words_without_tokens += c == 0 ? 1 : 0;
  return a;
}

/// Token layouts over `n` words, by name.
std::vector<doc_index> layout(const std::string& name, Index n) {
  std::vector<doc_index> out{-1};  // a BOS of no word
  if (name == "one token per word") {
    for (Index w = 0; w < n; ++w) out.push_back(doc_index(w));
  } else if (name == "runs") {
    for (Index w = 0; w < n; ++w) {
      if (w % 7 == 3) continue;                                   // no tokens
      for (Index k = 0; k <= w % 3; ++k) out.push_back(doc_index(w));  // 1 to 3 tokens
      if (w % 10 == 5) out.push_back(-1);                         // a token of no word between words
    }
  } else if (name == "broken runs") {
    for (Index w = 0; w < n; ++w) {
      out.push_back(doc_index(w));
      if (w == 9) out.push_back(-1);  // inside word 9
      if (w == 9 || w % 4 == 1) out.push_back(doc_index(w));
    }
    std::swap(out[30], out[31]);  // words 22 and 23 out of order
  }
  return out;
}

}  // namespace

TEST_CASE("streaming word features equal the materialised path's on the reference pattern") {
  const std::string name = GENERATE(as<std::string>(), "one token per word", "runs", "broken runs");
  const bool causal = GENERATE(false, true);
  INFO(name << (causal ? ", causal" : ""));
  const headlens::document doc = headlens::read_conllu(gum_sample).at(0);
  const Index n = 150;
  REQUIRE(Index(doc.words.size()) >= n);
  const headlens::prepared_document prepared(doc);
  const headlens::word_window win{0, n, 0, n - 5};
  const std::vector<doc_index> tokens = layout(name, n);
  const headlens::token_alignment alignment = alignment_of(tokens, n);
  const Index T = alignment.tokens();
  REQUIRE(T > 2 * headlens::streaming_word_features::block_tokens);

  const int heads = 4;
  const testing_support::layer_shape shape{32, heads, 2, 16, causal, true, false};
  const reference::layer L = testing_support::random_reference_layer(shape, 23u);
  const auto module = testing_support::module_of<float>(shape, L);
  std::mt19937 rng(3);
  const reference::mat x = testing_support::random_mat(rng, int(T), 32, 2.0);
  const auto expected = reference::attend(L, x, x, reference::iota(int(T)), reference::iota(int(T)));

  headlens::feature_options options;
  options.causal = causal;
  headlens::model_feature_accumulator streamed(1, heads, options), materialised(1, heads, options);
  headlens::streaming_word_features measure(streamed, prepared, win, alignment);
  headlens::forward_options<float> forward;
  forward.row_observer = &measure;
  module.forward(testing_support::to_matrix<float>(x), forward);
  measure.commit();

  double dropped = 0;
  Index owned_with_tokens = 0;
  for (Index v = win.own_begin; v < win.own_end; ++v) owned_with_tokens += alignment.tokens_per_word[std::size_t(v)] > 0;
  for (int h = 0; h < heads; ++h) {
    const headlens::matrix<double> pattern = expected.patterns[std::size_t(h)].cast<double>();
    const headlens::word_attention<double> words = headlens::token_to_word_map(pattern, alignment);
    const headlens::matrix<float> word_map = words.map.cast<float>();
    materialised.head(0, h).add(word_map, prepared, win);
    for (Index v = win.own_begin; v < win.own_end; ++v) dropped += words.dropped_mass[v];
  }
  dropped /= double(owned_with_tokens * heads);
  CHECK(measure.mean_dropped_mass() == Approx(dropped).epsilon(1e-5));
  for (int h = 0; h < heads; ++h) {
    INFO("head " << h);
    testing_support::check_totals_close(streamed.head(0, h).totals(), materialised.head(0, h).totals());
  }
}

TEST_CASE("streaming word features refuse a pattern that holds NaN, as the materialised path does") {
  // One token's input is NaN, so from it on every row that sees its key is NaN: blocks of finite and NaN rows.
  const bool causal = GENERATE(false, true);
  INFO((causal ? "causal" : "not causal"));
  const headlens::document doc = headlens::read_conllu(gum_sample).at(0);
  const Index n = 150;
  const headlens::prepared_document prepared(doc);
  const headlens::word_window win{0, n, 0, n};
  const headlens::token_alignment alignment = alignment_of(layout("one token per word", n), n);
  const Index T = alignment.tokens();
  const testing_support::layer_shape shape{32, 2, 1, 16, causal, true, false};
  const reference::layer L = testing_support::random_reference_layer(shape, 29u);
  const auto module = testing_support::module_of<float>(shape, L);
  std::mt19937 rng(4);
  headlens::matrix<float> x = testing_support::to_matrix<float>(testing_support::random_mat(rng, int(T), 32, 2.0));
  x(100, 3) = std::numeric_limits<float>::quiet_NaN();
  headlens::feature_options options;
  options.causal = causal;
  headlens::model_feature_accumulator streamed(1, 2, options);
  headlens::streaming_word_features measure(streamed, prepared, win, alignment);
  headlens::forward_options<float> forward;
  forward.row_observer = &measure;
  CHECK_THROWS_WITH(module.forward(x, forward), Catch::Contains("expected finite values"));
}

}  // namespace test_streaming_features
