// kernels/pattern_rows.hpp: the exact pattern rows a `pattern_row_observer` reads after the streaming pass equal
// the long-double reference's pattern (tests/support/reference_attention.hpp) for self-attention, causal and not,
// GQA, rotary, key padding, an additive mask, lengths around the tile sizes, float and double, read whole, as far as
// a causal block sees, or as logits with their log-sum-exp; the output of the
// call is unchanged by observing; heads masked off are unavailable; fully masked rows read as 0; each sequence of a
// padded batch, cut to its own length by `sequence_observers`, reads as it would alone; bad requests are refused.

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "headlens/kernels/multi_head_attention.hpp"
#include "support/random_layer.hpp"

namespace test_pattern_rows {

namespace {

using testing_support::layer_shape;

/// How `row_reader` reads: `rows`, `visible_rows`, or `visible_logits` exponentiated by the reader.
enum class read_as { rows, visible_rows, visible_logits };

/// Reads every row of every available head, in blocks of `block` rows, into [head][T_q x T_k]. The visible reads
/// must return the block's visible columns (all of them without a causal mask) and leave the rest as they were.
template <class Scalar>
struct row_reader final : headlens::pattern_row_observer<Scalar> {
  headlens::Index block = 7;
  read_as how = read_as::rows;
  std::vector<headlens::matrix<Scalar>> heads;
  std::vector<bool> available;
  int calls = 0;
  bool visible_as_expected = true;  ///< every visible read returned its block's visible columns, wrote no further
  void operator()(const headlens::pattern_rows<Scalar>& rows) override {
    ++calls;
    heads.assign(std::size_t(rows.heads()), headlens::matrix<Scalar>());
    available.assign(std::size_t(rows.heads()), false);
    for (headlens::Index h = 0; h < rows.heads(); ++h) {
      if (!rows.available(h)) continue;
      available[std::size_t(h)] = true;
      headlens::matrix<Scalar>& m = heads[std::size_t(h)];
      m.resize(rows.queries(), rows.keys());
      const headlens::Index keys = rows.keys();
      m.setConstant(Scalar(7));  // not a probability nor a logit of these layers
      for (headlens::Index r0 = 0; r0 < rows.queries(); r0 += block) {
        const headlens::Index count = std::min(block, rows.queries() - r0);
        Scalar* out = m.data() + r0 * keys;
        if (how == read_as::rows) {
          rows.rows(h, r0, count, out, keys);
          continue;
        }
        const headlens::Index written = how == read_as::visible_rows ? rows.visible_rows(h, r0, count, out, keys)
                                                                     : rows.visible_logits(h, r0, count, out, keys);
        const headlens::Index expected = rows.causal() ? std::min(keys, rows.past() + r0 + count) : keys;
        visible_as_expected = visible_as_expected && written == expected;
        for (headlens::Index r = 0; r < count; ++r) {
          Scalar* row = out + r * keys;
          for (headlens::Index j = written; j < keys; ++j) {
            visible_as_expected = visible_as_expected && row[j] == Scalar(7);
            row[j] = 0;
          }
          if (how == read_as::visible_logits) {
            for (headlens::Index j = 0; j < written; ++j) row[j] = std::exp(row[j] - rows.log_sum_exp(h, r0 + r));
          }
        }
      }
    }
  }
};

}  // namespace

TEMPLATE_TEST_CASE("pattern_rows equal the reference pattern", "", float, double) {
  using Scalar = TestType;
  const int t = GENERATE(1, 5, 64, 97, 300);
  const bool causal = GENERATE(false, true);
  const int kv = GENERATE(4, 2);
  const bool rotary = GENERATE(false, true);
  INFO("T " << t << " causal " << causal << " kv heads " << kv << " rotary " << rotary);
  const layer_shape shape{32, 4, kv, 16, causal, true, rotary};
  const reference::layer L = testing_support::random_reference_layer(shape, 11u + unsigned(t));
  const auto module = testing_support::module_of<Scalar>(shape, L);
  std::mt19937 rng(5);
  const reference::mat x = testing_support::random_mat(rng, t, 32);
  // The scalar reference is the slow part: computed once, checked against each way of reading the rows.
  const auto expected = reference::attend(L, x, x, reference::iota(t), reference::iota(t));
  const headlens::matrix<Scalar> plain = module.forward(testing_support::to_matrix<Scalar>(x));

  for (const read_as how : {read_as::rows, read_as::visible_rows, read_as::visible_logits}) {
    INFO("read as " << int(how));
    row_reader<Scalar> reader;
    reader.how = how;
    headlens::forward_options<Scalar> options;
    options.row_observer = &reader;
    const headlens::matrix<Scalar> out = module.forward(testing_support::to_matrix<Scalar>(x), options);
    REQUIRE(reader.calls == 1);
    CHECK(reader.visible_as_expected);
    for (int h = 0; h < 4; ++h) {
      INFO("head " << h);
      REQUIRE(reader.available[std::size_t(h)]);
      CHECK(testing_support::scaled_error(reader.heads[std::size_t(h)], expected.patterns[std::size_t(h)]) <
            testing_support::tolerance<Scalar>());
    }
    // Observing changes nothing in the output.
    CHECK(out == plain);
  }
}

TEST_CASE("pattern_rows with key padding, an additive mask, a batch and masked-off heads") {
  const layer_shape shape{32, 4, 4, 8, false, true, false};
  const reference::layer L = testing_support::random_reference_layer(shape, 3u);
  const auto module = testing_support::module_of<double>(shape, L);
  std::mt19937 rng(9);
  const int t = 40;
  const reference::mat x0 = testing_support::random_mat(rng, t, 32), x1 = testing_support::random_mat(rng, t, 32);
  headlens::matrix<double> x(2 * t, 32);
  x << x0.cast<double>(), x1.cast<double>();
  headlens::forward_options<double> options;
  options.batch = 2;
  options.key_padding = headlens::bool_matrix::Constant(2, t, false);
  options.key_padding.row(1).tail(9).setConstant(true);
  const reference::mat mask = testing_support::random_mat(rng, t, t);
  options.attn_mask = mask.cast<double>();
  options.head_mask = {true, false, true, true};

  struct per_sequence final : headlens::pattern_row_observer<double> {
    std::vector<row_reader<double>> readers{2};
    void operator()(const headlens::pattern_rows<double>& rows) override {
      readers[std::size_t(rows.batch_row())](rows);
      CHECK(!rows.available(1));
      CHECK_THROWS_WITH(rows.rows(1, 0, 1, nullptr, rows.keys()), Catch::Contains("head 1 is not available"));
      std::vector<double> buffer(std::size_t(rows.keys()));
      CHECK_THROWS_WITH(rows.rows(0, rows.queries() - 1, 2, buffer.data(), rows.keys()),
                        Catch::Contains("are outside the 40 queries"));
      CHECK_THROWS_WITH(rows.rows(0, 0, 1, buffer.data(), rows.keys() - 1), Catch::Contains("out_stride is 39"));
    }
  } observer;
  options.row_observer = &observer;
  module.forward(x, options);
  for (int b = 0; b < 2; ++b) {
    std::vector<bool> padding(std::size_t(t), false);
    if (b == 1)
      for (int j = t - 9; j < t; ++j) padding[std::size_t(j)] = true;
    const auto expected =
        reference::attend(L, b == 0 ? x0 : x1, b == 0 ? x0 : x1, reference::iota(t), reference::iota(t), padding, mask);
    for (int h : {0, 2, 3}) {
      INFO("sequence " << b << " head " << h);
      CHECK(testing_support::scaled_error(observer.readers[std::size_t(b)].heads[std::size_t(h)],
                                          expected.patterns[std::size_t(h)]) < 1e-12);
    }
  }
}

TEST_CASE("sequence_observers hand each sequence of a padded batch the rows it has alone") {
  const bool causal = GENERATE(false, true);
  INFO("causal " << causal);
  const layer_shape shape{32, 4, 2, 16, causal, true, true};
  const reference::layer L = testing_support::random_reference_layer(shape, 21u);
  const auto module = testing_support::module_of<double>(shape, L);
  std::mt19937 rng(13);
  const std::vector<int> lengths{23, 40, 1};
  const int t = 40, batch = 3;
  std::vector<reference::mat> sequences;
  headlens::matrix<double> x(batch * t, 32);
  for (int b = 0; b < batch; ++b) {
    // Padding rows hold other random values: what a padded query sees must not reach a real one.
    const reference::mat padded = testing_support::random_mat(rng, t, 32);
    sequences.push_back(padded.topRows(lengths[std::size_t(b)]));
    x.middleRows(b * t, t) = padded.cast<double>();
  }
  headlens::forward_options<double> options;
  options.batch = batch;
  if (!causal) {  // a causal query never sees the keys after it, so it needs no padding mask
    options.key_padding = headlens::bool_matrix::Constant(batch, t, false);
    for (int b = 0; b < batch; ++b) options.key_padding.row(b).tail(t - lengths[std::size_t(b)]).setConstant(true);
  }
  std::vector<row_reader<double>> readers(static_cast<std::size_t>(batch));
  readers[1].how = read_as::visible_logits;
  headlens::sequence_observers<double> each(
      {&readers[0], &readers[1], &readers[2]},
      {headlens::Index(lengths[0]), headlens::Index(lengths[1]), headlens::Index(lengths[2])});
  options.row_observer = &each;
  module.forward(x, options);
  for (int b = 0; b < batch; ++b) {
    const int n = lengths[std::size_t(b)];
    const auto expected = reference::attend(L, sequences[std::size_t(b)], sequences[std::size_t(b)], reference::iota(n),
                                            reference::iota(n));
    const row_reader<double>& r = readers[std::size_t(b)];
    REQUIRE(r.calls == 1);
    CHECK(r.visible_as_expected);
    for (int h = 0; h < 4; ++h) {
      INFO("sequence " << b << " head " << h);
      REQUIRE(r.heads[std::size_t(h)].rows() == n);
      REQUIRE(r.heads[std::size_t(h)].cols() == n);
      CHECK(testing_support::scaled_error(r.heads[std::size_t(h)], expected.patterns[std::size_t(h)]) < 1e-12);
    }
  }
}

TEST_CASE("sequence_observers and pattern_rows::prefix refuse what is not one sequence's own rows") {
  const layer_shape shape{16, 2, 2, 8, false, true, false};
  const reference::layer L = testing_support::random_reference_layer(shape, 6u);
  const auto module = testing_support::module_of<double>(shape, L);
  std::mt19937 rng(3);
  const headlens::matrix<double> x = testing_support::to_matrix<double>(testing_support::random_mat(rng, 20, 16));
  row_reader<double> reader;
  headlens::forward_options<double> options;
  options.batch = 2;
  SECTION("keys after the prefix that are not padding") {
    headlens::sequence_observers<double> each({&reader, &reader}, {10, 7});
    options.row_observer = &each;
    CHECK_THROWS_WITH(module.forward(x, options),
                      Catch::Contains("key 7 of sequence 1 is not padding, expected every key from the prefix "
                                      "length 7 on masked"));
  }
  SECTION("a length the sequence does not have") {
    headlens::sequence_observers<double> each({&reader, &reader}, {10, 11});
    options.row_observer = &each;
    CHECK_THROWS_WITH(module.forward(x, options), Catch::Contains("prefix length is 11, expected 1 to"));
  }
  SECTION("more sequences than observers") {
    headlens::sequence_observers<double> each({&reader}, {10});
    options.row_observer = &each;
    CHECK_THROWS_WITH(module.forward(x, options), Catch::Contains("batch row 1, expected below the 1 sequences"));
  }
  CHECK_THROWS_WITH(headlens::sequence_observers<double>({&reader}, {}), Catch::Contains("1 observers for 0 lengths"));
}

TEST_CASE("pattern_rows of a fully masked row are 0") {
  const layer_shape shape{16, 2, 2, 8, false, false, false};
  const reference::layer L = testing_support::random_reference_layer(shape, 4u);
  const auto module = testing_support::module_of<float>(shape, L);
  std::mt19937 rng(2);
  const headlens::matrix<float> x = testing_support::to_matrix<float>(testing_support::random_mat(rng, 6, 16));
  headlens::forward_options<float> options;
  options.attn_mask = headlens::matrix<float>::Zero(6, 6);
  options.attn_mask.row(2).setConstant(-std::numeric_limits<float>::infinity());
  row_reader<float> reader;
  options.row_observer = &reader;
  module.forward(x, options);
  CHECK(reader.heads[0].row(2).isZero());
  CHECK(reader.heads[1].row(3).sum() == Approx(1.0f).epsilon(1e-6));
}

}  // namespace test_pattern_rows
