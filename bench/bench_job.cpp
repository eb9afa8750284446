// The main job's throughput: `head_analysis` (what `headlens classify` runs: windows fitted and tokenised once,
// the model with every head streaming, word-level features measured inside the kernel, the annotated policy) on a
// GPT-2-small-shaped checkpoint (12 layers x 12 heads, d 768, MLP 3072, random weights, written once to a
// temporary directory and loaded through `load_attention_model` like a downloaded one) over GUM dev in 256-word
// windows (stride 128), against the same model's uninstrumented forward (`transformer::hidden_states`, no observer)
// over the same windows' tokens, run the same way (short windows several at once, one per thread). Reports words per
// second; the closing table gives job / forward time (target: at most 1 / 0.7 = 1.43, the job at least 0.7x of
// the forward's throughput).
//
// The argument is how many words of the corpus to take (whole documents, in order, until that many): 200 (the first
// document) for the smoke run, 30000 (all of GUM dev's 28,119) for the full one. The tokenizer is the tiny test
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

headlens::analysis_options options() {
  headlens::analysis_options o;
  o.window = 256;
  o.stride = 128;
  return o;
}

void BM_job(benchmark::State& state) {
  const std::vector<headlens::document> docs = corpus_prefix(state.range(0));
  const headlens::attention_model& model = *shared().model;
  std::size_t words = 0;
  for (auto _ : state) {
    const headlens::head_analysis analysis(model, docs, options());
    const headlens::head_measurements measured = analysis.measure();
    const auto verdicts = headlens::classify_heads(headlens::annotated_policy(), measured.features.evidence());
    benchmark::DoNotOptimize(verdicts.data());
    words = analysis.plan_counts().words;
  }
  state.counters["words/s"] = benchmark::Counter(double(words), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel("vs:BM_forward/words:" + std::to_string(state.range(0)));
}

void BM_forward(benchmark::State& state) {
  const std::vector<headlens::document> docs = corpus_prefix(state.range(0));
  const auto* model = dynamic_cast<const headlens::detail::transformer_attention_model*>(shared().model.get());
  // The same windows and tokens as the job (planned outside the timed region).
  const headlens::head_analysis plan(*shared().model, docs, options());
  std::vector<std::vector<std::int32_t>> windows;
  std::size_t longest = 0;
  for (const headlens::planned_document& d : plan.documents()) {
    for (const auto& tokens : d.tokens) {
      windows.push_back(headlens::token_ids(tokens));
      if (windows.back().size() > std::size_t(model->max_tokens()))
        windows.back().resize(std::size_t(model->max_tokens()));
      longest = std::max(longest, windows.back().size());
    }
  }
  const int workers =
      headlens::head_analysis::window_workers(windows.size(), longest, headlens::detail::thread_count(0));
  for (auto _ : state) {
    headlens::detail::parallel_for(Index(windows.size()), workers, [&](Index w, int) {
#ifdef _OPENMP
      if (workers > 1) omp_set_num_threads(1);
#endif
      const headlens::matrix<float> h = model->model().hidden_states(windows[std::size_t(w)]);
      benchmark::DoNotOptimize(h.data());
    });
  }
  state.counters["words/s"] =
      benchmark::Counter(double(plan.plan_counts().words), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_forward)->ArgName("words")->Arg(200)->Arg(30000)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);
BENCHMARK(BM_job)->ArgName("words")->Arg(200)->Arg(30000)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);

}  // namespace

HEADLENS_BENCHMARK_MAIN()
