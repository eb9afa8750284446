// The main job at any context length (issue 9, section 4): one document of T tokens through a Llama-layout
// checkpoint (4 layers, 16 query heads and 4 key/value heads of 64, d 1024, SwiGLU MLP 2816, RoPE, 32,768
// positions, random weights written once to a temporary directory and loaded through `load_attention_model` like
// a downloaded one), classified as `headlens classify --window <all of it>` does (`head_analysis` in one window,
// every head streaming, word features measured inside the kernel, the annotated policy), against the same model's
// uninstrumented forward over the same tokens (`transformer::hidden_states`, no observer).
//
// Each run is a child process, so its peak resident set (wait4's rusage) is its own: for every T the table gives
// time and peak memory of both, their ratios (targets: memory at most 1.3x, time at most 1.5x), and what the
// materialised maps of the old `classify` ([layers, heads, T, T] floats) would need.
//
//   long_context_job [max T, default 32768] [min T, default 1024] [rounds, default 1]   (T doubles from min to max)
//
// With several rounds, forward and job alternate that many times per T and the table gives each one's fastest run
// (the machine is shared: the fastest is the one least disturbed) and its largest peak.
//
// The document is synthetic CoNLL-U: sentences of 15 words from a 96-word vocabulary, each word's head the word
// before it, so every word is one token of a word-level vocab.json and T = words + 1 (the BOS token). Not a Google
// Benchmark suite (tools/bench-run.sh does not run it): it needs one process per measurement. A Release build
// (`make bench-build`) puts it in build/bench-release/bench/.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/head_analysis.hpp>
#include <headlens/analysis/policies.hpp>
#include <headlens/io/safetensors.hpp>
#include <headlens/models/attention_model.hpp>
#include <random>
#include <string>
#include <vector>

#include "support/random_checkpoint.hpp"

namespace {

using headlens::Index;
namespace fs = std::filesystem;

constexpr Index layers = 4, heads = 16, kv_heads = 4, head_dim = 64, d_model = heads * head_dim, mlp = 2816,
                positions = 32768, vocab = 100;

/// The 96 words of the vocabulary: the 70 of consonant + vowel, then the 26 of consonant (but z) + a or e + n.
std::vector<std::string> words() {
  std::vector<std::string> out;
  const std::string consonants = "bdfgklmnprstvz", vowels = "aeiou";
  for (char c : consonants) {
    for (char v : vowels) out.push_back(std::string{c, v});
  }
  for (char c : consonants.substr(0, 13)) {
    for (char v : std::string("ae")) out.push_back(std::string{c, v, 'n'});
  }
  return out;
}

void write_checkpoint(const fs::path& dir) {
  headlens_bench::random_checkpoint t(11);
  t.add("model.embed_tokens.weight", {vocab, d_model});
  t.add("model.norm.weight", {d_model}, 1.0f);
  for (Index i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t.add(p + "input_layernorm.weight", {d_model}, 1.0f);
    t.add(p + "self_attn.q_proj.weight", {heads * head_dim, d_model});
    t.add(p + "self_attn.k_proj.weight", {kv_heads * head_dim, d_model});
    t.add(p + "self_attn.v_proj.weight", {kv_heads * head_dim, d_model});
    t.add(p + "self_attn.o_proj.weight", {d_model, heads * head_dim});
    t.add(p + "post_attention_layernorm.weight", {d_model}, 1.0f);
    t.add(p + "mlp.gate_proj.weight", {mlp, d_model});
    t.add(p + "mlp.up_proj.weight", {mlp, d_model});
    t.add(p + "mlp.down_proj.weight", {d_model, mlp});
  }
  headlens::write_safetensors((dir / "model.safetensors").string(), t.tensors());
  std::ofstream(dir / "config.json") << R"({"model_type": "llama", "vocab_size": )" << vocab
                                     << R"(, "hidden_size": )" << d_model << R"(, "intermediate_size": )" << mlp
                                     << R"(, "num_hidden_layers": )" << layers << R"(, "num_attention_heads": )"
                                     << heads << R"(, "num_key_value_heads": )" << kv_heads
                                     << R"(, "hidden_act": "silu", "max_position_embeddings": )" << positions
                                     << R"(, "rms_norm_eps": 1e-06, "rope_theta": 500000.0, "attention_bias": false,
      "mlp_bias": false, "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2})";
  std::ofstream vocab_file(dir / "vocab.json");
  vocab_file << R"({"[UNK]": 0, "<s>": 1, "</s>": 2)";
  int id = 3;
  for (const std::string& w : words()) vocab_file << ", \"" << w << "\": " << id++;
  vocab_file << "}";
}

/// One document of `n` words in sentences of 15, each word headed by the one before it.
void write_document(const fs::path& path, Index n) {
  const std::vector<std::string> vocabulary = words();
  std::mt19937 rng(5);
  std::ofstream out(path);
  out << "# newdoc id = long\n";
  for (Index begin = 0, sentence = 0; begin < n; begin += 15, ++sentence) {
    const Index length = std::min<Index>(15, n - begin);
    out << "# sent_id = s" << sentence << "\n";
    for (Index i = 1; i <= length; ++i) {
      const std::string& w = vocabulary[rng() % vocabulary.size()];
      out << i << '\t' << w << '\t' << w << "\tX\t_\t_\t" << (i - 1) << '\t' << (i == 1 ? "root" : "dep")
          << "\t_\t_\n";
    }
    out << "\n";
  }
}

struct run_result {
  double seconds = -1;
  double cpu_seconds = -1;  ///< user + system time of all the child's threads over the timed region
  double peak_mb = -1;
};

/// CPU time of every thread of this process so far.
double cpu_now() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto s = [](const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); };
  return s(u.ru_utime) + s(u.ru_stime);
}

/// What the child measures: wall and CPU seconds.
struct timing {
  double wall = -1, cpu = -1;
};

/// In the child: the forward (job == false) or the whole job over the document; prints nothing, returns its timing
/// through the pipe.
timing run(const fs::path& model_dir, const fs::path& document, bool job) {
  const auto model = headlens::load_attention_model(model_dir.string());
  const std::vector<headlens::document> docs = headlens::read_conllu(document.string());
  headlens::analysis_options options;
  options.window = Index(docs.front().words.size());
  options.stride = options.window;
  if (job) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu = cpu_now();
    const headlens::head_analysis analysis(*model, docs, options);
    const headlens::head_measurements measured = analysis.measure();
    const auto verdicts = headlens::classify_heads(headlens::annotated_policy(), measured.features.evidence());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (verdicts.size() != std::size_t(layers * heads) || analysis.plan_counts().refitted_windows != 0) return {};
    return {s, cpu_now() - cpu};
  }
  // The same tokens, planned outside the timed region.
  const headlens::head_analysis plan(*model, docs, options);
  const std::vector<std::int32_t> ids = headlens::token_ids(plan.documents().front().tokens.front());
  const auto* transformer = dynamic_cast<const headlens::detail::transformer_attention_model*>(model.get());
  const auto start = std::chrono::steady_clock::now();
  const double cpu = cpu_now();
  const headlens::matrix<float> h = transformer->model().hidden_states(ids);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return h.allFinite() ? timing{s, cpu_now() - cpu} : timing{};
}

run_result child(const fs::path& model_dir, const fs::path& document, bool job) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    timing s;
    try {
      s = run(model_dir, document, job);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "long_context_job: %s\n", e.what());
    }
    if (write(fds[1], &s, sizeof s) != sizeof s) _exit(2);
    _exit(s.wall > 0 ? 0 : 1);
  }
  close(fds[1]);
  run_result r;
  timing s;
  const bool got = read(fds[0], &s, sizeof s) == sizeof s;
  close(fds[0]);
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || !got) return r;
  r.seconds = s.wall;
  r.cpu_seconds = s.cpu;
  r.peak_mb = double(usage.ru_maxrss) / 1024.0;  // KiB on Linux
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Index max_t = argc > 1 ? std::atol(argv[1]) : positions;
  const Index min_t = argc > 2 ? std::atol(argv[2]) : 1024;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 1;
  if (max_t < 16 || max_t > positions || min_t < 16 || min_t > max_t || rounds < 1) {
    std::fprintf(stderr, "long_context_job: T is %ld..%ld in %d rounds, expected 16 <= min <= max <= %ld, rounds >= 1\n",
                 long(min_t), long(max_t), rounds, long(positions));
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() / ("headlens-long-context-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  write_checkpoint(dir);
  std::printf("Llama layout: %ld layers, %ld heads (%ld key/value) of %ld, d %ld, MLP %ld; one document of T tokens\n",
              long(layers), long(heads), long(kv_heads), long(head_dim), long(d_model), long(mlp));
  std::printf("| T | forward s | job s | time ratio | CPU time ratio | forward peak MB | job peak MB | memory ratio | "
              "materialised maps GB |\n|---|---|---|---|---|---|---|---|---|\n");
  int failures = 0;
  for (Index t = min_t; t <= max_t; t *= 2) {
    const fs::path document = dir / ("document-" + std::to_string(t) + ".conllu");
    write_document(document, t - 1);  // + BOS
    run_result forward, job;
    for (int round = 0; round < rounds; ++round) {
      // The fastest run of each, the largest peak; a failed run fails the row.
      const auto keep = [round](run_result& best, const run_result& r) {
        if (round > 0 && best.seconds <= 0) return;
        best.seconds = round == 0 || r.seconds <= 0 ? r.seconds : std::min(best.seconds, r.seconds);
        best.cpu_seconds = round == 0 || r.seconds <= 0 ? r.cpu_seconds : std::min(best.cpu_seconds, r.cpu_seconds);
        best.peak_mb = std::max(best.peak_mb, r.peak_mb);
      };
      keep(forward, child(dir, document, false));
      keep(job, child(dir, document, true));
    }
    if (forward.seconds <= 0 || job.seconds <= 0) {
      std::printf("| %ld | failed | | | | | | | |\n", long(t));
      ++failures;
      continue;
    }
    const double maps_gb = double(layers * heads) * double(t) * double(t) * sizeof(float) / 1e9;
    std::printf("| %ld | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %.2f | %.1f |\n", long(t), forward.seconds,
                job.seconds, job.seconds / forward.seconds, job.cpu_seconds / forward.cpu_seconds, forward.peak_mb,
                job.peak_mb, job.peak_mb / forward.peak_mb, maps_gb);
    std::fflush(stdout);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return failures == 0 ? 0 : 1;
}
