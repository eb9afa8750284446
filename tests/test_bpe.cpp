// GPT-2 byte-level BPE against tests/data/models/gpt2/tokenizer_cases.json, whose ids, pieces and offsets come from
// tools/make_model_fixtures.py: a Python reference that runs GPT-2's pattern through Python's `re` (the \p{L} and
// \p{N} classes spelt out from unicodedata) and GPT-2's merge loop. Plus the pre-tokeniser on hand-worked cases and
// every malformed-input error.

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headlens/text/bpe.hpp"

namespace test_bpe {

namespace {

const std::string data_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/models/gpt2/";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

const headlens::byte_level_bpe& gpt2_tokenizer() {
  static const headlens::byte_level_bpe tokenizer =
      headlens::byte_level_bpe::from_files(data_dir + "vocab.json", data_dir + "merges.txt");
  return tokenizer;
}

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& s : headlens::gpt2_pretokenize(text)) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

std::string temp_file(const std::string& name, const std::string& content) {
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/headlens_bpe_" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("bpe: ids, pieces and byte offsets equal the Python reference on every fixture text", "[bpe]") {
  const auto cases = read_json(data_dir + "tokenizer_cases.json");
  const auto& tokenizer = gpt2_tokenizer();
  REQUIRE(tokenizer.size() == 300);
  REQUIRE(tokenizer.merge_count() == 43);
  REQUIRE(cases.size() >= 10);
  std::size_t total_tokens = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    INFO("text: " << text);
    CHECK(pieces(text) == c["words"].get<strings>());
    const auto tokens = tokenizer.encode(text);
    const auto ids = c["ids"].get<std::vector<std::int32_t>>();
    const auto offsets = c["offsets"].get<std::vector<std::vector<std::size_t>>>();
    const auto want_pieces = c["pieces"].get<strings>();
    REQUIRE(tokens.size() == ids.size());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      INFO("token " << i);
      CHECK(tokens[i].id == ids[i]);
      CHECK(tokens[i].begin == offsets[i][0]);
      CHECK(tokens[i].end == offsets[i][1]);
      CHECK(tokenizer.token(tokens[i].id) == want_pieces[i]);
    }
    CHECK(tokenizer.encode_ids(text) == ids);
    CHECK(tokenizer.decode(ids) == text);
    total_tokens += tokens.size();
  }
  CHECK(total_tokens > 300);
}

TEST_CASE("bpe: merges apply by rank, every occurrence, left to right", "[bpe]") {
  const auto& t = gpt2_tokenizer();
  // "the" = t h e: "h e" (rank 0) then "t he" (rank 1); " there" = Ġ the r e: "Ġ the" (2), "r e" (4), "Ġthe re" (8).
  CHECK(t.encode_ids("the") == std::vector<std::int32_t>{*t.token_id("the")});
  CHECK(t.encode_ids(" there") == std::vector<std::int32_t>{*t.token_id("\xC4\xA0there")});
  // "hehe": both "h e" pairs merge in one step.
  CHECK(t.encode_ids("hehe") == std::vector<std::int32_t>{*t.token_id("he"), *t.token_id("he")});
  CHECK(t.token_id("<|endoftext|>") == 299);
  CHECK_FALSE(t.token_id("nope").has_value());
  // Special tokens in text are plain text.
  CHECK(t.encode_ids("<|endoftext|>").size() > 1);
  CHECK(t.decode({299}) == "<|endoftext|>");
}

TEST_CASE("bpe: the byte-to-unicode table is GPT-2's", "[bpe]") {
  const auto& table = headlens::gpt2_byte_to_unicode();
  CHECK(table[' '] == U'\u0120');
  CHECK(table['\n'] == U'\u010A');
  CHECK(table[0] == U'\u0100');
  CHECK(table['!'] == U'!');
  CHECK(table[0xAD] == U'\u0143');  // soft hyphen, the last of the 68 remapped bytes
  CHECK(table[0xFF] == U'\u00FF');
}

TEST_CASE("bpe: pre-tokeniser on hand-worked cases", "[bpe]") {
  CHECK(pieces("Hello world") == strings{"Hello", " world"});
  CHECK(pieces("I'm they'll we'VE") == strings{"I", "'m", " they", "'ll", " we", "'", "VE"});
  CHECK(pieces("a  b") == strings{"a", " ", " b"});
  CHECK(pieces("a   ") == strings{"a", "   "});
  CHECK(pieces("a\n\nb") == strings{"a", "\n", "\n", "b"});
  CHECK(pieces("a \n b") == strings{"a", " \n", " b"});
  CHECK(pieces("x2 42nd") == strings{"x", "2", " 42", "nd"});
  CHECK(pieces("?! ...") == strings{"?!", " ..."});
  CHECK(pieces(" 's") == strings{" '", "s"});
  CHECK(pieces("\xC3\xA9t\xC3\xA9 \xE2\x85\xA7") == strings{"\xC3\xA9t\xC3\xA9", " \xE2\x85\xA7"});  // été Ⅷ
  CHECK(pieces("").empty());
  CHECK(headlens::is_unicode_letter(U'\u4E2D'));
  CHECK(headlens::is_unicode_number(U'\u00BD'));
  CHECK_FALSE(headlens::is_unicode_letter(U'\u00BD'));
  CHECK(headlens::is_unicode_space(U'\u3000'));
  CHECK_FALSE(headlens::is_unicode_space(U'\u200B'));
}

TEST_CASE("bpe: malformed input and files are errors that say where", "[bpe]") {
  using Catch::Matchers::Contains;
  const auto& t = gpt2_tokenizer();
  REQUIRE_THROWS_WITH(t.encode("ab\xFF"), Contains("not valid UTF-8") && Contains("offset 2"));
  REQUIRE_THROWS_WITH(t.decode({5, 300}), Contains("ids[1] is 300") && Contains("not a token"));

  const std::string vocab = data_dir + "vocab.json";
  const std::string bad_merges = temp_file("merges.txt", "#version: 0.2\nh e\nt he there\n");
  REQUIRE_THROWS_WITH(headlens::byte_level_bpe::from_files(vocab, bad_merges),
                      Contains("merges.txt:3") && Contains("two tokens"));
  const std::string unknown_merge = temp_file("merges2.txt", "h e\nq z\n");
  REQUIRE_THROWS_WITH(headlens::byte_level_bpe::from_files(vocab, unknown_merge),
                      Contains("merge 1 ('q' 'z') makes 'qz'") && Contains("not in the vocabulary"));
  const std::string no_bytes = temp_file("vocab.json", "{\"a\": 0, \"b\": 1}");
  REQUIRE_THROWS_WITH(headlens::byte_level_bpe::from_files(no_bytes, data_dir + "merges.txt"),
                      Contains("no token for byte 0"));
  const std::string bad_id = temp_file("vocab2.json", "{\"a\": 0, \"b\": \"1\"}");
  REQUIRE_THROWS_AS(headlens::byte_level_bpe::from_files(bad_id, bad_merges), headlens::format_error);
  REQUIRE_THROWS_WITH(headlens::byte_level_bpe::from_files(bad_id, bad_merges), Contains("token 'b' has no valid id"));
  REQUIRE_THROWS_AS(headlens::byte_level_bpe::from_files(data_dir + "missing.json", bad_merges), headlens::io_error);
  REQUIRE_THROWS_WITH(headlens::byte_level_bpe({{"a", 0}, {"b", 0}}, {}), Contains("id 0 is given to both"));
}

}  // namespace test_bpe
