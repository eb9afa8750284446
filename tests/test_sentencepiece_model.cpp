// SentencePiece tokenizer.model files: the protobuf reader, the normaliser, unigram and BPE encoding.
// Reference: tests/data/sentencepiece/, written by tools/make_sentencepiece_fixtures.py with the real SentencePiece
// library (Debian's python3-sentencepiece 0.1.97): nine small models and, for 1,100 strings, the ids and byte
// spans the library itself reports. The hand-built models below are checked against segmentations worked out by
// hand, and confirmed with the library by tools/check_sentencepiece_hand_models.py.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
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
        first_mismatches << name << " string " << i << " \"" << escaped(text) << "\"\n  expected " << describe(expected)
                         << "\n  got      " << describe(got) << "\n";
      }
    }
  }
  INFO(first_mismatches.str());
  INFO(name << ": " << mismatches << " of " << cases.size() << " strings differ (" << tokens << " reference tokens)");
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
  check_reference("unigram_custom_rules", sentencepiece_model_kind::unigram);
}

// Malformed UTF-8 cannot travel through the JSON fixtures: these few cases were encoded with the C++ library
// (libsentencepiece-dev 0.1.97, EncodeAsImmutableProto; tools/sentencepiece_differential.cpp compares 180,000 such
// random strings). Every malformed byte reads as U+FFFD, one byte at a time.
TEST_CASE("sentencepiece_model: malformed UTF-8 as SentencePiece reads it", "[sentencepiece_model]") {
  const auto unigram = sentencepiece_model::from_file(data_dir + "unigram_nfkc.model");
  const auto bpe = sentencepiece_model::from_file(data_dir + "bpe_nfkc_bytes.model");
  const std::vector<std::string> texts{"a\xFF" "b", "\xC3", "x\xE2\x96 y", "\xED\xA0\x80z", "\xF4\x90\x80\x80",
                                       "\xC0\xAF ok"};
  const std::vector<std::vector<text_token>> unigram_expected{
      {{11, 0, 1}, {0, 1, 2}, {92, 2, 3}},
      {{3, 0, 0}, {0, 0, 1}},
      {{3, 0, 0}, {392, 0, 1}, {0, 1, 3}, {3, 3, 4}, {7, 4, 5}},
      {{3, 0, 0}, {0, 0, 3}, {273, 3, 4}},
      {{3, 0, 0}, {0, 0, 4}},
      {{3, 0, 0}, {0, 0, 2}, {3, 2, 3}, {19, 3, 4}, {399, 4, 5}}};
  // U+FFFD is EF BF BD: with byte fallback, three byte pieces per malformed byte (ids 242, 194, 192).
  const std::vector<std::vector<text_token>> bpe_expected{
      {{261, 0, 1}, {242, 1, 1}, {194, 1, 1}, {192, 1, 2}, {545, 2, 3}},
      {{523, 0, 0}, {242, 0, 0}, {194, 0, 0}, {192, 0, 1}},
      {{523, 0, 0}, {567, 0, 1}, {242, 1, 1}, {194, 1, 1}, {192, 1, 2}, {242, 2, 2}, {194, 2, 2}, {192, 2, 3},
       {424, 3, 5}},
      {{523, 0, 0}, {242, 0, 0}, {194, 0, 0}, {192, 0, 1}, {242, 1, 1}, {194, 1, 1}, {192, 1, 2}, {242, 2, 2},
       {194, 2, 2}, {192, 2, 3}, {548, 3, 4}},
      {{523, 0, 0}, {242, 0, 0}, {194, 0, 0}, {192, 0, 1}, {242, 1, 1}, {194, 1, 1}, {192, 1, 2}, {242, 2, 2},
       {194, 2, 2}, {192, 2, 3}, {242, 3, 3}, {194, 3, 3}, {192, 3, 4}},
      {{523, 0, 0}, {242, 0, 0}, {194, 0, 0}, {192, 0, 1}, {242, 1, 1}, {194, 1, 1}, {192, 1, 2}, {267, 2, 4},
       {547, 4, 5}}};
  for (std::size_t i = 0; i < texts.size(); ++i) {
    INFO("text " << i << " \"" << escaped(texts[i]) << "\"");
    CHECK(describe(unigram.encode(texts[i])) == describe(unigram_expected[i]));
    CHECK(describe(bpe.encode(texts[i])) == describe(bpe_expected[i]));
  }
}

TEST_CASE("sentencepiece_model: BPE models encode as SentencePiece does", "[sentencepiece_model]") {
  check_reference("bpe_nfkc_bytes", sentencepiece_model_kind::bpe);
  check_reference("bpe_identity", sentencepiece_model_kind::bpe);
  check_reference("bpe_identity_noescape", sentencepiece_model_kind::bpe);
  check_reference("bpe_user_nodummy_keepspaces", sentencepiece_model_kind::bpe);
}

// ---- a protobuf writer for hand-made model files -------------------------------------------------------------

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void put_tag(std::string& out, std::uint32_t field, std::uint32_t wire) { put_varint(out, (field << 3) | wire); }
void put_bytes(std::string& out, std::uint32_t field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_float(std::string& out, std::uint32_t field, float f) {
  put_tag(out, field, 5);
  std::uint32_t bits = 0;
  std::memcpy(&bits, &f, 4);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
}
void put_int(std::string& out, std::uint32_t field, std::int64_t v) {
  put_tag(out, field, 0);
  put_varint(out, static_cast<std::uint64_t>(v));
}
std::string piece_message(const std::string& text, float score, int type) {
  std::string m;
  put_bytes(m, 1, text);
  put_float(m, 2, score);
  if (type != 1) put_int(m, 3, type);
  return m;
}

const std::string marker = "\xE2\x96\x81";  // U+2581

// A unigram model worked out by hand. Scores: "▁a" + "b" (-3.5) beats "▁" + "ab" (-4.5) and "▁" + "a" + "b" (-5).
struct tiny {
  std::vector<std::string> pieces{"<unk>",      "<s>", "</s>", marker,  "a", "b", "ab",
                                  marker + "a", "c",   "abc",  "<sep>", "p", "q", "pq"};
  std::vector<float> scores{0, 0, 0, -1, -2, -2, -3.5f, -1.5f, -5, -9, 0, -1, -1, -2};
  std::vector<sentencepiece_piece_type> types{
      sentencepiece_piece_type::unknown, sentencepiece_piece_type::control,      sentencepiece_piece_type::control,
      sentencepiece_piece_type::normal,  sentencepiece_piece_type::normal,       sentencepiece_piece_type::normal,
      sentencepiece_piece_type::normal,  sentencepiece_piece_type::normal,       sentencepiece_piece_type::normal,
      sentencepiece_piece_type::normal,  sentencepiece_piece_type::user_defined, sentencepiece_piece_type::normal,
      sentencepiece_piece_type::normal,  sentencepiece_piece_type::normal};
  sentencepiece_model model(sentencepiece_model_options options = {}) const {
    return sentencepiece_model(pieces, scores, types, std::move(options));
  }
  std::string serialized(int model_type = 1) const {
    std::string out;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      put_bytes(out, 1, piece_message(pieces[i], scores[i], static_cast<int>(types[i])));
    }
    std::string trainer;
    put_int(trainer, 3, model_type);
    put_bytes(out, 2, trainer);
    return out;
  }
};

std::vector<std::int32_t> ids_of(const std::vector<text_token>& tokens) {
  std::vector<std::int32_t> ids;
  for (const auto& t : tokens) ids.push_back(t.id);
  return ids;
}

bool same_tokens(const std::vector<text_token>& a, const std::vector<text_token>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].id != b[i].id || a[i].begin != b[i].begin || a[i].end != b[i].end) return false;
  }
  return true;
}

TEST_CASE("sentencepiece_model: unigram Viterbi on a hand-made model", "[sentencepiece_model]") {
  const sentencepiece_model m = tiny().model();
  // "ab" -> "▁ab": "▁a" "b" (-3.5); "▁a" covers the dummy space and "a".
  CHECK(same_tokens(m.encode("ab"), {{7, 0, 1}, {5, 1, 2}}));
  // "abc": "▁a" "b" "c" (-8.5) beats "▁" "ab" "c" (-9.5) and "▁" "abc" (-10).
  CHECK(ids_of(m.encode("abc")) == std::vector<std::int32_t>{7, 5, 8});
  // An unknown character costs min score - 10 = -19; "▁" alone covers no bytes.
  CHECK(same_tokens(m.encode("xa"), {{3, 0, 0}, {0, 0, 1}, {4, 1, 2}}));
  // A run of unknown characters is one token; "é" and "y" are three bytes.
  CHECK(same_tokens(m.encode("\xC3\xA9y"), {{3, 0, 0}, {0, 0, 3}}));
  // A tie (-2 both ways) keeps the first candidate, the one piece "pq" (reached from the earlier start).
  sentencepiece_model_options no_prefix;
  no_prefix.add_dummy_prefix = false;
  CHECK(ids_of(tiny().model(no_prefix).encode("pq")) == std::vector<std::int32_t>{13});
  // A user-defined piece scores length * max(FLT_MIN, normal scores) - 0.1 and is kept whole, unnormalised.
  CHECK(same_tokens(m.encode("a<sep>b"), {{7, 0, 1}, {10, 1, 6}, {5, 6, 7}}));
  // Whitespace: leading, repeated and trailing spaces go; "▁" between words covers the spaces it stands for.
  CHECK(same_tokens(m.encode("  a   b  "), {{7, 2, 3}, {3, 3, 6}, {5, 6, 7}}));
  CHECK(m.encode("   ").empty());
  CHECK(m.encode("").empty());
  // BOS first, with an empty span.
  CHECK(same_tokens(m.encode("ab", true), {{1, 0, 0}, {7, 0, 1}, {5, 1, 2}}));
  CHECK(m.bos_id() == 1);
  CHECK(m.eos_id() == 2);
  CHECK_FALSE(m.pad_id().has_value());
  CHECK(m.piece_id("ab") == 6);
  CHECK(m.piece_id("<s>") == 1);
  CHECK_FALSE(m.piece_id("zz").has_value());
  CHECK(m.piece(7) == marker + "a");
  CHECK_THROWS_AS(m.piece(14), headlens::argument_error);
  // A malformed byte reads as U+FFFD (unknown here) and consumes one byte.
  CHECK(same_tokens(m.encode("a\xFF"), {{7, 0, 1}, {0, 1, 2}}));
}

TEST_CASE("sentencepiece_model: the normaliser's switches", "[sentencepiece_model]") {
  const tiny t;
  std::vector<std::size_t> to_original;
  CHECK(t.model().normalize("  a  b ", &to_original) == marker + "a" + marker + "b");
  CHECK(to_original == std::vector<std::size_t>{2, 2, 2, 2, 3, 3, 3, 5, 6});
  sentencepiece_model_options o;
  o.escape_whitespaces = false;
  CHECK(t.model(o).normalize("  a  b ") == " a b");
  o = {};
  o.remove_extra_whitespaces = false;
  CHECK(t.model(o).normalize(" a  b ") == marker + marker + "a" + marker + marker + "b" + marker);
  o = {};
  o.treat_whitespace_as_suffix = true;
  CHECK(t.model(o).normalize("a b") == "a" + marker + "b" + marker);
  o = {};
  o.add_dummy_prefix = false;
  CHECK(t.model(o).normalize("a b") == "a" + marker + "b");
}

TEST_CASE("sentencepiece_model: byte fallback", "[sentencepiece_model]") {
  tiny t;
  sentencepiece_model_options o;
  o.byte_fallback = true;
  CHECK_THROWS_WITH(t.model(o), Catch::Contains("no byte piece <0x00>"));
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    t.pieces.emplace_back(name);
    t.scores.push_back(0);
    t.types.push_back(sentencepiece_piece_type::byte);
  }
  const sentencepiece_model m = t.model(o);
  // "é" (C3 A9) is unknown: two byte pieces, the first empty at the character's start, the last covering it.
  CHECK(same_tokens(m.encode("a\xC3\xA9"), {{7, 0, 1}, {14 + 0xC3, 1, 1}, {14 + 0xA9, 1, 3}}));
  // Unknown runs are not merged under byte fallback.
  CHECK(ids_of(m.encode("xy")) == std::vector<std::int32_t>{3, 14 + 'x', 14 + 'y'});
  // Without byte_fallback a byte piece is an error, as SentencePiece says when it loads.
  CHECK_THROWS_WITH(t.model(), Catch::Contains("is a byte piece but byte_fallback is false"));
}

TEST_CASE("sentencepiece_model: BPE merges on a hand-made model", "[sentencepiece_model]") {
  const std::vector<sentencepiece_piece_type> normal(8, sentencepiece_piece_type::normal);
  std::vector<std::string> pieces{"<unk>", "a", "b", "c", "ab", "bc", "abc", marker};
  std::vector<sentencepiece_piece_type> types = normal;
  types[0] = sentencepiece_piece_type::unknown;
  sentencepiece_model_options o;
  o.kind = sentencepiece_model_kind::bpe;
  o.add_dummy_prefix = false;
  // "ab" (-1) merges before "bc" (-2), then "ab" + "c" = "abc".
  CHECK(ids_of(sentencepiece_model(pieces, {0, -10, -10, -10, -1, -2, -3, -10}, types, o).encode("abc")) ==
        std::vector<std::int32_t>{6});
  // "bc" (-1) before "ab" (-2): "a" "bc", then "a" + "bc" = "abc".
  CHECK(ids_of(sentencepiece_model(pieces, {0, -10, -10, -10, -2, -1, -3, -10}, types, o).encode("abc")) ==
        std::vector<std::int32_t>{6});
  // Without "abc" (renamed), a tie between "ab" and "bc" goes to the leftmost pair.
  pieces[6] = "zzz";
  CHECK(ids_of(sentencepiece_model(pieces, {0, -10, -10, -10, -1, -1, -3, -10}, types, o).encode("abc")) ==
        std::vector<std::int32_t>{4, 3});
  // "abcbc": "ab" (leftmost of three tied pairs), the stale "bc" at 1 is dropped, then the "bc" at 3.
  CHECK(ids_of(sentencepiece_model(pieces, {0, -10, -10, -10, -1, -1, -3, -10}, types, o).encode("abcbc")) ==
        std::vector<std::int32_t>{4, 3, 5});
  // An unused piece is merged, then split back into what it was merged from.
  pieces[6] = "abc";
  types[6] = sentencepiece_piece_type::unused;
  const sentencepiece_model unused(pieces, {0, -10, -10, -10, -1, -2, -3, -10}, types, o);
  CHECK(same_tokens(unused.encode("abc"), {{4, 0, 2}, {3, 2, 3}}));
  // Unknown characters: the unknown id, merged into one token.
  CHECK(same_tokens(unused.encode("xya"), {{0, 0, 2}, {1, 2, 3}}));
  o.add_dummy_prefix = true;
  CHECK(same_tokens(sentencepiece_model(pieces, {0, -10, -10, -10, -1, -2, -3, -10}, types, o).encode("a b"),
                    {{7, 0, 0}, {1, 0, 1}, {7, 1, 2}, {2, 2, 3}}));
}

TEST_CASE("sentencepiece_model: a character spelling a control piece", "[sentencepiece_model]") {
  const std::vector<std::string> pieces{"<unk>", "a", "b", "x", marker};
  const std::vector<sentencepiece_piece_type> types{sentencepiece_piece_type::unknown, sentencepiece_piece_type::normal,
                                                    sentencepiece_piece_type::normal, sentencepiece_piece_type::control,
                                                    sentencepiece_piece_type::normal};
  sentencepiece_model_options o;
  o.add_dummy_prefix = false;
  o.kind = sentencepiece_model_kind::bpe;
  // BPE looks a symbol up among the control pieces first: "x" is emitted as the control id with an empty span, and
  // SentencePiece does not advance past its byte, so "b" is reported from there (the library's quirk).
  CHECK(same_tokens(sentencepiece_model(pieces, {0, -1, -1, 0, -1}, types, o).encode("axb"),
                    {{1, 0, 1}, {3, 1, 1}, {2, 1, 2}}));
  // The unigram lattice never holds control pieces: "x" is unknown.
  o.kind = sentencepiece_model_kind::unigram;
  CHECK(same_tokens(sentencepiece_model(pieces, {0, -1, -1, 0, -1}, types, o).encode("axb"),
                    {{1, 0, 1}, {0, 1, 2}, {2, 2, 3}}));
}

TEST_CASE("sentencepiece_model: protobuf files and their errors", "[sentencepiece_model]") {
  const tiny t;
  const std::string good = t.serialized();
  const sentencepiece_model m = sentencepiece_model::from_bytes(good, "tiny.model");
  CHECK(same_tokens(m.encode("ab"), {{7, 0, 1}, {5, 1, 2}}));
  CHECK(m.type(10) == sentencepiece_piece_type::user_defined);
  CHECK(m.score(6) == -3.5f);
  CHECK(m.kind() == sentencepiece_model_kind::unigram);
  CHECK(sentencepiece_model::from_bytes(t.serialized(2)).kind() == sentencepiece_model_kind::bpe);

  // Unknown fields of every wire type, a group included, are skipped.
  std::string extra = good;
  put_int(extra, 99, 12345);
  put_tag(extra, 98, 1);
  extra += std::string(8, '\x01');
  put_bytes(extra, 97, "whatever");
  put_tag(extra, 96, 5);
  extra += std::string(4, '\x02');
  put_tag(extra, 95, 3);
  put_int(extra, 1, 7);
  put_tag(extra, 95, 4);
  CHECK(sentencepiece_model::from_bytes(extra).size() == 14);

  const auto error_of = [](const std::string& bytes) -> std::string {
    try {
      sentencepiece_model::from_bytes(bytes, "bad.model");
    } catch (const headlens::format_error& e) {
      return e.what() + std::string(" @") + std::to_string(e.byte_offset());
    }
    return "no error";
  };
  // Truncated varint: a tag byte with its continuation bit set and nothing after.
  CHECK(error_of(good + "\x80") == "headlens: bad.model at byte " + std::to_string(good.size()) +
                                       ": ModelProto: truncated varint (a field tag) @" + std::to_string(good.size()));
  // Wrong wire type: pieces (field 1) as a varint.
  CHECK(error_of(std::string("\x08\x01", 2)) ==
        "headlens: bad.model at byte 0: ModelProto: field 1 (pieces) has wire type 0 (varint), expected 2 "
        "(length-delimited) @0");
  // A length past the end.
  CHECK(error_of(std::string("\x0a\x05"
                             "ab",
                             4)) ==
        "headlens: bad.model at byte 1: ModelProto: length 5 of pieces runs past the end of ModelProto (2 bytes left) "
        "@1");
  // Unknown and unsupported model types.
  CHECK_THAT(error_of(t.serialized(7)),
             Catch::Contains("TrainerSpec.model_type is 7, expected 1 (UNIGRAM) or 2 (BPE)"));
  CHECK_THAT(error_of(t.serialized(3)), Catch::Contains("model_type is 3 (WORD), which headlens does not support"));
  CHECK_THAT(error_of(t.serialized(4)), Catch::Contains("(CHAR)"));
  // A piece type out of range, an empty piece, a nested truncation.
  std::string bad_type;
  put_bytes(bad_type, 1, piece_message("x", 0, 9));
  CHECK_THAT(error_of(bad_type), Catch::Contains("ModelProto.pieces[0]: type is 9, expected 1 (NORMAL) to 6 (BYTE)"));
  std::string empty_piece;
  put_bytes(empty_piece, 1, piece_message("", 0, 1));
  CHECK_THAT(error_of(empty_piece), Catch::Contains("piece is empty"));
  std::string nested;
  put_bytes(nested, 1,
            std::string("\x0a\x09"
                        "abc",
                        5));
  CHECK(error_of(nested) ==
        "headlens: bad.model at byte 3: ModelProto.pieces[0]: length 9 of piece runs past the end of "
        "ModelProto.pieces[0] (3 bytes left) @3");
  // Library-level checks: no unknown piece, a duplicate.
  std::string no_unk;
  put_bytes(no_unk, 1, piece_message("a", 0, 1));
  CHECK_THAT(error_of(no_unk), Catch::Contains("no piece has the type unknown"));
  std::string duplicate = good;
  put_bytes(duplicate, 1, piece_message("ab", 0, 1));
  CHECK_THAT(error_of(duplicate), Catch::Contains("piece 14 \"ab\" is already defined (as piece 6)"));
  // A broken charsmap: its trie size exceeds the blob.
  std::string charsmap = good;
  std::string normalizer;
  put_bytes(normalizer, 2,
            std::string("\xff\x00\x00\x00"
                        "abcd",
                        8));
  put_bytes(charsmap, 3, normalizer);
  CHECK_THAT(error_of(charsmap), Catch::Contains("precompiled_charsmap trie size is 255 bytes"));
  CHECK_THROWS_AS(sentencepiece_model::from_file(data_dir + "no-such.model"), headlens::io_error);
  CHECK_THROWS_WITH(sentencepiece_model({"a"}, {0, 1}, {sentencepiece_piece_type::unknown}),
                    Catch::Contains("pieces, scores and types have 1, 2 and 1 entries"));
}

}  // namespace test_sentencepiece_model
