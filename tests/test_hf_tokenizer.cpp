// Unit tests of the tokenizer.json reader (text/hf_tokenizer.hpp): tiny hand-written tokenizers, one per component,
// whose ids and byte spans are worked out by hand from the documented behaviour of Hugging Face `tokenizers`
// (including its alignment rules: a replacing character takes the span of the character it replaces, an inserted
// one the span of the character before it). The real files are checked in test_tokenizer_conformance.cpp.

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "headlens/text/hf_tokenizer.hpp"

namespace test_hf_tokenizer {

namespace {

using headlens::hf_tokenizer;

struct tok {
  std::int32_t id;
  std::size_t begin, end;
  bool operator==(const tok& o) const { return id == o.id && begin == o.begin && end == o.end; }
};

std::ostream& operator<<(std::ostream& os, const tok& t) { return os << t.id << "[" << t.begin << "," << t.end << ")"; }

std::vector<tok> encode(const hf_tokenizer& t, const std::string& text, bool special = true) {
  std::vector<tok> out;
  for (const auto& x : t.encode(text, special)) out.push_back({x.id, x.begin, x.end});
  return out;
}

/// A tokenizer.json with the given model and optional parts (JSON fragments, "null" when absent).
std::string make_json(const std::string& model, const std::string& normalizer = "null", const std::string& pre = "null",
                      const std::string& post = "null", const std::string& added = "[]") {
  return R"({"version":"1.0","truncation":null,"padding":null,"added_tokens":)" + added + R"(,"normalizer":)" +
         normalizer + R"(,"pre_tokenizer":)" + pre + R"(,"model":)" + model + R"(,"post_processor":)" + post +
         R"(,"decoder":null})";
}

const std::string small_bpe_vocab =
    R"("vocab":{"a":0,"b":1,"c":2,"ab":3,"abc":4,"<unk>":5,"<0xC3>":6,"<0xA9>":7,"ca":8})";

std::string small_bpe(const std::string& extra = "") {
  return R"({"type":"BPE","dropout":null,"unk_token":"<unk>",)" + extra + small_bpe_vocab +
         R"(,"merges":["a b",["ab","c"]]})";
}

const std::string whitespace_split = R"({"type":"WhitespaceSplit"})";

}  // namespace

TEST_CASE("hf_tokenizer BPE merges by rank, with both merge spellings", "[hf_tokenizer]") {
  const auto t = hf_tokenizer::from_json_text(make_json(small_bpe(), "null", whitespace_split));
  // "abc": a+b (rank 0) then ab+c (rank 1); "ab"; "ca" has no merge.
  CHECK(encode(t, "abc ab ca") == std::vector<tok>{{4, 0, 3}, {3, 4, 6}, {2, 7, 8}, {0, 8, 9}});
  CHECK(t.vocab_size() == 9);
  CHECK(t.token(4) == "abc");
  CHECK(t.token_id("ca") == 8);
  CHECK_FALSE(t.token_id("zz").has_value());
}

TEST_CASE("hf_tokenizer BPE unknown characters, fused or not", "[hf_tokenizer]") {
  const auto plain = hf_tokenizer::from_json_text(make_json(small_bpe(), "null", whitespace_split));
  CHECK(encode(plain, "axxb") == std::vector<tok>{{0, 0, 1}, {5, 1, 2}, {5, 2, 3}, {1, 3, 4}});
  const auto fused = hf_tokenizer::from_json_text(make_json(small_bpe(R"("fuse_unk":true,)"), "null", whitespace_split));
  CHECK(encode(fused, "axxb") == std::vector<tok>{{0, 0, 1}, {5, 1, 3}, {1, 3, 4}});
}

TEST_CASE("hf_tokenizer BPE byte fallback gives each byte token the whole character", "[hf_tokenizer]") {
  const auto t = hf_tokenizer::from_json_text(make_json(small_bpe(R"("byte_fallback":true,)"), "null", whitespace_split));
  // é = C3 A9: both byte tokens cover the two bytes of é; ü (C3 BC) lacks <0xBC> so it is unknown.
  CHECK(encode(t, "aé") == std::vector<tok>{{0, 0, 1}, {6, 1, 3}, {7, 1, 3}});
  CHECK(encode(t, "ü") == std::vector<tok>{{5, 0, 2}});
}

TEST_CASE("hf_tokenizer BPE ignore_merges takes a whole word from the vocabulary", "[hf_tokenizer]") {
  const auto t = hf_tokenizer::from_json_text(make_json(small_bpe(R"("ignore_merges":true,)"), "null", whitespace_split));
  CHECK(encode(t, "ca") == std::vector<tok>{{8, 0, 2}});
}

TEST_CASE("hf_tokenizer BPE continuing_subword_prefix and end_of_word_suffix", "[hf_tokenizer]") {
  const auto t = hf_tokenizer::from_json_text(make_json(
      R"({"type":"BPE","unk_token":"?","continuing_subword_prefix":"##","end_of_word_suffix":"</w>",
          "vocab":{"?":0,"a":1,"##b":2,"##c</w>":3,"ab":4,"abc</w>":5,"a</w>":6},"merges":["a ##b","ab ##c</w>"]})",
      "null", whitespace_split));
  CHECK(encode(t, "abc a") == std::vector<tok>{{5, 0, 3}, {6, 4, 5}});
}

TEST_CASE("hf_tokenizer ByteLevel pre-tokenizer and post-processor offsets", "[hf_tokenizer]") {
  const std::string model = R"({"type":"BPE","vocab":{"Ġ":0,"h":1,"i":2,"Ġh":3,"Ġhi":4,"Ã":5,"©":6,"Ã©":7},
                                "merges":["Ġ h","Ġh i","Ã ©"]})";
  const std::string pre = R"({"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true})";
  const auto t = hf_tokenizer::from_json_text(make_json(model, "null", pre));
  // " hi é": the added space shares h's span; " é" is Ġ (the space) and Ã© (both bytes of é).
  CHECK(encode(t, "hi é") == std::vector<tok>{{4, 0, 2}, {0, 2, 3}, {7, 3, 5}});
  const std::string post = R"({"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true})";
  const auto trimmed = hf_tokenizer::from_json_text(make_json(model, "null", pre, post));
  // The first token keeps its one added space; the lone Ġ later is trimmed to an empty span at its end.
  CHECK(encode(trimmed, "hi é") == std::vector<tok>{{4, 0, 2}, {0, 3, 3}, {7, 3, 5}});
  // Trimming counts characters of the original text: the added space before é shares é's two bytes, and
  // trimming its one trailing space leaves [0, 0), not [0, 1).
  CHECK(encode(trimmed, "é") == std::vector<tok>{{0, 0, 0}, {7, 0, 2}});
  // An lstrip added token's spelling for trimming is the text it matched, so its leading space is trimmed.
  const std::string added = R"([{"id":8,"content":"X","lstrip":true,"normalized":false,"special":true}])";
  const auto with_added = hf_tokenizer::from_json_text(make_json(model, "null", pre, "null", added));
  CHECK(encode(with_added, "hi X") == std::vector<tok>{{4, 0, 2}, {8, 2, 4}});
  const auto trimmed_added = hf_tokenizer::from_json_text(make_json(model, "null", pre, post, added));
  CHECK(encode(trimmed_added, "hi X") == std::vector<tok>{{4, 0, 2}, {8, 3, 4}});
}

TEST_CASE("hf_tokenizer Metaspace and Unigram Viterbi", "[hf_tokenizer]") {
  const std::string model = R"({"type":"Unigram","unk_id":0,"byte_fallback":false,
      "vocab":[["<unk>",0.0],["▁",-2.0],["▁a",-1.0],["b",-2.0],["▁ab",-2.5],["a",-3.0]]})";
  const std::string pre = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})";
  const auto t = hf_tokenizer::from_json_text(make_json(model, "null", pre));
  // "▁ab▁a" split before each ▁: ▁ab (-2.5) beats ▁a+b (-3); the prepended ▁ shares a's span, the replaced space is its own.
  CHECK(encode(t, "ab a") == std::vector<tok>{{4, 0, 2}, {2, 2, 4}});
  // x is unknown: ▁ (sharing x's span), <unk>, b.
  CHECK(encode(t, "xb") == std::vector<tok>{{1, 0, 1}, {0, 0, 1}, {3, 1, 2}});
  // Consecutive unknown characters fuse into one <unk>.
  CHECK(encode(t, "xyb") == std::vector<tok>{{1, 0, 1}, {0, 0, 2}, {3, 2, 3}});
  const std::string never = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"never","split":false})";
  const auto t2 = hf_tokenizer::from_json_text(make_json(model, "null", never));
  CHECK(encode(t2, "b a") == std::vector<tok>{{3, 0, 1}, {2, 1, 3}});
}

TEST_CASE("hf_tokenizer Metaspace prepend_scheme first prepends only at the start of the text", "[hf_tokenizer]") {
  const std::string model = R"({"type":"Unigram","unk_id":0,"byte_fallback":false,
      "vocab":[["<unk>",0.0],["▁",-2.0],["▁a",-1.0],["b",-2.0],["▁ab",-2.5],["a",-3.0]]})";
  const std::string pre = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":true})";
  const std::string added = R"([{"id":6,"content":"<s>","normalized":false,"special":true}])";
  const auto t = hf_tokenizer::from_json_text(make_json(model, "null", pre, "null", added));
  // After <s> the piece "ab a" does not start the text: no ▁ before a, so a (-3) + b (-2); then ▁a.
  CHECK(encode(t, "<s>ab a") == std::vector<tok>{{6, 0, 3}, {5, 3, 4}, {3, 4, 5}, {2, 5, 7}});
  CHECK(encode(t, "ab") == std::vector<tok>{{4, 0, 2}});
}

TEST_CASE("hf_tokenizer StripAccents drops every mark, BertNormalizer only nonspacing ones", "[hf_tokenizer]") {
  const std::string model = R"({"type":"WordLevel","unk_token":"?","vocab":{"?":0,"a":1}})";
  // U+0903 DEVANAGARI SIGN VISARGA is a spacing mark (Mc): StripAccents removes it, BertNormalizer keeps it.
  const auto strip = hf_tokenizer::from_json_text(make_json(model, R"({"type":"StripAccents"})", whitespace_split));
  CHECK(encode(strip, "a\xE0\xA4\x83") == std::vector<tok>{{1, 0, 1}});
  const auto bert = hf_tokenizer::from_json_text(make_json(model,
      R"({"type":"BertNormalizer","clean_text":false,"handle_chinese_chars":false,"strip_accents":true,"lowercase":false})", whitespace_split));
  CHECK(encode(bert, "a\xE0\xA4\x83") == std::vector<tok>{{0, 0, 4}});
  // Strip on the left only keeps the trailing spaces; WhitespaceSplit then drops them.
  const auto left = hf_tokenizer::from_json_text(make_json(model, R"({"type":"Strip","strip_left":true,"strip_right":false})",
                                                           R"({"type":"Split","pattern":{"String":"x"},"behavior":"Removed","invert":false})"));
  CHECK(encode(left, " a ") == std::vector<tok>{{0, 1, 3}});
}

TEST_CASE("hf_tokenizer Unigram without an unknown token", "[hf_tokenizer]") {
  const std::string model = R"({"type":"Unigram","unk_id":null,"vocab":[["a",-1.0],["b",-1.0],["ab",-1.5]]})";
  const auto t = hf_tokenizer::from_json_text(make_json(model));
  CHECK(encode(t, "abab") == std::vector<tok>{{2, 0, 2}, {2, 2, 4}});
  REQUIRE_THROWS_WITH(t.encode("ax"), Catch::Contains("no unk_id"));
}

TEST_CASE("hf_tokenizer Unigram byte fallback", "[hf_tokenizer]") {
  const std::string model = R"({"type":"Unigram","unk_id":0,"byte_fallback":true,
      "vocab":[["<unk>",0.0],["a",-1.0],["<0xC3>",-5.0],["<0xA9>",-5.0]]})";
  const auto t = hf_tokenizer::from_json_text(make_json(model));
  CHECK(encode(t, "aé") == std::vector<tok>{{1, 0, 1}, {2, 1, 3}, {3, 1, 3}});
}

TEST_CASE("hf_tokenizer BERT: normalizer, pre-tokenizer, WordPiece, BertProcessing", "[hf_tokenizer]") {
  const std::string model = R"({"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",
      "max_input_chars_per_word":100,"vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"hello":4,"un":5,"##aff":6,
      "##able":7,",":8,"你":9}})";
  const std::string norm = R"({"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,
      "strip_accents":null,"lowercase":true})";
  const std::string post = R"({"type":"BertProcessing","sep":["[SEP]",3],"cls":["[CLS]",2]})";
  const auto t = hf_tokenizer::from_json_text(make_json(model, norm, R"({"type":"BertPreTokenizer"})", post));
  // H é(2 bytes) l l o , space U N A F F A B L E space 你(3 bytes) !
  CHECK(encode(t, "Héllo, UNAFFABLE 你!") ==
        std::vector<tok>{{2, 0, 0}, {4, 0, 6}, {8, 6, 7}, {5, 8, 10}, {6, 10, 13}, {7, 13, 17}, {9, 18, 21}, {1, 21, 22}, {3, 0, 0}});
  CHECK(encode(t, "hello", false) == std::vector<tok>{{4, 0, 5}});
  // A word longer than max_input_chars_per_word is one [UNK].
  const auto t2 = hf_tokenizer::from_json_text(make_json(
      R"({"type":"WordPiece","unk_token":"[UNK]","max_input_chars_per_word":3,"vocab":{"[UNK]":0,"ab":1,"##cd":2}})",
      "null", whitespace_split));
  CHECK(encode(t2, "abcd ab") == std::vector<tok>{{0, 0, 4}, {1, 5, 7}});
}

TEST_CASE("hf_tokenizer Split behaviours", "[hf_tokenizer]") {
  const std::string model = R"({"type":"WordLevel","unk_token":"[UNK]","vocab":{"[UNK]":0,"the":1,"final":2,
      "countdown":3,"-":4,"the-":5,"final-":6,"-final":7,"-countdown":8,"--":9}})";
  auto with = [&](const std::string& behavior, bool invert = false, const std::string& pattern = R"({"String":"-"})") {
    return hf_tokenizer::from_json_text(make_json(model, "null",
        R"({"type":"Split","pattern":)" + pattern + R"(,"behavior":")" + behavior + R"(","invert":)" + (invert ? "true" : "false") + "}"));
  };
  const std::string text = "the-final--countdown";  // the 0-3, - 3, final 4-9, - 9, - 10, countdown 11-20
  CHECK(encode(with("Removed"), text) == std::vector<tok>{{1, 0, 3}, {2, 4, 9}, {3, 11, 20}});
  CHECK(encode(with("Isolated"), text) == std::vector<tok>{{1, 0, 3}, {4, 3, 4}, {2, 4, 9}, {4, 9, 10}, {4, 10, 11}, {3, 11, 20}});
  CHECK(encode(with("MergedWithPrevious"), text) == std::vector<tok>{{5, 0, 4}, {6, 4, 10}, {4, 10, 11}, {3, 11, 20}});
  CHECK(encode(with("MergedWithNext"), text) == std::vector<tok>{{1, 0, 3}, {7, 3, 9}, {4, 9, 10}, {8, 10, 20}});
  CHECK(encode(with("Contiguous"), text) == std::vector<tok>{{1, 0, 3}, {4, 3, 4}, {2, 4, 9}, {9, 9, 11}, {3, 11, 20}});
  // Inverted: the letters are the non-matches, so Removed drops the dashes; not inverted, it drops the letters.
  CHECK(encode(with("Removed", true, R"({"Regex":"\\p{L}+"})"), text) == std::vector<tok>{{1, 0, 3}, {2, 4, 9}, {3, 11, 20}});
  CHECK(encode(with("Removed", false, R"({"Regex":"\\p{L}+"})"), text) == std::vector<tok>{{4, 3, 4}, {9, 9, 11}});
}

TEST_CASE("hf_tokenizer Whitespace, Digits, Punctuation, CharDelimiterSplit", "[hf_tokenizer]") {
  const std::string model = R"({"type":"WordLevel","unk_token":"?","vocab":{"?":0,"ab":1,"1":2,"2":3,"!?":4,"12":5,"!":6}})";
  const auto t = hf_tokenizer::from_json_text(make_json(model, "null",
      R"({"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"Digits","individual_digits":true}]})"));
  CHECK(encode(t, "ab12!? ab") == std::vector<tok>{{1, 0, 2}, {2, 2, 3}, {3, 3, 4}, {4, 4, 6}, {1, 7, 9}});
  const auto contiguous = hf_tokenizer::from_json_text(make_json(model, "null",
      R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":false}]})"));
  CHECK(encode(contiguous, "ab12") == std::vector<tok>{{1, 0, 2}, {5, 2, 4}});
  const auto punct = hf_tokenizer::from_json_text(make_json(model, "null", R"({"type":"Punctuation","behavior":"Isolated"})"));
  CHECK(encode(punct, "ab!!") == std::vector<tok>{{1, 0, 2}, {6, 2, 3}, {6, 3, 4}});
  // ASCII symbols that are not Unicode punctuation ($, S category) still count, as in the reference.
  CHECK(encode(punct, "ab$") == std::vector<tok>{{1, 0, 2}, {0, 2, 3}});
  const auto delim = hf_tokenizer::from_json_text(make_json(model, "null", R"({"type":"CharDelimiterSplit","delimiter":"x"})"));
  CHECK(encode(delim, "abx12") == std::vector<tok>{{1, 0, 2}, {5, 3, 5}});
}

TEST_CASE("hf_tokenizer normalizers keep spans of the original text", "[hf_tokenizer]") {
  const std::string model = R"({"type":"WordLevel","unk_token":"?","vocab":{"?":0,"fi":1,"é":2,"i̇":3,"ab":4,"a":5,
      "b":6,"▁a":7,"e":8,"x":9}})";
  auto with = [&](const std::string& norm) { return hf_tokenizer::from_json_text(make_json(model, norm, whitespace_split)); };
  // NFKC: the ligature ﬁ (3 bytes) becomes f, i, both with its span.
  CHECK(encode(with(R"({"type":"NFKC"})"), "ﬁ") == std::vector<tok>{{1, 0, 3}});
  // NFC composes e + U+0301: the composed é takes the span of the e it replaces (the reference drops the mark's).
  CHECK(encode(with(R"({"type":"NFC"})"), "e\xCC\x81") == std::vector<tok>{{2, 0, 1}});
  // NFD then StripAccents: é -> e.
  CHECK(encode(with(R"({"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"}]})"), "é") == std::vector<tok>{{8, 0, 2}});
  CHECK(encode(with(R"({"type":"NFKD"})"), "ﬁ") == std::vector<tok>{{1, 0, 3}});
  // Lowercase İ (2 bytes) is i + U+0307.
  CHECK(encode(with(R"({"type":"Lowercase"})"), "İ") == std::vector<tok>{{3, 0, 2}});
  CHECK(encode(with(R"({"type":"Strip","strip_left":true,"strip_right":true})"), "  ab  ") == std::vector<tok>{{4, 2, 4}});
  // Regex Replace of a whitespace run by "x": the x takes the span of the run's last character.
  CHECK(encode(hf_tokenizer::from_json_text(make_json(model, R"({"type":"Replace","pattern":{"Regex":"\\s+"},"content":"x"})")),
               "a \t") == std::vector<tok>{{0, 0, 3}});
  CHECK(encode(with(R"({"type":"Replace","pattern":{"String":"b"},"content":"a"})"), "b") == std::vector<tok>{{5, 0, 1}});
  CHECK(encode(with(R"({"type":"Prepend","prepend":"▁"})"), "a") == std::vector<tok>{{7, 0, 1}});
}

TEST_CASE("hf_tokenizer added tokens: special, normalized, lstrip, single_word", "[hf_tokenizer]") {
  const std::string added = R"([{"id":9,"content":"<s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
      {"id":10,"content":"XYZ","single_word":false,"lstrip":true,"rstrip":false,"normalized":true,"special":false},
      {"id":11,"content":"ab","single_word":true,"lstrip":false,"rstrip":true,"normalized":false,"special":false}])";
  const auto t = hf_tokenizer::from_json_text(make_json(small_bpe(), R"({"type":"Lowercase"})", whitespace_split, "null", added));
  // <s> is cut from the original text; XYZ matches its lowercased form in the normalised text and takes the space
  // before it (lstrip); "c" is left to the model.
  CHECK(encode(t, "b<s> XYZc") == std::vector<tok>{{1, 0, 1}, {9, 1, 4}, {10, 4, 8}, {2, 8, 9}});
  // single_word: "ab " alone is the added token (with its space, rstrip); "ab" inside "abc" is not.
  CHECK(encode(t, "ab abc") == std::vector<tok>{{11, 0, 3}, {4, 3, 6}});
  CHECK(t.vocab_size() == 12);
  CHECK(t.token(10) == "XYZ");
  CHECK(t.token_id("<s>") == 9);
}

TEST_CASE("hf_tokenizer TemplateProcessing and RobertaProcessing", "[hf_tokenizer]") {
  const std::string added = R"([{"id":9,"content":"<s>","special":true},{"id":10,"content":"</s>","special":true}])";
  const std::string tmpl = R"({"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},
      {"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}}],"pair":[],
      "special_tokens":{"<s>":{"id":"<s>","ids":[9],"tokens":["<s>"]},"</s>":{"id":"</s>","ids":[10],"tokens":["</s>"]}}})";
  const auto t = hf_tokenizer::from_json_text(make_json(small_bpe(), "null", whitespace_split, tmpl, added));
  CHECK(encode(t, "ab") == std::vector<tok>{{9, 0, 0}, {3, 0, 2}, {10, 0, 0}});
  CHECK(encode(t, "ab", false) == std::vector<tok>{{3, 0, 2}});
  const std::string roberta = R"({"type":"RobertaProcessing","sep":["</s>",10],"cls":["<s>",9],"trim_offsets":true,"add_prefix_space":false})";
  const auto r = hf_tokenizer::from_json_text(make_json(small_bpe(), "null", whitespace_split, roberta, added));
  CHECK(encode(r, "ab c") == std::vector<tok>{{9, 0, 0}, {3, 0, 2}, {2, 3, 4}, {10, 0, 0}});
}

TEST_CASE("hf_tokenizer rejects malformed files naming the JSON path", "[hf_tokenizer]") {
  using headlens::format_error;
  auto load = [](const std::string& s) { return hf_tokenizer::from_json_text(s, "tok.json"); };
  REQUIRE_THROWS_AS(load("{"), format_error);
  REQUIRE_THROWS_WITH(load("{"), Catch::Contains("tok.json") && Catch::Contains("invalid JSON"));
  REQUIRE_THROWS_WITH(load("[]"), Catch::Contains("(root) is an array, expected an object"));
  REQUIRE_THROWS_WITH(load("[1e999999]"), Catch::Contains("invalid JSON") && Catch::Contains("number overflow"));
  REQUIRE_THROWS_WITH(load(R"({"version":"1.0"})"), Catch::Contains("(root).model is missing"));
  REQUIRE_THROWS_WITH(load(R"({"model":{"type":"BPE","vocab":{},"merges":[]},"colour":1})"),
                      Catch::Contains("(root).colour is not a field this reader knows"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), "null",
                          R"({"type":"Sequence","pretokenizers":[{"type":"Whitespace"},{"type":"Foo"}]})")),
                      Catch::Contains("pre_tokenizer.pretokenizers[1].type is \"Foo\", expected one of"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), R"({"type":"Sequence","normalizers":[{"type":"Bar"}]})")),
                      Catch::Contains("normalizer.normalizers[0].type is \"Bar\""));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), "null", R"({"type":"Split","pattern":{"Regex":"a(b"},"behavior":"Isolated","invert":false})")),
                      Catch::Contains("pre_tokenizer.pattern regex \"a(b\" is not supported") && Catch::Contains("at offset 3"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), "null", R"({"type":"Split","pattern":{"String":"a"},"behavior":"Sideways","invert":false})")),
                      Catch::Contains("pre_tokenizer.behavior is \"Sideways\", expected one of Removed"));
  REQUIRE_THROWS_WITH(load(make_json(R"({"type":"BPE","dropout":0.1,"vocab":{},"merges":[]})")),
                      Catch::Contains("model.dropout is 0.1, expected null"));
  REQUIRE_THROWS_WITH(load(make_json(R"({"type":"BPE","vocab":{"a":0},"merges":["a q"]})")),
                      Catch::Contains("model.merges[0] needs \"q\", which is not in model.vocab"));
  REQUIRE_THROWS_WITH(load(make_json(R"({"type":"BPE","vocab":{"a":0},"merges":["a a a"]})")),
                      Catch::Contains("model.merges[0] is \"a a a\", expected \"left right\""));
  REQUIRE_THROWS_WITH(load(make_json(R"({"type":"BPE","vocab":{"a":0},"merges":[7]})")),
                      Catch::Contains("model.merges[0] is 7"));
  REQUIRE_THROWS_WITH(load(make_json(R"({"type":"BPE","vocab":{"a":-1},"merges":[]})")),
                      Catch::Contains("model.vocab[\"a\"] is -1, expected 0 to"));
  REQUIRE_THROWS_WITH(load(make_json(R"({"type":"BPE","unk_token":"<unk>","vocab":{"a":0},"merges":[]})")),
                      Catch::Contains("model.unk_token is \"<unk>\", which is not in model.vocab"));
  REQUIRE_THROWS_WITH(load(make_json(R"({"type":"Magic","vocab":{}})")), Catch::Contains("model.type is \"Magic\""));
  REQUIRE_THROWS_WITH(load(make_json(R"({"type":"Unigram","unk_id":5,"vocab":[["a",0.0]]})")),
                      Catch::Contains("model.unk_id is 5, expected 0 to 0"));
  REQUIRE_THROWS_WITH(load(make_json(R"({"type":"Unigram","vocab":[["a","high"]]})")),
                      Catch::Contains("model.vocab[0] is [\"a\",\"high\"], expected [\"piece\", score]"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), R"({"type":"Precompiled","precompiled_charsmap":"AA=="})")),
                      Catch::Contains("normalizer.precompiled_charsmap is 1 bytes, too short"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), R"({"type":"Precompiled","precompiled_charsmap":"not base64!"})")),
                      Catch::Contains("normalizer.precompiled_charsmap is not base64"));
  // A trie size of 0x10 bytes with only 4 bytes after it.
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), R"({"type":"Precompiled","precompiled_charsmap":"EAAAAAAAAAA="})")),
                      Catch::Contains("declares a trie of 16 bytes"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), "null", "null",
                          R"({"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<x>","type_id":0}}],"pair":[],"special_tokens":{}})")),
                      Catch::Contains("post_processor.single[0].SpecialToken.id is \"<x>\", which special_tokens does not define"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), "null", "null", R"({"type":"BertProcessing","sep":["[SEP]",500],"cls":["[CLS]",0]})")),
                      Catch::Contains("post_processor.sep refers to id 500"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), "null", R"({"type":"Metaspace","replacement":"ab","prepend_scheme":"always"})")),
                      Catch::Contains("pre_tokenizer.replacement is \"ab\", expected a single character"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), "null", R"({"type":"Metaspace","replacement":"_","prepend_scheme":"sometimes"})")),
                      Catch::Contains("pre_tokenizer.prepend_scheme is \"sometimes\", expected one of first, always, never"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), "null", "null", "null", R"([{"id":"x","content":"a"}])")),
                      Catch::Contains("added_tokens[0].id is a string, expected an integer"));
  REQUIRE_THROWS_WITH(load(make_json(small_bpe(), R"({"type":"Strip","strip_left":"yes"})")),
                      Catch::Contains("normalizer.strip_left is a string, expected true or false"));
  REQUIRE_THROWS_AS(hf_tokenizer::from_file("/nonexistent/tokenizer.json"), headlens::io_error);
}

TEST_CASE("hf_tokenizer rejects bad arguments", "[hf_tokenizer]") {
  const auto t = hf_tokenizer::from_json_text(make_json(small_bpe(), "null", whitespace_split));
  REQUIRE_THROWS_WITH(t.token(9), Catch::Contains("token id 9 is out of range"));
  REQUIRE_THROWS_WITH(t.token(-1), Catch::Contains("token id -1 is out of range"));
  REQUIRE_THROWS_AS(t.encode("a\xC3"), headlens::argument_error);
  REQUIRE_THROWS_WITH(t.encode("ab\xFF"), Catch::Contains("not valid UTF-8") && Catch::Contains("offset 2"));
  const auto wl = hf_tokenizer::from_json_text(make_json(R"({"type":"WordLevel","vocab":{"a":0}})", "null", whitespace_split));
  REQUIRE_THROWS_WITH(wl.encode("b"), Catch::Contains("no unk_token"));
  CHECK(t.encode("").empty());
}

TEST_CASE("hf_tokenizer Precompiled normalizer matches tokenizers on a real SentencePiece charsmap", "[hf_tokenizer]") {
  // tools/make_hf_precompiled_fixture.py (a Unigram model and nmt_nfkc charsmap trained by sentencepiece) and
  // tools/hf_precompiled_reference.mjs (its encodings by the real tokenizers 0.23.2).
  const std::string dir = std::string(HEADLENS_TEST_DATA_DIR) + "/";
  const auto t = hf_tokenizer::from_file(dir + "hf_tokenizer/precompiled_unigram.json");
  std::ifstream ref_in(dir + "hf_tokenizer/precompiled_unigram.reference.json");
  REQUIRE(ref_in.good());
  const auto ref = nlohmann::json::parse(ref_in);
  REQUIRE(ref.at("texts").size() >= 300);
  REQUIRE(ref.at("texts").size() == ref.at("encodings").size());
  std::size_t mismatches = 0;
  for (std::size_t k = 0; k < ref.at("texts").size(); ++k) {
    const std::string text = ref.at("texts")[k].get<std::string>();
    std::vector<std::size_t> got;
    for (const auto& x : t.encode(text)) got.insert(got.end(), {static_cast<std::size_t>(x.id), x.begin, x.end});
    if (got != ref.at("encodings")[k].get<std::vector<std::size_t>>()) {
      if (++mismatches <= 3) WARN("mismatch on reference string " << k << ": " << text);
    }
  }
  CHECK(mismatches == 0);
}

}  // namespace test_hf_tokenizer
