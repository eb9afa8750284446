// headlens's tokenizer.json encoder against the real Hugging Face `tokenizers` (the Rust library, run once by
// tools/tokenizer_reference.mjs): for every string of tests/data/tokenizers/corpus.json, the ids and the UTF-8 byte
// spans must be exactly the reference's, with add_special_tokens on and (for a quarter or a third of the strings)
// off.
//
// Real tokenizers (Llama 2, Llama 3.1, Qwen3, Gemma 3, GPT-4o, DeepSeek-V3, Claude) are read from
// HEADLENS_TOKENIZERS_DIR (tests/CMakeLists.txt sets it) or build/models/tokenizers (tools/fetch-tokenizers.sh,
// `make models`); without them each says it is skipped. The synthetic tokenizers (tests/data/tokenizers/synthetic/)
// are committed and always run.
//
// Set HEADLENS_CONFORMANCE_REPORT=FILE to have each tokenizer's summary (count of mismatching strings, the first
// five with expected and actual tokens) appended to FILE as Markdown.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "headlens/text/hf_tokenizer.hpp"

namespace test_tokenizer_conformance {

namespace {

namespace fs = std::filesystem;

const std::string data_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/tokenizers/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// 64-bit FNV-1a in hex, as tools/tokenizer_reference.mjs records the corpus it encoded.
std::string fnv1a64(const std::string& bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

struct corpus_file {
  std::vector<std::string> strings;
  std::string fnv;
};

const corpus_file& corpus() {
  static const corpus_file c = [] {
    corpus_file f;
    const std::string text = read_file(data_dir + "corpus.json");
    f.fnv = fnv1a64(text);
    f.strings = nlohmann::json::parse(text).get<std::vector<std::string>>();
    return f;
  }();
  return c;
}

/// The folder of the fetched real tokenizers, or empty when neither the variable nor the build tree's cache exists.
std::string tokenizers_dir() {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("HEADLENS_TOKENIZERS_DIR"); dir != nullptr && *dir != '\0') {
    candidates.push_back(dir);
  }
  candidates.push_back(std::string(HEADLENS_TEST_DATA_DIR) + "/../../build/models/tokenizers");
  for (const std::string& dir : candidates) {
    if (fs::is_directory(dir)) return dir;
  }
  return {};
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

/// `id[begin,end)` for tokens [from, to) of a list, with "..." where it is cut.
template <class Token>
std::string show(const std::vector<Token>& tokens, std::size_t from, std::size_t to) {
  std::ostringstream out;
  to = std::min(to, tokens.size());
  if (from > 0) out << "... ";
  for (std::size_t k = from; k < to; ++k) {
    out << tokens[k].id << '[' << tokens[k].begin << ',' << tokens[k].end << ") ";
  }
  if (to < tokens.size()) out << "... (" << tokens.size() << " tokens)";
  return out.str();
}

std::string quoted(const std::string& s) {
  const std::string q = nlohmann::json(s).dump();
  return q.size() > 160 ? q.substr(0, 157) + "...\"" : q;
}

struct mismatch {
  std::size_t index = 0;
  std::string text, expected, got;
};

/// Encodes every string of a reference file and compares; returns the mismatches (all counted, the first 5 kept).
struct outcome {
  std::size_t strings = 0, tokens = 0, mismatching = 0;
  std::vector<mismatch> first;
};

/// `section` is "add_special_tokens" or "no_special_tokens", the two encodings the reference holds.
outcome compare(const headlens::hf_tokenizer& tok, const nlohmann::json& ref, const std::string& section) {
  const corpus_file& c = corpus();
  REQUIRE(ref.at("corpus_fnv1a64").get<std::string>() == c.fnv);  // else rerun tools/tokenizer_reference.mjs
  REQUIRE(ref.at("offsets").get<std::string>() == "utf8_bytes");
  const bool add_special = section == "add_special_tokens";
  const auto& indices = ref.at(section).at("strings");
  const auto& encodings = ref.at(section).at("encodings");
  REQUIRE(indices.size() == encodings.size());
  REQUIRE(!indices.empty());
  outcome o;
  for (std::size_t n = 0; n < indices.size(); ++n) {
    const std::size_t i = indices[n].get<std::size_t>();
    REQUIRE(i < c.strings.size());
    const std::string& text = c.strings[i];
    const std::vector<std::int64_t> flat = encodings[n].get<std::vector<std::int64_t>>();
    REQUIRE(flat.size() % 3 == 0);
    std::vector<headlens::text_token> expected;
    for (std::size_t k = 0; k < flat.size(); k += 3) {
      expected.push_back({static_cast<std::int32_t>(flat[k]), static_cast<std::size_t>(flat[k + 1]),
                          static_cast<std::size_t>(flat[k + 2])});
    }
    ++o.strings;
    o.tokens += expected.size();
    std::vector<headlens::text_token> got;
    std::string error;
    try {
      got = tok.encode(text, add_special);
    } catch (const std::exception& e) {
      error = std::string("threw: ") + e.what();
    }
    std::size_t first_diff = 0;
    while (first_diff < expected.size() && first_diff < got.size() && expected[first_diff].id == got[first_diff].id &&
           expected[first_diff].begin == got[first_diff].begin && expected[first_diff].end == got[first_diff].end) {
      ++first_diff;
    }
    if (error.empty() && first_diff == expected.size() && first_diff == got.size()) continue;
    ++o.mismatching;
    if (o.first.size() < 5) {
      const std::size_t from = first_diff > 3 ? first_diff - 3 : 0;
      o.first.push_back({i, quoted(text), show(expected, from, first_diff + 12),
                         error.empty() ? show(got, from, first_diff + 12) : error});
    }
  }
  return o;
}

std::string summary(const std::string& name, const outcome& o) {
  std::ostringstream out;
  out << "## " << name << ": " << o.mismatching << " of " << o.strings << " strings mismatch (" << o.tokens
      << " reference tokens)\n";
  for (const mismatch& m : o.first) {
    out << "\n- string " << m.index << ": `" << m.text << "`\n  - expected: " << m.expected
        << "\n  - got:      " << m.got << '\n';
  }
  return out.str();
}

/// Both encodings of a reference, each summarised and required to match.
void check(const headlens::hf_tokenizer& tok, const std::string& name, const nlohmann::json& ref) {
  for (const std::string section : {"add_special_tokens", "no_special_tokens"}) {
    const outcome o = compare(tok, ref, section);
    const std::string text = summary(name + (section == "add_special_tokens" ? "" : " (add_special_tokens=false)"), o);
    if (const char* file = std::getenv("HEADLENS_CONFORMANCE_REPORT"); file != nullptr && *file != '\0') {
      std::ofstream(file, std::ios::app) << text << '\n';
    }
    INFO(text);
    CHECK(o.mismatching == 0);
  }
}

nlohmann::json reference(const std::string& name) {
  return nlohmann::json::parse(read_file(data_dir + name + ".reference.json"));
}

/// A real tokenizer from the fetched folder, compared with its reference; skipped when it is not fetched.
void check_real(const std::string& name) {
  const nlohmann::json ref = reference(name);
  REQUIRE(ref.at("source").get<std::string>() == "npm");
  const std::string dir = tokenizers_dir();
  const std::string file = dir + "/" + ref.at("file").get<std::string>();
  if (dir.empty() || !fs::is_regular_file(file)) {
    WARN("SKIPPED " << name << ": no " << ref.at("file").get<std::string>()
                    << "; set HEADLENS_TOKENIZERS_DIR or run tools/fetch-tokenizers.sh (make models)");
    return;
  }
  // The reference was made from exactly this package: a different file would fail for the wrong reason.
  {
    const std::string stamp = fs::path(file).parent_path().string() + "/.integrity";
    INFO(file << " is not " << ref.at("package").get<std::string>() << "@" << ref.at("version").get<std::string>()
              << "; rerun tools/fetch-tokenizers.sh");
    REQUIRE(fs::is_regular_file(stamp));
    REQUIRE(trimmed(read_file(stamp)) == ref.at("integrity").get<std::string>());
  }
  const headlens::hf_tokenizer tok = headlens::hf_tokenizer::from_file(file);
  check(tok, name, ref);
}

}  // namespace

TEST_CASE("tokenizer.json conformance: Llama 2 (BPE, byte fallback, Prepend/Replace, TemplateProcessing)",
          "[tokenizer][conformance]") {
  check_real("llama2");
}

TEST_CASE("tokenizer.json conformance: Llama 3.1 (byte-level BPE, ignore_merges, Llama 3 regex)",
          "[tokenizer][conformance]") {
  check_real("llama3_1");
}

TEST_CASE("tokenizer.json conformance: Qwen3 (NFC, Qwen2 regex, merges as pairs)", "[tokenizer][conformance]") {
  check_real("qwen3");
}

TEST_CASE("tokenizer.json conformance: Gemma 3 (BPE, byte fallback, Split MergedWithPrevious, 6,415 added tokens)",
          "[tokenizer][conformance]") {
  check_real("gemma3");
}

TEST_CASE("tokenizer.json conformance: GPT-4o (o200k regex, Split Removed + invert)", "[tokenizer][conformance]") {
  check_real("gpt4o");
}

TEST_CASE("tokenizer.json conformance: DeepSeek-V3 (three Split regexes, CJK ranges, 818 added tokens)",
          "[tokenizer][conformance]") {
  check_real("deepseek_v3");
}

TEST_CASE("tokenizer.json conformance: Claude (NFKC, ByteLevel with its default regex, no post-processor)",
          "[tokenizer][conformance]") {
  check_real("claude");
}

TEST_CASE("tokenizer.json conformance: the synthetic tokenizers (WordPiece, Unigram, WordLevel, BPE components)",
          "[tokenizer][conformance]") {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(data_dir)) {
    const std::string f = entry.path().filename().string();
    const std::string suffix = ".reference.json";
    if (f.rfind("synthetic_", 0) == 0 && f.size() > suffix.size() &&
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) {
      names.push_back(f.substr(0, f.size() - suffix.size()));
    }
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    CAPTURE(name);
    const nlohmann::json ref = reference(name);
    REQUIRE(ref.at("source").get<std::string>() == "synthetic");
    const headlens::hf_tokenizer tok = headlens::hf_tokenizer::from_file(data_dir + ref.at("file").get<std::string>());
    check(tok, name, ref);
  }
}

}  // namespace test_tokenizer_conformance
