// Physical pruning (models/head_pruning.hpp, models/pruned_checkpoint.hpp) on the small checkpoints of
// tests/data/models: the pruned model, in memory and written to disk and loaded back (load_family, load_gpt2,
// load_attention_model), gives the logits of the ORIGINAL model with those heads' z zeroed by a hook (the masked
// model, computed without any pruning code) within 1e-5. GPT-2 and BERT (pruned_heads), a GQA Llama (kv heads kept,
// dropped or repeated), every other family; then malformed pruned configs, each an exception naming the key.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "headlens/analysis/pruning_plan.hpp"
#include "headlens/hooks/hook_point.hpp"
#include "headlens/io/npy.hpp"
#include "headlens/models/attention_model.hpp"
#include "headlens/models/families.hpp"
#include "headlens/models/gpt2.hpp"
#include "headlens/models/head_pruning.hpp"
#include "headlens/models/pruned_checkpoint.hpp"

namespace test_pruning_checkpoint {

using Catch::Matchers::Contains;
using headlens::head_set;
using headlens::Index;
namespace fs = std::filesystem;

const std::string models = std::string(HEADLENS_TEST_DATA_DIR) + "/models/";

// The masked model: every removed head's z is zero (its output is then zero; the output bias stays).
struct zero_heads {
  static constexpr headlens::point_set points{headlens::hook_point::z};
  const head_set* removed;
  bool wants(const headlens::hook_context& c) const { return removed->contains({c.layer, c.head}); }
  template <class Scalar>
  void operator()(const headlens::hook_context&, headlens::matrix_view<Scalar> view) const {
    view.setZero();
  }
};

headlens::matrix<float> masked_logits(const headlens::transformer<float>& model, const std::vector<std::int32_t>& ids,
                                      const head_set& removed) {
  headlens::forward_options<float> o;
  return model.forward(ids, o, zero_heads{&removed});
}

double max_diff(const headlens::matrix<float>& a, const headlens::matrix<float>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return double((a - b).cwiseAbs().maxCoeff());
}

std::vector<std::int32_t> ids_of(const std::string& dir, Index vocab, Index length) {
  std::vector<std::int32_t> ids;
  std::mt19937 rng(7);
  for (Index i = 0; i < length; ++i) ids.push_back(std::int32_t(rng() % std::uint32_t(vocab)));
  (void)dir;
  return ids;
}

// A fresh temporary directory, removed at scope end.
struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& name) {
    path = fs::temp_directory_path() / ("headlens_pruning_" + name + "_" + std::to_string(std::random_device{}()));
    fs::remove_all(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

head_set make_set(const std::vector<int>& shape, const std::vector<headlens::head_ref>& heads) {
  head_set s(shape);
  for (auto h : heads) s.insert(h);
  return s;
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(std::ifstream(path)); }
void write_json(const std::string& path, const nlohmann::json& j) { std::ofstream(path) << j.dump(2); }

TEST_CASE("layer pruning maps heads and kv heads", "[pruning]") {
  SECTION("MHA") {
    const headlens::layer_pruning p = headlens::plan_layer_pruning(4, 4, {false, true, false, true});
    CHECK(p.kept == std::vector<Index>{0, 2});
    CHECK(p.kv_sources == std::vector<Index>{0, 2});
    CHECK(p.removed() == std::vector<Index>{1, 3});
    CHECK_FALSE(p.zero_output);
  }
  SECTION("GQA: a kv head goes with its last query head") {
    const headlens::layer_pruning p = headlens::plan_layer_pruning(4, 2, {true, true, false, false});
    CHECK(p.kept == std::vector<Index>{2, 3});
    CHECK(p.kv_sources == std::vector<Index>{1});
  }
  SECTION("GQA: uneven groups repeat kv heads") {
    const headlens::layer_pruning p = headlens::plan_layer_pruning(4, 2, {true, false, false, false});
    CHECK(p.kept == std::vector<Index>{1, 2, 3});
    CHECK(p.kv_sources == std::vector<Index>{0, 1, 1});
    const headlens::layer_pruning q =
        headlens::plan_layer_pruning(8, 2, {true, true, false, false, false, false, false, false});
    CHECK(q.kv_sources == std::vector<Index>{0, 1, 1});  // groups of 2 and 4: g = 2
  }
  SECTION("every head: one head with a zero output") {
    const headlens::layer_pruning p = headlens::plan_layer_pruning(2, 1, {true, true});
    CHECK(p.zero_output);
    CHECK(p.kept == std::vector<Index>{0});
    CHECK(p.removed() == std::vector<Index>{0, 1});
  }
  CHECK_THROWS_AS(headlens::plan_layer_pruning(4, 3, {false, false, false, false}), headlens::argument_error);
  CHECK_THROWS_WITH(headlens::plan_layer_pruning(4, 2, {false}), Contains("removed has 1 entries, expected 4"));
}

struct fixture {
  const char* name;
  std::string dir;
  std::vector<std::vector<headlens::head_ref>> sets;  // heads removed, each tried
};

std::vector<fixture> fixtures() {
  const std::vector<std::vector<headlens::head_ref>> mixed = {
      {{0, 1}, {0, 3}, {1, 0}},  // MHA: two and one head; GQA: both kv heads stay, then groups 1 and 2
      {{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}},  // a whole layer; GQA: a whole group
  };
  std::vector<fixture> out = {{"gpt2", models + "gpt2", mixed}, {"llama", models + "llama", mixed}};
  for (const char* f : {"bert", "roberta", "gemma", "gemma2", "gpt_neox", "llama3", "llama_linear", "mistral", "opt",
                        "phi3", "qwen2", "qwen3"}) {
    out.push_back({f, models + "families/" + f, mixed});
  }
  return out;
}

TEST_CASE("pruned = masked: in memory and through a written checkpoint, every family", "[pruning]") {
  for (const fixture& f : fixtures()) {
    for (std::size_t k = 0; k < f.sets.size(); ++k) {
      DYNAMIC_SECTION(f.name << " set " << k) {
        const headlens::family_model<float> original = headlens::load_family<float>(f.dir);
        const std::vector<int> shape = headlens::checkpoint_heads_per_layer(f.dir);
        std::vector<headlens::head_ref> heads;  // the set's heads that the model has (GPT-NeoX's fixture has 2)
        for (auto h : f.sets[k]) {
          if (h.head < shape[std::size_t(h.layer)]) heads.push_back(h);
        }
        const head_set removed = make_set(shape, heads);
        const Index length = std::min<Index>(original.settings.max_tokens, 20);
        const std::vector<std::int32_t> ids = ids_of(f.dir, original.model.vocab_size(), length);
        const headlens::matrix<float> masked = masked_logits(original.model, ids, removed);
        // The mask does something: the masked logits differ from the clean ones.
        CHECK(max_diff(masked, original.model.forward(ids)) > 1e-3);

        // In memory.
        const headlens::transformer<float> small(
            headlens::prune_heads(headlens::load_family_weights<float>(f.dir), removed));
        CHECK(max_diff(small.forward(ids), masked) < 1e-5);

        // On disk, loaded back.
        temp_dir out(f.name);
        const headlens::pruned_checkpoint_summary summary =
            headlens::write_pruned_checkpoint(f.dir, removed, out.str());
        const headlens::family_model<float> loaded = headlens::load_family<float>(out.str());
        CHECK(max_diff(loaded.model.forward(ids), masked) < 1e-5);
        for (Index l = 0; l < 2; ++l) {
          CHECK(loaded.model.blocks()[std::size_t(l)].attention().config().n_heads ==
                summary.heads_per_layer[std::size_t(l)]);
        }
        const nlohmann::json config = read_json(out.str() + "/config.json");
        CHECK(config["headlens_heads_per_layer"] == nlohmann::json(summary.heads_per_layer));
        CHECK(summary.parameters_after < summary.parameters_before);
        // The config of the source is otherwise kept.
        CHECK(config["model_type"] == read_json(f.dir + "/config.json")["model_type"]);
      }
    }
  }
}

TEST_CASE("the written head counts and pruned_heads", "[pruning]") {
  SECTION("GPT-2: pruned_heads, load_gpt2, load_attention_model with the copied tokenizer") {
    const std::string dir = models + "gpt2";
    const head_set removed = make_set({4, 4}, {{0, 1}, {0, 3}, {1, 0}});
    temp_dir out("gpt2_files");
    const auto summary = headlens::write_pruned_checkpoint(dir, removed, out.str());
    CHECK(summary.heads_per_layer == std::vector<Index>{2, 3});
    CHECK(summary.kv_heads_per_layer == std::vector<Index>{2, 3});
    const nlohmann::json config = read_json(out.str() + "/config.json");
    CHECK(config["pruned_heads"] == nlohmann::json::parse(R"({"0": [1, 3], "1": [0]})"));
    CHECK(config["n_head"] == 4);  // Hugging Face's convention: the unpruned count
    CHECK(std::find(summary.copied_files.begin(), summary.copied_files.end(), "merges.txt") !=
          summary.copied_files.end());
    // 2 layers lose 3 heads of 8: q, k, v columns and c_proj rows, 3 * 8 * (3 * 32 + 3 + 32) parameters.
    CHECK(summary.parameters_before - summary.parameters_after == 3 * 8 * (3 * 32 + 3 + 32));
    const headlens::safetensors_file st(out.str() + "/model.safetensors");
    CHECK(st.info("h.0.attn.c_attn.weight").shape == std::vector<Index>{32, 3 * 2 * 8});
    CHECK(st.info("h.1.attn.c_proj.weight").shape == std::vector<Index>{3 * 8, 32});
    CHECK(st.info("h.0.attn.c_proj.bias").shape == std::vector<Index>{32});

    const headlens::family_model<float> original = headlens::load_family<float>(dir);
    const std::vector<std::int32_t> ids =
        headlens::as_tensor<std::int32_t>(headlens::read_npy(dir + "/seq_1_ids.npy")).data;
    const headlens::matrix<float> masked = masked_logits(original.model, ids, removed);
    CHECK(max_diff(headlens::load_gpt2<float>(out.str()).forward(ids), masked) < 1e-5);
    headlens::attention_model_options options;
    options.add_bos = false;
    const auto model = headlens::load_attention_model(out.str(), options);
    CHECK(max_diff(model->logits(ids), masked) < 1e-5);
    CHECK(model->tokenize("hello world").size() ==
          headlens::load_attention_model(dir, options)->tokenize("hello world").size());

    SECTION("pruning a pruned checkpoint again composes pruned_heads in original indices") {
      temp_dir again("gpt2_again");
      const head_set more = make_set({2, 3}, {{0, 0}, {1, 2}});  // original heads 0.0 and 1.3
      headlens::write_pruned_checkpoint(out.str(), more, again.str());
      CHECK(read_json(again.str() + "/config.json")["pruned_heads"] ==
            nlohmann::json::parse(R"({"0": [0, 1, 3], "1": [0, 3]})"));
      const head_set all = make_set({4, 4}, {{0, 0}, {0, 1}, {0, 3}, {1, 0}, {1, 3}});
      CHECK(max_diff(headlens::load_family<float>(again.str()).model.forward(ids),
                     masked_logits(original.model, ids, all)) < 1e-5);
    }
  }
  SECTION("BERT: pruned_heads; a whole layer keeps one zeroed head, not listed") {
    const std::string dir = models + "families/bert";
    temp_dir out("bert_files");
    headlens::write_pruned_checkpoint(dir, make_set({4, 4}, {{0, 0}, {0, 1}, {0, 2}, {0, 3}, {1, 2}}), out.str());
    const nlohmann::json config = read_json(out.str() + "/config.json");
    CHECK(config["pruned_heads"] == nlohmann::json::parse(R"({"0": [1, 2, 3], "1": [2]})"));
    CHECK(config["headlens_heads_per_layer"] == nlohmann::json::parse("[1, 3]"));
  }
  SECTION("Llama (GQA): kv heads per layer, no pruned_heads") {
    const std::string dir = models + "llama";
    temp_dir out("llama_files");
    const auto summary = headlens::write_pruned_checkpoint(dir, make_set({4, 4}, {{0, 0}, {0, 1}, {1, 0}}), out.str());
    CHECK(summary.kv_heads_per_layer == std::vector<Index>{1, 3});
    const nlohmann::json config = read_json(out.str() + "/config.json");
    CHECK(config["headlens_kv_heads_per_layer"] == nlohmann::json::parse("[1, 3]"));
    CHECK_FALSE(config.contains("pruned_heads"));
    const headlens::safetensors_file st(out.str() + "/model.safetensors");
    CHECK(st.info("model.layers.0.self_attn.k_proj.weight").shape == std::vector<Index>{8, 32});
    CHECK(st.info("model.layers.1.self_attn.v_proj.weight").shape == std::vector<Index>{24, 32});
    CHECK(st.info("model.layers.1.self_attn.o_proj.weight").shape == std::vector<Index>{32, 24});
  }
}

TEST_CASE("malformed pruned configs are errors naming the key and value", "[pruning]") {
  const std::string dir = models + "gpt2";
  temp_dir out("gpt2_bad");
  headlens::write_pruned_checkpoint(dir, make_set({4, 4}, {{0, 1}, {0, 3}, {1, 0}}), out.str());
  const std::string config_path = out.str() + "/config.json";
  const nlohmann::json good = read_json(config_path);
  const auto with = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json j = good;
    change(j);
    write_json(config_path, j);
  };
  const auto load = [&] { return headlens::load_family<float>(out.str()); };

  with([](nlohmann::json& j) { j["pruned_heads"]["0"] = {7}; });
  CHECK_THROWS_AS(load(), headlens::argument_error);
  CHECK_THROWS_WITH(load(), Contains("\"pruned_heads\" has head 7 in layer 0, expected a head index from 0 to 3"));
  with([](nlohmann::json& j) { j["pruned_heads"] = {{"5", {0}}}; });
  CHECK_THROWS_WITH(load(), Contains("\"pruned_heads\" has layer \"5\""));
  with([](nlohmann::json& j) { j["pruned_heads"]["0"] = {0, 1, 2, 3}; });
  CHECK_THROWS_WITH(load(), Contains("removes all 4 heads of layer 0"));
  with([](nlohmann::json& j) { j["pruned_heads"]["0"] = {1, 1}; });
  CHECK_THROWS_WITH(load(), Contains("twice"));
  with([](nlohmann::json& j) { j["pruned_heads"] = "0:1"; });
  CHECK_THROWS_WITH(load(), Contains("\"pruned_heads\" is \"0:1\""));
  with([](nlohmann::json& j) { j["headlens_heads_per_layer"] = {3, 3}; });
  CHECK_THROWS_WITH(load(), Contains("\"headlens_heads_per_layer\" is [3,3], expected [2, 3] as pruned_heads says"));
  with([](nlohmann::json& j) { j["headlens_heads_per_layer"] = {2}; });
  CHECK_THROWS_WITH(load(), Contains("\"headlens_heads_per_layer\" is [2], expected an array of 2 counts"));
  with([](nlohmann::json& j) { j["headlens_heads_per_layer"] = {2, 9}; });
  CHECK_THROWS_WITH(load(), Contains("has 9 at layer 1, expected a count from 1 to 4"));
  // Counts that do not match the weights: the tensor, its shape and where the counts came from.
  with([](nlohmann::json& j) {
    j.erase("pruned_heads");
    j.erase("headlens_kv_heads_per_layer");  // MHA: the kv counts default to the head counts
    j["headlens_heads_per_layer"] = {3, 3};
  });
  CHECK_THROWS_AS(load(), headlens::shape_error);
  CHECK_THROWS_WITH(load(), Contains("h.0.attn.c_attn.weight") && Contains("expected [32, 72]") &&
                                Contains("layer 0 has 3 heads") && Contains("headlens_heads_per_layer"));
  // Through load_gpt2 as well.
  with([](nlohmann::json& j) { j["pruned_heads"]["1"] = {-1}; });
  CHECK_THROWS_WITH(headlens::load_gpt2<float>(out.str()), Contains("\"pruned_heads\" has head -1"));
  // An unpruned checkpoint that claims pruning.
  with([](nlohmann::json& j) { j["pruned_heads"]["1"] = {0, 2}; });
  CHECK_THROWS_AS(load(), headlens::argument_error);  // headlens_heads_per_layer [2, 3] disagrees
  with([](nlohmann::json& j) {
    j.erase("headlens_heads_per_layer");
    j.erase("headlens_kv_heads_per_layer");
    j["pruned_heads"]["1"] = {0, 2};
  });
  CHECK_THROWS_AS(load(), headlens::shape_error);

  SECTION("Llama: no pruned_heads convention; kv counts required and dividing") {
    temp_dir llama("llama_bad");
    headlens::write_pruned_checkpoint(models + "llama", make_set({4, 4}, {{1, 0}}), llama.str());
    const std::string path = llama.str() + "/config.json";
    const nlohmann::json base = read_json(path);
    const auto set = [&](const std::function<void(nlohmann::json&)>& change) {
      nlohmann::json j = base;
      change(j);
      write_json(path, j);
    };
    const auto load_llama = [&] { return headlens::load_family<float>(llama.str()); };
    CHECK_NOTHROW(load_llama());
    set([](nlohmann::json& j) { j["pruned_heads"] = {{"0", {1}}}; });
    CHECK_THROWS_WITH(load_llama(), Contains("\"pruned_heads\" is {\"0\":[1]}, expected none or {}"));
    set([](nlohmann::json& j) { j["pruned_heads"] = nlohmann::json::object(); });
    CHECK_NOTHROW(load_llama());
    set([](nlohmann::json& j) { j.erase("headlens_kv_heads_per_layer"); });
    CHECK_THROWS_WITH(load_llama(), Contains("\"headlens_kv_heads_per_layer\" is missing"));
    set([](nlohmann::json& j) { j["headlens_kv_heads_per_layer"] = {2, 2}; });
    CHECK_THROWS_WITH(load_llama(), Contains("\"headlens_kv_heads_per_layer\" has 2 at layer 1, expected a divisor"));
    set([](nlohmann::json& j) { j.erase("headlens_heads_per_layer"); });
    CHECK_THROWS_WITH(load_llama(), Contains("is set without headlens_heads_per_layer"));
  }
}

// A decoder target written here from the published maths: per-token cross-entropy of token t given 0..t-1, with
// heads zero-ablated through the same hook as the masked model.
class decoder_target final : public headlens::ablation_target {
 public:
  decoder_target(const headlens::transformer<float>& model, std::vector<std::int32_t> ids)
      : model_(model), ids_(std::move(ids)) {
    for (const auto& b : model.blocks()) shape_.push_back(int(b.attention().config().n_heads));
    clean_ = score(model.forward(ids_));
  }
  const std::vector<int>& heads_per_layer() const override { return shape_; }
  Index token_count() const override { return Index(ids_.size()); }
  const headlens::token_losses& clean() const override { return clean_; }
  headlens::token_losses losses(const head_set& ablated, headlens::ablation) const override {
    return score(masked_logits(model_, ids_, ablated));
  }
  const std::vector<std::int32_t>& ids() const { return ids_; }

  headlens::token_losses score(const headlens::matrix<float>& logits) const {
    headlens::token_losses l;
    l.loss.assign(ids_.size(), 0.0);
    l.scored.assign(ids_.size(), false);
    double sum = 0;
    for (std::size_t t = 1; t < ids_.size(); ++t) {
      const auto row = logits.row(Index(t - 1)).cast<double>();
      const double m = row.maxCoeff();
      const double lse = m + std::log((row.array() - m).exp().sum());
      l.loss[t] = lse - row(ids_[t]);
      l.scored[t] = true;
      sum += l.loss[t];
    }
    l.sequence = sum / double(ids_.size() - 1);
    return l;
  }

 private:
  const headlens::transformer<float>& model_;
  std::vector<std::int32_t> ids_;
  std::vector<int> shape_;
  headlens::token_losses clean_;
};

TEST_CASE("end to end: plan on the GPT-2 fixture, prune, and the pruned model's loss is the plan's", "[pruning]") {
  const std::string dir = models + "gpt2";
  const headlens::family_model<float> original = headlens::load_family<float>(dir);
  std::vector<std::unique_ptr<decoder_target>> corpus;
  for (int k : {0, 1, 3}) {
    const std::string ids = dir + "/seq_" + std::to_string(k) + "_ids.npy";
    corpus.push_back(std::make_unique<decoder_target>(original.model,
                                                      headlens::as_tensor<std::int32_t>(headlens::read_npy(ids)).data));
  }
  headlens::pruning_options o;
  o.target_share = 0.5;
  o.remeasure_every = 2;
  const headlens::pruning_plan plan = headlens::plan_pruning(headlens::target_pointers(corpus), o);
  REQUIRE(plan.pruned.size() == 4);
  temp_dir out("gpt2_plan");
  headlens::write_pruned_checkpoint(dir, plan.pruned, out.str());
  const headlens::family_model<float> small = headlens::load_family<float>(out.str());
  // The pruned model's logits, scored by the target that holds the same ids.
  double pruned_loss = 0;
  for (const auto& t : corpus) pruned_loss += t->score(small.model.forward(t->ids())).sequence;
  pruned_loss /= double(corpus.size());
  CHECK(pruned_loss == Approx(plan.curve.back().loss).margin(1e-5));
  CHECK(std::abs(plan.curve.back().loss_change) > 1e-3);  // the pruning changes the loss (random weights: either way)
}

// Mean ablation by a hook: every removed head's z becomes its given mean row at every token.
struct mean_heads {
  static constexpr headlens::point_set points{headlens::hook_point::z};
  const head_set* removed;
  const std::vector<headlens::matrix<float>>* means;
  bool wants(const headlens::hook_context& c) const { return removed->contains({c.layer, c.head}); }
  void operator()(const headlens::hook_context& c, headlens::matrix_view<float> view) const {
    view.rowwise() = (*means)[std::size_t(c.layer)].row(c.head);
  }
};

TEST_CASE("pruning mean-ablated heads folds their constant output into b_o", "[pruning]") {
  for (const char* name : {"gpt2", "llama"}) {  // with an output bias, and without (Llama: biases are added)
    DYNAMIC_SECTION(name) {
      const std::string dir = models + name;
      const headlens::family_model<float> original = headlens::load_family<float>(dir);
      const head_set removed = make_set({4, 4}, {{0, 1}, {1, 0}, {1, 3}});
      std::vector<headlens::matrix<float>> means;
      std::mt19937 rng(3);
      std::normal_distribution<float> normal(0.0f, 0.5f);
      for (int l = 0; l < 2; ++l) {
        headlens::matrix<float> m(4, 8);
        for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
        means.push_back(m);
      }
      const std::vector<std::int32_t> ids = ids_of(dir, original.model.vocab_size(), 20);
      headlens::forward_options<float> o;
      const headlens::matrix<float> mean_ablated = original.model.forward(ids, o, mean_heads{&removed, &means});
      CHECK(max_diff(mean_ablated, masked_logits(original.model, ids, removed)) > 1e-3);  // the means matter
      const headlens::transformer<float> small(
          headlens::prune_heads(headlens::load_family_weights<float>(dir), removed, means));
      CHECK(max_diff(small.forward(ids), mean_ablated) < 1e-5);
      means.pop_back();
      CHECK_THROWS_WITH(headlens::prune_heads(headlens::load_family_weights<float>(dir), removed, means),
                        Contains("z_means has 1 layers, expected 2"));
    }
  }
}

TEST_CASE("pruning errors", "[pruning]") {
  const std::string dir = models + "gpt2";
  CHECK_THROWS_WITH(headlens::write_pruned_checkpoint(dir, head_set({4, 4, 4}), dir + "_x"),
                    Contains("removed has 3 layers, expected the model's 2"));
  CHECK_THROWS_WITH(headlens::write_pruned_checkpoint(dir, head_set({4, 3}), dir + "_x"),
                    Contains("removed has 3 heads in layer 1, expected the model's 4"));
  CHECK_THROWS_WITH(headlens::write_pruned_checkpoint(dir, head_set({4, 4}), dir), Contains("is the source directory"));
  CHECK_THROWS_AS(headlens::prune_heads(headlens::load_family_weights<float>(dir), head_set({4})),
                  headlens::argument_error);
  CHECK_FALSE(fs::exists(dir + "_x"));
}

TEST_CASE("safetensors_writer::add_raw copies bytes and checks their count", "[pruning]") {
  const float values[3] = {1.5f, -2.0f, 3.25f};
  headlens::safetensors_writer w;
  w.add_raw("x", headlens::dtype::float32, {3}, reinterpret_cast<const unsigned char*>(values), sizeof values);
  const auto file = headlens::safetensors_file::from_memory(w.bytes());
  CHECK(file.read_vector<float>("x")(2) == 3.25f);
  CHECK_THROWS_AS(
      w.add_raw("y", headlens::dtype::float32, {4}, reinterpret_cast<const unsigned char*>(values), sizeof values),
      headlens::shape_error);
  CHECK_THROWS_WITH(
      w.add_raw("x", headlens::dtype::float32, {3}, reinterpret_cast<const unsigned char*>(values), sizeof values),
      Contains("already added"));
}

}  // namespace test_pruning_checkpoint
