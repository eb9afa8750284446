// libFuzzer harness for the CoNLL-U reader: any byte string must either parse into documents whose indices are all
// consistent, or throw headlens::format_error. Any other exception, a crash, or a broken invariant is a finding.
//
// Two builds of this one file:
// - libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude
//       tests/fuzz/fuzz_conllu.cpp -o fuzz_conllu && ./fuzz_conllu -max_total_time=300 CORPUS_DIR
// - replay (any compiler, for CI): define HEADLENS_FUZZ_REPLAY to get a main() that runs every file named on the
//   command line, or every file inside a named directory, through the same function.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <headlens/analysis/conllu.hpp>

#include "fuzz_invariant.hpp"
#include <string>

namespace {

// Aborts on a broken invariant, so that the fuzzer reports it (assert would vanish under NDEBUG).
void check_document(const headlens::document& doc) {
  using headlens::doc_index;
  const doc_index n_words = static_cast<doc_index>(doc.words.size());
  const doc_index n_sentences = static_cast<doc_index>(doc.sentences.size());
  require(n_sentences > 0, "a yielded document has sentences");
  require(!doc.paragraphs.empty(), "a document with sentences has a paragraph");
  doc_index next_word = 0;
  for (doc_index s = 0; s < n_sentences; ++s) {
    const auto& sent = doc.sentences[static_cast<std::size_t>(s)];
    require(sent.begin == next_word && sent.end > sent.begin, "sentences tile the words");
    require(sent.paragraph >= 0 && sent.paragraph < static_cast<doc_index>(doc.paragraphs.size()),
            "sentence paragraph in range");
    next_word = sent.end;
  }
  require(next_word == n_words, "sentences cover every word");
  doc_index next_sentence = 0;
  for (const auto& par : doc.paragraphs) {
    require(par.begin == next_sentence && par.end > par.begin, "paragraphs tile the sentences");
    next_sentence = par.end;
  }
  require(next_sentence == n_sentences, "paragraphs cover every sentence");
  for (doc_index i = 0; i < n_words; ++i) {
    const auto& w = doc.words[static_cast<std::size_t>(i)];
    require(w.sentence >= 0 && w.sentence < n_sentences, "word sentence in range");
    const auto& sent = doc.sentences[static_cast<std::size_t>(w.sentence)];
    require(i >= sent.begin && i < sent.end, "word inside its sentence");
    require(w.head == -1 || w.head == headlens::word::no_head || (w.head >= sent.begin && w.head < sent.end),
            "head inside the sentence");
    require(w.head != i, "no word heads itself");
    doc_index up = i;
    for (doc_index steps = 0; up >= 0 && steps <= sent.end - sent.begin; ++steps)
      up = doc.words[static_cast<std::size_t>(up)].head;
    require(up < 0, "every word reaches a root: no cycles");
    (void)w.base_deprel();
  }
  for (const auto& t : doc.multiword_tokens) {
    require(t.begin >= 0 && t.begin < t.end && t.end <= n_words, "multiword token range");
  }
  for (const auto& m : doc.mentions) {
    require(m.begin >= 0 && m.begin < m.end && m.end <= n_words, "mention range");
    require(m.cluster >= 0 && m.cluster < static_cast<doc_index>(doc.clusters.size()), "mention cluster");
    require(m.head == -1 || (m.head >= m.begin && m.head < m.end), "mention head inside the mention");
    (void)headlens::syntactic_head(doc, m);
  }
  std::size_t cluster_mentions = 0;
  for (const auto& c : doc.clusters) {
    require(!c.mentions.empty(), "no empty cluster");
    cluster_mentions += c.mentions.size();
    for (doc_index m : c.mentions)
      require(m >= 0 && m < static_cast<doc_index>(doc.mentions.size()), "cluster mention");
  }
  require(cluster_mentions == doc.mentions.size(), "each mention in one cluster");
  const doc_index n_units = static_cast<doc_index>(doc.discourse_units.size());
  for (const auto& u : doc.discourse_units) {
    require(u.begin >= 0 && u.begin < u.end && u.end <= n_words, "unit range");
    require(u.parent >= -1 && u.parent < n_units, "unit parent");
    for (const auto& r : u.secondary) require(r.target >= 0 && r.target < n_units, "secondary target");
    (void)u.relation_class();
    (void)u.multinuclear();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (int mode = 0; mode < 4; ++mode) {
    headlens::conllu_options options;
    options.mentions_cross_sentences = (mode & 1) != 0;
    options.strict = (mode & 2) != 0;
    try {
      for (const auto& doc : headlens::parse_conllu(text, "<fuzz>", options)) check_document(doc);
    } catch (const headlens::format_error&) {
      // The only accepted way to reject input. Anything else propagates and is reported.
    }
  }
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
