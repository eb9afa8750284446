// The main job's throughput: `head_analysis` (what `headlens classify` runs: windows fitted and tokenised once,
// the model with every head streaming, word-level features measured inside the kernel, the annotated policy) on a
// GPT-2-small-shaped checkpoint (12 layers x 12 heads, d 768, MLP 3072, random weights, written once to a
// temporary directory and loaded through `load_attention_model` like a downloaded one) over GUM dev, against the
// same model's uninstrumented forward (`transformer::hidden_states`, no observer) over the same windows' tokens, run
// the same way (the same batches; short batches several at once, one per thread). Reports words per second; the
// closing table gives job / forward time (target: at most 1 / 0.7 = 1.43, the job at least 0.7x of the forward's
// throughput) and, for short windows, the forward one window at a time against the batched forward.
//
// The first argument is how many words of the corpus to take (whole documents, in order, until that many): 200 (the
// first document) for the smoke run, 30000 (all of GUM dev's 28,119) for the full one; then the window and
// `batch_tokens` (see `job_args`). The tokenizer is the tiny test
// checkpoint's byte-level BPE (300 tokens, so about 3 tokens a word: windows of 700-900 tokens). GUM dev is read from
// ../shared/data/gum/en_gum-ud-dev.conllu (or $HEADLENS_GUM_DEV); where it is absent, the CC BY sample in
// tests/data/gum stands in.

#include <benchmark/benchmark.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/head_analysis.hpp>
#include <headlens/analysis/policies.hpp>
#include <headlens/io/safetensors.hpp>
#include <headlens/models/attention_model.hpp>
#include <string>
#include <vector>

#include "support/random_checkpoint.hpp"
#include "support/ratios.hpp"

namespace {

using headlens::Index;

std::string repo_root() {
  std::string file = __FILE__;
  const std::size_t at = file.rfind("bench/bench_job.cpp");
  return at == std::string::npos ? std::string(".") : file.substr(0, at);
}

/// A temporary directory removed at exit.
struct temporary_directory {
  std::filesystem::path path;
  ~temporary_directory() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// A GPT-2-small-shaped checkpoint with random weights (0.02 normal, as GPT-2 initialises), the test BPE.
std::string gpt2_small_dir() {
  namespace fs = std::filesystem;
  static const temporary_directory dir{[] {
    const fs::path d = fs::temp_directory_path() / ("headlens-bench-gpt2-small-" + std::to_string(::getpid()));
    fs::create_directories(d);
    const Index V = 300, P = 1024, D = 768, F = 3072, L = 12;
    headlens_bench::random_checkpoint t(7);
    t.add("wte.weight", {V, D});
    t.add("wpe.weight", {P, D});
    t.add("ln_f.weight", {D}, 1.0f);
    t.add("ln_f.bias", {D}, 0.0f);
    for (Index i = 0; i < L; ++i) {
      const std::string h = "h." + std::to_string(i) + ".";
      t.add(h + "ln_1.weight", {D}, 1.0f);
      t.add(h + "ln_1.bias", {D}, 0.0f);
      t.add(h + "attn.c_attn.weight", {D, 3 * D});
      t.add(h + "attn.c_attn.bias", {3 * D});
      t.add(h + "attn.c_proj.weight", {D, D});
      t.add(h + "attn.c_proj.bias", {D});
      t.add(h + "ln_2.weight", {D}, 1.0f);
      t.add(h + "ln_2.bias", {D}, 0.0f);
      t.add(h + "mlp.c_fc.weight", {D, F});
      t.add(h + "mlp.c_fc.bias", {F});
      t.add(h + "mlp.c_proj.weight", {F, D});
      t.add(h + "mlp.c_proj.bias", {D});
    }
    headlens::write_safetensors((d / "model.safetensors").string(), t.tensors());
    std::ofstream((d / "config.json").string())
        << R"({"model_type": "gpt2", "vocab_size": 300, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
              "n_head": 12, "n_inner": null, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05})";
    const fs::path fixture = fs::path(repo_root()) / "tests" / "data" / "models" / "gpt2";
    fs::copy_file(fixture / "vocab.json", d / "vocab.json", fs::copy_options::overwrite_existing);
    fs::copy_file(fixture / "merges.txt", d / "merges.txt", fs::copy_options::overwrite_existing);
    return d;
  }()};
  return dir.path.string();
}

struct setup {
  std::unique_ptr<headlens::attention_model> model;
  std::vector<headlens::document> all;
  std::string source;
};

setup& shared() {
  static setup s = [] {
    setup out;
    std::string path;
    if (const char* env = std::getenv("HEADLENS_GUM_DEV")) path = env;
    if (path.empty()) path = repo_root() + "../shared/data/gum/en_gum-ud-dev.conllu";
    if (!std::ifstream(path)) {
      std::fprintf(stderr, "bench_job: %s not found; using the CC BY sample instead\n", path.c_str());
      path = repo_root() + "tests/data/gum/gum_cc_by_sample.conllu";
    }
    out.source = path;
    out.all = headlens::read_conllu(path);
    out.model = headlens::load_attention_model(gpt2_small_dir());
    return out;
  }();
  return s;
}

/// Whole documents from the start of the corpus until at least `words` words.
std::vector<headlens::document> corpus_prefix(Index words) {
  std::vector<headlens::document> out;
  Index taken = 0;
  for (const headlens::document& d : shared().all) {
    if (taken >= words) break;
    out.push_back(d);
    taken += Index(d.words.size());
  }
  return out;
}

/// Args: words of the corpus, words per window (stride half of it), `batch_tokens` (0: one window per forward).
headlens::analysis_options options(const benchmark::State& state) {
  headlens::analysis_options o;
  o.window = state.range(1);
  o.stride = o.window / 2;
  o.batch_tokens = state.range(2);
  return o;
}

std::string args(const benchmark::State& state) {
  return "words:" + std::to_string(state.range(0)) + "/window:" + std::to_string(state.range(1)) +
         "/batch:" + std::to_string(state.range(2));
}

void BM_job(benchmark::State& state) {
  const std::vector<headlens::document> docs = corpus_prefix(state.range(0));
  const headlens::attention_model& model = *shared().model;
  std::size_t words = 0;
  for (auto _ : state) {
    const headlens::head_analysis analysis(model, docs, options(state));
    const headlens::head_measurements measured = analysis.measure();
    const auto verdicts = headlens::classify_heads(headlens::annotated_policy(), measured.features.evidence());
    benchmark::DoNotOptimize(verdicts.data());
    words = analysis.plan_counts().words;
  }
  state.counters["words/s"] = benchmark::Counter(double(words), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("vs:BM_forward/" + args(state));
}

void BM_forward(benchmark::State& state) {
  const std::vector<headlens::document> docs = corpus_prefix(state.range(0));
  const auto* model = dynamic_cast<const headlens::detail::transformer_attention_model*>(shared().model.get());
  // The same windows, tokens and batches as the job (planned outside the timed region).
  const headlens::head_analysis plan(*shared().model, docs, options(state));
  std::vector<std::vector<std::vector<std::int32_t>>> batches;
  std::size_t longest = 0, tokens = 0, rows = 0;
  for (const auto& batch : plan.batches()) {
    batches.emplace_back();
    for (const headlens::planned_window& w : batch) {
      batches.back().push_back(plan.window_ids(w));
      tokens += batches.back().back().size();
    }
    longest = std::max(longest, plan.batch_rows(batch));
    rows += plan.batch_rows(batch);
  }
  const int workers =
      headlens::head_analysis::window_workers(batches.size(), longest, headlens::detail::thread_count(0));
  for (auto _ : state) {
    headlens::detail::parallel_for(Index(batches.size()), workers, [&](Index b, int) {
#ifdef _OPENMP
      if (workers > 1) omp_set_num_threads(1);
#endif
      const auto& batch = batches[std::size_t(b)];
      const headlens::matrix<float> h =
          batch.size() == 1 ? model->model().hidden_states(batch.front()) : model->model().hidden_states_batch(batch);
      benchmark::DoNotOptimize(h.data());
    });
  }
  state.counters["words/s"] =
      benchmark::Counter(double(plan.plan_counts().words), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["batches"] = double(batches.size());
  state.counters["padding"] = double(rows - tokens) / double(rows);  // share of the rows run that are padding
  if (state.range(2) == 0) {  // one window per forward against the batched forward
    state.SetLabel("vs:BM_forward/words:" + std::to_string(state.range(0)) +
                   "/window:" + std::to_string(state.range(1)) + "/batch:256");
  }
}

// 256-word windows (700-900 tokens: each runs alone) over GUM dev, the issue's measure; 24-word windows (60-90
// tokens, what 64-word windows make with a real GPT-2 vocabulary) over its first 5,000 words, batched and one per
// forward.
void job_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"words", "window", "batch"});
  b->Args({200, 256, 256})->Args({200, 24, 256})->Args({30000, 256, 256});
  b->Args({5000, 24, 256})->Args({5000, 24, 0})->Args({5000, 12, 256})->Args({5000, 12, 0});
}
BENCHMARK(BM_forward)->Apply(job_args)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);
BENCHMARK(BM_job)->Apply(job_args)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);

}  // namespace

HEADLENS_BENCHMARK_MAIN()
