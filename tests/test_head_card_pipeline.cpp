// Head cards from the real pipeline: the tiny GPT-2 checkpoint of tests/data/models (and USE-lite when `make models`
// has fetched it) classified over the bundled GUM sample, turned into a card whose provenance hashes the real files,
// written, read back and rendered. The hashes are checked against sha256_hex of the bytes read here (SHA-256 itself
// is checked against FIPS 180-2 in test_head_card.cpp); the card's heads against the verdicts the policy gave.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "headlens/analysis/conllu.hpp"
#include "headlens/analysis/head_analysis.hpp"
#include "headlens/analysis/head_card.hpp"
#include "headlens/analysis/head_card_html.hpp"
#include "headlens/analysis/head_card_markdown.hpp"
#include "headlens/analysis/policies.hpp"
#include "headlens/analysis/policy_parameters.hpp"
#include "headlens/analysis/report.hpp"
#include "headlens/detail/sha256.hpp"
#include "headlens/models/attention_model.hpp"
#if __has_include(<nlohmann/json.hpp>)
#include "headlens/analysis/head_card_json.hpp"
#define HEADLENS_TEST_CARD_PIPELINE_JSON 1
#endif

namespace test_head_card_pipeline {

namespace {

const std::string models_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models";
const std::string gum_sample = std::string(HEADLENS_TEST_DATA_DIR) + "/gum/gum_cc_by_sample.conllu";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string use_lite_dir() {
  if (const char* dir = std::getenv("HEADLENS_USE_LITE_DIR"); dir != nullptr && *dir != '\0') return dir;
  const std::string cached =
      std::string(HEADLENS_TEST_DATA_DIR) + "/../../build/models/model-embeddings-en-0.2.0/package";
  return std::ifstream(cached + "/dist/model.json") ? cached : std::string();
}

/// What `headlens classify --card` would write: the annotated policy's verdicts over the GUM sample, with the model
/// and corpus files hashed.
headlens::head_card classify_card(const headlens::attention_model& model, const std::string& name,
                                  const std::vector<std::pair<std::string, std::string>>& files, headlens::Index window) {
  const std::vector<headlens::document> docs = headlens::read_conllu(gum_sample);
  headlens::analysis_options options;
  options.window = window;
  const headlens::head_analysis analysis(model, docs, options);
  const headlens::head_measurements measured = analysis.measure();
  const headlens::head_report report = headlens::make_report(
      headlens::classify_heads(headlens::annotated_policy(), measured.features.evidence()), "annotated");
  headlens::card_provenance provenance;
  provenance.policy = headlens::annotated_policy::name();
  provenance.policy_parameters = headlens::policy_parameters(headlens::annotated_policy());
  for (const auto& [role, path] : files) provenance.files.push_back(headlens::hash_card_file(role, path));
  provenance.files.push_back(headlens::hash_card_file("corpus", gum_sample));
  provenance.analysis = {{"context", "window"}, {"window", std::to_string(window)},
                         {"stride", std::to_string(analysis.window() / 2)}};
  headlens::head_card card = headlens::make_head_card(report, headlens::card_model_of(model, name), provenance);
  // The card holds every verdict of the report, top evidence cut to 3.
  REQUIRE(card.heads.size() == report.heads.size());
  REQUIRE(std::int64_t(card.heads.size()) == card.model.total_heads());
  for (std::size_t i = 0; i < card.heads.size(); ++i) {
    CHECK(card.heads[i].verdict.label == report.heads[i].label);
    CHECK(card.heads[i].verdict.confidence == report.heads[i].confidence);
    CHECK(card.heads[i].verdict.evidence.size() == std::min<std::size_t>(3, report.heads[i].evidence.size()));
  }
  for (const headlens::card_file& f : card.provenance.files) {
    const std::string bytes = slurp(f.path);
    CHECK(f.bytes == bytes.size());
    CHECK(f.sha256 == headlens::detail::sha256_hex(bytes));
  }
  return card;
}

void check_card_round_trip(const headlens::head_card& card) {
  std::ostringstream md, html;
  headlens::write_head_card_markdown(md, card);
  headlens::write_head_card_html(html, card);
  CHECK(md.str().find("not causally checked") != std::string::npos);
  CHECK(md.str().find("- Importance: not measured") != std::string::npos);
  CHECK(html.str().find("<td class=\"hl-unchecked\">not causally checked</td>") != std::string::npos);
#ifdef HEADLENS_TEST_CARD_PIPELINE_JSON
  const std::string text = headlens::head_card_json_text(card);
  const headlens::head_card back = headlens::parse_head_card(text, card.model.name + ".json");
  CHECK(headlens::head_card_json_text(back) == text);
  if (const char* dir = std::getenv("HEADLENS_WRITE_CARDS"); dir != nullptr && *dir != '\0') {
    std::ofstream(std::string(dir) + "/" + card.model.name + ".head-card.json", std::ios::binary) << text;
    std::ofstream(std::string(dir) + "/" + card.model.name + ".head-card.md", std::ios::binary) << md.str();
  }
#endif
}

}  // namespace

TEST_CASE("a head card of the tiny GPT-2 checkpoint over the GUM sample", "[head_card][pipeline]") {
  const auto model = headlens::load_attention_model(models_dir + "/gpt2");
  const headlens::head_card card =
      classify_card(*model, "tiny-gpt2",
                    {{"model", models_dir + "/gpt2/model.safetensors"},
                     {"config", models_dir + "/gpt2/config.json"},
                     {"tokenizer", models_dir + "/gpt2/vocab.json"},
                     {"tokenizer", models_dir + "/gpt2/merges.txt"}},
                    16);
  CHECK(card.model.causal);
  CHECK(card.model.layers() == model->layers());
  check_card_round_trip(card);
}

TEST_CASE("a head card of USE-lite over the GUM sample", "[head_card][pipeline]") {
  const std::string dir = use_lite_dir();
  if (dir.empty()) {
    WARN("SKIPPED: no USE-lite package (run make models, or set HEADLENS_USE_LITE_DIR)");
    return;
  }
  const auto model = headlens::load_attention_model(dir);
  std::vector<std::pair<std::string, std::string>> files = {{"model", dir + "/dist/model.json"},
                                                             {"tokenizer", dir + "/dist/vocab.json"}};
  for (int s = 1; s <= 7; ++s) files.push_back({"weights", dir + "/dist/group1-shard" + std::to_string(s) + "of7"});
  const headlens::head_card card = classify_card(*model, "use-lite", files, 64);
  CHECK_FALSE(card.model.causal);
  // `sha256sum` of the package's files (the package tools/fetch-use-lite.sh fetches and checks): the last shard is
  // 2.7 MB, read in three chunks.
  CHECK(card.provenance.files[0].sha256 == "507d11df18b070f99e0ad650b9a4e6534a4cfb05040127e8ce579f00c8fa3b53");
  CHECK(card.provenance.files[8].sha256 == "a29a5e08ee3afd839250b9187b89f1d3163749b5b1807bb175341a16c6012689");
  check_card_round_trip(card);
}

}  // namespace test_head_card_pipeline
