#pragma once
/// \file
/// `streaming_word_features`: the word-level features of every head of a window, measured inside the attention
/// kernel's streaming path (a `pattern_row_observer`, kernels/pattern_rows.hpp), so no [T x T] map, token-level or
/// word-level, exists at any time: memory per layer is O(heads x T) plus, per thread, one block of token rows
/// [block x T] and one word row.
///
/// For each layer the kernel hands over, every head (in parallel over heads) walks the window's measured words
/// (`window_measure::first_row .. end_row`) in blocks of whole words of at most `block_tokens` tokens (fewer at
/// long context, so a block stays in cache): the exact pattern rows of the block's tokens are computed, and each
/// word's row is built from them as `token_to_word_map` does (attention to a word sums its tokens, from a word
/// averages its tokens' rows, mass on tokens of no word is dropped and the row renormalised) and measured at once
/// by the same `window_measure` the materialised path uses. Words whose tokens are one unbroken run (every
/// tokenizer that keeps words whole) go by runs of columns in float, renormalised by `window_measure` as it sweeps;
/// when every word is one token, in order, the token rows are measured in place; other layouts go by a scalar
/// scatter in double.
/// So the features equal the materialised path's within float rounding of the pattern.
///
/// Use (attention_model does this for `head_analysis`):
/// ```
/// streaming_word_features measure(accumulator, prepared, window, alignment);
/// model.observe_attention(ids, measure);   // every layer's heads measured as the forward runs
/// measure.commit();                        // adds the window to every head, or nothing if a row was bad
/// ```

#include <algorithm>
#include <cmath>
#include <exception>
#include <vector>

#include "headlens/analysis/alignment.hpp"
#include "headlens/analysis/features.hpp"
#include "headlens/error.hpp"
#include "headlens/kernels/parallel.hpp"
#include "headlens/kernels/pattern_rows.hpp"

namespace headlens {

/// Measures one window's word-level features of every head of a model from the kernel's exact pattern rows (see
/// the file comment). The accumulator, document, window and alignment must outlive it.
class streaming_word_features final : public pattern_row_observer<float> {
 public:
  /// Token rows per block at most (a block holds at least one whole word; fewer rows from T = 8,739 tokens on).
  static constexpr Index block_tokens = 60;

  /// `alignment` maps the window's tokens to its words (`alignment.words() == window.size()`). `threads`: 0 for
  /// OpenMP's default. Throws `argument_error` when the alignment does not fit the window.
  streaming_word_features(model_feature_accumulator& accumulator, const prepared_document& doc,
                          const word_window& window, const token_alignment& alignment, Index threads = 0)
      : acc_(accumulator), doc_(doc), win_(window), alignment_(alignment), threads_(detail::thread_count(threads)) {
    if (alignment.words() != window.size()) {
      detail::fail<argument_error>("alignment has ", alignment.words(), " words, expected the window's ",
                                   window.size());
    }
    detail::check_feature_window(doc, window, window.size(), window.size());
    const std::size_t heads = std::size_t(acc_.layers()) * std::size_t(acc_.heads());
    totals_.resize(heads);
    for (auto& t : totals_) t.reset(doc.relation_names().size());
    done_.assign(heads, 0);
    dropped_.assign(heads, 0.0);
    plan_blocks();
  }

  /// Called by the kernel for each layer (see kernels/pattern_rows.hpp).
  void operator()(const pattern_rows<float>& rows) override {
    const int layer = rows.layer();
    if (layer < 0 || layer >= acc_.layers() || rows.heads() != acc_.heads()) {
      detail::fail<shape_error>("streaming_word_features: the kernel's layer ", layer, " with ", rows.heads(),
                                " heads does not fit the accumulator's ", acc_.layers(), " x ", acc_.heads());
    }
    if (rows.queries() != alignment_.tokens() || rows.keys() != alignment_.tokens()) {
      detail::fail<shape_error>("streaming_word_features: the kernel ran ", rows.queries(), " queries x ", rows.keys(),
                                " keys (batch row ", rows.batch_row(), "), expected self-attention over the window's ",
                                alignment_.tokens(),
                                " tokens (a padded batch hands each window its own rows through "
                                "`sequence_observers`)");
    }
    for (Index h = 0; h < rows.heads(); ++h) {
      if (!rows.available(h)) {
        detail::fail<argument_error>("streaming_word_features: head ", h, " of layer ", layer,
                                     " did not stream "
                                     "(a hook wants its map, or it is masked); expected every head to stream");
      }
    }
    const Index T = alignment_.tokens(), n = win_.size();
    const int used = int(std::min<Index>(threads_, rows.heads()));
    if (static_cast<int>(workspaces_.size()) < used) workspaces_.resize(std::size_t(used));
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(used));
    detail::parallel_for(rows.heads(), used, [&](Index h, int thread) {
      thread_workspace& tw = workspaces_[std::size_t(thread)];
      if (errors[std::size_t(thread)]) return;
      try {
        if (!tw.prepared) {
          tw.features.prepare(doc_, win_, acc_.options().sinks_apart);
          tw.prepared = true;
        }
        tw.tokens.resize(std::size_t(block_tokens_max_ * T));
        tw.word_row.resize(std::size_t(n));
        tw.row.resize(std::size_t(n));
        measure_head(rows, h, std::size_t(layer) * std::size_t(acc_.heads()) + std::size_t(h), tw);
      } catch (...) {
        errors[std::size_t(thread)] = std::current_exception();
      }
    });
    for (const std::exception_ptr& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  }

  /// Adds the window to every head's accumulator. Throws `argument_error` unless every layer was measured (then
  /// nothing is added).
  void commit() {
    for (std::size_t k = 0; k < done_.size(); ++k) {
      if (!done_[k]) {
        detail::fail<argument_error>("streaming_word_features: layer ", k / std::size_t(acc_.heads()), " head ",
                                     k % std::size_t(acc_.heads()),
                                     " was not measured; expected the model to run "
                                     "every layer with this observer");
      }
    }
    for (std::size_t k = 0; k < totals_.size(); ++k) {
      acc_.head(int(k / std::size_t(acc_.heads())), int(k % std::size_t(acc_.heads()))).commit(totals_[k], doc_);
    }
  }

  /// Mean over heads and measured words with tokens of the mass their rows put on tokens of no word (before
  /// renormalising), as `word_attention::dropped_mass` defines it per word.
  double mean_dropped_mass() const noexcept {
    double sum = 0;
    for (double d : dropped_) sum += d;
    return owned_words_with_tokens_ == 0 || dropped_.empty()
               ? 0.0
               : sum / double(owned_words_with_tokens_) / double(dropped_.size());
  }

 private:
  struct block {
    Index first_word, end_word;    ///< window-local words [first_word, end_word)
    Index first_token, end_token;  ///< their tokens [first_token, end_token)
  };
  /// Where word j's column of a word row comes from, in word order (see `plan_key_runs`): `length` words from
  /// `word` on, each the one token `token + k` (copy), or the one word `word` whose `length` tokens are
  /// `token ..` (sum), or `length` words without tokens (zero).
  struct key_run {
    enum kind_t { copy, sum, zero } kind;
    Index word, token, length;
  };
  struct thread_workspace {
    detail::feature_workspace features;
    bool prepared = false;
    std::vector<float> tokens;    ///< [block tokens x T] pattern rows
    std::vector<float> word_row;  ///< [n] the word row being measured
    std::vector<double> row;      ///< [n] one word row, summed in double
  };

  /// Cuts the measured words into blocks of whole words. When some word's tokens are not contiguous (tokenizers
  /// that reorder or share bytes), one block holds every token.
  void plan_blocks() {
    const Index n = win_.size(), T = alignment_.tokens();
    std::vector<Index> first(std::size_t(n), T), last(std::size_t(n), -1);
    for (Index t = 0; t < T; ++t) {
      const doc_index w = alignment_.word_of_token[std::size_t(t)];
      if (w < 0) continue;
      first[std::size_t(w)] = std::min(first[std::size_t(w)], t);
      last[std::size_t(w)] = std::max(last[std::size_t(w)], t);
    }
    // Whole-word blocks need each word's tokens in one run: the words of the tokens, those of no word left out,
    // never go back.
    bool contiguous = true;
    for (Index t = 0, latest = -1; t < T && contiguous; ++t) {
      const doc_index w = alignment_.word_of_token[std::size_t(t)];
      if (w < 0) continue;
      contiguous = w >= latest;
      latest = w;
    }
    // Owned words with tokens (the dropped mass's denominator), and which rows window_measure reads.
    detail::feature_workspace ws;
    ws.prepare(doc_, win_, acc_.options().sinks_apart);
    const Index li0 = detail::window_measure::first_row(win_), li1 = detail::window_measure::end_row(ws);
    for (Index li = li0; li < std::min(li1, win_.own_end - win_.begin); ++li) {
      if (alignment_.tokens_per_word[std::size_t(li)] > 0) ++owned_words_with_tokens_;
    }
    plan_key_runs(first, last);
    plan_extents(first, last);
    blocks_.clear();
    if (li0 >= li1) return;
    // At most block_tokens token rows per block, fewer at long context: a block's rows ([block x T] floats) are
    // written by the kernel and read word by word, and should stay within about 2 MiB of cache per thread.
    // A multiple of 6 rows: the kernel's logits go 6 rows at a time, and a rest of 4 rows costs 1.6x per row.
    const Index block_limit = std::clamp<Index>((Index(1) << 19) / std::max<Index>(T, 1) / 6 * 6, 6, block_tokens);
    if (!contiguous) {
      blocks_.push_back({li0, li1, 0, T});
    } else {
      Index li = li0;
      while (li < li1) {
        block b{li, li, T, 0};
        while (b.end_word < li1) {
          const Index v = b.end_word;
          const Index ft = last[std::size_t(v)] < 0 ? b.first_token : std::min(b.first_token, first[std::size_t(v)]);
          const Index et = last[std::size_t(v)] < 0 ? b.end_token : std::max(b.end_token, last[std::size_t(v)] + 1);
          if (b.end_word > b.first_word && et > ft && et - ft > block_limit) break;
          b.first_token = ft;
          b.end_token = et;
          ++b.end_word;
        }
        if (b.end_token < b.first_token) b.first_token = b.end_token = 0;  // words without tokens only
        blocks_.push_back(b);
        li = b.end_word;
      }
    }
    for (const block& b : blocks_) {
      block_tokens_max_ = std::max(block_tokens_max_, b.end_token - b.first_token);
    }
  }

  /// The word-row layout for the fast path: possible when every word's tokens are one unbroken run (no token of
  /// another word or of none between them), as for every tokenizer that keeps words whole. `first` and `last`
  /// are each word's first and last token (T and -1 for a word without tokens).
  void plan_key_runs(const std::vector<Index>& first, const std::vector<Index>& last) {
    const Index n = win_.size(), T = alignment_.tokens();
    key_runs_.clear();
    unowned_tokens_.clear();
    one_to_one_ = false;
    first_token_ = first;
    for (Index t = 0; t < T; ++t) {
      if (alignment_.word_of_token[std::size_t(t)] < 0) unowned_tokens_.push_back(t);
    }
    for (Index w = 0; w < n; ++w) {
      const Index count = alignment_.tokens_per_word[std::size_t(w)];
      const Index f = first[std::size_t(w)], l = last[std::size_t(w)];
      if (count > 0 && l - f + 1 != count) {  // broken run: the scalar path
        key_runs_.clear();
        return;
      }
      key_run::kind_t kind = count == 0 ? key_run::zero : count == 1 ? key_run::copy : key_run::sum;
      if (kind != key_run::sum && !key_runs_.empty()) {
        key_run& r = key_runs_.back();
        if (r.kind == kind && (kind == key_run::zero || r.token + r.length == f)) {
          ++r.length;
          continue;
        }
      }
      key_runs_.push_back({kind, w, f, kind == key_run::sum ? count : 1});
    }
    one_to_one_ = key_runs_.size() == 1 && key_runs_[0].kind == key_run::copy && key_runs_[0].length == n;
  }

  /// Where each word row's mass ends in a causal model, so the feature sweep skips the zeros after it: the
  /// tokens of word v see keys up to v's last token, so v's row is 0 on every word whose first token comes later,
  /// i.e. from 1 + (the last word whose first token is at most v's last token) on.
  void plan_extents(const std::vector<Index>& first, const std::vector<Index>& last) {
    const Index n = win_.size(), T = alignment_.tokens();
    causal_extent_.assign(std::size_t(n), n);
    std::vector<Index> latest_word(std::size_t(T), -1);  // per token t: the last word whose first token is <= t
    for (Index w = 0; w < n; ++w) {
      if (first[std::size_t(w)] < T) latest_word[std::size_t(first[std::size_t(w)])] = w;
    }
    for (Index t = 1; t < T; ++t) {
      latest_word[std::size_t(t)] = std::max(latest_word[std::size_t(t)], latest_word[std::size_t(t - 1)]);
    }
    for (Index v = 0; v < n; ++v) {
      const Index l = last[std::size_t(v)];
      causal_extent_[std::size_t(v)] = l < 0 ? 0 : latest_word[std::size_t(l)] + 1;
    }
  }

  /// Writes (or, with Add, adds) words 0 .. end - 1 of the word row of one token row `p` (T values, 0 past what
  /// the token sees) to `out`, through `key_runs_`.
  template <bool Add>
  void word_row_from_tokens(const float* p, float* out, Index end) const {
    for (const key_run& r : key_runs_) {
      if (r.word >= end) break;
      float* o = out + r.word;
      const Index length = std::min(r.length, end - r.word);
      switch (r.kind) {
        case key_run::copy: {
          const float* src = p + r.token;
          for (Index k = 0; k < length; ++k) o[k] = Add ? o[k] + src[k] : src[k];
          break;
        }
        case key_run::sum: {
          float total = 0;
          for (Index k = 0; k < r.length; ++k) total += p[r.token + k];
          *o = Add ? *o + total : total;
          break;
        }
        case key_run::zero:
          if (!Add) std::fill(o, o + length, 0.0f);
          break;
      }
    }
  }

  /// Words 0 .. end - 1 of word v's row (v in block b; the row is 0 from `end` on) into `out` from the block's
  /// token rows in `tw.tokens`, through `key_runs_`: the sum of its tokens' rows, not yet renormalised to the mass
  /// on words (`window_measure` does that as it sweeps; it also divides by the token count). Returns v's dropped
  /// mass (on tokens of no word, averaged over v's tokens) when v is owned, else 0.
  double word_row_fast(const block& b, Index v, const thread_workspace& tw, float* out, Index end) const {
    const Index T = alignment_.tokens();
    const Index tokens = alignment_.tokens_per_word[std::size_t(v)];
    if (tokens == 0) {
      std::fill(out, out + end, 0.0f);
      return 0;
    }
    const Index t0 = first_token_[std::size_t(v)];
    double dropped = 0;
    for (Index t = t0; t < t0 + tokens; ++t) {
      const float* p = tw.tokens.data() + (t - b.first_token) * T;
      if (t == t0) {
        word_row_from_tokens<false>(p, out, end);
      } else {
        word_row_from_tokens<true>(p, out, end);
      }
      for (Index u : unowned_tokens_) dropped += double(p[u]);
    }
    return v < win_.own_end - win_.begin ? dropped / double(tokens) : 0.0;
  }

  /// `word_row_fast` for any layout of tokens over words: each key token's mass added to its word's column in
  /// double (`tw.row`), as `token_to_word_map` does.
  double word_row_scalar(const pattern_rows<float>& rows, const block& b, Index v, thread_workspace& tw,
                         float* out) const {
    const Index T = alignment_.tokens(), n = win_.size();
    const std::vector<doc_index>& word_of = alignment_.word_of_token;
    std::fill(tw.row.begin(), tw.row.end(), 0.0);
    double dropped = 0;
    for (Index t = b.first_token; t < b.end_token; ++t) {
      if (word_of[std::size_t(t)] != v) continue;
      const float* p = tw.tokens.data() + (t - b.first_token) * T;
      const Index seen = rows.causal() ? std::min(T, rows.past() + t + 1) : T;
      for (Index u = 0; u < seen; ++u) {
        const doc_index w = word_of[std::size_t(u)];
        if (w < 0) {
          dropped += double(p[u]);
        } else {
          tw.row[std::size_t(w)] += double(p[u]);
        }
      }
    }
    const Index tokens = alignment_.tokens_per_word[std::size_t(v)];
    if (tokens == 0) {
      std::fill(out, out + n, 0.0f);
      return 0;
    }
    double sum = 0;
    for (double& x : tw.row) sum += (x /= double(tokens));
    const double scale = sum > 0 ? 1.0 / sum : 1.0;
    for (Index j = 0; j < n; ++j) out[j] = static_cast<float>(tw.row[std::size_t(j)] * scale);
    return v < win_.own_end - win_.begin ? dropped / double(tokens) : 0.0;
  }

  /// Block b of head h when every word is one token, in order (`one_to_one_`): word v's row is its token's row
  /// from the first word's token on, so it is measured where the kernel wrote it, renormalised by `window_measure`
  /// on the fly, with no word row written. A causal row is computed and read only as far as the block sees.
  void measure_block_in_place(const pattern_rows<float>& rows, Index h, const block& b, thread_workspace& tw,
                              detail::feature_window_totals& out, double& dropped_sum) const {
    const Index T = alignment_.tokens(), n = win_.size(), own = win_.own_end - win_.begin;
    const Index offset = first_token_[0], count = b.end_token - b.first_token;
    // From the logits, exponentiated as they are swept (log p is then free), unless a row is masked or NaN.
    bool finite = true;
    for (Index t = b.first_token; t < b.end_token; ++t) finite = finite && std::isfinite(rows.log_sum_exp(h, t));
    if (finite) {
      rows.visible_logits(h, b.first_token, count, tw.tokens.data(), T);
    } else {
      rows.visible_rows(h, b.first_token, count, tw.tokens.data(), T);
    }
    for (Index v = b.first_word; v < b.end_word; ++v) {
      const Index t = first_token_[std::size_t(v)];
      float* p = tw.tokens.data() + (t - b.first_token) * T;
      const float shift = rows.log_sum_exp(h, t);
      const Index* extent = rows.causal() ? causal_extent_.data() + v : nullptr;
      if (v < own) {  // the dropped mass: tokens of no word lie outside the word columns the sweep turns
        for (Index u : unowned_tokens_) {
          if (rows.causal() && u > rows.past() + t) continue;
          dropped_sum += double(finite ? std::exp(p[u] - shift) : p[u]);
        }
      }
      if (finite) {
        detail::window_measure::rows_from_logits(p + offset, n, v, v + 1, doc_, win_, tw.features, acc_.options(), out,
                                                 extent, true, &shift);
      } else {
        detail::window_measure::rows(p + offset, n, v, v + 1, doc_, win_, tw.features, acc_.options(), out, extent,
                                     true);
      }
    }
  }

  /// Measures head h: block by block, the token rows from the kernel; word by word, its row built and measured at
  /// once, so the row is still in cache when `window_measure` sweeps it.
  void measure_head(const pattern_rows<float>& rows, Index h, std::size_t slot, thread_workspace& tw) {
    const Index T = alignment_.tokens(), n = win_.size();
    detail::feature_window_totals& out = totals_[slot];
    out.reset(doc_.relation_names().size());
    detail::window_measure::begin(tw.features);
    double dropped_sum = 0;
    float* word_row = tw.word_row.data();
    for (const block& b : blocks_) {
      const Index count = b.end_token - b.first_token;
      if (one_to_one_) {
        measure_block_in_place(rows, h, b, tw, out, dropped_sum);
        continue;
      }
      if (count > 0) rows.rows(h, b.first_token, count, tw.tokens.data(), T);
      for (Index v = b.first_word; v < b.end_word; ++v) {
        // A causal row is built and measured only up to the words its tokens see.
        const Index end = rows.causal() ? causal_extent_[std::size_t(v)] : n;
        const bool fast = !key_runs_.empty();
        dropped_sum += fast ? word_row_fast(b, v, tw, word_row, end) : word_row_scalar(rows, b, v, tw, word_row);
        detail::window_measure::rows(word_row, n, v, v + 1, doc_, win_, tw.features, acc_.options(), out,
                                     rows.causal() ? causal_extent_.data() + v : nullptr, fast);
      }
    }
    detail::window_measure::finish(doc_, win_, tw.features, out);
    dropped_[slot] = dropped_sum;
    done_[slot] = 1;
  }

  model_feature_accumulator& acc_;
  const prepared_document& doc_;
  const word_window& win_;
  const token_alignment& alignment_;
  int threads_ = 1;
  std::vector<block> blocks_;
  std::vector<key_run> key_runs_;      ///< empty when some word's tokens are not one run (the scalar path)
  std::vector<Index> unowned_tokens_;  ///< tokens of no word, for the dropped mass
  std::vector<Index> first_token_;     ///< per word: its first token (T when it has none)
  std::vector<Index> causal_extent_;   ///< per word: in a causal model its row is 0 from here on (`plan_extents`)
  bool one_to_one_ = false;            ///< every word is one token, in order (`measure_block_in_place`)
  Index block_tokens_max_ = 0, owned_words_with_tokens_ = 0;
  std::vector<thread_workspace> workspaces_;
  std::vector<detail::feature_window_totals> totals_;
  std::vector<unsigned char> done_;
  std::vector<double> dropped_;
};

}  // namespace headlens
