// The causal check of labels on synthetic targets whose losses are a known function of the ablated heads, over a
// hand-built document whose phenomenon tokens are worked out by hand below. The expected effects and p-values are
// recomputed here from the planted losses and the hand-made token lists (not from the code under test); the sets
// the check evaluated are read from the target's own log.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "headlens/analysis/ablation_target.hpp"
#include "headlens/analysis/causal_check.hpp"
#include "headlens/analysis/conllu.hpp"
#include "headlens/analysis/phenomenon_tokens.hpp"

namespace test_causal_check {

using headlens::ablation;
using headlens::causal_verdict;
using headlens::head_label;
using headlens::head_ref;
using headlens::head_set;
using headlens::Index;

namespace {

/// "John saw Mary . He smiled ." — two sentences, three discourse units, John and He coreferent.
///   word:  0 John  1 saw  2 Mary  3 .  | 4 He  5 smiled  6 .
///   head:  1       -1     1       1    | 5     -1        5
///   discourse units [0,2) [2,4) [4,7); mentions John [0,1) and He [4,5) of cluster 0, Mary [2,3) of cluster 1.
headlens::document story(bool with_mentions = true, bool with_units = true) {
  headlens::document d;
  d.id = "story";
  const char* forms[] = {"John", "saw", "Mary", ".", "He", "smiled", "."};
  const headlens::doc_index heads[] = {1, -1, 1, 1, 5, -1, 5};
  for (int w = 0; w < 7; ++w) {
    headlens::word x;
    x.form = forms[w];
    x.head = heads[w];
    x.sentence = w < 4 ? 0 : 1;
    d.words.push_back(x);
  }
  d.sentences.push_back({0, 4, 0, "s1", "John saw Mary."});
  d.sentences.push_back({4, 7, 0, "s2", "He smiled."});
  d.paragraphs.push_back({0, 2});
  if (with_mentions) {
    headlens::mention john{0, 1, 0, "person", -1, headlens::mention_head_source::none};
    headlens::mention mary{2, 3, 1, "person", -1, headlens::mention_head_source::none};
    headlens::mention he{4, 5, 0, "person", -1, headlens::mention_head_source::none};
    d.mentions = {john, mary, he};
    d.clusters.push_back({"e1", "person", {0, 2}});
    d.clusters.push_back({"e2", "person", {1}});
  }
  if (with_units) {
    d.discourse_units.push_back({0, 2, 1, "ROOT", -1, {}});
    d.discourse_units.push_back({2, 4, 2, "elaboration", 0, {}});
    d.discourse_units.push_back({4, 7, 3, "sequence", 0, {}});
  }
  return d;
}

/// The decoder unit: BOS, John, saw, Ma, ry, ., He, smiled, . (Mary in two pieces).
const std::vector<Index> story_tokens = {-1, 0, 1, 2, 2, 3, 4, 5, 6};

// By hand, for the decoder unit (a word is visible to token t when its first token is before t):
//   syntactic: saw (dependent John before it), Ma/ry/. (head saw before), smiled (dependent He), . (head smiled);
//              not John (its head comes later), not He (same);
//   coreference: He (antecedent John earlier); discourse: John, Ma (unit [2,4)), He.
const std::vector<bool> decoder_syntactic = {false, false, true, true, true, true, false, true, true};
const std::vector<bool> decoder_coreference = {false, false, false, false, false, false, true, false, false};
const std::vector<bool> story_discourse = {false, true, false, true, false, false, true, false, false};

/// A target whose loss at token t with the set S ablated is clean[t] + sum over heads h of S of effect(h, t); a
/// decoder's token 0 is unscored. Logs every set it evaluates.
class planted_target : public headlens::ablation_target {
 public:
  using effect_fn = std::function<double(head_ref, Index)>;
  planted_target(std::vector<int> heads_per_layer, Index tokens, bool decoder, effect_fn effect,
                 effect_fn mean_effect = nullptr)
      : heads_per_layer_(std::move(heads_per_layer)), effect_(std::move(effect)), mean_(std::move(mean_effect)) {
    clean_.loss.resize(static_cast<std::size_t>(tokens));
    clean_.scored.assign(static_cast<std::size_t>(tokens), true);
    for (Index t = 0; t < tokens; ++t) clean_.loss[static_cast<std::size_t>(t)] = 2.0 + 0.125 * static_cast<double>(t);
    if (decoder && tokens > 0) clean_.scored[0] = false;
  }
  const std::vector<int>& heads_per_layer() const override { return heads_per_layer_; }
  Index token_count() const override { return static_cast<Index>(clean_.loss.size()); }
  const headlens::token_losses& clean() const override { return clean_; }
  headlens::token_losses losses(const head_set& ablated, ablation kind) const override {
    if (ablated.heads_per_layer() != heads_per_layer_) throw headlens::argument_error("planted_target: wrong shape");
    if (kind == ablation::mean && !mean_) throw headlens::argument_error("planted_target: made without means");
    if (static_cast<int>(log.size()) == throw_at) throw headlens::argument_error("planted_target: failed on purpose");
    log.push_back(ablated);
    headlens::token_losses out = clean_;
    for (const head_ref& h : ablated.heads()) {
      for (Index t = 0; t < token_count(); ++t)
        out.loss[static_cast<std::size_t>(t)] += kind == ablation::mean ? mean_(h, t) : effect_(h, t);
    }
    return out;
  }
  mutable std::vector<head_set> log;
  int throw_at = -1;  ///< losses() throws when this many sets were evaluated
  std::vector<int> heads_per_layer_;
  effect_fn effect_, mean_;
  headlens::token_losses clean_;
};

std::vector<headlens::head_verdict> verdicts(const std::vector<int>& hpl,
                                             const std::vector<std::pair<head_ref, head_label>>& labelled) {
  std::vector<headlens::head_verdict> out;
  for (int l = 0; l < static_cast<int>(hpl.size()); ++l) {
    for (int h = 0; h < hpl[static_cast<std::size_t>(l)]; ++h) {
      headlens::head_verdict v;
      v.layer = l;
      v.head = h;
      for (const auto& x : labelled) {
        if (x.first == head_ref{l, h}) v.label = x.second;
      }
      out.push_back(v);
    }
  }
  return out;
}

/// A small spread of values in [0.3, 0.4) that differs per head and token, so random sets differ.
double noise(head_ref h, Index t) {
  return 0.3 + 0.1 * static_cast<double>((h.layer * 7 + h.head * 3 + static_cast<int>(t) * 5) % 11) / 11.0;
}

/// The effect of ablating `set` on the planted target, recomputed here: mean loss change over the scored tokens
/// of `mask` minus that over the other scored tokens (or over all when `all`).
double expected_effect(const std::vector<head_ref>& set, const planted_target::effect_fn& effect,
                       const std::vector<bool>& mask, const std::vector<bool>& scored, bool all) {
  double p = 0, o = 0;
  int np = 0, no = 0;
  for (std::size_t t = 0; t < mask.size(); ++t) {
    if (!scored[t]) continue;
    double d = 0;
    for (const head_ref& h : set) d += effect(h, static_cast<Index>(t));
    if (all || mask[t]) {
      p += d;
      ++np;
    } else {
      o += d;
      ++no;
    }
  }
  return all ? p / np : p / np - o / no;
}

int per_layer(const head_set& s, int layer) {
  int n = 0;
  for (const head_ref& h : s.heads()) n += h.layer == layer ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("phenomenon_tokens: a decoder sees earlier words only") {
  const headlens::document d = story();
  const headlens::phenomenon_tokens pt = headlens::find_phenomenon_tokens(d, story_tokens, /*causal=*/true);
  REQUIRE(pt.of(head_label::syntactic) == decoder_syntactic);
  REQUIRE(pt.of(head_label::coreference) == decoder_coreference);
  REQUIRE(pt.of(head_label::discourse) == story_discourse);
  REQUIRE(pt.of(head_label::positional) == std::vector<bool>(9, true));
  REQUIRE(pt.has_annotations(head_label::syntactic));
  REQUIRE(pt.has_annotations(head_label::coreference));
  REQUIRE(pt.discourse_units);
  REQUIRE_THROWS_AS(pt.of(head_label::unassigned), headlens::argument_error);
}

TEST_CASE("phenomenon_tokens: an encoder sees the whole unit, and nothing beyond it") {
  const headlens::document d = story();
  const headlens::phenomenon_tokens pt = headlens::find_phenomenon_tokens(d, story_tokens, /*causal=*/false);
  // Every word has its head or a dependent in the unit; only BOS has none.
  REQUIRE(pt.of(head_label::syntactic) == std::vector<bool>{false, true, true, true, true, true, true, true, true});
  REQUIRE(pt.of(head_label::coreference) == decoder_coreference);  // John has no earlier antecedent; He has John
  REQUIRE(pt.of(head_label::discourse) == story_discourse);

  // A window over "Mary . He" (with a [CLS]): their heads (saw, smiled) and He's antecedent are outside it.
  const std::vector<Index> window = {-1, 2, 3, 4};
  const headlens::phenomenon_tokens w = headlens::find_phenomenon_tokens(d, window, false);
  REQUIRE(w.of(head_label::syntactic) == std::vector<bool>(4, false));
  REQUIRE(w.of(head_label::coreference) == std::vector<bool>(4, false));
  REQUIRE(w.of(head_label::discourse) == std::vector<bool>{false, true, false, true});  // unit [2,4), sentence 2

  // The same words in a decoder: "smiled" sees its dependent He before it.
  const std::vector<Index> second = {4, 5, 6};
  REQUIRE(headlens::find_phenomenon_tokens(d, second, true).of(head_label::syntactic) ==
          std::vector<bool>{false, true, true});
}

TEST_CASE("phenomenon_tokens: missing layers, empty units and bad indices") {
  headlens::document bare = story(false, false);
  for (auto& w : bare.words) w.head = headlens::word::no_head;
  const headlens::phenomenon_tokens pt = headlens::find_phenomenon_tokens(bare, story_tokens, true);
  REQUIRE_FALSE(pt.has_annotations(head_label::syntactic));
  REQUIRE_FALSE(pt.has_annotations(head_label::coreference));
  REQUIRE(pt.has_annotations(head_label::discourse));  // sentences are always there
  REQUIRE_FALSE(pt.discourse_units);
  // Sentence starts only: John and He.
  REQUIRE(pt.of(head_label::discourse) ==
          std::vector<bool>{false, true, false, false, false, false, true, false, false});
  REQUIRE(pt.of(head_label::syntactic) == std::vector<bool>(9, false));

  const headlens::document d = story();
  const headlens::phenomenon_tokens none = headlens::find_phenomenon_tokens(d, {-1, -1}, true);
  REQUIRE(none.of(head_label::syntactic) == std::vector<bool>(2, false));
  REQUIRE(none.of(head_label::positional) == std::vector<bool>(2, true));
  REQUIRE(headlens::find_phenomenon_tokens(d, {}, true).of(head_label::positional).empty());

  REQUIRE_THROWS_WITH(headlens::find_phenomenon_tokens(d, {-1, 0, 7}, true),
                      "headlens: find_phenomenon_tokens: token_word[2] is 7, expected -1 (no word) or a word index in "
                      "[0, 7) of document 'story'");
  REQUIRE_THROWS_AS(headlens::find_phenomenon_tokens(d, {-2}, false), headlens::argument_error);
  headlens::document bad = story();
  bad.words[3].head = 40;
  REQUIRE_THROWS_WITH(headlens::find_phenomenon_tokens(bad, story_tokens, true),
                      Catch::Contains("word 3 of document 'story' has head 40"));
  bad = story();
  bad.mentions[1].end = 9;
  REQUIRE_THROWS_WITH(headlens::find_phenomenon_tokens(bad, story_tokens, true),
                      Catch::Contains("mention 1 of document 'story' spans [2, 9)"));
}

namespace {

/// The phenomenon tokens by brute force, straight from the definitions (file comment of phenomenon_tokens.hpp):
/// for each token, every word and mention of the document is tried.
std::array<std::vector<bool>, 4> brute_force(const headlens::document& d, const std::vector<Index>& tw, bool causal) {
  const std::size_t T = tw.size();
  auto visible = [&](headlens::doc_index x, std::size_t t) {  // some token of word x is visible to token t
    for (std::size_t s = 0; s < (causal ? t : T); ++s) {
      if (tw[s] == x) return true;
    }
    return false;
  };
  std::array<std::vector<bool>, 4> out;
  for (auto& v : out) v.assign(T, false);
  for (std::size_t t = 0; t < T; ++t) {
    out[3][t] = true;
    const Index w = tw[t];
    if (w < 0) continue;
    for (headlens::doc_index x = 0; x < static_cast<headlens::doc_index>(d.words.size()); ++x) {
      if (x == w) continue;
      const bool arc = d.words[static_cast<std::size_t>(w)].head == x || d.words[static_cast<std::size_t>(x)].head == w;
      if (arc && visible(x, t)) out[0][t] = true;
    }
    for (const headlens::mention& m : d.mentions) {
      if (w < m.begin || w >= m.end) continue;
      for (const headlens::mention& a : d.mentions) {
        if (a.cluster != m.cluster || a.end > m.begin) continue;
        for (headlens::doc_index y = a.begin; y < a.end; ++y) {
          if (visible(y, t)) out[1][t] = true;
        }
      }
    }
    bool first = true;  // t is the first token of its word
    for (std::size_t s = 0; s < t; ++s) first = first && tw[s] != w;
    if (first) {
      for (const headlens::sentence& s : d.sentences) out[2][t] = out[2][t] || s.begin == w;
      for (const headlens::discourse_unit& u : d.discourse_units) out[2][t] = out[2][t] || u.begin == w;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("phenomenon_tokens: on GUM documents, the same as the definitions by brute force") {
  const auto docs = headlens::read_conllu(std::string(HEADLENS_TEST_DATA_DIR) + "/gum/gum_cc_by_sample.conllu");
  REQUIRE(docs.size() == 2);
  std::array<std::size_t, 4> carried{};
  std::size_t tokens = 0;
  for (const headlens::document& d : docs) {
    REQUIRE(!d.mentions.empty());
    REQUIRE(!d.discourse_units.empty());
    // Sentence units for a decoder (BOS first; words longer than 6 letters in two pieces), and windows of 40 words
    // every 20 for an encoder ([CLS] first, [SEP] last).
    std::vector<std::pair<std::vector<Index>, bool>> units;
    for (const headlens::sentence& s : d.sentences) {
      std::vector<Index> tw = {-1};
      for (headlens::doc_index w = s.begin; w < s.end; ++w) {
        tw.push_back(w);
        if (d.words[static_cast<std::size_t>(w)].form.size() > 6) tw.push_back(w);
      }
      units.emplace_back(tw, true);
    }
    const auto n = static_cast<headlens::doc_index>(d.words.size());
    for (headlens::doc_index b = 0; b < n; b += 20) {
      std::vector<Index> tw = {-1};
      for (headlens::doc_index w = b; w < std::min(n, b + 40); ++w) tw.push_back(w);
      tw.push_back(-1);
      units.emplace_back(tw, false);
    }
    for (const auto& unit : units) {
      const headlens::phenomenon_tokens pt = headlens::find_phenomenon_tokens(d, unit.first, unit.second);
      const auto expected = brute_force(d, unit.first, unit.second);
      for (std::size_t c = 0; c < 4; ++c) {
        REQUIRE(pt.carries[c] == expected[c]);
        for (bool b : expected[c]) carried[c] += b ? 1 : 0;
      }
      tokens += unit.first.size();
    }
  }
  // Every category is exercised (and none is everything).
  for (std::size_t c = 0; c < 3; ++c) {
    REQUIRE(carried[c] > 0);
    REQUIRE(carried[c] < tokens);
  }
}

TEST_CASE("causal_check: heads that hurt exactly their phenomenon are supported, at the smallest p") {
  const std::vector<int> hpl = {9, 9, 9};
  const head_ref s1{0, 1}, s2{1, 2}, p1{2, 0}, p2{2, 3};
  // Syntactic heads add 1 on the syntactic tokens only; positional heads add 2 everywhere; the others a little
  // noise everywhere.
  const planted_target::effect_fn effect = [&](head_ref h, Index t) {
    if (h == s1 || h == s2) return decoder_syntactic[static_cast<std::size_t>(t)] ? 1.0 : 0.0;
    if (h == p1 || h == p2) return 2.0;
    return noise(h, t);
  };
  const headlens::document d = story();
  planted_target a(hpl, 9, true, effect), b(hpl, 9, true, effect);
  std::vector<headlens::causal_unit> units;
  units.emplace_back(d, story_tokens, a, true);
  units.emplace_back(d, story_tokens, b, true);
  const auto v = verdicts(hpl, {{s1, head_label::syntactic},
                                {s2, head_label::syntactic},
                                {p1, head_label::positional},
                                {p2, head_label::positional}});
  std::vector<std::pair<std::size_t, std::size_t>> progress;
  headlens::causal_check_options options;
  options.progress = [&](std::size_t done, std::size_t total) { progress.emplace_back(done, total); };
  const headlens::causal_check_result r = headlens::run_causal_check(units, v, options);

  REQUIRE(r.units == 2);
  REQUIRE(r.tokens == 16);
  REQUIRE(r.random_sets == 50);
  REQUIRE(r.kind == ablation::zero);
  const headlens::label_causal_check& syn = r.of(head_label::syntactic);
  REQUIRE(syn.verdict == causal_verdict::supported);
  REQUIRE(syn.heads == std::vector<head_ref>{s1, s2});
  // 6 of the 8 scored tokens per unit are syntactic; the two heads add 2 there and 0 elsewhere.
  REQUIRE(syn.phenomenon_tokens == 12);
  REQUIRE(syn.other_tokens == 4);
  REQUIRE(syn.phenomenon_change == Approx(2.0));
  REQUIRE(syn.other_change == Approx(0.0).margin(1e-12));
  REQUIRE(syn.effect == Approx(2.0));
  REQUIRE(syn.scope == headlens::random_scope::same_layers);
  REQUIRE(syn.possible_sets == 64);  // C(8,1) x C(8,1) > 50: sampled
  REQUIRE_FALSE(syn.exact);
  REQUIRE(syn.random_effects.size() == 50);
  REQUIRE(syn.random_at_least == 0);
  REQUIRE(syn.p_value == Approx(1.0 / 51));
  REQUIRE(syn.z > 3);
  // The random effects, recomputed from the sets the check reports and the planted function.
  const std::vector<bool> scored = a.clean().scored;
  headlens::causal_check check(hpl, v);
  const std::vector<head_set>& drawn = check.random_sets(head_label::syntactic);
  REQUIRE(drawn.size() == 50);
  double mean = 0;
  for (std::size_t k = 0; k < drawn.size(); ++k) {
    const double e = expected_effect(drawn[k].heads(), effect, decoder_syntactic, scored, false);
    REQUIRE(syn.random_effects[k] == Approx(e).margin(1e-12));
    mean += e / 50;
  }
  REQUIRE(syn.random_mean == Approx(mean));

  const headlens::label_causal_check& pos = r.of(head_label::positional);
  REQUIRE(pos.verdict == causal_verdict::supported);
  REQUIRE(pos.effect == Approx(4.0));
  REQUIRE(pos.phenomenon_tokens == 16);
  REQUIRE(pos.other_tokens == 0);
  REQUIRE(std::isnan(pos.other_change));
  REQUIRE(pos.exact);  // C(7, 2) = 21 sets in layer 2: each once, so p can be as small as 1/22
  REQUIRE(pos.random_effects.size() == 21);
  REQUIRE(pos.p_value == Approx(1.0 / 22));

  REQUIRE(r.of(head_label::coreference).verdict == causal_verdict::not_testable);
  REQUIRE(r.of(head_label::coreference).reason == "no head carries the label");
  REQUIRE(r.of(head_label::discourse).reason == "no head carries the label");

  // Progress: one call per evaluation, ending at the total.
  REQUIRE(!progress.empty());
  REQUIRE(progress.back().first == progress.back().second);
  REQUIRE(progress.back().second == 2 * check.evaluations_per_unit());
  REQUIRE(progress.size() == progress.back().second);
  // Each unit evaluated each distinct set once (plus nothing else).
  REQUIRE(a.log.size() == check.evaluations_per_unit());
}

TEST_CASE("causal_check: heads no different from random ones are not supported") {
  const std::vector<int> hpl = {9, 9, 9};
  const headlens::document d = story();
  const auto v = verdicts(hpl, {{{0, 1}, head_label::syntactic}, {{1, 2}, head_label::syntactic}});

  SECTION("every head hurts the syntactic tokens alike: ties count against the label, p = 1") {
    const planted_target::effect_fn effect = [](head_ref, Index t) {
      return decoder_syntactic[static_cast<std::size_t>(t)] ? 1.0 : 0.25;
    };
    planted_target a(hpl, 9, true, effect);
    const auto r = headlens::run_causal_check({{d, story_tokens, a, true}}, v);
    const auto& syn = r.of(head_label::syntactic);
    REQUIRE(syn.verdict == causal_verdict::not_supported);
    REQUIRE(syn.effect == Approx(1.5));
    REQUIRE(syn.random_at_least == 50);
    REQUIRE(syn.p_value == 1.0);
    REQUIRE(syn.random_sd == 0.0);
    REQUIRE(syn.z == 0.0);
  }
  SECTION("the label's heads matter, but for every token alike: no effect on the phenomenon") {
    const planted_target::effect_fn effect = [](head_ref h, Index t) {
      return (h == head_ref{0, 1} || h == head_ref{1, 2}) ? 5.0 : noise(h, t);
    };
    planted_target a(hpl, 9, true, effect);
    const auto r = headlens::run_causal_check({{d, story_tokens, a, true}}, v);
    const auto& syn = r.of(head_label::syntactic);
    REQUIRE(syn.verdict == causal_verdict::not_supported);
    REQUIRE(syn.phenomenon_change == Approx(10.0));
    REQUIRE(syn.effect == Approx(0.0).margin(1e-12));
    // p recomputed from the random effects: (1 + #{e >= effect}) / 51.
    std::size_t at_least = 0;
    headlens::causal_check check(hpl, v);
    for (const head_set& s : check.random_sets(head_label::syntactic)) {
      at_least += expected_effect(s.heads(), effect, decoder_syntactic, a.clean().scored, false) >= -1e-12 ? 1 : 0;
    }
    REQUIRE(syn.random_at_least == at_least);
    REQUIRE(syn.p_value == Approx((1.0 + static_cast<double>(at_least)) / 51));
    REQUIRE(syn.p_value >= 0.05);
  }
}

TEST_CASE("causal_check: not testable, each with its reason") {
  const headlens::document d = story();
  const planted_target::effect_fn effect = [](head_ref h, Index t) { return noise(h, t); };

  SECTION("no coreference layer") {
    const std::vector<int> hpl = {8, 8, 8};  // one label head: C(23, 1) = 23 random sets from any layer
    const headlens::document bare = story(/*with_mentions=*/false);
    planted_target a(hpl, 9, true, effect);
    const auto r =
        headlens::run_causal_check({{bare, story_tokens, a, true}}, verdicts(hpl, {{{0, 0}, head_label::coreference}}));
    REQUIRE(r.of(head_label::coreference).verdict == causal_verdict::not_testable);
    REQUIRE(r.of(head_label::coreference).reason == "annotations missing: no unit's document has coreference mentions");
  }
  SECTION("no phenomenon token: the unit holds He but not John") {
    const std::vector<int> hpl = {8, 8, 8};
    planted_target a(hpl, 3, false, effect);
    const auto r =
        headlens::run_causal_check({{d, {4, 5, 6}, a, false}}, verdicts(hpl, {{{0, 0}, head_label::coreference}}));
    REQUIRE(r.of(head_label::coreference).reason == "no scored token carries the phenomenon in the units");
    REQUIRE(r.of(head_label::coreference).phenomenon_tokens == 0);
  }
  SECTION("no other token: in an encoder every word of the story has an arc in the unit") {
    const std::vector<int> hpl = {8, 8, 8};
    planted_target a(hpl, 7, false, effect);
    const auto r = headlens::run_causal_check({{d, {0, 1, 2, 3, 4, 5, 6}, a, false}},
                                              verdicts(hpl, {{{0, 0}, head_label::syntactic}}));
    REQUIRE(r.of(head_label::syntactic).reason ==
            "every scored token carries the phenomenon: no other token to compare with");
  }
  SECTION("few other tokens: a note says the contrast is weak") {
    const std::vector<int> hpl = {8, 8, 8};
    // An encoder over [CLS] and the story's words in three pieces each: 21 syntactic tokens and [CLS] (1 of 22).
    std::vector<Index> tw = {-1};
    for (Index w = 0; w < 7; ++w) tw.insert(tw.end(), {w, w, w});
    planted_target a(hpl, 22, false, effect);
    const auto r = headlens::run_causal_check({{d, tw, a, false}}, verdicts(hpl, {{{0, 0}, head_label::syntactic}}));
    const auto& syn = r.of(head_label::syntactic);
    REQUIRE(syn.verdict != causal_verdict::not_testable);
    REQUIRE(syn.other_tokens == 1);
    REQUIRE(syn.reason ==
            "random sets drawn from any layer: the same layers hold only 7 distinct sets; all 23 possible random sets "
            "evaluated (exact test); only 1 of 22 scored tokens do not carry the phenomenon: the effect is close to "
            "the heads' effect on every token");
  }
  SECTION("the label's heads are every head") {
    const std::vector<int> hpl = {2};
    planted_target a(hpl, 9, true, effect);
    const auto r =
        headlens::run_causal_check({{d, story_tokens, a, true}},
                                   verdicts(hpl, {{{0, 0}, head_label::positional}, {{0, 1}, head_label::positional}}));
    REQUIRE(r.of(head_label::positional).reason ==
            "the label's heads are every head of the model: no other head to draw");
    REQUIRE(a.log.empty());  // nothing was evaluated for it
  }
  SECTION("fewer other heads than label heads") {
    const std::vector<int> hpl = {4};
    planted_target a(hpl, 9, true, effect);
    const auto r = headlens::run_causal_check(
        {{d, story_tokens, a, true}},
        verdicts(hpl,
                 {{{0, 0}, head_label::discourse}, {{0, 1}, head_label::discourse}, {{0, 2}, head_label::discourse}}));
    REQUIRE(r.of(head_label::discourse).reason == "only 1 other head for 3 label heads");
  }
  SECTION("too few distinct random sets anywhere") {
    const std::vector<int> hpl = {4, 4};  // 6 other heads: C(6, 2) = 15 < 20
    planted_target a(hpl, 9, true, effect);
    const auto r =
        headlens::run_causal_check({{d, story_tokens, a, true}},
                                   verdicts(hpl, {{{0, 0}, head_label::discourse}, {{0, 1}, head_label::discourse}}));
    const auto& disc = r.of(head_label::discourse);
    REQUIRE(disc.verdict == causal_verdict::not_testable);
    REQUIRE(disc.reason ==
            "only 15 distinct sets of 2 other heads exist, fewer than the 20 a verdict needs (p cannot fall below "
            "1/16); the numbers compare the label with all of them");
    // Still compared with every set: the planted noise is the same function for every head, so the numbers are
    // recomputed here from the sets the target saw.
    REQUIRE(disc.scope == headlens::random_scope::any_layer);
    REQUIRE(disc.exact);
    REQUIRE(disc.random_effects.size() == 15);
    REQUIRE(a.log.size() == 16);
    std::size_t at_least = 0;
    for (std::size_t k = 1; k < a.log.size(); ++k) {
      REQUIRE(per_layer(a.log[k], 0) + per_layer(a.log[k], 1) == 2);
      REQUIRE_FALSE(a.log[k].contains({0, 0}));
      REQUIRE_FALSE(a.log[k].contains({0, 1}));
      const double e = expected_effect(a.log[k].heads(), effect, story_discourse, a.clean().scored, false);
      REQUIRE(disc.random_effects[k - 1] == Approx(e).margin(1e-12));
      at_least += e >= disc.effect - 1e-12 ? 1 : 0;
    }
    REQUIRE(disc.effect ==
            Approx(expected_effect({{0, 0}, {0, 1}}, effect, story_discourse, a.clean().scored, false)).margin(1e-12));
    REQUIRE(disc.p_value == Approx((1.0 + static_cast<double>(at_least)) / 16));
  }
}

TEST_CASE("causal_check: random sets keep the label's layers, and say when they cannot") {
  const planted_target::effect_fn effect = [](head_ref h, Index t) { return noise(h, t); };
  const headlens::document d = story();
  const head_ref a0{0, 0}, a1{0, 1}, b3{2, 3};

  SECTION("sampled: 2 heads in layer 0 and 1 in layer 2, never a label head") {
    const std::vector<int> hpl = {8, 8, 8};  // C(6,2) x C(7,1) = 105 > 50: sampled
    const auto v =
        verdicts(hpl, {{a0, head_label::syntactic}, {a1, head_label::syntactic}, {b3, head_label::syntactic}});
    planted_target t(hpl, 9, true, effect);
    const auto r = headlens::run_causal_check({{d, story_tokens, t, true}}, v);
    const auto& syn = r.of(head_label::syntactic);
    REQUIRE(syn.scope == headlens::random_scope::same_layers);
    REQUIRE(syn.possible_sets == 105);
    REQUIRE_FALSE(syn.exact);
    REQUIRE(syn.random_effects.size() == 50);
    // The sets the target was asked for: the label's, then random ones shaped like it.
    REQUIRE(t.log.size() >= 2);
    std::size_t random = 0;
    for (const head_set& s : t.log) {
      if (s.contains(a0) && s.contains(a1) && s.contains(b3)) continue;
      ++random;
      REQUIRE(s.size() == 3);
      REQUIRE(per_layer(s, 0) == 2);
      REQUIRE(per_layer(s, 1) == 0);
      REQUIRE(per_layer(s, 2) == 1);
      REQUIRE_FALSE(s.contains(a0));
      REQUIRE_FALSE(s.contains(a1));
      REQUIRE_FALSE(s.contains(b3));
    }
    REQUIRE(random == t.log.size() - 1);
  }
  SECTION("exact: the same layers hold 30 sets, each evaluated once") {
    const std::vector<int> hpl = {6, 6, 6};  // C(4,2) x C(5,1) = 30 <= 50
    const auto v =
        verdicts(hpl, {{a0, head_label::syntactic}, {a1, head_label::syntactic}, {b3, head_label::syntactic}});
    planted_target t(hpl, 9, true, effect);
    const auto r = headlens::run_causal_check({{d, story_tokens, t, true}}, v);
    const auto& syn = r.of(head_label::syntactic);
    REQUIRE(syn.exact);
    REQUIRE(syn.random_effects.size() == 30);
    REQUIRE(syn.reason == "all 30 possible random sets evaluated (exact test)");
    std::set<std::vector<head_ref>> distinct;
    for (const head_set& s : t.log) distinct.insert(s.heads());
    REQUIRE(distinct.size() == 31);
    REQUIRE(t.log.size() == 31);
  }
  SECTION("a layer without other heads: drawn from any layer, and said") {
    const std::vector<int> hpl = {2, 8};  // layer 0 is all label; C(7, 3) = 35 sets of layer 1's other heads
    const auto v = verdicts(
        hpl, {{{0, 0}, head_label::positional}, {{0, 1}, head_label::positional}, {{1, 0}, head_label::positional}});
    planted_target t(hpl, 9, true, effect);
    const auto r = headlens::run_causal_check({{d, story_tokens, t, true}}, v);
    const auto& pos = r.of(head_label::positional);
    REQUIRE(pos.scope == headlens::random_scope::any_layer);
    REQUIRE(pos.possible_sets == 35);
    REQUIRE(pos.reason ==
            "random sets drawn from any layer: layer 0 has 0 other heads for 2 label heads; all 35 possible random "
            "sets evaluated (exact test)");
    REQUIRE(pos.verdict != causal_verdict::not_testable);
  }
  SECTION("same layers too narrow: widened to any layer") {
    const std::vector<int> hpl = {4, 8};  // same layer: C(2, 2) = 1; any layer: C(10, 2) = 45
    const auto v = verdicts(hpl, {{a0, head_label::positional}, {a1, head_label::positional}});
    planted_target t(hpl, 9, true, effect);
    const auto r = headlens::run_causal_check({{d, story_tokens, t, true}}, v);
    const auto& pos = r.of(head_label::positional);
    REQUIRE(pos.scope == headlens::random_scope::any_layer);
    REQUIRE(pos.reason ==
            "random sets drawn from any layer: the same layers hold only 1 distinct set; all 45 possible random sets "
            "evaluated (exact test)");
  }
}

TEST_CASE("causal_check: deterministic for a seed, different for another") {
  const std::vector<int> hpl = {8, 8, 8, 8};  // 49, 31 and 31 possible sets > 25: sampled
  const auto v = verdicts(hpl, {{{0, 1}, head_label::syntactic},
                                {{3, 2}, head_label::syntactic},
                                {{1, 0}, head_label::coreference},
                                {{2, 5}, head_label::discourse}});
  headlens::causal_check_options options;
  options.seed = 7;
  options.random_sets = 25;
  const headlens::causal_check a(hpl, v, options), b(hpl, v, options);
  options.seed = 8;
  const headlens::causal_check c(hpl, v, options);
  for (head_label label : {head_label::syntactic, head_label::coreference, head_label::discourse}) {
    REQUIRE(a.random_sets(label).size() == 25);
    bool differs = false;
    for (std::size_t k = 0; k < 25; ++k) {
      REQUIRE(a.random_sets(label)[k].heads() == b.random_sets(label)[k].heads());
      differs = differs || a.random_sets(label)[k].heads() != c.random_sets(label)[k].heads();
    }
    REQUIRE(differs);
  }
  // The same draws whatever the other labels: syntactic alone draws what it drew beside the others.
  const auto alone = verdicts(hpl, {{{0, 1}, head_label::syntactic}, {{3, 2}, head_label::syntactic}});
  options.seed = 7;
  const headlens::causal_check s(hpl, alone, options);
  for (std::size_t k = 0; k < 25; ++k)
    REQUIRE(s.random_sets(head_label::syntactic)[k].heads() == a.random_sets(head_label::syntactic)[k].heads());

  // Run twice: identical results.
  const planted_target::effect_fn effect = [](head_ref h, Index t) { return noise(h, t); };
  const headlens::document d = story();
  planted_target t1(hpl, 9, true, effect), t2(hpl, 9, true, effect);
  const auto r1 = headlens::run_causal_check({{d, story_tokens, t1, true}}, v, options);
  const auto r2 = headlens::run_causal_check({{d, story_tokens, t2, true}}, v, options);
  for (std::size_t c2 = 0; c2 < 3; ++c2) {
    REQUIRE(r1.labels[c2].random_effects == r2.labels[c2].random_effects);
    REQUIRE(r1.labels[c2].p_value == r2.labels[c2].p_value);
  }
}

TEST_CASE("causal_check: mean ablation uses the target's means") {
  const std::vector<int> hpl = {8, 8, 8};
  const head_ref s1{0, 1};
  const planted_target::effect_fn zero = [&](head_ref h, Index t) { return noise(h, t); };
  const planted_target::effect_fn mean = [&](head_ref h, Index t) {
    return h == s1 ? (decoder_syntactic[static_cast<std::size_t>(t)] ? 3.0 : 0.0) : 0.0;
  };
  const headlens::document d = story();
  planted_target a(hpl, 9, true, zero, mean);
  headlens::causal_check_options options;
  options.kind = ablation::mean;
  const auto r =
      headlens::run_causal_check({{d, story_tokens, a, true}}, verdicts(hpl, {{s1, head_label::syntactic}}), options);
  REQUIRE(r.kind == ablation::mean);
  REQUIRE(r.of(head_label::syntactic).effect == Approx(3.0));
  REQUIRE(r.of(head_label::syntactic).verdict == causal_verdict::supported);
  REQUIRE(r.of(head_label::syntactic).random_at_least == 0);
  REQUIRE(r.of(head_label::syntactic).p_value == Approx(1.0 / 24));  // all 23 other-head sets
  // A target made without means says so; the error passes through.
  planted_target no_means(hpl, 9, true, zero);
  REQUIRE_THROWS_WITH(headlens::run_causal_check({{d, story_tokens, no_means, true}},
                                                 verdicts(hpl, {{s1, head_label::syntactic}}), options),
                      "planted_target: made without means");
}

TEST_CASE("causal_check: bad input gets typed errors that name the value") {
  const std::vector<int> hpl = {8, 8, 8};
  const headlens::document d = story();
  const planted_target::effect_fn effect = [](head_ref h, Index t) { return noise(h, t); };
  planted_target t(hpl, 9, true, effect);
  auto v = verdicts(hpl, {{{0, 0}, head_label::syntactic}});

  SECTION("verdicts for another shape") {
    auto more = v;
    more.push_back(more.back());
    more.back().layer = 3;
    REQUIRE_THROWS_AS(headlens::causal_check(hpl, more), headlens::shape_error);
    REQUIRE_THROWS_WITH(headlens::causal_check(hpl, more),
                        "headlens: causal_check: verdicts[24] is for head 3.7, but the model has 3 layers");
    more.back().layer = 2;
    more.back().head = 8;
    REQUIRE_THROWS_WITH(headlens::causal_check(hpl, more),
                        "headlens: causal_check: verdicts[24] is for head 2.8, but layer 2 has 8 heads");
    more.back().head = 7;
    REQUIRE_THROWS_WITH(headlens::causal_check(hpl, more),
                        "headlens: causal_check: verdicts[24] is a second verdict for head 2.7");
    auto fewer = v;
    fewer.erase(fewer.begin() + 5);
    REQUIRE_THROWS_WITH(headlens::causal_check(hpl, fewer),
                        "headlens: causal_check: 23 verdicts for a model of 24 heads: head 0.5 has no verdict");
    // A target of another model than the verdicts.
    planted_target wide({8, 8, 8, 8}, 9, true, effect);
    REQUIRE_THROWS_AS(headlens::run_causal_check({{d, story_tokens, wide, true}}, v), headlens::shape_error);
    headlens::causal_check check(hpl, v);
    REQUIRE_THROWS_WITH(check.add({d, story_tokens, wide, true}),
                        "headlens: causal_check: unit 0: the target's model has heads per layer [8, 8, 8, 8], expected "
                        "[8, 8, 8] as the verdicts");
  }
  SECTION("token_word of another length than the target") {
    const std::vector<Index> shorter(story_tokens.begin(), story_tokens.end() - 1);
    REQUIRE_THROWS_AS(headlens::run_causal_check({{d, shorter, t, true}}, v), headlens::shape_error);
    REQUIRE_THROWS_WITH(
        headlens::run_causal_check({{d, shorter, t, true}}, v),
        "headlens: causal_check: unit 0: token_word has 8 entries, expected the target's token count 9");
  }
  SECTION("a word index outside the document") {
    std::vector<Index> bad = story_tokens;
    bad[4] = 12;
    std::vector<headlens::causal_unit> units;
    units.emplace_back(d, story_tokens, t, true);
    units.emplace_back(d, bad, t, true);
    REQUIRE_THROWS_AS(headlens::run_causal_check(units, v), headlens::argument_error);
    REQUIRE_THROWS_WITH(headlens::run_causal_check(units, v),
                        "headlens: causal_check: unit 1: find_phenomenon_tokens: token_word[4] is 12, expected -1 (no "
                        "word) or a word index in [0, 7) of document 'story'");
  }
  SECTION("options and empty input") {
    headlens::causal_check_options options;
    options.random_sets = 19;
    REQUIRE_THROWS_WITH(headlens::causal_check(hpl, v, options),
                        "headlens: causal_check: options.random_sets is 19, expected >= 20");
    options.random_sets = 20;
    options.alpha = 1.5;
    REQUIRE_THROWS_WITH(headlens::causal_check(hpl, v, options),
                        "headlens: causal_check: options.alpha is 1.5, expected in (0, 1)");
    REQUIRE_THROWS_AS(headlens::run_causal_check({}, v), headlens::argument_error);
    REQUIRE_THROWS_AS(headlens::causal_check(hpl, v).label_heads(head_label::unassigned), headlens::argument_error);
  }
  SECTION("a loss that is not finite") {
    const planted_target::effect_fn inf = [](head_ref, Index t) {
      return t == 3 ? std::numeric_limits<double>::infinity() : 0.0;
    };
    planted_target broken(hpl, 9, true, inf);
    REQUIRE_THROWS_AS(headlens::run_causal_check({{d, story_tokens, broken, true}}, v), headlens::numeric_error);
    REQUIRE_THROWS_WITH(
        headlens::run_causal_check({{d, story_tokens, broken, true}}, v),
        "headlens: causal_check: unit 0, token 3: the losses with heads {0.0} ablated hold inf, expected a "
        "finite number");
  }
  SECTION("a unit that throws half-way leaves the totals unchanged") {
    headlens::causal_check check(hpl, v);
    check.add({d, story_tokens, t, true});
    const auto before = check.result();
    planted_target failing(hpl, 9, true, effect);
    failing.throw_at = 5;  // the sixth evaluation fails
    REQUIRE_THROWS_WITH(check.add({d, story_tokens, failing, true}), "planted_target: failed on purpose");
    REQUIRE(failing.log.size() == 5);
    const auto after = check.result();
    REQUIRE(after.units == 1);
    REQUIRE(after.of(head_label::syntactic).effect == before.of(head_label::syntactic).effect);
  }
}

}  // namespace test_causal_check
