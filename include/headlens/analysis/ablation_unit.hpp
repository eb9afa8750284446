#pragma once
/// \file
/// The unit of context of ablation experiments (head importance, the causal check of labels, pruning plans): one
/// sequence a model runs on, a sentence or a window of words of one document, its token ids and the word each token
/// belongs to. `context_unit::sentence`: each annotated sentence alone (after the model's beginning-of-text token
/// where its tokenizer adds one); `context_unit::window`: the windows of words `classify` reads. Plain data;
/// `make_ablation_units` (analysis/ablation_units.hpp) builds them from a model and documents.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "headlens/analysis/alignment.hpp"
#include "headlens/analysis/document.hpp"
#include "headlens/error.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// What one unit of context is: a sentence alone, or a window of words as `classify` reads documents.
enum class context_unit { sentence, window };

inline const char* to_string(context_unit c) noexcept { return c == context_unit::sentence ? "sentence" : "window"; }

/// The context unit named `name` ("sentence" or "window"), as the command line's `--context` takes it. Throws
/// `argument_error` naming the value otherwise.
inline context_unit context_unit_from_string(std::string_view name) {
  if (name == "sentence") return context_unit::sentence;
  if (name == "window") return context_unit::window;
  detail::fail<argument_error>("context is '", name, "', expected 'sentence' or 'window'");
}

/// One sequence the model runs on: a sentence or a window of one document, tokenised.
struct ablation_unit {
  std::size_t document = 0;  ///< index into the documents the units were made from
  /// The words it covers, `[words.begin, words.end)` (document-level indices), and the words it owns,
  /// `[words.own_begin, words.own_end)`: a sentence owns all its words; overlapping windows share their words out as
  /// `make_windows` says, so counting only owned words counts each word of a document once.
  word_window words;
  doc_index sentence = -1;  ///< the sentence (`context_unit::sentence`, -1 for a document without sentences), else -1
  std::vector<std::int32_t> ids;    ///< the token ids, clipped to the model's `max_tokens`
  /// Per token of `ids`: the document-level index of the word it belongs to (`align_tokens`: the word it overlaps
  /// most), or -1 for a token of no word (a beginning-of-text token, a bare `▁`).
  std::vector<Index> token_word;
  bool clipped = false;  ///< more tokens than the model sees: `ids` keeps the first `max_tokens`

  Index token_count() const noexcept { return static_cast<Index>(ids.size()); }
};

/// The units of a corpus and what was left out making them.
struct ablation_units {
  context_unit context = context_unit::sentence;
  Index window = 0, stride = 0;  ///< `context_unit::window` only: the window and stride used
  Index max_tokens = 0;          ///< the model's context, which units are clipped to
  std::vector<ablation_unit> units;  ///< in document order, then in text order
  std::size_t documents = 0;         ///< documents with at least one unit
  std::size_t clipped = 0;           ///< units longer than `max_tokens`, clipped (as made)
  std::size_t too_short = 0;         ///< units left out: no token, or one token for a decoder (nothing scored)

  /// The unit of context for a report, e.g. "sentence (each annotated sentence alone)" or "window (64 words,
  /// stride 32, fitted to 1024 tokens; 3 of 120 clipped to 1024 tokens)": what was clipped or left out is said.
  std::string describe() const {
    std::string out = context == context_unit::sentence
                          ? std::string("sentence (each annotated sentence alone")
                          : "window (" + std::to_string(window) + " words, stride " + std::to_string(stride) +
                                ", fitted to " + std::to_string(max_tokens) + " tokens";
    // Counted from the units themselves, so it stays true when a caller keeps only some of them (--max-units).
    std::size_t clipped_now = 0;
    for (const ablation_unit& u : units) clipped_now += u.clipped ? 1 : 0;
    if (clipped_now > 0) {
      out += "; " + std::to_string(clipped_now) + " of " + std::to_string(units.size()) + " clipped to " +
             std::to_string(max_tokens) + " tokens";
    }
    if (too_short > 0) out += "; " + std::to_string(too_short) + " too short to score, left out";
    return out + ")";
  }
};

}  // namespace headlens
