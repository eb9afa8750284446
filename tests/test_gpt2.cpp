// GPT-2 in Hugging Face's layout against tests/data/models/gpt2/ (tools/make_model_fixtures.py): logits and every
// head's attention equal a plain-PyTorch float64 reference of GPT2LMHeadModel; the tokenizer's ids are the ids the
// goldens were computed for; each checkpoint error names the tensor or key at fault.

#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headlens/hooks/hook_registry.hpp"
#include "headlens/models/gpt2.hpp"
#include "headlens/models/hugging_face.hpp"
#include "headlens/text/bpe.hpp"
#include "support/model_fixtures.hpp"

namespace test_gpt2 {

namespace {

using Catch::Matchers::Contains;
const std::string gpt2_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models/gpt2";
constexpr int sequence_count = 4;

const headlens::safetensors_file& checkpoint() {
  static const headlens::safetensors_file file(gpt2_dir + "/model.safetensors");
  return file;
}

headlens::gpt2_config config() { return headlens::gpt2_config::from_json_file(gpt2_dir + "/config.json"); }

}  // namespace

TEMPLATE_TEST_CASE("gpt2: logits and every head's attention equal the PyTorch reference", "[gpt2]", float, double) {
  const headlens::transformer<TestType> model = headlens::load_gpt2<TestType>(gpt2_dir);
  REQUIRE(model.layer_count() == 2);
  REQUIRE(model.vocab_size() == 300);
  REQUIRE(model.d_model() == 32);
  REQUIRE(model.max_positions() == 48);
  REQUIRE(model.tied_embeddings());
  for (int k = 0; k < sequence_count; ++k) {
    INFO("sequence " << k);
    const auto g = model_fixtures::read_golden<TestType>(gpt2_dir, k);
    const headlens::Index t = headlens::Index(g.ids.size());
    model_fixtures::pattern_recorder<TestType> recorder(2, 4, t);
    const headlens::matrix<TestType> logits = model.forward(g.ids, {}, recorder.registry);
    CHECK(recorder.calls == 2 * 4);
    CHECK(model_fixtures::max_abs_diff(logits, g.logits) < model_fixtures::logits_tolerance<TestType>());
    CHECK(model_fixtures::max_abs_diff(recorder.maps.data, g.attention.data) < model_fixtures::attention_tolerance<TestType>());
    // Without hooks the kernel streams; same logits.
    const headlens::matrix<TestType> plain = model.forward(g.ids);
    CHECK(model_fixtures::max_abs_diff(plain, g.logits) < model_fixtures::logits_tolerance<TestType>());
  }
}

TEST_CASE("gpt2: the tokenizer gives the ids the goldens were computed for", "[gpt2]") {
  const auto tokenizer = headlens::byte_level_bpe::from_files(gpt2_dir + "/vocab.json", gpt2_dir + "/merges.txt");
  std::ifstream in(gpt2_dir + "/tokenizer_cases.json");
  const auto cases = nlohmann::json::parse(in);
  for (int k = 0; k < 2; ++k) {
    const auto g = model_fixtures::read_golden<float>(gpt2_dir, k);
    CHECK(tokenizer.encode_ids(cases[std::size_t(k)]["text"].get<std::string>()) == g.ids);
  }
}

TEST_CASE("gpt2: hooks see every layer and head, and an intervention changes the logits", "[gpt2]") {
  const auto model = headlens::load_gpt2<float>(gpt2_dir);
  const auto g = model_fixtures::read_golden<float>(gpt2_dir, 0);
  headlens::hook_registry<float> hooks;
  std::vector<std::pair<int, int>> seen;
  hooks.add({-1, -1, {headlens::hook_point::z}}, [&](const headlens::hook_context& ctx, headlens::matrix_view<float> z) {
    seen.emplace_back(ctx.layer, ctx.head);
    if (ctx.layer == 1 && ctx.head == 2) z.setZero();
  });
  const auto ablated = model.forward(g.ids, {}, hooks);
  REQUIRE(seen.size() == 8);
  CHECK(seen.front() == std::make_pair(0, 0));
  CHECK(seen.back() == std::make_pair(1, 3));
  CHECK(model_fixtures::max_abs_diff(ablated, g.logits) > 1e-2);
  // The same ablation through head_mask skips the head's work and gives the same logits.
  headlens::forward_options<float> options;
  // head_mask applies to every layer, so compare against a hook that zeroes head 2 of both layers.
  options.head_mask = {true, true, false, true};
  headlens::hook_registry<float> zero_both;
  zero_both.add({-1, 2, {headlens::hook_point::z}}, [](const headlens::hook_context&, headlens::matrix_view<float> z) {
    z.setZero();
  });
  CHECK(model_fixtures::max_abs_diff(model.forward(g.ids, options), model.forward(g.ids, {}, zero_both)) < 1e-5);
}

TEST_CASE("gpt2: the transformer. prefix, F16 and BF16 checkpoints load", "[gpt2]") {
  const auto g = model_fixtures::read_golden<float>(gpt2_dir, 0);
  const auto reference = headlens::load_gpt2<float>(config(), checkpoint()).forward(g.ids);
  const auto prefixed = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    e.name = "transformer." + e.name;
  });
  CHECK(headlens::load_gpt2<float>(config(), prefixed).forward(g.ids) == reference);
  for (const auto type : {headlens::dtype::float16, headlens::dtype::bfloat16}) {
    const auto narrow = model_fixtures::rewrite(checkpoint(), [type](model_fixtures::rewrite_entry& e) {
      e.stored = type;
    });
    const auto logits = headlens::load_gpt2<float>(config(), narrow).forward(g.ids);
    const double err = model_fixtures::max_abs_diff(logits, reference);
    CHECK(err > 0);
    CHECK(err < (type == headlens::dtype::float16 ? 0.02 : 0.3));
  }
  // An untied head is read from lm_head.weight, outside the prefix.
  auto untied_config = config();
  untied_config.tie_word_embeddings = false;
  const auto with_head = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    if (e.name == "wte.weight") e.name = "lm_head.weight";
  });
  REQUIRE_THROWS_WITH(headlens::load_gpt2<float>(untied_config, with_head), Contains("missing tensor 'wte.weight'"));
}

TEST_CASE("gpt2: checkpoint errors name the tensor and the expected shape", "[gpt2]") {
  const auto missing = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    e.keep = e.name != "h.1.mlp.c_fc.weight";
  });
  REQUIRE_THROWS_AS(headlens::load_gpt2<float>(config(), missing), headlens::format_error);
  REQUIRE_THROWS_WITH(headlens::load_gpt2<float>(config(), missing),
                      "headlens: edited.safetensors: missing tensor 'h.1.mlp.c_fc.weight', expected shape [32, 128] "
                      "(GPT-2 checkpoint)");

  const auto reshaped = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    if (e.name == "h.0.attn.c_attn.weight") {
      e.values.shape = {96, 32};  // nn.Linear's [out, in] instead of Conv1D's [in, out]
    }
  });
  REQUIRE_THROWS_AS(headlens::load_gpt2<double>(config(), reshaped), headlens::shape_error);
  REQUIRE_THROWS_WITH(headlens::load_gpt2<double>(config(), reshaped),
                      "headlens: tensor 'h.0.attn.c_attn.weight' in edited.safetensors has shape [96, 32], expected "
                      "[32, 96]");

  const auto integers = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    if (e.name == "ln_f.bias") e.stored = headlens::dtype::int32;
  });
  REQUIRE_THROWS_AS(headlens::load_gpt2<float>(config(), integers), headlens::format_error);
  REQUIRE_THROWS_WITH(headlens::load_gpt2<float>(config(), integers),
                      Contains("tensor 'ln_f.bias' has dtype I32, expected F32, F16, BF16 or F64"));

  auto bigger = config();
  bigger.n_layer = 3;
  REQUIRE_THROWS_WITH(headlens::load_gpt2<float>(bigger, checkpoint()),
                      Contains("missing tensor 'h.2.ln_1.weight', expected shape [32]"));
}

TEST_CASE("gpt2: config.json errors name the key", "[gpt2]") {
  using headlens::gpt2_config;
  const std::string base = R"("vocab_size": 300, "n_positions": 48, "n_embd": 32, "n_layer": 2)";
  CHECK(gpt2_config::from_json_text("{" + base + R"(, "n_head": 4})").inner() == 128);
  REQUIRE_THROWS_WITH(gpt2_config::from_json_text("{" + base + "}"),
                      "headlens: <config.json>: \"n_head\" is missing, expected a positive integer");
  REQUIRE_THROWS_WITH(gpt2_config::from_json_text("{" + base + R"(, "n_head": 5})"),
                      Contains("\"n_embd\" is 32, expected a multiple of n_head = 5"));
  REQUIRE_THROWS_WITH(gpt2_config::from_json_text("{" + base + R"(, "n_head": 4, "activation_function": "relu"})"),
                      Contains("\"activation_function\" is \"relu\""));
  REQUIRE_THROWS_WITH(gpt2_config::from_json_text("{" + base + R"(, "n_head": "4"})"),
                      Contains("\"n_head\" is \"4\", expected a positive integer"));
  REQUIRE_THROWS_AS(gpt2_config::from_json_text("{" + base), headlens::format_error);
  REQUIRE_THROWS_AS(headlens::load_gpt2<float>(gpt2_dir + "/nowhere"), headlens::io_error);
}

TEST_CASE("gpt2: token ids outside the vocabulary and sequences past n_positions are argument errors", "[gpt2]") {
  const auto model = headlens::load_gpt2<float>(config(), checkpoint());
  REQUIRE_THROWS_WITH(model.forward({1, 300}),
                      "headlens: token id 300 at position 1 is out of range, expected 0 <= id < vocab_size = 300");
  REQUIRE_THROWS_WITH(model.forward(std::vector<std::int32_t>(49, 1)),
                      "headlens: ids has 49 tokens, expected at most max_positions = 48");
  REQUIRE_THROWS_WITH(model.forward({}), "headlens: ids is empty, expected at least one token");
}

TEST_CASE("gpt2: decoding in steps over a cache gives the rows of one forward", "[gpt2]") {
  const auto model = headlens::load_gpt2<float>(config(), checkpoint());
  const auto g = model_fixtures::read_golden<float>(gpt2_dir, 3);  // all 48 positions
  headlens::transformer_cache<float> cache;
  headlens::matrix<float> logits(g.logits.rows(), g.logits.cols());
  headlens::Index done = 0;
  for (const headlens::Index n : {5, 1, 20, 22}) {
    const std::vector<std::int32_t> step(g.ids.begin() + done, g.ids.begin() + done + n);
    logits.middleRows(done, n) = model.forward_step(step, cache);
    done += n;
    CHECK(cache.length() == done);
  }
  REQUIRE(done == 48);
  CHECK(model_fixtures::max_abs_diff(logits, g.logits) < 1e-4);
  REQUIRE_THROWS_WITH(model.forward_step({1}, cache),
                      "headlens: ids has 1 tokens after 48 cached, expected at most max_positions = 48 in all");
  CHECK(cache.length() == 48);
  cache.clear();
  CHECK(model_fixtures::max_abs_diff(model.forward_step(g.ids, cache), g.logits) < 1e-4);
}

TEST_CASE("gpt2: load_pretrained finds the family and the tokenizer", "[gpt2]") {
  const auto p = headlens::load_pretrained<float>(gpt2_dir);
  CHECK(p.family == headlens::model_family::gpt2);
  REQUIRE(p.tokenizer.has_value());
  const auto g = model_fixtures::read_golden<float>(gpt2_dir, 0);
  std::ifstream in(gpt2_dir + "/tokenizer_cases.json");
  const auto text = nlohmann::json::parse(in)[0]["text"].get<std::string>();
  CHECK(model_fixtures::max_abs_diff(p.model.forward(p.tokenizer->encode_ids(text)), g.logits) < 1e-4);

  const auto llama = headlens::load_pretrained<float>(std::string(HEADLENS_TEST_DATA_DIR) + "/models/llama");
  CHECK(llama.family == headlens::model_family::llama);
  CHECK_FALSE(llama.tokenizer.has_value());
  REQUIRE_THROWS_WITH(headlens::detect_model_family(std::string(HEADLENS_TEST_DATA_DIR) + "/models/words"),
                      Contains("models/words/config.json"));
}

}  // namespace test_gpt2
