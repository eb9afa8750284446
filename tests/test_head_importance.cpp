// analysis/head_importance.hpp, analysis/ablation_units.hpp and analysis/statistics.hpp: head importance swept over
// synthetic ablation targets whose loss is a planted function of the ablated heads (so the importances, intervals
// and split-half checks are known by hand); the units of context built from hand-made documents through a fake
// model whose tokenizer is written here, and through the tiny Llama fixture with the word vocabulary (its BOS
// token first); Student-t quantiles against values from mpmath's quadrature of the t density; the errors.

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "headlens/analysis/ablation_units.hpp"
#include "headlens/analysis/head_importance.hpp"
#include "headlens/analysis/head_importance_json.hpp"
#include "headlens/analysis/head_importance_report.hpp"
#include "headlens/analysis/statistics.hpp"
#include "headlens/models/attention_model.hpp"

namespace test_head_importance {

namespace {

using headlens::ablation;
using headlens::head_ref;
using headlens::head_set;

/// A sequence whose loss is known: clean loss `clean`, and each ablated head h adds `zero[h]` (zero ablation) or
/// `mean[h]` (mean ablation, only when made with means) to it. Heads are numbered layer by layer.
class planted_target final : public headlens::ablation_target {
 public:
  planted_target(std::vector<int> shape, double clean, std::vector<double> zero, std::vector<double> mean,
                 bool has_means = true)
      : shape_(std::move(shape)), zero_(std::move(zero)), mean_(std::move(mean)), has_means_(has_means) {
    clean_ = losses_of(clean);
  }
  const std::vector<int>& heads_per_layer() const override { return shape_; }
  headlens::Index token_count() const override { return 4; }
  const headlens::token_losses& clean() const override { return clean_; }
  headlens::token_losses losses(const head_set& ablated, ablation kind) const override {
    if (ablated.heads_per_layer() != shape_) throw headlens::argument_error("headlens: ablated has another shape");
    if (kind == ablation::mean && !has_means_) throw headlens::argument_error("headlens: made without means");
    double loss = clean_.sequence;
    std::size_t i = 0;
    for (int l = 0; l < int(shape_.size()); ++l) {
      for (int h = 0; h < shape_[std::size_t(l)]; ++h, ++i) {
        if (ablated.contains({l, h})) loss += (kind == ablation::zero ? zero_ : mean_)[i];
      }
    }
    return losses_of(loss);
  }

 private:
  static headlens::token_losses losses_of(double sequence) {
    headlens::token_losses out;
    out.loss.assign(4, sequence);
    out.scored = {false, true, true, true};
    out.sequence = sequence;
    return out;
  }
  std::vector<int> shape_;
  std::vector<double> zero_, mean_;
  bool has_means_;
  headlens::token_losses clean_;
};

/// A corpus of planted targets: document d has `per_doc` sequences; sequence j of document d has clean loss
/// 2 + 0.1 d + 0.01 j and adds zero[d][h] + jitter (mean: mean[d][h] - jitter) when head h is ablated, where the
/// jitters of a document's sequences sum to 0, so each document's mean change is exactly the planted value.
struct planted_corpus {
  std::vector<int> shape;
  std::vector<std::vector<double>> zero, mean;  // [document][head]
  std::size_t per_doc = 2;

  std::vector<std::size_t> documents() const {
    std::vector<std::size_t> out;
    for (std::size_t d = 0; d < zero.size(); ++d)
      for (std::size_t j = 0; j < per_doc; ++j) out.push_back(d);
    return out;
  }
  std::unique_ptr<headlens::ablation_target> make(std::size_t k) const {
    const std::size_t d = k / per_doc, j = k % per_doc;
    const double jitter = per_doc == 1 ? 0.0 : (j == 0 ? 0.25 : j == 1 ? -0.25 : 0.0) / 8;  // 1/32: exact in binary
    std::vector<double> z = zero[d], m = mean[d];
    for (double& v : z) v += jitter;
    for (double& v : m) v -= jitter;
    return std::make_unique<planted_target>(shape, 2 + 0.125 * double(d) + 0.0625 * double(j), z, m);
  }
  headlens::ablation_corpus corpus() const {
    return headlens::ablation_corpus(documents(), [this](std::size_t k) { return make(k); });
  }
};

/// Exact binary fractions: sums and means of them are exact in double.
planted_corpus four_documents() {
  planted_corpus c;
  c.shape = {3, 2};
  // Head order by importance (largest first) on every document: 1.1 > 0.0 > 1.0 > 0.2 > 0.1.
  c.zero = {{0.5, 0.0625, 0.125, 0.25, 1.0},
            {0.75, 0.125, 0.25, 0.5, 1.5},
            {0.5, 0.125, 0.1875, 0.25, 0.625},
            {0.25, 0.0, 0.0625, 0.125, 0.5}};
  c.mean = {{0.25, 0.5, 0.0, 0.0, 0.125},
            {0.5, 0.25, 0.0625, 0.0, 0.25},
            {0.25, 0.75, 0.125, 0.0, 0.125},
            {0.5, 1.0, 0.0, 0.0, 0.375}};
  return c;
}

std::vector<double> column(const std::vector<std::vector<double>>& rows, std::size_t h) {
  std::vector<double> out;
  for (const auto& r : rows) out.push_back(r[h]);
  return out;
}

/// Spearman's rho for values without ties, from the textbook formula 1 - 6 sum d^2 / (n (n^2 - 1)).
double spearman_no_ties(const std::vector<double>& a, const std::vector<double>& b) {
  const std::size_t n = a.size();
  double d2 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    int ra = 1, rb = 1;
    for (std::size_t j = 0; j < n; ++j) ra += a[j] < a[i], rb += b[j] < b[i];
    d2 += double(ra - rb) * double(ra - rb);
  }
  return 1 - 6 * d2 / (double(n) * (double(n) * double(n) - 1));
}

}  // namespace

TEST_CASE("student_t_quantile matches the t distribution (mpmath quadrature of its density)", "[importance]") {
  struct row {
    double p, df, t;
  };
  // mpmath 30 digits: findroot of the integral of the t density; they agree with published t tables.
  const row rows[] = {{0.975, 1, 12.7062047361949185763}, {0.975, 2, 4.30265272974946178942},
                      {0.975, 5, 2.57058183563631478279}, {0.975, 10, 2.22813885198627422452},
                      {0.975, 30, 2.04227245630123788783}, {0.975, 1000, 1.96233908082640810389},
                      {0.995, 3, 5.84090930973335541126}, {0.9, 7, 1.41492392765050863533},
                      {0.6, 4, 0.270722294707597362998}};
  for (const row& r : rows) {
    INFO("p " << r.p << " df " << r.df);
    CHECK(headlens::student_t_quantile(r.p, r.df) == Approx(r.t).epsilon(1e-10));
    CHECK(headlens::student_t_quantile(1 - r.p, r.df) == Approx(-r.t).epsilon(1e-9));
    CHECK(headlens::student_t_cdf(r.t, r.df) == Approx(r.p).epsilon(1e-12));
  }
  CHECK(headlens::student_t_quantile(0.5, 3) == 0);
  REQUIRE_THROWS_AS(headlens::student_t_quantile(1.0, 3), headlens::argument_error);
  REQUIRE_THROWS_WITH(headlens::student_t_quantile(0.9, 0), Catch::Contains("df is 0"));
}

TEST_CASE("interval_over_documents: the Student-t interval of the mean, computed by hand", "[importance]") {
  const headlens::document_interval i = headlens::interval_over_documents({0.1, 0.3, 0.8});
  // mean 0.4; sd = sqrt((0.09 + 0.01 + 0.16) / 2); t_{0.975, 2} = 4.30265272974946 (table).
  const double sd = std::sqrt(0.13), half = 4.30265272974946178942 * sd / std::sqrt(3.0);
  CHECK(i.documents == 3);
  CHECK(i.mean == Approx(0.4).epsilon(1e-14));
  CHECK(i.sd == Approx(sd).epsilon(1e-14));
  CHECK(i.low == Approx(0.4 - half).epsilon(1e-12));
  CHECK(i.high == Approx(0.4 + half).epsilon(1e-12));
  CHECK(i.has_interval());
  const headlens::document_interval one = headlens::interval_over_documents({0.5});
  CHECK(one.mean == 0.5);
  CHECK_FALSE(one.has_interval());
  CHECK(std::isnan(one.low));
  REQUIRE_THROWS_WITH(headlens::interval_over_documents({}), Catch::Contains("values is empty"));
  REQUIRE_THROWS_WITH(headlens::interval_over_documents({1.0, NAN}), Catch::Contains("values[1] is nan"));
  REQUIRE_THROWS_WITH(headlens::interval_over_documents({1.0, 2.0}, 1.0), Catch::Contains("level is 1"));
}

TEST_CASE("spearman_rho: the textbook formula without ties, average ranks with them", "[importance]") {
  const std::vector<double> a{0.3, 0.1, 0.9, 0.4, 0.2, 0.7}, b{0.2, 0.05, 0.1, 0.8, 0.3, 0.9};
  CHECK(headlens::spearman_rho(a, b) == Approx(spearman_no_ties(a, b)).epsilon(1e-14));
  CHECK(headlens::spearman_rho(a, a) == Approx(1.0));
  // Ties: ranks of {1, 2, 2, 3} are {1, 2.5, 2.5, 4}; against {1, 2, 3, 4}: Pearson of the ranks by hand:
  // centred {-1.5, 0, 0, 1.5} and {-1.5, -0.5, 0.5, 1.5}: 4.5 / sqrt(4.5 * 5).
  CHECK(headlens::spearman_rho({1, 2, 2, 3}, {1, 2, 3, 4}) == Approx(4.5 / std::sqrt(4.5 * 5)).epsilon(1e-14));
  CHECK(std::isnan(headlens::spearman_rho({1, 1, 1}, {1, 2, 3})));
  REQUIRE_THROWS_WITH(headlens::spearman_rho({1, 2}, {1}), Catch::Contains("a has 2 values and b 1"));
}

TEST_CASE("head importance returns the planted per-document importances, zero and mean", "[importance]") {
  const planted_corpus planted = four_documents();
  const headlens::ablation_corpus corpus = planted.corpus();
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  headlens::importance_options options;
  options.pass.progress = [&](std::size_t done, std::size_t all) { calls.emplace_back(done, all); };
  const headlens::head_importance_result r = headlens::measure_head_importance(corpus, options);

  REQUIRE(calls.size() == 8);
  CHECK(calls.back() == std::make_pair(std::size_t(8), std::size_t(8)));
  CHECK(r.heads_per_layer == std::vector<int>{3, 2});
  CHECK(r.documents == std::vector<std::size_t>{0, 1, 2, 3});
  CHECK(r.sequences == 8);
  CHECK(r.tokens == 32);
  // Clean: document d's sequences have 2 + d / 8 and 2 + d / 8 + 1 / 16: mean 2 + d / 8 + 1 / 32.
  REQUIRE(r.clean_per_document.size() == 4);
  for (std::size_t d = 0; d < 4; ++d) CHECK(r.clean_per_document[d] == 2 + 0.125 * double(d) + 0.03125);
  REQUIRE(r.kinds.size() == 2);
  const head_ref order[] = {{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}};
  for (const headlens::importance_of_kind& kind : r.kinds) {
    const auto& planted_values = kind.kind == ablation::zero ? planted.zero : planted.mean;
    REQUIRE(kind.heads.size() == 5);
    for (std::size_t h = 0; h < 5; ++h) {
      INFO(to_string(kind.kind) << " head " << h);
      CHECK(kind.heads[h].head == order[h]);
      CHECK(kind.heads[h].per_document == column(planted_values, h));  // exact: binary fractions
      const std::vector<double> v = column(planted_values, h);
      const double mean = (v[0] + v[1] + v[2] + v[3]) / 4;
      double ss = 0;
      for (double x : v) ss += (x - mean) * (x - mean);
      const double half = 3.18244630528370959272 * std::sqrt(ss / 3) / 2;  // t_{0.975, 3} (mpmath) * sd / sqrt(4)
      CHECK(kind.heads[h].change.mean == mean);
      CHECK(kind.heads[h].change.low == Approx(mean - half).epsilon(1e-12).margin(1e-14));
      CHECK(kind.heads[h].change.high == Approx(mean + half).epsilon(1e-12).margin(1e-14));
    }
  }
  // Ranks: zero means are 0.5, 0.078125, 0.15625, 0.28125, 0.90625.
  const headlens::importance_of_kind* zero = r.find(ablation::zero);
  REQUIRE(zero != nullptr);
  const std::size_t zero_ranks[] = {2, 5, 4, 3, 1};
  for (std::size_t h = 0; h < 5; ++h) CHECK(zero->heads[h].rank == zero_ranks[h]);
  const headlens::importance_of_kind* mean = r.find(ablation::mean);
  REQUIRE(mean != nullptr);
  // Means: 0.375, 0.625, 0.046875, 0, 0.21875.
  const std::size_t mean_ranks[] = {2, 1, 4, 5, 3};
  for (std::size_t h = 0; h < 5; ++h) CHECK(mean->heads[h].rank == mean_ranks[h]);
}

TEST_CASE("split-half stability: a planted ranking is stable (rho 1), reversed halves and noise are not",
          "[importance]") {
  SECTION("the same ordering on every document: rho is 1") {
    const headlens::head_importance_result r = headlens::measure_head_importance(four_documents().corpus());
    const headlens::ranking_stability& s = r.find(ablation::zero)->stability;
    CHECK(s.first_half == 2);
    CHECK(s.second_half == 2);
    CHECK(s.rho == Approx(1.0).epsilon(1e-14));
    CHECK(s.stable);
    CHECK_THAT(s.note, Catch::StartsWith("stable: split-half Spearman rho 1.00 >= 0.50"));
  }
  SECTION("alternate documents rank the heads in opposite orders: rho is -1, flagged") {
    planted_corpus c;
    c.shape = {4};
    c.zero = {{0.1, 0.2, 0.3, 0.4}, {0.4, 0.3, 0.2, 0.1}, {0.1, 0.2, 0.3, 0.4}, {0.4, 0.3, 0.2, 0.1}};
    c.mean = c.zero;
    const headlens::head_importance_result r = headlens::measure_head_importance(c.corpus());
    const headlens::ranking_stability& s = r.find(ablation::zero)->stability;
    CHECK(s.rho == Approx(-1.0).epsilon(1e-12));
    CHECK_FALSE(s.stable);
    CHECK_THAT(s.note, Catch::StartsWith("not stable: split-half Spearman rho -1.00 < 0.50"));
  }
  SECTION("independent noise per document: the reported rho is the halves' rho, and it is flagged") {
    planted_corpus c;
    c.shape = {6, 6};
    std::mt19937 rng(7);  // mt19937's sequence is fixed by the standard
    for (int d = 0; d < 6; ++d) {
      std::vector<double> z;
      for (int h = 0; h < 12; ++h) z.push_back(double(rng() % 1000) / 1024);
      c.zero.push_back(z);
    }
    c.mean = c.zero;
    headlens::importance_options options;
    options.kinds = {ablation::zero};
    const headlens::head_importance_result r = headlens::measure_head_importance(c.corpus(), options);
    std::vector<double> a(12, 0.0), b(12, 0.0);
    for (std::size_t h = 0; h < 12; ++h) {
      for (std::size_t d = 0; d < 6; ++d) (d % 2 == 0 ? a : b)[h] += c.zero[d][h] / 3;
    }
    const double rho = spearman_no_ties(a, b);
    INFO("rho " << rho);
    const headlens::ranking_stability& s = r.kinds.at(0).stability;
    CHECK(s.rho == Approx(rho).epsilon(1e-12));
    REQUIRE(rho < 0.5);  // true of this seed's draws; the check below is what is tested
    CHECK_FALSE(s.stable);
  }
  SECTION("too few documents or heads") {
    planted_corpus c = four_documents();
    c.zero.pop_back();
    c.mean.pop_back();
    const headlens::head_importance_result r = headlens::measure_head_importance(c.corpus());
    const headlens::ranking_stability& s = r.kinds[0].stability;
    CHECK(s.first_half == 2);
    CHECK(s.second_half == 1);
    CHECK_FALSE(s.stable);
    CHECK_THAT(s.note, Catch::Contains("too few documents (3)"));
    planted_corpus two;
    two.shape = {2};
    two.zero = two.mean = {{1, 2}, {1, 2}, {1, 2}, {1, 2}};
    const headlens::ranking_stability s2 = headlens::measure_head_importance(two.corpus()).kinds[0].stability;
    CHECK_FALSE(s2.stable);
    CHECK_THAT(s2.note, Catch::Contains("2 heads, a ranking needs at least 3"));
  }
}

TEST_CASE("head importance is deterministic across threads and held targets", "[importance]") {
  const planted_corpus planted = four_documents();
  headlens::importance_options options;
  const headlens::head_importance_result one = headlens::measure_head_importance(planted.corpus(), options);
  options.pass.threads = 3;
  std::atomic<int> made{0};
  const headlens::ablation_corpus counted(planted.documents(), [&](std::size_t k) {
    ++made;
    return planted.make(k);
  });
  const headlens::head_importance_result three = headlens::measure_head_importance(counted, options);
  CHECK(made == 8);  // one target per sequence serves the clean loss and every ablation
  std::vector<std::unique_ptr<headlens::ablation_target>> held;
  for (std::size_t k = 0; k < 8; ++k) held.push_back(planted.make(k));
  const headlens::ablation_corpus held_corpus(planted.documents(), std::move(held));
  CHECK(held_corpus.holds_targets());
  const headlens::head_importance_result kept = headlens::measure_head_importance(held_corpus, options);
  for (const headlens::head_importance_result* other : {&three, &kept}) {
    CHECK(other->clean_per_document == one.clean_per_document);
    for (std::size_t c = 0; c < 2; ++c) {
      for (std::size_t h = 0; h < 5; ++h) {
        CHECK(other->kinds[c].heads[h].per_document == one.kinds[c].heads[h].per_document);
        CHECK(other->kinds[c].heads[h].change.low == one.kinds[c].heads[h].change.low);
        CHECK(other->kinds[c].heads[h].rank == one.kinds[c].heads[h].rank);
      }
      CHECK(other->kinds[c].stability.rho == one.kinds[c].stability.rho);
    }
  }
}

TEST_CASE("corpus_loss_change of a head set is the sum of its planted weights", "[importance]") {
  const planted_corpus planted = four_documents();
  head_set set(planted.shape);
  set.insert({0, 0});
  set.insert({1, 1});
  const headlens::corpus_loss zero = headlens::corpus_loss_change(planted.corpus(), set, ablation::zero);
  const headlens::corpus_loss mean = headlens::corpus_loss_change(planted.corpus(), set, ablation::mean);
  REQUIRE(zero.change.size() == 4);
  for (std::size_t d = 0; d < 4; ++d) {
    // Two heads: the jitter counts twice, +1/16 and -1/16 over the document's two sequences: mean 0.
    CHECK(zero.change[d] == planted.zero[d][0] + planted.zero[d][4]);
    CHECK(mean.change[d] == planted.mean[d][0] + planted.mean[d][4]);
    CHECK(zero.clean[d] == 2 + 0.125 * double(d) + 0.03125);
  }
  CHECK(zero.change_interval.mean == (1.5 + 2.25 + 1.125 + 0.75) / 4);
  const headlens::corpus_loss none = headlens::corpus_loss_change(planted.corpus(), head_set(planted.shape), ablation::zero);
  CHECK(none.change_interval.mean == 0);
  CHECK(none.change_interval.sd == 0);
}

TEST_CASE("head importance refuses bad corpora with typed errors naming the value", "[importance]") {
  const planted_corpus planted = four_documents();
  REQUIRE_THROWS_WITH(headlens::ablation_corpus({}, [&](std::size_t k) { return planted.make(k); }),
                      Catch::Contains("documents is empty"));
  REQUIRE_THROWS_WITH(headlens::ablation_corpus({0}, headlens::ablation_corpus::factory()), Catch::Contains("make is empty"));
  {
    std::vector<std::unique_ptr<headlens::ablation_target>> held;
    held.push_back(planted.make(0));
    held.push_back(nullptr);
    REQUIRE_THROWS_WITH(headlens::ablation_corpus({0, 0}, std::move(held)), Catch::Contains("targets[1] is null"));
  }
  SECTION("a target shaped for another model") {
    const headlens::ablation_corpus mixed({0, 0, 1, 1}, [&](std::size_t k) -> std::unique_ptr<headlens::ablation_target> {
      if (k == 2) return std::make_unique<planted_target>(std::vector<int>{4}, 1.0, std::vector<double>(4, 0.0),
                                                           std::vector<double>(4, 0.0));
      return planted.make(k);
    });
    REQUIRE_THROWS_AS(headlens::measure_head_importance(mixed), headlens::argument_error);
    REQUIRE_THROWS_WITH(headlens::measure_head_importance(mixed),
                        Catch::Contains("sequence 2 (document 1) has heads per layer [4], expected [3, 2]"));
    REQUIRE_THROWS_WITH(headlens::corpus_loss_change(planted.corpus(), head_set({4}), ablation::zero),
                        Catch::Contains("ablated is shaped for heads per layer [4], expected the model's [3, 2]"));
  }
  SECTION("a factory that makes nothing, a non-finite loss, mean without means") {
    const headlens::ablation_corpus null_target({0, 1}, [&](std::size_t k) -> std::unique_ptr<headlens::ablation_target> {
      return k == 1 ? nullptr : planted.make(k);
    });
    REQUIRE_THROWS_WITH(headlens::measure_head_importance(null_target), Catch::Contains("make(1) returned null"));
    const headlens::ablation_corpus nan_loss({0, 1}, [&](std::size_t k) -> std::unique_ptr<headlens::ablation_target> {
      return std::make_unique<planted_target>(std::vector<int>{1}, k == 1 ? NAN : 1.0, std::vector<double>{0.5},
                                              std::vector<double>{0.5});
    });
    REQUIRE_THROWS_AS(headlens::measure_head_importance(nan_loss), headlens::numeric_error);
    REQUIRE_THROWS_WITH(headlens::measure_head_importance(nan_loss),
                        Catch::Contains("sequence 1 (document 1): the clean loss is nan"));
    const headlens::ablation_corpus no_means({0}, [&](std::size_t) -> std::unique_ptr<headlens::ablation_target> {
      return std::make_unique<planted_target>(std::vector<int>{1}, 1.0, std::vector<double>{0.5},
                                              std::vector<double>{0.5}, false);
    });
    REQUIRE_THROWS_WITH(headlens::measure_head_importance(no_means), Catch::Contains("made without means"));
    headlens::importance_options zero_only;
    zero_only.kinds = {ablation::zero};
    CHECK(headlens::measure_head_importance(no_means, zero_only).kinds.size() == 1);
  }
  SECTION("options") {
    headlens::importance_options options;
    options.kinds = {};
    REQUIRE_THROWS_WITH(headlens::measure_head_importance(planted.corpus(), options), Catch::Contains("kinds is empty"));
    options.kinds = {ablation::zero, ablation::mean, ablation::zero};
    REQUIRE_THROWS_WITH(headlens::measure_head_importance(planted.corpus(), options),
                        Catch::Contains("kinds[2] is zero again"));
    options.kinds = {ablation::mean};
    options.stable_rho = 2;
    REQUIRE_THROWS_WITH(headlens::measure_head_importance(planted.corpus(), options), Catch::Contains("stable_rho is 2"));
  }
}

namespace {

/// A model whose tokenizer is simple enough to work out by hand: every run of non-space bytes is cut into pieces
/// of at most 3 bytes (id: 1 + the piece's length), after a beginning-of-text token (id 0, empty span) when `bos`.
class fake_model final : public headlens::attention_model {
 public:
  fake_model(bool bos, bool causal, headlens::Index max_tokens) : bos_(bos), causal_(causal), max_(max_tokens) {}
  std::string description() const override { return "fake (1 layer x 2 heads)"; }
  headlens::Index layers() const noexcept override { return 1; }
  headlens::Index heads() const noexcept override { return 2; }
  headlens::Index max_tokens() const noexcept override { return max_; }
  bool causal() const noexcept override { return causal_; }
  std::vector<headlens::model_token> tokenize(std::string_view text) const override {
    std::vector<headlens::model_token> out;
    if (bos_) out.push_back({0, 0, 0});
    std::size_t i = 0;
    while (i < text.size()) {
      if (text[i] == ' ' || text[i] == '\n') {
        ++i;
        continue;
      }
      std::size_t e = i;
      while (e < text.size() && text[e] != ' ' && text[e] != '\n') ++e;
      for (std::size_t b = i; b < e; b += 3) {
        const std::size_t n = std::min<std::size_t>(3, e - b);
        out.push_back({std::int32_t(1 + n), b, b + n});
      }
      i = e;
    }
    return out;
  }
  std::string token_text(std::int32_t id) const override { return std::to_string(id); }
  headlens::Index vocab_size() const noexcept override { return 5; }
  headlens::tensor<float> attention(const std::vector<std::int32_t>&) const override {
    throw headlens::argument_error("headlens: fake model has no attention");
  }
  void observe_attention(const std::vector<std::int32_t>&, headlens::pattern_row_observer<float>&) const override {
    throw headlens::argument_error("headlens: fake model has no attention");
  }
  void set_threads(headlens::Index) override {}

 private:
  bool bos_, causal_;
  headlens::Index max_;
};

/// A document of the given words (space after each), cut into sentences at the given starts.
headlens::document make_document(const std::vector<std::string>& forms, const std::vector<headlens::doc_index>& starts,
                                 std::string id = "doc") {
  headlens::document doc;
  doc.id = std::move(id);
  for (const std::string& f : forms) {
    headlens::word w;
    w.form = f;
    doc.words.push_back(w);
  }
  for (std::size_t s = 0; s < starts.size(); ++s) {
    headlens::sentence sent;
    sent.begin = starts[s];
    sent.end = s + 1 < starts.size() ? starts[s + 1] : headlens::doc_index(forms.size());
    for (auto w = sent.begin; w < sent.end; ++w) doc.words[std::size_t(w)].sentence = headlens::doc_index(s);
    doc.sentences.push_back(sent);
  }
  if (!starts.empty()) doc.paragraphs.push_back({0, headlens::doc_index(starts.size())});
  return doc;
}

using words_t = std::vector<headlens::Index>;

}  // namespace

TEST_CASE("sentence units: each sentence alone, after the model's BOS, token_word by hand", "[importance][units]") {
  const fake_model model(/*bos=*/true, /*causal=*/true, 64);
  const std::vector<headlens::document> docs{
      make_document({"The", "cat", "sitting", "."}, {0, 3}, "a"),  // "sitting": sit|tin|g
      make_document({}, {}, "empty"), make_document({"Dogs", "bark"}, {0}, "b")};
  const headlens::ablation_units units = headlens::make_ablation_units(model, docs, {});
  CHECK(units.context == headlens::context_unit::sentence);
  CHECK(units.describe() == "sentence (each annotated sentence alone)");
  CHECK(units.documents == 2);
  CHECK(units.clipped == 0);
  CHECK(units.too_short == 0);  // "." alone is BOS + 1 token: 2 tokens, scored by a decoder
  REQUIRE(units.units.size() == 3);
  const headlens::ablation_unit& s0 = units.units[0];
  CHECK(s0.document == 0);
  CHECK(s0.sentence == 0);
  CHECK(s0.words == headlens::word_window{0, 3, 0, 3});
  CHECK(s0.ids == std::vector<std::int32_t>{0, 4, 4, 4, 4, 2});  // BOS, The, cat, sit, tin, g
  CHECK(s0.token_word == words_t{-1, 0, 1, 2, 2, 2});
  const headlens::ablation_unit& s1 = units.units[1];
  CHECK(s1.words == headlens::word_window{3, 4, 3, 4});
  CHECK(s1.ids == std::vector<std::int32_t>{0, 2});
  CHECK(s1.token_word == words_t{-1, 3});  // document-level word index
  const headlens::ablation_unit& s2 = units.units[2];
  CHECK(s2.document == 2);
  CHECK(s2.ids == std::vector<std::int32_t>{0, 4, 2, 4, 2});  // Dog|s, bar|k
  CHECK(s2.token_word == words_t{-1, 0, 0, 1, 1});
}

TEST_CASE("sentence units: clipping, one-token units of a decoder, no sentences", "[importance][units]") {
  const fake_model decoder(/*bos=*/false, /*causal=*/true, 3);
  const std::vector<headlens::document> docs{make_document({"ab", "cdefgh", "ijk", "l"}, {0, 3}),
                                             make_document({"xy", "z"}, {})};
  const headlens::ablation_units units = headlens::make_ablation_units(decoder, docs, {});
  // Sentence [0, 3): ab, cde, fgh, ijk: 4 tokens, clipped to 3; sentence [3, 4): "l" alone, one token: left out.
  // The second document has no sentences: one unit of all its words.
  CHECK(units.too_short == 1);
  CHECK(units.clipped == 1);
  CHECK(units.describe() ==
        "sentence (each annotated sentence alone; 1 of 2 clipped to 3 tokens; 1 too short to score, left out)");
  headlens::ablation_units first = units;  // a caller keeping only the second unit: nothing clipped is left
  first.units.erase(first.units.begin());
  CHECK(first.describe() == "sentence (each annotated sentence alone; 1 too short to score, left out)");
  REQUIRE(units.units.size() == 2);
  CHECK(units.units[0].clipped);
  CHECK(units.units[0].token_word == words_t{0, 1, 1});
  CHECK(units.units[1].document == 1);
  CHECK(units.units[1].sentence == -1);
  CHECK(units.units[1].token_word == words_t{0, 1});
  // An encoder scores one token: the one-word sentence stays.
  const fake_model encoder(false, /*causal=*/false, 3);
  CHECK(headlens::make_ablation_units(encoder, docs, {}).units.size() == 3);
}

TEST_CASE("window units: the windows classify reads, fitted to the context, token_word by hand", "[importance][units]") {
  // Ten words of one token each but "lengthier" (3 tokens); windows of 4 words every 2.
  const std::vector<headlens::document> docs{
      make_document({"w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "lengthier", "w9"}, {0, 5})};
  headlens::ablation_unit_options options;
  options.context = headlens::context_unit::window;
  options.window = 4;
  options.stride = 2;
  SECTION("every window fits") {
    const fake_model model(true, false, 64);
    const headlens::ablation_units units = headlens::make_ablation_units(model, docs, options);
    CHECK(units.describe() == "window (4 words, stride 2, fitted to 64 tokens)");
    REQUIRE(units.units.size() == 4);
    // make_windows: [0,4) owns 0-2, [2,6) owns 3-4, [4,8) owns 5-6, [6,10) owns 7-9 (the most central window).
    CHECK(units.units[0].words == headlens::word_window{0, 4, 0, 3});
    CHECK(units.units[1].words == headlens::word_window{2, 6, 3, 5});
    CHECK(units.units[2].words == headlens::word_window{4, 8, 5, 7});
    CHECK(units.units[3].words == headlens::word_window{6, 10, 7, 10});
    CHECK(units.units[1].token_word == words_t{-1, 2, 3, 4, 5});  // windows cross the sentence boundary
    CHECK(units.units[3].token_word == words_t{-1, 6, 7, 8, 8, 8, 9});
    CHECK(units.units[3].sentence == -1);
  }
  SECTION("a window too long for the model is narrowed around the words it owns") {
    const fake_model model(true, false, 6);
    const headlens::ablation_units units = headlens::make_ablation_units(model, docs, options);
    REQUIRE(units.units.size() == 4);
    // [6, 10) is BOS + 1 + 1 + 3 + 1 = 7 tokens; its owned words [7, 10) alone make 6: no context fits.
    CHECK(units.units[3].words == headlens::word_window{7, 10, 7, 10});
    CHECK(units.units[3].token_word == words_t{-1, 7, 8, 8, 8, 9});
    CHECK(units.clipped == 0);
  }
  const fake_model model(true, false, 3);
  REQUIRE_THROWS_WITH(headlens::make_ablation_units(model, docs, options), Catch::Contains("window is 4 words"));
}

TEST_CASE("units from the Llama fixture with the word vocabulary: its BOS first, words after", "[importance][units]") {
  headlens::attention_model_options mo;
  mo.tokenizer = std::string(HEADLENS_TEST_DATA_DIR) + "/models/words/vocab.json";
  const auto model = headlens::load_attention_model(std::string(HEADLENS_TEST_DATA_DIR) + "/models/llama", mo);
  std::vector<headlens::document> docs{make_document({"the", "cat", "sat", "on", "the", "mat", "."}, {0})};
  docs[0].words[5].space_after = false;  // "mat."
  const headlens::ablation_units units = headlens::make_ablation_units(*model, docs, {});
  REQUIRE(units.units.size() == 1);
  // vocab.json: the 3, cat 4, sat 5, on 6, mat 7, . 8; config.json's bos_token_id is 1.
  CHECK(units.units[0].ids == std::vector<std::int32_t>{1, 3, 4, 5, 6, 3, 7, 8});
  CHECK(units.units[0].token_word == words_t{-1, 0, 1, 2, 3, 4, 5, 6});
}

TEST_CASE("units from the GPT-2 fixture: <|endoftext|> first only when the model is loaded to add it",
          "[importance][units]") {
  std::vector<headlens::document> docs{make_document({"the", "cat", "sat", "on", "the", "mat", "."}, {0})};
  docs[0].words[5].space_after = false;
  const std::string dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models/gpt2";
  for (const bool bos : {false, true}) {
    INFO("add_bos " << bos);
    headlens::attention_model_options mo;
    mo.add_bos = bos;
    const auto model = headlens::load_attention_model(dir, mo);
    const headlens::ablation_units units = headlens::make_ablation_units(*model, docs, {});
    REQUIRE(units.units.size() == 1);
    const headlens::ablation_unit& u = units.units[0];
    const std::vector<headlens::model_token> plain = model->tokenize("the cat sat on the mat.");
    REQUIRE(u.ids == headlens::token_ids(plain));  // the sentence's text, as the model tokenizes it
    // config.json's bos_token_id is 299, <|endoftext|>; GPT-2 adds it only when asked.
    CHECK((u.ids.front() == 299) == bos);
    CHECK((u.token_word.front() == -1) == bos);
    // Words by hand: the [0,3) cat [4,7) sat [8,11) on [12,14) the [15,18) mat [19,22) . [22,23). A token belongs
    // to the word its bytes fall in; a token of spaces only (this small BPE has few merges) or of no bytes, to none.
    const std::size_t begins[] = {0, 4, 8, 12, 15, 19, 22}, ends[] = {3, 7, 11, 14, 18, 22, 23};
    REQUIRE(u.token_word.size() == plain.size());
    for (std::size_t t = 0; t < plain.size(); ++t) {
      headlens::Index expected = -1;
      for (std::size_t w = 0; w < 7; ++w) {
        if (plain[t].begin < ends[w] && plain[t].end > begins[w]) expected = headlens::Index(w);
      }
      INFO("token " << t << " [" << plain[t].begin << ", " << plain[t].end << ")");
      CHECK(u.token_word[t] == expected);
    }
    CHECK(u.token_word.back() == 6);
  }
}

TEST_CASE("units refuse an empty corpus and a corpus without a unit", "[importance][units]") {
  const fake_model decoder(false, true, 64);
  REQUIRE_THROWS_AS(headlens::make_ablation_units(decoder, {}, {}), headlens::argument_error);
  REQUIRE_THROWS_WITH(headlens::make_ablation_units(decoder, {}, {}), Catch::Contains("documents is empty"));
  // Two one-word sentences of one token each: a decoder scores nothing.
  const std::vector<headlens::document> docs{make_document({"a", "b"}, {0, 1})};
  REQUIRE_THROWS_WITH(headlens::make_ablation_units(decoder, docs, {}),
                      Catch::Contains("no sentence of the 1 document gives a unit of at least 2 tokens (2 too short)"));
  REQUIRE_THROWS_WITH(headlens::context_unit_from_string("paragraph"), Catch::Contains("context is 'paragraph'"));
  CHECK(headlens::context_unit_from_string("window") == headlens::context_unit::window);
  headlens::ablation_units none;
  REQUIRE_THROWS_WITH(headlens::make_ablation_corpus(none, [](const headlens::ablation_unit&) {
                        return std::unique_ptr<headlens::ablation_target>();
                      }),
                      Catch::Contains("units has no unit"));
}

TEST_CASE("make_ablation_corpus hands each unit to the factory, grouped by its document", "[importance][units]") {
  const fake_model model(true, true, 64);
  const std::vector<headlens::document> docs{make_document({"a", "b", "c", "d"}, {0, 2}),
                                             make_document({"e", "f"}, {0})};
  const headlens::ablation_units units = headlens::make_ablation_units(model, docs, {});
  const headlens::ablation_corpus corpus = headlens::make_ablation_corpus(units, [](const headlens::ablation_unit& u) {
    // Head 0 matters as much as the unit has tokens; head 1 not at all.
    return std::make_unique<planted_target>(std::vector<int>{2}, 1.0,
                                            std::vector<double>{double(u.ids.size()), 0.0}, std::vector<double>{0, 0});
  });
  CHECK(corpus.sequence_documents() == std::vector<std::size_t>{0, 0, 1});
  const headlens::head_importance_result r = headlens::measure_head_importance(corpus);
  // Document 0: sentences of 3 tokens (BOS a b) and 3 (BOS c d): 3; document 1: 3.
  CHECK(r.kinds[0].heads[0].per_document == std::vector<double>{3, 3});
  CHECK(r.kinds[0].heads[0].rank == 1);
}

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  for (char c : line) {
    if (c == ',') {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

headlens::head_importance_result reported() {
  headlens::head_importance_result r = headlens::measure_head_importance(four_documents().corpus());
  r.model = "planted (2 layers)";
  r.corpus = "four documents";
  r.context = "sentence (each annotated sentence alone)";
  return r;
}

}  // namespace

TEST_CASE("importance reports: table, Markdown and CSV say what was run, the interval, the stability", "[importance]") {
  const headlens::head_importance_result r = reported();
  std::ostringstream table, md, csv;
  headlens::write_table(table, r);
  headlens::write_markdown(md, r);
  headlens::write_csv(csv, r);
  const std::vector<std::string> t = lines_of(table.str());
  REQUIRE(t.size() >= 8 + 5);
  CHECK(t[0] == "head importance: planted (2 layers) on four documents");
  CHECK(t[1] == "context: sentence (each annotated sentence alone); 4 documents, 8 sequences, 32 tokens");
  CHECK_THAT(t[2], Catch::StartsWith("clean loss 2.219 (95% interval "));  // 2.21875
  CHECK_THAT(t[3], Catch::Contains("95% Student-t interval of the per-document means"));
  CHECK_THAT(t[4], Catch::StartsWith("zero ablation: ranking stable: split-half Spearman rho 1.00 >= 0.50"));
  CHECK_THAT(t[4], Catch::Contains("most important 1.1 ("));
  CHECK_THAT(t[5], Catch::StartsWith("mean ablation: ranking "));
  CHECK_THAT(t[7], Catch::Contains("zero change") && Catch::Contains("mean change"));
  // Head 0.0: zero change 0.5, rank 2; mean change 0.375, rank 2.
  CHECK_THAT(t[8], Catch::StartsWith("    0     0") && Catch::Contains(" 0.5  [") && Catch::Contains(" 0.375  ["));

  const std::vector<std::string> m = lines_of(md.str());
  CHECK(m[0] == "# Head importance");
  CHECK_THAT(md.str(), Catch::Contains("| layer | head | zero change | zero 95% interval | zero rank | mean change |"));
  CHECK_THAT(md.str(), Catch::Contains("\n| 1 | 1 | 0.9062 | ["));

  const std::vector<std::string> c = lines_of(csv.str());
  REQUIRE(c.size() == 1 + 2 * 5);
  CHECK(c[0] == "kind,layer,head,change,low,high,sd,documents,rank,ranking_stable,split_half_rho,clean_loss");
  const std::vector<std::string> row = csv_fields(c[1]);
  REQUIRE(row.size() == 12);
  CHECK(row[0] == "zero");
  CHECK(row[1] == "0");
  CHECK(row[2] == "0");
  CHECK(std::stod(row[3]) == 0.5);
  CHECK(std::stod(row[4]) == Approx(r.kinds[0].heads[0].change.low).epsilon(1e-9));
  CHECK(std::stod(row[5]) == Approx(r.kinds[0].heads[0].change.high).epsilon(1e-9));
  CHECK(row[7] == "4");
  CHECK(row[8] == "2");
  CHECK(row[9] == "true");
  CHECK(std::stod(row[11]) == 2.21875);
  CHECK(csv_fields(c[6])[0] == "mean");
}

TEST_CASE("importance JSON reads back exactly, NaN as null, and names a malformed field", "[importance]") {
  const headlens::head_importance_result r = reported();
  const headlens::head_importance_result back =
      headlens::head_importance_from_json(nlohmann::json::parse(headlens::head_importance_to_json(r).dump()));
  CHECK(back.model == r.model);
  CHECK(back.context == r.context);
  CHECK(back.heads_per_layer == r.heads_per_layer);
  CHECK(back.documents == r.documents);
  CHECK(back.sequences == r.sequences);
  CHECK(back.tokens == r.tokens);
  CHECK(back.clean.low == r.clean.low);
  CHECK(back.clean_per_document == r.clean_per_document);
  REQUIRE(back.kinds.size() == 2);
  for (std::size_t k = 0; k < 2; ++k) {
    CHECK(back.kinds[k].kind == r.kinds[k].kind);
    CHECK(back.kinds[k].stability.rho == r.kinds[k].stability.rho);
    CHECK(back.kinds[k].stability.note == r.kinds[k].stability.note);
    CHECK(back.kinds[k].stability.stable == r.kinds[k].stability.stable);
    REQUIRE(back.kinds[k].heads.size() == 5);
    for (std::size_t h = 0; h < 5; ++h) {
      CHECK(back.kinds[k].heads[h].head == r.kinds[k].heads[h].head);
      CHECK(back.kinds[k].heads[h].rank == r.kinds[k].heads[h].rank);
      CHECK(back.kinds[k].heads[h].change.high == r.kinds[k].heads[h].change.high);  // exact
      CHECK(back.kinds[k].heads[h].per_document == r.kinds[k].heads[h].per_document);
    }
  }
  // One document: no spread, written as null, read back as NaN.
  planted_corpus one = four_documents();
  one.zero.resize(1);
  one.mean.resize(1);
  const headlens::head_importance_result single = headlens::measure_head_importance(one.corpus());
  const nlohmann::json j = headlens::head_importance_to_json(single, /*per_document=*/false);
  CHECK(j["clean"]["sd"].is_null());
  CHECK_FALSE(j["kinds"][0]["heads"][0].contains("per_document"));
  const headlens::head_importance_result single_back = headlens::head_importance_from_json(j);
  CHECK(std::isnan(single_back.kinds[0].heads[0].change.low));
  CHECK(std::isnan(single_back.kinds[0].stability.rho));

  nlohmann::json bad = headlens::head_importance_to_json(r);
  bad["schema"] = "headlens.head_report";
  REQUIRE_THROWS_WITH(headlens::head_importance_from_json(bad), Catch::Contains("schema is \"headlens.head_report\""));
  bad = headlens::head_importance_to_json(r);
  bad["kinds"][1]["kind"] = "half";
  REQUIRE_THROWS_AS(headlens::head_importance_from_json(bad), headlens::argument_error);
  REQUIRE_THROWS_WITH(headlens::head_importance_from_json(bad), Catch::Contains("kinds[1].kind is \"half\""));
  bad = headlens::head_importance_to_json(r);
  bad["kinds"][0]["heads"][3]["change"].erase("low");
  REQUIRE_THROWS_WITH(headlens::head_importance_from_json(bad),
                      Catch::Contains("kinds[0].heads[3].change has no \"low\""));
  bad = headlens::head_importance_to_json(r);
  bad["tokens"] = -3;
  REQUIRE_THROWS_WITH(headlens::head_importance_from_json(bad), Catch::Contains("document.tokens is -3"));
  REQUIRE_THROWS_WITH(headlens::head_importance_from_json(nlohmann::json::array()),
                      Catch::Contains("document has no \"schema\""));
}

}  // namespace test_head_importance
