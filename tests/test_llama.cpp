// Llama in Hugging Face's layout against tests/data/models/llama/ (tools/make_model_fixtures.py): logits and every
// head's attention equal a plain-PyTorch float64 reference of LlamaForCausalLM (RMSNorm, rotary with rope_theta
// 5000, GQA 4 heads over 2 kv heads, SwiGLU, untied head); each checkpoint error names the tensor or key at fault.

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headlens/hooks/hook_registry.hpp"
#include "headlens/models/llama.hpp"
#include "support/model_fixtures.hpp"

namespace test_llama {

namespace {

using Catch::Matchers::Contains;
const std::string llama_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models/llama";
constexpr int sequence_count = 3;

const headlens::safetensors_file& checkpoint() {
  static const headlens::safetensors_file file(llama_dir + "/model.safetensors");
  return file;
}

headlens::llama_config config() { return headlens::llama_config::from_json_file(llama_dir + "/config.json"); }

}  // namespace

TEMPLATE_TEST_CASE("llama: logits and every head's attention equal the PyTorch reference", "[llama]", float, double) {
  const headlens::transformer<TestType> model = headlens::load_llama<TestType>(llama_dir);
  REQUIRE(model.layer_count() == 2);
  REQUIRE(model.vocab_size() == 300);
  REQUIRE(model.max_positions() == 0);
  REQUIRE_FALSE(model.tied_embeddings());
  const auto& attention = model.blocks()[0].attention().config();
  CHECK(attention.kv_heads() == 2);
  CHECK(attention.rotary);
  CHECK(attention.rotary_base == 5000.0);
  for (int k = 0; k < sequence_count; ++k) {
    INFO("sequence " << k);
    const auto g = model_fixtures::read_golden<TestType>(llama_dir, k);
    const headlens::Index t = headlens::Index(g.ids.size());
    model_fixtures::pattern_recorder<TestType> recorder(2, 4, t);
    const headlens::matrix<TestType> logits = model.forward(g.ids, {}, recorder.registry);
    CHECK(recorder.calls == 2 * 4);
    CHECK(model_fixtures::max_abs_diff(logits, g.logits) < model_fixtures::logits_tolerance<TestType>());
    CHECK(model_fixtures::max_abs_diff(recorder.maps.data, g.attention.data) < model_fixtures::attention_tolerance<TestType>());
    const headlens::matrix<TestType> plain = model.forward(g.ids);  // streaming path
    CHECK(model_fixtures::max_abs_diff(plain, g.logits) < model_fixtures::logits_tolerance<TestType>());
  }
}

TEST_CASE("llama: hooks report kv heads under GQA", "[llama]") {
  const auto model = headlens::load_llama<float>(llama_dir);
  const auto g = model_fixtures::read_golden<float>(llama_dir, 0);
  headlens::hook_registry<float> hooks;
  std::vector<int> kv_of_head, k_calls;
  hooks.add({0, -1, {headlens::hook_point::pattern, headlens::hook_point::k}},
            [&](const headlens::hook_context& ctx, headlens::matrix_view<float>) {
              if (ctx.point == headlens::hook_point::pattern) kv_of_head.push_back(ctx.kv_head);
              if (ctx.point == headlens::hook_point::k) k_calls.push_back(ctx.head);
            });
  model.forward(g.ids, {}, hooks);
  CHECK(kv_of_head == std::vector<int>{0, 0, 1, 1});
  CHECK(k_calls.size() == 2);
}

TEST_CASE("llama: unprefixed keys, tied embeddings and BF16 load", "[llama]") {
  const auto g = model_fixtures::read_golden<float>(llama_dir, 0);
  const auto reference = headlens::load_llama<float>(config(), checkpoint()).forward(g.ids);
  const auto bare = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    if (e.name.rfind("model.", 0) == 0) e.name = e.name.substr(6);
  });
  CHECK(headlens::load_llama<float>(config(), bare).forward(g.ids) == reference);

  const auto bf16 = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    e.stored = headlens::dtype::bfloat16;
  });
  const double err = model_fixtures::max_abs_diff(headlens::load_llama<float>(config(), bf16).forward(g.ids), reference);
  CHECK(err > 0);
  CHECK(err < 0.3);

  // The goldens can tell rope_theta apart: the default base gives other logits.
  auto default_theta = config();
  default_theta.rope_theta = 10000.0;
  CHECK(model_fixtures::max_abs_diff(headlens::load_llama<float>(default_theta, checkpoint()).forward(g.ids),
                                     reference) > 1e-2);

  // Tied: logits = x E^T, so a checkpoint without lm_head.weight loads, and the head it uses is the embedding.
  auto tied = config();
  tied.tie_word_embeddings = true;
  const auto no_head = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    e.keep = e.name != "lm_head.weight";
  });
  const auto model = headlens::load_llama<double>(tied, no_head);
  CHECK(model.tied_embeddings());
  const auto hidden = model.hidden_states(g.ids);
  CHECK((model.forward(g.ids) - hidden * model.token_embedding().transpose()).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("llama: checkpoint errors name the tensor and the expected shape", "[llama]") {
  const auto no_head = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    e.keep = e.name != "lm_head.weight";
  });
  REQUIRE_THROWS_AS(headlens::load_llama<float>(config(), no_head), headlens::format_error);
  REQUIRE_THROWS_WITH(headlens::load_llama<float>(config(), no_head),
                      "headlens: edited.safetensors: missing tensor 'lm_head.weight', expected shape [300, 32] "
                      "(Llama checkpoint)");

  // A k_proj sized for MHA (4 kv heads) where the config says 2.
  const auto mha_k = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    if (e.name == "model.layers.1.self_attn.k_proj.weight") {
      e.values.shape = {32, 32};
      e.values.data.resize(32 * 32, 0.0f);
    }
  });
  REQUIRE_THROWS_AS(headlens::load_llama<float>(config(), mha_k), headlens::shape_error);
  REQUIRE_THROWS_WITH(headlens::load_llama<float>(config(), mha_k),
                      "headlens: tensor 'model.layers.1.self_attn.k_proj.weight' in edited.safetensors has shape "
                      "[32, 32], expected [16, 32]");

  const auto int_norm = model_fixtures::rewrite(checkpoint(), [](model_fixtures::rewrite_entry& e) {
    if (e.name == "model.norm.weight") e.stored = headlens::dtype::int32;
  });
  REQUIRE_THROWS_AS(headlens::load_llama<float>(config(), int_norm), headlens::format_error);
  REQUIRE_THROWS_WITH(headlens::load_llama<float>(config(), int_norm),
                      Contains("tensor 'model.norm.weight' has dtype I32, expected F32, F16, BF16 or F64"));

  auto biased = config();
  biased.attention_bias = true;
  REQUIRE_THROWS_WITH(headlens::load_llama<float>(biased, checkpoint()),
                      Contains("missing tensor 'model.layers.0.self_attn.q_proj.bias', expected shape [32]"));
}

TEST_CASE("llama: config.json errors name the key", "[llama]") {
  using headlens::llama_config;
  const std::string base = R"("vocab_size": 300, "hidden_size": 32, "intermediate_size": 88, "num_hidden_layers": 2,
                               "num_attention_heads": 4)";
  const auto plain = llama_config::from_json_text("{" + base + "}");
  CHECK(plain.kv_heads() == 4);
  CHECK(plain.rope_theta == 10000.0);
  CHECK(plain.head_size() == 8);
  REQUIRE_THROWS_WITH(llama_config::from_json_text("{" + base + R"(, "num_key_value_heads": 3})"),
                      Contains("\"num_attention_heads\" is 4, expected a multiple of num_key_value_heads = 3"));
  REQUIRE_THROWS_WITH(llama_config::from_json_text("{" + base + R"(, "rope_scaling": {"type": "linear", "factor": 2}})"),
                      Contains("\"rope_scaling\" is {\"factor\":2,\"type\":\"linear\"}, expected null"));
  REQUIRE_THROWS_WITH(llama_config::from_json_text("{" + base + R"(, "hidden_act": "gelu"})"),
                      Contains("\"hidden_act\" is \"gelu\", expected \"silu\""));
  REQUIRE_THROWS_WITH(llama_config::from_json_text(R"({"vocab_size": 300})"),
                      "headlens: <config.json>: \"hidden_size\" is missing, expected a positive integer");
}

TEST_CASE("llama: decoding in steps over a cache gives the rows of one forward (rotary continues)", "[llama]") {
  const auto model = headlens::load_llama<double>(config(), checkpoint());
  const auto g = model_fixtures::read_golden<double>(llama_dir, 2);  // 40 tokens
  headlens::transformer_cache<double> cache;
  headlens::matrix<double> logits(g.logits.rows(), g.logits.cols());
  headlens::Index done = 0;
  int pattern_calls = 0;
  headlens::hook_registry<double> hooks;
  hooks.add({1, 3, {headlens::hook_point::pattern}},
            [&](const headlens::hook_context& ctx, headlens::matrix_view<double> p) {
              ++pattern_calls;
              CHECK(p.cols() == ctx.token_end);  // every cached key plus the new ones
            });
  for (const headlens::Index n : {1, 12, 27}) {
    const std::vector<std::int32_t> step(g.ids.begin() + done, g.ids.begin() + done + n);
    logits.middleRows(done, n) = model.forward_step(step, cache, {}, hooks);
    done += n;
  }
  CHECK(pattern_calls == 3);
  CHECK(cache.length() == 40);
  CHECK(model_fixtures::max_abs_diff(logits, g.logits) < 1e-5);
  REQUIRE_THROWS_WITH(model.forward_step({-1}, cache), Contains("token id -1 at position 0 is out of range"));
  CHECK(cache.length() == 40);
}

TEST_CASE("llama: a checkpoint split into shards by model.safetensors.index.json loads", "[llama]") {
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/headlens_llama_shards";
  REQUIRE(std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "' && cp '" + llama_dir + "/config.json' '" + dir +
                       "/'").c_str()) == 0);
  headlens::safetensors_writer first, second;
  nlohmann::json map = nlohmann::json::object();
  for (const std::string& name : checkpoint().names()) {
    const bool early = name.find("layers.1.") == std::string::npos && name != "lm_head.weight" &&
                       name != "model.norm.weight";
    (early ? first : second).add(name, checkpoint().read_tensor<float>(name));
    map[name] = early ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  first.write(dir + "/model-00001-of-00002.safetensors");
  second.write(dir + "/model-00002-of-00002.safetensors");
  std::ofstream(dir + "/model.safetensors.index.json") << nlohmann::json{{"metadata", {}}, {"weight_map", map}}.dump();

  const auto g = model_fixtures::read_golden<float>(llama_dir, 0);
  const auto reference = headlens::load_llama<float>(config(), checkpoint()).forward(g.ids);
  CHECK(headlens::load_llama<float>(dir).forward(g.ids) == reference);

  std::remove((dir + "/model-00002-of-00002.safetensors").c_str());
  REQUIRE_THROWS_AS(headlens::load_llama<float>(dir), headlens::io_error);
  std::ofstream(dir + "/model.safetensors.index.json") << R"({"weight_map": {"model.norm.weight": 3}})";
  REQUIRE_THROWS_WITH(headlens::load_llama<float>(dir), Contains("\"weight_map\" maps 'model.norm.weight' to 3"));
}

}  // namespace test_llama
