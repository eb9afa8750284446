#pragma once
/// \file
/// The sequences an ablation experiment (head importance, the causal check of labels, pruning plans) runs a model
/// on: a corpus of documents cut into units of context, each tokenised once, every token tied to the word it
/// belongs to. The unit of context is the user's choice, and reports name it (`ablation_units::describe`):
/// - `context_unit::sentence`: each annotated sentence alone, its words' text as the tokenizer reads it, so the
///   model's own beginning-of-text token comes first where the model adds one (the `attention_model`'s tokenizer
///   decides: Llama's BOS, a tokenizer.json's post-processor; GPT-2 as loaded by default adds none);
/// - `context_unit::window`: documents read in windows of words exactly as `classify` reads them (`head_analysis`
///   plans them: `make_windows`, then `fit_windows` to the model's context), each window one unit.
///
/// ```
/// auto model = headlens::load_attention_model("path/to/gpt2");
/// const auto docs = headlens::read_conllu("dev.conllu");
/// const headlens::ablation_units units = headlens::make_ablation_units(*model, docs, {});  // sentences
/// for (const headlens::ablation_unit& u : units.units) { /* u.ids, u.token_word, docs[u.document] */ }
/// ```
/// Needs nlohmann_json (through models/attention_model.hpp).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "headlens/analysis/ablation_unit.hpp"
#include "headlens/analysis/alignment.hpp"
#include "headlens/analysis/document.hpp"
#include "headlens/analysis/head_analysis.hpp"
#include "headlens/error.hpp"
#include "headlens/models/attention_model.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// How `make_ablation_units` cuts documents.
struct ablation_unit_options {
  context_unit context = context_unit::sentence;
  /// `context_unit::window` only: words per window and between window starts (0: half the window), as
  /// `analysis_options` (`classify`'s `--window`, `--stride`).
  Index window = 64;
  Index stride = 0;
};

namespace detail {

/// The text of words [begin, end) of a document and each word's bytes in it.
inline std::string unit_text(const document_text& surface, Index begin, Index end, std::vector<char_span>& spans) {
  const auto first = static_cast<std::size_t>(begin), last = static_cast<std::size_t>(end - 1);
  const std::size_t base = surface.words[first].begin;
  spans.clear();
  for (std::size_t v = first; v <= last; ++v) spans.push_back({surface.words[v].begin - base, surface.words[v].end - base});
  return surface.text.substr(base, surface.words[last].end - base);
}

/// Fills `u.ids` and `u.token_word` from `tokens` of the words of `u.words` (spans relative to their text), clipped
/// to `max_tokens`.
inline void fill_unit_tokens(ablation_unit& u, const std::vector<model_token>& tokens,
                             const std::vector<char_span>& spans, Index max_tokens) {
  const token_alignment alignment = align_tokens(tokens, spans);
  std::size_t keep = tokens.size();
  if (static_cast<Index>(keep) > max_tokens) {
    keep = static_cast<std::size_t>(max_tokens);
    u.clipped = true;
  }
  u.ids.reserve(keep);
  u.token_word.reserve(keep);
  for (std::size_t t = 0; t < keep; ++t) {
    u.ids.push_back(tokens[t].id);
    const doc_index w = alignment.word_of_token[t];
    u.token_word.push_back(w < 0 ? Index(-1) : Index(u.words.begin + w));
  }
}

}  // namespace detail

/// The units of `documents` for `model` (see the file comment), using only `attention_model::tokenize`: in
/// document order, then in text order. A document without words has no unit; a document without sentences (built
/// by hand from words) is one sentence in `context_unit::sentence`. Units without a token, and for a causal model
/// (a decoder, which scores no token of a one-token sequence) units of one token, are left out and counted in
/// `too_short`. The model and documents need not outlive the result.
///
/// Throws `argument_error` when `documents` is empty, when no unit is left, or for window options
/// `head_analysis` refuses (a window below 2 words or above `max_tokens`, a stride above the window); the
/// tokenizer's errors (text that is not UTF-8, an unknown word of a word vocabulary).
inline ablation_units make_ablation_units(const attention_model& model, const std::vector<document>& documents,
                                          const ablation_unit_options& options = {}) {
  if (documents.empty()) detail::fail<argument_error>("documents is empty, expected at least one document");
  ablation_units out;
  out.context = options.context;
  out.max_tokens = model.max_tokens();
  const std::size_t min_tokens = model.causal() ? 2 : 1;
  std::vector<char> has_unit(documents.size(), 0);
  const auto add = [&](ablation_unit&& u) {
    if (u.ids.size() < min_tokens) {
      ++out.too_short;
      return;
    }
    if (u.clipped) ++out.clipped;
    has_unit[u.document] = 1;
    out.units.push_back(std::move(u));
  };
  std::vector<char_span> spans;
  if (options.context == context_unit::window) {
    // The windows, and their tokens, that `classify` measures: planned by the same code.
    analysis_options plan;
    plan.window = options.window;
    plan.stride = options.stride;
    const head_analysis analysis(model, documents, plan);
    out.window = analysis.window();
    out.stride = analysis.stride();
    for (const planned_document& p : analysis.documents()) {
      const auto d = static_cast<std::size_t>(p.source - documents.data());
      for (std::size_t w = 0; w < p.windows.size(); ++w) {
        ablation_unit u;
        u.document = d;
        u.words = p.windows[w];
        detail::unit_text(p.surface, u.words.begin, u.words.end, spans);
        detail::fill_unit_tokens(u, p.tokens[w], spans, model.max_tokens());
        add(std::move(u));
      }
    }
  } else {
    for (std::size_t d = 0; d < documents.size(); ++d) {
      const document& doc = documents[d];
      if (doc.words.empty()) continue;
      const document_text surface = document_surface_text(doc);
      const auto words = static_cast<doc_index>(doc.words.size());
      std::vector<sentence> sentences = doc.sentences;
      if (sentences.empty()) sentences.push_back(sentence{0, words, 0, {}, {}});
      for (std::size_t s = 0; s < sentences.size(); ++s) {
        const sentence& sent = sentences[s];
        if (sent.begin < 0 || sent.end > words || sent.begin >= sent.end) continue;  // no word: nothing to read
        ablation_unit u;
        u.document = d;
        u.sentence = doc.sentences.empty() ? -1 : doc_index(s);
        u.words = word_window{sent.begin, sent.end, sent.begin, sent.end};
        const std::string text = detail::unit_text(surface, sent.begin, sent.end, spans);
        detail::fill_unit_tokens(u, model.tokenize(text), spans, model.max_tokens());
        add(std::move(u));
      }
    }
  }
  for (char c : has_unit) out.documents += c ? 1 : 0;
  if (out.units.empty()) {
    detail::fail<argument_error>("no ", to_string(options.context), " of the ", documents.size(),
                                 documents.size() == 1 ? " document" : " documents", " gives a unit of at least ",
                                 min_tokens, min_tokens == 1 ? " token" : " tokens", " (", out.too_short,
                                 " too short), expected at least one");
  }
  return out;
}

}  // namespace headlens
