// SentencePiece tokenizer.model files: the protobuf reader, the normaliser, unigram and BPE encoding.
// Reference: tests/data/sentencepiece/, written by tools/make_sentencepiece_fixtures.py with the real SentencePiece
// library (Debian's python3-sentencepiece 0.1.97): seven small models and, for 1,100 strings, the ids and byte
// spans the library itself reports. The hand-built models below are checked against segmentations worked out by
// hand.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "headlens/detail/binary_file.hpp"
#include "headlens/detail/json_subset.hpp"
#include "headlens/text/sentencepiece_model.hpp"

namespace test_sentencepiece_model {

using headlens::sentencepiece_model;
using headlens::sentencepiece_model_kind;
using headlens::sentencepiece_model_options;
using headlens::sentencepiece_piece_type;
using headlens::text_token;

const std::string data_dir = std::string(HEADLENS_TEST_DATA_DIR) + "/sentencepiece/";

headlens::detail::json_value read_json(const std::string& path) {
  const auto bytes = headlens::detail::read_file_bytes(path);
  return headlens::detail::parse_json(reinterpret_cast<const char*>(bytes.data()), bytes.size(), path, 0);
}

std::string escaped(const std::string& s) {
  std::ostringstream out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      out << "\\x" << std::hex << static_cast<int>(u) << std::dec;
    } else {
      out << c;
    }
  }
  return out.str();
}

std::string describe(const std::vector<text_token>& tokens) {
  std::ostringstream out;
  for (const auto& t : tokens) out << t.id << "[" << t.begin << "," << t.end << ") ";
  return out.str();
}

void check_reference(const std::string& name, sentencepiece_model_kind kind) {
  const auto reference = read_json(data_dir + name + ".json");
  const auto strings = read_json(data_dir + "strings.json");
  const sentencepiece_model model = sentencepiece_model::from_file(data_dir + reference.find("model")->string);
  CHECK(model.kind() == kind);
  CHECK(model.size() == reference.find("size")->integer);
  CHECK(model.unk_id() == reference.find("unk_id")->integer);
  CHECK(model.bos_id().value_or(-1) == reference.find("bos_id")->integer);
  CHECK(model.eos_id().value_or(-1) == reference.find("eos_id")->integer);
  const auto& cases = reference.find("cases")->array;
  REQUIRE(cases.size() == strings.array.size());
  REQUIRE(cases.size() >= 1000);
  std::size_t mismatches = 0;
  std::size_t tokens = 0;
  std::ostringstream first_mismatches;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string& text = strings.array[i].string;
    std::vector<text_token> expected;
    const auto& flat = cases[i].array;
    REQUIRE(flat.size() % 3 == 0);
    for (std::size_t k = 0; k < flat.size(); k += 3) {
      expected.push_back({static_cast<std::int32_t>(flat[k].integer), static_cast<std::size_t>(flat[k + 1].integer),
                          static_cast<std::size_t>(flat[k + 2].integer)});
    }
    const std::vector<text_token> got = model.encode(text);
    tokens += expected.size();
    bool same = got.size() == expected.size();
    for (std::size_t k = 0; same && k < got.size(); ++k) {
      same = got[k].id == expected[k].id && got[k].begin == expected[k].begin && got[k].end == expected[k].end;
    }
    if (!same) {
      ++mismatches;
      if (mismatches <= 5) {
        first_mismatches << name << " string " << i << " \"" << escaped(text) << "\"\n  expected "
                         << describe(expected) << "\n  got      " << describe(got) << "\n";
      }
    }
  }
  INFO(first_mismatches.str());
  INFO(name << ": " << mismatches << " of " << cases.size() << " strings differ (" << tokens
                     << " reference tokens)");
  CHECK(mismatches == 0);
  // add_bos: the BOS id, then the same ids.
  const auto& bos_cases = reference.find("bos_cases")->array;
  for (std::size_t i = 0; i < bos_cases.size(); ++i) {
    std::vector<std::int32_t> expected;
    for (const auto& v : bos_cases[i].array) expected.push_back(static_cast<std::int32_t>(v.integer));
    const auto got = model.encode(strings.array[i].string, true);
    REQUIRE(got.size() == expected.size());
    for (std::size_t k = 0; k < got.size(); ++k) CHECK(got[k].id == expected[k]);
    CHECK(got[0].begin == 0);
    CHECK(got[0].end == 0);
  }
}

TEST_CASE("sentencepiece_model: unigram models encode as SentencePiece does", "[sentencepiece_model]") {
  check_reference("unigram_nfkc", sentencepiece_model_kind::unigram);
  check_reference("unigram_identity_bytes", sentencepiece_model_kind::unigram);
  check_reference("unigram_user_digits_nodummy", sentencepiece_model_kind::unigram);
  check_reference("unigram_suffix_keepspaces", sentencepiece_model_kind::unigram);
}

TEST_CASE("sentencepiece_model: BPE models encode as SentencePiece does", "[sentencepiece_model]") {
  check_reference("bpe_nfkc_bytes", sentencepiece_model_kind::bpe);
  check_reference("bpe_identity", sentencepiece_model_kind::bpe);
  check_reference("bpe_user_nodummy_keepspaces", sentencepiece_model_kind::bpe);
}

}  // namespace test_sentencepiece_model
