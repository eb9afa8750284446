// The SentencePiece unigram tokenizer of USE-lite against the ids the TF.js package produced
// (tests/data/use_lite/fixtures.json, written by tools/use_lite_fixtures.mjs), plus NFKC and the package's quirks.

#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headlens/text/sentencepiece.hpp"
#include "headlens/text/unicode.hpp"

namespace test_sentencepiece {

namespace {

const std::string data_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/use_lite/";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

const headlens::sentencepiece_unigram& use_lite_tokenizer() {
  static const headlens::sentencepiece_unigram tokenizer =
      headlens::sentencepiece_unigram::from_vocab_json(data_dir + "vocab.json");
  return tokenizer;
}

std::string slice(const std::string& text, const headlens::sentencepiece_token& t) {
  return text.substr(t.begin, t.end - t.begin);
}

}  // namespace

TEST_CASE("sentencepiece: ids and pieces equal the TF.js package's on every fixture sentence", "[sentencepiece]") {
  const auto fixtures = read_json(data_dir + "fixtures.json");
  const auto& tokenizer = use_lite_tokenizer();
  REQUIRE(tokenizer.size() == 8000);
  REQUIRE(fixtures["sentences"].size() >= 20);
  for (const auto& sentence : fixtures["sentences"]) {
    const std::string text = sentence["text"];
    INFO("text: " << text);
    const std::vector<std::int32_t> expected = sentence["ids"].get<std::vector<std::int32_t>>();
    const std::vector<std::int32_t> ids = tokenizer.encode_ids(text);
    CHECK(ids == expected);
    const std::vector<std::string> pieces = sentence["pieces"].get<std::vector<std::string>>();
    REQUIRE(pieces.size() == expected.size());
    for (std::size_t i = 0; i < expected.size() && i < ids.size(); ++i) CHECK(tokenizer.piece(ids[i]) == pieces[i]);
  }
}

TEST_CASE("sentencepiece: token spans point into the original text", "[sentencepiece]") {
  const auto& tokenizer = use_lite_tokenizer();

  SECTION("markers cover no bytes") {
    const std::string text = "Hello world.";  // ▁H ello ▁world .
    const auto tokens = tokenizer.encode(text);
    REQUIRE(tokens.size() == 4);
    CHECK(slice(text, tokens[0]) == "H");
    CHECK(slice(text, tokens[1]) == "ello");
    CHECK(slice(text, tokens[2]) == "world");
    CHECK(tokens[2].begin == 6);
    CHECK(slice(text, tokens[3]) == ".");
  }
  SECTION("repeated spaces give empty marker tokens where the spaces are") {
    const std::string text = "a  b";  // "▁a▁▁b" -> ▁a ▁ ▁b
    const auto tokens = tokenizer.encode(text);
    REQUIRE(tokens.size() == 3);
    CHECK(tokenizer.piece(tokens[1].id) == "\xE2\x96\x81");
    CHECK(tokens[1].begin == 2);
    CHECK(tokens[1].end == 2);
    CHECK(slice(text, tokens[2]) == "b");
  }
  SECTION("a character composed by NFKC covers all its source bytes") {
    const std::string text = "cafe\xCC\x81";  // "cafe" + U+0301 -> "café"
    const auto tokens = tokenizer.encode(text);
    CHECK(tokens.back().end == text.size());
    CHECK(tokens.front().begin == 0);
    std::string joined;
    for (const auto& t : tokens) joined += tokenizer.piece(t.id);
    CHECK(joined ==
          "\xE2\x96\x81"
          "caf\xC3\xA9");
  }
  SECTION("a merged run of unknowns covers the whole run") {
    const std::string text = "x \xE4\xBD\xA0\xE5\xA5\xBD y";  // "x 你好 y"
    const auto tokens = tokenizer.encode(text);
    bool found = false;
    for (const auto& t : tokens) {
      if (t.id == 0) {
        CHECK(slice(text, t) == "\xE4\xBD\xA0\xE5\xA5\xBD");
        found = true;
      }
    }
    CHECK(found);
  }
}

TEST_CASE("sentencepiece: the package's quirks on hand-made vocabularies", "[sentencepiece]") {
  // Expected ids were produced by the package itself (its Tokenizer over the same vocabularies, 6 reserved ids).
  const auto with_reserved = [](std::vector<headlens::sentencepiece_piece> pieces) {
    std::vector<headlens::sentencepiece_piece> all = {{"\xEF\xBF\xBD", 0}, {"r1", 0}, {"r2", 0},
                                                      {"r3", 0},           {"r4", 0}, {"r5", 0}};
    all.insert(all.end(), pieces.begin(), pieces.end());
    return headlens::sentencepiece_unigram(all);
  };
  const std::string marker = "\xE2\x96\x81";

  const auto t1 = with_reserved({{marker, -1}, {"a", -2}, {"b", -2}, {"ab", -5}, {marker + "a", -1}});
  // "▁ab": ▁a(-1) + b(-2) = -3 beats ▁(-1) + ab(-5) = -6 and ▁ + a + b = -5.
  CHECK(t1.encode_ids("ab") == std::vector<std::int32_t>{10, 8});
  // Unknown characters become id 0 and a run of them merges into one token.
  CHECK(t1.encode_ids("a??b") == std::vector<std::int32_t>{10, 0, 8});
  // Reserved pieces are never matched.
  CHECK(t1.encode_ids("r1") == std::vector<std::int32_t>{6, 0});
  // Empty text: no tokens (the package's model then refuses to run).
  CHECK(t1.encode("").empty());

  // A tie goes to the later candidate (the larger start): ▁ + x (-1 - 2) beats ▁x (-3).
  const auto t2 = with_reserved({{marker, -1}, {"x", -2}, {marker + "x", -3}});
  CHECK(t2.encode_ids("x") == std::vector<std::int32_t>{6, 7});

  // 0 means "unset": an unknown edge (score 0) from an unreached position beats every real piece, and the
  // backtrack then emits unknowns.
  const auto t3 = with_reserved({{marker + "z", -1}, {marker + "z", -9}});
  CHECK(t3.encode_ids("z") == std::vector<std::int32_t>{0});
  // A later duplicate piece wins, as in the package's trie.
  const auto t4 = with_reserved({{marker + "z", -1}, {marker + "z", -9}, {marker, -1}, {"z", -20}});
  CHECK(t4.encode_ids("z") == std::vector<std::int32_t>{7});
}

TEST_CASE("sentencepiece: bad input and bad vocabularies are reported", "[sentencepiece]") {
  const auto& tokenizer = use_lite_tokenizer();
  REQUIRE_THROWS_AS(tokenizer.encode("ok \xC3"), headlens::argument_error);
  REQUIRE_THROWS_WITH(tokenizer.encode("ok \xC3"), Catch::Contains("truncated sequence at offset 3"));
  REQUIRE_THROWS_WITH(tokenizer.encode("\xFF"), Catch::Contains("at offset 0"));

  REQUIRE_THROWS_AS(headlens::sentencepiece_unigram::parse_vocab_json("[[\"a\", 1], [\"b\" 2]]", "v.json"),
                    headlens::format_error);
  REQUIRE_THROWS_WITH(headlens::sentencepiece_unigram::parse_vocab_json("[[\"a\", 1], [\"b\" 2]]", "v.json"),
                      Catch::Contains("v.json at byte 16") && Catch::Contains("expected ','"));
  REQUIRE_THROWS_WITH(headlens::sentencepiece_unigram::parse_vocab_json("[[\"a\", nul]]", "v.json"),
                      Catch::Contains("expected a number or null"));
  const auto parsed = headlens::sentencepiece_unigram::parse_vocab_json("[[\"a\\u00e9\", null], [\"b\", -1.5e0]]");
  REQUIRE(parsed.size() == 2);
  CHECK(parsed[0].text == "a\xC3\xA9");
  CHECK(parsed[0].score == 0.0);
  CHECK(parsed[1].score == -1.5);

  REQUIRE_THROWS_AS(headlens::sentencepiece_unigram::from_vocab_json(data_dir + "no-such-vocab.json"),
                    headlens::io_error);
  std::vector<headlens::sentencepiece_piece> few = {{"\xEF\xBF\xBD", 0}};
  REQUIRE_THROWS_WITH(headlens::sentencepiece_unigram(few, 1), Catch::Contains("reserved_count is 1"));
  // An empty unknown piece would make the package's backtrack loop forever (found by fuzz_sentencepiece).
  std::vector<headlens::sentencepiece_piece> empty_unknown = {{"", 0},
                                                              {"\xE2\x96\x81"
                                                               "a",
                                                               -1}};
  REQUIRE_THROWS_WITH(headlens::sentencepiece_unigram(empty_unknown, 1),
                      Catch::Contains("piece 0 (the unknown piece) is empty"));
  std::vector<headlens::sentencepiece_piece> empty_piece = {{"\xEF\xBF\xBD", 0}, {"", -1}};
  REQUIRE_THROWS_WITH(headlens::sentencepiece_unigram(empty_piece, 1), Catch::Contains("piece 1 is empty"));
  REQUIRE_THROWS_AS(use_lite_tokenizer().piece(8000), headlens::argument_error);
}

TEST_CASE("nfkc: compatibility mappings, ordering and composition", "[unicode]") {
  using headlens::nfkc;
  CHECK(nfkc("\xEF\xAC\x81ne") == "fine");          // U+FB01 ligature
  CHECK(nfkc("\xEF\xBC\xA1\xEF\xBC\xA2") == "AB");  // full-width
  CHECK(nfkc("x\xC2\xB2") == "x2");                 // superscript two
  CHECK(nfkc("\xC2\xBD") ==
        "1\xE2\x81\x84"
        "2");                            // ½ -> 1⁄2
  CHECK(nfkc("\xE2\x80\xA6") == "...");  // ellipsis
  CHECK(nfkc("a\xC2\xA0"
             "b") == "a b");                                  // no-break space
  CHECK(nfkc("e\xCC\x81") == "\xC3\xA9");                     // e + acute -> é
  CHECK(nfkc("\xE2\x84\xAB") == "\xC3\x85");                  // angstrom sign -> Å
  CHECK(nfkc("a\xCC\xA3\xCC\x82") == "\xE1\xBA\xAD");         // a + dot below + circumflex -> ậ
  CHECK(nfkc("a\xCC\x82\xCC\xA3") == "\xE1\xBA\xAD");         // same, other order
  CHECK(nfkc("\xEF\xBD\xB6\xEF\xBE\x9E") == "\xE3\x82\xAC");  // half-width ｶﾞ -> ガ
  CHECK(nfkc("\xE1\x84\x80\xE1\x85\xA1") == "\xEA\xB0\x80");  // jamo -> 가
  CHECK(nfkc("\xEA\xB0\x81") == "\xEA\xB0\x81");              // 각 stays
  CHECK(nfkc("\xE3\x8C\x80") == "\xE3\x82\xA2\xE3\x83\x91\xE3\x83\xBC\xE3\x83\x88");  // ㌀ -> アパート
  CHECK(nfkc("plain ASCII stays.") == "plain ASCII stays.");
  CHECK(nfkc("\xCC\x81"
             "a") ==
        "\xCC\x81"
        "a");  // a leading mark composes with nothing

  const auto chars = headlens::nfkc(headlens::decode_utf8("xe\xCC\x81\xEF\xAC\x81"));
  REQUIRE(chars.size() == 4);  // x é f i
  CHECK(chars[1].code_point == 0xE9);
  CHECK(chars[1].begin == 1);
  CHECK(chars[1].end == 4);
  CHECK(chars[2].begin == 4);
  CHECK(chars[3].begin == 4);
  CHECK(chars[3].end == 7);
}

}  // namespace test_sentencepiece
