// Tests of token-to-word alignment, token-to-word maps and windows (headlens/analysis/alignment.hpp). Expected
// values are worked out by hand in the comments.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <headlens/analysis/alignment.hpp>
#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/features.hpp>
#include <headlens/text/sentencepiece.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace test_alignment {

using headlens::align_tokens;
using headlens::argument_error;
using headlens::char_span;
using headlens::document;
using headlens::make_windows;
using headlens::shape_error;
using headlens::token_alignment;
using headlens::word_window;

namespace {

// CoNLL-U text from rows whose columns are separated by single spaces (padded with `_` to 10 columns).
std::string conllu(const std::vector<std::string>& rows) {
  std::string out;
  for (const std::string& row : rows) {
    if (row.empty() || row[0] == '#') {
      out += row;
    } else {
      std::istringstream fields(row);
      std::string field;
      int count = 0;
      while (fields >> field) {
        if (count++ > 0) out += '\t';
        out += field;
      }
      for (; count < 10; ++count) out += "\t_";
    }
    out += '\n';
  }
  return out;
}

std::string w(const std::string& id, const std::string& form, const std::string& upos, int head,
              const std::string& deprel, const std::string& misc = "_") {
  return id + " " + form + " " + form + " " + upos + " _ _ " + std::to_string(head) + " " + deprel + " _ " + misc;
}

// "Hello, world!" and "I don't know." in two paragraphs; "don't" is a multiword token do + n't.
document hello_doc() {
  const std::vector<document> docs = headlens::parse_conllu(conllu({
      "# newdoc id = hello",
      "# newpar",
      "# sent_id = a",
      w("1", "Hello", "INTJ", 3, "discourse", "SpaceAfter=No"),
      w("2", ",", "PUNCT", 1, "punct"),
      w("3", "world", "NOUN", 0, "root", "SpaceAfter=No"),
      w("4", "!", "PUNCT", 3, "punct"),
      "",
      "# newpar",
      "# sent_id = b",
      w("1", "I", "PRON", 4, "nsubj"),
      "2-3 don't",
      w("2", "do", "AUX", 4, "aux"),
      w("3", "n't", "PART", 4, "advmod"),
      w("4", "know", "VERB", 0, "root", "SpaceAfter=No"),
      w("5", ".", "PUNCT", 4, "punct"),
      "",
  }));
  REQUIRE(docs.size() == 1);
  return docs[0];
}

}  // namespace

TEST_CASE("alignment: a document's surface text and word spans", "[alignment]") {
  const headlens::document_text t = headlens::document_surface_text(hello_doc());
  // Words 0..3 then a paragraph break, then I, do + n't written as "don't", know, "." (no space before).
  CHECK(t.text == "Hello, world!\nI don't know.");
  const std::vector<char_span> expected = {{0, 5},   {5, 6},   {7, 12},  {12, 13}, {14, 15},
                                           {16, 18}, {18, 21}, {22, 26}, {26, 27}};
  REQUIRE(t.words.size() == expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k) {
    CHECK(t.words[k] == expected[k]);
    CHECK(t.text.substr(t.words[k].begin, t.words[k].size()) == hello_doc().words[k].form);
  }
}

TEST_CASE("alignment: a multiword token whose words do not spell it", "[alignment]") {
  const std::vector<document> docs = headlens::parse_conllu(conllu({
      w("1", "Voy", "VERB", 0, "root"),
      "2-3 del",
      w("2", "de", "ADP", 4, "case"),
      w("3", "el", "DET", 4, "det"),
      w("4", "mercado", "NOUN", 1, "obl"),
      "",
  }));
  const headlens::document_text t = headlens::document_surface_text(docs.at(0));
  CHECK(t.text == "Voy del mercado");
  // "del" [4, 7) is shared in proportion to "de" and "el" (2 : 2): 3 * 2 / 4 = 1 character for "de", the rest
  // for "el".
  CHECK(t.words[1] == char_span{4, 5});
  CHECK(t.words[2] == char_span{5, 7});
  CHECK(t.words[3] == char_span{8, 15});
}

TEST_CASE("alignment: tokens to words by character overlap", "[alignment]") {
  // "Hello, world!" as [CLS] Hello , wor ld ! [SEP], the special tokens with empty spans.
  const std::vector<char_span> words = {{0, 5}, {5, 6}, {7, 12}, {12, 13}};
  const std::vector<char_span> tokens = {{0, 0}, {0, 5}, {5, 6}, {7, 10}, {10, 12}, {12, 13}, {13, 13}};
  const token_alignment a = align_tokens(tokens, words);
  CHECK(a.word_of_token == std::vector<headlens::doc_index>{-1, 0, 1, 2, 2, 3, -1});
  CHECK(a.tokens_per_word == std::vector<headlens::Index>{1, 1, 2, 1});
  CHECK(a.unaligned_tokens == 2);
  CHECK(a.words_without_tokens == 0);
  CHECK(a.tokens() == 7);
  CHECK(a.words() == 4);

  // A token over two words goes to the one it overlaps most ("ld!" [10, 13): world 2, ! 1), ties to the earlier
  // ("d!" [11, 13): 1 and 1 -> world); "!" is then left without tokens. A space-only token belongs to none.
  const token_alignment b = align_tokens(std::vector<char_span>{{0, 5}, {5, 6}, {6, 7}, {7, 10}, {10, 13}}, words);
  CHECK(b.word_of_token == std::vector<headlens::doc_index>{0, 1, -1, 2, 2});
  CHECK(b.words_without_tokens == 1);
  const token_alignment c = align_tokens(std::vector<char_span>{{7, 11}, {11, 13}}, words);
  CHECK(c.word_of_token == std::vector<headlens::doc_index>{2, 2});

  // SentencePiece tokens (byte spans; "▁" alone covers nothing) work the same way.
  const std::vector<headlens::sentencepiece_token> pieces = {{5, 0, 5}, {9, 5, 6}, {3, 6, 6}, {7, 7, 12}, {8, 12, 13}};
  CHECK(align_tokens(pieces, words).word_of_token == std::vector<headlens::doc_index>{0, 1, -1, 2, 3});

  // Through a document's own text: "I" [14, 15), "don" [16, 19) overlaps do (2) and n't (1) -> do.
  const document doc = hello_doc();
  const token_alignment d = align_tokens(std::vector<char_span>{{14, 15}, {16, 19}, {19, 21}}, doc);
  CHECK(d.word_of_token == std::vector<headlens::doc_index>{4, 5, 6});
  CHECK(d.words() == 9);
  CHECK(d.words_without_tokens == 6);

  REQUIRE_THROWS_AS(align_tokens(std::vector<char_span>{{3, 2}}, words), argument_error);
  REQUIRE_THROWS_WITH(align_tokens(std::vector<char_span>{{3, 2}}, words), Catch::Contains("token 0 has span [3, 2)"));
  REQUIRE_THROWS_WITH(align_tokens(tokens, std::vector<char_span>{{0, 5}, {4, 6}}),
                      Catch::Contains("word 1 starts at 4 before word 0 ends at 5"));
}

TEST_CASE("alignment: token maps to word maps, by hand", "[alignment]") {
  const std::vector<char_span> words = {{0, 5}, {5, 6}, {7, 12}, {12, 13}};
  const std::vector<char_span> tokens = {{0, 0}, {0, 5}, {5, 6}, {7, 10}, {10, 12}, {12, 13}, {13, 13}};
  const token_alignment a = align_tokens(tokens, words);
  // Tokens: 0 [CLS], 1 Hello, 2 ",", 3 wor, 4 ld, 5 !, 6 [SEP].
  headlens::matrix<double> t = headlens::matrix<double>::Zero(7, 7);
  t(0, 0) = 1;                                   // [CLS]: ignored
  t(1, 0) = 0.5, t(1, 3) = 0.5;                  // Hello: half to [CLS], half to wor
  t(2, 1) = t(2, 3) = t(2, 4) = t(2, 6) = 0.25;  // ",": Hello, wor, ld, [SEP]
  t(3, 4) = 1;                                   // wor -> ld
  t(4, 3) = 0.5, t(4, 5) = 0.5;                  // ld -> wor, !
  t(5, 6) = 1;                                   // ! -> [SEP]
  t(6, 6) = 1;                                   // [SEP]: ignored
  const auto r = headlens::token_to_word_map(t, a);
  // Hello: kept 0.5 on world, dropped 0.5 -> [0, 0, 1, 0].
  // ",": Hello 0.25, world 0.25 + 0.25, dropped 0.25 -> [1/3, 0, 2/3, 0].
  // world = mean of wor (world 1) and ld (world 0.5, ! 0.5) -> [0, 0, 0.75, 0.25], nothing dropped.
  // !: everything dropped -> a zero row.
  headlens::matrix<double> expected(4, 4);
  expected << 0, 0, 1, 0,      //
      1.0 / 3, 0, 2.0 / 3, 0,  //
      0, 0, 0.75, 0.25,        //
      0, 0, 0, 0;
  CHECK(r.map.isApprox(expected, 1e-12));
  CHECK(r.dropped_mass[0] == 0.5);
  CHECK(r.dropped_mass[1] == 0.25);
  CHECK(r.dropped_mass[2] == 0.0);
  CHECK(r.dropped_mass[3] == 1.0);
  CHECK(r.mean_dropped_mass == Approx((0.5 + 0.25 + 0 + 1) / 4));
  CHECK(r.zero_rows == 1);

  // Without renormalising, rows keep what was left: Hello [0, 0, 0.5, 0]; "," [0.25, 0, 0.5, 0].
  const auto raw = headlens::token_to_word_map(t, a, false);
  CHECK(raw.map(0, 2) == 0.5);
  CHECK(raw.map(1, 0) == 0.25);
  CHECK(raw.map(1, 2) == 0.5);
  CHECK(raw.map(2, 2) == 0.75);

  // float maps stay float.
  const headlens::matrix<float> tf = t.cast<float>();
  const auto rf = headlens::token_to_word_map(tf, a);
  CHECK(rf.map(2, 3) == 0.25f);

  // The word map feeds the accumulators directly (rows sum to 1 or 0).
  document doc;
  for (const char* form : {"Hello", ",", "world", "!"}) {
    headlens::word wd;
    wd.form = form;
    wd.upos = "_";
    wd.head = headlens::word::no_head;
    doc.words.push_back(wd);
  }
  headlens::head_feature_accumulator acc;
  acc.add(r.map, headlens::prepared_document(doc));
  CHECK(acc.evidence().positional.rows == 3);  // the zero row of "!" is skipped

  REQUIRE_THROWS_AS(headlens::token_to_word_map(headlens::matrix<double>::Zero(6, 7), a), shape_error);
  REQUIRE_THROWS_WITH(headlens::token_to_word_map(headlens::matrix<double>::Zero(6, 6), a),
                      Catch::Contains("token map is 6 x 6, expected 7 x 7"));
}

TEST_CASE("alignment: a tensor of token maps to word maps", "[alignment]") {
  // Two "heads" over 3 tokens of 2 words (tokens 0 and 1 are word 0, token 2 is word 1).
  const std::vector<char_span> words = {{0, 4}, {5, 7}};
  const std::vector<char_span> tokens = {{0, 2}, {2, 4}, {5, 7}};
  const token_alignment a = align_tokens(tokens, words);
  headlens::tensor<float> maps;
  maps.shape = {1, 2, 3, 3};
  maps.data = {1, 0, 0, 0.5f, 0.5f, 0, 0, 0.25f, 0.75f,  // head 0
               0, 0, 1, 0,    0,    1, 1, 0,     0};     // head 1
  const headlens::tensor<float> w = headlens::token_to_word_maps(maps, a);
  CHECK(w.shape == std::vector<headlens::Index>{1, 2, 2, 2});
  // Head 0: word 0 = mean of [1, 0] and [1, 0] -> [1, 0]; word 1 = [0.25, 0.75]. Head 1: [0, 1] and [1, 0].
  CHECK(w.data == std::vector<float>{1, 0, 0.25f, 0.75f, 0, 1, 1, 0});
  maps.shape = {2, 3, 3};
  maps.data.resize(18);
  CHECK(headlens::token_to_word_maps(maps, a).shape == std::vector<headlens::Index>{2, 2, 2});
  maps.shape = {2, 9};
  REQUIRE_THROWS_WITH(headlens::token_to_word_maps(maps, a),
                      Catch::Contains("token maps have 2 dimensions ending in 2 x 9, expected [..., 3, 3]"));
}

TEST_CASE("alignment: windows and the words each owns", "[alignment][windows]") {
  // 10 words, windows of 4 every 2: [0,4) [2,6) [4,8) [6,10). Centrality min(left, right), document edges
  // unlimited: word 2: [0,4) -> min(inf, 1) = 1, [2,6) -> 0: first. Word 3: 0 vs min(1, 2) = 1: second.
  // Word 4: [2,6) -> 1, [4,8) -> 0: second. Word 5: 0 vs 1: third. Word 6: [4,8) -> 1, [6,10) -> min(0, inf) = 0:
  // third. Word 7: 0 vs 1: fourth.
  const std::vector<word_window> win = make_windows(10, 4, 2);
  const std::vector<word_window> expected = {{0, 4, 0, 3}, {2, 6, 3, 5}, {4, 8, 5, 7}, {6, 10, 7, 10}};
  CHECK(win == expected);
  // Not overlapping: each window owns itself; the last one is shorter.
  CHECK(make_windows(10, 4, 4) == std::vector<word_window>{{0, 4, 0, 4}, {4, 8, 4, 8}, {8, 10, 8, 10}});
  CHECK(make_windows(5, 8, 4) == std::vector<word_window>{{0, 5, 0, 5}});
  CHECK(make_windows(0, 8, 4).empty());
  CHECK(headlens::whole_document(7) == word_window{0, 7, 0, 7});

  REQUIRE_THROWS_WITH(make_windows(10, 4, 0), Catch::Contains("stride is 0, expected 1 <= stride <= max_words = 4"));
  REQUIRE_THROWS_AS(make_windows(10, 4, 5), argument_error);
  REQUIRE_THROWS_AS(make_windows(10, 0, 1), argument_error);
  REQUIRE_THROWS_AS(make_windows(-1, 4, 2), argument_error);
}

TEST_CASE("alignment: windows partition the words for any size and stride", "[alignment][windows]") {
  for (headlens::Index n : {1, 2, 7, 31, 100, 257}) {
    for (headlens::Index size : {1, 3, 8, 64}) {
      for (headlens::Index stride = 1; stride <= size; stride += (size > 8 ? 13 : 1)) {
        const std::vector<word_window> win = make_windows(n, size, stride);
        INFO("n " << n << " size " << size << " stride " << stride);
        REQUIRE(!win.empty());
        CHECK(win.front().begin == 0);
        CHECK(win.back().end == n);
        headlens::Index next = 0;
        for (const word_window& x : win) {
          CHECK(x.size() <= size);
          CHECK(x.size() >= 1);
          CHECK(x.begin <= x.own_begin);
          CHECK(x.own_end <= x.end);
          if (x.own_begin < x.own_end) {
            CHECK(x.own_begin == next);  // owned ranges follow one another with no gap or overlap
            next = x.own_end;
          }
        }
        CHECK(next == n);
      }
    }
  }
}

TEST_CASE("alignment: fit_windows shrinks a window by hand", "[alignment][windows]") {
  // Tokens per word; a range fits when it makes at most 6 tokens.
  const std::vector<int> tokens = {1, 1, 1, 5, 1, 1, 1, 1, 1, 1};
  int calls = 0;
  auto fits = [&](headlens::Index b, headlens::Index e) {
    ++calls;
    int sum = 0;
    for (headlens::Index i = b; i < e; ++i) sum += tokens[static_cast<std::size_t>(i)];
    return sum <= 6;
  };
  // [0, 4) makes 8 tokens and owns [0, 3): owned alone (3 tokens) fits, context c = 0 on the left is all there
  // is, c = 1 adds word 3 (5 tokens): 8, too many. So [0, 3) owning [0, 3).
  // [2, 6) owns [3, 5) (6 tokens): fits tight, c = 1 adds words 2 and 5: 8. So [3, 5).
  // [4, 8) and [6, 10) make 4 tokens each: they fit and stay as they are.
  const std::vector<word_window> in = {{0, 4, 0, 3}, {2, 6, 3, 5}, {4, 8, 5, 7}, {6, 10, 7, 10}};
  const std::vector<word_window> expected = {{0, 3, 0, 3}, {3, 5, 3, 5}, {4, 8, 5, 7}, {6, 10, 7, 10}};
  CHECK(headlens::fit_windows(in, fits) == expected);

  // A window whose owned words alone are too many is split in halves: [0, 10) owning all (14 tokens) ->
  // [0, 5) 9 tokens -> [0, 2) and [2, 5) (7) -> [2, 3), [3, 5) (6 fits); [5, 10) 5 tokens fits.
  // [0, 2) widens to c = 1 ([0, 3), 3 tokens; c = 2 adds word 3: 8). [2, 3) widens: c = 1 gives [1, 4) = 7, no:
  // [2, 3). [3, 5) as before. [5, 10) widens by c = 1 to [4, 10): 6 tokens.
  const std::vector<word_window> split = headlens::fit_windows(std::vector<word_window>{{0, 10, 0, 10}}, fits);
  CHECK(split == std::vector<word_window>{{0, 3, 0, 2}, {2, 3, 2, 3}, {3, 5, 3, 5}, {4, 10, 5, 10}});

  // A single word that cannot fit stays, alone; a window owning nothing that does not fit is dropped.
  const std::vector<int> huge = {1, 9, 1};
  auto fits_huge = [&](headlens::Index b, headlens::Index e) {
    int sum = 0;
    for (headlens::Index i = b; i < e; ++i) sum += huge[static_cast<std::size_t>(i)];
    return sum <= 6;
  };
  CHECK(headlens::fit_windows(std::vector<word_window>{{0, 3, 0, 3}}, fits_huge) ==
        std::vector<word_window>{{0, 1, 0, 1}, {1, 2, 1, 2}, {2, 3, 2, 3}});
  CHECK(headlens::fit_windows(std::vector<word_window>{{0, 3, 1, 1}}, fits_huge).empty());
  // A window that fits costs one call.
  calls = 0;
  CHECK(headlens::fit_windows(std::vector<word_window>{{4, 8, 4, 8}}, fits).size() == 1);
  CHECK(calls == 1);
}

TEST_CASE("alignment: fit_windows keeps the partition and the widest context that fits", "[alignment][windows]") {
  std::uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (int trial = 0; trial < 200; ++trial) {
    const headlens::Index n = 1 + headlens::Index(next() % 120);
    std::vector<int> tokens(static_cast<std::size_t>(n));
    for (int& t : tokens) t = 1 + int(next() % (next() % 7 == 0 ? 12 : 3));
    const int limit = 4 + int(next() % 20);
    auto count = [&](headlens::Index b, headlens::Index e) {
      int sum = 0;
      for (headlens::Index i = b; i < e; ++i) sum += tokens[static_cast<std::size_t>(i)];
      return sum;
    };
    auto fits = [&](headlens::Index b, headlens::Index e) { return count(b, e) <= limit; };
    const headlens::Index size = 1 + headlens::Index(next() % 40);
    const headlens::Index stride = 1 + headlens::Index(next() % std::uint32_t(size));
    const std::vector<word_window> in = make_windows(n, size, stride);
    const std::vector<word_window> out = headlens::fit_windows(in, fits);
    INFO("trial " << trial << " n " << n << " limit " << limit << " size " << size << " stride " << stride);
    headlens::Index owned = 0;
    for (const word_window& x : out) {
      REQUIRE(x.begin <= x.own_begin);
      REQUIRE(x.own_end <= x.end);
      if (x.own_begin == x.own_end) {  // owns nothing: kept only when it fits as it is
        CHECK(fits(x.begin, x.end));
        continue;
      }
      CHECK(x.own_begin == owned);  // every word owned once, in order
      owned = x.own_end;
      // It fits, or it is one word too long on its own.
      CHECK((fits(x.begin, x.end) || (x.size() == 1 && x.own_end - x.own_begin == 1)));
      // The window it came from: the input window owning this output's words.
      const auto source = std::find_if(in.begin(), in.end(), [&](const word_window& w) {
        return w.own_begin <= x.own_begin && x.own_end <= w.own_end;
      });
      REQUIRE(source != in.end());
      CHECK(source->begin <= x.begin);
      CHECK(x.end <= source->end);
      if (*source == x) continue;
      // Shrunk: one more word of context on each side (clamped to the source window) would not fit.
      const headlens::Index c = std::max(x.own_begin - x.begin, x.end - x.own_end);
      const headlens::Index wider_b = std::max(source->begin, x.own_begin - (c + 1));
      const headlens::Index wider_e = std::min(source->end, x.own_end + (c + 1));
      if (wider_b != x.begin || wider_e != x.end) CHECK_FALSE(fits(wider_b, wider_e));
    }
    CHECK(owned == n);
  }
}

}  // namespace test_alignment
