#pragma once
/// \file
/// From what a model sees to what annotations describe: subword tokens to words, token-level attention maps to
/// word-level ones, and long documents to overlapping windows of words.
///
/// Tokens and words are matched through character (byte) offsets into one text. A document's text and its words'
/// offsets come from `document_surface_text` (forms joined as `SpaceAfter` says) or from the caller.
///
/// Token-level to word-level maps follow Clark et al. (2019): attention *to* a word is the sum of the attention to
/// its tokens, attention *from* a word is the mean over its tokens of their rows. Tokens that belong to no word
/// (special tokens such as `[CLS]`, `[SEP]`, `<s>`, a bare `▁`) are dropped: the mass they received is reported per
/// word row, and each word row is renormalised to sum to 1 again (so feature accumulators, which require rows that
/// sum to 1 or 0, can take it), unless asked not to.
///
/// Windows: a document longer than a model's context is cut into windows of at most N words starting every
/// `stride` words. Each word is *owned* by exactly one window, the one where it is most central, and feature
/// accumulators count a word's row only in the window that owns it (see `make_windows` for the rule).

#include <algorithm>
#include <cstddef>
#include <headlens/analysis/document.hpp>
#include <headlens/error.hpp>
#include <headlens/io/dtype.hpp>
#include <headlens/types.hpp>
#include <limits>
#include <string>
#include <vector>

namespace headlens {

/// A half-open range of characters (bytes of UTF-8) `[begin, end)` in a text.
struct char_span {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::size_t size() const noexcept { return end - begin; }
  bool operator==(const char_span& o) const noexcept { return begin == o.begin && end == o.end; }
  bool operator!=(const char_span& o) const noexcept { return !(*this == o); }
};

/// A document's surface text and the character span of each of its words.
struct document_text {
  std::string text;
  std::vector<char_span> words;  ///< one per `document::words`, in order; non-overlapping and increasing
};

/// The surface text of `doc`, rebuilt from its words:
/// - words are written one after the other, followed by one space when `word::space_after` is true;
/// - a paragraph ends with `\n` instead of the space (whatever `SpaceAfter` says), and the text has no trailing
///   separator after the last word;
/// - a multiword token (`don't` = `do` + `n't`) is written with its surface form; when the forms of its words
///   spell it exactly, each word gets its own part, otherwise (`del` = `de` + `el`) the surface span is shared
///   out in proportion to the words' form lengths (every word gets at least one character when the surface has
///   as many characters as the token has words, else the last words get empty spans).
/// Without sentences (a document built by hand from words only) the text is one paragraph.
inline document_text document_surface_text(const document& doc) {
  document_text out;
  const std::size_t n = doc.words.size();
  out.words.resize(n);
  // Which words end a paragraph: the last word of a paragraph's last sentence.
  std::vector<char> ends_paragraph(n, 0);
  for (const paragraph& par : doc.paragraphs) {
    if (par.end <= par.begin || par.end > static_cast<doc_index>(doc.sentences.size())) continue;
    const doc_index last = doc.sentences[static_cast<std::size_t>(par.end - 1)].end - 1;
    if (last >= 0 && last < static_cast<doc_index>(n)) ends_paragraph[static_cast<std::size_t>(last)] = 1;
  }
  std::vector<const multiword_token*> mwt_at(n, nullptr);
  for (const multiword_token& t : doc.multiword_tokens) {
    if (t.begin >= 0 && t.begin < t.end && t.end <= static_cast<doc_index>(n))
      mwt_at[static_cast<std::size_t>(t.begin)] = &t;
  }
  auto separator = [&](std::size_t last_word, bool space_after) {
    if (last_word + 1 >= n) return;
    if (ends_paragraph[last_word]) {
      out.text += '\n';
    } else if (space_after) {
      out.text += ' ';
    }
  };
  std::size_t w = 0;
  while (w < n) {
    if (const multiword_token* t = mwt_at[w]) {
      const std::size_t b = static_cast<std::size_t>(t->begin), e = static_cast<std::size_t>(t->end);
      const std::size_t start = out.text.size();
      std::string joined;
      for (std::size_t k = b; k < e; ++k) joined += doc.words[k].form;
      out.text += t->form;
      if (joined == t->form) {
        std::size_t at = start;
        for (std::size_t k = b; k < e; ++k) {
          out.words[k] = {at, at + doc.words[k].form.size()};
          at += doc.words[k].form.size();
        }
      } else {
        // Proportional share of the surface characters, each word at least one when possible.
        const std::size_t surface = t->form.size(), count = e - b;
        std::size_t total = 0;
        for (std::size_t k = b; k < e; ++k) total += std::max<std::size_t>(1, doc.words[k].form.size());
        std::size_t at = start;
        std::size_t used_weight = 0;
        for (std::size_t k = b; k < e; ++k) {
          used_weight += std::max<std::size_t>(1, doc.words[k].form.size());
          std::size_t stop = start + (k + 1 == e ? surface : surface * used_weight / total);
          const std::size_t remaining_words = e - k - 1;
          if (surface >= count) {
            stop = std::max(stop, at + 1);
            stop = std::min(stop, start + surface - remaining_words);
          }
          stop = std::max(stop, at);
          out.words[k] = {at, stop};
          at = stop;
        }
      }
      separator(e - 1, t->space_after);
      w = e;
    } else {
      const std::size_t start = out.text.size();
      out.text += doc.words[w].form;
      out.words[w] = {start, out.text.size()};
      separator(w, doc.words[w].space_after);
      ++w;
    }
  }
  return out;
}

/// Which word each token belongs to. Built by `align_tokens`.
struct token_alignment {
  std::vector<doc_index> word_of_token;  ///< per token: the word it belongs to, or -1 for none
  std::vector<Index> tokens_per_word;    ///< per word: how many tokens belong to it (0 is possible)
  Index unaligned_tokens = 0;            ///< tokens that belong to no word
  Index words_without_tokens = 0;        ///< words that no token belongs to (their word rows stay 0)

  Index tokens() const noexcept { return static_cast<Index>(word_of_token.size()); }
  Index words() const noexcept { return static_cast<Index>(tokens_per_word.size()); }
};

/// Assigns each token to a word by character offsets. `tokens` and `words` are ranges of objects with `begin` and
/// `end` members (character offsets `[begin, end)` into the same text), e.g. `char_span`, or
/// `sentencepiece_token` (byte spans) for tokens. A token belongs to the word it overlaps most (ties: the earlier
/// word); a token that overlaps no word (empty spans, whitespace, special tokens given empty spans) belongs to
/// none. Tokens may come in any order and may overlap (NFKC expansions share bytes).
/// Throws `argument_error` when a span has `end < begin`, or when the words are not increasing and
/// non-overlapping (naming the word).
template <class TokenRange, class WordRange>
token_alignment align_tokens(const TokenRange& tokens, const WordRange& words) {
  std::vector<char_span> w;
  for (const auto& word_span : words)
    w.push_back({static_cast<std::size_t>(word_span.begin), static_cast<std::size_t>(word_span.end)});
  for (std::size_t k = 0; k < w.size(); ++k) {
    if (w[k].end < w[k].begin)
      detail::fail<argument_error>("word ", k, " has span [", w[k].begin, ", ", w[k].end, "), expected begin <= end");
    if (k > 0 && w[k].begin < w[k - 1].end) {
      detail::fail<argument_error>("word ", k, " starts at ", w[k].begin, " before word ", k - 1, " ends at ",
                                   w[k - 1].end, ", expected increasing, non-overlapping word spans");
    }
  }
  token_alignment out;
  out.tokens_per_word.assign(w.size(), 0);
  std::size_t t = 0;
  for (const auto& token : tokens) {
    const std::size_t tb = static_cast<std::size_t>(token.begin), te = static_cast<std::size_t>(token.end);
    if (te < tb) detail::fail<argument_error>("token ", t, " has span [", tb, ", ", te, "), expected begin <= end");
    doc_index best = -1;
    std::size_t best_overlap = 0;
    // First word whose end lies after the token's begin.
    auto it = std::upper_bound(w.begin(), w.end(), tb, [](std::size_t v, const char_span& s) { return v < s.end; });
    for (; it != w.end() && it->begin < te; ++it) {
      const std::size_t overlap = std::min(te, it->end) - std::max(tb, it->begin);
      if (overlap > best_overlap) {
        best_overlap = overlap;
        best = static_cast<doc_index>(it - w.begin());
      }
    }
    out.word_of_token.push_back(best);
    if (best >= 0) {
      ++out.tokens_per_word[static_cast<std::size_t>(best)];
    } else {
      ++out.unaligned_tokens;
    }
    ++t;
  }
  for (Index c : out.tokens_per_word) out.words_without_tokens += c == 0 ? 1 : 0;
  return out;
}

/// Aligns tokens with the words of `doc` through `document_surface_text(doc)`: the token spans must be offsets
/// into that text.
template <class TokenRange>
token_alignment align_tokens(const TokenRange& tokens, const document& doc) {
  return align_tokens(tokens, document_surface_text(doc).words);
}

/// A word-level attention map made from a token-level one, with what was dropped.
template <class Scalar>
struct word_attention {
  matrix<Scalar> map;  ///< [W x W]; a row sums to 1 (renormalised) or is all 0 (no tokens, or all mass dropped)
  /// Per word row: the mean over the word's tokens of the mass they put on tokens of no word, before renormalising
  /// (0 for a word without tokens).
  vector<double> dropped_mass;
  double mean_dropped_mass = 0;  ///< mean of `dropped_mass` over the words that have tokens
  Index zero_rows = 0;           ///< word rows left all 0
};

/// Converts a token-level map [T x T] (rows: attending tokens) into a word-level map [W x W] into `out`
/// (resized, reused): `out(i, j) = mean over tokens t of word i of (sum over tokens u of word j of map(t, u))`.
/// Columns of tokens that belong to no word are dropped and their mass recorded in `out.dropped_mass`; rows of
/// such tokens are ignored. With `renormalise` (the default) each word row is then divided by its sum, so it sums
/// to 1 again; a row whose sum is 0 stays 0. Sums are taken in double.
/// Throws `shape_error` when `token_map` is not square or its size differs from `alignment.tokens()`.
template <class Derived>
void token_to_word_map(const Eigen::MatrixBase<Derived>& token_map, const token_alignment& alignment,
                       word_attention<typename Derived::Scalar>& out, bool renormalise = true) {
  using Scalar = typename Derived::Scalar;
  const Index t_count = alignment.tokens();
  if (token_map.rows() != token_map.cols() || token_map.rows() != t_count) {
    detail::fail<shape_error>("token map is ", token_map.rows(), " x ", token_map.cols(), ", expected ", t_count, " x ",
                              t_count, " (the alignment's token count)");
  }
  const Index w_count = alignment.words();
  matrix<double> acc = matrix<double>::Zero(w_count, w_count);
  out.dropped_mass.setZero(w_count);
  for (Index t = 0; t < t_count; ++t) {
    const doc_index i = alignment.word_of_token[static_cast<std::size_t>(t)];
    if (i < 0) continue;
    double dropped = 0;
    for (Index u = 0; u < t_count; ++u) {
      const doc_index j = alignment.word_of_token[static_cast<std::size_t>(u)];
      const double v = static_cast<double>(token_map(t, u));
      if (j < 0) {
        dropped += v;
      } else {
        acc(i, j) += v;
      }
    }
    out.dropped_mass[i] += dropped;
  }
  out.map.resize(w_count, w_count);
  out.zero_rows = 0;
  double dropped_total = 0;
  Index with_tokens = 0;
  for (Index i = 0; i < w_count; ++i) {
    const Index n = alignment.tokens_per_word[static_cast<std::size_t>(i)];
    if (n > 0) {
      acc.row(i) /= static_cast<double>(n);
      out.dropped_mass[i] /= static_cast<double>(n);
      dropped_total += out.dropped_mass[i];
      ++with_tokens;
    }
    const double sum = acc.row(i).sum();
    if (renormalise && sum > 0) acc.row(i) /= sum;
    if (sum == 0) ++out.zero_rows;
    out.map.row(i) = acc.row(i).template cast<Scalar>();
  }
  out.mean_dropped_mass = with_tokens > 0 ? dropped_total / static_cast<double>(with_tokens) : 0.0;
}

/// Returning form of `token_to_word_map`.
template <class Derived>
word_attention<typename Derived::Scalar> token_to_word_map(const Eigen::MatrixBase<Derived>& token_map,
                                                           const token_alignment& alignment, bool renormalise = true) {
  word_attention<typename Derived::Scalar> out;
  token_to_word_map(token_map, alignment, out, renormalise);
  return out;
}

/// `token_to_word_map` of every map of a [..., T, T] tensor (e.g. [layers, heads, T, T] from
/// `attention_model::attention`): the same leading dimensions over [W, W]. Throws `shape_error` when the tensor
/// has fewer than 2 dimensions or its last two are not the alignment's token count.
template <class Scalar>
tensor<Scalar> token_to_word_maps(const tensor<Scalar>& token_maps, const token_alignment& alignment) {
  const std::size_t rank = token_maps.shape.size();
  const Index T = alignment.tokens(), W = alignment.words();
  if (rank < 2 || token_maps.shape[rank - 1] != T || token_maps.shape[rank - 2] != T) {
    detail::fail<shape_error>("token maps have ", rank, " dimensions ending in ",
                              rank < 2 ? Index(0) : token_maps.shape[rank - 2], " x ",
                              rank < 1 ? Index(0) : token_maps.shape[rank - 1], ", expected [..., ", T, ", ", T,
                              "] (the alignment's token count)");
  }
  tensor<Scalar> out;
  out.shape = token_maps.shape;
  out.shape[rank - 2] = out.shape[rank - 1] = W;
  const Index maps = T == 0 ? 0 : Index(token_maps.data.size()) / (T * T);
  out.data.resize(std::size_t(maps * W * W));
  word_attention<Scalar> word_map;
  for (Index k = 0; k < maps; ++k) {
    token_to_word_map(Eigen::Map<const matrix<Scalar>>(token_maps.data.data() + k * T * T, T, T), alignment, word_map);
    Eigen::Map<matrix<Scalar>>(out.data.data() + k * W * W, W, W) = word_map.map;
  }
  return out;
}

/// A window of words `[begin, end)` of a document (the rows and columns of a word-level map over the window, row
/// `r` being word `begin + r`), and the words `[own_begin, own_end)` it owns: the rows that feature accumulators
/// count from this window. Indices are document-level.
struct word_window {
  Index begin = 0;
  Index end = 0;
  Index own_begin = 0;
  Index own_end = 0;

  Index size() const noexcept { return end - begin; }
  bool operator==(const word_window& o) const noexcept {
    return begin == o.begin && end == o.end && own_begin == o.own_begin && own_end == o.own_end;
  }
};

/// The one window covering a whole document of `words` words, owning all of them.
inline word_window whole_document(Index words) { return {0, words, 0, words}; }

/// Cuts a document of `words` words into windows of at most `max_words` words starting every `stride` words:
/// `[k * stride, min(k * stride + max_words, words))` for k = 0, 1, ... up to the first window that reaches the
/// end of the document.
///
/// Ownership (which window counts a word's row): the window where the word is most central, i.e. whose
/// `min(words of context on the left, words of context on the right)` is largest, where a window edge that is
/// also the document's edge counts as unlimited context (the window sees everything there is). Ties go to the
/// earlier window. Every word is owned by exactly one window and each window owns one contiguous range, so
/// summing features over all windows counts each word row exactly once. With `stride == max_words` the windows
/// do not overlap and each owns itself.
///
/// Throws `argument_error` unless `words >= 0`, `max_words >= 1` and `1 <= stride <= max_words`. Returns no
/// window for an empty document.
inline std::vector<word_window> make_windows(Index words, Index max_words, Index stride) {
  if (words < 0) detail::fail<argument_error>("words is ", words, ", expected >= 0");
  if (max_words < 1) detail::fail<argument_error>("max_words is ", max_words, ", expected >= 1");
  if (stride < 1 || stride > max_words) {
    detail::fail<argument_error>("stride is ", stride, ", expected 1 <= stride <= max_words = ", max_words);
  }
  std::vector<word_window> out;
  if (words == 0) return out;
  for (Index b = 0;; b += stride) {
    const Index e = std::min(b + max_words, words);
    out.push_back({b, e, 0, 0});
    if (e == words) break;
  }
  constexpr Index unlimited = std::numeric_limits<Index>::max();
  auto centrality = [&](const word_window& win, Index w) {
    const Index left = win.begin == 0 ? unlimited : w - win.begin;
    const Index right = win.end == words ? unlimited : win.end - 1 - w;
    return std::min(left, right);
  };
  const Index count = static_cast<Index>(out.size());
  std::vector<Index> owner(static_cast<std::size_t>(words), -1);
  for (Index w = 0; w < words; ++w) {
    // Windows containing w: k * stride <= w < k * stride + max_words.
    const Index k_last = std::min(count - 1, w / stride);
    const Index k_first = w >= max_words ? (w - max_words) / stride + 1 : 0;
    Index best = -1, best_c = -1;
    for (Index k = k_first; k <= k_last; ++k) {
      const word_window& win = out[static_cast<std::size_t>(k)];
      if (w < win.begin || w >= win.end) continue;
      const Index c = centrality(win, w);
      if (c > best_c) {
        best_c = c;
        best = k;
      }
    }
    HEADLENS_ASSERT(best >= 0);
    owner[static_cast<std::size_t>(w)] = best;
  }
  std::vector<char> seen(out.size(), 0);
  for (word_window& win : out) win.own_begin = win.own_end = win.begin;
  for (Index w = 0; w < words; ++w) {
    const auto k = static_cast<std::size_t>(owner[static_cast<std::size_t>(w)]);
    word_window& win = out[k];
    if (!seen[k]) {
      seen[k] = 1;
      win.own_begin = w;
    }
    HEADLENS_ASSERT(win.own_end == w || win.own_begin == w);  // each window owns one contiguous range
    win.own_end = w + 1;
  }
  return out;
}

/// Windows that fit a model's context: every window of `windows` for which `fits(begin, end)` is false (the words
/// `[begin, end)` make more tokens than the model sees) is replaced by windows that own the same words and see as
/// much of the original window's context as fits, instead of being cut off at the model's limit.
///
/// For a window that does not fit, the owned range keeps the largest context `c` (words on each side, at most what
/// the window had) such that `[own_begin - c, own_end + c)` (clamped to the window) fits, found by bisection, so
/// `fits` must be monotone: a range that fits stays fitting when it shrinks. When even the owned words alone do not
/// fit, the owned range is halved and each half is fitted the same way; a single word that does not fit on its own
/// is kept as a one-word window (the caller decides what the model does with too many tokens).
///
/// The result owns every word exactly once, as `windows` did, in the same order (a window that owns no word and
/// does not fit is dropped). `fits` is called O(log n) times per
/// window that does not fit and once per window that does.
template <class Fits>
std::vector<word_window> fit_windows(const std::vector<word_window>& windows, Fits&& fits) {
  std::vector<word_window> out;
  out.reserve(windows.size());
  // Owned range [a, b) inside context [lo, hi): the widest symmetric context that fits, or a split.
  auto fit = [&](auto&& self, Index a, Index b, Index lo, Index hi) -> void {
    auto widen = [&](Index c) { return word_window{std::max(lo, a - c), std::min(hi, b + c), a, b}; };
    const word_window tight = widen(0);
    if (b - a > 1 && !fits(tight.begin, tight.end)) {
      const Index mid = a + (b - a) / 2;
      self(self, a, mid, lo, hi);
      self(self, mid, b, lo, hi);
      return;
    }
    Index good = 0, bad = std::max(a - lo, hi - b) + 1;  // widen(good) fits (or is one word); widen(bad) does not
    while (bad - good > 1) {
      const Index c = good + (bad - good) / 2;
      const word_window w = widen(c);
      if (fits(w.begin, w.end)) {
        good = c;
      } else {
        bad = c;
      }
    }
    out.push_back(widen(good));
  };
  for (const word_window& win : windows) {
    if (fits(win.begin, win.end)) {
      out.push_back(win);
    } else if (win.own_end > win.own_begin) {  // a window owning no word counts nothing: dropped when too long
      fit(fit, win.own_begin, win.own_end, win.begin, win.end);
    }
  }
  return out;
}

}  // namespace headlens
