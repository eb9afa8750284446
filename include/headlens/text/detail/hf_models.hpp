#pragma once
/// \file
/// Internal: the four Hugging Face `tokenizers` models (BPE, WordPiece, Unigram, WordLevel) that turn one pre-token
/// into ids with byte ranges of that pre-token. Each can be built without JSON (from a vocabulary and merges or
/// scores), so that GGUF's embedded tokenizers can reuse them.

#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "headlens/error.hpp"
#include "headlens/text/detail/hf_unicode.hpp"

namespace headlens {
namespace detail {
namespace hf {

/// One token of a pre-token: its id and byte range within the pre-token.
struct piece {
  std::int32_t id;
  std::size_t begin;
  std::size_t end;
};

/// The id of `<0xAB>`-style byte tokens, or -1 per byte when the vocabulary lacks it.
inline std::vector<std::int32_t> byte_token_ids(const std::unordered_map<std::string, std::int32_t>& vocab) {
  std::vector<std::int32_t> ids(256, -1);
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = vocab.find(name);
    if (it != vocab.end()) ids[static_cast<std::size_t>(b)] = it->second;
  }
  return ids;
}

/// Byte-pair encoding with merge ranks (`tokenizers`' `BPE`).
struct bpe_model {
  std::unordered_map<std::string, std::int32_t> vocab;
  /// (left id << 32 | right id) -> (rank, merged id).
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges;
  std::optional<std::int32_t> unk_id;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  std::vector<std::int32_t> byte_ids;  // filled by finish()

  /// Words seen before and their tokens (words repeat; the reference caches them too). Shared by copies.
  struct word_cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<piece>> words;
  };
  std::shared_ptr<word_cache> cache = std::make_shared<word_cache>();
  static constexpr std::size_t cache_capacity = 50000;
  static constexpr std::size_t cached_word_bytes = 256;  // longer words are not worth keeping

  static std::uint64_t key(std::int32_t a, std::int32_t b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  /// Adds merge number `rank` of `left` and `right`; returns false when a part or the merged token is not in the vocabulary.
  bool add_merge(const std::string& left, const std::string& right, std::int32_t rank, std::string* missing) {
    const auto a = vocab.find(left), b = vocab.find(right);
    if (a == vocab.end()) return *missing = left, false;
    if (b == vocab.end()) return *missing = right, false;
    std::string merged = left;
    if (!continuing_subword_prefix.empty() && right.compare(0, continuing_subword_prefix.size(), continuing_subword_prefix) == 0) {
      merged += right.substr(continuing_subword_prefix.size());
    } else {
      merged += right;
    }
    const auto m = vocab.find(merged);
    if (m == vocab.end()) return *missing = merged, false;
    merges.emplace(key(a->second, b->second), std::make_pair(rank, m->second));
    return true;
  }
  void finish() { byte_ids = byte_token_ids(vocab); }

  std::vector<piece> tokenize(std::string_view word) const {
    if (word.size() > cached_word_bytes) return merge_word(word);
    const std::string key_word(word);
    {
      std::lock_guard<std::mutex> lock(cache->mutex);
      const auto it = cache->words.find(key_word);
      if (it != cache->words.end()) return it->second;
    }
    auto out = merge_word(word);
    std::lock_guard<std::mutex> lock(cache->mutex);
    if (cache->words.size() >= cache_capacity) cache->words.clear();
    cache->words.emplace(key_word, out);
    return out;
  }

  /// The tokens of one word: its characters (or byte-fallback bytes, or unk) merged lowest rank first.
  std::vector<piece> merge_word(std::string_view word) const {
    std::vector<piece> out;
    if (word.empty()) return out;
    if (ignore_merges) {
      const auto it = vocab.find(std::string(word));
      if (it != vocab.end()) return {{it->second, 0, word.size()}};
    }
    // Symbols: id, byte range; doubly linked through prev/next.
    struct symbol {
      std::int32_t id;
      std::size_t begin, end;
      std::ptrdiff_t prev, next;
    };
    std::vector<symbol> sym;
    sym.reserve(word.size());
    std::optional<std::pair<std::int32_t, std::pair<std::size_t, std::size_t>>> pending_unk;
    auto push = [&](std::int32_t id, std::size_t b, std::size_t e) {
      sym.push_back({id, b, e, static_cast<std::ptrdiff_t>(sym.size()) - 1, static_cast<std::ptrdiff_t>(sym.size()) + 1});
    };
    auto flush_unk = [&] {
      if (pending_unk) push(pending_unk->first, pending_unk->second.first, pending_unk->second.second);
      pending_unk.reset();
    };
    std::string s;
    for (std::size_t i = 0; i < word.size();) {
      const std::size_t len = std::min(utf8_length_of_lead(static_cast<unsigned char>(word[i])), word.size() - i);
      s.assign(word.data() + i, len);
      if (i > 0 && !continuing_subword_prefix.empty()) s = continuing_subword_prefix + s;
      if (i + len == word.size() && !end_of_word_suffix.empty()) s += end_of_word_suffix;
      const auto it = vocab.find(s);
      if (it != vocab.end()) {
        flush_unk();
        push(it->second, i, i + len);
      } else {
        bool fell_back = false;
        if (byte_fallback) {
          bool all = true;
          for (std::size_t k = 0; k < len; ++k) all = all && byte_ids[static_cast<unsigned char>(word[i + k])] >= 0;
          if (all) {
            flush_unk();
            for (std::size_t k = 0; k < len; ++k) push(byte_ids[static_cast<unsigned char>(word[i + k])], i + k, i + k + 1);
            fell_back = true;
          }
        }
        if (!fell_back && unk_id) {
          if (pending_unk && fuse_unk) {
            pending_unk->second.second = i + len;
          } else {
            flush_unk();
            pending_unk = std::make_pair(*unk_id, std::make_pair(i, i + len));
          }
        }
      }
      i += len;
    }
    flush_unk();
    if (sym.empty()) return out;
    sym.back().next = -1;
    // Candidate merges, lowest rank first, then leftmost.
    struct cand {
      std::int32_t rank;
      std::size_t pos;
      std::int32_t new_id;
      bool operator>(const cand& o) const noexcept { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<cand, std::vector<cand>, std::greater<cand>> queue;
    auto consider = [&](std::ptrdiff_t a) {
      if (a < 0 || sym[static_cast<std::size_t>(a)].next < 0) return;
      const auto& l = sym[static_cast<std::size_t>(a)];
      const auto it = merges.find(key(l.id, sym[static_cast<std::size_t>(l.next)].id));
      if (it != merges.end()) queue.push({it->second.first, static_cast<std::size_t>(a), it->second.second});
    };
    for (std::size_t i = 0; i + 1 < sym.size(); ++i) consider(static_cast<std::ptrdiff_t>(i));
    std::vector<bool> dead(sym.size(), false);
    while (!queue.empty()) {
      const cand c = queue.top();
      queue.pop();
      auto& l = sym[c.pos];
      if (dead[c.pos] || l.next < 0) continue;
      auto& r = sym[static_cast<std::size_t>(l.next)];
      const auto it = merges.find(key(l.id, r.id));
      if (it == merges.end() || it->second.second != c.new_id) continue;
      l.id = c.new_id;
      l.end = r.end;
      dead[static_cast<std::size_t>(l.next)] = true;
      l.next = r.next;
      if (l.next >= 0) sym[static_cast<std::size_t>(l.next)].prev = static_cast<std::ptrdiff_t>(c.pos);
      consider(l.prev);
      consider(static_cast<std::ptrdiff_t>(c.pos));
    }
    for (std::ptrdiff_t i = 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next) {
      out.push_back({sym[static_cast<std::size_t>(i)].id, sym[static_cast<std::size_t>(i)].begin, sym[static_cast<std::size_t>(i)].end});
    }
    return out;
  }
};

/// Greedy longest-match-first WordPiece (`tokenizers`' `WordPiece`).
struct wordpiece_model {
  std::unordered_map<std::string, std::int32_t> vocab;
  std::int32_t unk_id = 0;
  std::string continuing_subword_prefix = "##";
  std::size_t max_input_chars_per_word = 100;

  std::vector<piece> tokenize(std::string_view word) const {
    std::size_t chars = 0;
    for (std::size_t i = 0; i < word.size(); i += utf8_length_of_lead(static_cast<unsigned char>(word[i]))) ++chars;
    if (chars > max_input_chars_per_word) return {{unk_id, 0, word.size()}};
    std::vector<piece> out;
    std::size_t start = 0;
    std::string candidate;
    while (start < word.size()) {
      std::size_t end = word.size();
      bool found = false;
      while (start < end) {
        candidate.assign(start > 0 ? continuing_subword_prefix : std::string());
        candidate.append(word.data() + start, end - start);
        const auto it = vocab.find(candidate);
        if (it != vocab.end()) {
          out.push_back({it->second, start, end});
          found = true;
          break;
        }
        do --end; while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0u) == 0x80u);
      }
      if (!found) return {{unk_id, 0, word.size()}};
      start = end;
    }
    return out;
  }
};

/// Whole-word lookup (`tokenizers`' `WordLevel`).
struct wordlevel_model {
  std::unordered_map<std::string, std::int32_t> vocab;
  std::optional<std::int32_t> unk_id;
  std::string unk_token;

  std::vector<piece> tokenize(std::string_view word) const {
    const auto it = vocab.find(std::string(word));
    if (it != vocab.end()) return {{it->second, 0, word.size()}};
    if (!unk_id) fail<argument_error>("WordLevel: \"", word, "\" is not in the vocabulary and the model has no unk_token");
    return {{*unk_id, 0, word.size()}};
  }
};

/// Viterbi segmentation with piece scores (`tokenizers`' `Unigram`).
struct unigram_model {
  std::vector<std::pair<std::string, double>> pieces;
  std::unordered_map<std::string, std::int32_t> vocab;
  std::optional<std::int32_t> unk_id;
  bool byte_fallback = false;
  bool fuse_unk = true;
  double min_score = 0.0;
  std::size_t max_piece_bytes = 0;
  std::vector<std::int32_t> byte_ids;

  void finish() {
    vocab.clear();
    min_score = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      vocab.emplace(pieces[i].first, static_cast<std::int32_t>(i));
      min_score = std::min(min_score, pieces[i].second);
      max_piece_bytes = std::max(max_piece_bytes, pieces[i].first.size());
    }
    if (pieces.empty()) min_score = 0.0;
    byte_ids = byte_token_ids(vocab);
  }

  std::vector<piece> tokenize(std::string_view s) const {
    std::vector<piece> out;
    if (s.empty()) return out;
    const double unk_score = min_score - 10.0;
    struct node {
      std::int32_t id = -1;
      std::ptrdiff_t start = -1;
      double score = 0.0;
    };
    std::vector<node> best(s.size() + 1);
    best[0].start = 0;
    std::string key;
    for (std::size_t at = 0; at < s.size();) {
      const std::size_t mblen = std::min(utf8_length_of_lead(static_cast<unsigned char>(s[at])), s.size() - at);
      if (best[at].start < 0) {  // unreachable position (cannot happen: each char gets at least unk)
        at += mblen;
        continue;
      }
      const double here = best[at].score;
      bool single = false;
      // Prefix matches in order of increasing length, as a trie's common-prefix search yields them.
      for (std::size_t len = 1; at + len <= s.size() && len <= max_piece_bytes; ++len) {
        const std::size_t e = at + len;
        if (e < s.size() && (static_cast<unsigned char>(s[e]) & 0xC0u) == 0x80u) continue;
        key.assign(s.data() + at, len);
        const auto it = vocab.find(key);
        if (it == vocab.end()) continue;
        const double cand = here + pieces[static_cast<std::size_t>(it->second)].second;
        if (best[e].start < 0 || cand > best[e].score) best[e] = {it->second, static_cast<std::ptrdiff_t>(at), cand};
        if (len == mblen) single = true;
      }
      if (!single) {
        const std::size_t e = at + mblen;
        const double cand = here + unk_score;
        if (best[e].start < 0 || cand > best[e].score) best[e] = {unk_id ? *unk_id : -1, static_cast<std::ptrdiff_t>(at), cand};
      }
      at += mblen;
    }
    std::vector<piece> rev;
    for (std::size_t e = s.size(); e > 0;) {
      const node& n = best[e];
      const std::size_t b = static_cast<std::size_t>(n.start);
      rev.push_back({n.id, b, e});
      e = b;
    }
    for (auto it = rev.rbegin(); it != rev.rend(); ++it) {
      const bool is_unk = it->id < 0 || (unk_id && it->id == *unk_id);
      if (fuse_unk && is_unk && !out.empty() && (out.back().id == -2)) {
        out.back().end = it->end;
        continue;
      }
      out.push_back({is_unk ? -2 : it->id, it->begin, it->end});
    }
    std::vector<piece> result;
    for (const auto& p : out) {
      if (p.id != -2) {
        result.push_back(p);
        continue;
      }
      // An unknown stretch: its spelling may still be a piece (fused), else bytes, else unk.
      const auto it = vocab.find(std::string(s.substr(p.begin, p.end - p.begin)));
      if (it != vocab.end() && (!unk_id || it->second != *unk_id)) {
        result.push_back({it->second, p.begin, p.end});
      } else if (byte_fallback) {
        bool all = true;
        for (std::size_t k = p.begin; k < p.end; ++k) all = all && byte_ids[static_cast<unsigned char>(s[k])] >= 0;
        if (all) {
          // Each byte token spans the whole unknown stretch, as the reference reports it.
          for (std::size_t k = p.begin; k < p.end; ++k) result.push_back({byte_ids[static_cast<unsigned char>(s[k])], p.begin, p.end});
        } else if (unk_id) {
          result.push_back({*unk_id, p.begin, p.end});
        }
      } else if (unk_id) {
        result.push_back({*unk_id, p.begin, p.end});
      } else {
        fail<argument_error>("Unigram: text needs the unknown token but the model has no unk_id");
      }
    }
    return result;
  }
};

}  // namespace hf
}  // namespace detail
}  // namespace headlens
