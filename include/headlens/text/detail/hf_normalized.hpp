#pragma once
/// \file
/// Internal: a piece of text being normalised and split by the Hugging Face pipeline, with the original byte range
/// of every normalised byte (the `NormalizedString` of `tokenizers`), and the regex/literal patterns that split it.
/// The alignment rules follow the reference exactly: a replacing character takes the range of the character it
/// replaces, an inserted one the range of the byte before it, so that token spans agree with `tokenizers`.

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "headlens/detail/utf8.hpp"
#include "headlens/error.hpp"
#include "headlens/text/detail/hf_unicode.hpp"

namespace headlens {
namespace detail {
namespace hf {

/// An original byte range `[first, second)`.
using span = std::pair<std::size_t, std::size_t>;

/// Normalised text with, per byte, the range of the original text it came from (absolute offsets).
struct normalized_string {
  std::string text;
  std::vector<span> align;
  /// Where this piece began in the original text when it was cut (the reference's `original_shift`).
  std::size_t shift = 0;

  static normalized_string from_original(std::string_view s, std::size_t offset) {
    normalized_string n;
    n.text.assign(s.data(), s.size());
    n.align.reserve(s.size());
    n.shift = offset;
    for (std::size_t i = 0; i < s.size();) {
      const std::size_t len = std::min(utf8_length_of_lead(static_cast<unsigned char>(s[i])), s.size() - i);
      for (std::size_t k = 0; k < len; ++k) n.align.push_back({offset + i, offset + i + len});
      i += len;
    }
    return n;
  }

  bool empty() const noexcept { return text.empty(); }

  /// Replaces the bytes `[start, end)` by `dest` (code points with their changes, see `normalize_with_changes`),
  /// skipping `initial_removed` characters of the replaced range first.
  void transform_range(std::size_t start, std::size_t end, const std::vector<std::pair<char32_t, int>>& dest,
                       std::size_t initial_removed) {
    std::vector<std::size_t> replaced;  // byte lengths of the replaced characters
    for (std::size_t i = start; i < end;) {
      const std::size_t len = utf8_length_of_lead(static_cast<unsigned char>(text[i]));
      replaced.push_back(len);
      i += len;
    }
    std::size_t next = 0;
    std::size_t offset = start;
    for (; next < initial_removed && next < replaced.size(); ++next) offset += replaced[next];
    std::string new_text;
    std::vector<span> new_align;
    new_text.reserve(dest.size());
    new_align.reserve(dest.size());
    const span none{0, 0};
    for (const auto& [c, change] : dest) {
      span a;
      if (change > 0) {
        a = offset < 1 || align.empty() ? none : align[std::min(offset, align.size()) - 1];
      } else {
        a = offset < align.size() ? align[offset] : (align.empty() ? none : span{align.back().second, align.back().second});
        if (next < replaced.size()) offset += replaced[next++];
        for (int k = 0; k < -change && next < replaced.size(); ++k) offset += replaced[next++];
      }
      const std::size_t before = new_text.size();
      append_utf8(new_text, c);
      new_align.insert(new_align.end(), new_text.size() - before, a);
    }
    text.replace(start, end - start, new_text);
    align.erase(align.begin() + static_cast<std::ptrdiff_t>(start), align.begin() + static_cast<std::ptrdiff_t>(end));
    align.insert(align.begin() + static_cast<std::ptrdiff_t>(start), new_align.begin(), new_align.end());
  }
  void transform(const std::vector<std::pair<char32_t, int>>& dest, std::size_t initial_removed) {
    transform_range(0, text.size(), dest, initial_removed);
  }

  /// The original range of the normalised bytes `[start, end)`.
  span original(std::size_t start, std::size_t end) const {
    if (start >= end || end > align.size()) {
      const std::size_t at = start < align.size() ? align[start].first : (align.empty() ? shift : align.back().second);
      return {at, at};
    }
    return {align[start].first, align[end - 1].second};
  }

  /// The normalised bytes `[start, end)` as a piece of its own.
  normalized_string slice(std::size_t start, std::size_t end) const {
    normalized_string n;
    n.text = text.substr(start, end - start);
    n.align.assign(align.begin() + static_cast<std::ptrdiff_t>(start), align.begin() + static_cast<std::ptrdiff_t>(end));
    n.shift = start < end ? align[start].first : shift;
    return n;
  }

  // The reference's normalisation steps.
  void unicode_normalize(unicode_form form) { transform(normalize_with_changes(code_points(text), form), 0); }
  void lowercase() {
    std::vector<std::pair<char32_t, int>> dest;
    dest.reserve(text.size());
    for (char32_t c : code_points(text)) {
      const auto lower = to_lowercase(c);
      for (std::size_t i = 0; i < lower.size(); ++i) dest.push_back({lower[i], i > 0 ? 1 : 0});
    }
    transform(dest, 0);
  }
  template <class Keep>
  void filter(Keep keep) {
    const auto cps = code_points(text);
    std::vector<std::pair<char32_t, int>> rev;
    int removed = 0;
    for (std::size_t i = cps.size(); i-- > 0;) {
      if (keep(cps[i])) {
        rev.push_back({cps[i], -removed});
        removed = 0;
      } else {
        ++removed;
      }
    }
    std::vector<std::pair<char32_t, int>> dest(rev.rbegin(), rev.rend());
    transform(dest, static_cast<std::size_t>(removed));
  }
  void prepend(std::string_view s) {
    if (text.empty()) return;
    const std::size_t first_len = utf8_length_of_lead(static_cast<unsigned char>(text[0]));
    const auto first = code_points(std::string_view(text).substr(0, first_len));
    std::vector<std::pair<char32_t, int>> dest;
    const auto add = code_points(s);
    for (std::size_t i = 0; i < add.size(); ++i) dest.push_back({add[i], i == 0 ? 0 : 1});
    dest.push_back({first[0], 1});
    transform_range(0, first_len, dest, 0);
  }
  void append(std::string_view s) {
    if (text.empty()) return;
    std::size_t b = text.size() - 1;
    while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0u) == 0x80u) --b;
    std::vector<std::pair<char32_t, int>> dest{{code_points(std::string_view(text).substr(b))[0], 0}};
    for (char32_t c : code_points(s)) dest.push_back({c, 1});
    transform_range(b, text.size(), dest, 0);
  }
  void strip(bool left, bool right) {
    const auto cps = code_points(text);
    std::size_t lead = 0, trail = 0;
    if (left) while (lead < cps.size() && is_whitespace(cps[lead])) ++lead;
    if (right) while (trail < cps.size() - lead && is_whitespace(cps[cps.size() - 1 - trail])) ++trail;
    if (lead == 0 && trail == 0) return;
    std::vector<std::pair<char32_t, int>> dest;
    for (std::size_t i = lead; i + trail < cps.size(); ++i) {
      dest.push_back({cps[i], i + trail + 1 == cps.size() ? -static_cast<int>(trail) : 0});
    }
    transform(dest, lead);
  }
  /// Replaces each match (byte ranges, ascending, non-overlapping, non-empty) by `content`, in one pass. As the
  /// reference's sequence of transforms does, every inserted character takes the span of the match's last byte.
  void replace(const std::vector<span>& matches, std::string_view content) {
    if (matches.empty()) return;
    std::string new_text;
    std::vector<span> new_align;
    new_text.reserve(text.size());
    new_align.reserve(text.size());
    std::size_t prev = 0;
    for (const auto& m : matches) {
      new_text.append(text, prev, m.first - prev);
      new_align.insert(new_align.end(), align.begin() + static_cast<std::ptrdiff_t>(prev),
                       align.begin() + static_cast<std::ptrdiff_t>(m.first));
      const span a = m.second >= 1 ? align[m.second - 1] : span{0, 0};
      new_text.append(content.data(), content.size());
      new_align.insert(new_align.end(), content.size(), a);
      prev = m.second;
    }
    new_text.append(text, prev, std::string::npos);
    new_align.insert(new_align.end(), align.begin() + static_cast<std::ptrdiff_t>(prev), align.end());
    text = std::move(new_text);
    align = std::move(new_align);
  }
};

/// A compiled PCRE2 regex (UTF + UCP), standing in for the reference's Oniguruma patterns.
class regex {
 public:
  regex() = default;
  /// Compiles `pattern`; on failure throws `format_error` in `file` naming `where`, the pattern and PCRE2's message.
  regex(const std::string& pattern, const std::string& file, const std::string& where) {
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                  PCRE2_UTF | PCRE2_UCP, &code, &offset, nullptr);
    if (c == nullptr) {
      PCRE2_UCHAR buffer[256];
      pcre2_get_error_message(code, buffer, sizeof buffer);
      throw format_error(file, 0, 0, message(file, ": ", where, " regex \"", pattern, "\" is not supported: ",
                                             reinterpret_cast<const char*>(buffer), " at offset ", offset));
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back to the interpreter
    code_.reset(c, pcre2_code_free);
  }
  bool valid() const noexcept { return code_ != nullptr; }

  /// Every non-overlapping match in `s` (empty matches skipped, advancing one character), as byte ranges.
  std::vector<span> find_all(std::string_view s) const {
    std::vector<span> out;
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
    std::size_t pos = 0;
    while (pos <= s.size()) {
      const int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos,
                                 PCRE2_NO_UTF_CHECK, md.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR buffer[256];
        pcre2_get_error_message(rc, buffer, sizeof buffer);
        fail<argument_error>("regex match failed: ", reinterpret_cast<const char*>(buffer));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      const std::size_t b = ov[0], e = ov[1];
      if (e > b) {
        out.push_back({b, e});
        pos = e;
      } else {
        if (b >= s.size()) break;
        pos = b + utf8_length_of_lead(static_cast<unsigned char>(s[b]));
      }
    }
    return out;
  }

 private:
  std::shared_ptr<pcre2_code> code_;
};

/// A split pattern: a regex, a literal string, or a character predicate.
struct pattern {
  enum class kind { regex, literal, predicate } k = kind::literal;
  hf::regex re;
  std::string literal;
  bool (*pred)(char32_t) = nullptr;
  char32_t pred_char = 0;  // for the "one character" predicate (Metaspace's ▁)

  /// The matches in `s` as byte ranges.
  std::vector<span> matches(std::string_view s) const {
    std::vector<span> out;
    if (k == kind::regex) return re.find_all(s);
    if (k == kind::literal) {
      if (literal.empty()) return out;
      for (std::size_t pos = s.find(literal); pos != std::string_view::npos; pos = s.find(literal, pos + literal.size())) {
        out.push_back({pos, pos + literal.size()});
      }
      return out;
    }
    for (std::size_t i = 0; i < s.size();) {
      const std::size_t len = utf8_length_of_lead(static_cast<unsigned char>(s[i]));
      const char32_t c = code_points(s.substr(i, len))[0];
      if (pred ? pred(c) : c == pred_char) out.push_back({i, i + len});
      i += len;
    }
    return out;
  }

  /// The whole of `s` cut into (range, is_match) pieces; `invert` flips the flags.
  std::vector<std::pair<span, bool>> pieces(std::string_view s, bool invert) const {
    std::vector<std::pair<span, bool>> out;
    if (s.empty()) {
      out.push_back({{0, 0}, invert});
      return out;
    }
    std::size_t prev = 0;
    for (const auto& m : matches(s)) {
      if (prev != m.first) out.push_back({{prev, m.first}, invert});
      out.push_back({m, !invert});
      prev = m.second;
    }
    if (prev != s.size()) out.push_back({{prev, s.size()}, invert});
    return out;
  }
};

/// How a split keeps its delimiters (the reference's `SplitDelimiterBehavior`).
enum class split_behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

/// Splits `n` at the matches of `p`, keeping the delimiters as `behavior` says; empty pieces are dropped.
inline std::vector<normalized_string> split(const normalized_string& n, const pattern& p, split_behavior behavior,
                                            bool invert = false) {
  const auto pieces = p.pieces(n.text, invert);
  std::vector<std::pair<span, bool>> keep;  // (range, remove)
  switch (behavior) {
    case split_behavior::isolated:
      for (const auto& pc : pieces) keep.push_back({pc.first, false});
      break;
    case split_behavior::removed:
      keep = pieces;
      break;
    case split_behavior::contiguous: {
      bool previous = false;
      for (const auto& [r, m] : pieces) {
        if (m == previous && !keep.empty()) keep.back().first.second = r.second;
        else keep.push_back({r, false});
        previous = m;
      }
      break;
    }
    case split_behavior::merged_with_previous: {
      bool previous = false;
      for (const auto& [r, m] : pieces) {
        if (m && !previous && !keep.empty()) keep.back().first.second = r.second;
        else keep.push_back({r, false});
        previous = m;
      }
      break;
    }
    case split_behavior::merged_with_next: {
      bool previous = false;
      for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
        const auto& [r, m] = *it;
        if (m && !previous && !keep.empty()) keep.back().first.first = r.first;
        else keep.push_back({r, false});
        previous = m;
      }
      std::reverse(keep.begin(), keep.end());
      break;
    }
  }
  std::vector<normalized_string> out;
  for (const auto& [r, remove] : keep) {
    if (remove || r.first == r.second) continue;
    out.push_back(n.slice(r.first, r.second));
  }
  return out;
}

}  // namespace hf
}  // namespace detail
}  // namespace headlens
