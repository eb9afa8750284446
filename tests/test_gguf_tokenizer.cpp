// The tokenizer of a GGUF file's tokenizer.ggml.* metadata against llama.cpp's own (node-llama-cpp 3.21.1,
// tools/gguf_tokenizer_fixtures.mjs): the ids llama.cpp gives for every string of tests/data/tokenizers/corpus.json
// on GGUF files that carry (a) the random Llama fixture's byte-fallback SentencePiece vocabulary and (b) the real
// Llama 2 ("llama"), Llama 3.1 ("gpt2", pre "llama-bpe", also "gpt-2" and "default") and Qwen3 ("gpt2", pre
// "qwen2") vocabularies, rebuilt here
// from the tokenizer.json files tools/fetch-tokenizers.sh fetches (SKIPPED when they are absent). Malformed
// metadata is checked to give format_errors naming the key.
#include <catch2/catch.hpp>

#include <headlens/models/gguf_tokenizer.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/gguf_tokenizer_vocab.hpp"

namespace test_gguf_tokenizer {

using headlens::gguf_file;
using headlens::gguf_value;

struct reference {
  std::string fnv;
  std::vector<std::vector<std::int32_t>> ids;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline const std::vector<std::string>& corpus() {
  static const std::vector<std::string> c =
      nlohmann::json::parse(read_text(std::string(HEADLENS_TEST_DATA_DIR) + "/tokenizers/corpus.json"))
          .get<std::vector<std::string>>();
  return c;
}

inline reference load_reference(const std::string& name) {
  const auto j = nlohmann::json::parse(read_text(std::string(HEADLENS_TEST_DATA_DIR) + "/gguf/tokenize_" + name + ".json"));
  return {j.at("gguf_fnv1a").get<std::string>(), j.at("ids").get<std::vector<std::vector<std::int32_t>>>()};
}

inline std::string hex64(std::uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

/// The fetched tokenizers' folder (as test_tokenizer_conformance.cpp finds it), or empty.
inline std::string tokenizers_dir() {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("HEADLENS_TOKENIZERS_DIR"); dir != nullptr && *dir != '\0') candidates.push_back(dir);
  candidates.push_back(std::string(HEADLENS_TEST_DATA_DIR) + "/../../build/models/tokenizers");
  for (const auto& d : candidates) {
    if (std::filesystem::is_directory(d)) return d;
  }
  return {};
}

/// Every corpus string's ids equal llama.cpp's (which gives no spans); the spans cover the text sensibly: in order,
/// within it, without gaps, from byte 0 to its end (byte-level pieces of one character may each cover all of it).
inline void check_against_llama_cpp(const headlens::pretrained_tokenizer& tok, const reference& ref) {
  const auto& texts = corpus();
  REQUIRE(ref.ids.size() == texts.size());
  std::size_t mismatches = 0, tokens = 0, bad_spans = 0;
  for (std::size_t k = 0; k < texts.size(); ++k) {
    const auto got = tok.encode(texts[k], false);
    std::vector<std::int32_t> ids;
    for (const auto& t : got) ids.push_back(t.id);
    tokens += ids.size();
    if (ids != ref.ids[k] && ++mismatches <= 3) {
      std::ostringstream g, w;
      for (auto i : ids) g << i << ' ';
      for (auto i : ref.ids[k]) w << i << ' ';
      WARN("string " << k << " \"" << texts[k] << "\"\n headlens:  " << g.str() << "\n llama.cpp: " << w.str());
    }
    std::size_t at = 0, previous_begin = 0;
    bool ok = true;
    for (const auto& t : got) {
      ok = ok && t.begin <= t.end && t.end <= texts[k].size() && t.begin <= at && t.begin >= previous_begin;
      at = std::max<std::size_t>(at, t.end);
      previous_begin = t.begin;
    }
    ok = ok && at == texts[k].size();
    if (!ok && ++bad_spans <= 3) WARN("spans do not tile string " << k << " \"" << texts[k] << "\"");
  }
  INFO(tokens << " tokens over " << texts.size() << " strings");
  CHECK(mismatches == 0);
  CHECK(bad_spans == 0);
}

TEST_CASE("gguf_tokenizer: the fixture's SentencePiece vocabulary gives llama.cpp's ids", "[gguf][tokenizer]") {
  const auto bytes = gguf_tokenizer_vocab::spm_fixture_bytes();
  const reference ref = load_reference("spm_fixture");
  REQUIRE(hex64(gguf_fixture::fnv1a(bytes)) == ref.fnv);
  const auto file = gguf_file::from_bytes(bytes, "spm_fixture.gguf");
  const auto tok = headlens::gguf_tokenizer(file);
  CHECK(tok.vocab_size() == 288);
  check_against_llama_cpp(tok, ref);
  // BOS (id 1) first when asked for the model's own tokens; nothing for empty text without them.
  const auto with = tok.encode("the and", true);
  REQUIRE(!with.empty());
  CHECK(with.front().id == 1);
  CHECK(tok.encode("", false).empty());
}

TEST_CASE("gguf_tokenizer: add_space_prefix and add_bos_token are read", "[gguf][tokenizer]") {
  headlens::gguf_writer w;
  gguf_tokenizer_vocab::add_architecture(w, 288);
  gguf_fixture::add_tokenizer(w);
  w.set("tokenizer.ggml.add_space_prefix", gguf_value::of_bool(false));
  w.set("tokenizer.ggml.add_bos_token", gguf_value::of_bool(false));
  const auto tok = headlens::gguf_tokenizer(gguf_file::from_bytes(w.bytes()));
  // "a" without the dummy prefix is no word piece (they all start with U+2581): byte fallback <0x61> = 3 + 0x61.
  const auto ids = tok.encode("a", true);
  REQUIRE(ids.size() == 1);
  CHECK(ids[0].id == 3 + 0x61);
  CHECK(tok.encode(" a", false).front().id == 259);  // "▁a"
}

TEST_CASE("gguf_tokenizer: real vocabularies give llama.cpp's ids", "[gguf][tokenizer][real]") {
  const std::string dir = tokenizers_dir();
  // Llama 3.1's vocabulary is also split with the "gpt-2" and "default" regexes (the name after '-').
  for (const std::string name : {"llama2", "llama3_1", "qwen3", "llama3_1-gpt-2", "llama3_1-default"}) {
    DYNAMIC_SECTION(name) {
      const std::string base = name.substr(0, name.find('-'));
      const std::string pre = name.size() > base.size() ? name.substr(base.size() + 1) : "";
      const std::string path = dir + "/" + base + "/tokenizer.json";
      if (dir.empty() || !std::filesystem::exists(path)) {
        WARN("SKIPPED: " << name << ": no " << (dir.empty() ? std::string("tokenizers folder") : path)
                         << "; set HEADLENS_TOKENIZERS_DIR or run tools/fetch-tokenizers.sh (make models)");
        continue;
      }
#if !defined(HEADLENS_WITH_TOKENIZERS)
      if (name != "llama2") {
        WARN("SKIPPED: " << name << " needs the tokenizers component (HEADLENS_WITH_TOKENIZERS)");
        continue;
      }
#endif
      const auto bytes = gguf_tokenizer_vocab::real_bytes(base, path, pre);
      const reference ref = load_reference(name);
      INFO(path << " must be the file the reference was made from (tools/fetch-tokenizers.sh pins it)");
      REQUIRE(hex64(gguf_fixture::fnv1a(bytes)) == ref.fnv);
      check_against_llama_cpp(headlens::gguf_tokenizer(gguf_file::from_bytes(bytes, name + ".gguf")), ref);
    }
  }
}

/// The fixture's GGUF with `change` applied to its writer.
template <class Change>
std::vector<unsigned char> changed(Change change) {
  headlens::gguf_writer w;
  gguf_tokenizer_vocab::add_architecture(w, 288);
  gguf_fixture::add_tokenizer(w);
  change(w);
  return w.bytes();
}

template <class Change>
void check_error(Change change, const std::vector<std::string>& words) {
  const auto file = gguf_file::from_bytes(changed(change), "bad.gguf");
  try {
    (void)headlens::gguf_tokenizer(file);
    FAIL("no error; expected one mentioning " << words.front());
  } catch (const headlens::format_error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(e.byte_offset() > 0);
    for (const auto& word : words) CHECK(what.find(word) != std::string::npos);
  }
}

TEST_CASE("gguf_tokenizer: malformed or unsupported metadata is a format_error naming the key", "[gguf][tokenizer]") {
  using W = headlens::gguf_writer;
  check_error([](W& w) { w.set("tokenizer.ggml.model", gguf_value::of_string("bert")); },
              {"tokenizer.ggml.model", "\"bert\"", "not support"});
  check_error([](W& w) { w.set("tokenizer.ggml.model", gguf_value::of_string("t5")); }, {"\"t5\"", "not support"});
  check_error([](W& w) { w.set("tokenizer.ggml.model", gguf_value::of_string("none")); }, {"no tokenizer"});
  check_error([](W& w) { w.set("tokenizer.ggml.model", gguf_value::of_uint32(3)); }, {"tokenizer.ggml.model", "string"});
  check_error([](W& w) { w.set("tokenizer.ggml.scores", gguf_value::of_float32s({0, 0})); },
              {"tokenizer.ggml.scores", "2 values", "288"});
  check_error([](W& w) { w.set("tokenizer.ggml.token_type", gguf_value::of_int32s({1, 1, 1})); },
              {"tokenizer.ggml.token_type", "3 values", "288"});
  check_error([](W& w) { w.set("tokenizer.ggml.token_type", gguf_value::of_int32s(std::vector<std::int32_t>(288, 9))); },
              {"tokenizer.ggml.token_type", "entry 0", "1 (normal) to 6"});
  check_error([](W& w) { w.set("tokenizer.ggml.bos_token_id", gguf_value::of_uint32(288)); },
              {"tokenizer.ggml.bos_token_id", "288", "below 288"});
  check_error([](W& w) { w.set("tokenizer.ggml.eos_token_id", gguf_value::of_uint32(100000)); },
              {"tokenizer.ggml.eos_token_id", "100000"});
  check_error([](W& w) { w.set("tokenizer.ggml.tokens", gguf_value::of_strings({})); }, {"tokenizer.ggml.tokens", "empty"});
  // Two unknown pieces: SentencePiece's own check, reported at the tokens.
  check_error([](W& w) {
    std::vector<std::int32_t> t(288, 1);
    t[0] = 2, t[1] = 2, t[2] = 3;
    for (int b = 0; b < 256; ++b) t[3 + b] = 6;
    w.set("tokenizer.ggml.token_type", gguf_value::of_int32s(t));
  }, {"tokenizer.ggml.tokens", "unknown"});
#if defined(HEADLENS_WITH_TOKENIZERS)
  auto gpt2 = [](W& w) {
    w.set("tokenizer.ggml.model", gguf_value::of_string("gpt2"));
    w.set("tokenizer.ggml.pre", gguf_value::of_string("llama-bpe"));
    w.set("tokenizer.ggml.tokens", gguf_value::of_strings({"a", "b", "ab", "\xC4\xA0", "<s>"}));
    w.set("tokenizer.ggml.token_type", gguf_value::of_int32s({1, 1, 1, 1, 3}));
    w.set("tokenizer.ggml.merges", gguf_value::of_strings({"a b"}));
    w.set("tokenizer.ggml.bos_token_id", gguf_value::of_uint32(4));
    w.set("tokenizer.ggml.eos_token_id", gguf_value::of_uint32(4));
    w.set("tokenizer.ggml.add_bos_token", gguf_value::of_bool(true));
  };
  {  // A well-formed gpt2 vocabulary: "ab" merged, "Ġ" is the byte-level space, BOS first when asked for.
    const auto tok = headlens::gguf_tokenizer(gguf_file::from_bytes(changed(gpt2)));
    std::vector<std::int32_t> ids;
    for (const auto& t : tok.encode("ab a", true)) ids.push_back(t.id);
    CHECK(ids == std::vector<std::int32_t>{4, 2, 3, 0});
    // Without add_bos_token: BOS by default for Llama 3's pre-tokenizer, not for Qwen2's (llama.cpp's defaults).
    const auto count_without_key = [](const char* pre) {
      headlens::gguf_writer w;
      gguf_tokenizer_vocab::add_architecture(w, 5);
      w.set("tokenizer.ggml.model", gguf_value::of_string("gpt2"));
      w.set("tokenizer.ggml.pre", gguf_value::of_string(pre));
      w.set("tokenizer.ggml.tokens", gguf_value::of_strings({"a", "b", "ab", "\xC4\xA0", "<s>"}));
      w.set("tokenizer.ggml.merges", gguf_value::of_strings({"a b"}));
      w.set("tokenizer.ggml.bos_token_id", gguf_value::of_uint32(4));
      return headlens::gguf_tokenizer(gguf_file::from_bytes(w.bytes())).encode("ab", true).size();
    };
    CHECK(count_without_key("llama-bpe") == 2);
    CHECK(count_without_key("qwen2") == 1);
  }
  check_error([&](W& w) { gpt2(w); w.set("tokenizer.ggml.pre", gguf_value::of_string("falcon")); },
              {"tokenizer.ggml.pre", "\"falcon\"", "llama-bpe", "qwen2", "gpt-2"});
  check_error([&](W& w) { gpt2(w); w.set("tokenizer.ggml.merges", gguf_value::of_strings({"ab"})); },
              {"tokenizer.ggml.merges", "entry 0", "\"ab\""});
  check_error([&](W& w) { gpt2(w); w.set("tokenizer.ggml.merges", gguf_value::of_int32s({1})); },
              {"tokenizer.ggml.merges"});
  check_error([&](W& w) {
    gpt2(w);
    w.set("tokenizer.ggml.tokens", gguf_value::of_strings({"a", "b", "ab", "a", "<s>"}));
  }, {"tokenizer.ggml.tokens", "entry 3", "twice"});
  check_error([&](W& w) { gpt2(w); w.set("tokenizer.ggml.token_type", gguf_value::of_int32s({1})); },
              {"tokenizer.ggml.token_type", "1 values", "5"});
#else
  check_error([](W& w) { w.set("tokenizer.ggml.model", gguf_value::of_string("gpt2")); },
              {"tokenizer.ggml.model", "HEADLENS_WITH_TOKENIZERS"});
#endif
}

}  // namespace test_gguf_tokenizer
