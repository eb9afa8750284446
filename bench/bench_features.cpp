// Head features for a 12-layer x 12-head model over the whole GUM dev split in 256-word windows (stride 128, so each
// word row is measured once, in the window where it is most central; and stride 256, no overlap), with random
// row-normalised maps: one iteration is the whole split. Reports the time per split and rows per second (one row =
// one head's attention from one word). The baseline reads the same rows once and sums them (the cost of touching
// the maps at all); the closing table gives features / baseline.
//
// The split is read from ../shared/data/gum/en_gum-ud-dev.conllu (or $HEADLENS_GUM_DEV); where it is absent the
// benchmark says so and runs on the CC BY fixture in tests/data/gum instead.
//
// Maps: 144 random maps of 256 x 256 are made once; a shorter window (the last of a document) gets the top-left
// blocks of those maps, renormalised, built outside the timed region.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/features.hpp>
#include <memory>
#include <string>
#include <vector>

#include "support/ratios.hpp"

namespace {

using headlens::Index;

constexpr int layers = 12, heads = 12;
constexpr Index window_words = 256;

std::string repo_root() {
  std::string file = __FILE__;
  const std::size_t at = file.rfind("bench/bench_features.cpp");
  return at == std::string::npos ? std::string(".") : file.substr(0, at);
}

struct corpus {
  std::string source;
  std::vector<headlens::prepared_document> docs;
  std::int64_t words = 0;
};

const corpus& gum() {
  static const corpus c = [] {
    corpus out;
    std::string path;
    if (const char* env = std::getenv("HEADLENS_GUM_DEV")) path = env;
    if (path.empty()) path = repo_root() + "../shared/data/gum/en_gum-ud-dev.conllu";
    if (!std::ifstream(path)) {
      std::fprintf(stderr,
                   "bench_features: %s is absent; running on the CC BY fixture instead (figures are not for the "
                   "whole dev split)\n",
                   path.c_str());
      path = repo_root() + "tests/data/gum/gum_cc_by_sample.conllu";
    }
    out.source = path;
    headlens::conllu_reader reader(path);
    headlens::document doc;
    while (reader.next(doc)) {
      out.docs.emplace_back(doc);
      out.words += static_cast<std::int64_t>(doc.words.size());
    }
    std::fprintf(stderr, "bench_features: %zu documents, %lld words from %s\n", out.docs.size(),
                 static_cast<long long>(out.words), path.c_str());
    return out;
  }();
  return c;
}

// Random row-normalised maps [layers, heads, n, n], C order; a small fast generator (xorshift) keeps setup short.
std::vector<float> random_maps(Index n, std::uint64_t seed) {
  std::vector<float> maps(static_cast<std::size_t>(layers * heads * n * n));
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t r = 0; r < maps.size(); r += static_cast<std::size_t>(n)) {
    float sum = 0;
    for (Index j = 0; j < n; ++j) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      const float u = static_cast<float>(s >> 40) * (1.0f / 16777216.0f);
      const float v = u * u * u * u;  // peaky rows, so argmaxes and entropies vary
      maps[r + static_cast<std::size_t>(j)] = v;
      sum += v;
    }
    for (Index j = 0; j < n; ++j) maps[r + static_cast<std::size_t>(j)] /= sum;
  }
  return maps;
}

// The top-left n x n block of every map in `full` (size window_words), rows renormalised.
void shrink_maps(const std::vector<float>& full, Index n, std::vector<float>& out) {
  out.resize(static_cast<std::size_t>(layers * heads * n * n));
  for (Index m = 0; m < layers * heads; ++m) {
    for (Index i = 0; i < n; ++i) {
      const float* src = full.data() + (m * window_words + i) * window_words;
      float* dst = out.data() + (m * n + i) * n;
      float sum = 0;
      for (Index j = 0; j < n; ++j) sum += src[j];
      for (Index j = 0; j < n; ++j) dst[j] = src[j] / sum;
    }
  }
}

const std::vector<float>& full_maps() {
  static const std::vector<float> maps = random_maps(window_words, 42);
  return maps;
}

// Runs `per_window(maps, n, doc, window)` over every window of the split; short windows get their maps built with
// the timer paused.
template <class PerWindow>
void over_split(benchmark::State& state, Index stride, PerWindow&& per_window) {
  const corpus& c = gum();
  std::vector<float> shrunk;
  const std::vector<float>& full = full_maps();
  for (const headlens::prepared_document& doc : c.docs) {
    for (const headlens::word_window& win : headlens::make_windows(doc.words(), window_words, stride)) {
      const Index n = win.size();
      const float* maps = full.data();
      if (n != window_words) {
        state.PauseTiming();
        shrink_maps(full, n, shrunk);
        state.ResumeTiming();
        maps = shrunk.data();
      }
      per_window(maps, n, doc, win);
    }
  }
}

void set_counters(benchmark::State& state, const char* baseline) {
  const corpus& c = gum();
  const double rows = static_cast<double>(c.words) * layers * heads;
  state.SetItemsProcessed(static_cast<std::int64_t>(rows) * state.iterations());
  state.counters["rows/s"] =
      benchmark::Counter(rows * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["words"] = static_cast<double>(c.words);
  if (baseline != nullptr) state.SetLabel(std::string("vs:") + baseline + "/stride:" + std::to_string(state.range(0)));
}

// The features: a model accumulator over the whole split.
void features_gum_dev(benchmark::State& state) {
  gum();
  full_maps();
  const Index stride = state.range(0);
  std::int64_t rows = 0;
  for (auto _ : state) {
    headlens::model_feature_accumulator acc(layers, heads);
    over_split(state, stride,
               [&](const float* maps, Index n, const headlens::prepared_document& doc,
                   const headlens::word_window& win) { acc.add(maps, layers, heads, n, doc, win); });
    rows = acc.head(0, 0).evidence().positional.rows;
    benchmark::DoNotOptimize(rows);
  }
  if (rows != gum().words) state.SkipWithError("rows measured differ from the split's word count");
  set_counters(state, "read_rows/gum_dev");
}

// The floor: read each measured row once and sum it (Eigen's vectorised reduction).
void read_rows_gum_dev(benchmark::State& state) {
  gum();
  full_maps();
  const Index stride = state.range(0);
  for (auto _ : state) {
    double total = 0;
    over_split(state, stride,
               [&](const float* maps, Index n, const headlens::prepared_document&, const headlens::word_window& win) {
                 for (Index m = 0; m < layers * heads; ++m) {
                   for (Index i = win.own_begin - win.begin; i < win.own_end - win.begin; ++i) {
                     const float* row = maps + (m * n + i) * n;
                     float s = 0;
                     for (Index j = 0; j < n; ++j) s += row[j];
                     total += s;
                   }
                 }
               });
    benchmark::DoNotOptimize(total);
  }
  set_counters(state, nullptr);
}

}  // namespace

BENCHMARK(features_gum_dev)
    ->Name("features/gum_dev")
    ->ArgName("stride")
    ->Arg(128)
    ->Arg(256)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(read_rows_gum_dev)
    ->Name("read_rows/gum_dev")
    ->ArgName("stride")
    ->Arg(128)
    ->Arg(256)
    ->Unit(benchmark::kMillisecond);

HEADLENS_BENCHMARK_MAIN()
