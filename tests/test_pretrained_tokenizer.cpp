// load_tokenizer: which file it reads from a directory or a path, the unknown-word spellings of word vocabularies,
// and the errors that name what was looked for. The encoders themselves are tested against their references in
// their own files (test_bpe.cpp, test_word_tokenizer.cpp, ...); here GPT-2's ids come from the independent Python
// reference of tests/data/models/gpt2/tokenizer_cases.json.

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headlens/text/pretrained_tokenizer.hpp"

namespace test_pretrained_tokenizer {

namespace {

const std::string models = std::string(HEADLENS_TEST_DATA_DIR) + "/models/";

std::vector<std::int32_t> ids(const std::vector<headlens::text_token>& tokens) {
  std::vector<std::int32_t> out;
  for (const auto& t : tokens) out.push_back(t.id);
  return out;
}

/// A fresh directory under the test's private TMPDIR.
std::filesystem::path scratch(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("pretrained_tokenizer_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace

TEST_CASE("load_tokenizer reads GPT-2's vocab.json + merges.txt from the directory or from vocab.json") {
  for (const std::string& path : {models + "gpt2", models + "gpt2/vocab.json"}) {
    const headlens::pretrained_tokenizer tok = headlens::load_tokenizer(path);
    CHECK(tok.kind() == headlens::tokenizer_kind::byte_level_bpe);
    CHECK(tok.description() == "byte-level BPE");
    const auto tokens = tok.encode("The quick brown fox jumps over the lazy dog.");
    REQUIRE(tokens.size() == 27);
    CHECK(tokens[10].id == 296);  // "Ġfox" over " fox"
    CHECK(tokens[10].begin == 15);
    CHECK(tokens[10].end == 19);
    CHECK(tok.token(296) == "\xC4\xA0" "fox");
    CHECK(tok.token_id("\xC4\xA0" "fox") == std::optional<std::int32_t>(296));
    CHECK_THROWS_WITH(tok.token(tok.vocab_size()), Catch::Contains("out of range, expected 0 <= id < vocab_size"));
  }
}

TEST_CASE("load_tokenizer reads a word vocabulary; its unknown word may be spelt [UNK] or <unk>") {
  const headlens::pretrained_tokenizer words = headlens::load_tokenizer(models + "words/vocab.json");
  CHECK(words.kind() == headlens::tokenizer_kind::word_vocabulary);
  CHECK(ids(words.encode("the cat zzz")) == std::vector<std::int32_t>{3, 4, 0});  // [UNK] is 0
  CHECK(words.token(4) == "cat");

  const auto dir = scratch("unk");
  write(dir / "vocab.json", R"({"the": 0, "<unk>": 1, "cat": 2, "<UNK>": 3})");
  const headlens::pretrained_tokenizer unk = headlens::load_tokenizer(dir.string());
  CHECK(ids(unk.encode("the dog cat")) == std::vector<std::int32_t>{0, 1, 2});  // <unk> comes before <UNK>

  write(dir / "vocab.json", R"({"the": 0, "cat": 2})");  // no unknown word: an unknown word is an error
  const headlens::pretrained_tokenizer strict = headlens::load_tokenizer(dir.string());
  CHECK_THROWS_WITH(strict.encode("the dog"), Catch::Contains("dog"));
  CHECK(strict.token(1) == "#1");  // an id no word has
}

TEST_CASE("load_tokenizer reads tokenizer.model; BOS first unless tokenizer_config.json says add_bos_token false") {
  // Ids from SentencePiece 0.1.97 itself (tests/data/sentencepiece/, tools/make_sentencepiece_fixtures.py).
  const std::string dir = std::string(HEADLENS_TEST_DATA_DIR) + "/sentencepiece/";
  std::ifstream strings_in(dir + "strings.json"), reference_in(dir + "unigram_nfkc.json");
  const nlohmann::json strings = nlohmann::json::parse(strings_in), reference = nlohmann::json::parse(reference_in);
  const std::string text = strings.at(0).get<std::string>();
  std::vector<std::int32_t> plain;  // cases[0] is id, begin, end for each token
  for (std::size_t i = 0; i < reference.at("cases").at(0).size(); i += 3) {
    plain.push_back(reference.at("cases").at(0).at(i).get<std::int32_t>());
  }

  const headlens::pretrained_tokenizer tok = headlens::load_tokenizer(dir + "unigram_nfkc.model");
  CHECK(tok.kind() == headlens::tokenizer_kind::sentencepiece_model);
  CHECK(tok.description() == "SentencePiece unigram");
  CHECK(tok.adds_special_tokens());
  CHECK(ids(tok.encode(text)) == reference.at("bos_cases").at(0).get<std::vector<std::int32_t>>());
  CHECK(ids(tok.encode(text, false)) == plain);
  CHECK(tok.vocab_size() == 400);
  CHECK(tok.token(1) == "<s>");

  const auto model_dir = scratch("sentencepiece");
  std::filesystem::copy_file(dir + "unigram_nfkc.model", model_dir / "tokenizer.model");
  write(model_dir / "tokenizer_config.json", R"({"add_bos_token": false, "model_max_length": 512})");
  const headlens::pretrained_tokenizer no_bos = headlens::load_tokenizer(model_dir.string());
  CHECK_FALSE(no_bos.adds_special_tokens());
  CHECK(ids(no_bos.encode(text)) == plain);
}

#if defined(HEADLENS_WITH_TOKENIZERS)
TEST_CASE("load_tokenizer reads tokenizer.json, by name or by content; its post-processor decides the special tokens") {
  // Ids and byte spans from the Rust tokenizers library (tests/data/tokenizers/, tools/tokenizer_reference.mjs).
  const std::string dir = std::string(HEADLENS_TEST_DATA_DIR) + "/tokenizers/";
  std::ifstream corpus_in(dir + "corpus.json"), reference_in(dir + "synthetic_bert_wordpiece.reference.json");
  const nlohmann::json corpus = nlohmann::json::parse(corpus_in), reference = nlohmann::json::parse(reference_in);
  const auto expected = [&](const char* mode) {  // the first string's encoding: id, begin, end per token
    const nlohmann::json& e = reference.at(mode).at("encodings").at(0);
    std::vector<std::int32_t> out;
    for (std::size_t i = 0; i < e.size(); i += 3) out.push_back(e.at(i).get<std::int32_t>());
    return out;
  };
  REQUIRE(reference.at("add_special_tokens").at("strings").at(0) == 0);
  const std::string text = corpus.at(0).get<std::string>();

  const headlens::pretrained_tokenizer tok = headlens::load_tokenizer(dir + "synthetic/bert_wordpiece.json");
  CHECK(tok.kind() == headlens::tokenizer_kind::tokenizer_json);
  CHECK(tok.adds_special_tokens());  // [CLS] ... [SEP]
  CHECK(ids(tok.encode(text)) == expected("add_special_tokens"));
  CHECK(ids(tok.encode(text, false)) == expected("no_special_tokens"));
  CHECK(tok.token(expected("add_special_tokens").front()) == "[CLS]");

  const auto model_dir = scratch("tokenizer_json");  // tokenizer.json wins over a vocab.json beside it
  std::filesystem::copy_file(dir + "synthetic/bert_wordpiece.json", model_dir / "tokenizer.json");
  write(model_dir / "vocab.json", R"({"a": 0})");
  CHECK(headlens::load_tokenizer(model_dir.string()).kind() == headlens::tokenizer_kind::tokenizer_json);
}
#endif

TEST_CASE("load_tokenizer names what it looked for when nothing is there") {
  const auto dir = scratch("errors");
  CHECK_THROWS_AS(headlens::load_tokenizer((dir / "missing").string()), headlens::io_error);
  CHECK_THROWS_WITH(headlens::load_tokenizer((dir / "missing").string(), "--tokenizer"),
                    Catch::StartsWith("headlens: --tokenizer ") && Catch::Contains("does not exist; expected"));
  CHECK_THROWS_WITH(headlens::load_tokenizer(dir.string()),
                    Catch::Contains("has no tokenizer; expected tokenizer.json, tokenizer.model, vocab.json"));
  write(dir / "weights.bin", "x");
  CHECK_THROWS_WITH(headlens::load_tokenizer((dir / "weights.bin").string()),
                    Catch::Contains("is not a tokenizer file; expected tokenizer.json, tokenizer.model or vocab.json"));
  write(dir / "vocab.json", "{\"a\": 0,");
  CHECK_THROWS_AS(headlens::load_tokenizer(dir.string()), headlens::format_error);
}

}  // namespace test_pretrained_tokenizer
