#pragma once
// Planted heads: synthetic word-level attention maps over a real annotated document in which every head
// implements a known function, so a classifier can be scored against the truth.
//
// A planted row i (a word of the window) is built in three steps:
//   1. the head's function gives a target distribution t_i over the window's words (see `head_kind`); a word the
//      function has nothing to say about (a root for dep->head, a word that is not a mention with an antecedent,
//      a target outside the window) falls back to a uniform row over its own sentence;
//   2. a `secondary` function can be mixed in: t_i = (1 - w) t_i + w t2_i;
//   3. sink and noise: p_i = (1 - noise) ((1 - sink) t_i + sink e_0) + noise r_i, where e_0 is the window's first
//      word and r_i a random row softmax(sharpness * z), z standard normal. With sharpness 3 a random row puts
//      between about 5% and 60% of its mass on its own argmax, so as `noise` grows the planted argmax is
//      overtaken row by row rather than all at once. (A `random` head's own rows are denser, sharpness 1.5.)
// Every row sums to 1. Everything is deterministic for a given seed.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "headlens/analysis/document.hpp"
#include "headlens/analysis/verdict.hpp"

namespace headlens_test {

/// The function a planted head implements.
enum class head_kind {
  dep_to_head,      ///< a word attends to its dependency head
  head_to_dep,      ///< a word attends to its dependents (most to the farthest one)
  dependency_both,  ///< to the head (weight 1) and the dependents (0.6 each): the head wins, roots use dependents
  coreference,      ///< a mention's head word attends to the head word of the nearest earlier mention of its cluster
  discourse_unit,   ///< every word of a discourse unit attends to the first word of the unit it is related to
  sentence_start,   ///< every word attends to the first word of the previous sentence
  previous_word,    ///< offset -1
  next_word,        ///< offset +1
  sink,             ///< everything on the window's first word
  uniform,          ///< 1 / W everywhere
  random,           ///< a dense random row, softmax(random_sharpness * z): attention with no structure
};

inline constexpr head_kind all_head_kinds[] = {
    head_kind::dep_to_head,    head_kind::head_to_dep,    head_kind::dependency_both, head_kind::coreference,
    head_kind::discourse_unit, head_kind::sentence_start, head_kind::previous_word,   head_kind::next_word,
    head_kind::sink,           head_kind::uniform,        head_kind::random};

inline const char* kind_name(head_kind kind) {
  switch (kind) {
    case head_kind::dep_to_head:
      return "dep->head";
    case head_kind::head_to_dep:
      return "head->dep";
    case head_kind::dependency_both:
      return "dep<->head";
    case head_kind::coreference:
      return "coreference";
    case head_kind::discourse_unit:
      return "discourse unit";
    case head_kind::sentence_start:
      return "sentence start";
    case head_kind::previous_word:
      return "offset -1";
    case head_kind::next_word:
      return "offset +1";
    case head_kind::sink:
      return "sink";
    case head_kind::uniform:
      return "uniform";
    case head_kind::random:
      return "random";
  }
  return "?";
}

/// The label a correct classifier gives a head of `kind`.
inline headlens::head_label expected_label(head_kind kind) {
  switch (kind) {
    case head_kind::dep_to_head:
    case head_kind::head_to_dep:
    case head_kind::dependency_both:
      return headlens::head_label::syntactic;
    case head_kind::coreference:
      return headlens::head_label::coreference;
    case head_kind::discourse_unit:
    case head_kind::sentence_start:
      return headlens::head_label::discourse;
    case head_kind::previous_word:
    case head_kind::next_word:
      return headlens::head_label::positional;
    default:
      return headlens::head_label::unassigned;
  }
}

/// One planted head: its function, an optional secondary function mixed in, sink mass and noise.
struct planted_head {
  head_kind kind = head_kind::uniform;
  head_kind secondary = head_kind::uniform;
  double secondary_weight = 0;  ///< w of step 2 (0: no mixing)
  double sink = 0;              ///< mass moved to the window's first word
  double noise = 0;             ///< weight of the random row
  double sharpness = 3;         ///< of the noise rows
  /// Of the rows of a `random` head. Lower than the noise's: a random head stands for attention without
  /// structure; rows as peaked as the noise's (sharpness 3, normalised entropy about 0.45 over 128 words) would
  /// look like focused long-range attention, which no annotation-free rule can tell from a discourse head.
  double random_sharpness = 1.5;
};

/// Row-major word-level map of one head.
using planted_map = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Precomputed lookups of a document, shared by every head planted over it.
class planted_document {
 public:
  explicit planted_document(const headlens::document& doc) : doc_(doc) {
    const auto n = static_cast<headlens::doc_index>(doc.words.size());
    dependents_.assign(doc.words.size(), {});
    for (headlens::doc_index w = 0; w < n; ++w) {
      const headlens::doc_index h = doc.words[static_cast<std::size_t>(w)].head;
      if (h >= 0 && h < n) dependents_[static_cast<std::size_t>(h)].push_back(w);
    }
    antecedent_.assign(doc.words.size(), -1);
    std::vector<headlens::doc_index> last_head(doc.clusters.size(), -1);  // by cluster, in document order
    for (const headlens::mention& m : doc.mentions) {                     // sorted by begin
      const headlens::doc_index head = m.head >= 0 ? m.head : headlens::syntactic_head(doc, m);
      if (head < 0 || m.cluster < 0 || static_cast<std::size_t>(m.cluster) >= last_head.size()) continue;
      headlens::doc_index& previous = last_head[static_cast<std::size_t>(m.cluster)];
      if (previous >= 0 && previous < m.begin && antecedent_[static_cast<std::size_t>(head)] < 0) {
        antecedent_[static_cast<std::size_t>(head)] = previous;
      }
      previous = head;
    }
    unit_of_.assign(doc.words.size(), -1);
    for (std::size_t u = 0; u < doc.discourse_units.size(); ++u) {
      const auto& unit = doc.discourse_units[u];
      for (headlens::doc_index w = std::max<headlens::doc_index>(unit.begin, 0); w < unit.end && w < n; ++w) {
        unit_of_[static_cast<std::size_t>(w)] = static_cast<headlens::doc_index>(u);
      }
    }
  }

  const headlens::document& doc() const noexcept { return doc_; }

  /// The map of `head` over the words [begin, begin + size) of the document.
  planted_map make(const planted_head& head, headlens::doc_index begin, headlens::doc_index size,
                   std::mt19937_64& rng) const {
    planted_map map(size, size);
    Eigen::RowVectorXd target(size), second(size), random_row(size);
    for (headlens::doc_index i = 0; i < size; ++i) {
      function_row(head.kind, begin, size, i, head.random_sharpness, rng, target);
      if (head.secondary_weight > 0) {
        function_row(head.secondary, begin, size, i, head.random_sharpness, rng, second);
        target = (1 - head.secondary_weight) * target + head.secondary_weight * second;
      }
      if (head.sink > 0) {
        target *= 1 - head.sink;
        target[0] += head.sink;
      }
      if (head.noise > 0) {
        random_softmax(size, head.sharpness, rng, random_row);
        target = (1 - head.noise) * target + head.noise * random_row;
      }
      map.row(i) = target / target.sum();
    }
    return map;
  }

 private:
  static void random_softmax(headlens::doc_index size, double sharpness, std::mt19937_64& rng,
                             Eigen::RowVectorXd& row) {
    std::normal_distribution<double> normal;
    for (headlens::doc_index j = 0; j < size; ++j) row[j] = sharpness * normal(rng);
    row = (row.array() - row.maxCoeff()).exp().matrix();
    row /= row.sum();
  }

  /// Uniform over the sentence of window word i (the fallback).
  void sentence_row(headlens::doc_index begin, headlens::doc_index size, headlens::doc_index i,
                    Eigen::RowVectorXd& row) const {
    row.setZero();
    const auto& s = doc_.sentences[static_cast<std::size_t>(doc_.words[static_cast<std::size_t>(begin + i)].sentence)];
    const headlens::doc_index lo = std::max(s.begin, begin) - begin;
    const headlens::doc_index hi = std::min(s.end, begin + size) - begin;
    row.segment(lo, hi - lo).setConstant(1.0 / static_cast<double>(hi - lo));
  }

  /// Puts mass 1 on document word `w` when it is inside the window; returns false (row untouched) otherwise.
  static bool point(headlens::doc_index begin, headlens::doc_index size, headlens::doc_index w,
                    Eigen::RowVectorXd& row) {
    if (w < begin || w >= begin + size) return false;
    row.setZero();
    row[w - begin] = 1;
    return true;
  }

  void function_row(head_kind kind, headlens::doc_index begin, headlens::doc_index size, headlens::doc_index i,
                    double sharpness, std::mt19937_64& rng, Eigen::RowVectorXd& row) const {
    const headlens::doc_index w = begin + i;
    const auto& word = doc_.words[static_cast<std::size_t>(w)];
    switch (kind) {
      case head_kind::dep_to_head:
        if (word.head >= 0 && point(begin, size, word.head, row)) return;
        break;
      case head_kind::head_to_dep:
      case head_kind::dependency_both: {
        row.setZero();
        bool any = false;
        headlens::doc_index farthest = -1;
        for (headlens::doc_index d : dependents_[static_cast<std::size_t>(w)]) {
          if (d < begin || d >= begin + size) continue;
          row[d - begin] = kind == head_kind::dependency_both ? 0.6 : 1.0;
          if (farthest < 0 || std::abs(d - w) > std::abs(farthest - w)) farthest = d;
          any = true;
        }
        if (kind == head_kind::head_to_dep && farthest >= 0) row[farthest - begin] += 1.0;
        if (kind == head_kind::dependency_both && word.head >= begin && word.head < begin + size) {
          row[word.head - begin] = 1.0;
          any = true;
        }
        if (any) {
          row /= row.sum();
          return;
        }
        break;
      }
      case head_kind::coreference:
        if (antecedent_[static_cast<std::size_t>(w)] >= 0 &&
            point(begin, size, antecedent_[static_cast<std::size_t>(w)], row)) {
          return;
        }
        break;
      case head_kind::discourse_unit: {
        const headlens::doc_index u = unit_of_[static_cast<std::size_t>(w)];
        if (u >= 0) {
          const headlens::doc_index parent = doc_.discourse_units[static_cast<std::size_t>(u)].parent;
          if (parent >= 0 && point(begin, size, doc_.discourse_units[static_cast<std::size_t>(parent)].begin, row)) {
            return;
          }
        }
        // A unit without a parent (the root), or a document without discourse units: previous sentence's start.
        if (previous_sentence_start(begin, size, w, row)) return;
        break;
      }
      case head_kind::sentence_start:
        if (previous_sentence_start(begin, size, w, row)) return;
        break;
      case head_kind::previous_word:
        row.setZero();
        row[i > 0 ? i - 1 : i] = 1;
        return;
      case head_kind::next_word:
        row.setZero();
        row[i + 1 < size ? i + 1 : i] = 1;
        return;
      case head_kind::sink:
        row.setZero();
        row[0] = 1;
        return;
      case head_kind::uniform:
        row.setConstant(1.0 / static_cast<double>(size));
        return;
      case head_kind::random:
        random_softmax(size, sharpness, rng, row);
        return;
    }
    sentence_row(begin, size, i, row);
  }

  bool previous_sentence_start(headlens::doc_index begin, headlens::doc_index size, headlens::doc_index w,
                               Eigen::RowVectorXd& row) const {
    const headlens::doc_index s = doc_.words[static_cast<std::size_t>(w)].sentence;
    if (s <= 0) return false;
    return point(begin, size, doc_.sentences[static_cast<std::size_t>(s - 1)].begin, row);
  }

  const headlens::document& doc_;
  std::vector<std::vector<headlens::doc_index>> dependents_;
  std::vector<headlens::doc_index> antecedent_;  ///< by mention head word: head word of the nearest earlier mention
  std::vector<headlens::doc_index> unit_of_;
};

/// Macro-averaged F1 over the five labels that occur in `truth` or `predicted` (a label neither uses is left out).
inline double macro_f1(const std::vector<headlens::head_label>& truth,
                       const std::vector<headlens::head_label>& predicted) {
  double sum = 0;
  int labels = 0;
  for (headlens::head_label label : headlens::head_labels) {
    long tp = 0, fp = 0, fn = 0;
    for (std::size_t i = 0; i < truth.size(); ++i) {
      const bool t = truth[i] == label, p = predicted[i] == label;
      tp += t && p;
      fp += !t && p;
      fn += t && !p;
    }
    if (tp + fp + fn == 0) continue;
    sum += 2.0 * static_cast<double>(tp) / static_cast<double>(2 * tp + fp + fn);
    ++labels;
  }
  return labels == 0 ? 1.0 : sum / labels;
}

}  // namespace headlens_test
