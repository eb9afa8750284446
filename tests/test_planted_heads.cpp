// Planted heads: synthetic word-level maps over real annotated documents (the CC-BY GUM fixture always, GUM dev
// when ../shared/data/gum/ is there) in which every head implements a known function (tests/support/
// planted_heads.hpp). The features and the annotated policy must recover the planted labels.
//
// The hidden tests "[.sweep]" print the macro-F1 tables (versus noise, versus sink share) of docs/planted-heads.md:
//   build/tests/test_planted_heads "[sweep]"
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "headlens/analysis/conllu.hpp"
#include "headlens/analysis/features.hpp"
#include "headlens/analysis/policies.hpp"
#include "headlens/analysis/report.hpp"
#include "support/planted_heads.hpp"

namespace test_planted_heads {

using headlens::head_label;
using headlens_test::head_kind;
using headlens_test::planted_head;

namespace {

const std::string fixture_path = std::string(HEADLENS_TEST_DATA_DIR) + "/gum/gum_cc_by_sample.conllu";
const std::string dev_path = std::string(HEADLENS_SHARED_DIR) + "/data/gum/en_gum-ud-dev.conllu";

bool exists(const std::string& path) { return std::ifstream(path).good(); }

/// The planted model: every kind three times (plain; with 20% sink; mixed 25% with a secondary function), laid
/// out as 3 layers of 11 heads. `noise` is applied to every head.
std::vector<planted_head> planted_model(double noise) {
  std::vector<planted_head> heads;
  for (int variant = 0; variant < 3; ++variant) {
    for (head_kind kind : headlens_test::all_head_kinds) {
      planted_head h;
      h.kind = kind;
      h.noise = noise;
      if (variant == 1) h.sink = 0.2;
      if (variant == 2) {
        // A minority function mixed in: positional heads get a little syntax, the other functional heads a little
        // offset, and heads without a function another function-less pattern (a quarter of a clean offset would
        // make a uniform head positional by Voita's argmax rule, and rightly so). head->dep is defined only on
        // words with dependents: on the leaves (about half the words) a quarter of an offset would be the argmax,
        // making it a genuinely ambiguous head at Voita's 90%; it gets a little sentence-start attention instead.
        switch (headlens_test::expected_label(kind)) {
          case head_label::positional:
            h.secondary = head_kind::dep_to_head;
            break;
          case head_label::syntactic:
            h.secondary = kind == head_kind::head_to_dep ? head_kind::sentence_start : head_kind::previous_word;
            break;
          case head_label::unassigned:
            h.secondary = kind == head_kind::uniform ? head_kind::random : head_kind::uniform;
            break;
          default:
            h.secondary = head_kind::previous_word;
            break;
        }
        h.secondary_weight = 0.25;
      }
      heads.push_back(h);
    }
  }
  return heads;
}

/// Sink shares of the sink suite: from none to more than half of every row on the window's first word.
constexpr double sink_shares[] = {0.0, 0.15, 0.3, 0.45, 0.6};
constexpr int sink_layers = static_cast<int>(sizeof(sink_shares) / sizeof(sink_shares[0]));

/// Every kind at every sink share in `sink_shares`, one layer per share (11 heads each), all with `noise`.
std::vector<planted_head> sink_model(double noise) {
  std::vector<planted_head> heads;
  for (double share : sink_shares) {
    for (head_kind kind : headlens_test::all_head_kinds) {
      planted_head h;
      h.kind = kind;
      h.noise = noise;
      h.sink = share;
      heads.push_back(h);
    }
  }
  return heads;
}

/// Evidence of every planted head over `docs`, in windows of `window` words every `stride` words.
std::vector<headlens::head_evidence> planted_evidence(const std::vector<headlens::document>& docs,
                                                      const std::vector<planted_head>& heads, int layers,
                                                      std::uint64_t seed, headlens::Index window = 128,
                                                      headlens::Index stride = 96) {
  const int per_layer = static_cast<int>(heads.size()) / layers;
  headlens::model_feature_accumulator acc(layers, per_layer);
  std::mt19937_64 rng(seed);
  std::vector<double> maps;
  for (const headlens::document& doc : docs) {
    const headlens::prepared_document prepared(doc);
    const headlens_test::planted_document planted(doc);
    const auto words = static_cast<headlens::Index>(doc.words.size());
    for (const headlens::word_window& win : headlens::make_windows(words, window, stride)) {
      const headlens::Index n = win.size();
      maps.assign(heads.size() * static_cast<std::size_t>(n * n), 0.0);
      for (std::size_t k = 0; k < heads.size(); ++k) {
        const headlens_test::planted_map m = planted.make(heads[k], win.begin, n, rng);
        std::copy(m.data(), m.data() + n * n, maps.begin() + static_cast<std::ptrdiff_t>(k) * n * n);
      }
      acc.add(maps.data(), layers, per_layer, n, prepared, win);
    }
  }
  return acc.evidence();
}

struct outcome {
  double f1 = 0;
  std::vector<head_label> truth, predicted;
  std::vector<headlens::head_verdict> verdicts;
};

template <class Policy>
outcome score(const Policy& policy, const std::vector<headlens::document>& docs, const std::vector<planted_head>& heads,
              std::uint64_t seed, int layers = 3) {
  outcome out;
  out.verdicts = headlens::classify_heads(policy, planted_evidence(docs, heads, layers, seed));
  for (std::size_t k = 0; k < heads.size(); ++k) {
    out.truth.push_back(headlens_test::expected_label(heads[k].kind));
    out.predicted.push_back(out.verdicts[k].label);
  }
  out.f1 = headlens_test::macro_f1(out.truth, out.predicted);
  return out;
}

std::string describe(const outcome& o, const std::vector<planted_head>& heads) {
  std::string text;
  for (std::size_t k = 0; k < heads.size(); ++k) {
    const auto& v = o.verdicts[k];
    text += std::string(o.truth[k] == o.predicted[k] ? "  ok  " : "  BAD ") + headlens_test::kind_name(heads[k].kind) +
            (heads[k].sink > 0 ? " +sink " + std::to_string(static_cast<int>(heads[k].sink * 100 + 0.5)) + "%" : "") +
            (heads[k].secondary_weight > 0 ? " +mix" : "") + " -> " + std::string(headlens::to_string(v.label)) + " (" +
            v.reason + ")";
    const std::size_t shown = std::getenv("PLANTED_VERBOSE") != nullptr ? v.evidence.size() : 2;
    for (std::size_t i = 0; i < v.evidence.size() && i < shown; ++i) {
      text += " | " + v.evidence[i].name + " " + std::to_string(v.evidence[i].value) + " vs " +
              std::to_string(v.evidence[i].baseline);
    }
    text += "\n";
  }
  return text;
}

/// Heuristic policy truth: what it can know without annotations (syntactic and coreference heads must come out
/// unassigned, "needs annotations" or otherwise; a discourse unit head is seen as long-range cross-sentence).
head_label heuristic_truth(head_kind kind) {
  const head_label l = headlens_test::expected_label(kind);
  return (l == head_label::syntactic || l == head_label::coreference) ? head_label::unassigned : l;
}

/// Checks the heuristic policy's labels: every head as `heuristic_truth` says, except discourse-unit heads, which
/// it may miss: on the fixture their related unit is mostly in the same sentence, so their attention off the sinks
/// is not mostly cross-sentence (before sinks were set apart, a 20% sink in another sentence lifted one over 0.5).
/// Returns the macro-F1.
double check_heuristic(const outcome& o, const std::vector<planted_head>& heads) {
  std::vector<head_label> truth;
  for (std::size_t k = 0; k < heads.size(); ++k) {
    truth.push_back(heuristic_truth(heads[k].kind));
    if (heads[k].kind == head_kind::discourse_unit) continue;
    INFO("head " << k << ": " << headlens_test::kind_name(heads[k].kind) << " sink " << heads[k].sink << " -> "
                 << headlens::to_string(o.predicted[k]) << " (" << o.verdicts[k].reason << ")");
    CHECK(o.predicted[k] == truth.back());
  }
  return headlens_test::macro_f1(truth, o.predicted);
}

}  // namespace

TEST_CASE("planted heads: the generator makes row-stochastic maps that implement the function") {
  const auto docs = headlens::read_conllu(fixture_path);
  REQUIRE(docs.size() == 2);
  const headlens::document& doc = docs[0];
  const headlens_test::planted_document planted(doc);
  std::mt19937_64 rng(7);
  const headlens::Index n = 40;
  for (head_kind kind : headlens_test::all_head_kinds) {
    planted_head h;
    h.kind = kind;
    h.noise = 0.1;
    h.sink = 0.1;
    const auto m = planted.make(h, 0, n, rng);
    INFO(headlens_test::kind_name(kind));
    REQUIRE(m.rows() == n);
    REQUIRE((m.rowwise().sum().array() - 1).abs().maxCoeff() < 1e-12);
    REQUIRE(m.minCoeff() >= 0);
  }
  planted_head h;
  h.kind = head_kind::dep_to_head;
  const auto m = planted.make(h, 0, n, rng);
  // word 0 "Parents" -> head "prosecuted" (word 1); word 3 "homeopathic" -> "treatment" (word 4)
  REQUIRE(m(0, 1) == 1.0);
  REQUIRE(m(3, 4) == 1.0);
  h.kind = head_kind::previous_word;
  REQUIRE(planted.make(h, 0, n, rng)(5, 4) == 1.0);
  h.kind = head_kind::sink;
  REQUIRE(planted.make(h, 0, n, rng).col(0).sum() == Approx(static_cast<double>(n)));
}

TEST_CASE("planted heads: macro-F1 helper") {
  using L = head_label;
  REQUIRE(headlens_test::macro_f1({L::syntactic, L::positional}, {L::syntactic, L::positional}) == 1.0);
  // syntactic: tp 1 fn 1 -> 2/3; positional: tp 1 fp 1 -> 2/3
  REQUIRE(headlens_test::macro_f1({L::syntactic, L::syntactic, L::positional},
                                  {L::syntactic, L::positional, L::positional}) == Approx(2.0 / 3.0));
}

TEST_CASE("planted heads: the annotated policy recovers the planted labels on the GUM fixture") {
  const auto docs = headlens::read_conllu(fixture_path);
  const auto heads = planted_model(0.3);
  const outcome o = score(headlens::annotated_policy(), docs, heads, 11);
  INFO(describe(o, heads));
  CHECK(o.f1 >= 0.95);
  // sink, uniform and random heads are never given a category
  for (std::size_t k = 0; k < heads.size(); ++k) {
    if (headlens_test::expected_label(heads[k].kind) == head_label::unassigned) {
      CHECK(o.predicted[k] == head_label::unassigned);
    }
  }
  SECTION("without noise everything is recovered") {
    const outcome clean = score(headlens::annotated_policy(), docs, planted_model(0.0), 12);
    INFO(describe(clean, heads));
    CHECK(clean.f1 == 1.0);
  }
}

TEST_CASE("planted heads: the heuristic policy finds positional, discourse, sink and broad heads") {
  const auto docs = headlens::read_conllu(fixture_path);
  const auto heads = planted_model(0.3);
  const outcome o = score(headlens::heuristic_policy(), docs, heads, 13);
  // 0.867 when the three discourse-unit heads are missed and every other head is right.
  CHECK(check_heuristic(o, heads) >= 0.85);
  for (std::size_t k = 0; k < heads.size(); ++k) {
    if (heads[k].kind == head_kind::sink && heads[k].secondary_weight == 0) CHECK(o.verdicts[k].reason == "sink");
    if (heads[k].kind == head_kind::uniform && heads[k].sink == 0) CHECK(o.verdicts[k].reason == "broad");
    if (headlens_test::expected_label(heads[k].kind) == head_label::syntactic) {
      CHECK(o.predicted[k] == head_label::unassigned);
    }
  }
}

// Real models park much of their attention on a sink (Clark et al. 2019: [CLS], [SEP]; at word level the window's
// first word and the separators); a head must be judged on the attention it does not park there.
TEST_CASE("planted heads: sinks of 0 to 60% keep every label") {
  const auto docs = headlens::read_conllu(fixture_path);
  const auto heads = sink_model(0.3);
  const outcome o = score(headlens::annotated_policy(), docs, heads, 31, sink_layers);
  INFO(describe(o, heads));
  CHECK(o.f1 >= 0.95);
  for (std::size_t k = 0; k < heads.size(); ++k) {
    if (headlens_test::expected_label(heads[k].kind) == head_label::unassigned) {
      CHECK(o.predicted[k] == head_label::unassigned);
    }
  }
  const outcome h = score(headlens::heuristic_policy(), docs, heads, 32, sink_layers);
  CHECK(check_heuristic(h, heads) >= 0.85);
}

TEST_CASE("planted heads: a dependency head with 45% on the first word is syntactic") {
  // The case of issue 9: 55% on the arcs, 45% on the window's first word, which lies in another sentence for most
  // rows; judged on every column, the argmax lands on the sink and the head looks like a discourse head.
  const auto docs = headlens::read_conllu(fixture_path);
  for (head_kind kind : {head_kind::dep_to_head, head_kind::head_to_dep, head_kind::dependency_both}) {
    planted_head h;
    h.kind = kind;
    h.sink = 0.45;
    h.noise = 0.3;
    const std::vector<planted_head> heads{h};
    const outcome o = score(headlens::annotated_policy(), docs, heads, 33, 1);
    INFO(describe(o, heads));
    CHECK(o.predicted[0] == head_label::syntactic);
  }
}

TEST_CASE("planted heads: GUM dev split") {
  if (!exists(dev_path)) {
    WARN("GUM dev split not found at " << dev_path << ": planted heads run on the fixture only");
    return;
  }
  const auto docs = headlens::read_conllu(dev_path);
  REQUIRE(docs.size() >= 10);
  const auto heads = planted_model(0.3);
  const outcome o = score(headlens::annotated_policy(), docs, heads, 21);
  INFO(describe(o, heads));
  CHECK(o.f1 >= 0.95);
  const outcome h = score(headlens::heuristic_policy(), docs, heads, 22);
  std::vector<head_label> truth;
  for (const planted_head& p : heads) truth.push_back(heuristic_truth(p.kind));
  INFO(describe(h, heads));
  CHECK(headlens_test::macro_f1(truth, h.predicted) >= 0.9);
  const auto sink_heads = sink_model(0.3);
  const outcome s = score(headlens::annotated_policy(), docs, sink_heads, 23, sink_layers);
  INFO(describe(s, sink_heads));
  CHECK(s.f1 >= 0.95);
}

TEST_CASE("planted heads: macro-F1 versus noise", "[.sweep]") {
  const bool dev = exists(dev_path);
  const auto docs = headlens::read_conllu(dev ? dev_path : fixture_path);
  std::printf("documents: %s (%zu)\n\n", dev ? "GUM dev" : "GUM fixture", docs.size());
  std::printf("| noise | annotated macro-F1 | heuristic macro-F1 | annotated: wrong heads (of 33) |\n");
  std::printf("|---:|---:|---:|---|\n");
  for (double noise : {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9}) {
    const auto heads = planted_model(noise);
    const outcome a = score(headlens::annotated_policy(), docs, heads, 100);
    const outcome h = score(headlens::heuristic_policy(), docs, heads, 100);
    std::vector<head_label> htruth;
    for (const planted_head& p : heads) htruth.push_back(heuristic_truth(p.kind));
    std::map<std::string, int> wrong;
    for (std::size_t k = 0; k < heads.size(); ++k) {
      if (a.truth[k] != a.predicted[k]) ++wrong[headlens_test::kind_name(heads[k].kind)];
    }
    std::string wrong_text;
    for (const auto& [name, count] : wrong) {
      wrong_text += (wrong_text.empty() ? "" : ", ") + name + " " + std::to_string(count);
    }
    std::printf("| %.2f | %.3f | %.3f | %s |\n", noise, a.f1, headlens_test::macro_f1(htruth, h.predicted),
                wrong_text.empty() ? "none" : wrong_text.c_str());
    std::fflush(stdout);
  }
}

TEST_CASE("planted heads: macro-F1 versus sink share", "[.sweep]") {
  const bool dev = exists(dev_path);
  const auto docs = headlens::read_conllu(dev ? dev_path : fixture_path);
  std::printf("documents: %s (%zu)\n\n", dev ? "GUM dev" : "GUM fixture", docs.size());
  std::printf("| noise | annotated macro-F1 | annotated: wrong heads (of 55) | heuristic: wrong heads |\n");
  std::printf("|---:|---:|---|---|\n");
  for (double noise : {0.0, 0.3, 0.5}) {
    const auto heads = sink_model(noise);
    const outcome a = score(headlens::annotated_policy(), docs, heads, 200, sink_layers);
    const outcome h = score(headlens::heuristic_policy(), docs, heads, 200, sink_layers);
    auto wrong = [&](const outcome& o, bool heuristic) {
      std::string text;
      for (std::size_t k = 0; k < heads.size(); ++k) {
        const head_label truth = heuristic ? heuristic_truth(heads[k].kind) : o.truth[k];
        if (truth == o.predicted[k]) continue;
        text += (text.empty() ? "" : ", ") + std::string(headlens_test::kind_name(heads[k].kind)) + " " +
                std::to_string(static_cast<int>(heads[k].sink * 100 + 0.5)) + "%";
      }
      return text.empty() ? std::string("none") : text;
    };
    std::printf("| %.2f | %.3f | %s | %s |\n", noise, a.f1, wrong(a, false).c_str(), wrong(h, true).c_str());
    std::fflush(stdout);
  }
}

}  // namespace test_planted_heads
