// Tests of the per-head feature accumulators (headlens/analysis/features.hpp, features_json.hpp). The documents are
// written below as CoNLL-U and parsed with the reader; the maps are built by hand, and every expected value is
// worked out by hand in the comments next to it, never taken from the accumulator's own output.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/features.hpp>
#include <headlens/analysis/features_json.hpp>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace test_features {

using headlens::argument_error;
using headlens::document;
using headlens::format_error;
using headlens::head_evidence;
using headlens::head_feature_accumulator;
using headlens::model_feature_accumulator;
using headlens::parse_conllu;
using headlens::prepared_document;
using headlens::shape_error;
using headlens::word_window;
using map_f = headlens::matrix<float>;
using map_d = headlens::matrix<double>;

namespace {

// CoNLL-U text from rows whose columns are separated by single spaces (padded with `_` to 10 columns).
std::string conllu(const std::vector<std::string>& rows) {
  std::string out;
  for (const std::string& row : rows) {
    if (row.empty() || row[0] == '#') {
      out += row;
    } else {
      std::istringstream fields(row);
      std::string field;
      int count = 0;
      while (fields >> field) {
        if (count++ > 0) out += '\t';
        out += field;
      }
      for (; count < 10; ++count) out += "\t_";
    }
    out += '\n';
  }
  return out;
}

// One word line: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC.
std::string w(int id, const std::string& form, const std::string& upos, int head, const std::string& deprel,
              const std::string& misc = "_") {
  return std::to_string(id) + " " + form + " " + form + " " + upos + " _ _ " + std::to_string(head) + " " + deprel +
         " _ " + misc;
}

document parse_one(const std::vector<std::string>& rows) {
  std::vector<document> docs = parse_conllu(conllu(rows));
  REQUIRE(docs.size() == 1);
  return docs[0];
}

// Two sentences in two paragraphs (document word indices in brackets):
//   [0] The [1] dog [2] chased [3] the [4] cat [5] .  |  [6] A [7] big [8] cat [9] slept [10] .
// arcs (dependent -> head, offset head - dependent):
//   det 0->1 (+1), 3->4 (+1), 6->8 (+2);  nsubj 1->2 (+1), 8->9 (+1);  obj 4->2 (-2);  amod 7->8 (+1);
//   punct 5->2 (-3), 10->9 (-1);  roots 2 and 9.
const std::vector<std::string> syntax_doc = {
    "# newdoc id = syntax",
    "# newpar",
    "# sent_id = s1",
    w(1, "The", "DET", 2, "det"),
    w(2, "dog", "NOUN", 3, "nsubj"),
    w(3, "chased", "VERB", 0, "root"),
    w(4, "the", "DET", 5, "det"),
    w(5, "cat", "NOUN", 3, "obj", "SpaceAfter=No"),
    w(6, ".", "PUNCT", 3, "punct"),
    "",
    "# newpar",
    "# sent_id = s2",
    w(1, "A", "DET", 3, "det"),
    w(2, "big", "ADJ", 3, "amod"),
    w(3, "cat", "NOUN", 4, "nsubj:outer"),
    w(4, "slept", "VERB", 0, "root", "SpaceAfter=No"),
    w(5, ".", "PUNCT", 4, "punct"),
    "",
};

// Coreference: [0] Mary [1] saw [2] John [3] . | [4] She [5] greeted [6] him [7] .
// clusters: e1 = {Mary, She}, e2 = {John, him}; every mention is one word and its own head.
const std::vector<std::string> coref_doc = {
    "# newdoc id = coref",
    "# sent_id = c1",
    w(1, "Mary", "PROPN", 2, "nsubj", "Entity=(e1-person-1)"),
    w(2, "saw", "VERB", 0, "root"),
    w(3, "John", "PROPN", 2, "obj", "Entity=(e2-person-1)|SpaceAfter=No"),
    w(4, ".", "PUNCT", 2, "punct"),
    "",
    "# sent_id = c2",
    w(1, "She", "PRON", 2, "nsubj", "Entity=(e1-person-1)"),
    w(2, "greeted", "VERB", 0, "root"),
    w(3, "him", "PRON", 2, "obj", "Entity=(e2-person-1)|SpaceAfter=No"),
    w(4, ".", "PUNCT", 2, "punct"),
    "",
};

// Discourse: four units over two sentences in two paragraphs.
//   u0 [0,3)  I came home            ROOT
//   u1 [3,7)  because it rained .    -> u0
//   u2 [7,10) Then I slept           -> u0
//   u3 [10,13) and dreamt .          -> u2
const std::vector<std::string> discourse_doc = {
    "# newdoc id = disc",
    "# newpar",
    "# sent_id = d1",
    w(1, "I", "PRON", 2, "nsubj", "Discourse=ROOT:1:0"),
    w(2, "came", "VERB", 0, "root"),
    w(3, "home", "ADV", 2, "advmod"),
    w(4, "because", "SCONJ", 6, "mark", "Discourse=explanation-justify:2->1:0"),
    w(5, "it", "PRON", 6, "expl"),
    w(6, "rained", "VERB", 2, "advcl", "SpaceAfter=No"),
    w(7, ".", "PUNCT", 2, "punct"),
    "",
    "# newpar",
    "# sent_id = d2",
    w(1, "Then", "ADV", 3, "advmod", "Discourse=sequence:3->1:0"),
    w(2, "I", "PRON", 3, "nsubj"),
    w(3, "slept", "VERB", 0, "root"),
    w(4, "and", "CCONJ", 5, "cc", "Discourse=joint-list_m:4->3:0"),
    w(5, "dreamt", "VERB", 3, "conj", "SpaceAfter=No"),
    w(6, ".", "PUNCT", 3, "punct"),
    "",
};

// A map whose row i puts all its mass on column target[i].
map_f one_hot(const std::vector<int>& target) {
  const auto n = static_cast<headlens::Index>(target.size());
  map_f m = map_f::Zero(n, n);
  for (headlens::Index i = 0; i < n; ++i) m(i, target[static_cast<std::size_t>(i)]) = 1.0f;
  return m;
}

// The previous-word head: row 0 attends itself, row i attends i - 1.
map_f previous_word(headlens::Index n) {
  std::vector<int> t;
  for (headlens::Index i = 0; i < n; ++i) t.push_back(i == 0 ? 0 : static_cast<int>(i - 1));
  return one_hot(t);
}

const headlens::relation_evidence* find_relation(const head_evidence& ev, const std::string& rel, bool to_head) {
  for (const auto& r : ev.syntactic.relations) {
    if (r.relation == rel && r.dependent_to_head == to_head) return &r;
  }
  return nullptr;
}

// Random row-stochastic maps with peaks (so argmaxes vary), some masked rows; deterministic.
map_f random_map(headlens::Index n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  map_f m(n, n);
  for (headlens::Index i = 0; i < n; ++i) {
    for (headlens::Index j = 0; j < n; ++j) m(i, j) = u(rng) * u(rng) * u(rng);
    m(i, static_cast<headlens::Index>(rng() % static_cast<unsigned>(n))) += 2.0f * u(rng);
    if (rng() % 29 == 0) {
      m.row(i).setZero();
    } else {
      m.row(i) /= m.row(i).sum();
    }
  }
  return m;
}

// The hand-worked cases of the definitions measure every column alike (no sinks): their tiny documents start
// every window with a word their heads attend to and end every sentence with a separator. Sinks have their own
// cases ("features: sinks ...").
const headlens::feature_options every_column = [] {
  headlens::feature_options o;
  o.sinks_apart = false;
  return o;
}();

std::string gum_fixture() { return std::string(HEADLENS_TEST_DATA_DIR) + "/gum/gum_cc_by_sample.conllu"; }

}  // namespace

TEST_CASE("features: a previous-word head", "[features]") {
  const document doc = parse_one(syntax_doc);
  const prepared_document prepared(doc);
  REQUIRE(prepared.words() == 11);
  head_feature_accumulator acc(2, 5, every_column);
  acc.add(previous_word(11), prepared);
  const head_evidence ev = acc.evidence();
  CHECK(ev.layer == 2);
  CHECK(ev.head == 5);
  CHECK(ev.windows == 1);
  CHECK(ev.annotated);
  // Rows 1..10 put 1 on the previous word; row 0 has none, so it does not count: previous_mass 10/10.
  CHECK(ev.positional.previous_mass == 1.0);
  CHECK(ev.positional.rows == 11);
  // Only row 0 attends itself: self 1/11; nobody attends the next word (rows 0..9 have one): 0.
  CHECK(ev.positional.self_mass == Approx(1.0 / 11));
  CHECK(ev.positional.next_mass == 0.0);
  CHECK(ev.positional.offset_mass[headlens::evidence_max_offset - 2] == 0.0);
  // Argmax offsets: -1 for 10 rows, 0 for row 0: top -1, share 10 / 10 rows that have a previous word.
  CHECK(ev.positional.top_offset == -1);
  CHECK(ev.positional.top_offset_share == 1.0);
  // One-hot rows: entropy 0; distance 1 for 10 rows, 0 for row 0.
  CHECK(ev.general.entropy == 0.0);
  CHECK(ev.general.mean_distance == Approx(10.0 / 11));
  // First-token mass over rows 1..10: only row 1 attends word 0: 1/10.
  CHECK(ev.general.first_token_mass == Approx(0.1));
  // Punctuation: words 5 and 10 ('.'); row 6 attends word 5: 1/11. Both are sentence-final separators.
  CHECK(ev.general.punctuation_mass == Approx(1.0 / 11));
  CHECK(ev.general.separator_mass == Approx(1.0 / 11));
  // Cross sentence: row 6 (first word of sentence 2) attends word 5 of sentence 1: 1/11; same for paragraphs.
  CHECK(ev.discourse.cross_sentence_mass == Approx(1.0 / 11));
  CHECK(ev.discourse.cross_paragraph_mass == Approx(1.0 / 11));
  CHECK(ev.discourse.unit_count == 0);
  CHECK(ev.coreference.overall_count == 0);

  // Syntactic, dependent -> head: det rows 0, 3, 6 attend 0 (self), 2, 5: none is the head (1, 4, 8).
  // Baseline: det offsets +1, +1, +2 -> best +1 with 2 of 3.
  const auto* det_up = find_relation(ev, "det", true);
  REQUIRE(det_up != nullptr);
  CHECK(det_up->count == 3);
  CHECK(det_up->accuracy == 0.0);
  CHECK(det_up->baseline_offset == 1);
  CHECK(det_up->baseline_accuracy == Approx(2.0 / 3));
  // Head -> dependent: det heads 1, 4, 8 attend 0, 3, 7: right for 1 -> 0 and 4 -> 3 (2 of 3); baseline offsets
  // -1, -1, -2 -> best -1 with 2 of 3.
  const auto* det_down = find_relation(ev, "det", false);
  REQUIRE(det_down != nullptr);
  CHECK(det_down->count == 3);
  CHECK(det_down->accuracy == Approx(2.0 / 3));
  CHECK(det_down->baseline_offset == -1);
  CHECK(det_down->baseline_accuracy == Approx(2.0 / 3));
  CHECK(det_down->margin() == Approx(0.0));
  // nsubj (subtype stripped: nsubj:outer counts as nsubj): 1->2, 8->9; head rows 2 and 9 attend 1 and 8: both right.
  const auto* nsubj_down = find_relation(ev, "nsubj", false);
  REQUIRE(nsubj_down != nullptr);
  CHECK(nsubj_down->count == 2);
  CHECK(nsubj_down->accuracy == 1.0);
  CHECK(nsubj_down->baseline_offset == -1);
  CHECK(nsubj_down->baseline_accuracy == 1.0);
  // punct 5->2 (-3), 10->9 (-1): dependent rows 5 and 10 attend 4 and 9: 10 -> 9 right. Baseline: -1 and -3 tie
  // with one each; the smaller |d| wins: -1, 1 of 2.
  const auto* punct_up = find_relation(ev, "punct", true);
  REQUIRE(punct_up != nullptr);
  CHECK(punct_up->count == 2);
  CHECK(punct_up->accuracy == 0.5);
  CHECK(punct_up->baseline_offset == -1);
  CHECK(punct_up->baseline_accuracy == 0.5);
  CHECK(find_relation(ev, "root", true) == nullptr);  // roots have no arc
  // Relations come best margin first.
  for (std::size_t k = 1; k < ev.syntactic.relations.size(); ++k) {
    CHECK(ev.syntactic.relations[k - 1].margin() >= ev.syntactic.relations[k].margin());
  }
}

TEST_CASE("features: a head that follows dependency arcs", "[features]") {
  const document doc = parse_one(syntax_doc);
  const prepared_document prepared(doc);
  // Row i attends its head; the roots (2 and 9) attend themselves.
  head_feature_accumulator acc(0, 0, every_column);
  acc.add(one_hot({1, 2, 2, 4, 2, 2, 8, 8, 9, 9, 9}), prepared);
  const head_evidence ev = acc.evidence();
  // Every dependent -> head instance is right.
  for (const char* rel : {"det", "nsubj", "obj", "amod", "punct"}) {
    const auto* r = find_relation(ev, rel, true);
    REQUIRE(r != nullptr);
    CHECK(r->accuracy == 1.0);
  }
  // det: 3 instances, best offset +1 right 2 of 3: margin 1/3. obj: 1 instance at -2, baseline 1: margin 0.
  CHECK(find_relation(ev, "det", true)->baseline_accuracy == Approx(2.0 / 3));
  CHECK(find_relation(ev, "det", true)->margin() == Approx(1.0 / 3));
  CHECK(find_relation(ev, "obj", true)->baseline_offset == -2);
  CHECK(find_relation(ev, "obj", true)->margin() == Approx(0.0));
  CHECK(find_relation(ev, "amod", true)->count == 1);
  // The best margins come first: punct dependent -> head (1 - 1/2), then det dependent -> head (1 - 2/3); the
  // others have margin 0 or less.
  REQUIRE(ev.syntactic.relations.size() >= 2);
  CHECK(ev.syntactic.relations[0].relation == "punct");
  CHECK(ev.syntactic.relations[0].dependent_to_head);
  CHECK(ev.syntactic.relations[0].margin() == Approx(0.5));
  CHECK(ev.syntactic.relations[1].relation == "det");
  CHECK(ev.syntactic.relations[1].dependent_to_head);
  // Head -> dependent: a head attends its own head (or itself), never a dependent.
  CHECK(find_relation(ev, "det", false)->accuracy == 0.0);
  CHECK(find_relation(ev, "nsubj", false)->accuracy == 0.0);
  // Arcs stay inside sentences: no cross-sentence mass.
  CHECK(ev.discourse.cross_sentence_mass == 0.0);
  // Offsets of the argmax: +1 (0,1,3,7,8), -2 (4), -3 (5), +2 (6), -1 (10), 0 (2, 9): top +1 with 5 of the 10 rows
  // that have a next word (rows 0..9).
  CHECK(ev.positional.top_offset == 1);
  CHECK(ev.positional.top_offset_share == Approx(0.5));
  CHECK(ev.positional.next_mass == Approx(0.5));
}

TEST_CASE("features: coreference antecedents against the nearest-mention baseline", "[features]") {
  const document doc = parse_one(coref_doc);
  REQUIRE(doc.mentions.size() == 4);
  const prepared_document prepared(doc);
  // Instances: She (4, antecedent Mary at 0) and him (6, antecedent John at 2), both pronouns. Mary and John have no
  // antecedent. Nearest earlier mention: for She it is John (other cluster), for him it is She (other cluster):
  // the baseline gets neither right.
  CHECK(prepared.coreference_instances() == 2);
  SECTION("a head that finds antecedents") {
    head_feature_accumulator acc(0, 0, every_column);
    acc.add(one_hot({0, 1, 2, 3, 0, 5, 2, 7}), prepared);
    const auto co = acc.evidence().coreference;
    CHECK(co.count[headlens::coreference_evidence::pronoun] == 2);
    CHECK(co.count[headlens::coreference_evidence::proper] == 0);
    CHECK(co.count[headlens::coreference_evidence::nominal] == 0);
    CHECK(co.accuracy[headlens::coreference_evidence::pronoun] == 1.0);
    CHECK(co.baseline_accuracy[headlens::coreference_evidence::pronoun] == 0.0);
    CHECK(co.overall_count == 2);
    CHECK(co.overall_accuracy == 1.0);
    CHECK(co.overall_baseline_accuracy == 0.0);
  }
  SECTION("a head that attends the nearest mention is wrong here") {
    head_feature_accumulator acc(0, 0, every_column);
    acc.add(one_hot({0, 1, 2, 3, 2, 5, 4, 7}), prepared);
    CHECK(acc.evidence().coreference.overall_accuracy == 0.0);
    CHECK(acc.evidence().coreference.overall_count == 2);
  }
  SECTION("an antecedent outside the window is not an instance") {
    // Window [2, 8): Mary (word 0) is outside, so She is not counted; him -> John (2) is.
    head_feature_accumulator acc(0, 0, every_column);
    map_f m = one_hot({0, 1, 2, 3, 0, 4});  // local rows: John, ., She, greeted, him -> John (local 0), .
    acc.add(m, prepared, word_window{2, 8, 2, 8});
    const auto co = acc.evidence().coreference;
    CHECK(co.overall_count == 1);
    CHECK(co.overall_accuracy == 1.0);
  }
}

TEST_CASE("features: discourse units, sentences and paragraphs", "[features]") {
  const document doc = parse_one(discourse_doc);
  REQUIRE(doc.discourse_units.size() == 4);
  const prepared_document prepared(doc);
  SECTION("a head that attends the related unit") {
    // Rows of u1 (3..6) and u2 (7..9) attend word 0 (u0), rows of u3 (10..12) attend word 7 (u2); u0 attends itself.
    head_feature_accumulator acc(0, 0, every_column);
    acc.add(one_hot({0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7}), prepared);
    const auto di = acc.evidence().discourse;
    // Judged: u1 (parent u0), u2 (parent u0), u3 (parent u2); all right. Chain: u1 and u3 have the previous unit
    // as parent, u2 does not: 2/3.
    CHECK(di.unit_count == 3);
    CHECK(di.related_unit_accuracy == 1.0);
    CHECK(di.chain_baseline_accuracy == Approx(2.0 / 3));
    // Cross sentence: rows 7, 8, 9 (sentence 2) attend word 0 (sentence 1): 3 of 13 rows. Paragraphs follow
    // sentences here. Cross unit: every row outside u0 (10 rows) attends another unit: 10/13.
    CHECK(di.cross_sentence_mass == Approx(3.0 / 13));
    CHECK(di.cross_paragraph_mass == Approx(3.0 / 13));
    CHECK(di.cross_unit_mass == Approx(10.0 / 13));
    CHECK(di.rows == 13);
  }
  SECTION("a previous-word head scores like the chain baseline") {
    // u1: rows 3..6 attend 2 (u0), 3, 4, 5 (own): most attended other unit u0 = parent: right.
    // u2: rows 7..9 attend 6 (u1), 7, 8: other unit u1, parent u0: wrong. u3: rows 10..12 attend 9 (u2): right.
    head_feature_accumulator acc(0, 0, every_column);
    acc.add(previous_word(13), prepared);
    const auto di = acc.evidence().discourse;
    CHECK(di.unit_count == 3);
    CHECK(di.related_unit_accuracy == Approx(2.0 / 3));
    CHECK(di.chain_baseline_accuracy == Approx(2.0 / 3));
  }
  SECTION("a unit is judged in the window that owns its first word") {
    // Windows [0, 8) owning [0, 7) and [5, 13) owning [7, 13): u1 starts at 3 (window 1), u2 and u3 at 7 and 10
    // (window 2); u2's parent u0 (words 0..2) has no word in window 2, so u2 is not judged: 2 units in all.
    head_feature_accumulator acc(0, 0, every_column);
    const map_f full = one_hot({0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7});
    map_f first = full.block(0, 0, 8, 8);
    map_f second = full.block(5, 5, 8, 8);
    // In the second window rows 7..9 (local 2..4) attended word 0, which is outside: give them self-attention.
    for (int r = 0; r < 8; ++r) {
      if (second.row(r).sum() == 0.0f) second(r, r) = 1.0f;
    }
    acc.add(first, prepared, word_window{0, 8, 0, 7});
    acc.add(second, prepared, word_window{5, 13, 7, 13});
    const auto ev = acc.evidence();
    CHECK(ev.windows == 2);
    CHECK(ev.discourse.unit_count == 2);
    CHECK(ev.discourse.related_unit_accuracy == 1.0);
    CHECK(ev.positional.rows == 13);
  }
}

TEST_CASE("features: general shape of uniform, sink and causal heads", "[features]") {
  // Four words: [0] Yes [1] , [2] indeed [3] .
  const document doc = parse_one({w(1, "Yes", "INTJ", 3, "discourse"), w(2, ",", "PUNCT", 3, "punct"),
                                  w(3, "indeed", "ADV", 0, "root"), w(4, ".", "PUNCT", 3, "punct"), ""});
  const prepared_document prepared(doc);
  SECTION("uniform") {
    head_feature_accumulator acc(0, 0, every_column);
    acc.add(map_d::Constant(4, 4, 0.25), prepared);
    const head_evidence ev = acc.evidence();
    // Entropy log 4 / log 4 = 1. Distances: row 0: (0+1+2+3)/4 = 1.5, row 1: 1, row 2: 1, row 3: 1.5 -> 1.25.
    CHECK(ev.general.entropy == Approx(1.0));
    CHECK(ev.general.mean_distance == Approx(1.25));
    // First token (rows 1..3): 0.25. Punctuation: ',' and '.': 0.5; separator: only the final '.': 0.25.
    CHECK(ev.general.first_token_mass == Approx(0.25));
    CHECK(ev.general.punctuation_mass == Approx(0.5));
    CHECK(ev.general.separator_mass == Approx(0.25));
    // Argmax of a uniform row is its first column: offsets 0, -1, -2, -3, one row each; the tie goes to offset 0,
    // which every row has: share 1/4.
    CHECK(ev.positional.top_offset == 0);
    CHECK(ev.positional.top_offset_share == Approx(0.25));
    CHECK(ev.positional.self_mass == Approx(0.25));
    CHECK(ev.positional.previous_mass == Approx(0.25));
  }
  SECTION("sink") {
    head_feature_accumulator acc(0, 0, every_column);
    acc.add(one_hot({0, 0, 0, 0}), prepared);
    const head_evidence ev = acc.evidence();
    CHECK(ev.general.first_token_mass == 1.0);  // rows 1..3 (row 0 is left out)
    CHECK(ev.general.mean_distance == Approx((0.0 + 1 + 2 + 3) / 4));
  }
  SECTION("causal uniform: normalised by the row's own length") {
    headlens::feature_options options = every_column;
    options.causal = true;
    head_feature_accumulator acc(0, 0, options);
    map_d m = map_d::Zero(4, 4);
    for (int i = 0; i < 4; ++i) m.row(i).head(i + 1).setConstant(1.0 / (i + 1));
    acc.add(m, prepared);
    // Rows 1..3 are uniform over their i + 1 keys: 1 each; row 0 has one key and is left out.
    CHECK(acc.evidence().general.entropy == Approx(1.0));
    head_feature_accumulator bidirectional(0, 0, every_column);
    bidirectional.add(m, prepared);
    // Normalised by log 4 instead: (log 2 + log 3 + log 4) / log 4 / 4 rows (row 0 has entropy 0).
    CHECK(bidirectional.evidence().general.entropy ==
          Approx((std::log(2.0) + std::log(3.0) + std::log(4.0)) / std::log(4.0) / 4));
  }
  SECTION("fully masked rows are skipped") {
    map_d m = map_d::Constant(4, 4, 0.25);
    m.row(2).setZero();
    head_feature_accumulator acc(0, 0, every_column);
    acc.add(m, prepared);
    CHECK(acc.evidence().positional.rows == 3);
    CHECK(acc.evidence().general.rows == 3);
  }
}

TEST_CASE("features: sinks are set apart: argmax over the free columns, masses of the free attention",
          "[features][sinks]") {
  // syntax_doc as one window: sinks are column 0 ("The") and the separators 5 and 10 ('.'); 8 free columns.
  // Row i puts 0.6 on word 0 and 0.4 on its dependency head (roots 2 and 9: on themselves), targets
  // t = [1, 2, 2, 4, 2, 2, 8, 8, 9, 9, 9], all free.
  const document doc = parse_one(syntax_doc);
  const prepared_document prepared(doc);
  const std::vector<int> t = {1, 2, 2, 4, 2, 2, 8, 8, 9, 9, 9};
  map_f m = map_f::Zero(11, 11);
  for (int i = 0; i < 11; ++i) {
    m(i, 0) += 0.6f;
    m(i, t[static_cast<std::size_t>(i)]) += 0.4f;
  }
  head_feature_accumulator acc;
  acc.add(m, prepared);
  const head_evidence ev = acc.evidence();
  CHECK(ev.general.sink_mass == Approx(0.6));
  CHECK(ev.general.first_token_mass == Approx(0.6));
  // The free argmax is the head: all 9 arcs dependent -> head are right (every head is free).
  const auto* det_up = find_relation(ev, "det", true);
  REQUIRE(det_up != nullptr);
  CHECK(det_up->count == 3);
  CHECK(det_up->accuracy == 1.0);
  const auto* punct_up = find_relation(ev, "punct", true);
  REQUIRE(punct_up != nullptr);
  CHECK(punct_up->accuracy == 1.0);
  // Head -> dependent: arcs ending on a sink are not judged: the punct arcs (separators) and det 1 -> 0 (word 0);
  // the det heads 4 and 8 attend 2 and 9: none right.
  CHECK(find_relation(ev, "punct", false) == nullptr);
  const auto* det_down = find_relation(ev, "det", false);
  REQUIRE(det_down != nullptr);
  CHECK(det_down->count == 2);
  CHECK(det_down->accuracy == 0.0);
  // Free argmax offsets t - i: +1 +1 0 +1 -2 -3 +2 +1 +1 0 -1: +1 five times, over the 8 rows whose next word is
  // free (i + 1 in {1, 2, 3, 4, 6, 7, 8, 9}).
  CHECK(ev.positional.top_offset == 1);
  CHECK(ev.positional.top_offset_share == Approx(5.0 / 8));
  // The free attention is one word per row: entropy 0, distances |t - i| summing to 13 over 11 rows of equal free
  // mass, and no row leaves its sentence (word 0, in sentence 1, is a sink).
  CHECK(ev.general.entropy == 0.0);
  CHECK(ev.general.mean_distance == Approx(13.0 / 11));
  CHECK(ev.discourse.cross_sentence_mass == Approx(0.0).margin(1e-9));

  SECTION("judged on every column, the same head follows the sink") {
    head_feature_accumulator raw(0, 0, every_column);
    raw.add(m, prepared);
    const head_evidence r = raw.evidence();
    CHECK(r.general.sink_mass == 0.0);
    CHECK(find_relation(r, "det", true)->accuracy == 0.0);  // the argmax is word 0 in every row
    // Rows 6..10 put 0.6 on word 0 of the other sentence: 5 x 0.6 / 11.
    CHECK(r.discourse.cross_sentence_mass == Approx(3.0 / 11));
  }
  SECTION("a row with no free mass has no argmax") {
    head_feature_accumulator sink;
    sink.add(one_hot(std::vector<int>(11, 0)), prepared);
    const head_evidence e = sink.evidence();
    CHECK(e.general.sink_mass == 1.0);
    CHECK(find_relation(e, "det", true)->count == 3);
    CHECK(find_relation(e, "det", true)->accuracy == 0.0);
    CHECK(find_relation(e, "det", false)->accuracy == 0.0);  // not "right" on a free column holding 0
    CHECK(e.positional.top_offset_share == 0.0);
    CHECK(e.general.entropy == 0.0);
    CHECK(e.general.mean_distance == 0.0);
    CHECK(e.discourse.cross_sentence_mass == 0.0);
  }
  SECTION("merging accumulators of different sink settings is refused") {
    head_feature_accumulator raw(0, 0, every_column);
    REQUIRE_THROWS_WITH(acc.merge(raw), Catch::Contains("sinks_apart = 0 into ones with causal = 0, sinks_apart = 1"));
  }
}

TEST_CASE("features: causal entropy is normalised by the free keys of the row", "[features][sinks]") {
  // [0] Yes [1] , [2] indeed [3] .: sinks 0 and 3 (the final '.'), free 1 and 2.
  const document doc = parse_one({w(1, "Yes", "INTJ", 3, "discourse"), w(2, ",", "PUNCT", 3, "punct"),
                                  w(3, "indeed", "ADV", 0, "root"), w(4, ".", "PUNCT", 3, "punct"), ""});
  const prepared_document prepared(doc);
  map_d m = map_d::Zero(4, 4);
  m(0, 0) = 1;
  m(1, 0) = 0.5, m(1, 1) = 0.5;                   // one free key: no entropy
  m(2, 0) = 0.5, m(2, 1) = 0.25, m(2, 2) = 0.25;  // free mass 0.5, uniform over 2 free keys: 1
  m.row(3) << 0.1, 0.2, 0.3, 0.4;                 // free mass 0.5 as 0.4 / 0.6 over 2 free keys
  headlens::feature_options options;
  options.causal = true;
  head_feature_accumulator acc(0, 0, options);
  acc.add(m, prepared);
  const double h3 = -(0.4 * std::log(0.4) + 0.6 * std::log(0.6)) / std::log(2.0);
  CHECK(acc.evidence().general.entropy == Approx((0.5 * 1.0 + 0.5 * h3) / (0.5 + 0.5)));
  // Sink mass over all 4 rows: 1, 0.5, 0.5, 0.1 + 0.4.
  CHECK(acc.evidence().general.sink_mass == Approx((1 + 0.5 + 0.5 + 0.5) / 4));
}

TEST_CASE("features: plain text without annotations", "[features]") {
  // Words only, no sentences: sentences come from punctuation. [0] Hi [1] there [2] . [3] Who [4] knows [5] ?
  // [6] " (closing quote stays with its sentence) [7] Fine [8] .
  document doc;
  for (const char* form : {"Hi", "there", ".", "Who", "knows", "?", "\"", "Fine", "."}) {
    headlens::word wd;
    wd.form = form;
    wd.upos = "_";
    wd.head = headlens::word::no_head;
    doc.words.push_back(wd);
  }
  const prepared_document prepared(doc);
  CHECK_FALSE(prepared.annotated());
  CHECK(prepared.sentences_from_punctuation());
  const std::vector<headlens::doc_index> sentences = {0, 0, 0, 1, 1, 1, 1, 2, 2};
  for (headlens::Index k = 0; k < 9; ++k) CHECK(prepared.sentence_of(k) == sentences[static_cast<std::size_t>(k)]);
  CHECK(prepared.is_punctuation(6));
  CHECK(prepared.is_separator(6));  // the closing quote ends sentence 1
  CHECK_FALSE(prepared.is_separator(5));
  // A sink head: rows 3..8 (sentences 1 and 2) attend word 0 of sentence 0: cross-sentence 6/9.
  head_feature_accumulator acc(0, 0, every_column);
  acc.add(one_hot({0, 0, 0, 0, 0, 0, 0, 0, 0}), prepared);
  const head_evidence ev = acc.evidence();
  CHECK_FALSE(ev.annotated);
  CHECK(ev.discourse.cross_sentence_mass == Approx(6.0 / 9));
  CHECK(ev.syntactic.relations.empty());
  CHECK(ev.coreference.overall_count == 0);
  CHECK(ev.discourse.unit_count == 0);
  CHECK(ev.discourse.cross_unit_mass == 0.0);
}

TEST_CASE("features: bad maps are rejected with the row, its word and its sum", "[features][errors]") {
  const document doc = parse_one(syntax_doc);
  const prepared_document prepared(doc);
  head_feature_accumulator acc;
  const head_feature_accumulator fresh;
  REQUIRE_THROWS_AS(acc.add(map_f::Constant(11, 12, 1.0f / 12), prepared), shape_error);
  REQUIRE_THROWS_WITH(acc.add(map_f::Constant(11, 12, 1.0f / 12), prepared),
                      Catch::Contains("attention map is 11 x 12"));
  REQUIRE_THROWS_AS(acc.add(map_f::Constant(10, 10, 0.1f), prepared), shape_error);
  REQUIRE_THROWS_WITH(acc.add(map_f::Constant(10, 10, 0.1f), prepared),
                      Catch::Contains("attention map is 10 x 10 but the document has 11 words"));
  map_f m = previous_word(11);
  m(4, 3) = 0.8f;
  REQUIRE_THROWS_AS(acc.add(m, prepared), argument_error);
  REQUIRE_THROWS_WITH(acc.add(m, prepared), Catch::Contains("map row 4 (word 4) sums to 0.8") &&
                                                Catch::Contains("expected 1 or 0 (tolerance 0.001)"));
  m = previous_word(11);
  m(7, 2) = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(acc.add(m, prepared), Catch::Contains("map row 7 (word 7) holds nan at column 2"));
  m = previous_word(11);
  m(3, 2) = 1.5f;
  m(3, 5) = -0.5f;
  REQUIRE_THROWS_WITH(acc.add(m, prepared), Catch::Contains("map row 3 (word 3) holds -0.5 at column 5"));
  m = previous_word(11);
  m(9, 1) = std::numeric_limits<float>::infinity();
  REQUIRE_THROWS_WITH(acc.add(m, prepared), Catch::Contains("holds inf at column 1"));
  REQUIRE_THROWS_AS(acc.add(previous_word(4), prepared, word_window{9, 13, 9, 13}), argument_error);
  REQUIRE_THROWS_AS(acc.add(previous_word(4), prepared, word_window{0, 4, 2, 6}), argument_error);
  REQUIRE_THROWS_WITH(acc.add(previous_word(4), prepared, word_window{0, 5, 0, 5}),
                      Catch::Contains("but the window [0, 5) has 5 words"));
  // Within tolerance is fine; nothing was added by the failed calls.
  CHECK(acc == fresh);
  map_f close = previous_word(11);
  close(4, 3) = 0.9995f;
  acc.add(close, prepared);
  CHECK(acc.evidence().positional.rows == 11);
  // Merging another head is an error.
  REQUIRE_THROWS_AS(acc.merge(head_feature_accumulator(0, 1)), argument_error);
}

TEST_CASE("features: windows count each word row once", "[features][windows]") {
  const std::vector<document> docs = headlens::read_conllu(gum_fixture());
  REQUIRE(docs.size() == 2);
  for (const document& doc : docs) {
    const prepared_document prepared(doc);
    const headlens::Index n = prepared.words();
    head_feature_accumulator whole, windowed;
    whole.add(previous_word(n), prepared);
    for (const word_window& win : headlens::make_windows(n, 64, 24)) {
      windowed.add(previous_word(win.size()), prepared, win);
    }
    const head_evidence a = whole.evidence(), b = windowed.evidence();
    CHECK(b.positional.rows == n);
    CHECK(a.positional.rows == n);
    CHECK(b.positional.previous_mass == 1.0);
    CHECK(b.positional.top_offset == -1);
    CHECK(b.positional.top_offset_share == 1.0);
    CHECK(a.positional.offset_mass == b.positional.offset_mass);
    CHECK(a.general.mean_distance == b.general.mean_distance);
    CHECK(b.windows > 1);
  }
}

TEST_CASE("features: merged accumulators equal a single pass, exactly; JSON round trip", "[features][merge]") {
  const std::vector<document> docs = headlens::read_conllu(gum_fixture());
  REQUIRE(docs.size() == 2);
  constexpr int layers = 2, heads = 3;
  model_feature_accumulator single(layers, heads), part_a(layers, heads), part_b(layers, heads);
  std::mt19937 rng(12345);
  int k = 0;
  for (const document& doc : docs) {
    const prepared_document prepared(doc);
    for (const word_window& win : headlens::make_windows(prepared.words(), 96, 40)) {
      const headlens::Index n = win.size();
      std::vector<float> maps;
      for (int m = 0; m < layers * heads; ++m) {
        const map_f one = random_map(n, rng);
        maps.insert(maps.end(), one.data(), one.data() + one.size());
      }
      single.add(maps.data(), layers, heads, n, prepared, win);
      (k++ % 2 == 0 ? part_a : part_b).add(maps.data(), layers, heads, n, prepared, win);
    }
  }
  model_feature_accumulator merged = part_b;  // merged in the other order on purpose
  merged.merge(part_a);
  CHECK(merged == single);
  const std::vector<head_evidence> ea = merged.evidence(), eb = single.evidence();
  REQUIRE(ea.size() == eb.size());
  for (std::size_t h = 0; h < ea.size(); ++h) {
    CHECK(ea[h].positional.offset_mass == eb[h].positional.offset_mass);
    CHECK(ea[h].general.entropy == eb[h].general.entropy);
    CHECK(ea[h].general.mean_distance == eb[h].general.mean_distance);
    CHECK(ea[h].discourse.cross_unit_mass == eb[h].discourse.cross_unit_mass);
    CHECK(ea[h].coreference.overall_accuracy == eb[h].coreference.overall_accuracy);
    REQUIRE(ea[h].syntactic.relations.size() == eb[h].syntactic.relations.size());
    CHECK(ea[h].general.rows > 1000);
    CHECK(ea[h].coreference.overall_count > 0);
    CHECK(ea[h].discourse.unit_count > 0);
  }
  // JSON: text round trip of each part, then merging the loaded parts, gives the single pass again.
  const std::string text_a = headlens::features_to_json(part_a).dump();
  const std::string text_b = headlens::features_to_json(part_b).dump();
  model_feature_accumulator loaded = headlens::features_from_json(nlohmann::json::parse(text_a));
  CHECK(loaded == part_a);
  loaded.merge(headlens::features_from_json(nlohmann::json::parse(text_b)));
  CHECK(loaded == single);
  CHECK(headlens::features_to_json(loaded).dump() == headlens::features_to_json(single).dump());
}

TEST_CASE("features: JSON files and malformed JSON", "[features][json]") {
  const document doc = parse_one(syntax_doc);
  const prepared_document prepared(doc);
  model_feature_accumulator acc(1, 2);
  std::vector<float> maps;
  const map_f a = previous_word(11);
  maps.insert(maps.end(), a.data(), a.data() + a.size());
  const map_f b = map_f::Constant(11, 11, 1.0f / 11);
  maps.insert(maps.end(), b.data(), b.data() + b.size());
  acc.add(maps.data(), 1, 2, 11, prepared, headlens::whole_document(11));
  const std::string path = "test_features_roundtrip.json";
  headlens::save_features(path, acc);
  CHECK(headlens::load_features(path) == acc);
  CHECK(headlens::load_features(path).head(0, 0).evidence().positional.previous_mass == 1.0);

  nlohmann::json j = headlens::features_to_json(acc);
  j["format"] = "something else";
  REQUIRE_THROWS_AS(headlens::features_from_json(j, "x.json"), format_error);
  j = headlens::features_to_json(acc);
  j["version"] = 1;  // before the sink totals: refused, not misread
  REQUIRE_THROWS_WITH(headlens::features_from_json(j, "x.json"), Catch::Contains("version 1, expected 2"));
  j = headlens::features_to_json(acc);
  j["accumulators"][0].erase("rows");
  REQUIRE_THROWS_WITH(headlens::features_from_json(j, "x.json"), Catch::Contains("x.json: malformed features JSON"));
  j = headlens::features_to_json(acc);
  j["accumulators"][1]["head"] = 0;
  REQUIRE_THROWS_WITH(headlens::features_from_json(j, "x.json"), Catch::Contains("expected layer 0 head 1"));
  {
    std::ofstream out(path);
    out << "{ not json";
  }
  REQUIRE_THROWS_AS(headlens::load_features(path), format_error);
  std::remove(path.c_str());
}

TEST_CASE("features: a model's maps as a [layers, heads, W, W] tensor", "[features][model]") {
  const document doc = parse_one(syntax_doc);
  // Layer 0: previous word; layer 1: follows arcs to heads.
  headlens::tensor<float> maps;
  maps.shape = {2, 1, 11, 11};
  const map_f prev = previous_word(11);
  const map_f arcs = one_hot({1, 2, 2, 4, 2, 2, 8, 8, 9, 9, 9});
  maps.data.insert(maps.data.end(), prev.data(), prev.data() + prev.size());
  maps.data.insert(maps.data.end(), arcs.data(), arcs.data() + arcs.size());
  const std::vector<head_evidence> ev = headlens::head_evidence_from_maps(maps, doc);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].layer == 0);
  CHECK(ev[0].positional.previous_mass == 1.0);
  CHECK(ev[1].layer == 1);
  CHECK(ev[1].head == 0);
  CHECK(find_relation(ev[1], "det", true)->accuracy == 1.0);

  headlens::tensor<float> wrong = maps;
  wrong.shape = {2, 11, 11};
  REQUIRE_THROWS_WITH(headlens::head_evidence_from_maps(wrong, doc), Catch::Contains("expected 4"));
  wrong.shape = {1, 2, 11, 11};
  const prepared_document prepared(doc);
  model_feature_accumulator acc(2, 1);
  REQUIRE_THROWS_WITH(acc.add(wrong, prepared), Catch::Contains("maps have 1 layers x 2 heads, expected 2 x 1"));
  headlens::tensor<float> small;
  small.shape = {2, 1, 10, 10};
  small.data.assign(200, 0.1f);
  REQUIRE_THROWS_WITH(acc.add(small, prepared), Catch::Contains("maps are over 10 words but the document has 11"));
  // A bad row in layer 1 names the layer and head, and no head takes anything.
  headlens::tensor<float> bad = maps;
  bad.data[static_cast<std::size_t>(121 + 3 * 11 + 4)] = 0.5f;  // layer 1, row 3
  const model_feature_accumulator fresh(2, 1);
  REQUIRE_THROWS_WITH(acc.add(bad, prepared), Catch::StartsWith("headlens: layer 1 head 0: map row 3 (word 3)"));
  CHECK(acc == fresh);
  acc.add(maps, prepared);
  CHECK(acc.head(1, 0).evidence().positional.rows == 11);
}

TEST_CASE("features: the GUM dev split in 256-word windows (skipped when ../shared is absent)", "[features][gum]") {
  const std::string path = std::string(HEADLENS_SHARED_DIR) + "/data/gum/en_gum-ud-dev.conllu";
  if (!std::ifstream(path)) {
    WARN("SKIPPED: " << path << " is absent (it lives outside the repository); the fixture tests still run");
    return;
  }
  headlens::conllu_reader reader(path);
  document doc;
  head_feature_accumulator prev;
  std::int64_t words = 0;
  while (reader.next(doc)) {
    const prepared_document prepared(doc);
    words += prepared.words();
    for (const word_window& win : headlens::make_windows(prepared.words(), 256, 128)) {
      prev.add(previous_word(win.size()), prepared, win);
    }
  }
  const head_evidence ev = prev.evidence();
  CHECK(ev.positional.rows == words);
  CHECK(words == 28119);  // grep -c of word lines in the dev split (see test_conllu)
  CHECK(ev.positional.previous_mass == 1.0);
  CHECK(ev.positional.top_offset_share == 1.0);
  CHECK(ev.annotated);
}

namespace {

// A plain reference for the row-level features, written from the definitions in the file comment of
// analysis/features.hpp with no shared code: loops over every owned row of every window, in double. With
// `sinks_apart` the window's first word and sentence-final punctuation are sinks: the argmax is taken over the other
// (free) columns, arcs to a sink are not judged, and entropy, distance and cross-boundary masses describe the free
// attention, weighted by its mass.
struct reference_features {
  bool sinks_apart = true;
  std::array<double, 17> offset_sum{};
  std::array<double, 17> offset_rows{};
  std::array<double, 17> argmax_at{};
  std::array<double, 17> argmax_rows{};
  double rows = 0, free_mass = 0, sink_mass = 0, entropy = 0, entropy_mass = 0, distance = 0, first = 0, first_rows = 0,
         punct = 0, sep = 0;
  double cross_sentence = 0, cross_paragraph = 0, cross_unit = 0, unit_free_mass = 0;
  double nsubj_up = 0, nsubj_up_right = 0, det_down = 0, det_down_right = 0;

  template <class Map>
  void add(const Map& m, const document& doc, const word_window& win) {
    const headlens::Index n = win.size();
    auto unit_of = [&](headlens::Index wd) {
      for (std::size_t u = 0; u < doc.discourse_units.size(); ++u) {
        if (doc.discourse_units[u].begin <= wd && wd < doc.discourse_units[u].end) return static_cast<long>(u);
      }
      return -1L;
    };
    auto separator = [&](headlens::Index wd) {
      const auto& word = doc.words[static_cast<std::size_t>(wd)];
      return word.upos == "PUNCT" && wd == doc.sentences[static_cast<std::size_t>(word.sentence)].end - 1;
    };
    auto sink = [&](headlens::Index j) { return sinks_apart && (j == 0 || separator(win.begin + j)); };
    headlens::Index free_columns = 0;
    for (headlens::Index j = 0; j < n; ++j) free_columns += sink(j) ? 0 : 1;
    for (headlens::Index i = win.own_begin - win.begin; i < win.own_end - win.begin; ++i) {
      const headlens::Index wi = win.begin + i;
      double total = 0, free = 0;
      for (headlens::Index j = 0; j < n; ++j) {
        total += static_cast<double>(m(i, j));
        if (!sink(j)) free += static_cast<double>(m(i, j));
      }
      if (total == 0) continue;
      rows += 1;
      free_mass += free;
      sink_mass += total - free;
      headlens::Index arg = -1;
      for (headlens::Index j = 0; j < n; ++j) {
        if (!sink(j) && m(i, j) > 0 && (arg < 0 || m(i, j) > m(i, arg))) arg = j;
      }
      for (int d = -8; d <= 8; ++d) {
        if (i + d < 0 || i + d >= n) continue;
        offset_sum[static_cast<std::size_t>(d + 8)] += static_cast<double>(m(i, i + d));
        offset_rows[static_cast<std::size_t>(d + 8)] += 1;
        if (!sink(i + d)) argmax_rows[static_cast<std::size_t>(d + 8)] += 1;
        if (arg == i + d) argmax_at[static_cast<std::size_t>(d + 8)] += 1;
      }
      double h = 0;
      const auto& wdi = doc.words[static_cast<std::size_t>(wi)];
      for (headlens::Index j = 0; j < n; ++j) {
        const double p = static_cast<double>(m(i, j));
        const headlens::Index wj = win.begin + j;
        const auto& wdj = doc.words[static_cast<std::size_t>(wj)];
        if (wdj.upos == "PUNCT") punct += p;
        if (separator(wj)) sep += p;
        if (sink(j)) continue;
        if (p > 0) h -= p / free * std::log(p / free);
        distance += p * static_cast<double>(std::abs(i - j));
        if (wdj.sentence != wdi.sentence) cross_sentence += p;
        if (doc.paragraph_of(wj) != doc.paragraph_of(wi)) cross_paragraph += p;
        if (unit_of(wi) >= 0 && unit_of(wj) != unit_of(wi)) cross_unit += p;
      }
      if (unit_of(wi) >= 0) unit_free_mass += free;
      if (free_columns >= 2 && free > 0) {
        entropy += free * h / std::log(static_cast<double>(free_columns));
        entropy_mass += free;
      }
      if (i > 0) {
        first += static_cast<double>(m(i, 0));
        first_rows += 1;
      }
      if (wdi.head >= win.begin && wdi.head < win.end && !sink(wdi.head - win.begin) && wdi.base_deprel() == "nsubj") {
        nsubj_up += 1;
        if (win.begin + arg == wdi.head) nsubj_up_right += 1;
      }
      for (headlens::Index c = win.begin; c < win.end; ++c) {
        const auto& dep = doc.words[static_cast<std::size_t>(c)];
        if (dep.head == wi && !sink(c - win.begin) && dep.base_deprel() == "det") {
          det_down += 1;
          if (win.begin + arg == c) det_down_right += 1;
        }
      }
    }
  }
};

/// `scattered_paragraphs`: sentences alternate between two paragraphs, so a window's paragraphs are not runs of
/// columns and the cross-boundary masses go by segments instead of by spans.
template <class Scalar>
void compare_with_reference(headlens::Index window, headlens::Index stride, bool sinks_apart = true,
                            bool scattered_paragraphs = false) {
  std::vector<document> docs = headlens::read_conllu(gum_fixture());
  if (scattered_paragraphs) {
    for (document& doc : docs) {
      for (std::size_t s = 0; s < doc.sentences.size(); ++s) doc.sentences[s].paragraph = headlens::doc_index(s % 2);
    }
  }
  headlens::feature_options options;
  options.sinks_apart = sinks_apart;
  head_feature_accumulator acc(0, 0, options);
  reference_features ref;
  ref.sinks_apart = sinks_apart;
  std::mt19937 rng(777);
  for (const document& doc : docs) {
    const prepared_document prepared(doc);
    for (const word_window& win : headlens::make_windows(prepared.words(), window, stride)) {
      const headlens::matrix<Scalar> m = random_map(win.size(), rng).template cast<Scalar>();
      acc.add(m, prepared, win);
      ref.add(m, doc, win);
    }
  }
  const head_evidence ev = acc.evidence();
  const double tol = std::is_same<Scalar, float>::value ? 1e-5 : 1e-9;
  CHECK(static_cast<double>(ev.positional.rows) == ref.rows);
  for (std::size_t d = 0; d < 17; ++d) {
    INFO("offset " << static_cast<int>(d) - 8);
    // An offset that no row has (beyond a short window's size) reports 0.
    const double expected = ref.offset_rows[d] > 0 ? ref.offset_sum[d] / ref.offset_rows[d] : 0.0;
    CHECK(ev.positional.offset_mass[d] == Approx(expected).margin(tol));
  }
  // The most common argmax offset, ties to the smaller |d|, then the negative one.
  std::size_t top = 8;
  for (int a = 1; a <= 8; ++a) {
    for (int d : {-a, a}) {
      if (ref.argmax_at[static_cast<std::size_t>(d + 8)] > ref.argmax_at[top]) top = static_cast<std::size_t>(d + 8);
    }
  }
  CHECK(ev.positional.top_offset == static_cast<int>(top) - 8);
  CHECK(ev.positional.top_offset_share == Approx(ref.argmax_at[top] / ref.argmax_rows[top]));
  CHECK(ev.general.sink_mass == Approx(ref.sink_mass / ref.rows).margin(tol));
  if (!sinks_apart) CHECK(ev.general.sink_mass == 0.0);
  CHECK(ev.general.entropy == Approx(ref.entropy / ref.entropy_mass).margin(tol));
  // Distances are summed in fixed point of 2^-20 words per window, so they are exact to about 1e-6 words.
  CHECK(ev.general.mean_distance == Approx(ref.distance / ref.free_mass).margin(std::max(tol, 1e-6)));
  CHECK(ev.general.first_token_mass == Approx(ref.first / ref.first_rows).margin(tol));
  CHECK(ev.general.punctuation_mass == Approx(ref.punct / ref.rows).margin(tol));
  CHECK(ev.general.separator_mass == Approx(ref.sep / ref.rows).margin(tol));
  CHECK(ev.discourse.cross_sentence_mass == Approx(ref.cross_sentence / ref.free_mass).margin(tol));
  CHECK(ev.discourse.cross_paragraph_mass == Approx(ref.cross_paragraph / ref.free_mass).margin(tol));
  CHECK(ev.discourse.cross_unit_mass == Approx(ref.cross_unit / ref.unit_free_mass).margin(tol));
  const auto* nsubj = find_relation(ev, "nsubj", true);
  const auto* det = find_relation(ev, "det", false);
  REQUIRE(nsubj != nullptr);
  REQUIRE(det != nullptr);
  CHECK(static_cast<double>(nsubj->count) == ref.nsubj_up);
  CHECK(nsubj->accuracy == Approx(ref.nsubj_up_right / ref.nsubj_up));
  CHECK(static_cast<double>(det->count) == ref.det_down);
  CHECK(det->accuracy == Approx(ref.det_down_right / ref.det_down));
  // Random maps with peaks get some arcs right in short windows: the comparison is not only 0 == 0.
  if (window <= 96) CHECK(ref.nsubj_up_right + ref.det_down_right > 0);
}

}  // namespace

TEST_CASE("features: the SIMD sweep agrees with a plain reference (float and double, windows of every size)",
          "[features][reference]") {
  SECTION("float, 96-word windows") { compare_with_reference<float>(96, 40); }
  SECTION("float, 13-word windows (shorter than a vector)") { compare_with_reference<float>(13, 7); }
  SECTION("double, 50-word windows") { compare_with_reference<double>(50, 50); }
  SECTION("double, 5-word windows") { compare_with_reference<double>(5, 3); }
  SECTION("float, whole documents") { compare_with_reference<float>(1000, 1000); }
  SECTION("float, 96-word windows, every column alike") { compare_with_reference<float>(96, 40, false); }
  SECTION("double, 5-word windows, every column alike") { compare_with_reference<double>(5, 3, false); }
  SECTION("float, 96-word windows, paragraphs scattered") { compare_with_reference<float>(96, 40, true, true); }
  SECTION("float, 13-word windows, paragraphs scattered") { compare_with_reference<float>(13, 7, true, true); }
}

TEMPLATE_TEST_CASE("features: the vectorised log used for entropies agrees with std::log", "[features][log]", float,
                   double) {
  using batch = xsimd::batch<TestType>;
  // Error relative to max(1, |log x|): the exponent's share e log 2 carries the format's rounding.
  const double tol = std::is_same<TestType, float>::value ? 5e-7 : 5e-14;
  double worst = 0;
  for (double x = static_cast<double>(std::numeric_limits<TestType>::min()); x < 1e6; x *= 1.0173) {
    alignas(64) TestType in[batch::size];
    alignas(64) TestType out[batch::size];
    for (std::size_t k = 0; k < batch::size; ++k) in[k] = static_cast<TestType>(x * (1.0 + 0.001 * k));
    headlens::detail::entropy_log(batch::load_aligned(in)).store_aligned(out);
    for (std::size_t k = 0; k < batch::size; ++k) {
      const double exact = std::log(static_cast<double>(in[k]));
      worst = std::max(worst, std::abs(static_cast<double>(out[k]) - exact) / std::max(1.0, std::abs(exact)));
    }
  }
  INFO("worst error " << worst);
  CHECK(worst < tol);
}

TEST_CASE("features: maps as views into a larger buffer", "[features]") {
  const document doc = parse_one(syntax_doc);
  const prepared_document prepared(doc);
  // The 11 x 11 previous-word map sits inside a 20 x 30 buffer: a block (row stride 30) and a pointer with a row
  // stride give the same result as the map itself.
  map_f buffer = map_f::Constant(20, 30, 7.0f);
  buffer.block(3, 5, 11, 11) = previous_word(11);
  head_feature_accumulator from_block, from_pointer, from_map;
  from_block.add(buffer.block(3, 5, 11, 11), prepared);
  from_pointer.add(buffer.data() + 3 * 30 + 5, 30, prepared, headlens::whole_document(11));
  from_map.add(previous_word(11), prepared);
  CHECK(from_block == from_map);
  CHECK(from_pointer == from_map);
  CHECK(from_map.evidence().positional.previous_mass == 1.0);
}

}  // namespace test_features
