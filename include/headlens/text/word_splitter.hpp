#pragma once
/// \file
/// The one way headlens splits plain text into words and sentences (used by `document_from_text`, by the
/// word-level tokenizer and by the feature accumulators for documents without sentences).
///
/// Words: whitespace (Python's `str.isspace()` set) separates words. A word is a maximal run of letters, numbers
/// and combining marks (Unicode categories L, N, M) in which an apostrophe (U+0027, U+2019) or a hyphen (U+002D,
/// U+2010) between two such characters stays inside the word; every other character (punctuation, symbols,
/// emoji) is a word of its own:
///   "Don't stop, well-known caf\u00e9s\u2014 2 \u201cso\u201d!" -> "Don't" "stop" "," "well-known" "caf\u00e9s"
///   "\u2014" "2"
///                                               "\u201c" "so" "\u201d" "!"
/// Each word keeps its byte span in the text, so tokens align with words (analysis/alignment.hpp).
///
/// Sentences: a sentence ends after a word made of `.`, `!`, `?` and `\u2026` only, together with the closing
/// quotes and brackets right after it: "He left. \u201cGo!\u201d She ran." is "He left ." | "\u201c Go ! \u201d" | "She
/// ran .".

#include <cstddef>
#include <string_view>
#include <vector>

#include "headlens/text/bpe.hpp"  // the Unicode character classes
#include "headlens/text/token.hpp"
#include "headlens/text/unicode.hpp"

namespace headlens {

namespace detail {

inline bool is_word_char(char32_t c) { return is_unicode_letter(c) || is_unicode_number(c) || is_unicode_mark(c); }

/// Apostrophes and hyphens that stay inside a word when a word character follows and precedes them.
inline bool is_word_joiner(char32_t c) { return c == U'\'' || c == U'\u2019' || c == U'-' || c == U'\u2010'; }

}  // namespace detail

/// True for a sentence-final word: made of `.`, `!`, `?` and `\u2026` only.
inline bool is_sentence_final_form(std::string_view form) {
  if (form.empty()) return false;
  std::size_t i = 0;
  while (i < form.size()) {
    const char c = form[i];
    if (c == '.' || c == '!' || c == '?') {
      ++i;
    } else if (form.compare(i, 3, "\u2026") == 0) {
      i += 3;
    } else {
      return false;
    }
  }
  return true;
}

/// True for closing quotes and brackets, which stay with the sentence they close.
inline bool is_closing_form(std::string_view form) {
  return form == "\"" || form == "'" || form == ")" || form == "]" || form == "}" || form == "\u201D" ||
         form == "\u2019" || form == "\u00BB" || form == "''";
}

/// The sentence rule of this header, fed one word at a time in text order.
class sentence_splitter {
 public:
  /// True when `form` starts a new sentence (never for the first word).
  bool starts_sentence(std::string_view form) {
    const bool final_form = is_sentence_final_form(form);
    const bool starts = pending_ && !final_form && !is_closing_form(form);
    if (starts) pending_ = false;
    if (final_form) pending_ = true;
    return starts;
  }

 private:
  bool pending_ = false;  // a sentence-final word was seen; the sentence ends before the next other word
};

/// The words of `text` as byte spans, in order (see the file comment). Throws `argument_error` when `text` is not
/// valid UTF-8.
inline std::vector<byte_span> split_words(std::string_view text) {
  const std::vector<source_char> chars = decode_utf8(text);
  std::vector<byte_span> out;
  std::size_t i = 0;
  while (i < chars.size()) {
    const char32_t c = chars[i].code_point;
    if (is_unicode_space(c)) {
      ++i;
    } else if (detail::is_word_char(c)) {
      std::size_t e = i + 1;
      while (e < chars.size()) {
        if (detail::is_word_char(chars[e].code_point)) {
          ++e;
        } else if (detail::is_word_joiner(chars[e].code_point) && e + 1 < chars.size() &&
                   detail::is_word_char(chars[e + 1].code_point)) {
          e += 2;
        } else {
          break;
        }
      }
      out.push_back({chars[i].begin, chars[e - 1].end});
      i = e;
    } else {
      out.push_back({chars[i].begin, chars[i].end});
      ++i;
    }
  }
  return out;
}

/// The index of the first word of each sentence of `words` (spans into `text`, as `split_words` gives them):
/// `{0, ...}`, empty when there are no words.
inline std::vector<std::size_t> sentence_starts(std::string_view text, const std::vector<byte_span>& words) {
  std::vector<std::size_t> starts;
  sentence_splitter splitter;
  for (std::size_t w = 0; w < words.size(); ++w) {
    const bool starts_here = splitter.starts_sentence(text.substr(words[w].begin, words[w].end - words[w].begin));
    if (w == 0 || starts_here) starts.push_back(w);
  }
  return starts;
}

}  // namespace headlens
