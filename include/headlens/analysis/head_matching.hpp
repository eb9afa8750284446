#pragma once
/// \file
/// Which head of model B does what a head of model A does: the similarity of every head of A to every head of B on
/// the same text, compared on word-level maps so that models with different tokenizers compare, and the optimal
/// one-to-one pairing of the heads (analysis/optimal_assignment.hpp).
///
/// Similarity (in [0, 1], 1 for identical attention): for each sentence, both models' token maps become word
/// maps (analysis/alignment.hpp: attention to a word sums over its tokens, from a word averages them, rows
/// renormalised). For heads a of A and b of B and a word row i, both rows are restricted to the columns both
/// models can attend to from i — the words that have tokens in both models, and only words 0..i when either model
/// is causal — and each restricted row is renormalised to sum to 1; the row's similarity is
/// 1 - JSD(p, q), the Jensen-Shannon divergence in bits (so in [0, 1]). Rows with fewer than two such columns
/// (the first word under a causal model: trivially identical) and rows where either head puts no mass on them are
/// skipped. A pair's similarity is the mean over every compared row of every sentence; `counts` holds how many.
///
/// A similarity of maps is correlational: two heads that attend alike on this text need not compute the same
/// thing, nor be used alike by the rest of their models.
///
///   auto a = headlens::load_attention_model(dir_a), b = headlens::load_attention_model(dir_b);
///   headlens::head_similarity s = headlens::compare_heads(*a, *b, headlens::read_conllu("gum.conllu"));
///   for (const headlens::head_match& m : headlens::match_heads(s)) ...  // m.a, m.b, m.similarity, m.mutual()

#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "headlens/analysis/alignment.hpp"
#include "headlens/analysis/document.hpp"
#include "headlens/analysis/optimal_assignment.hpp"
#include "headlens/error.hpp"
#include "headlens/models/attention_model.hpp"
#include "headlens/types.hpp"

namespace headlens {

/// The similarity of every head of model A to every head of model B. Heads are indexed layer-major:
/// head (l, h) is index l * heads + h.
struct head_similarity {
  Index layers_a = 0, heads_a = 0, layers_b = 0, heads_b = 0;
  matrix<double> similarity;  ///< [layers_a*heads_a x layers_b*heads_b]: mean row similarity, 0 where counts is 0
  matrix<Index> counts;       ///< same shape: word rows compared for the pair
  Index sentences = 0;        ///< sentences compared
  Index skipped_sentences = 0;  ///< sentences left out (too long for a model, or too few words)

  Index total_heads_a() const noexcept { return layers_a * heads_a; }
  Index total_heads_b() const noexcept { return layers_b * heads_b; }
};

/// `l.h` for layer-major head index `flat` of a model with `heads` heads per layer (0-based, as elsewhere).
inline std::string head_label(Index flat, Index heads) {
  return std::to_string(flat / heads) + "." + std::to_string(flat % heads);
}

namespace detail {

/// 1 - Jensen-Shannon divergence in bits of two distributions (each sums to 1), 0 log 0 = 0.
inline double js_similarity(const double* p, const double* q, std::size_t n) {
  double d = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const double m = 0.5 * (p[k] + q[k]);
    if (p[k] > 0) d += 0.5 * p[k] * std::log2(p[k] / m);
    if (q[k] > 0) d += 0.5 * q[k] * std::log2(q[k] / m);
  }
  return 1.0 - std::min(1.0, std::max(0.0, d));
}

/// Checks a [layers, heads, W, W] tensor of word maps; `name` for messages.
inline void check_word_maps(const tensor<float>& maps, Index layers, Index heads, const char* name) {
  if (maps.shape.size() != 4 || maps.shape[0] != layers || maps.shape[1] != heads || maps.shape[2] != maps.shape[3]) {
    std::string shape;
    for (std::size_t k = 0; k < maps.shape.size(); ++k) shape += (k ? ", " : "") + std::to_string(maps.shape[k]);
    detail::fail<shape_error>(name, " has shape [", shape, "], expected [", layers, ", ", heads, ", W, W]");
  }
}

}  // namespace detail

/// Sums row similarities (see the file comment) sentence by sentence; `result()` gives the means.
class head_similarity_accumulator {
 public:
  /// Throws `argument_error` when a model has no heads (layers or heads < 1).
  head_similarity_accumulator(Index layers_a, Index heads_a, bool causal_a, Index layers_b, Index heads_b,
                              bool causal_b)
      : causal_(causal_a || causal_b) {
    if (layers_a < 1 || heads_a < 1) {
      detail::fail<argument_error>("model A has ", layers_a, " layers x ", heads_a, " heads, expected at least one head");
    }
    if (layers_b < 1 || heads_b < 1) {
      detail::fail<argument_error>("model B has ", layers_b, " layers x ", heads_b, " heads, expected at least one head");
    }
    out_.layers_a = layers_a;
    out_.heads_a = heads_a;
    out_.layers_b = layers_b;
    out_.heads_b = heads_b;
    sums_ = matrix<double>::Zero(layers_a * heads_a, layers_b * heads_b);
    out_.counts = matrix<Index>::Zero(sums_.rows(), sums_.cols());
  }

  /// Adds one sentence: both models' word maps [layers, heads, W, W] over the same W words. `usable[w]` says
  /// whether word w has tokens in both models (empty: every word). Throws `shape_error` when a tensor's shape is
  /// not its model's or the two word counts (or `usable`) differ.
  void add(const tensor<float>& word_maps_a, const tensor<float>& word_maps_b, const std::vector<bool>& usable = {}) {
    detail::check_word_maps(word_maps_a, out_.layers_a, out_.heads_a, "word_maps_a");
    detail::check_word_maps(word_maps_b, out_.layers_b, out_.heads_b, "word_maps_b");
    const Index W = word_maps_a.shape[2];
    if (word_maps_b.shape[2] != W) {
      detail::fail<shape_error>("word_maps_b has ", word_maps_b.shape[2], " words, expected word_maps_a's ", W,
                                " (the same words)");
    }
    if (!usable.empty() && Index(usable.size()) != W) {
      detail::fail<shape_error>("usable has ", usable.size(), " entries, expected one per word = ", W);
    }
    const Index na = out_.total_heads_a(), nb = out_.total_heads_b();
    std::vector<double> pa, pb;  // restricted, renormalised rows: [head][column]
    std::vector<char> ok_a(static_cast<std::size_t>(na)), ok_b(static_cast<std::size_t>(nb));
    std::vector<Index> columns;
    for (Index i = 0; i < W; ++i) {
      if (!usable.empty() && !usable[std::size_t(i)]) continue;
      columns.clear();
      for (Index j = 0; j < (causal_ ? i + 1 : W); ++j) {
        if (usable.empty() || usable[std::size_t(j)]) columns.push_back(j);
      }
      const std::size_t C = columns.size();
      if (C < 2) continue;
      const auto restrict = [&](const tensor<float>& maps, Index heads, std::vector<double>& rows,
                                std::vector<char>& ok) {
        rows.assign(std::size_t(heads) * C, 0.0);
        for (Index h = 0; h < heads; ++h) {
          const float* row = maps.data.data() + (h * W + i) * W;
          double sum = 0;
          for (std::size_t c = 0; c < C; ++c) sum += rows[std::size_t(h) * C + c] = std::max(0.0f, row[columns[c]]);
          ok[std::size_t(h)] = sum > 0;
          if (sum > 0) {
            for (std::size_t c = 0; c < C; ++c) rows[std::size_t(h) * C + c] /= sum;
          }
        }
      };
      restrict(word_maps_a, na, pa, ok_a);
      restrict(word_maps_b, nb, pb, ok_b);
      for (Index a = 0; a < na; ++a) {
        if (!ok_a[std::size_t(a)]) continue;
        for (Index b = 0; b < nb; ++b) {
          if (!ok_b[std::size_t(b)]) continue;
          sums_(a, b) += detail::js_similarity(&pa[std::size_t(a) * C], &pb[std::size_t(b) * C], C);
          ++out_.counts(a, b);
        }
      }
    }
    ++out_.sentences;
  }

  /// Sentences added so far.
  Index sentences() const noexcept { return out_.sentences; }

  /// Records a sentence that was left out.
  void skip() noexcept { ++out_.skipped_sentences; }

  /// The means so far.
  head_similarity result() const {
    head_similarity out = out_;
    out.similarity = matrix<double>::Zero(sums_.rows(), sums_.cols());
    for (Index a = 0; a < sums_.rows(); ++a) {
      for (Index b = 0; b < sums_.cols(); ++b) {
        if (out.counts(a, b) > 0) out.similarity(a, b) = sums_(a, b) / double(out.counts(a, b));
      }
    }
    return out;
  }

 private:
  bool causal_;
  head_similarity out_;
  matrix<double> sums_;
};

/// What `compare_heads` reads and how.
struct head_comparison_options {
  Index min_words = 2;      ///< sentences with fewer words are skipped
  Index max_sentences = 0;  ///< stop after this many compared sentences (0: all)
  /// Called after each sentence, compared or skipped, with (sentences seen, sentences in all documents), e.g. for
  /// progress on stderr.
  std::function<void(std::size_t, std::size_t)> progress;
};

/// Runs both models over every sentence of `documents` (each sentence alone, its text as
/// `document_surface_text` writes it), turns both models' maps into word maps over the sentence's words and
/// accumulates the similarity of every pair of heads (see the file comment). A sentence longer than either
/// model's `max_tokens` or shorter than `options.min_words` is skipped and counted. Throws `argument_error` when a
/// model has no heads or no sentence could be compared (naming why), and what the models throw.
inline head_similarity compare_heads(const attention_model& a, const attention_model& b,
                                     const std::vector<document>& documents,
                                     const head_comparison_options& options = {}) {
  head_similarity_accumulator acc(a.layers(), a.heads(), a.causal(), b.layers(), b.heads(), b.causal());
  std::size_t total = 0, seen = 0;
  for (const document& doc : documents) total += doc.sentences.size();
  const auto report = [&] {
    if (options.progress) options.progress(seen, total);
  };
  for (const document& doc : documents) {
    if (doc.words.empty()) continue;
    const document_text surface = document_surface_text(doc);
    for (const sentence& sent : doc.sentences) {
      ++seen;
      if (options.max_sentences > 0 && acc.sentences() >= options.max_sentences) break;
      if (sent.size() < std::max<Index>(options.min_words, 1)) {
        acc.skip();
        report();
        continue;
      }
      const std::size_t base = surface.words[std::size_t(sent.begin)].begin;
      std::vector<char_span> spans;
      for (doc_index w = sent.begin; w < sent.end; ++w) {
        const char_span& span = surface.words[std::size_t(w)];
        spans.push_back({span.begin - base, span.end - base});
      }
      const std::string text = surface.text.substr(base, spans.back().end);
      const std::vector<model_token> tokens_a = a.tokenize(text), tokens_b = b.tokenize(text);
      if (tokens_a.empty() || tokens_b.empty() || Index(tokens_a.size()) > a.max_tokens() ||
          Index(tokens_b.size()) > b.max_tokens()) {
        acc.skip();
        report();
        continue;
      }
      const token_alignment align_a = align_tokens(tokens_a, spans), align_b = align_tokens(tokens_b, spans);
      std::vector<bool> usable(spans.size());
      for (std::size_t w = 0; w < spans.size(); ++w) {
        usable[w] = align_a.tokens_per_word[w] > 0 && align_b.tokens_per_word[w] > 0;
      }
      acc.add(token_to_word_maps(a.attention(token_ids(tokens_a)), align_a),
              token_to_word_maps(b.attention(token_ids(tokens_b)), align_b), usable);
      report();
    }
  }
  head_similarity out = acc.result();
  if (out.sentences == 0) {
    detail::fail<argument_error>("no sentence could be compared (", total, " sentences, ", out.skipped_sentences,
                                 " skipped: fewer than ", options.min_words,
                                 " words or too long for a model), expected at least one");
  }
  return out;
}

/// One pair of the optimal matching.
struct head_match {
  Index a = 0, b = 0;       ///< layer-major head indices in A and B
  double similarity = 0;    ///< their similarity
  bool best_for_a = false;  ///< b is (one of) a's most similar heads in B
  bool best_for_b = false;  ///< a is (one of) b's most similar heads in A
  /// Mutual nearest neighbours: each is the other's best match.
  bool mutual() const noexcept { return best_for_a && best_for_b; }
};

/// The one-to-one pairing of heads of A with heads of B that maximises the total similarity (Hungarian algorithm;
/// min(heads A, heads B) pairs), in order of A's heads. Throws `argument_error` for an empty matrix.
inline std::vector<head_match> match_heads(const head_similarity& s) {
  const matrix<double>& m = s.similarity;
  if (m.rows() == 0 || m.cols() == 0) {
    detail::fail<argument_error>("similarity is ", m.rows(), " x ", m.cols(), ", expected at least one head each");
  }
  const std::vector<Index> col = maximum_assignment(m);
  std::vector<head_match> out;
  for (Index a = 0; a < m.rows(); ++a) {
    const Index b = col[std::size_t(a)];
    if (b < 0) continue;
    head_match pair;
    pair.a = a;
    pair.b = b;
    pair.similarity = m(a, b);
    pair.best_for_a = m(a, b) >= m.row(a).maxCoeff();
    pair.best_for_b = m(a, b) >= m.col(b).maxCoeff();
    out.push_back(pair);
  }
  return out;
}

}  // namespace headlens
