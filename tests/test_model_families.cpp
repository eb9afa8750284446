// Every model family of models/families.hpp against a plain-PyTorch reference written from that family's published
// maths (tools/make_family_fixtures.py), on small random checkpoints laid out as the family's real ones: logits and
// every head's pattern within 1e-4 in float, on the materialised path, the streaming path (pattern rows), in
// incremental decoding and through `load_attention_model`. Then the errors: unknown model_type, a missing tensor,
// a misshapen tensor and unsupported config values, each naming what is at fault.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "headlens/hooks/hook_registry.hpp"
#include "headlens/io/npy.hpp"
#include "headlens/kernels/multi_head_attention.hpp"
#include "headlens/models/attention_model.hpp"
#include "headlens/models/families.hpp"
#include "support/model_fixtures.hpp"

namespace test_model_families {

using Catch::Matchers::Contains;
using headlens::Index;

const std::string data_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models/families/";

struct reference {
  std::vector<std::int32_t> ids;
  headlens::matrix<float> logits;
  headlens::tensor<float> attention;  // [layers, heads, T, T]
};

reference read_reference(const std::string& dir) {
  reference r;
  r.ids = headlens::as_tensor<std::int32_t>(headlens::read_npy(dir + "/ids.npy")).data;
  r.logits = headlens::read_npy_matrix<float>(dir + "/logits.npy");
  r.attention = headlens::as_tensor<float>(headlens::read_npy(dir + "/attention.npy"));
  return r;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) { return model_fixtures::max_abs_diff(a, b); }

// Every streamed head's rows through `pattern_rows`, the path `classify` takes.
struct row_collector final : headlens::pattern_row_observer<float> {
  headlens::tensor<float> maps;
  row_collector(Index layers, Index heads, Index t) {
    maps.shape = {layers, heads, t, t};
    maps.data.assign(std::size_t(layers * heads * t * t), -1.0f);
  }
  void operator()(const headlens::pattern_rows<float>& rows) override {
    const Index heads = maps.shape[1], t = maps.shape[2];
    for (Index h = 0; h < rows.heads(); ++h) {
      rows.rows(h, 0, t, maps.data.data() + (rows.layer() * heads + h) * t * t, t);
    }
  }
};

const char* const families[] = {"llama3", "llama_linear", "mistral",  "qwen2", "qwen3", "gemma",
                                "gemma2", "phi3",         "gpt_neox", "opt",   "bert",  "roberta"};

TEST_CASE("families: logits and every head's pattern match the PyTorch reference", "[families]") {
  for (const char* family : families) {
    DYNAMIC_SECTION(family) {
      const std::string dir = data_dir + family;
      const reference ref = read_reference(dir);
      const auto loaded = headlens::load_family<float>(dir);
      const headlens::transformer<float>& model = loaded.model;
      const Index L = model.layer_count(), H = ref.attention.shape[1], T = Index(ref.ids.size());
      REQUIRE(L == ref.attention.shape[0]);

      // Materialised: the pattern hook sees every head.
      model_fixtures::pattern_recorder<float> recorder(L, H, T);
      headlens::forward_options<float> materialised;
      materialised.path = headlens::attention_path::materialised;
      const headlens::matrix<float> logits = model.forward(ref.ids, materialised, recorder.registry);
      const double logit_err = model_fixtures::max_abs_diff(logits, ref.logits);
      const double pattern_err = max_diff(recorder.maps.data, ref.attention.data);
      INFO(family << ": logits " << logit_err << ", patterns " << pattern_err);
      CHECK(recorder.calls == L * H);
      CHECK(logit_err < 1e-4);
      CHECK(pattern_err < 1e-4);

      // Streaming, with the exact rows of every head on demand.
      row_collector rows(L, H, T);
      headlens::forward_options<float> streaming;
      streaming.path = headlens::attention_path::streaming;
      streaming.row_observer = &rows;
      CHECK(model_fixtures::max_abs_diff(model.forward(ref.ids, streaming), ref.logits) < 1e-4);
      CHECK(max_diff(rows.maps.data, ref.attention.data) < 1e-4);

      // Incremental decoding of a causal model gives the rows of one forward.
      if (model.blocks().front().attention().config().causal) {
        headlens::transformer_cache<float> cache;
        headlens::matrix<float> stepped(T, model.vocab_size());
        const Index first = 3;
        stepped.topRows(first) = model.forward_step({ref.ids.begin(), ref.ids.begin() + first}, cache);
        stepped.bottomRows(T - first) = model.forward_step({ref.ids.begin() + first, ref.ids.end()}, cache);
        CHECK(model_fixtures::max_abs_diff(stepped, ref.logits) < 1e-4);
      }
    }
  }
}

// The kernel switches the families need, at lengths past one key tile, against a scalar reference written here:
// sliding window, soft-capping, llama3-scaled partial rotary and per-head q/k RMSNorm, on every path.
TEST_CASE("families: window, soft-cap, scaled rotary and q/k norm on every attention path", "[families]") {
  const Index d = 48, H = 4, KV = 2, hd = 16, T = 400, W = 70;  // T: past 256 + W + 64, so tiles are skipped
  std::mt19937 gen(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto random = [&](Index r, Index c, double sd) {
    headlens::matrix<double> m(r, c);
    for (Index i = 0; i < r; ++i)
      for (Index j = 0; j < c; ++j) m(i, j) = sd * normal(gen);
    return m;
  };
  headlens::attention_config c;
  c.d_model = d;
  c.n_heads = H;
  c.n_kv_heads = KV;
  c.head_dim = hd;
  c.causal = true;
  c.bias = false;
  c.rotary = true;
  c.rotary_dim = 8;
  c.rotary_base = 10000;
  c.rotary_scale.type = headlens::rotary_scaling::kind::llama3;
  c.rotary_scale.factor = 4;
  c.rotary_scale.original_max_positions = 40;
  c.softcap = 3.0;
  c.sliding_window = W;
  c.qk_norm = true;
  c.qk_norm_eps = 1e-6;
  const headlens::matrix<double> x = random(T, d, 1.0), wq = random(d, H * hd, 0.4), wk = random(d, KV * hd, 0.4),
                                 wv = random(d, KV * hd, 0.4), wo = random(H * hd, d, 0.2);
  const headlens::matrix<double> qn = random(1, hd, 0.2).array() + 1.0, kn = random(1, hd, 0.2).array() + 1.0;

  // The reference, in double.
  auto inverse_frequency = [&](Index i) {
    double f = std::pow(10000.0, -2.0 * double(i) / 8.0);
    const double wavelength = 2 * M_PI / f, low = 40.0 / 1.0, high = 40.0 / 4.0;
    if (wavelength > low) return f / 4;
    if (wavelength < high) return f;
    const double smooth = (40.0 / wavelength - 1.0) / (4.0 - 1.0);
    return (1 - smooth) * f / 4 + smooth * f;
  };
  auto prepare = [&](headlens::matrix<double> m, Index heads, const headlens::matrix<double>& norm) {
    for (Index t = 0; t < T; ++t) {
      for (Index h = 0; h < heads; ++h) {
        auto v = m.row(t).segment(h * hd, hd);
        v = v / std::sqrt(v.squaredNorm() / double(hd) + 1e-6);
        v = v.cwiseProduct(norm.row(0));
        for (Index i = 0; i < 4; ++i) {
          const double a = v(i), b = v(i + 4), angle = double(t) * inverse_frequency(i);
          v(i) = a * std::cos(angle) - b * std::sin(angle);
          v(i + 4) = b * std::cos(angle) + a * std::sin(angle);
        }
      }
    }
    return m;
  };
  const headlens::matrix<double> q = prepare(x * wq, H, qn), k = prepare(x * wk, KV, kn), v = x * wv;
  headlens::matrix<double> z = headlens::matrix<double>::Zero(T, H * hd);
  std::vector<double> pattern(std::size_t(H * T * T), 0.0);
  for (Index h = 0; h < H; ++h) {
    const Index g = h / (H / KV);
    for (Index i = 0; i < T; ++i) {
      std::vector<double> s(std::size_t(T), -INFINITY);
      double m = -INFINITY, sum = 0;
      for (Index j = std::max<Index>(0, i - W + 1); j <= i; ++j) {
        const double raw = q.row(i).segment(h * hd, hd).dot(k.row(j).segment(g * hd, hd)) / std::sqrt(double(hd));
        s[std::size_t(j)] = 3.0 * std::tanh(raw / 3.0);
        m = std::max(m, s[std::size_t(j)]);
      }
      for (Index j = 0; j < T; ++j) sum += std::exp(s[std::size_t(j)] - m);
      for (Index j = 0; j < T; ++j) {
        const double p = std::exp(s[std::size_t(j)] - m) / sum;
        pattern[std::size_t((h * T + i) * T + j)] = p;
        z.row(i).segment(h * hd, hd) += p * v.row(j).segment(g * hd, hd);
      }
    }
  }
  const headlens::matrix<double> out = z * wo;

  headlens::attention_weights<float> w;
  w.w_q = wq.cast<float>();
  w.w_k = wk.cast<float>();
  w.w_v = wv.cast<float>();
  w.w_o = wo.cast<float>();
  w.q_norm = qn.row(0).transpose().cast<float>();
  w.k_norm = kn.row(0).transpose().cast<float>();
  const headlens::multi_head_attention<float> mha(c, w);
  const headlens::matrix<float> xf = x.cast<float>();
  for (const auto path : {headlens::attention_path::materialised, headlens::attention_path::streaming}) {
    headlens::forward_options<float> o;
    o.path = path;
    const Index L = 1;
    row_collector rows(L, H, T);
    model_fixtures::pattern_recorder<float> recorder(L, H, T);
    headlens::matrix<float> y;
    if (path == headlens::attention_path::streaming) {
      o.row_observer = &rows;
      y = mha.forward(xf, o);
    } else {
      y = mha.forward(xf, o, recorder.registry);
    }
    const std::vector<float> got = path == headlens::attention_path::streaming ? rows.maps.data : recorder.maps.data;
    double pattern_err = 0;
    for (std::size_t i = 0; i < pattern.size(); ++i) pattern_err = std::max(pattern_err, std::abs(got[i] - pattern[i]));
    INFO("path " << int(path));
    CHECK((y.cast<double>() - out).cwiseAbs().maxCoeff() < 1e-4);
    CHECK(pattern_err < 1e-5);
  }
  // Decoding in steps sees the same window over the cache.
  headlens::kv_cache<float> cache;
  headlens::matrix<float> stepped(T, d);
  stepped.topRows(130) = mha.forward_step(xf.topRows(130), cache);  // then 270 queries over 130 cached keys
  stepped.bottomRows(T - 130) = mha.forward_step(xf.bottomRows(T - 130), cache);
  CHECK((stepped.cast<double>() - out).cwiseAbs().maxCoeff() < 1e-4);
}

// The interleaved convention is rotate-half with each head's q and k dims reordered (dim 2i <- i, 2i + 1 <- i + r/2):
// the scores, and so the outputs, are the same (the identity llama.cpp's converter relies on).
TEST_CASE("families: interleaved rotary is rotate-half on reordered q and k dims", "[families]") {
  const Index d = 24, H = 2, hd = 12, T = 9;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  auto random = [&](Index r, Index c) {
    headlens::matrix<float> m(r, c);
    for (Index i = 0; i < r; ++i)
      for (Index j = 0; j < c; ++j) m(i, j) = normal(gen);
    return m;
  };
  headlens::attention_config half;
  half.d_model = d;
  half.n_heads = H;
  half.head_dim = hd;
  half.causal = true;
  half.bias = false;
  half.rotary = true;
  half.rotary_dim = 8;  // partial: dims 8..11 of each head do not turn
  headlens::attention_config interleaved = half;
  interleaved.rotary_interleaved = true;
  headlens::attention_weights<float> w;
  w.w_q = random(d, H * hd);
  w.w_k = random(d, H * hd);
  w.w_v = random(d, H * hd);
  w.w_o = random(H * hd, d);
  headlens::attention_weights<float> reordered = w;
  for (Index h = 0; h < H; ++h) {
    for (Index i = 0; i < 4; ++i) {
      for (auto* m : {&reordered.w_q, &reordered.w_k}) {
        const headlens::matrix<float>& from = m == &reordered.w_q ? w.w_q : w.w_k;
        m->col(h * hd + 2 * i) = from.col(h * hd + i);
        m->col(h * hd + 2 * i + 1) = from.col(h * hd + i + 4);
      }
    }
  }
  const headlens::matrix<float> x = random(T, d);
  const headlens::matrix<float> a = headlens::multi_head_attention<float>(half, w).forward(x);
  const headlens::matrix<float> b = headlens::multi_head_attention<float>(interleaved, reordered).forward(x);
  const headlens::matrix<float> c = headlens::multi_head_attention<float>(interleaved, w).forward(x);
  CHECK((a - b).cwiseAbs().maxCoeff() < 1e-5);
  CHECK((a - c).cwiseAbs().maxCoeff() > 1e-2);  // the convention matters
}

TEST_CASE("families: load_attention_model runs each family with its word vocabulary", "[families]") {
  for (const char* family : families) {
    DYNAMIC_SECTION(family) {
      const std::string dir = data_dir + family;
      const reference ref = read_reference(dir);
      headlens::attention_model_options options;
      options.add_bos = false;
      const auto model = headlens::load_attention_model(dir, options);
      const bool encoder = std::string(family) == "bert" || std::string(family) == "roberta";
      CHECK(model->causal() == !encoder);
      const headlens::model_family f = headlens::detect_model_family(dir);
      CHECK(headlens::to_string(f) ==
            headlens::detail::hf_config::read(dir + "/config.json").string_or("model_type", ""));
      CHECK(model->description().rfind(headlens::display_name(f), 0) == 0);
      CHECK(max_diff(model->attention(ref.ids).data, ref.attention.data) < 1e-4);
      CHECK(model->tokenize("w5 w7").size() == 2);
      INFO(model->description());
      CHECK(model->description().find(" layers x ") != std::string::npos);
    }
  }
}

TEST_CASE("families: GPT-2 and Llama go through the table", "[families]") {
  for (const char* family : {"gpt2", "llama"}) {
    const std::string dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models/" + family;
    const auto g = model_fixtures::read_golden<float>(dir, 0);
    const auto loaded = headlens::load_family<float>(dir);
    CHECK(loaded.model_type == family);
    CHECK(model_fixtures::max_abs_diff(loaded.model.forward(g.ids), g.logits) < 1e-4);
  }
}

// A copy of a family fixture whose config.json or weights the test edits.
struct scratch_dir {
  std::string path;
  explicit scratch_dir(const std::string& family) {
    path = (std::filesystem::temp_directory_path() /
            ("headlens_families_" + family + "_" + std::to_string(reinterpret_cast<std::uintptr_t>(this))))
               .string();
    std::filesystem::remove_all(path);
    std::filesystem::copy(data_dir + family, path);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  nlohmann::json config() const {
    std::ifstream in(path + "/config.json");
    return nlohmann::json::parse(in);
  }
  void write_config(const nlohmann::json& c) const { std::ofstream(path + "/config.json") << c.dump(1); }
  void edit_weights(const std::function<void(model_fixtures::rewrite_entry&)>& edit) const {
    headlens::safetensors_writer writer;
    {
      const headlens::safetensors_file file(path + "/model.safetensors");
      for (const std::string& key : file.names()) {
        model_fixtures::rewrite_entry e{key, file.read_tensor<float>(key)};
        edit(e);
        if (e.keep) writer.add(e.name, e.values.data.data(), e.values.shape);
      }
    }
    const auto bytes = writer.bytes();
    std::ofstream out(path + "/model.safetensors", std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
};

TEST_CASE("families: errors name the field or tensor at fault", "[families]") {
  {
    const scratch_dir d("llama3");
    nlohmann::json c = d.config();
    c["model_type"] = "mamba";
    d.write_config(c);
    REQUIRE_THROWS_AS(headlens::load_family<float>(d.path), headlens::argument_error);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path),
                        Contains("\"model_type\" is \"mamba\", expected one of the families headlens can load: gpt2, "
                                 "llama, mistral"));
    c.erase("model_type");
    d.write_config(c);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path), Contains("\"model_type\" is missing"));
  }
  {
    const scratch_dir d("llama3");
    nlohmann::json c = d.config();
    c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
    d.write_config(c);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path),
                        Contains("\"rope_scaling\" is {\"factor\":4.0,\"rope_type\":\"yarn\"}, expected rope_type "
                                 "\"linear\" or \"llama3\""));
  }
  {
    const scratch_dir d("gpt_neox");
    nlohmann::json c = d.config();
    c["use_parallel_residual"] = false;
    d.write_config(c);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path), Contains("\"use_parallel_residual\" is false"));
    c["use_parallel_residual"] = true;
    c["rotary_pct"] = 0.1;  // 1.6 of 16 dims
    d.write_config(c);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path), Contains("\"rotary_pct\" is 0.1"));
  }
  {
    const scratch_dir d("opt");
    nlohmann::json c = d.config();
    c["word_embed_proj_dim"] = 16;
    d.write_config(c);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path), Contains("\"word_embed_proj_dim\" is 16"));
  }
  {
    const scratch_dir d("gemma2");
    nlohmann::json c = d.config();
    c["hidden_activation"] = "relu";
    d.write_config(c);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path), Contains("\"hidden_activation\" is \"relu\""));
  }
  {
    const scratch_dir d("bert");
    nlohmann::json c = d.config();
    c["position_embedding_type"] = "relative_key";
    d.write_config(c);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path),
                        Contains("\"position_embedding_type\" is \"relative_key\""));
  }
  {
    const scratch_dir d("qwen3");
    d.edit_weights([](model_fixtures::rewrite_entry& e) {
      if (e.name == "model.layers.1.self_attn.k_norm.weight") e.keep = false;
    });
    REQUIRE_THROWS_AS(headlens::load_family<float>(d.path), headlens::format_error);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path),
                        Contains("missing tensor 'model.layers.1.self_attn.k_norm.weight', expected shape [16]"));
  }
  {
    const scratch_dir d("phi3");
    d.edit_weights([](model_fixtures::rewrite_entry& e) {
      if (e.name == "model.layers.0.self_attn.qkv_proj.weight") e.values.shape = {32, 64};
    });
    REQUIRE_THROWS_AS(headlens::load_family<float>(d.path), headlens::shape_error);
    REQUIRE_THROWS_WITH(headlens::load_family<float>(d.path),
                        Contains("tensor 'model.layers.0.self_attn.qkv_proj.weight' in ") &&
                            Contains("has shape [32, 64], expected [64, 32]"));
  }
}

}  // namespace test_model_families
