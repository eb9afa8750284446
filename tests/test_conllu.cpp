// Tests of the CoNLL-U reader (headlens/analysis/conllu.hpp). Expected values are worked out by hand from the
// documents written below, or counted with grep on the GUM files, never taken from the reader's own output.
#include <catch2/catch.hpp>
#include <fstream>
#include <headlens/analysis/conllu.hpp>
#include <iomanip>  // before the reader on purpose: std::quoted must not capture its unqualified helper calls
#include <sstream>
#include <string>
#include <vector>

namespace test_conllu {

using headlens::doc_index;
using headlens::document;
using headlens::format_error;
using headlens::parse_conllu;

namespace {

// Builds CoNLL-U text from rows whose columns are separated by single spaces (the tests' forms have none), so that
// the documents below stay readable. A row of fewer than 10 fields is padded with `_`. Comments, blank rows and
// rows that already hold a tab are copied as they are.
std::string conllu(const std::vector<std::string>& rows) {
  std::string out;
  for (const std::string& row : rows) {
    if (row.empty() || row[0] == '#' || row.find('\t') != std::string::npos) {
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

// One word line: ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC.
std::string w(const std::string& id, const std::string& form, const std::string& upos, const std::string& head,
              const std::string& deprel, const std::string& misc = "_") {
  return id + " " + form + " " + form + " " + upos + " _ _ " + head + " " + deprel + " _ " + misc;
}

// A document with a multiword token, an empty node, nested / one-word / multi-word mentions across three sentences
// in two paragraphs, and four discourse units (one forward reference, one secondary relation).
//
// words (document index): 0 Mary 1 's 2 dog 3 barked 4 . | 5 She 6 loves 7 it 8 . | 9 He 10 said 11 that 12 it
//                         13 was 14 loud 15 .
const std::vector<std::string> small_doc = {
    "# newdoc id = d1",
    "# global.Entity = eid-etype-head-other",
    "# newpar",
    "# sent_id = s1",
    "# text = Mary's dog barked.",
    "1-2 Mary's _ _ _ _ _ _ _ _",
    w("1", "Mary", "PROPN", "3", "nmod:poss", "Discourse=ROOT:1:0|Entity=(e2-animal-3(e1-person-1)"),
    w("2", "'s", "PART", "1", "case"),
    w("3", "dog", "NOUN", "4", "nsubj", "Entity=e2)"),
    w("4", "barked", "VERB", "0", "root", "SpaceAfter=No"),
    w("5", ".", "PUNCT", "4", "punct"),
    "",
    "# newpar",
    "# sent_id = s2",
    "# text = She loves it.",
    w("1", "She", "PRON", "2", "nsubj", "Entity=(e1-person-1)|Discourse=elaboration-additional:2->1:0:_"),
    w("2", "loves", "VERB", "0", "root"),
    "2.1 loves love VERB _ _ _ _ 2:conj Entity=(e3-abstract-1)",
    w("3", "it", "PRON", "2", "obj", "Entity=(e2-animal-1)|SpaceAfter=No"),
    w("4", ".", "PUNCT", "2", "punct"),
    "",
    "# sent_id = s3",
    "# text = He said that it was loud.",
    w("1", "He", "PRON", "2", "nsubj",
      "Entity=(e4-person-1)|Discourse=attribution-positive:3->4:0:_;joint-other:3->2:1:0:_"),
    w("2", "said", "VERB", "0", "root"),
    w("3", "that", "SCONJ", "6", "mark", "Discourse=joint-list_m:4->2:1:_"),
    w("4", "it", "PRON", "6", "nsubj", "Entity=(e2-animal-1)"),
    w("5", "was", "AUX", "6", "cop"),
    w("6", "loud", "ADJ", "2", "ccomp", "SpaceAfter=No"),
    w("7", ".", "PUNCT", "2", "punct"),
    "",
};

// Strict reading: links that leave the document are errors (the default drops and counts them).
headlens::conllu_options strict() {
  headlens::conllu_options options;
  options.strict = true;
  return options;
}

// A document that must fail when read strictly; returns the exception so tests can look at file() and line().
format_error failure(const std::string& text) {
  try {
    parse_conllu(text, "bad.conllu", strict());
  } catch (const format_error& e) {
    return e;
  }
  FAIL("no format_error for:\n" << text);
  throw;  // unreachable
}

}  // namespace

TEST_CASE("conllu: words, heads, sentences and paragraphs of a hand-made document", "[conllu]") {
  const std::vector<document> docs = parse_conllu(conllu(small_doc));
  REQUIRE(docs.size() == 1);
  const document& doc = docs[0];
  CHECK(doc.id == "d1");
  REQUIRE(doc.words.size() == 16);

  std::vector<std::string> forms;
  for (const auto& word : doc.words) forms.push_back(word.form);
  CHECK(forms == std::vector<std::string>{"Mary", "'s", "dog", "barked", ".", "She", "loves", "it", ".", "He", "said",
                                          "that", "it", "was", "loud", "."});
  // HEAD column plus the sentence's first word index (0, 5, 9), minus one; root is -1.
  std::vector<doc_index> heads;
  for (const auto& word : doc.words) heads.push_back(word.head);
  CHECK(heads == std::vector<doc_index>{2, 0, 3, -1, 3, 6, -1, 6, 6, 10, -1, 14, 14, 14, 10, 10});
  CHECK(doc.words[3].is_root());
  CHECK(doc.words[0].deprel == "nmod:poss");
  CHECK(doc.words[0].base_deprel() == "nmod");
  CHECK(doc.words[3].base_deprel() == "root");
  CHECK(doc.words[0].upos == "PROPN");
  CHECK(doc.words[6].lemma == "loves");

  std::vector<doc_index> sentence_of;
  for (const auto& word : doc.words) sentence_of.push_back(word.sentence);
  CHECK(sentence_of == std::vector<doc_index>{0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2});

  // SpaceAfter: words inside the multiword token "Mary's" have none except the last, which takes the token's.
  std::vector<bool> space;
  for (const auto& word : doc.words) space.push_back(word.space_after);
  CHECK(space == std::vector<bool>{false, true, true, false, true, true, true, false, true, true, true, true, true,
                                   true, false, true});

  REQUIRE(doc.multiword_tokens.size() == 1);
  CHECK(doc.multiword_tokens[0].begin == 0);
  CHECK(doc.multiword_tokens[0].end == 2);
  CHECK(doc.multiword_tokens[0].form == "Mary's");
  CHECK(doc.multiword_tokens[0].space_after);

  REQUIRE(doc.sentences.size() == 3);
  CHECK(doc.sentences[0].begin == 0);
  CHECK(doc.sentences[0].end == 5);
  CHECK(doc.sentences[1].begin == 5);
  CHECK(doc.sentences[1].end == 9);  // the empty node 2.1 is not a word
  CHECK(doc.sentences[2].begin == 9);
  CHECK(doc.sentences[2].end == 16);
  CHECK(doc.sentences[0].id == "s1");
  CHECK(doc.sentences[2].text == "He said that it was loud.");

  // s1 starts paragraph 0, s2 starts paragraph 1 and s3 (no # newpar) continues it.
  REQUIRE(doc.paragraphs.size() == 2);
  CHECK(doc.paragraphs[0].begin == 0);
  CHECK(doc.paragraphs[0].end == 1);
  CHECK(doc.paragraphs[1].begin == 1);
  CHECK(doc.paragraphs[1].end == 3);
  CHECK(doc.sentences[0].paragraph == 0);
  CHECK(doc.sentences[1].paragraph == 1);
  CHECK(doc.sentences[2].paragraph == 1);
  CHECK(doc.paragraph_of(12) == 1);
}

TEST_CASE("conllu: nested, one-word and multi-word coreference mentions and their clusters", "[conllu]") {
  const document doc = parse_conllu(conllu(small_doc)).at(0);
  // e2 "Mary's dog" [0,3) head 3rd word = 2; e1 "Mary" [0,1); e1 "She" [5,6); e2 "it" [7,8); e4 "He" [9,10);
  // e2 "it" [12,13). e3 lies only on the empty node 2.1 and is dropped, with its cluster.
  REQUIRE(doc.mentions.size() == 6);
  const std::vector<std::pair<doc_index, doc_index>> spans = {{0, 3}, {0, 1}, {5, 6}, {7, 8}, {9, 10}, {12, 13}};
  for (std::size_t i = 0; i < spans.size(); ++i) {
    INFO("mention " << i);
    CHECK(doc.mentions[i].begin == spans[i].first);
    CHECK(doc.mentions[i].end == spans[i].second);
    CHECK(doc.mentions[i].head_source == headlens::mention_head_source::head_field);
  }
  CHECK(doc.mentions[0].head == 2);
  CHECK(doc.mentions[0].size() == 3);
  CHECK(doc.mentions[1].head == 0);
  CHECK(doc.mentions[5].head == 12);
  CHECK(doc.mentions[0].entity_type == "animal");
  CHECK(doc.mentions[1].entity_type == "person");

  // Clusters in order of first opening bracket: e2, e1, (e3 dropped), e4.
  REQUIRE(doc.clusters.size() == 3);
  CHECK(doc.clusters[0].id == "e2");
  CHECK(doc.clusters[1].id == "e1");
  CHECK(doc.clusters[2].id == "e4");
  CHECK(doc.clusters[0].entity_type == "animal");
  CHECK(doc.clusters[0].mentions == std::vector<doc_index>{0, 3, 5});
  CHECK(doc.clusters[1].mentions == std::vector<doc_index>{1, 2});
  CHECK(doc.clusters[2].mentions == std::vector<doc_index>{4});
  std::vector<doc_index> cluster_of;
  for (const auto& m : doc.mentions) cluster_of.push_back(m.cluster);
  CHECK(cluster_of == std::vector<doc_index>{0, 1, 1, 0, 2, 0});

  // The tree agrees: "dog" is the only word of "Mary 's dog" whose head (barked) is outside it.
  CHECK(headlens::syntactic_head(doc, doc.mentions[0]) == 2);
  CHECK(headlens::syntactic_head(doc, 9, 16) == 10);
  CHECK(headlens::syntactic_head(doc, 3, 3) == -1);
}

TEST_CASE("conllu: discourse units, their spans, relations and parents", "[conllu]") {
  const document doc = parse_conllu(conllu(small_doc)).at(0);
  REQUIRE(doc.discourse_units.size() == 4);
  const auto& u = doc.discourse_units;
  CHECK(u[0].begin == 0);
  CHECK(u[0].end == 5);
  CHECK(u[1].begin == 5);
  CHECK(u[1].end == 9);
  CHECK(u[2].begin == 9);
  CHECK(u[2].end == 11);
  CHECK(u[3].begin == 11);
  CHECK(u[3].end == 16);
  CHECK(u[0].id == 1);
  CHECK(u[3].id == 4);
  CHECK(u[0].relation == "ROOT");
  CHECK(u[0].parent == -1);
  CHECK(u[1].relation == "elaboration-additional");
  CHECK(u[1].relation_class() == "elaboration");
  CHECK(u[1].parent == 0);
  CHECK(u[2].relation == "attribution-positive");
  CHECK(u[2].parent == 3);  // forward reference to unit 4
  REQUIRE(u[2].secondary.size() == 1);
  CHECK(u[2].secondary[0].label == "joint-other");
  CHECK(u[2].secondary[0].target == 1);
  CHECK(u[3].relation == "joint-list_m");
  CHECK(u[3].multinuclear());
  CHECK_FALSE(u[1].multinuclear());
  CHECK(u[3].relation_class() == "joint");
  CHECK(u[3].parent == 1);
}

TEST_CASE("conllu: documents, and files without coreference, discourse or paragraphs", "[conllu]") {
  SECTION("no # newdoc: one document, one paragraph, empty layers") {
    const auto docs = parse_conllu(conllu({
        w("1", "Hi", "INTJ", "0", "root"),
        "",
        w("1", "Go", "VERB", "0", "root"),
        w("2", "!", "PUNCT", "1", "punct"),
        "",
    }));
    REQUIRE(docs.size() == 1);
    CHECK(docs[0].id.empty());
    CHECK(docs[0].words.size() == 3);
    CHECK(docs[0].sentences.size() == 2);
    REQUIRE(docs[0].paragraphs.size() == 1);
    CHECK(docs[0].paragraphs[0].begin == 0);
    CHECK(docs[0].paragraphs[0].end == 2);
    CHECK(docs[0].mentions.empty());
    CHECK(docs[0].clusters.empty());
    CHECK(docs[0].discourse_units.empty());
    CHECK(docs[0].multiword_tokens.empty());
    CHECK(docs[0].words[2].head == 1);
  }
  SECTION("several documents, each restarting paragraphs, clusters and units; CRLF and a final line without newline") {
    std::vector<std::string> rows = {"# newdoc id = a",
                                     w("1", "Hi", "INTJ", "0", "root", "Entity=(1)|Discourse=ROOT:1"),
                                     "",
                                     "# newdoc",
                                     "# newpar id = p1",
                                     w("1", "Yo", "INTJ", "0", "root", "Entity=(1)"),
                                     "",
                                     "# newdoc id = c",
                                     w("1", "Ok", "INTJ", "0", "root")};
    std::string text = conllu(rows);
    text.pop_back();  // no final newline
    std::string crlf;
    for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    for (const std::string& input : {text, crlf}) {
      const auto docs = parse_conllu(input);
      REQUIRE(docs.size() == 3);
      CHECK(docs[0].id == "a");
      CHECK(docs[1].id.empty());
      CHECK(docs[2].id == "c");
      CHECK(docs[2].words[0].form == "Ok");
      CHECK(docs[2].words[0].deprel == "root");
      for (const auto& doc : docs) {
        CHECK(doc.words.size() == 1);
        CHECK(doc.paragraphs.size() == 1);
        CHECK(doc.words[0].head == -1);
      }
      CHECK(docs[0].clusters.size() == 1);
      CHECK(docs[1].clusters.size() == 1);
      CHECK(docs[1].mentions[0].cluster == 0);
      CHECK(docs[1].mentions[0].head_source == headlens::mention_head_source::none);
      CHECK(docs[0].discourse_units.size() == 1);
      CHECK(docs[1].discourse_units.empty());
    }
  }
  SECTION("an unannotated HEAD (_) is no_head, not the root") {
    const auto docs = parse_conllu(conllu({"1 Hi hi INTJ _ _ _ _ _ _", ""}));
    CHECK(docs.at(0).words.at(0).head == headlens::word::no_head);
    CHECK_FALSE(docs[0].words[0].is_root());
  }
  SECTION("empty input and comment-only input hold no document") {
    CHECK(parse_conllu("").empty());
    CHECK(parse_conllu("# newdoc id = x\n# just a comment\n\n").empty());
  }
}

TEST_CASE("conllu: GUM's Entity layout, minspan heads and empty-node mentions", "[conllu]") {
  const auto docs = parse_conllu(conllu({
      "# newdoc id = g",
      "# global.Entity = GRP-etype-infstat-salience-centering-minspan-link-identity",
      w("1", "The", "DET", "2", "det", "Entity=(3-abstract-new-sssss-cf1-2-coref-Some_Name"),
      w("2", "learning", "NOUN", "0", "root", "Entity=(7-abstract-new-nnnnn-cf3-1-sgl)"),
      w("3", "and", "CCONJ", "4", "cc"),
      w("4", "processing", "NOUN", "2", "conj", "Entity=3)"),
      "4.1 x x X _ _ _ _ _ Entity=(9-place-new-n-cf1-1-sgl",
      w("5", "here", "ADV", "2", "advmod", "Entity=9)(5-place-new-nn-cf2-2,4-sgl"),
      w("6", "there", "ADV", "5", "conj", "Entity=5)"),
      "",
  }));
  const document& doc = docs.at(0);
  REQUIRE(doc.mentions.size() == 4);
  // (3 ... 3) spans words 0..3, minspan 2 -> word 1; (7) is word 1; (9 opened on the empty node 4.1 starts at the
  // next word (4); (5 spans 4..5 with minspan "2,4" -> first position 2 -> word 5.
  CHECK(doc.mentions[0].begin == 0);
  CHECK(doc.mentions[0].end == 4);
  CHECK(doc.mentions[0].head == 1);
  CHECK(doc.mentions[0].head_source == headlens::mention_head_source::minspan);
  CHECK(doc.mentions[0].entity_type == "abstract");
  CHECK(doc.mentions[1].begin == 1);
  CHECK(doc.mentions[1].head == 1);
  // Mentions starting at the same word: the longer one first.
  CHECK(doc.mentions[2].begin == 4);
  CHECK(doc.mentions[2].end == 6);
  CHECK(doc.mentions[2].head == 5);
  CHECK(doc.mentions[3].begin == 4);
  CHECK(doc.mentions[3].end == 5);
  CHECK(doc.clusters[doc.mentions[3].cluster].id == "9");
  CHECK(doc.clusters[doc.mentions[3].cluster].entity_type == "place");
}

TEST_CASE("conllu: discontinuous mentions and mentions across sentences when allowed", "[conllu]") {
  SECTION("parts of e5[1/2] are separate mentions of cluster e5") {
    const auto docs = parse_conllu(conllu({
        w("1", "a", "X", "0", "root", "Entity=(e5[1/2]-thing-1)"),
        w("2", "b", "X", "1", "dep"),
        w("3", "c", "X", "1", "dep", "Entity=(e5[2/2]-thing-1)"),
        "",
    }));
    REQUIRE(docs[0].mentions.size() == 2);
    REQUIRE(docs[0].clusters.size() == 1);
    CHECK(docs[0].clusters[0].id == "e5");
    CHECK(docs[0].clusters[0].mentions == std::vector<doc_index>{0, 1});
    CHECK(docs[0].mentions[1].begin == 2);
  }
  SECTION("mentions_cross_sentences") {
    const std::string text = conllu({
        w("1", "a", "X", "0", "root", "Entity=(e1-thing"),
        "",
        w("1", "b", "X", "0", "root", "Entity=e1)"),
        "",
    });
    CHECK_THROWS_WITH(parse_conllu(text), Catch::Contains("still open at the end of its sentence"));
    headlens::conllu_options options;
    options.mentions_cross_sentences = true;
    const auto docs = parse_conllu(text, "<memory>", options);
    REQUIRE(docs[0].mentions.size() == 1);
    CHECK(docs[0].mentions[0].begin == 0);
    CHECK(docs[0].mentions[0].end == 2);
  }
}

TEST_CASE("conllu: conllu_reader streams one document at a time", "[conllu]") {
  std::istringstream in(conllu({"# newdoc id = a", w("1", "x", "X", "0", "root"), "", "# newdoc id = b",
                                w("1", "y", "X", "0", "root"), w("2", "z", "X", "1", "dep"), ""}));
  headlens::conllu_reader reader(in, "two.conllu");
  CHECK(reader.name() == "two.conllu");
  document doc;
  REQUIRE(reader.next(doc));
  CHECK(doc.id == "a");
  CHECK(doc.words.size() == 1);
  CHECK(reader.line() == 4);  // it read the second # newdoc line to know the first document had ended
  REQUIRE(reader.next(doc));
  CHECK(doc.id == "b");
  CHECK(doc.words.size() == 2);
  CHECK(doc.words[1].head == 0);
  CHECK_FALSE(reader.next(doc));
  CHECK(doc.words.empty());
  CHECK_FALSE(reader.next(doc));
}

TEST_CASE("conllu: malformed input throws format_error naming file, line and the bad value", "[conllu]") {
  const std::string ok1 = w("1", "a", "X", "0", "root");
  struct bad_case {
    std::vector<std::string> rows;
    std::uint64_t line;
    std::string message;
  };
  const std::vector<bad_case> cases = {
      {{"1\ta\tb"}, 1, "expected 10 tab-separated columns, found 3 in '1\\ta\\tb'"},
      {{w("x1", "a", "X", "0", "root")},
       1,
       "ID 'x1' is not a word number (3), a multiword range (3-4) or an empty node (3.1)"},
      {{w("0", "a", "X", "0", "root")}, 1, "ID '0' is not a word number"},
      {{w("1-", "a", "X", "0", "root")}, 1, "ID '1-' is not a word number"},
      {{ok1, w("3", "b", "X", "1", "dep")}, 2, "word ID '3' is out of sequence, expected 2"},
      {{"2-3 ab _ _ _ _ _ _ _ _", ok1}, 1, "multiword token '2-3' must span the next words, starting at word 1"},
      {{"1-3 ab _ _ _ _ _ _ _ _", ok1, w("2", "b", "X", "1", "dep"), ""},
       1,
       "multiword token ending at word 3 runs past the end of its sentence of 2 words"},
      {{ok1, "3.1 e _ _ _ _ _ _ _ _"}, 2, "empty node '3.1' is out of sequence, expected 1.N after word 1"},
      {{"0.1 e _ _ _ _ _ _ _ _", ""}, 2, "the sentence ending here has no words"},
      {{w("1", "a", "X", "x", "root")}, 1, "HEAD 'x' of word 1 is not an integer"},
      {{w("1", "a", "X", "1.5", "root")}, 1, "HEAD '1.5' of word 1 is not an integer"},
      {{ok1, w("2", "b", "X", "5", "dep"), ""}, 2, "HEAD 5 of word 2 points outside its sentence of 2 words"},
      {{ok1, w("2", "b", "X", "-1", "dep"), ""}, 2, "HEAD -1 of word 2 points outside its sentence of 2 words"},
      {{ok1, w("2", "b", "X", "2", "dep"), ""}, 2, "HEAD 2 of word 2 points to the word itself"},
      {{ok1, w("2", "b", "X", "4", "dep"), w("3", "c", "X", "2", "dep"), w("4", "d", "X", "3", "dep"), ""},
       2,
       "HEAD of word 2 is part of a cycle (2 -> 4 -> 3 -> 2): the sentence is not a tree"},
      {{w("1", "a", "X", "0", "root", "Entity=e9)"), ""},
       1,
       "Entity closing bracket 'e9)' has no open mention with id 'e9'"},
      {{w("1", "a", "X", "0", "root", "Entity=(e1-x)e1"), ""},
       1,
       "Entity value '(e1-x)e1' is malformed at 'e1': expected '(id-...' or 'id)'"},
      {{w("1", "a", "X", "0", "root", "Entity=(-person)"), ""},
       1,
       "Entity mention '(-person' in '(-person)' has an empty id"},
      {{w("1", "a", "X", "0", "root", "Entity=(e1-person-x)"), ""},
       1,
       "Entity mention '(e1-person-x' has head 'x', expected a 1-based position inside the mention"},
      {{w("1", "a", "X", "0", "root", "Entity=(e1-person-2)"), ""},
       1,
       "Entity mention 'e1' has head 2 but spans only 1 word(s)"},
      {{w("1", "a", "X", "0", "root", "Entity=(e1-person"), w("2", "b", "X", "1", "dep"), ""},
       1,
       "Entity mention '(e1' opened here is still open at the end of its sentence (line 3)"},
      {{w("1", "a", "X", "0", "root", "Discourse=elaboration"), ""},
       1,
       "Discourse value 'elaboration' is malformed at 'elaboration': expected 'relation:unit->target' or 'ROOT:unit'"},
      {{w("1", "a", "X", "0", "root", "Discourse=elab:1-2:0"), ""}, 1, "Discourse value 'elab:1-2:0' is malformed"},
      {{w("1", "a", "X", "0", "root", "Discourse=ROOT:one"), ""}, 1, "Discourse value 'ROOT:one' is malformed"},
      {{w("1", "a", "X", "0", "root", "Discourse=ROOT:1;x:1-2"), ""}, 1, "is malformed at 'x:1-2'"},
      {{w("1", "a", "X", "0", "root", "Discourse=ROOT:1"), w("2", "b", "X", "1", "dep", "Discourse=elab:1->1"), ""},
       2,
       "Discourse unit 1 in 'elab:1->1' was already defined on line 1"},
      {{w("1", "a", "X", "0", "root", "Discourse=ROOT:1"), w("2", "b", "X", "1", "dep", "Discourse=elab:2->7:0"), ""},
       2,
       "Discourse unit 2 points to unit 7, which its document does not have"},
      {{ok1, "# sent_id = late"},
       2,
       "comment line inside a sentence (comments must precede its word lines): "
       "'# sent_id = late'"},
  };
  for (const bad_case& c : cases) {
    const std::string text = conllu(c.rows);
    INFO(text);
    CHECK_THROWS_AS(parse_conllu(text, "bad.conllu", strict()), format_error);
    CHECK_THROWS_WITH(parse_conllu(text, "bad.conllu", strict()), Catch::Contains(c.message));
    const format_error e = failure(text);
    CHECK(e.file() == "bad.conllu");
    CHECK(e.line() == c.line);
    CHECK_THAT(e.what(), Catch::StartsWith("headlens: bad.conllu:" + std::to_string(c.line) + ": "));
  }

  SECTION("a mention open at the end of the document, when mentions may cross sentences") {
    headlens::conllu_options options = strict();
    options.mentions_cross_sentences = true;
    const std::string text = conllu({ok1, "", w("1", "b", "X", "0", "root", "Entity=(e1-x"), ""});
    CHECK_THROWS_WITH(parse_conllu(text, "bad.conllu", options),
                      Catch::Contains("bad.conllu:3: Entity mention '(e1' opened here is still open at the end of its "
                                      "document"));
  }
  SECTION("a file that cannot be opened is an io_error") {
    CHECK_THROWS_AS(headlens::read_conllu("/nonexistent/file.conllu"), headlens::io_error);
    CHECK_THROWS_WITH(headlens::read_conllu("/nonexistent/file.conllu"),
                      Catch::Contains("cannot open CoNLL-U file '/nonexistent/file.conllu'"));
  }
}

TEST_CASE("conllu: excerpts drop the links that leave them and count them; strict reading rejects them",
          "[conllu][excerpt]") {
  // Unit 5 opens the excerpt and points to unit 2 (cut away); unit 6 has a secondary relation to unit 9 (cut away)
  // and one to unit 5; unit 7 points to unit 1 (cut away).
  // Coreference: e1 was opened before the excerpt ("e1)" on word 1); e2 is whole; with mentions crossing
  // sentences, e3 is still open when the excerpt ends.
  const std::vector<std::string> rows = {
      "# newdoc id = cut",
      "# sent_id = s7",
      w("1", "it", "PRON", "2", "nsubj", "Discourse=elaboration:5->2:0|Entity=e1)"),
      w("2", "rained", "VERB", "0", "root", "Discourse=joint_m:6->5:0;cause:6->9:1;result:6->5:1"),
      w("3", "hard", "ADV", "2", "advmod", "Entity=(e2-abstract-1)"),
      "",
      "# sent_id = s8",
      w("1", "we", "PRON", "2", "nsubj", "Discourse=background:7->1:0|Entity=(e3-person-1"),
      w("2", "stayed", "VERB", "0", "root"),
      "",
  };
  headlens::conllu_options cross;
  cross.mentions_cross_sentences = true;
  const document doc = parse_conllu(conllu(rows), "cut.conllu", cross).at(0);
  CHECK(doc.dangling.discourse == 3);    // 5->2, 6->9 (secondary), 7->1
  CHECK(doc.dangling.coreference == 2);  // e1 closed without its opening, e3 opened without its closing
  CHECK(doc.dangling.total() == 5);
  REQUIRE(doc.discourse_units.size() == 3);
  const auto& u = doc.discourse_units;
  CHECK(u[0].parent == -1);
  CHECK(u[0].relation == "elaboration");  // the label stays; only the link is gone
  CHECK(u[1].parent == 0);
  REQUIRE(u[1].secondary.size() == 1);  // the secondary relation to unit 9 is dropped, the one to unit 5 kept
  CHECK(u[1].secondary[0].label == "result");
  CHECK(u[1].secondary[0].target == 0);
  CHECK(u[2].parent == -1);
  CHECK(u[2].begin == 3);
  CHECK(u[2].end == 5);
  REQUIRE(doc.mentions.size() == 1);  // only e2, on word 2
  CHECK(doc.mentions[0].begin == 2);
  CHECK(doc.mentions[0].end == 3);
  REQUIRE(doc.clusters.size() == 1);  // e1 and e3 leave no cluster behind
  CHECK(doc.clusters[0].id == "e2");
  CHECK(doc.clusters[0].mentions == std::vector<doc_index>{0});

  SECTION("a complete document has nothing dangling") {
    const document whole = parse_conllu(conllu(small_doc)).at(0);
    CHECK(whole.dangling.total() == 0);
  }
  SECTION("the count is per document: the next document starts from zero") {
    std::vector<std::string> two = rows;
    two.insert(two.end(), small_doc.begin(), small_doc.end());
    const auto docs = parse_conllu(conllu(two), "cut.conllu", cross);
    REQUIRE(docs.size() == 2);
    CHECK(docs[0].dangling.total() == 5);
    CHECK(docs[1].dangling.total() == 0);
  }
  SECTION("strict reading keeps the errors, at the first dangling link it meets") {
    headlens::conllu_options strict_cross = strict();
    strict_cross.mentions_cross_sentences = true;
    CHECK_THROWS_WITH(parse_conllu(conllu(rows), "cut.conllu", strict_cross),
                      "headlens: cut.conllu:3: Entity closing bracket 'e1)' has no open mention with id 'e1'");
    std::vector<std::string> no_entities = rows;
    for (std::string& row : no_entities) row = row.substr(0, row.find("|Entity="));
    CHECK_THROWS_WITH(parse_conllu(conllu(no_entities), "cut.conllu", strict()),
                      "headlens: cut.conllu:3: Discourse unit 5 points to unit 2, which its document does not have");
  }
  SECTION("without mentions across sentences, a mention open at the end of its sentence is still an error") {
    CHECK_THROWS_WITH(parse_conllu(conllu(rows), "cut.conllu"),
                      Catch::Contains("cut.conllu:8: Entity mention '(e3' opened here is still open at the end of its "
                                      "sentence"));
  }
}

TEST_CASE("conllu: an excerpt cut from GUM dev (GUM_bio_byron, sentences 9-12, CC BY) reads", "[conllu][excerpt]") {
  // tests/data/gum/gum_cc_by_excerpt.conllu: four sentences cut from the middle of a document. Counted with a
  // script over the file's Discourse= values: units 27..47, of which 28 points to unit 21 and 35 to unit 2 (both
  // cut away); the one secondary relation (29 -> 28) stays. GUM's mentions stay inside sentences, so every
  // Entity bracket balances.
  const auto docs = headlens::read_conllu(HEADLENS_TEST_DATA_DIR "/gum/gum_cc_by_excerpt.conllu");
  REQUIRE(docs.size() == 1);
  const document& doc = docs[0];
  CHECK(doc.id == "GUM_bio_byron");
  CHECK(doc.sentences.size() == 4);
  CHECK(doc.words.size() == 166);
  CHECK(doc.dangling.discourse == 2);
  CHECK(doc.dangling.coreference == 0);
  REQUIRE(doc.discourse_units.size() == 21);
  CHECK(doc.discourse_units[0].id == 27);
  CHECK(doc.discourse_units[1].id == 28);
  CHECK(doc.discourse_units[1].parent == -1);  // 28 -> 21, cut away
  CHECK(doc.discourse_units[0].parent == 1);   // 27 -> 28
  CHECK(doc.discourse_units[8].id == 35);
  CHECK(doc.discourse_units[8].parent == -1);  // 35 -> 2, cut away
  std::size_t secondary = 0, roots = 0;
  for (const auto& unit : doc.discourse_units) {
    secondary += unit.secondary.size();
    roots += unit.parent == -1;
  }
  CHECK(secondary == 1);
  CHECK(roots == 2);
  CHECK_THROWS_WITH(headlens::read_conllu(HEADLENS_TEST_DATA_DIR "/gum/gum_cc_by_excerpt.conllu", strict()),
                    Catch::Contains("Discourse unit 28 points to unit 21, which its document does not have"));
}

TEST_CASE("conllu: the CC BY GUM fixture (always available)", "[conllu][gum]") {
  const std::string path = HEADLENS_TEST_DATA_DIR "/gum/gum_cc_by_sample.conllu";
  const std::vector<document> docs = headlens::read_conllu(path);
  // Counted with grep: 2 `# newdoc`, 47 `# sent_id`, 1289 integer IDs, 8 ranges, 15 `# newpar` (the textbook
  // document's first sentence has none, so it gets an implicit first paragraph), 361 `(` in Entity values,
  // 159 Discourse= annotations.
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].id == "GUM_news_homeopathic");
  CHECK(docs[1].id == "GUM_textbook_labor");
  std::size_t sentences = 0, words = 0, mwts = 0, paragraphs = 0, mentions = 0, units = 0;
  for (const auto& doc : docs) {
    sentences += doc.sentences.size();
    words += doc.words.size();
    mwts += doc.multiword_tokens.size();
    paragraphs += doc.paragraphs.size();
    mentions += doc.mentions.size();
    units += doc.discourse_units.size();
  }
  CHECK(sentences == 47);
  CHECK(words == 1289);
  CHECK(mwts == 8);
  CHECK(paragraphs == 16);
  CHECK(mentions == 361);
  CHECK(units == 159);

  // The first sentence: "Parents prosecuted after homeopathic treatment leads to daughter's death".
  const document& news = docs[0];
  CHECK(news.sentences[0].id == "GUM_news_homeopathic-1");
  CHECK(news.sentences[0].end == 10);
  CHECK(news.words[0].form == "Parents");
  CHECK(news.words[0].head == 1);
  CHECK(news.words[0].deprel == "nsubj:pass");
  CHECK(news.words[0].base_deprel() == "nsubj");
  CHECK(news.words[1].is_root());
  CHECK(news.words[9].head == 5);  // death -> leads (obl)
  CHECK(news.multiword_tokens[0].begin == 7);
  CHECK(news.multiword_tokens[0].end == 9);
  CHECK(news.multiword_tokens[0].form == "daughter's");
  CHECK_FALSE(news.words[7].space_after);
  // (3-event-...-cf4-3-coref on "daughter" closed on "death": minspan 3 -> death; (4-person-...-1 closed on 's.
  CHECK(news.mentions[0].begin == 0);  // (1-person-...) Parents
  CHECK(news.mentions[0].end == 1);
  bool found3 = false, found4 = false;
  for (const auto& m : news.mentions) {
    if (news.clusters[m.cluster].id == "3" && m.begin == 7) {
      found3 = true;
      CHECK(m.end == 10);
      CHECK(m.head == 9);
      CHECK(m.entity_type == "event");
    }
    if (news.clusters[m.cluster].id == "4" && m.begin == 7) {
      found4 = true;
      CHECK(m.end == 9);
      CHECK(m.head == 7);
    }
  }
  CHECK(found3);
  CHECK(found4);
  // Discourse=organization-heading:1->4 on "Parents", context-circumstance:2->1 on "after".
  CHECK(news.discourse_units[0].begin == 0);
  CHECK(news.discourse_units[0].end == 2);
  CHECK(news.discourse_units[0].relation == "organization-heading");
  CHECK(news.discourse_units[0].parent == 3);
  CHECK(news.discourse_units[1].begin == 2);
  CHECK(news.discourse_units[1].parent == 0);
  CHECK(docs[1].paragraphs[0].begin == 0);
}

TEST_CASE("conllu: the GUM dev split (skipped when ../shared is absent)", "[conllu][gum]") {
  const std::string path = HEADLENS_SHARED_DIR "/data/gum/en_gum-ud-dev.conllu";
  if (!std::ifstream(path)) {
    WARN("SKIPPED: " << path << " is absent (it lives outside the repository); the CC BY fixture test still runs");
    return;
  }
  headlens::conllu_reader reader(path);
  document doc;
  std::size_t docs = 0, sentences = 0, words = 0, mwts = 0, paragraphs = 0, mentions = 0, units = 0, roots = 0;
  std::size_t secondary = 0, heads = 0, heads_agree = 0;
  while (reader.next(doc)) {
    ++docs;
    sentences += doc.sentences.size();
    words += doc.words.size();
    mwts += doc.multiword_tokens.size();
    paragraphs += doc.paragraphs.size();
    mentions += doc.mentions.size();
    units += doc.discourse_units.size();
    const doc_index n = static_cast<doc_index>(doc.words.size());
    for (const auto& m : doc.mentions) {
      REQUIRE(m.begin >= 0);
      REQUIRE(m.begin < m.end);
      REQUIRE(m.end <= n);
      // GUM mentions never cross sentences.
      REQUIRE(doc.words[m.begin].sentence == doc.words[m.end - 1].sentence);
      if (m.head >= 0) {
        ++heads;
        heads_agree += m.head == headlens::syntactic_head(doc, m);
      }
    }
    doc_index covered = 0;
    for (std::size_t u = 0; u < doc.discourse_units.size(); ++u) {
      const auto& unit = doc.discourse_units[u];
      REQUIRE(unit.begin == covered);  // every GUM document's first word starts a unit; units tile the document
      covered = unit.end;
      REQUIRE(unit.parent < static_cast<doc_index>(doc.discourse_units.size()));
      REQUIRE(unit.parent != static_cast<doc_index>(u));
      roots += unit.parent == -1;
      secondary += unit.secondary.size();
    }
    REQUIRE(covered == n);
    for (const auto& w : doc.words) {
      REQUIRE(w.head >= -1);
      REQUIRE(w.head < n);
      if (w.head >= 0) REQUIRE(doc.words[w.head].sentence == w.sentence);
    }
  }
  // README: 30 documents, 1,575 sentences, about 28,000 tokens. The rest counted with grep.
  CHECK(docs == 30);
  CHECK(sentences == 1575);
  CHECK(words == 28119);
  CHECK(mwts == 517);
  CHECK(paragraphs == 584);  // 583 `# newpar` + GUM_textbook_labor's first sentence
  CHECK(mentions == 7897);
  CHECK(units == 3634);
  CHECK(roots == 30);
  CHECK(secondary == 157);
  // GUM gives no `head` attribute; minspan's first position is the tree head of most mentions.
  CHECK(heads == mentions);
  CHECK(static_cast<double>(heads_agree) / static_cast<double>(heads) > 0.9);
}

}  // namespace test_conllu
