#pragma once
/// \file
/// A `document` from plain text: the words and sentences of the one word splitter (text/word_splitter.hpp), no
/// annotation layer, so the policies that need no annotations can judge heads on any text.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "headlens/analysis/document.hpp"
#include "headlens/text/word_splitter.hpp"

namespace headlens {

/// The document of `text`, with `id = name`: one word per piece of `split_words(text)` (so `doc.words[i]` spans
/// `split_words(text)[i]`), `space_after` when whitespace follows it; the sentences of `sentence_starts` (each with its
/// `text`); one paragraph. Lemma, UPOS and DEPREL are `_` and no word has a head. Empty text gives a document without
/// words. Throws `argument_error` when `text` is not valid UTF-8.
inline document document_from_text(std::string_view text, std::string name) {
  document doc;
  doc.id = std::move(name);
  const std::vector<byte_span> spans = split_words(text);
  doc.words.reserve(spans.size());
  for (std::size_t i = 0; i < spans.size(); ++i) {
    word w;
    w.form.assign(text.substr(spans[i].begin, spans[i].end - spans[i].begin));
    w.lemma = w.upos = w.deprel = "_";
    w.head = word::no_head;
    // Whitespace, not the next word, follows: the spans of adjacent words touch exactly when no space is between.
    w.space_after = spans[i].end < text.size() && (i + 1 == spans.size() || spans[i + 1].begin > spans[i].end);
    doc.words.push_back(std::move(w));
  }
  const std::vector<std::size_t> starts = sentence_starts(text, spans);
  for (std::size_t s = 0; s < starts.size(); ++s) {
    sentence sent;
    sent.begin = static_cast<doc_index>(starts[s]);
    sent.end = static_cast<doc_index>(s + 1 < starts.size() ? starts[s + 1] : spans.size());
    for (doc_index w = sent.begin; w < sent.end; ++w) doc.words[static_cast<std::size_t>(w)].sentence = doc_index(s);
    const std::size_t first = spans[starts[s]].begin;
    sent.text.assign(text.substr(first, spans[static_cast<std::size_t>(sent.end) - 1].end - first));
    doc.sentences.push_back(std::move(sent));
  }
  if (!doc.sentences.empty()) doc.paragraphs.push_back(paragraph{0, static_cast<doc_index>(doc.sentences.size())});
  return doc;
}

}  // namespace headlens
