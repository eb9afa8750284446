#pragma once
/// \file
/// Internal: the normalizers, pre-tokenizers and post-processors of a Hugging Face `tokenizer.json`, as small tagged
/// structs that `hf_tokenizer` builds from the JSON and applies in the reference's order.

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "headlens/text/detail/hf_normalized.hpp"
#include "headlens/text/detail/hf_precompiled.hpp"
#include "headlens/text/detail/hf_unicode.hpp"

namespace headlens {
namespace detail {
namespace hf {

/// GPT-2's reversible byte -> printable code point map (`bytes_to_unicode`).
inline const std::array<char32_t, 256>& byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      t[static_cast<std::size_t>(b)] = printable ? static_cast<char32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

/// Maps every byte of `n` to its printable stand-in (first byte of a character replaces it, the others are inserted).
inline void byte_level_map(normalized_string& n) {
  std::vector<std::pair<char32_t, int>> dest;
  dest.reserve(n.text.size());
  const auto& table = byte_to_unicode();
  for (std::size_t i = 0; i < n.text.size();) {
    const std::size_t len = utf8_length_of_lead(static_cast<unsigned char>(n.text[i]));
    for (std::size_t k = 0; k < len; ++k) dest.push_back({table[static_cast<unsigned char>(n.text[i + k])], k > 0 ? 1 : 0});
    i += len;
  }
  n.transform(dest, 0);
}

/// GPT-2's pre-tokenizer regex, which ByteLevel uses with `use_regex`.
inline const char* gpt2_pattern() {
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
}

/// One normalizer of the pipeline.
struct normalizer {
  enum class kind { sequence, unicode, lowercase, strip, strip_accents, replace, prepend, bert, byte_level, precompiled } k = kind::sequence;
  std::vector<normalizer> children;
  unicode_form form = unicode_form::nfc;
  bool left = false, right = false;  // Strip
  pattern pat;                        // Replace
  std::string content;                // Replace content / Prepend text
  bool clean_text = true, chinese = true, strip_accents = false, lower = true;  // BertNormalizer
  std::shared_ptr<const precompiled_charsmap> charsmap;                         // Precompiled

  void apply(normalized_string& n) const {
    switch (k) {
      case kind::sequence:
        for (const auto& c : children) c.apply(n);
        break;
      case kind::unicode:
        n.unicode_normalize(form);
        break;
      case kind::lowercase:
        n.lowercase();
        break;
      case kind::strip:
        n.strip(left, right);
        break;
      case kind::strip_accents:
        n.filter([](char32_t c) { return !is_mark(c); });
        break;
      case kind::replace:
        n.replace(pat.matches(n.text), content);
        break;
      case kind::prepend:
        n.prepend(content);
        break;
      case kind::byte_level:
        byte_level_map(n);
        break;
      case kind::precompiled:
        charsmap->apply(n);
        break;
      case kind::bert: {
        if (clean_text) {
          n.filter([](char32_t c) {
            return !(c == 0 || c == 0xFFFD || (c != '\t' && c != '\n' && c != '\r' && is_other(c)));
          });
          std::vector<std::pair<char32_t, int>> dest;
          for (char32_t c : code_points(n.text)) {
            const bool ws = c == '\t' || c == '\n' || c == '\r' || is_whitespace(c);
            dest.push_back({ws ? U' ' : c, 0});
          }
          n.transform(dest, 0);
        }
        if (chinese) {
          std::vector<std::pair<char32_t, int>> dest;
          for (char32_t c : code_points(n.text)) {
            if (is_chinese_char(c)) {
              dest.push_back({U' ', 0});
              dest.push_back({c, 1});
              dest.push_back({U' ', 1});
            } else {
              dest.push_back({c, 0});
            }
          }
          n.transform(dest, 0);
        }
        if (strip_accents) {
          n.unicode_normalize(unicode_form::nfd);
          n.filter([](char32_t c) { return !is_nonspacing_mark(c); });
        }
        if (lower) n.lowercase();
        break;
      }
    }
  }
};

/// Metaspace's rule for adding the replacement in front.
enum class prepend_scheme { always, first, never };

/// One pre-tokenizer of the pipeline; `apply` maps the pieces of one split to finer pieces.
struct pre_tokenizer {
  enum class kind { sequence, byte_level, split, metaspace, digits, punctuation, bert, whitespace, whitespace_split, char_delimiter } k =
      kind::sequence;
  std::vector<pre_tokenizer> children;
  bool add_prefix_space = false, use_regex = true;  // ByteLevel
  pattern pat;                                      // Split
  split_behavior behavior = split_behavior::isolated;
  bool invert = false;
  std::string replacement = "\xE2\x96\x81";  // Metaspace
  char32_t replacement_char = 0x2581;
  prepend_scheme scheme = prepend_scheme::always;
  bool metaspace_split = true;
  bool individual_digits = false;  // Digits
  char32_t delimiter = 0;          // CharDelimiterSplit

  std::vector<normalized_string> apply(std::vector<normalized_string> in) const {
    if (k == kind::sequence) {
      for (const auto& c : children) in = c.apply(std::move(in));
      return in;
    }
    std::vector<normalized_string> out;
    for (auto& n : in) {
      for (auto& piece : apply_one(n)) {
        if (!piece.empty()) out.push_back(std::move(piece));
      }
    }
    if (k == kind::byte_level) {
      for (auto& n : out) byte_level_map(n);
    }
    return out;
  }

 private:
  static pattern predicate(bool (*p)(char32_t)) {
    pattern q;
    q.k = pattern::kind::predicate;
    q.pred = p;
    return q;
  }
  static pattern one_char(char32_t c) {
    pattern q;
    q.k = pattern::kind::predicate;
    q.pred_char = c;
    return q;
  }
  std::vector<normalized_string> apply_one(normalized_string& n) const {
    switch (k) {
      case kind::byte_level: {
        if (add_prefix_space && n.text.compare(0, 1, " ") != 0) n.prepend(" ");
        if (!use_regex) return {n};
        static const pattern gpt2 = [] {
          pattern q;
          q.k = pattern::kind::regex;
          q.re = regex(gpt2_pattern(), "<builtin>", "ByteLevel");
          return q;
        }();
        return split(n, gpt2, split_behavior::isolated);
      }
      case kind::split:
        return split(n, pat, behavior, invert);
      case kind::metaspace: {
        n.replace(one_char(U' ').matches(n.text), replacement);
        const bool starts = n.text.compare(0, replacement.size(), replacement) == 0;
        if (!starts && (scheme == prepend_scheme::always || (scheme == prepend_scheme::first && n.shift == 0))) {
          n.prepend(replacement);
        }
        if (!metaspace_split) return {n};
        return split(n, one_char(replacement_char), split_behavior::merged_with_next);
      }
      case kind::digits:
        return split(n, predicate(&is_numeric), individual_digits ? split_behavior::isolated : split_behavior::contiguous);
      case kind::punctuation:  // ASCII punctuation or P*, as the BERT pre-tokenizer's
        return split(n, predicate(&is_bert_punctuation), behavior);
      case kind::bert: {
        std::vector<normalized_string> out;
        for (auto& w : split(n, predicate(&is_whitespace), split_behavior::removed)) {
          for (auto& p : split(w, predicate(&is_bert_punctuation), split_behavior::isolated)) out.push_back(std::move(p));
        }
        return out;
      }
      case kind::whitespace: {
        static const pattern words = [] {
          pattern q;
          q.k = pattern::kind::regex;
          // Rust regex's Unicode \w and \s, spelled out for PCRE2.
          q.re = regex("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+|[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\s]+",
                       "<builtin>", "Whitespace");
          return q;
        }();
        return split(n, words, split_behavior::removed, true);
      }
      case kind::whitespace_split:
        return split(n, predicate(&is_whitespace), split_behavior::removed);
      case kind::char_delimiter:
        return split(n, one_char(delimiter), split_behavior::removed);
      case kind::sequence:
        break;
    }
    return {n};
  }
};

/// A token of the encoding being built: id, original byte span, and for an added token the text it matched (with
/// the whitespace lstrip/rstrip took), which is its spelling for ByteLevel's offset trimming.
struct encoded_token {
  std::int32_t id;
  std::size_t begin, end;
  std::string matched;
};

/// One post-processor of the pipeline.
struct post_processor {
  enum class kind { sequence, template_processing, bert, roberta, byte_level } k = kind::sequence;
  std::vector<post_processor> children;
  /// TemplateProcessing's single template: a special-token name (is_special) or the sequence.
  struct item {
    bool is_special;
    std::string name;
  };
  std::vector<item> single;
  std::map<std::string, std::vector<std::int32_t>> special_ids;
  std::int32_t cls_id = 0, sep_id = 0;  // Bert / Roberta
  bool trim_offsets = true, add_prefix_space = true;

  /// Whether `apply` with add_special adds tokens (read from the configuration, not from an encoding).
  bool adds_tokens() const {
    switch (k) {
      case kind::sequence:
        return std::any_of(children.begin(), children.end(), [](const post_processor& c) { return c.adds_tokens(); });
      case kind::byte_level:
        return false;
      case kind::bert:
      case kind::roberta:
        return true;
      case kind::template_processing:
        return std::any_of(single.begin(), single.end(), [this](const item& it) {
          if (!it.is_special) return false;
          const auto found = special_ids.find(it.name);
          return found != special_ids.end() && !found->second.empty();
        });
    }
    return false;
  }

  /// `spelling(id)` is the vocabulary's spelling; `text` the original text (offsets are trimmed in characters, as
  /// the reference, which post-processes character offsets, does).
  template <class Spelling>
  void apply(std::vector<encoded_token>& tokens, bool add_special, const Spelling& spelling, std::string_view text) const {
    switch (k) {
      case kind::sequence:
        for (const auto& c : children) c.apply(tokens, add_special, spelling, text);
        return;
      case kind::byte_level:
        if (trim_offsets) trim(tokens, add_prefix_space, spelling, text);
        return;
      case kind::roberta:
        if (trim_offsets) trim(tokens, add_prefix_space, spelling, text);
        [[fallthrough]];
      case kind::bert:
        if (add_special) {
          tokens.insert(tokens.begin(), encoded_token{cls_id, 0, 0, {}});
          tokens.push_back({sep_id, 0, 0, {}});
        }
        return;
      case kind::template_processing: {
        if (!add_special) return;
        std::vector<encoded_token> out;
        for (const auto& it : single) {
          if (!it.is_special) {
            out.insert(out.end(), tokens.begin(), tokens.end());
          } else {
            for (std::int32_t id : special_ids.at(it.name)) out.push_back({id, 0, 0, {}});
          }
        }
        tokens = std::move(out);
        return;
      }
    }
  }

 private:
  /// Moves span ends off the spaces a byte-level token carries ('Ġ' or real whitespace at either end).
  template <class Spelling>
  static void trim(std::vector<encoded_token>& tokens, bool prefix_space, const Spelling& spelling, std::string_view text) {
    // Moves a byte offset by whole characters of the original text.
    auto forward = [&](std::size_t at, std::size_t n) {
      for (; n > 0 && at < text.size(); --n) at += utf8_length_of_lead(static_cast<unsigned char>(text[at]));
      return std::min(at, text.size());
    };
    auto chars_before = [&](std::size_t at, std::size_t n) {  // at least n characters before `at`?
      std::size_t count = 0;
      for (std::size_t b = at; b > 0 && count < n; --b) count += (static_cast<unsigned char>(text[b - 1]) & 0xC0u) != 0x80u;
      return count >= n;
    };
    auto backward = [&](std::size_t at, std::size_t n) {
      for (; n > 0 && at > 0; --n) {
        do --at; while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0u) == 0x80u);
      }
      return at;
    };
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      auto& t = tokens[i];
      const auto cps = code_points(t.matched.empty() ? spelling(t.id) : t.matched);
      auto is_space = [](char32_t c) { return c == 0x120 || is_whitespace(c); };
      std::size_t lead = 0, trail = 0;
      while (lead < cps.size() && is_space(cps[lead])) ++lead;
      while (trail < cps.size() && is_space(cps[cps.size() - 1 - trail])) ++trail;
      if (lead > 0) {
        const bool first = i == 0 || t.begin == 0;
        if (first && prefix_space && lead == 1) lead = 0;
        t.begin = std::min(forward(t.begin, lead), t.end);
      }
      if (trail > 0 && chars_before(t.end, trail)) t.end = std::max(backward(t.end, trail), t.begin);
    }
  }
};

}  // namespace hf
}  // namespace detail
}  // namespace headlens
