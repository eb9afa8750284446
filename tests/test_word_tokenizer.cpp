// The word-level tokenizer over tests/data/models/words/vocab.json, its splitting rule on hand-worked text, and
// pre-tokenized input (ids as text, words as a list).

#include <catch2/catch.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include "headlens/text/word_tokenizer.hpp"

namespace test_word_tokenizer {

namespace {

using Catch::Matchers::Contains;
using ids = std::vector<std::int32_t>;
const std::string vocab_path = std::string(HEADLENS_TEST_DATA_DIR) + "/models/words/vocab.json";

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& s : headlens::split_words(text)) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

}  // namespace

TEST_CASE("word tokenizer: the word splitter's words (runs of letters, numbers and marks; punctuation alone)",
          "[words]") {
  using strings = std::vector<std::string>;
  CHECK(words("Don't stop, 2 caf\xC3\xA9s!") == strings{"Don't", "stop", ",", "2", "caf\xC3\xA9s", "!"});
  CHECK(words("  a\tb\n\nc  ") == strings{"a", "b", "c"});
  CHECK(words("cafe\xCC\x81 ...") == strings{"cafe\xCC\x81", ".", ".", "."});  // e + combining acute stays a word
  CHECK(words("\xE4\xB8\xAD\xE6\x96\x87\xE3\x80\x80x") == strings{"\xE4\xB8\xAD\xE6\x96\x87", "x"});  // U+3000 splits
  CHECK(words("").empty());
  const auto spans = headlens::split_words("ab, c");
  REQUIRE(spans.size() == 3);
  CHECK(spans[1].begin == 2);
  CHECK(spans[2].begin == 4);
  CHECK(spans[2].end == 5);
}

TEST_CASE("word tokenizer: ids and offsets from vocab.json, unknown words and lower case", "[words]") {
  const auto tokenizer = headlens::word_tokenizer::from_vocab_json(vocab_path);
  CHECK(tokenizer.size() == 20);
  CHECK(tokenizer.unknown_id() == 0);
  const std::string text = "the cat sat on the mat.";
  const auto tokens = tokenizer.encode(text);
  REQUIRE(tokens.size() == 7);
  CHECK(tokenizer.encode_ids(text) == ids{3, 4, 5, 6, 3, 7, 8});
  CHECK(tokens[5].begin == 19);
  CHECK(tokens[5].end == 22);
  CHECK(tokenizer.encode_ids("The dog") == ids{0, 0});
  CHECK(tokenizer.encode_ids("na\xC3\xAFve caf\xC3\xA9s, 2024!") == ids{17, 15, 9, 19, 16});

  headlens::word_tokenizer_options lower;
  lower.lowercase = true;
  // "don't" is one word (the vocabulary has only "don", "'", "t"): unknown.
  CHECK(headlens::word_tokenizer::from_vocab_json(vocab_path, lower).encode_ids("The CAT Don't") == ids{3, 4, 0});
  CHECK(tokenizer.encode_ids("don ' t") == ids{11, 10, 12});

  headlens::word_tokenizer_options strict;
  strict.unknown_token = "<unk>";
  const auto no_unknown = headlens::word_tokenizer::from_vocab_json(vocab_path, strict);
  CHECK_FALSE(no_unknown.unknown_id().has_value());
  REQUIRE_THROWS_WITH(no_unknown.encode("the dog"),
                      "headlens: word 'dog' at byte 4 is not in the vocabulary, and it has no '<unk>' entry for "
                      "unknown words");
  REQUIRE_THROWS_WITH(headlens::word_tokenizer({{"a", 1}, {"a", 2}}), Contains("'a' appears twice"));
  REQUIRE_THROWS_AS(headlens::word_tokenizer::from_vocab_json(vocab_path + ".missing"), headlens::io_error);
}

TEST_CASE("word tokenizer: pre-tokenized words and ids", "[words]") {
  const auto tokenizer = headlens::word_tokenizer::from_vocab_json(vocab_path);
  CHECK(tokenizer.encode_words({"[CLS]", "the", "cat", "dog", "[SEP]"}) == ids{1, 3, 4, 0, 2});
  CHECK(headlens::parse_token_ids("15 7, 299\n0", 300) == ids{15, 7, 299, 0});
  REQUIRE_THROWS_WITH(headlens::parse_token_ids("1 300", 300),
                      "headlens: token id 1 is 300, expected 0 <= id < vocab_size = 300");
  REQUIRE_THROWS_WITH(headlens::parse_token_ids("1 -2", 300),
                      "headlens: token id 1 is '-2', expected a decimal integer");
  REQUIRE_THROWS_WITH(headlens::parse_token_ids(" , ", 300), Contains("no token ids"));
  REQUIRE_THROWS_WITH(headlens::parse_token_ids("99999999999", 300), Contains("expected a decimal integer"));
}

// Every tokenizer returns the one token struct, so any tokenizer's output aligns and feeds any model.
static_assert(std::is_same<headlens::word_token, headlens::text_token>::value, "one token struct");
static_assert(std::is_same<headlens::bpe_token, headlens::text_token>::value, "one token struct");

}  // namespace test_word_tokenizer
