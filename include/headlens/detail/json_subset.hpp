#pragma once
/// \file
/// A small, strict JSON reader for the subset that binary tensor formats put in their headers (the safetensors
/// header): objects, arrays, strings with every escape, integers, true, false and null. Numbers with a fraction or
/// an exponent are rejected, as is everything malformed, each with the byte offset of the offending character.
/// Internal: the public headers use it so that they need nothing beyond the standard library, Eigen and xsimd.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "headlens/detail/utf8.hpp"
#include "headlens/error.hpp"

namespace headlens {
namespace detail {

struct json_member;

/// A parsed JSON value. Object members keep the order of the document.
struct json_value {
  enum class kind { null_value, boolean, integer, string, array, object };

  kind type = kind::null_value;
  std::uint64_t offset = 0;       ///< byte offset of the value's first character, in the file
  bool boolean = false;           ///< when type == boolean
  std::int64_t integer = 0;       ///< when type == integer
  std::string string;             ///< when type == string (UTF-8, escapes decoded)
  std::vector<json_value> array;  ///< when type == array
  std::vector<json_member> object;  ///< when type == object

  /// The member named `key` of an object, or nullptr.
  inline const json_value* find(const std::string& key) const;
};

/// One member of a JSON object.
struct json_member {
  std::string key;
  std::uint64_t key_offset = 0;  ///< byte offset of the key's opening quote, in the file
  json_value value;
};

inline const json_value* json_value::find(const std::string& key) const {
  for (const json_member& member : object) {
    if (member.key == key) return &member.value;
  }
  return nullptr;
}

/// "object", "array", ... for messages.
inline const char* json_kind_name(json_value::kind type) noexcept {
  switch (type) {
    case json_value::kind::null_value: return "null";
    case json_value::kind::boolean: return "a boolean";
    case json_value::kind::integer: return "an integer";
    case json_value::kind::string: return "a string";
    case json_value::kind::array: return "an array";
    case json_value::kind::object: return "an object";
  }
  return "unknown";
}

/// Parses one JSON document from `text[0, size)`. Errors throw `format_error` naming `file` and the byte offset
/// `base_offset + position` (so a header that starts at byte 8 of a file reports file offsets). Leading and
/// trailing whitespace is allowed; anything else after the value is an error.
class json_parser {
 public:
  /// Objects and arrays may nest this deep; deeper input is rejected instead of exhausting the stack.
  static constexpr int max_depth = 64;

  json_parser(const char* text, std::size_t size, std::string file, std::uint64_t base_offset)
      : text_(text), size_(size), file_(std::move(file)), base_(base_offset) {}

  /// Parses the whole input as one value.
  json_value parse_document() {
    skip_whitespace();
    json_value value = parse_value(0);
    skip_whitespace();
    if (pos_ != size_) fail_here("unexpected " + describe_here() + " after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void fail_at(std::size_t pos, const std::string& what) const {
    throw format_error::at_byte(file_, base_ + pos, "invalid JSON header: " + what);
  }
  [[noreturn]] void fail_here(const std::string& what) const { fail_at(pos_, what); }

  /// "end of header" or "character 'x'" / "byte 0x01".
  std::string describe_here() const {
    if (pos_ >= size_) return "end of header";
    const auto c = static_cast<unsigned char>(text_[pos_]);
    if (c >= 0x20 && c < 0x7F) return std::string("character '") + static_cast<char>(c) + "'";
    static const char hex[] = "0123456789abcdef";
    return std::string("byte 0x") + hex[c >> 4] + hex[c & 0xF];
  }

  void skip_whitespace() noexcept {
    while (pos_ < size_) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  json_value parse_value(int depth) {
    if (pos_ >= size_) fail_here("expected a value, found end of header");
    const char c = text_[pos_];
    json_value value;
    value.offset = base_ + pos_;
    switch (c) {
      case '{':
        if (depth >= max_depth) fail_here("nesting deeper than " + std::to_string(max_depth));
        value.type = json_value::kind::object;
        parse_object(value, depth + 1);
        break;
      case '[':
        if (depth >= max_depth) fail_here("nesting deeper than " + std::to_string(max_depth));
        value.type = json_value::kind::array;
        parse_array(value, depth + 1);
        break;
      case '"':
        value.type = json_value::kind::string;
        value.string = parse_string();
        break;
      case 't':
        expect_word("true");
        value.type = json_value::kind::boolean;
        value.boolean = true;
        break;
      case 'f':
        expect_word("false");
        value.type = json_value::kind::boolean;
        break;
      case 'n':
        expect_word("null");
        break;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          value.type = json_value::kind::integer;
          value.integer = parse_integer();
        } else {
          fail_here("expected a value, found " + describe_here());
        }
    }
    return value;
  }

  void expect_word(const char* word) {
    const std::size_t start = pos_;
    for (const char* w = word; *w != '\0'; ++w, ++pos_) {
      if (pos_ >= size_ || text_[pos_] != *w) fail_at(start, "expected a value, found a misspelt literal");
    }
  }

  void parse_object(json_value& value, int depth) {
    ++pos_;  // '{'
    skip_whitespace();
    if (pos_ < size_ && text_[pos_] == '}') {
      ++pos_;
      return;
    }
    std::unordered_set<std::string> keys;
    for (;;) {
      skip_whitespace();
      if (pos_ >= size_ || text_[pos_] != '"') fail_here("expected a string key, found " + describe_here());
      json_member member;
      member.key_offset = base_ + pos_;
      const std::size_t key_pos = pos_;
      member.key = parse_string();
      if (!keys.insert(member.key).second) fail_at(key_pos, "duplicate key \"" + member.key + "\"");
      skip_whitespace();
      if (pos_ >= size_ || text_[pos_] != ':') fail_here("expected ':' after a key, found " + describe_here());
      ++pos_;
      skip_whitespace();
      member.value = parse_value(depth);
      value.object.push_back(std::move(member));
      skip_whitespace();
      if (pos_ < size_ && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < size_ && text_[pos_] == '}') {
        ++pos_;
        return;
      }
      fail_here("expected ',' or '}' in an object, found " + describe_here());
    }
  }

  void parse_array(json_value& value, int depth) {
    ++pos_;  // '['
    skip_whitespace();
    if (pos_ < size_ && text_[pos_] == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_whitespace();
      value.array.push_back(parse_value(depth));
      skip_whitespace();
      if (pos_ < size_ && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < size_ && text_[pos_] == ']') {
        ++pos_;
        return;
      }
      fail_here("expected ',' or ']' in an array, found " + describe_here());
    }
  }

  std::int64_t parse_integer() {
    const std::size_t start = pos_;
    bool negative = false;
    if (text_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    if (pos_ >= size_ || text_[pos_] < '0' || text_[pos_] > '9') fail_here("expected a digit after '-'");
    if (text_[pos_] == '0' && pos_ + 1 < size_ && text_[pos_ + 1] >= '0' && text_[pos_ + 1] <= '9') {
      fail_here("numbers may not have leading zeros");
    }
    // Accumulate the magnitude as unsigned so that the most negative int64 parses too.
    const std::uint64_t limit = negative ? std::uint64_t(1) << 63 : std::uint64_t(std::numeric_limits<std::int64_t>::max());
    std::uint64_t magnitude = 0;
    while (pos_ < size_ && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (magnitude > (limit - digit) / 10) fail_at(start, "integer out of the 64-bit range");
      magnitude = magnitude * 10 + digit;
      ++pos_;
    }
    if (pos_ < size_ && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
      fail_at(start, "only integers are supported, found a number with a fraction or exponent");
    }
    if (!negative) return static_cast<std::int64_t>(magnitude);
    if (magnitude == (std::uint64_t(1) << 63)) return std::numeric_limits<std::int64_t>::min();
    return -static_cast<std::int64_t>(magnitude);
  }

  unsigned parse_hex4() {
    if (size_ - pos_ < 4) fail_here("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const char c = text_[pos_];
      unsigned d;
      if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
      else fail_here("invalid hex digit in a \\u escape");
      v = v * 16 + d;
    }
    return v;
  }

  /// Checks one UTF-8 sequence starting at pos_ (lead byte >= 0x80), copies it to `out`, advances.
  void copy_utf8_sequence(std::string& out) {
    const auto lead = static_cast<unsigned char>(text_[pos_]);
    std::size_t length;
    std::uint32_t cp;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
      cp = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      cp = lead & 0x0Fu;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      cp = lead & 0x07u;
    } else {
      fail_here("invalid UTF-8 in a string");
    }
    if (size_ - pos_ < length) fail_here("truncated UTF-8 sequence in a string");
    for (std::size_t i = 1; i < length; ++i) {
      const auto c = static_cast<unsigned char>(text_[pos_ + i]);
      if ((c & 0xC0u) != 0x80u) fail_here("invalid UTF-8 in a string");
      cp = (cp << 6) | (c & 0x3Fu);
    }
    const bool overlong = (length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000);
    if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) fail_here("invalid UTF-8 in a string");
    out.append(text_ + pos_, length);
    pos_ += length;
  }

  std::string parse_string() {
    const std::size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= size_) fail_at(start, "unterminated string");
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail_here("unescaped control character in a string");
      if (c >= 0x80) {
        copy_utf8_sequence(out);
        continue;
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      const std::size_t escape = pos_;
      ++pos_;
      if (pos_ >= size_) fail_at(start, "unterminated string");
      const char e = text_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          std::uint32_t cp = parse_hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(escape, "unpaired low surrogate in a \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (size_ - pos_ < 2 || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') {
              fail_at(escape, "unpaired high surrogate in a \\u escape");
            }
            pos_ += 2;
            const std::uint32_t low = parse_hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail_at(escape, "unpaired high surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          detail::append_utf8(out, static_cast<char32_t>(cp));
          break;
        }
        default:
          fail_at(escape, "invalid escape in a string");
      }
    }
  }

  const char* text_;
  std::size_t size_;
  std::string file_;
  std::uint64_t base_;
  std::size_t pos_ = 0;
};

/// Parses `text[0, size)` as one JSON document; see `json_parser`.
inline json_value parse_json(const char* text, std::size_t size, const std::string& file, std::uint64_t base_offset) {
  return json_parser(text, size, file, base_offset).parse_document();
}

/// `s` as a JSON string literal, quotes included: escapes '"', '\\' and control characters; other bytes
/// (UTF-8) pass through.
inline std::string json_quote(const std::string& s) {
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

}  // namespace detail
}  // namespace headlens
