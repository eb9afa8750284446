// The one word splitter (headlens/text/word_splitter.hpp) and the document it gives plain text
// (headlens/analysis/text_document.hpp). Expected words, spans and sentences are worked out by hand.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "headlens/analysis/alignment.hpp"
#include "headlens/analysis/features.hpp"
#include "headlens/analysis/text_document.hpp"
#include "headlens/text/word_splitter.hpp"

namespace test_word_splitter {

namespace {

using strings = std::vector<std::string>;

strings words(std::string_view text) {
  strings out;
  for (const auto& s : headlens::split_words(text)) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

}  // namespace

TEST_CASE("word splitter: contractions and hyphens stay words, Unicode punctuation stands alone", "[words]") {
  // U+2014 em dash, U+201C / U+201D quotes, U+2019 apostrophe, U+2010 hyphen, U+2026 ellipsis.
  CHECK(words("Don't stop, well-known caf\xC3\xA9s\xE2\x80\x94 2 \xE2\x80\x9Cso\xE2\x80\x9D!") ==
        strings{"Don't", "stop", ",", "well-known", "caf\xC3\xA9s", "\xE2\x80\x94", "2", "\xE2\x80\x9C", "so",
                "\xE2\x80\x9D", "!"});
  CHECK(words("it\xE2\x80\x99s a co\xE2\x80\x90op") == strings{"it\xE2\x80\x99s", "a", "co\xE2\x80\x90op"});
  // A joiner stays inside only between two word characters.
  CHECK(words("rock 'n' roll") == strings{"rock", "'", "n", "'", "roll"});
  CHECK(words("dogs' bowls -5 a--b x-") == strings{"dogs", "'", "bowls", "-", "5", "a", "-", "-", "b", "x", "-"});
  CHECK(words("$3.50 ...") == strings{"$", "3", ".", "50", ".", ".", "."});
  CHECK(words("cafe\xCC\x81!") == strings{"cafe\xCC\x81", "!"});  // e + combining acute stays in the word
  CHECK(words("\xE4\xB8\xAD\xE6\x96\x87\xE3\x80\x80x") ==
        strings{"\xE4\xB8\xAD\xE6\x96\x87", "x"});  // U+3000 is a space
  CHECK(words("").empty());
  CHECK(words(" \t\n\r\n ").empty());
  REQUIRE_THROWS_AS(headlens::split_words("a\xFF"), headlens::argument_error);
}

TEST_CASE("word splitter: byte spans point into the text", "[words]") {
  const auto spans = headlens::split_words(
      " a b\xE2\x80\x99"
      "c,");
  REQUIRE(spans.size() == 3);
  CHECK(spans[0] == headlens::byte_span{1, 2});
  CHECK(spans[1] == headlens::byte_span{3, 8});  // b (3), U+2019 (4..6), c (7)
  CHECK(spans[2] == headlens::byte_span{8, 9});
}

TEST_CASE("word splitter: sentences end after final punctuation and the closing quotes after it", "[words]") {
  // 0 He 1 left 2 . | 3 U+201C 4 Go 5 ! 6 U+201D | 7 she 8 said 9 U+2026 | 10 Fine 11 ? 12 !
  const std::string text = "He left. \xE2\x80\x9CGo!\xE2\x80\x9D she said\xE2\x80\xA6 Fine?!";
  const auto spans = headlens::split_words(text);
  REQUIRE(spans.size() == 13);
  CHECK(headlens::sentence_starts(text, spans) == std::vector<std::size_t>{0, 3, 7, 10});
  CHECK(headlens::sentence_starts("", {}).empty());
  const std::string no_final = "no final punctuation here";
  CHECK(headlens::sentence_starts(no_final, headlens::split_words(no_final)) == std::vector<std::size_t>{0});
}

TEST_CASE("document_from_text: words, spaces, sentences and one paragraph", "[words]") {
  const std::string text = "Hi there. Who knows?\" Fine.";
  const headlens::document doc = headlens::document_from_text(text, "note.txt");
  CHECK(doc.id == "note.txt");
  REQUIRE(doc.words.size() == 9);
  const strings forms = {"Hi", "there", ".", "Who", "knows", "?", "\"", "Fine", "."};
  const std::vector<bool> space_after = {true, false, true, true, false, false, true, false, false};
  const std::vector<headlens::doc_index> sentence_of = {0, 0, 0, 1, 1, 1, 1, 2, 2};
  for (std::size_t i = 0; i < 9; ++i) {
    INFO("word " << i);
    CHECK(doc.words[i].form == forms[i]);
    CHECK(doc.words[i].space_after == space_after[i]);
    CHECK(doc.words[i].sentence == sentence_of[i]);
    CHECK(doc.words[i].head == headlens::word::no_head);
    CHECK(doc.words[i].upos == "_");
  }
  REQUIRE(doc.sentences.size() == 3);
  CHECK(doc.sentences[1].begin == 3);
  CHECK(doc.sentences[1].end == 7);
  CHECK(doc.sentences[0].text == "Hi there.");
  CHECK(doc.sentences[1].text == "Who knows?\"");
  CHECK(doc.sentences[2].text == "Fine.");
  REQUIRE(doc.paragraphs.size() == 1);
  CHECK(doc.paragraphs[0].end == 3);
  CHECK(doc.mentions.empty());
  CHECK(doc.discourse_units.empty());
  // The surface text the tokenizers see is the text itself (single spaces, no trailing space).
  CHECK(headlens::document_surface_text(doc).text == text);
  // The accumulators read the same sentences as from their own rule over a document without sentences.
  const headlens::prepared_document prepared(doc);
  CHECK_FALSE(prepared.sentences_from_punctuation());
  headlens::document bare = doc;
  bare.sentences.clear();
  bare.paragraphs.clear();
  const headlens::prepared_document from_rule(bare);
  CHECK(from_rule.sentences_from_punctuation());
  for (headlens::Index k = 0; k < 9; ++k) CHECK(prepared.sentence_of(k) == from_rule.sentence_of(k));
}

TEST_CASE("document_from_text: empty text, whitespace only, bad UTF-8", "[words]") {
  const headlens::document empty = headlens::document_from_text("", "empty");
  CHECK(empty.id == "empty");
  CHECK(empty.words.empty());
  CHECK(empty.sentences.empty());
  CHECK(empty.paragraphs.empty());
  CHECK(headlens::document_from_text(" \n\t", "blank").words.empty());
  const headlens::document one = headlens::document_from_text("word ", "one");
  REQUIRE(one.words.size() == 1);
  CHECK(one.words[0].space_after);  // trailing whitespace follows it
  REQUIRE_THROWS_AS(headlens::document_from_text("caf\xC3", "bad"), headlens::argument_error);
}

}  // namespace test_word_splitter
