// models/attention_model.hpp on the tiny GPT-2 and Llama checkpoints of tests/data/models
// (tools/make_model_fixtures.py): the maps equal the PyTorch goldens, tokens and byte spans equal the reference
// tokenizer's (tokenizer_cases.json, written by Python's `re`), the Llama BOS rule, and the errors for what is not a
// model or has no tokenizer. (USE-lite through the same interface: tests/cli/run_use_lite.cmake.)

#include <catch2/catch.hpp>

#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headlens/models/attention_model.hpp"
#include "support/model_fixtures.hpp"

namespace test_attention_model {

namespace {

using Catch::Matchers::Contains;
const std::string models_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models";
const std::string gpt2_dir = models_dir + "/gpt2";
const std::string llama_dir = models_dir + "/llama";
const std::string words_vocab = models_dir + "/words/vocab.json";

headlens::attention_model_options with_tokenizer(const std::string& path) {
  headlens::attention_model_options options;
  options.tokenizer = path;
  return options;
}

void check_golden_maps(const headlens::attention_model& model, const std::string& dir, int sequences) {
  for (int k = 0; k < sequences; ++k) {
    INFO("sequence " << k);
    const auto g = model_fixtures::read_golden<float>(dir, k);
    const headlens::tensor<float> maps = model.attention(g.ids);
    const auto T = static_cast<headlens::Index>(g.ids.size());
    CHECK(maps.shape == std::vector<headlens::Index>{2, 4, T, T});
    CHECK(model_fixtures::max_abs_diff(maps.data, g.attention.data) < model_fixtures::attention_tolerance<float>());
  }
}

/// A scratch directory holding a copy of the Llama checkpoint's config.json, and nothing or `extra` files beside it.
std::string scratch_model_dir(const std::string& name, const std::vector<std::string>& extra) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("headlens_attention_model_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(llama_dir + "/config.json", dir / "config.json");
  fs::copy_file(llama_dir + "/model.safetensors", dir / "model.safetensors");
  for (const std::string& file : extra) std::ofstream(dir / file) << "{}";
  return dir.string();
}

}  // namespace

TEST_CASE("attention_model: GPT-2 maps, tokens and spans equal the references", "[attention_model]") {
  const auto model = headlens::load_attention_model(gpt2_dir);
  CHECK(model->description() == "GPT-2 (2 layers x 4 heads, byte-level BPE)");
  CHECK(model->layers() == 2);
  CHECK(model->heads() == 4);
  CHECK(model->max_tokens() == 48);  // n_positions
  CHECK(model->causal());
  check_golden_maps(*model, gpt2_dir, 4);

  std::ifstream in(gpt2_dir + "/tokenizer_cases.json");
  const auto cases = nlohmann::json::parse(in);
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    INFO("text " << text);
    const std::vector<headlens::model_token> tokens = model->tokenize(text);  // no BOS for GPT-2
    REQUIRE(tokens.size() == c.at("ids").size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      CHECK(tokens[i].id == c.at("ids")[i].get<std::int32_t>());
      CHECK(tokens[i].begin == c.at("offsets")[i][0].get<std::size_t>());
      CHECK(tokens[i].end == c.at("offsets")[i][1].get<std::size_t>());
      CHECK(model->token_text(tokens[i].id) == c.at("pieces")[i].get<std::string>());
    }
  }
  // The first case's ids are the first golden's: text to maps, end to end.
  const auto g = model_fixtures::read_golden<float>(gpt2_dir, 0);
  CHECK(headlens::token_ids(model->tokenize(cases[0].at("text").get<std::string>())) == g.ids);

  // The BOS rule can be asked for: GPT-2's bos_token_id is 299 (<|endoftext|>), with an empty span.
  headlens::attention_model_options bos;
  bos.add_bos = true;
  const auto with_bos = headlens::load_attention_model(gpt2_dir, bos);
  const std::vector<headlens::model_token> tokens = with_bos->tokenize("The");
  REQUIRE(tokens.size() == 2);
  CHECK((tokens[0].id == 299 && tokens[0].begin == 0 && tokens[0].end == 0));
}

TEST_CASE("attention_model: Llama with a word vocabulary, BOS first", "[attention_model]") {
  const auto model = headlens::load_attention_model(llama_dir, with_tokenizer(words_vocab));
  CHECK(model->description() == "Llama (2 layers x 4 heads, word vocabulary)");
  CHECK(model->max_tokens() == 128);  // max_position_embeddings
  check_golden_maps(*model, llama_dir, 3);
  CHECK(model->vocab_size() == 300);
  for (int k = 0; k < 3; ++k) {  // PyTorch's logits of the same ids
    INFO("sequence " << k);
    const auto g = model_fixtures::read_golden<float>(llama_dir, k);
    const headlens::matrix<float> logits = model->logits(g.ids);
    REQUIRE(logits.rows() == g.logits.rows());
    REQUIRE(logits.cols() == g.logits.cols());
    CHECK((logits - g.logits).cwiseAbs().maxCoeff() <
          model_fixtures::logits_tolerance<float>() * std::max(1.0f, g.logits.cwiseAbs().maxCoeff()));
  }
  REQUIRE_THROWS_WITH(model->logits({}), Contains("ids is empty"));
  // bos_token_id 1 (an empty span), then "the" 3 [0, 3), "cat" 4 [4, 7), "sat" 5 [8, 11), "." 8 [11, 12).
  const std::vector<headlens::model_token> tokens = model->tokenize("the cat sat.");
  REQUIRE(tokens.size() == 5);
  const std::vector<std::array<std::size_t, 3>> expected = {{1, 0, 0}, {3, 0, 3}, {4, 4, 7}, {5, 8, 11}, {8, 11, 12}};
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    CHECK(std::size_t(tokens[i].id) == expected[i][0]);
    CHECK(tokens[i].begin == expected[i][1]);
    CHECK(tokens[i].end == expected[i][2]);
  }
  CHECK(model->token_text(4) == "cat");
  CHECK(model->token_text(250) == "#250");  // in the model's vocabulary, not the word list's
  REQUIRE_THROWS_WITH(model->token_text(300),
                      Contains("token id 300 is out of range, expected 0 <= id < vocab_size = 300"));
  // Unknown words map to [UNK] (id 0).
  CHECK(headlens::token_ids(model->tokenize("the dog")) == std::vector<std::int32_t>{1, 3, 0});

  headlens::attention_model_options no_bos = with_tokenizer(models_dir + "/words");  // the folder works too
  no_bos.add_bos = false;
  CHECK(headlens::token_ids(headlens::load_attention_model(llama_dir, no_bos)->tokenize("the cat")) ==
        std::vector<std::int32_t>{3, 4});
  // GPT-2's BPE as a Llama tokenizer.
  CHECK(headlens::load_attention_model(llama_dir, with_tokenizer(gpt2_dir))->description() ==
        "Llama (2 layers x 4 heads, byte-level BPE)");
}

TEST_CASE("attention_model: sequences it cannot take", "[attention_model]") {
  const auto model = headlens::load_attention_model(llama_dir, with_tokenizer(words_vocab));
  REQUIRE_THROWS_AS(model->attention({}), headlens::argument_error);
  REQUIRE_THROWS_WITH(model->attention({}), Contains("ids is empty, expected at least one token"));
  REQUIRE_THROWS_WITH(model->attention(std::vector<std::int32_t>(129, 3)),
                      Contains("ids has 129 tokens, expected at most the model's max_tokens = 128"));
  REQUIRE_THROWS_WITH(model->attention({3, 300}), Contains("token id 300 at position 1 is out of range"));
  const auto gpt2 = headlens::load_attention_model(gpt2_dir);
  REQUIRE_THROWS_WITH(gpt2->attention(std::vector<std::int32_t>(49, 3)),
                      Contains("ids has 49 tokens, expected at most the model's max_tokens = 48"));

  struct ignore final : headlens::pattern_row_observer<float> {
    void operator()(const headlens::pattern_rows<float>&) override {}
  } observer;
  REQUIRE_THROWS_WITH(model->observe_attention_batch({}, {}), Contains("batch is empty, expected at least one"));
  REQUIRE_THROWS_WITH(model->observe_attention_batch({{3, 4}, {5}}, {&observer}),
                      Contains("observers has 1 entries, expected one per sequence = 2"));
  REQUIRE_THROWS_WITH(model->observe_attention_batch({{3, 4}, {}}, {&observer, &observer}),
                      Contains("batch[1]: ids is empty"));
  REQUIRE_THROWS_WITH(model->observe_attention_batch({{3}, std::vector<std::int32_t>(129, 3)}, {&observer, &observer}),
                      Contains("batch[1]: ids has 129 tokens, expected at most the model's max_tokens = 128"));
  REQUIRE_THROWS_WITH(model->observe_attention_batch({{3}, {3, 300}}, {&observer, &observer}),
                      Contains("batch[1]: token id 300 at position 1 is out of range"));
  REQUIRE_THROWS_WITH(model->observe_attention_batch({{3}}, {nullptr}), Contains("observers[0] is null"));
}

TEST_CASE("attention_model: paths that are not a model or have no tokenizer", "[attention_model]") {
  REQUIRE_THROWS_AS(headlens::load_attention_model(models_dir), headlens::io_error);
  REQUIRE_THROWS_WITH(headlens::load_attention_model(models_dir),
                      Contains("no model in " + models_dir + ": expected a Hugging Face directory"));
  REQUIRE_THROWS_WITH(headlens::load_attention_model(models_dir + "/nowhere"),
                      Contains("model " + models_dir + "/nowhere is not a directory (nothing there)"));
  REQUIRE_THROWS_WITH(headlens::load_attention_model(words_vocab),
                      Contains("model " + words_vocab + " is not a directory (a file)"));
  REQUIRE_THROWS_AS(headlens::load_attention_model(llama_dir), headlens::io_error);
  REQUIRE_THROWS_WITH(
      headlens::load_attention_model(llama_dir),
      Contains("model directory " + llama_dir + " has no tokenizer; expected tokenizer.json, tokenizer.model"));
  REQUIRE_THROWS_WITH(headlens::load_attention_model(llama_dir, with_tokenizer(models_dir + "/nowhere")),
                      Contains("tokenizer " + models_dir + "/nowhere does not exist"));
  const std::string hf_tokenizer = scratch_model_dir("tokenizer_json", {"tokenizer.json", "tokenizer.model"});
  // tokenizer.json comes first (as in the transformers library); "{}" is not one.
  REQUIRE_THROWS_AS(headlens::load_attention_model(hf_tokenizer), headlens::format_error);
  REQUIRE_THROWS_WITH(headlens::load_attention_model(hf_tokenizer), Contains(hf_tokenizer + "/tokenizer.json"));
  // A malformed word vocabulary names the file.
  const std::string bad_vocab = scratch_model_dir("bad_vocab", {"vocab.json"});
  { std::ofstream(bad_vocab + "/vocab.json") << "[1, 2]"; }
  REQUIRE_THROWS_WITH(headlens::load_attention_model(bad_vocab), Contains(bad_vocab + "/vocab.json"));
  std::filesystem::remove_all(hf_tokenizer);
  std::filesystem::remove_all(bad_vocab);
}

}  // namespace test_attention_model
