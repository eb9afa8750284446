// analysis/head_analysis.hpp, the main job as a library call, on the tiny GPT-2 and Llama checkpoints of
// tests/data/models over the bundled GUM sample: the features it accumulates equal the ones a scalar reference in
// this file computes from the model's own token maps (word rows built here, entropy normalised here), the causal
// normaliser log(i + 1) is used for decoder models (the bug `classify` had: it normalised by log n), shards merge to
// the unsharded result bit for bit, short windows run in padded batches measure what they measure one at a time,
// and bad options are refused.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "headlens/analysis/conllu.hpp"
#include "headlens/analysis/head_analysis.hpp"
#include "headlens/analysis/policies.hpp"
#include "headlens/models/attention_model.hpp"
#include "support/feature_totals.hpp"

namespace test_head_analysis {

namespace {

const std::string models_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models";
const std::string gum_sample = std::string(HEADLENS_TEST_DATA_DIR) + "/gum/gum_cc_by_sample.conllu";

/// Word rows of one head, written from the definition: row a is the mean over a's tokens of their rows, column b
/// the sum over b's tokens; mass on tokens of no word is dropped and the row renormalised.
std::vector<std::vector<double>> reference_word_rows(const headlens::tensor<float>& maps, headlens::Index layer,
                                                     headlens::Index head, const headlens::token_alignment& al,
                                                     headlens::Index words) {
  const headlens::Index H = maps.shape[1], T = maps.shape[2];
  const float* m = maps.data.data() + (layer * H + head) * T * T;
  std::vector<std::vector<double>> rows(static_cast<std::size_t>(words), std::vector<double>(std::size_t(words), 0.0));
  std::vector<int> count(static_cast<std::size_t>(words), 0);
  for (headlens::Index i = 0; i < T; ++i) {
    const auto a = al.word_of_token[std::size_t(i)];
    if (a < 0) continue;
    ++count[std::size_t(a)];
    for (headlens::Index j = 0; j < T; ++j) {
      const auto b = al.word_of_token[std::size_t(j)];
      if (b >= 0) rows[std::size_t(a)][std::size_t(b)] += m[i * T + j];
    }
  }
  for (auto& row : rows) {
    double sum = 0;
    for (double v : row) sum += v;
    if (sum > 0)
      for (double& v : row) v /= sum;
  }
  return rows;
}

struct reference_entropy {
  double causal = 0, bidirectional = 0;  ///< sums of normalised entropies
  std::int64_t causal_rows = 0, bidirectional_rows = 0;
};

/// Mean normalised entropy of every owned word row, with both normalisers.
/// The reference entropies of heads `heads` ((layer, head) pairs), every window's maps computed once for all.
std::vector<reference_entropy> entropy_of_heads(const headlens::head_analysis& analysis,
                                                const std::vector<std::pair<headlens::Index, headlens::Index>>& heads) {
  const headlens::attention_model& model = analysis.model();
  std::vector<reference_entropy> all(heads.size());
  for (const headlens::planned_document& doc : analysis.documents()) {
    for (std::size_t w = 0; w < doc.windows.size(); ++w) {
      const headlens::word_window& win = doc.windows[w];
      std::vector<headlens::char_span> spans;
      const std::size_t base = doc.surface.words[std::size_t(win.begin)].begin;
      for (headlens::Index v = win.begin; v < win.end; ++v) {
        spans.push_back({doc.surface.words[std::size_t(v)].begin - base, doc.surface.words[std::size_t(v)].end - base});
      }
      const headlens::token_alignment al = headlens::align_tokens(doc.tokens[w], spans);
      const headlens::tensor<float> maps = model.attention(headlens::token_ids(doc.tokens[w]));
      for (std::size_t k = 0; k < heads.size(); ++k) {
        reference_entropy& out = all[k];
        const auto rows = reference_word_rows(maps, heads[k].first, heads[k].second, al, win.size());
        for (headlens::Index li = win.own_begin - win.begin; li < win.own_end - win.begin; ++li) {
          double plogp = 0, sum = 0;
          for (double v : rows[std::size_t(li)]) {
            sum += v;
            if (v > 0) plogp += v * std::log(v);
          }
          if (sum == 0) continue;
          const double n = double(win.size()), causal_n = double(li + 1);
          if (causal_n >= 2) out.causal += -plogp / std::log(causal_n), ++out.causal_rows;
          if (n >= 2) out.bidirectional += -plogp / std::log(n), ++out.bidirectional_rows;
        }
      }
    }
  }
  return all;
}

}  // namespace

TEST_CASE("head_analysis normalises a decoder's entropy by the keys each word row sees") {
  const std::string dir = GENERATE(as<std::string>{}, "gpt2", "llama");
  INFO(dir);
  headlens::attention_model_options options;
  if (dir == "llama") options.tokenizer = models_dir + "/words/vocab.json";  // the fixture has no tokenizer
  const auto model = headlens::load_attention_model(models_dir + "/" + dir, options);
  REQUIRE(model->causal());
  const std::vector<headlens::document> docs = headlens::read_conllu(gum_sample);
  headlens::analysis_options opts;
  opts.window = 12;
  opts.features.sinks_apart = false;  // the plain entropy of every row, as the reference below computes it
  opts.features.causal = false;       // overridden by the model's own: it must not matter what is asked
  const headlens::head_analysis analysis(*model, docs, opts);
  const headlens::head_measurements measured = analysis.measure();
  CHECK(measured.features.options().causal);
  const std::vector<headlens::head_evidence> evidence = measured.features.evidence();
  std::vector<std::pair<headlens::Index, headlens::Index>> heads;
  for (headlens::Index l = 0; l < model->layers(); ++l) {
    for (headlens::Index h : {headlens::Index(0), model->heads() - 1}) heads.emplace_back(l, h);
  }
  const std::vector<reference_entropy> refs = entropy_of_heads(analysis, heads);
  for (std::size_t k = 0; k < heads.size(); ++k) {
    const auto [l, h] = heads[k];
    {
      INFO("layer " << l << " head " << h);
      const reference_entropy& ref = refs[k];
      const headlens::head_evidence& e = evidence[std::size_t(l * model->heads() + h)];
      REQUIRE(ref.causal_rows > 0);
      // A window's first row sees one key under a causal mask, so it has no entropy to normalise.
      const double causal = ref.causal / double(ref.causal_rows);
      const double bidirectional = ref.bidirectional / double(ref.bidirectional_rows);
      CHECK(e.general.entropy == Approx(causal).epsilon(1e-5));
      // The two normalisers differ by far more than rounding here, so a run that forgot the causal flag fails.
      CHECK(std::abs(causal - bidirectional) > 0.02);
    }
  }
}

TEST_CASE("head_analysis shards merge to the whole run exactly") {
  const auto model = headlens::load_attention_model(models_dir + "/gpt2");
  const std::vector<headlens::document> docs = headlens::read_conllu(gum_sample);
  headlens::analysis_options opts;
  opts.window = 16;
  const headlens::head_analysis analysis(*model, docs, opts);
  const headlens::head_measurements whole = analysis.measure();
  CHECK(whole.counts.windows == analysis.plan_counts().windows);
  for (std::size_t shards : {2u, 3u}) {
    headlens::head_measurements merged = analysis.measure(0, shards);
    for (std::size_t s = 1; s < shards; ++s) merged.merge(analysis.measure(s, shards));
    CHECK(merged.features == whole.features);
    CHECK(merged.counts == whole.counts);
  }
}

TEST_CASE("head_analysis refuses bad options") {
  const auto model = headlens::load_attention_model(models_dir + "/gpt2");
  const std::vector<headlens::document> docs = headlens::read_conllu(gum_sample);
  headlens::analysis_options opts;
  opts.window = 1;
  CHECK_THROWS_WITH(headlens::head_analysis(*model, docs, opts), Catch::Contains("window is 1, expected at least 2"));
  opts.window = 8;
  opts.stride = 9;
  CHECK_THROWS_WITH(headlens::head_analysis(*model, docs, opts), Catch::Contains("stride is 9, expected at most"));
  opts.stride = 0;
  opts.window = 49;
  CHECK_THROWS_WITH(
      headlens::head_analysis(*model, docs, opts),
      Catch::Contains("window is 49 words, but GPT-2 (2 layers x 4 heads, byte-level BPE) sees at most 48 "
                      "tokens; expected a window of at most 48 words"));
  opts.window = 16;
  CHECK_THROWS_WITH(headlens::head_analysis(*model, std::vector<headlens::document>(1), opts),
                    Catch::Contains("no document has a word"));
  const headlens::head_analysis analysis(*model, docs, opts);
  CHECK_THROWS_WITH(analysis.measure(2, 2), Catch::Contains("shard is 2 of 2, expected shard < shards"));
}

namespace {

void check_streaming_equals_materialised(const headlens::attention_model& model,
                                         const std::vector<headlens::document>& docs, headlens::Index window) {
  headlens::analysis_options streaming, materialised;
  streaming.window = materialised.window = window;
  materialised.materialise = true;
  const headlens::head_measurements s = headlens::head_analysis(model, docs, streaming).measure();
  const headlens::head_measurements m = headlens::head_analysis(model, docs, materialised).measure();
  CHECK(s.counts.windows == m.counts.windows);
  CHECK(s.counts.tokens == m.counts.tokens);
  CHECK(std::abs(s.counts.mean_dropped_mass() - m.counts.mean_dropped_mass()) < 1e-6);
  for (std::size_t k = 0; k < s.features.accumulators().size(); ++k) {
    INFO("layer " << k / std::size_t(model.heads()) << " head " << k % std::size_t(model.heads()));
    testing_support::check_totals_close(s.features.accumulators()[k].totals(), m.features.accumulators()[k].totals());
  }
  const auto labels = [](const headlens::head_measurements& run) {
    std::vector<std::string> out;
    for (const auto& v : headlens::classify_heads(headlens::annotated_policy(), run.features.evidence()))
      out.push_back(std::string(headlens::to_string(v.label)));
    return out;
  };
  CHECK(labels(s) == labels(m));
}

std::string use_lite_dir() {
  for (const char* env : {"HEADLENS_USE_LITE_DIR"}) {
    if (const char* dir = std::getenv(env); dir != nullptr && *dir != '\0') return dir;
  }
  const std::string cached =
      std::string(HEADLENS_TEST_DATA_DIR) + "/../../build/models/model-embeddings-en-0.2.0/package";
  return std::ifstream(cached + "/dist/model.json") ? cached : std::string();
}

}  // namespace

TEST_CASE("head_analysis streams features equal to the materialised path's") {
  const std::vector<headlens::document> docs = headlens::read_conllu(gum_sample);
  SECTION("GPT-2") {
    const auto model = headlens::load_attention_model(models_dir + "/gpt2");
    check_streaming_equals_materialised(*model, docs, 16);
  }
  SECTION("Llama") {
    headlens::attention_model_options options;
    options.tokenizer = models_dir + "/words/vocab.json";
    const auto model = headlens::load_attention_model(models_dir + "/llama", options);
    check_streaming_equals_materialised(*model, docs, 24);
  }
  SECTION("USE-lite") {
    const std::string dir = use_lite_dir();
    if (dir.empty()) {
      WARN("skipped: no USE-lite package; run make models");
      return;
    }
    const auto model = headlens::load_attention_model(dir);
    check_streaming_equals_materialised(*model, docs, 64);
  }
}

TEST_CASE("head_analysis gives the same measurements on any number of threads") {
  const auto model = headlens::load_attention_model(models_dir + "/gpt2");
  const std::vector<headlens::document> docs = headlens::read_conllu(gum_sample);
  headlens::analysis_options one, two;
  one.window = two.window = 16;
  one.threads = 1;
  two.threads = 2;
  std::size_t calls = 0, last = 0;
  two.progress = [&](std::size_t done, std::size_t total) {
    ++calls;
    CHECK(done > last);   // once per batch, counting its windows
    CHECK(total == 166);  // the GUM sample in windows of 16 words, narrowed to the 48 positions
    last = done;
  };
  const headlens::head_measurements a = headlens::head_analysis(*model, docs, one).measure();
  const headlens::head_analysis analysis(*model, docs, two);
  const headlens::head_measurements b = analysis.measure();
  CHECK(a.features == b.features);
  CHECK(a.counts == b.counts);
  CHECK(last == 166);
  CHECK(calls == analysis.batches().size());
}

TEST_CASE("head_analysis batches short windows: every window once, within the rows, the features of one at a time") {
  const std::vector<headlens::document> docs = headlens::read_conllu(gum_sample);
  const std::string dir = GENERATE(as<std::string>{}, "gpt2", "llama", "use-lite");
  INFO(dir);
  std::unique_ptr<headlens::attention_model> model;
  if (dir == "use-lite") {
    if (use_lite_dir().empty()) {
      WARN("skipped: no USE-lite package; run make models");
      return;
    }
    model = headlens::load_attention_model(use_lite_dir());
  } else {
    headlens::attention_model_options options;
    if (dir == "llama") options.tokenizer = models_dir + "/words/vocab.json";
    model = headlens::load_attention_model(models_dir + "/" + dir, options);
  }
  headlens::analysis_options batched, alone;
  batched.window = alone.window = 12;
  batched.batch_tokens = 160;
  alone.batch_tokens = 0;
  const headlens::head_analysis a(*model, docs, batched), b(*model, docs, alone);
  // Each window in exactly one batch; batches of several within the rows; some batch holds several.
  std::set<std::size_t> seen;
  std::size_t several = 0;
  for (const auto& batch : a.batches()) {
    if (batch.size() > 1) {
      ++several;
      CHECK(a.batch_rows(batch) <= 160);
    }
    for (const headlens::planned_window& w : batch) CHECK(seen.insert(w.order).second);
  }
  CHECK(seen.size() == a.plan_counts().windows);
  CHECK(several > 0);
  CHECK(b.batches().size() == b.plan_counts().windows);
  const headlens::head_measurements x = a.measure(), y = b.measure();
  CHECK(x.counts.windows == y.counts.windows);
  CHECK(x.counts.tokens == y.counts.tokens);
  CHECK(std::abs(x.counts.mean_dropped_mass() - y.counts.mean_dropped_mass()) < 1e-6);
  for (std::size_t k = 0; k < x.features.accumulators().size(); ++k) {
    INFO("layer " << k / std::size_t(model->heads()) << " head " << k % std::size_t(model->heads()));
    testing_support::check_totals_close(x.features.accumulators()[k].totals(), y.features.accumulators()[k].totals());
  }
  // Sharded, the batches merge to the whole run bit for bit.
  headlens::head_measurements merged = a.measure(0, 3);
  merged.merge(a.measure(1, 3));
  merged.merge(a.measure(2, 3));
  CHECK(merged.features == x.features);
  CHECK(merged.counts == x.counts);
}

}  // namespace test_head_analysis
