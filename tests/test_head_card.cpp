// Head cards: SHA-256 against the FIPS 180-2 vectors and `sha256sum`, the JSON form (exact round trip, every
// rejection with its JSON path, forward compatibility), the committed fixture (validated against
// docs/head-card.schema.json by python3-jsonschema when it was generated, tools/check_head_card_schema.py) and a
// small validator here for the schema keywords it uses, and what the Markdown and HTML forms say.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "headlens/analysis/head_card.hpp"
#include "headlens/analysis/head_card_html.hpp"
#include "headlens/analysis/head_card_markdown.hpp"
#include "headlens/analysis/policy_parameters.hpp"
#include "headlens/detail/sha256.hpp"
#include "headlens/version.hpp"
#if __has_include(<nlohmann/json.hpp>)
#include "headlens/analysis/head_card_json.hpp"
#define HEADLENS_TEST_CARD_JSON 1
#endif

namespace test_head_card {

using headlens::card_head;
using headlens::head_card;
using headlens::head_label;

namespace {

const double nan = std::numeric_limits<double>::quiet_NaN();

std::string data_path(const std::string& name) { return std::string(HEADLENS_TEST_DATA_DIR) + "/head_card/" + name; }
std::string source_path(const std::string& name) { return std::string(HEADLENS_TEST_DATA_DIR) + "/../../" + name; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

card_head head(int layer, int h, head_label label, double confidence, std::string reason = {}) {
  card_head out;
  out.verdict.layer = layer;
  out.verdict.head = h;
  out.verdict.label = label;
  out.verdict.confidence = confidence;
  out.verdict.reason = std::move(reason);
  return out;
}

/// A card with no optional section: 2 layers x 3 heads.
head_card minimal_card() {
  head_card card;
  card.model.name = "tiny-gpt2";
  card.model.description = "a random 2-layer GPT-2 fixture";
  card.model.heads_per_layer = {3, 3};
  card.model.causal = true;
  card.provenance.files.push_back({"model", "tests/data/models/gpt2/model.safetensors",
                                   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 12345});
  card.provenance.files.push_back({"corpus", "gum_dev.conllu",
                                   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", 987654321});
  card.provenance.policy = "annotated";
  card.provenance.policy_parameters = {{"margin", "0.05"}};
  card.provenance.analysis = {{"context", "window"}, {"window", "64"}, {"stride", "32"}};
  card.provenance.created = "2026-12-08T01:02:03Z";
  card_head a = head(0, 0, head_label::positional, 0.9);
  a.verdict.set_score(head_label::positional, 0.25);
  a.verdict.set_score(head_label::syntactic, -0.125);
  a.verdict.evidence.push_back({"argmax share at offset -1", 0.97, 0.9});
  a.verdict.evidence.push_back({"entropy", 1.5, nan});
  card.heads.push_back(a);
  card.heads.push_back(head(0, 1, head_label::syntactic, 0.6));
  card.heads.back().verdict.set_score(head_label::syntactic, 0.1 + 0.2);  // 0.30000000000000004: exactness
  card.heads.back().verdict.evidence.push_back({"nsubj dep->head accuracy | <b>", 0.5, 0.25});
  card.heads.push_back(head(0, 2, head_label::unassigned, 0.7, "sink"));
  card.heads.push_back(head(1, 0, head_label::coreference, 1e-300));
  card.heads.push_back(head(1, 1, head_label::discourse, 0.333));
  card.heads.push_back(head(1, 2, head_label::syntactic, 0.5, "tied <script>alert(1)</script> \xC3\xA9"));
  return card;
}

/// The minimal card with every optional section.
head_card full_card() {
  head_card card = minimal_card();
  card.model.kv_heads_per_layer = {1, 3};
  card.provenance.command = "headlens classify --card card.json";
  card.importance = headlens::card_importance_run{"next-token cross-entropy", "window",
                                                  "95% bootstrap over documents", 40, false, 0.42};
  headlens::card_causal_check syntactic;
  syntactic.label = head_label::syntactic;
  syntactic.heads = 2;
  syntactic.ablation = "zero";
  syntactic.tokens = "tokens whose syntactic head or dependents are visible";
  syntactic.effect = 0.031;
  syntactic.random_effect = 0.004;
  syntactic.p_value = 0.01;
  syntactic.draws = 20;
  syntactic.verdict = headlens::causal_verdict::supported;
  headlens::card_causal_check discourse;
  discourse.label = head_label::discourse;
  discourse.heads = 1;
  discourse.ablation = "zero";
  discourse.draws = 0;
  discourse.verdict = headlens::causal_verdict::not_testable;
  discourse.reason = "no discourse annotation in the corpus";
  card.causal_checks = {syntactic, discourse};
  card.sparsity = headlens::card_sparsity_run{"top-k", "8", 0.0025};
  card.matches.push_back({"use-lite", "", 120, "1 - JSD of word-level maps, Hungarian assignment"});
  card.pruning = headlens::card_pruning_run{"share 0.3", 2, 0.004};
  for (card_head& h : card.heads) {
    const int i = h.verdict.layer * 3 + h.verdict.head;
    h.importance = headlens::card_importance{{0.01 * i, 0.005 * i, 0.02 * i}, {0.008 * i, nan, nan}, 6 - i};
    h.sparsity = headlens::card_sparsity{0.874, 0.983, 0.0125};
    h.pruning = headlens::card_pruning{i < 2, i < 2 ? i + 1 : 0};
  }
  card.heads[0].matches.push_back({"use-lite", 1, 2, 0.8125, true});
  card.heads[3].sparsity = headlens::card_sparsity{nan, nan, nan};
  return card;
}

}  // namespace

// ---- SHA-256 ---------------------------------------------------------------------------------------------------------

TEST_CASE("sha256 matches the FIPS 180-2 test vectors", "[head_card][sha256]") {
  using headlens::detail::sha256_hex;
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 gives the same digest whatever the chunks", "[head_card][sha256]") {
  std::string message;
  for (int i = 0; i < 1000; ++i) message += char(i * 7 + 3);
  const std::string whole = headlens::detail::sha256_hex(message);
  for (std::size_t chunk : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 127u, 999u}) {
    headlens::detail::sha256 h;
    for (std::size_t at = 0; at < message.size(); at += chunk) {
      h.update(message.data() + at, std::min(chunk, message.size() - at));
    }
    CHECK(headlens::detail::to_hex(h.finish()) == whole);
  }
  // The padding boundary: 55 bytes fit one block with the length, 56 need two.
  for (std::size_t n : {55u, 56u, 64u}) {
    headlens::detail::sha256 h;
    h.update(std::string(n, 'a'));
    CHECK(headlens::detail::to_hex(h.finish()) == headlens::detail::sha256_hex(std::string(n, 'a')));
  }
}

TEST_CASE("sha256_file agrees with sha256sum on a committed fixture", "[head_card][sha256]") {
  // `sha256sum tests/data/head_card/sha256_input.bin` (GNU coreutils), recorded when the fixture was made.
  const headlens::detail::file_digest d = headlens::detail::sha256_file(data_path("sha256_input.bin"));
  CHECK(d.sha256 == "1e9bc38cbf860b9ec31918b065f9b52476c549a782e0e7990bed8ce3868d2371");
  CHECK(d.bytes == 1000);
  const headlens::card_file f = headlens::hash_card_file("corpus", data_path("sha256_input.bin"));
  CHECK(f.role == "corpus");
  CHECK(f.sha256 == d.sha256);
  CHECK(f.bytes == 1000);
  REQUIRE_THROWS_AS(headlens::detail::sha256_file(data_path("no-such-file")), headlens::io_error);
  REQUIRE_THROWS_WITH(headlens::detail::sha256_file(data_path("no-such-file")),
                      Catch::Contains("cannot open") && Catch::Contains("no-such-file"));
}

TEST_CASE("sha256_file streams a file larger than its 1 MiB chunk", "[head_card][sha256]") {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("headlens-sha256-" + std::to_string(std::random_device{}()) + ".bin")).string();
  std::string bytes(2621440 + 17, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 2654435761u) >> 13);
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
  }
  const headlens::detail::file_digest d = headlens::detail::sha256_file(path);
  std::remove(path.c_str());
  CHECK(d.bytes == bytes.size());
  CHECK(d.sha256 == headlens::detail::sha256_hex(bytes));  // one-shot, checked against FIPS 180-2 above
}

// ---- the plain data ----------------------------------------------------------------------------------------------

TEST_CASE("version.hpp states the version of CMakeLists.txt", "[head_card]") {
  const std::string cmake = slurp(source_path("CMakeLists.txt"));
  std::smatch m;
  REQUIRE(std::regex_search(cmake, m, std::regex(R"(project\(headlens VERSION ([0-9]+)\.([0-9]+)\.([0-9]+))")));
  CHECK(std::stoi(m[1]) == HEADLENS_VERSION_MAJOR);
  CHECK(std::stoi(m[2]) == HEADLENS_VERSION_MINOR);
  CHECK(std::stoi(m[3]) == HEADLENS_VERSION_PATCH);
  CHECK(std::string(headlens::version_string) == m[1].str() + "." + m[2].str() + "." + m[3].str());
}

TEST_CASE("make_head_card keeps every verdict, sorted, with its top evidence", "[head_card]") {
  std::vector<headlens::head_verdict> verdicts(3);
  verdicts[0].layer = 1;
  verdicts[0].head = 0;
  verdicts[0].label = head_label::coreference;
  for (int e = 0; e < 5; ++e) verdicts[0].evidence.push_back({"e" + std::to_string(e), double(e), nan});
  verdicts[1].layer = 0;
  verdicts[1].head = 1;
  verdicts[2].layer = 0;
  verdicts[2].head = 0;
  verdicts[2].label = head_label::positional;
  const headlens::head_report report = headlens::make_report(verdicts, "annotated");
  headlens::card_model model;
  model.name = "m";
  model.heads_per_layer = {2, 1};
  const head_card card = headlens::make_head_card(report, model, {});
  REQUIRE(card.heads.size() == 3);
  CHECK(card.heads[0].position() == std::make_pair(0, 0));
  CHECK(card.heads[2].position() == std::make_pair(1, 0));
  CHECK(card.heads[2].verdict.evidence.size() == 3);
  CHECK(card.heads[2].verdict.evidence[2].name == "e2");
  CHECK(card.provenance.policy == "annotated");
  CHECK(card.provenance.headlens_version == headlens::version_string);
  CHECK(std::regex_match(card.provenance.created, std::regex(R"(20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z)")));
  CHECK_FALSE(card.importance);
  CHECK(card.causal_checks.empty());
  CHECK(headlens::causal_status(card, head_label::coreference) == "not causally checked");
  const headlens::head_card_summary s = headlens::summarize(card);
  CHECK(s.labels.of(head_label::unassigned) == 1);
  CHECK(s.labels.of(head_label::positional) == 1);
  CHECK(s.supported.empty());
}

TEST_CASE("summarize counts labels and lists what the causal check supports", "[head_card]") {
  const head_card card = full_card();
  const headlens::head_card_summary s = headlens::summarize(card);
  CHECK(s.labels.total() == 6);
  CHECK(s.labels.of(head_label::syntactic) == 2);
  CHECK(s.causal[0] == "supported");
  CHECK(s.causal[1] == "not causally checked");
  CHECK(s.causal[2] == "not testable");
  CHECK(s.causal[3] == "not causally checked");
  REQUIRE(s.supported.size() == 1);
  CHECK(s.supported[0] == head_label::syntactic);
}

TEST_CASE("validate_head_card rejects what no card may say", "[head_card]") {
  using Catch::Contains;
  REQUIRE_NOTHROW(headlens::validate_head_card(full_card()));
  const std::vector<std::pair<std::function<void(head_card&)>, std::string>> cases = {
      {[](head_card& c) { c.model.name.clear(); }, "/model/name is empty"},
      {[](head_card& c) { c.heads[1].verdict.head = 3; }, "/heads/1/head is 3, expected in [0, 3)"},
      {[](head_card& c) { c.heads[5].verdict.layer = 2; }, "/heads/5/layer is 2, expected in [0, 2)"},
      {[](head_card& c) { c.heads[4].verdict.head = 0; }, "/heads/4 is head 1.0 again"},
      {[](head_card& c) { c.importance.reset(); }, "/heads/0/importance is present but /importance"},
      {[](head_card& c) { c.sparsity.reset(); }, "/heads/0/sparsity is present but /sparsity"},
      {[](head_card& c) { c.pruning.reset(); }, "/heads/0/pruning is present but /pruning"},
      {[](head_card& c) { c.heads[0].matches[0].model = "gpt2"; }, "/heads/0/matches/0/model is \"gpt2\""},
      {[](head_card& c) { c.causal_checks[1].label = head_label::syntactic; }, "/causal_checks/1/label is \"syntactic\" again"},
      {[](head_card& c) { c.causal_checks[1].label = head_label::unassigned; }, "/causal_checks/1/label is \"unassigned\""},
      {[](head_card& c) { c.provenance.files[0].sha256 = "ABC"; }, "/provenance/files/0/sha256 is \"ABC\""},
      {[](head_card& c) { c.model.kv_heads_per_layer = {2, 3}; }, "/model/kv_heads_per_layer/0 is 2, expected a divisor"},
      {[](head_card& c) { c.model.kv_heads_per_layer = {1}; }, "/model/kv_heads_per_layer has 1 entries"},
  };
  for (const auto& [mutate, message] : cases) {
    head_card card = full_card();
    mutate(card);
    CAPTURE(message);
    REQUIRE_THROWS_AS(headlens::validate_head_card(card), headlens::argument_error);
    REQUIRE_THROWS_WITH(headlens::validate_head_card(card), Contains(message));
  }
}

namespace {
/// What card_model_of reads of an attention_model.
struct fake_model {
  std::string description() const { return "fake, 3 x 2"; }
  long layers() const noexcept { return 3; }
  long heads() const noexcept { return 2; }
  bool causal() const noexcept { return false; }
};
/// The fields of head_matching.hpp's head_match that add_head_matches reads.
struct fake_pair {
  long a, b;
  double similarity;
  bool both;
  bool mutual() const noexcept { return both; }
};
}  // namespace

TEST_CASE("card_model_of and add_head_matches fill a card from the model and match_heads", "[head_card]") {
  const headlens::card_model model = headlens::card_model_of(fake_model{}, "fake");
  CHECK(model.name == "fake");
  CHECK(model.description == "fake, 3 x 2");
  CHECK(model.heads_per_layer == std::vector<int>{2, 2, 2});
  CHECK_FALSE(model.causal);

  head_card card = minimal_card();  // 2 layers x 3 heads
  card.heads.pop_back();            // head 1.2 not described: its match is dropped
  // B has 4 heads per layer, 2 layers: b = 7 is head 1.3, b = 2 is head 0.2.
  const std::vector<fake_pair> pairs = {{0, 7, 0.75, true}, {4, 2, 0.5, false}, {5, 0, 0.25, false}};
  headlens::add_head_matches(card, {"other", "", 10, "test"}, pairs, 3, 4, 2);
  REQUIRE(card.matches.size() == 1);
  CHECK(card.matches[0].model == "other");
  REQUIRE(card.heads[0].matches.size() == 1);
  CHECK(card.heads[0].matches[0].layer == 1);
  CHECK(card.heads[0].matches[0].head == 3);
  CHECK(card.heads[0].matches[0].similarity == 0.75);
  CHECK(card.heads[0].matches[0].mutual);
  REQUIRE(card.heads[4].matches.size() == 1);  // head 1.1 = index 4
  CHECK(card.heads[4].matches[0].layer == 0);
  CHECK(card.heads[4].matches[0].head == 2);
  CHECK_FALSE(card.heads[4].matches[0].mutual);
  CHECK(card.heads[1].matches.empty());
  REQUIRE_NOTHROW(headlens::validate_head_card(card));
  using Catch::Contains;
  REQUIRE_THROWS_WITH(headlens::add_head_matches(card, {"other", "", 10, ""}, pairs, 3, 4, 2),
                      Contains("model \"other\" is already matched"));
  REQUIRE_THROWS_WITH(headlens::add_head_matches(card, {"b", "", 10, ""}, pairs, 4, 4, 2),
                      Contains("heads_a is 4, expected the card's 3 heads of layer 0"));
  REQUIRE_THROWS_WITH(headlens::add_head_matches(card, {"b", "", 10, ""}, std::vector<fake_pair>{{6, 0, 1, true}}, 3, 4, 2),
                      Contains("pair (6, 0) is outside [0, 6) x [0, 8)"));
  REQUIRE_THROWS_WITH(headlens::add_head_matches(card, {"b", "", 10, ""}, std::vector<fake_pair>{{0, 8, 1, true}}, 3, 4, 2),
                      Contains("pair (0, 8) is outside"));
}

TEST_CASE("policy_parameters records every setting of the built-in policies", "[head_card]") {
  headlens::annotated_policy::options o;
  o.syntactic_margin = 0.1 + 0.2;
  o.positional_offsets = {-2, -1, 1};
  o.min_relation_count = 7;
  const headlens::card_parameters a = headlens::policy_parameters(headlens::annotated_policy(o));
  CHECK(a.size() == 15);
  CHECK(a.at("syntactic_margin") == "0.30000000000000004");  // reads back as the same double
  CHECK(std::stod(a.at("syntactic_margin")) == 0.1 + 0.2);
  CHECK(a.at("positional_offsets") == "-2,-1,1");
  CHECK(a.at("min_relation_count") == "7");
  CHECK(a.at("sink_mass") == "0.5");
  CHECK(a.at("tie_margin") == "0.05");
  headlens::heuristic_policy::options h;
  h.positional_offsets.clear();
  const headlens::card_parameters b = headlens::policy_parameters(headlens::heuristic_policy(h));
  CHECK(b.size() == 8);
  CHECK(b.at("positional_offsets") == "any");
  CHECK(b.at("positional_min_share") == "0.9");
  CHECK(b.at("min_cross_sentence_distance") == "4");
}

// ---- Markdown and HTML ---------------------------------------------------------------------------------------------

TEST_CASE("the Markdown card says what was measured and no more", "[head_card][markdown]") {
  std::ostringstream minimal, full;
  headlens::write_head_card_markdown(minimal, minimal_card());
  headlens::write_head_card_markdown(full, full_card());
  const std::string m = minimal.str(), f = full.str();
  CHECK(contains(m, "# Head card: tiny-gpt2\n"));
  CHECK(contains(m, "2 layers, 3 heads per layer, causal (decoder). 6 of 6 heads described."));
  CHECK(contains(m, "- Importance: not measured\n"));
  CHECK(contains(m, "- Sparsity: not measured\n"));
  CHECK(contains(m, "- Matches: not measured\n"));
  CHECK(contains(m, "- Pruning: not planned\n"));
  CHECK(contains(m, "syntactic not causally checked; coreference not causally checked"));
  CHECK_FALSE(contains(m, "importance, zero ablation"));
  CHECK_FALSE(contains(m, "| sparsity |"));
  CHECK(contains(m, "### Layer 0\n"));
  CHECK(contains(m, "### Layer 1\n"));
  // Head 0.0: label, confidence, scores, causal status, top evidence with its baseline.
  CHECK(contains(m, "| 0 | positional | 0.90 | -0.12 | - | - | +0.25 | not causally checked | argmax share at offset -1 "
                    "0.97 (baseline 0.90); entropy 1.50 |"));
  CHECK(contains(m, "| 2 | unassigned | 0.70 | - | - | - | - | no label to check | sink |"));
  CHECK(contains(m, "nsubj dep->head accuracy \\| <b>"));  // a `|` in a name does not break the table
  CHECK(contains(m, "`ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad`"));
  CHECK(contains(m, "- analysis: context = window, stride = 32, window = 64\n"));
  CHECK(contains(m, "- headlens 0.1.0, created 2026-12-08T01:02:03Z\n"));

  CHECK(contains(f, "| syntactic | 2 | 33.3% | supported (p = 0.010, 20 draws) |"));
  CHECK(contains(f, "| discourse | 1 | 16.7% | not testable: no discourse annotation in the corpus |"));
  CHECK(contains(f, "| coreference | 1 | 16.7% | not causally checked |"));
  CHECK(contains(f, "ranking NOT stable across halves of the corpus (agreement 0.420)"));
  CHECK(contains(f, "- Sparsity: top-k 8, task-loss change of the whole model +0.0025\n"));
  CHECK(contains(f, "- Pruning: plan share 0.3, 2 heads pruned, task-loss change +0.0040\n"));
  CHECK(contains(f, "key/value heads per layer: 1 3"));
  // Head 0.1 (i = 1): importance 0.01 [0.005, 0.02], mean 0.008 without interval, rank 5, pruned at step 2.
  CHECK(contains(f, "| 1 | syntactic | 0.60 | +0.30 | - | - | - | supported (p = 0.010, 20 draws) | +0.010 [+0.005, "
                    "+0.020] | +0.008 | 5 | dropped 0.874, kept 0.983, error 0.013 | none | pruned (step 2) |"));
  CHECK(contains(f, "use-lite 1.2 (0.812, mutual)"));
  CHECK(contains(f, "| 0 | coreference | 0.00 | - | - | - | - | not causally checked | +0.030 [+0.015, +0.060] | "
                    "+0.024 | 3 | dropped n/a, kept n/a, error n/a | none | kept |"));
  CHECK(contains(f, "| syntactic | 2 | zero | tokens whose syntactic head or dependents are visible | +0.0310 | "
                    "+0.0040 | 0.010 | 20 | supported |  |"));
}

TEST_CASE("the HTML section is a self-contained, escaped fragment", "[head_card][html]") {
  std::ostringstream minimal, full, bare;
  headlens::write_head_card_html(minimal, minimal_card());
  headlens::write_head_card_html(full, full_card());
  headlens::head_card_html_options options;
  options.include_style = false;
  options.id = "";
  headlens::write_head_card_html(bare, minimal_card(), options);
  const std::string m = minimal.str(), f = full.str(), b = bare.str();
  CHECK(m.rfind("<section class=\"hl-card\" id=\"head-card\">\n<style>", 0) == 0);
  CHECK(m.substr(m.size() - 11) == "</section>\n");
  CHECK(b.rfind("<section class=\"hl-card\">\n<h2>", 0) == 0);
  CHECK_FALSE(contains(b, "<style>"));
  // No script, no external resource; user text is escaped.
  CHECK_FALSE(contains(m, "<script"));
  CHECK_FALSE(contains(m, "http"));
  CHECK(contains(m, "tied &lt;script&gt;alert(1)&lt;/script&gt; \xC3\xA9"));
  CHECK(contains(m, "nsubj dep-&gt;head accuracy | &lt;b&gt;"));
  CHECK(contains(m, "<li>Importance: not measured</li>"));
  CHECK(contains(m, "<td class=\"hl-unchecked\">not causally checked</td>"));
  CHECK_FALSE(contains(m, "Causal checks</h3>"));
  CHECK_FALSE(contains(m, "importance, zero ablation"));
  CHECK(contains(m, "<span class=\"hl-label hl-positional\">positional</span>"));
  CHECK(contains(f, "<td class=\"hl-supported\">supported (p = 0.010, 20 draws)</td>"));
  CHECK(contains(f, "<h3>Causal checks</h3>"));
  CHECK(contains(f, "<th>importance, zero ablation</th>"));
  CHECK(contains(f, "<td>pruned (step 2)</td>"));
  // Every opened element of the kinds written is closed.
  for (const char* tag : {"section", "table", "tr", "td", "th", "ul", "li", "p", "h2", "h3", "div", "span", "code"}) {
    const std::regex open(std::string("<") + tag + "[ >]"), close(std::string("</") + tag + ">");
    const auto count = [&](const std::regex& r) {
      return std::distance(std::sregex_iterator(f.begin(), f.end(), r), std::sregex_iterator());
    };
    CAPTURE(tag);
    CHECK(count(open) == count(close));
  }
}

// ---- JSON ------------------------------------------------------------------------------------------------------------
#ifdef HEADLENS_TEST_CARD_JSON

namespace {

using json = nlohmann::ordered_json;

/// A validator for the JSON Schema keywords docs/head-card.schema.json uses (type, const, enum, required,
/// properties, additionalProperties, items, minItems, minimum, minLength, pattern, anyOf, $ref into $defs), written
/// from the draft 2020-12 text, independent of the card reader. Returns the first violation's path, or "".
class mini_schema {
 public:
  explicit mini_schema(json schema) : root_(std::move(schema)) {}
  std::string validate(const json& value) const { return check(root_, value, ""); }

 private:
  static bool has_type(const json& v, const std::string& type) {
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "string") return v.is_string();
    if (type == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    if (type == "number") return v.is_number();
    if (type == "boolean") return v.is_boolean();
    if (type == "null") return v.is_null();
    FAIL("schema uses type " << type);
    return false;
  }
  std::string check(const json& s, const json& v, const std::string& at) const {
    if (s.contains("$ref")) {
      const std::string ref = s.at("$ref").get<std::string>();
      REQUIRE(ref.rfind("#/$defs/", 0) == 0);
      const std::string r = check(root_.at("$defs").at(ref.substr(8)), v, at);
      if (!r.empty()) return r;
    }
    for (const auto& [key, value] : s.items()) {
      static const std::vector<std::string> known = {
          "$schema", "$id", "title", "description", "$ref", "$defs", "type", "const", "enum", "required", "properties",
          "additionalProperties", "items", "minItems", "minimum", "minLength", "pattern", "anyOf"};
      CAPTURE(key);
      CHECK(std::find(known.begin(), known.end(), key) != known.end());
    }
    if (s.contains("type")) {
      const json& t = s.at("type");
      bool ok = false;
      if (t.is_string()) ok = has_type(v, t.get<std::string>());
      for (const json& one : t.is_array() ? t : json::array()) ok = ok || has_type(v, one.get<std::string>());
      if (!ok) return at + " type";
    }
    if (s.contains("const") && v != s.at("const")) return at + " const";
    if (s.contains("enum") && std::find(s.at("enum").begin(), s.at("enum").end(), v) == s.at("enum").end()) {
      return at + " enum";
    }
    if (s.contains("anyOf")) {
      bool ok = false;
      for (const json& one : s.at("anyOf")) ok = ok || check(one, v, at).empty();
      if (!ok) return at + " anyOf";
    }
    if (v.is_number() && s.contains("minimum") && v.get<double>() < s.at("minimum").get<double>()) return at + " minimum";
    if (v.is_string() && s.contains("minLength") && v.get<std::string>().size() < s.at("minLength").get<std::size_t>()) {
      return at + " minLength";
    }
    if (v.is_string() && s.contains("pattern") &&
        !std::regex_search(v.get<std::string>(), std::regex(s.at("pattern").get<std::string>()))) {
      return at + " pattern";
    }
    if (v.is_object()) {
      for (const json& key : s.value("required", json::array())) {
        if (!v.contains(key.get<std::string>())) return at + "/" + key.get<std::string>() + " required";
      }
      for (const auto& [key, value] : v.items()) {
        if (s.contains("properties") && s.at("properties").contains(key)) {
          const std::string r = check(s.at("properties").at(key), value, at + "/" + key);
          if (!r.empty()) return r;
        } else if (s.contains("additionalProperties")) {
          const std::string r = check(s.at("additionalProperties"), value, at + "/" + key);
          if (!r.empty()) return r;
        }
      }
    }
    if (v.is_array()) {
      if (s.contains("minItems") && v.size() < s.at("minItems").get<std::size_t>()) return at + " minItems";
      if (s.contains("items")) {
        for (std::size_t i = 0; i < v.size(); ++i) {
          const std::string r = check(s.at("items"), v[i], at + "/" + std::to_string(i));
          if (!r.empty()) return r;
        }
      }
    }
    return "";
  }
  json root_;
};

const mini_schema& card_schema() {
  static const mini_schema schema(json::parse(slurp(source_path("docs/head-card.schema.json"))));
  return schema;
}

/// The card's JSON with one change, as text.
std::string mutated(const std::function<void(json&)>& change) {
  json j = headlens::head_card_to_json(full_card());
  change(j);
  return j.dump();
}

}  // namespace

TEST_CASE("a card round-trips through JSON exactly", "[head_card][json]") {
  for (const head_card& card : {minimal_card(), full_card()}) {
    const std::string text = headlens::head_card_json_text(card);
    const head_card back = headlens::parse_head_card(text, "card.json");
    CHECK(headlens::head_card_json_text(back) == text);
    CHECK(headlens::head_card_json_text(back, -1) == headlens::head_card_json_text(card, -1));
    REQUIRE(back.heads.size() == card.heads.size());
    for (std::size_t i = 0; i < card.heads.size(); ++i) {
      const auto &a = card.heads[i].verdict, &b = back.heads[i].verdict;
      CHECK(a.layer == b.layer);
      CHECK(a.head == b.head);
      CHECK(a.label == b.label);
      CHECK(a.confidence == b.confidence);  // exact, 1e-300 included
      CHECK(a.reason == b.reason);
      for (std::size_t c = 0; c < 4; ++c) CHECK((a.scores[c] == b.scores[c] || (std::isnan(a.scores[c]) && std::isnan(b.scores[c]))));
      REQUIRE(a.evidence.size() == b.evidence.size());
      for (std::size_t e = 0; e < a.evidence.size(); ++e) {
        CHECK(a.evidence[e].name == b.evidence[e].name);
        CHECK(a.evidence[e].value == b.evidence[e].value);
        CHECK(a.evidence[e].has_baseline() == b.evidence[e].has_baseline());
      }
      CHECK(bool(card.heads[i].importance) == bool(back.heads[i].importance));
      CHECK(bool(card.heads[i].sparsity) == bool(back.heads[i].sparsity));
      CHECK(bool(card.heads[i].pruning) == bool(back.heads[i].pruning));
      CHECK(card.heads[i].matches.size() == back.heads[i].matches.size());
    }
    CHECK(back.model.heads_per_layer == card.model.heads_per_layer);
    CHECK(back.model.kv_heads_per_layer == card.model.kv_heads_per_layer);
    CHECK(back.provenance.files.size() == card.provenance.files.size());
    CHECK(back.provenance.files[1].bytes == 987654321u);
    CHECK(back.provenance.analysis == card.provenance.analysis);
    CHECK(back.provenance.policy_parameters == card.provenance.policy_parameters);
    CHECK(back.provenance.command == card.provenance.command);
    CHECK(bool(back.importance) == bool(card.importance));
    CHECK(back.causal_checks.size() == card.causal_checks.size());
  }
  const head_card back = headlens::parse_head_card(headlens::head_card_json_text(full_card()));
  CHECK(back.heads[1].verdict.score(head_label::syntactic) == 0.1 + 0.2);
  CHECK(back.heads[1].importance->zero.low == 0.005);
  CHECK(std::isnan(back.heads[1].importance->mean.low));
  CHECK(std::isnan(back.heads[3].sparsity->dropped));
  CHECK(back.importance->ranking_stable == std::optional<bool>(false));
  CHECK(back.importance->ranking_agreement == 0.42);
  CHECK(back.causal_checks[1].verdict == headlens::causal_verdict::not_testable);
  CHECK(std::isnan(back.causal_checks[1].p_value));
  CHECK(back.heads[0].matches[0].similarity == 0.8125);
  CHECK(back.heads[0].matches[0].mutual);
  CHECK(back.heads[1].pruning->step == 2);
}

TEST_CASE("optional sections are absent from the JSON when not measured", "[head_card][json]") {
  const json j = headlens::head_card_to_json(minimal_card());
  for (const char* key : {"importance", "causal_checks", "sparsity", "matches", "pruning"}) {
    CAPTURE(key);
    CHECK_FALSE(j.contains(key));
    for (const json& h : j.at("heads")) CHECK_FALSE(h.contains(key));
  }
  CHECK_FALSE(j.at("model").contains("kv_heads_per_layer"));
  CHECK_FALSE(j.at("provenance").contains("command"));
  CHECK(j.at("summary").at("causal").at("syntactic") == "not causally checked");
  CHECK(j.at("summary").at("supported").empty());
  CHECK(j.at("summary").at("labels").at("syntactic") == 2);
  CHECK(j.at("heads").at(0).at("scores").at("coreference").is_null());
  CHECK(j.at("heads").at(0).at("evidence").at(1).at("baseline").is_null());
  CHECK(j.at("format") == "headlens.head-card");
  CHECK(j.at("version") == "1.0");
  // Keys in the documented order.
  std::vector<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"format", "version", "model", "provenance", "summary", "heads"});
}

TEST_CASE("the written card is the committed fixture, which the schema accepts", "[head_card][json][schema]") {
  // tests/data/head_card/card_full.json and card_minimal.json are this library's output; when the format changes,
  // rewrite them with HEADLENS_UPDATE_HEAD_CARD_FIXTURES=1 and check them with tools/check_head_card_schema.py
  // (python3-jsonschema, Draft202012Validator), which also checks that the invalid_*.json fixtures are rejected.
  const std::vector<std::pair<std::string, head_card>> fixtures = {{"card_full.json", full_card()},
                                                                   {"card_minimal.json", minimal_card()}};
  for (const auto& [name, card] : fixtures) {
    CAPTURE(name);
    const std::string text = headlens::head_card_json_text(card);
    if (std::getenv("HEADLENS_UPDATE_HEAD_CARD_FIXTURES")) {
      std::ofstream(data_path(name), std::ios::binary) << text;
    }
    CHECK(text == slurp(data_path(name)));
    CHECK(card_schema().validate(json::parse(text)) == "");
    CHECK(headlens::head_card_json_text(headlens::read_head_card(data_path(name))) == text);
  }
  // The same validator rejects what the schema forbids (so the check above could fail).
  CHECK(card_schema().validate(json::parse(mutated([](json& j) { j.at("model").erase("layers"); }))) ==
        "/model/layers required");
  CHECK(card_schema().validate(json::parse(mutated([](json& j) { j["heads"][0]["label"] = "semantic"; }))) ==
        "/heads/0/label enum");
  CHECK(card_schema().validate(json::parse(mutated([](json& j) { j["provenance"]["files"][0]["sha256"] = "x"; }))) ==
        "/provenance/files/0/sha256 pattern");
  CHECK(card_schema().validate(json::parse(mutated([](json& j) { j["version"] = "2.0"; }))) == "/version pattern");
  CHECK(card_schema().validate(json::parse(mutated([](json& j) { j["heads"][1]["importance"]["zero"]["low"] = "0"; }))) ==
        "/heads/1/importance/zero/low type");
  // Every invalid_*.json fixture is rejected by the reader as well.
  for (const char* name : {"invalid_missing_heads.json", "invalid_duplicate_head.json", "invalid_version.json"}) {
    CAPTURE(name);
    REQUIRE_THROWS_AS(headlens::read_head_card(data_path(name)), headlens::format_error);
  }
}

TEST_CASE("reading rejects a malformed card with its JSON path and value", "[head_card][json]") {
  using Catch::Contains;
  struct bad {
    std::string text;
    std::string message;
  };
  const std::vector<bad> cases = {
      {"{\"format\": \"headlens.head-card\", ", "card.json at byte"},
      {"[1, 2]", "card.json: / is an array of 2 items, expected an object"},
      {"{\"format\": 1e400}", "card.json: not valid JSON: [json.exception.out_of_range.406] number overflow"},  // fuzz
      {mutated([](json& j) { j["format"] = "headlens.head_report"; }),
       "/format is \"headlens.head_report\", expected \"headlens.head-card\""},
      {mutated([](json& j) { j["version"] = "2.0"; }), "/version is \"2.0\", expected major version 1"},
      {mutated([](json& j) { j["version"] = 1; }), "/version is 1, expected a string"},
      {mutated([](json& j) { j["version"] = "1"; }), "/version is \"1\", expected \"major.minor\""},
      {mutated([](json& j) { j.erase("heads"); }), "/heads is missing, expected a required field"},
      {mutated([](json& j) { j["model"].erase("layers"); }), "/model/layers is missing"},
      {mutated([](json& j) { j["model"]["layers"] = 3; }),
       "/model/heads_per_layer is an array of 2 items, expected one entry per layer (/model/layers = 3)"},
      {mutated([](json& j) { j["model"]["layers"] = 0; }), "/model/layers is 0, expected an integer in [1, "},
      {mutated([](json& j) { j["model"]["heads_per_layer"][1] = -1; }), "/model/heads_per_layer/1 is -1"},
      {mutated([](json& j) { j["model"]["causal"] = "yes"; }), "/model/causal is \"yes\", expected true or false"},
      {mutated([](json& j) { j["heads"][2]["layer"] = "0"; }), "/heads/2/layer is \"0\", expected an integer"},
      {mutated([](json& j) { j["heads"][2]["layer"] = 1.5; }), "/heads/2/layer is 1.5, expected an integer"},
      {mutated([](json& j) { j["heads"][2]["layer"] = 2; }), "/heads/2/layer is 2, expected a layer in [0, 2)"},
      {mutated([](json& j) { j["heads"][2]["head"] = 3; }), "/heads/2/head is 3, expected a head in [0, 3) (layer 0)"},
      {mutated([](json& j) { j["heads"][2]["head"] = -1; }), "/heads/2/head is -1, expected an integer in [0, "},
      {mutated([](json& j) { j["heads"][4] = j["heads"][3]; }), "/heads/4 is an object of 10 fields, expected each head "
                                                                "once (head 1.0 is given twice)"},
      {mutated([](json& j) { j["heads"][0]["label"] = "semantic"; }), "/heads/0/label is \"semantic\", expected"},
      {mutated([](json& j) { j["heads"][0]["scores"].erase("discourse"); }), "/heads/0/scores/discourse is missing"},
      {mutated([](json& j) { j["heads"][0]["scores"]["discourse"] = "high"; }),
       "/heads/0/scores/discourse is \"high\", expected a number or null"},
      {mutated([](json& j) { j["heads"][0]["evidence"][0]["name"] = 3; }), "/heads/0/evidence/0/name is 3, expected a string"},
      {mutated([](json& j) { j["heads"][0]["confidence"] = true; }), "/heads/0/confidence is true, expected a number or null"},
      {mutated([](json& j) { j.erase("importance"); }),
       "/heads/0/importance is an object of 3 fields, expected no per-head importance when the card has no /importance"},
      {mutated([](json& j) { j.erase("sparsity"); }), "/heads/0/sparsity is an object of 3 fields, expected no per-head"},
      {mutated([](json& j) { j.erase("pruning"); }), "/heads/0/pruning is an object of 2 fields, expected no per-head"},
      {mutated([](json& j) { j["heads"][0]["matches"][0]["model"] = "gpt2"; }),
       "/heads/0/matches/0/model is \"gpt2\", expected the name of a model in /matches"},
      {mutated([](json& j) { j["causal_checks"][1]["label"] = "syntactic"; }),
       "/causal_checks/1/label is \"syntactic\", expected one check per label"},
      {mutated([](json& j) { j["causal_checks"][0]["label"] = "unassigned"; }), "/causal_checks/0/label is \"unassigned\""},
      {mutated([](json& j) { j["causal_checks"][0]["verdict"] = "plausible"; }), "/causal_checks/0/verdict is \"plausible\""},
      {mutated([](json& j) { j["provenance"]["files"][1]["sha256"] = std::string(64, 'G'); }),
       "/provenance/files/1/sha256 is \"GGGG"},
      {mutated([](json& j) { j["provenance"]["files"][1]["bytes"] = -5; }), "/provenance/files/1/bytes is -5, expected an integer >= 0"},
      {mutated([](json& j) { j["provenance"]["analysis"]["a/b~c"] = 64; }),
       "/provenance/analysis/a~1b~0c is 64, expected a string"},
      {mutated([](json& j) { j["importance"]["ranking_stable"] = "no"; }), "/importance/ranking_stable is \"no\""},
  };
  for (const bad& b : cases) {
    CAPTURE(b.message);
    REQUIRE_THROWS_AS(headlens::parse_head_card(b.text, "card.json"), headlens::format_error);
    REQUIRE_THROWS_WITH(headlens::parse_head_card(b.text, "card.json"), Contains("card.json") && Contains(b.message));
  }
  // A long value is cut in a message.
  REQUIRE_THROWS_WITH(headlens::parse_head_card(mutated([](json& j) { j["heads"][0]["label"] = std::string(200, 'x'); }),
                                                "card.json"),
                      Contains("/heads/0/label is \"" + std::string(75, 'x') + "...\", expected"));
  try {
    headlens::parse_head_card("{\"format\": }", "bad.json");
    FAIL("no error");
  } catch (const headlens::format_error& e) {
    CHECK(e.file() == "bad.json");
    CHECK(e.byte_offset() == 12);
  }
  REQUIRE_THROWS_AS(headlens::read_head_card(data_path("no-such-card.json")), headlens::io_error);
}

TEST_CASE("the example of docs/head-cards.md is a card the library reads", "[head_card][json]") {
  const std::string doc = slurp(source_path("docs/head-cards.md"));
  const std::size_t begin = doc.find("```json\n");
  REQUIRE(begin != std::string::npos);
  const std::size_t end = doc.find("```", begin + 8);
  REQUIRE(end != std::string::npos);
  const head_card card = headlens::parse_head_card(doc.substr(begin + 8, end - begin - 8), "docs/head-cards.md");
  CHECK(card.model.name == "tiny-gpt2");
  REQUIRE(card.heads.size() == 1);
  CHECK(card.heads[0].verdict.score(head_label::syntactic) == 0.1 + 0.2);
  CHECK(headlens::causal_status(card, head_label::syntactic) == "supported");
  CHECK(headlens::causal_status(card, head_label::coreference) == "not causally checked");
}

TEST_CASE("a card may claim huge head counts without the reader allocating for them", "[head_card][json]") {
  json j = headlens::head_card_to_json(minimal_card());
  j["model"]["layers"] = 2000;
  j["model"]["heads_per_layer"] = std::vector<int>(2000, 1 << 24);
  const head_card card = headlens::parse_head_card(j.dump());
  CHECK(card.model.total_heads() == 2000LL << 24);
  std::ostringstream md;
  headlens::write_head_card_markdown(md, card);
  CHECK(contains(md.str(), "2000 layers, 16777216 heads per layer, causal (decoder). 6 of 33554432000 heads described."));
  j["model"]["heads_per_layer"][5] = (1 << 24) + 1;
  REQUIRE_THROWS_WITH(headlens::parse_head_card(j.dump()),
                      Catch::Contains("/model/heads_per_layer/5 is 16777217, expected an integer in [0, 16777216]"));
}

TEST_CASE("a reader ignores fields it does not know and accepts a later minor version", "[head_card][json]") {
  const std::string original = headlens::head_card_json_text(full_card());
  const std::string extended = mutated([](json& j) {
    j["version"] = "1.7";
    j["attribution"] = {{"method", "integrated gradients"}};
    j["model"]["rope"] = true;
    j["provenance"]["machine"] = "x86-64";
    j["provenance"]["files"][0]["mtime"] = 5;
    j["importance"]["bootstrap_draws"] = 1000;
    j["causal_checks"][0]["effect_size"] = 1.5;
    j["summary"]["extra"] = json::array();
    j["heads"][0]["kv_cache"] = {{"policy", "window"}};
    j["heads"][0]["importance"]["zero"]["sd"] = 0.5;
    j["heads"][0]["matches"][0]["rank"] = 1;
  });
  const head_card back = headlens::parse_head_card(extended);
  CHECK(headlens::head_card_json_text(back) == original);
  // The summary is derived: a wrong one is recomputed, not believed.
  const head_card recounted =
      headlens::parse_head_card(mutated([](json& j) { j["summary"]["labels"]["syntactic"] = 99; }));
  CHECK(headlens::head_card_json_text(recounted) == original);
}

#endif  // HEADLENS_TEST_CARD_JSON

}  // namespace test_head_card
