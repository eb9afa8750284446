// Per-token head gating on a decoder (hooks/head_gating.hpp): gate each head off at the tokens where its attention
// is spread evenly over what it sees or sits on the first token (an attention sink, the head "resting"), report the change in next-token cross-entropy,
// then save time: heads that a short calibration prefix finds off at most of its tokens get `head_mask` = false in
// their layer for the whole sequence, so their work is skipped, not zeroed. Timed in the same run, gated against
// ungated. Build it in Release (the CMake target defines EIGEN_DONT_PARALLELIZE; by hand, define it too).
//
//   build/bin/headlens-head_gating [llama_dir] [tokens] [entropy|sink] [threshold]
//
// Rules: `entropy` (default) gates a head off at a token where its attention is nearly uniform over what the
// token sees (entropy / log(position + 1) >= threshold, default 0.6); `sink` where at least `threshold` of it is
// on the first token (default 0.5). Both read statistics the streaming kernel computes in its tile loop.
//
// llama_dir: a Llama-style Hugging Face directory (config.json + model.safetensors); default the tiny random
// fixture tests/data/models/llama (2 layers x 4 heads), read from the source tree's root. The token ids are random
// (fixed seed): the fixture's weights are random too, so the figures show the mechanism, not a real model's heads.

#include <algorithm>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <headlens/hooks/head_gating.hpp>
#include <headlens/models/llama.hpp>

namespace {

using headlens::Index;
using headlens::matrix;
using masks = std::vector<std::vector<bool>>;

// The model layer by layer, so each layer gets its own head mask (transformer::forward gives every layer the same
// options). A Llama's layer input is its token embedding; the check in main makes sure of it.
template <class Hooks>
matrix<float> logits(const headlens::transformer<float>& model, const std::vector<std::int32_t>& ids,
                     const masks& head_masks, headlens::forward_options<float> options, Hooks& hooks) {
  matrix<float> x(Index(ids.size()), model.d_model());
  for (Index i = 0; i < x.rows(); ++i) x.row(i) = model.token_embedding().row(ids[std::size_t(i)]);
  for (std::size_t l = 0; l < model.blocks().size(); ++l) {
    options.head_mask = head_masks[l];
    x = model.blocks()[l].forward(x, options, hooks);
  }
  model.final_norm().apply(x, x, options.threads);
  return model.logits(x, options.threads);
}

// Mean next-token cross-entropy in nats: position i predicts ids[i + 1].
double next_token_loss(const matrix<float>& logits, const std::vector<std::int32_t>& ids) {
  double total = 0;
  for (Index i = 0; i + 1 < logits.rows(); ++i) {
    const double top = logits.row(i).maxCoeff();
    double sum = 0;
    for (Index j = 0; j < logits.cols(); ++j) sum += std::exp(double(logits(i, j)) - top);
    total += top + std::log(sum) - double(logits(i, ids[std::size_t(i + 1)]));
  }
  return total / double(logits.rows() - 1);
}

// CPU time of one call, in milliseconds: on one thread it is the work done, whatever else the machine runs.
template <class Fn>
double time_ms(Fn&& fn) {
  const std::clock_t start = std::clock();
  fn();
  return 1e3 * double(std::clock() - start) / CLOCKS_PER_SEC;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : "tests/data/models/llama";
  const Index tokens = argc > 2 ? std::atol(argv[2]) : 1024;
  const bool sink = argc > 3 && std::string(argv[3]) == "sink";
  const double threshold = argc > 4 ? std::atof(argv[4]) : sink ? 0.5 : 0.6;
  const auto model = headlens::load_llama<float>(dir);
  const Index layers = model.layer_count(), heads = model.blocks().front().attention().config().n_heads;

  std::mt19937 rng(2026);
  std::uniform_int_distribution<std::int32_t> id(0, std::int32_t(model.vocab_size() - 1));
  std::vector<std::int32_t> ids(static_cast<std::size_t>(tokens));
  for (auto& i : ids) i = id(rng);

  headlens::forward_options<float> options;
  options.threads = 1;  // steadier timings on a shared machine
  const masks all_heads(std::size_t(layers), std::vector<bool>(std::size_t(heads), true));
  headlens::no_hooks none;
  const matrix<float> clean = logits(model, ids, all_heads, options, none);
  if (clean != model.forward(ids, options)) {
    std::fprintf(stderr, "%s: the layer-by-layer run differs from the model's forward (not Llama-style?)\n",
                 dir.c_str());
    return 1;
  }
  const double clean_loss = next_token_loss(clean, ids);

  // Per-token gating of every head of every layer by the rule.
  const auto rule = [=](const headlens::gate_input<float>& in) {
    return sink ? headlens::sink_gate{threshold}(in) : headlens::entropy_gate{threshold}(in);
  };
  const auto make_gating = [&] {
    auto gating = headlens::make_head_gating<float>(rule);
    if (sink) {  // mark the sink, token 0 (marking costs a look-up per weight: only when the rule needs it)
      gating.statistics().marked.assign(std::size_t(tokens), false);
      gating.statistics().marked[0] = true;
    }
    return gating;
  };
  auto gating = make_gating();
  headlens::forward_options<float> attached = options;
  gating.attach(attached);
  const double gated_loss = next_token_loss(logits(model, ids, all_heads, attached, gating), ids);

  // Stage 1: a calibration prefix of 128 tokens decides which heads to skip: those off at >= half its tokens.
  const Index prefix = std::min<Index>(128, tokens);
  auto calibration = make_gating();
  if (sink) calibration.statistics().marked.resize(std::size_t(prefix));
  const std::vector<std::int32_t> head_ids(ids.begin(), ids.begin() + prefix);
  headlens::forward_options<float> calibration_options = options;
  calibration.attach(calibration_options);
  logits(model, head_ids, all_heads, calibration_options, calibration);
  const masks skip = calibration.record().head_masks(layers, heads, 0.5);

  // Stage 2: the whole sequence with those heads skipped (the rest ungated).
  const double masked_loss = next_token_loss(logits(model, ids, skip, options, none), ids);
  // Timings: the three runs interleaved, the fastest of `reps` each (the least disturbed by other processes).
  const int reps = 15;
  double ungated_ms = 1e300, masked_ms = 1e300, gating_ms = 1e300;
  for (int r = 0; r < reps; ++r) {
    ungated_ms = std::min(ungated_ms, time_ms([&] { logits(model, ids, all_heads, options, none); }));
    masked_ms = std::min(masked_ms, time_ms([&] { logits(model, ids, skip, options, none); }));
    gating_ms = std::min(gating_ms, time_ms([&] {
      auto g = make_gating();
      headlens::forward_options<float> o = options;
      g.attach(o);
      logits(model, ids, all_heads, o, g);
    }));
  }

  std::printf("%s: %ld layers x %ld heads, %ld random tokens; gate off where %s >= %.2f\n\n", dir.c_str(),
              long(layers), long(heads), long(tokens), sink ? "the mass on token 0" : "entropy / log(position + 1)",
              threshold);
  std::printf("share of tokens gated off, per head (whole sequence | calibration prefix of %ld tokens)\n",
              long(prefix));
  for (Index l = 0; l < layers; ++l) {
    std::printf("  layer %ld:", long(l));
    for (Index h = 0; h < heads; ++h) {
      std::printf("  h%ld %5.1f%% | %5.1f%%%s", long(h), 100 * gating.record().head(int(l), int(h)).share_off(),
                  100 * calibration.record().head(int(l), int(h)).share_off(),
                  skip[std::size_t(l)][std::size_t(h)] ? "" : " skip");
    }
    std::printf("\n");
  }
  Index skipped = 0;
  for (const auto& layer : skip) skipped += Index(std::count(layer.begin(), layer.end(), false));
  std::printf("\nnext-token cross-entropy (nats): ungated %.4f\n", clean_loss);
  std::printf("  per-token gating, %.1f%% of (head, token) pairs off: %.4f (%+.4f)\n",
              100 * gating.record().share_off(), gated_loss, gated_loss - clean_loss);
  std::printf("  %ld of %ld heads skipped by head_mask: %.4f (%+.4f)\n", long(skipped), long(layers * heads),
              masked_loss, masked_loss - clean_loss);
  std::printf("\nforward time, CPU time, fastest of %d interleaved runs each, 1 thread:\n", reps);
  std::printf("  ungated %.2f ms; per-token gating %.2f ms (%+.1f%%: computes everything, then zeroes);\n",
              ungated_ms, gating_ms, 100 * (gating_ms / ungated_ms - 1));
  std::printf("  skipped heads %.2f ms (%.1f%% saved)\n", masked_ms, 100 * (1 - masked_ms / ungated_ms));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "headlens-head_gating: %s\n", e.what());
  return 1;
}
