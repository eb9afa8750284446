#pragma once
/// \file
/// Hugging Face `tokenizer.json`: the reader and an exact encoder. Added tokens are cut out of the text first (those
/// with `normalized: false` from the original text, the others after normalisation), then each remaining piece is
/// normalised, pre-tokenized and tokenized by the model, and the post-processor adds its special tokens, as the
/// `tokenizers` library does. Every token keeps the bytes of the original text it covers, through every
/// normalisation (the alignment rules of `tokenizers`' NormalizedString); tokens the post-processor adds cover
/// nothing (`begin == end == 0`).
///
/// Link with `-lpcre2-8 -licuuc` (PCRE2 runs the Split regexes; ICU supplies the Unicode data).

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "headlens/error.hpp"
#include "headlens/text/detail/hf_models.hpp"
#include "headlens/text/detail/hf_normalized.hpp"
#include "headlens/text/detail/hf_pipeline.hpp"
#include "headlens/text/token.hpp"
#include "headlens/text/unicode.hpp"

namespace headlens {

/// A Hugging Face `tokenizer.json` tokenizer (BPE, WordPiece, Unigram or WordLevel with its normalizers,
/// pre-tokenizers, post-processor and added tokens). Immutable after loading; `encode` is safe to call from
/// several threads.
class hf_tokenizer {
 public:
  /// Reads `path`. Throws `io_error` when it cannot be read, `format_error` (naming the JSON path of the fault)
  /// when it is not a tokenizer.json this reader supports.
  static hf_tokenizer from_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) detail::fail<io_error>("cannot read ", path);
    std::ostringstream text;
    text << in.rdbuf();
    return from_json_text(text.str(), path);
  }

  /// Whether `encode(text, true)` adds tokens of its own: the post-processor inserts special tokens (BERT's [CLS]
  /// and [SEP], a template's BOS).
  bool adds_special_tokens() const { return post_processor_ && post_processor_->adds_tokens(); }

  /// Parses the JSON text of a tokenizer.json; `name` is used in error messages.
  static hf_tokenizer from_json_text(const std::string& text, const std::string& name = "<tokenizer.json>") {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw format_error::at_byte(name, e.byte, std::string("invalid JSON: ") + e.what());
    } catch (const nlohmann::json::exception& e) {  // e.g. a number too large for a double
      throw format_error::at_byte(name, 0, std::string("invalid JSON: ") + e.what());
    }
    return from_json(j, name);
  }

  /// Builds the tokenizer from an already parsed tokenizer.json document. Also the way to build one without a file:
  /// GGUF's `tokenizer.ggml.*` (tokens + merges, or tokens + scores) maps onto {"model": {"type": "BPE", "vocab",
  /// "merges"}} or {"model": {"type": "Unigram", "vocab": [[piece, score], ...]}} plus the pre-tokenizer its
  /// `tokenizer.ggml.pre` names.
  static hf_tokenizer from_json(const nlohmann::json& j, const std::string& name = "<tokenizer.json>") {
    hf_tokenizer t;
    t.name_ = name;
    try {
      t.load(j);
    } catch (const nlohmann::json::exception& e) {  // defensive: every access is type-checked first
      throw format_error(name, 0, 0, detail::message(name, ": unexpected JSON content: ", e.what()));
    }
    return t;
  }

  /// Every token of `text` (UTF-8; invalid UTF-8 is an `argument_error`) with the bytes of `text` it covers.
  /// Tokens the post-processor adds (BOS, [CLS], ...) have `begin == end == 0`.
  std::vector<text_token> encode(std::string_view text, bool add_special_tokens = true) const {
    (void)decode_utf8(text);  // validates; throws argument_error naming the offset
    std::vector<detail::hf::encoded_token> tokens;
    for (const auto& part : split_and_normalize(text)) {
      if (part.added_id >= 0) {
        const auto sp = part.n.original(0, part.n.text.size());
        tokens.push_back({part.added_id, sp.first, sp.second, part.n.text});
        continue;
      }
      std::vector<detail::hf::normalized_string> words{part.n};
      if (pre_tokenizer_) words = pre_tokenizer_->apply(std::move(words));
      for (const auto& w : words) {
        for (const auto& p : model_tokenize(w.text)) {
          const auto sp = w.original(p.begin, p.end);
          tokens.push_back({p.id, sp.first, sp.second, std::string()});
        }
      }
    }
    if (post_processor_) {
      post_processor_->apply(tokens, add_special_tokens, [this](std::int32_t id) { return token(id); }, text);
    }
    std::vector<text_token> out;
    out.reserve(tokens.size());
    for (const auto& t : tokens) out.push_back({t.id, t.begin, t.end});
    return out;
  }

  /// The vocabulary's spelling of `id`; `argument_error` when no token has that id.
  std::string token(std::int32_t id) const {
    if (id < 0 || id >= vocab_size() || static_cast<std::size_t>(id) >= spelling_.size() || !has_spelling_[static_cast<std::size_t>(id)]) {
      detail::fail<argument_error>("token id ", id, " is out of range: ", name_, " has ids 0 to ", vocab_size() - 1,
                                   id >= 0 && id < vocab_size() ? " but none is this one" : "");
    }
    return spelling_[static_cast<std::size_t>(id)];
  }

  /// The id of `token` (added tokens first, then the model's vocabulary), if it has one.
  std::optional<std::int32_t> token_id(std::string_view token) const {
    const auto it = ids_.find(std::string(token));
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }

  /// Number of ids, including added tokens (largest id + 1).
  std::int32_t vocab_size() const noexcept { return static_cast<std::int32_t>(spelling_.size()); }

 private:
  struct added_token {
    std::string content;
    std::int32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
    std::string match;  // what is searched for: content, or its normalised form
  };
  struct part {
    detail::hf::normalized_string n;
    std::int32_t added_id;  // -1: text to tokenize
  };
  using model_type = std::variant<detail::hf::bpe_model, detail::hf::wordpiece_model, detail::hf::unigram_model,
                                  detail::hf::wordlevel_model>;

  std::string name_;
  model_type model_;
  std::optional<detail::hf::normalizer> normalizer_;
  std::optional<detail::hf::pre_tokenizer> pre_tokenizer_;
  std::optional<detail::hf::post_processor> post_processor_;
  /// A byte trie over the added tokens' match strings, for the reference's leftmost-longest matching.
  struct added_trie {
    struct node {
      std::vector<std::pair<unsigned char, std::int32_t>> next;
      std::int32_t token = -1;  // index into added_ of the token ending here (the first one added wins)
    };
    std::vector<node> nodes{node{}};
    std::array<std::int32_t, 256> root{};  // root's children by byte, 0 = none

    void insert(const std::string& key, std::int32_t token) {
      std::int32_t at = 0;
      for (std::size_t i = 0; i < key.size(); ++i) {
        const auto c = static_cast<unsigned char>(key[i]);
        std::int32_t child = 0;
        if (at == 0) {
          child = root[c];
        } else {
          for (const auto& [b, n] : nodes[static_cast<std::size_t>(at)].next) {
            if (b == c) child = n;
          }
        }
        if (child == 0) {
          child = static_cast<std::int32_t>(nodes.size());
          nodes.emplace_back();
          if (at == 0) root[c] = child;
          else nodes[static_cast<std::size_t>(at)].next.push_back({c, child});
        }
        at = child;
      }
      if (at != 0 && nodes[static_cast<std::size_t>(at)].token < 0) nodes[static_cast<std::size_t>(at)].token = token;
    }
    /// The longest key starting at `pos` of `s`: (length, token index), or (0, -1).
    std::pair<std::size_t, std::int32_t> longest_at(const std::string& s, std::size_t pos) const {
      std::pair<std::size_t, std::int32_t> best{0, -1};
      std::int32_t at = root[static_cast<unsigned char>(s[pos])];
      for (std::size_t i = pos; at != 0;) {
        const node& n = nodes[static_cast<std::size_t>(at)];
        if (n.token >= 0) best = {i + 1 - pos, n.token};
        if (++i >= s.size()) break;
        const auto c = static_cast<unsigned char>(s[i]);
        std::int32_t child = 0;
        for (const auto& [b, m] : n.next) {
          if (b == c) child = m;
        }
        at = child;
      }
      return best;
    }
  };

  std::vector<added_token> added_;  // special first, then the others, as the reference orders its matcher
  added_trie original_trie_, normalized_trie_;
  std::vector<std::string> spelling_;
  std::vector<bool> has_spelling_;
  std::unordered_map<std::string, std::int32_t> ids_;
  int depth_ = 0;  // nesting of Sequence components while parsing (bounded, so hostile files cannot overflow the stack)

  /// Counts one level of Sequence nesting for the lifetime of the guard.
  struct nesting {
    hf_tokenizer* t;
    nesting(hf_tokenizer* owner, const std::string& path) : t(owner) {
      if (++t->depth_ > 32) t->bad(path, "nests Sequences more than 32 deep");
    }
    ~nesting() { --t->depth_; }
    nesting(const nesting&) = delete;
    nesting& operator=(const nesting&) = delete;
  };

  std::vector<detail::hf::piece> model_tokenize(const std::string& word) const {
    return std::visit([&](const auto& m) { return m.tokenize(word); }, model_);
  }

  // ----- added tokens -----

  /// Cuts the added tokens out of `n` (those whose `normalized` equals `normalized_pass`), as the reference's
  /// leftmost-longest matcher with the single_word / lstrip / rstrip rules does.
  std::vector<part> extract(const detail::hf::normalized_string& n, bool normalized_pass) const {
    using detail::hf::code_points;
    const std::string& s = n.text;
    std::vector<part> out;
    auto char_before = [&](std::size_t at) -> char32_t {
      std::size_t b = at;
      do --b; while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0u) == 0x80u);
      return code_points(std::string_view(s).substr(b, at - b))[0];
    };
    auto char_at = [&](std::size_t at) -> char32_t {
      return code_points(std::string_view(s).substr(at, detail::hf::utf8_length_of_lead(static_cast<unsigned char>(s[at]))))[0];
    };
    std::size_t cursor = 0, emitted = 0;
    while (cursor < s.size()) {
      // Leftmost match at or after cursor, longest at that position; ties go to the earlier pattern.
      std::size_t best_pos = std::string::npos, best_len = 0;
      const added_token* best = nullptr;
      const added_trie& trie = normalized_pass ? normalized_trie_ : original_trie_;
      for (std::size_t pos = cursor; pos < s.size() && best == nullptr; ++pos) {
        const auto [len, index] = trie.longest_at(s, pos);
        if (index >= 0) {
          best_pos = pos;
          best_len = len;
          best = &added_[static_cast<std::size_t>(index)];
        }
      }
      if (best == nullptr) break;
      std::size_t start = best_pos, stop = best_pos + best_len;
      cursor = stop;
      if (best->single_word) {
        const bool start_ok = start == 0 || !detail::hf::is_word_char(char_before(start));
        const bool stop_ok = stop == s.size() || !detail::hf::is_word_char(char_at(stop));
        if (!start_ok || !stop_ok) continue;
      }
      if (best->lstrip) {
        std::size_t b = start;
        while (b > 0 && detail::hf::is_whitespace(char_before(b))) {
          std::size_t p = b;
          do --p; while (p > 0 && (static_cast<unsigned char>(s[p]) & 0xC0u) == 0x80u);
          b = p;
        }
        start = std::max(b, emitted);
      }
      if (best->rstrip) {
        while (stop < s.size() && detail::hf::is_whitespace(char_at(stop))) {
          stop += detail::hf::utf8_length_of_lead(static_cast<unsigned char>(s[stop]));
        }
      }
      if (emitted < start) out.push_back({n.slice(emitted, start), -1});
      out.push_back({n.slice(start, stop), best->id});
      emitted = stop;
      cursor = std::max(cursor, stop);
    }
    if (emitted < s.size()) out.push_back({n.slice(emitted, s.size()), -1});
    return out;
  }

  std::vector<part> split_and_normalize(std::string_view text) const {
    std::vector<part> out;
    const auto original = detail::hf::normalized_string::from_original(text, 0);
    for (auto& p : extract(original, false)) {
      if (p.added_id >= 0) {
        out.push_back(std::move(p));
        continue;
      }
      if (normalizer_) normalizer_->apply(p.n);
      for (auto& q : extract(p.n, true)) {
        if (!q.n.empty()) out.push_back(std::move(q));
      }
    }
    return out;
  }

  // ----- JSON -----

  [[noreturn]] void bad(const std::string& path, const std::string& what) const {
    throw format_error(name_, 0, 0, detail::message(name_, ": ", path, " ", what));
  }
  static std::string kind_name(const nlohmann::json& v) {
    switch (v.type()) {
      case nlohmann::json::value_t::null: return "null";
      case nlohmann::json::value_t::boolean: return "a boolean";
      case nlohmann::json::value_t::string: return "a string";
      case nlohmann::json::value_t::array: return "an array";
      case nlohmann::json::value_t::object: return "an object";
      default: return "a number";
    }
  }
  const nlohmann::json& field(const nlohmann::json& obj, const std::string& key, const std::string& path) const {
    if (!obj.contains(key)) bad(path + "." + key, "is missing");
    return obj.at(key);
  }
  std::string get_string(const nlohmann::json& obj, const std::string& key, const std::string& path) const {
    const auto& v = field(obj, key, path);
    if (!v.is_string()) bad(path + "." + key, "is " + kind_name(v) + ", expected a string");
    return v.get<std::string>();
  }
  std::optional<std::string> get_opt_string(const nlohmann::json& obj, const std::string& key, const std::string& path) const {
    if (!obj.contains(key) || obj.at(key).is_null()) return std::nullopt;
    return get_string(obj, key, path);
  }
  bool get_bool(const nlohmann::json& obj, const std::string& key, const std::string& path, bool fallback) const {
    if (!obj.contains(key) || obj.at(key).is_null()) return fallback;
    const auto& v = obj.at(key);
    if (!v.is_boolean()) bad(path + "." + key, "is " + kind_name(v) + ", expected true or false");
    return v.get<bool>();
  }
  std::int64_t get_int(const nlohmann::json& v, const std::string& path, std::int64_t lo, std::int64_t hi) const {
    if (!v.is_number_integer()) bad(path, "is " + kind_name(v) + ", expected an integer");
    const auto x = v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(hi) ? hi + 1 : v.get<std::int64_t>();
    if (x < lo || x > hi) bad(path, "is " + v.dump() + ", expected " + std::to_string(lo) + " to " + std::to_string(hi));
    return x;
  }
  const nlohmann::json& object_at(const nlohmann::json& obj, const std::string& key, const std::string& path) const {
    const auto& v = field(obj, key, path);
    if (!v.is_object()) bad(path + "." + key, "is " + kind_name(v) + ", expected an object");
    return v;
  }
  const nlohmann::json& array_at(const nlohmann::json& obj, const std::string& key, const std::string& path) const {
    const auto& v = field(obj, key, path);
    if (!v.is_array()) bad(path + "." + key, "is " + kind_name(v) + ", expected an array");
    return v;
  }
  void known_keys(const nlohmann::json& obj, const std::string& path, std::initializer_list<const char*> keys) const {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      bool ok = false;
      for (const char* k : keys) ok = ok || it.key() == k;
      if (!ok) {
        std::string list;
        for (const char* k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
        bad(path + "." + it.key(), "is not a field this reader knows (expected one of: " + list + ")");
      }
    }
  }
  std::string type_of(const nlohmann::json& obj, const std::string& path, std::initializer_list<const char*> types) const {
    if (!obj.is_object()) bad(path, "is " + kind_name(obj) + ", expected an object");
    const std::string t = get_string(obj, "type", path);
    for (const char* k : types) {
      if (t == k) return t;
    }
    std::string list;
    for (const char* k : types) list += (list.empty() ? "" : ", ") + std::string(k);
    bad(path + ".type", "is \"" + t + "\", expected one of " + list);
  }

  detail::hf::pattern parse_pattern(const nlohmann::json& obj, const std::string& key, const std::string& path) const {
    const auto& p = object_at(obj, key, path);
    const std::string where = path + "." + key;
    detail::hf::pattern out;
    if (p.size() == 1 && p.contains("String")) {
      out.k = detail::hf::pattern::kind::literal;
      out.literal = get_string(p, "String", where);
    } else if (p.size() == 1 && p.contains("Regex")) {
      out.k = detail::hf::pattern::kind::regex;
      out.re = detail::hf::regex(get_string(p, "Regex", where), name_, where);
    } else {
      bad(where, "is " + p.dump() + ", expected {\"String\": ...} or {\"Regex\": ...}");
    }
    return out;
  }
  detail::hf::split_behavior parse_behavior(const nlohmann::json& obj, const std::string& path) const {
    const std::string b = get_string(obj, "behavior", path);
    using sb = detail::hf::split_behavior;
    if (b == "Removed") return sb::removed;
    if (b == "Isolated") return sb::isolated;
    if (b == "MergedWithPrevious") return sb::merged_with_previous;
    if (b == "MergedWithNext") return sb::merged_with_next;
    if (b == "Contiguous") return sb::contiguous;
    bad(path + ".behavior", "is \"" + b + "\", expected one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
  }
  /// `s` decoded, or a format_error naming `path` when it is not UTF-8.
  std::vector<source_char> utf8_field(const std::string& s, const std::string& path) const {
    try {
      return decode_utf8(s);
    } catch (const argument_error& e) {
      bad(path, detail::unprefixed(e));
    }
  }
  char32_t single_char(const std::string& s, const std::string& path) const {
    const auto cps = utf8_field(s, path);
    if (cps.size() != 1) bad(path, "is \"" + s + "\", expected a single character");
    return cps[0].code_point;
  }

  detail::hf::normalizer parse_normalizer(const nlohmann::json& j, const std::string& path) {
    const nesting guard(this, path);
    using nk = detail::hf::normalizer::kind;
    const std::string t = type_of(j, path, {"Sequence", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents",
                                            "Replace", "Prepend", "BertNormalizer", "ByteLevel", "Precompiled"});
    detail::hf::normalizer n;
    if (t == "Sequence") {
      known_keys(j, path, {"type", "normalizers"});
      const auto& list = array_at(j, "normalizers", path);
      for (std::size_t i = 0; i < list.size(); ++i) n.children.push_back(parse_normalizer(list[i], path + ".normalizers[" + std::to_string(i) + "]"));
    } else if (t == "NFC" || t == "NFD" || t == "NFKC" || t == "NFKD") {
      known_keys(j, path, {"type"});
      n.k = nk::unicode;
      n.form = t == "NFC" ? detail::hf::unicode_form::nfc : t == "NFD" ? detail::hf::unicode_form::nfd
             : t == "NFKC" ? detail::hf::unicode_form::nfkc : detail::hf::unicode_form::nfkd;
    } else if (t == "Lowercase") {
      known_keys(j, path, {"type"});
      n.k = nk::lowercase;
    } else if (t == "StripAccents") {
      known_keys(j, path, {"type"});
      n.k = nk::strip_accents;
    } else if (t == "Strip") {
      known_keys(j, path, {"type", "strip_left", "strip_right"});
      n.k = nk::strip;
      n.left = get_bool(j, "strip_left", path, true);
      n.right = get_bool(j, "strip_right", path, true);
    } else if (t == "Replace") {
      known_keys(j, path, {"type", "pattern", "content"});
      n.k = nk::replace;
      n.pat = parse_pattern(j, "pattern", path);
      n.content = get_string(j, "content", path);
    } else if (t == "Prepend") {
      known_keys(j, path, {"type", "prepend"});
      n.k = nk::prepend;
      n.content = get_string(j, "prepend", path);
    } else if (t == "ByteLevel") {
      known_keys(j, path, {"type"});
      n.k = nk::byte_level;
    } else if (t == "BertNormalizer") {
      known_keys(j, path, {"type", "clean_text", "handle_chinese_chars", "strip_accents", "lowercase"});
      n.k = nk::bert;
      n.clean_text = get_bool(j, "clean_text", path, true);
      n.chinese = get_bool(j, "handle_chinese_chars", path, true);
      n.lower = get_bool(j, "lowercase", path, true);
      n.strip_accents = get_bool(j, "strip_accents", path, n.lower);
    } else {
      known_keys(j, path, {"type", "precompiled_charsmap"});
      n.k = nk::precompiled;
      const auto decoded = detail::hf::base64_decode(get_string(j, "precompiled_charsmap", path));
      if (!decoded) bad(path + ".precompiled_charsmap", "is not base64");
      auto map = std::make_shared<detail::hf::precompiled_charsmap>();
      const std::string problem = map->parse(*decoded);
      if (!problem.empty()) bad(path + ".precompiled_charsmap", problem);
      n.charsmap = std::move(map);
    }
    return n;
  }

  detail::hf::pre_tokenizer parse_pre_tokenizer(const nlohmann::json& j, const std::string& path) {
    const nesting guard(this, path);
    using pk = detail::hf::pre_tokenizer::kind;
    const std::string t = type_of(j, path, {"Sequence", "ByteLevel", "Split", "Metaspace", "Digits", "Punctuation",
                                            "BertPreTokenizer", "Whitespace", "WhitespaceSplit", "CharDelimiterSplit"});
    detail::hf::pre_tokenizer p;
    if (t == "Sequence") {
      known_keys(j, path, {"type", "pretokenizers"});
      const auto& list = array_at(j, "pretokenizers", path);
      for (std::size_t i = 0; i < list.size(); ++i) p.children.push_back(parse_pre_tokenizer(list[i], path + ".pretokenizers[" + std::to_string(i) + "]"));
    } else if (t == "ByteLevel") {
      known_keys(j, path, {"type", "add_prefix_space", "trim_offsets", "use_regex"});
      p.k = pk::byte_level;
      p.add_prefix_space = get_bool(j, "add_prefix_space", path, true);
      p.use_regex = get_bool(j, "use_regex", path, true);
    } else if (t == "Split") {
      known_keys(j, path, {"type", "pattern", "behavior", "invert"});
      p.k = pk::split;
      p.pat = parse_pattern(j, "pattern", path);
      p.behavior = parse_behavior(j, path);
      p.invert = get_bool(j, "invert", path, false);
    } else if (t == "Metaspace") {
      known_keys(j, path, {"type", "replacement", "prepend_scheme", "split", "add_prefix_space", "str_rep"});
      p.k = pk::metaspace;
      p.replacement = get_string(j, "replacement", path);
      p.replacement_char = single_char(p.replacement, path + ".replacement");
      p.metaspace_split = get_bool(j, "split", path, true);
      const auto scheme = get_opt_string(j, "prepend_scheme", path);
      if (scheme) {
        if (*scheme == "always") p.scheme = detail::hf::prepend_scheme::always;
        else if (*scheme == "first") p.scheme = detail::hf::prepend_scheme::first;
        else if (*scheme == "never") p.scheme = detail::hf::prepend_scheme::never;
        else bad(path + ".prepend_scheme", "is \"" + *scheme + "\", expected one of first, always, never");
      } else {
        p.scheme = get_bool(j, "add_prefix_space", path, true) ? detail::hf::prepend_scheme::always : detail::hf::prepend_scheme::never;
      }
    } else if (t == "Digits") {
      known_keys(j, path, {"type", "individual_digits"});
      p.k = pk::digits;
      p.individual_digits = get_bool(j, "individual_digits", path, false);
    } else if (t == "Punctuation") {
      known_keys(j, path, {"type", "behavior"});
      p.k = pk::punctuation;
      p.behavior = j.contains("behavior") ? parse_behavior(j, path) : detail::hf::split_behavior::isolated;
    } else if (t == "BertPreTokenizer") {
      known_keys(j, path, {"type"});
      p.k = pk::bert;
    } else if (t == "Whitespace") {
      known_keys(j, path, {"type"});
      p.k = pk::whitespace;
    } else if (t == "WhitespaceSplit") {
      known_keys(j, path, {"type"});
      p.k = pk::whitespace_split;
    } else {
      known_keys(j, path, {"type", "delimiter"});
      p.k = pk::char_delimiter;
      p.delimiter = single_char(get_string(j, "delimiter", path), path + ".delimiter");
    }
    return p;
  }

  std::int32_t special_pair(const nlohmann::json& j, const std::string& key, const std::string& path) const {
    const auto& v = field(j, key, path);
    if (!v.is_array() || v.size() != 2 || !v[0].is_string()) bad(path + "." + key, "is " + v.dump() + ", expected [\"token\", id]");
    return static_cast<std::int32_t>(get_int(v[1], path + "." + key + "[1]", 0, std::numeric_limits<std::int32_t>::max()));
  }

  detail::hf::post_processor parse_post_processor(const nlohmann::json& j, const std::string& path) {
    const nesting guard(this, path);
    using pk = detail::hf::post_processor::kind;
    const std::string t = type_of(j, path, {"Sequence", "TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel"});
    detail::hf::post_processor p;
    if (t == "Sequence") {
      known_keys(j, path, {"type", "processors"});
      const auto& list = array_at(j, "processors", path);
      for (std::size_t i = 0; i < list.size(); ++i) p.children.push_back(parse_post_processor(list[i], path + ".processors[" + std::to_string(i) + "]"));
    } else if (t == "ByteLevel") {
      known_keys(j, path, {"type", "add_prefix_space", "trim_offsets", "use_regex"});
      p.k = pk::byte_level;
      p.trim_offsets = get_bool(j, "trim_offsets", path, true);
      p.add_prefix_space = get_bool(j, "add_prefix_space", path, true);
    } else if (t == "BertProcessing" || t == "RobertaProcessing") {
      if (t == "BertProcessing") known_keys(j, path, {"type", "sep", "cls"});
      else known_keys(j, path, {"type", "sep", "cls", "trim_offsets", "add_prefix_space"});
      p.k = t == "BertProcessing" ? pk::bert : pk::roberta;
      p.sep_id = special_pair(j, "sep", path);
      p.cls_id = special_pair(j, "cls", path);
      p.trim_offsets = get_bool(j, "trim_offsets", path, true);
      p.add_prefix_space = get_bool(j, "add_prefix_space", path, true);
    } else {
      known_keys(j, path, {"type", "single", "pair", "special_tokens"});
      p.k = pk::template_processing;
      const auto& specials = object_at(j, "special_tokens", path);
      for (auto it = specials.begin(); it != specials.end(); ++it) {
        const std::string where = path + ".special_tokens." + it.key();
        if (!it.value().is_object()) bad(where, "is " + kind_name(it.value()) + ", expected an object");
        const auto& ids = array_at(it.value(), "ids", where);
        std::vector<std::int32_t> list;
        for (std::size_t i = 0; i < ids.size(); ++i) {
          list.push_back(static_cast<std::int32_t>(get_int(ids[i], where + ".ids[" + std::to_string(i) + "]", 0, std::numeric_limits<std::int32_t>::max())));
        }
        p.special_ids[it.key()] = list;
      }
      const auto& single = array_at(j, "single", path);
      for (std::size_t i = 0; i < single.size(); ++i) {
        const std::string where = path + ".single[" + std::to_string(i) + "]";
        const auto& item = single[i];
        if (item.is_object() && item.size() == 1 && item.contains("SpecialToken")) {
          const std::string id = get_string(object_at(item, "SpecialToken", where), "id", where + ".SpecialToken");
          if (!p.special_ids.count(id)) bad(where + ".SpecialToken.id", "is \"" + id + "\", which special_tokens does not define");
          p.single.push_back({true, id});
        } else if (item.is_object() && item.size() == 1 && item.contains("Sequence")) {
          p.single.push_back({false, get_string(object_at(item, "Sequence", where), "id", where + ".Sequence")});
        } else {
          bad(where, "is " + item.dump() + ", expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
        }
      }
    }
    return p;
  }

  std::unordered_map<std::string, std::int32_t> parse_vocab_object(const nlohmann::json& m, const std::string& path) const {
    const auto& v = object_at(m, "vocab", path);
    std::unordered_map<std::string, std::int32_t> vocab;
    vocab.reserve(v.size());
    for (auto it = v.begin(); it != v.end(); ++it) {
      const auto& v = it.value();
      // The path is built only for the error: files hold hundreds of thousands of entries.
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > std::numeric_limits<std::int32_t>::max() - 1) {
        get_int(v, path + ".vocab[\"" + it.key() + "\"]", 0, std::numeric_limits<std::int32_t>::max() - 1);
      }
      vocab[it.key()] = static_cast<std::int32_t>(v.get<std::int64_t>());
    }
    return vocab;
  }

  void parse_model(const nlohmann::json& j) {
    const std::string path = "model";
    if (!j.is_object()) bad(path, "is " + kind_name(j) + ", expected an object");
    std::string t;
    if (j.contains("type")) {
      t = type_of(j, path, {"BPE", "WordPiece", "Unigram", "WordLevel"});
    } else {
      t = j.contains("merges") ? "BPE" : j.contains("max_input_chars_per_word") ? "WordPiece" : j.contains("unk_id") ? "Unigram" : "WordLevel";
    }
    if (t == "BPE") {
      known_keys(j, path, {"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk",
                           "byte_fallback", "ignore_merges", "vocab", "merges"});
      if (j.contains("dropout") && !j.at("dropout").is_null()) bad(path + ".dropout", "is " + j.at("dropout").dump() + ", expected null (dropout makes encoding random)");
      detail::hf::bpe_model m;
      m.vocab = parse_vocab_object(j, path);
      m.continuing_subword_prefix = get_opt_string(j, "continuing_subword_prefix", path).value_or("");
      m.end_of_word_suffix = get_opt_string(j, "end_of_word_suffix", path).value_or("");
      m.fuse_unk = get_bool(j, "fuse_unk", path, false);
      m.byte_fallback = get_bool(j, "byte_fallback", path, false);
      m.ignore_merges = get_bool(j, "ignore_merges", path, false);
      if (const auto unk = get_opt_string(j, "unk_token", path)) {
        const auto it = m.vocab.find(*unk);
        if (it == m.vocab.end()) bad(path + ".unk_token", "is \"" + *unk + "\", which is not in model.vocab");
        m.unk_id = it->second;
      }
      const auto& merges = array_at(j, "merges", path);
      m.merges.reserve(merges.size());
      for (std::size_t i = 0; i < merges.size(); ++i) {
        auto where = [&] { return path + ".merges[" + std::to_string(i) + "]"; };
        std::string left, right;
        const auto& e = merges[i];
        if (e.is_string()) {
          const std::string s = e.get<std::string>();
          const auto sp = s.find(' ');
          if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) bad(where(), "is \"" + s + "\", expected \"left right\" (two tokens, one space)");
          left = s.substr(0, sp);
          right = s.substr(sp + 1);
        } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
          left = e[0].get<std::string>();
          right = e[1].get<std::string>();
        } else {
          bad(where(), "is " + e.dump() + ", expected \"left right\" or [\"left\", \"right\"]");
        }
        std::string missing;
        if (!m.add_merge(left, right, static_cast<std::int32_t>(i), &missing)) bad(where(), "needs \"" + missing + "\", which is not in model.vocab");
      }
      m.finish();
      model_ = std::move(m);
    } else if (t == "WordPiece") {
      known_keys(j, path, {"type", "unk_token", "continuing_subword_prefix", "max_input_chars_per_word", "vocab"});
      detail::hf::wordpiece_model m;
      m.vocab = parse_vocab_object(j, path);
      const std::string unk = get_string(j, "unk_token", path);
      const auto it = m.vocab.find(unk);
      if (it == m.vocab.end()) bad(path + ".unk_token", "is \"" + unk + "\", which is not in model.vocab");
      m.unk_id = it->second;
      m.continuing_subword_prefix = get_opt_string(j, "continuing_subword_prefix", path).value_or("##");
      if (j.contains("max_input_chars_per_word")) {
        m.max_input_chars_per_word = static_cast<std::size_t>(get_int(j.at("max_input_chars_per_word"), path + ".max_input_chars_per_word", 0, std::numeric_limits<std::int32_t>::max()));
      }
      model_ = std::move(m);
    } else if (t == "WordLevel") {
      known_keys(j, path, {"type", "vocab", "unk_token"});
      detail::hf::wordlevel_model m;
      m.vocab = parse_vocab_object(j, path);
      if (const auto unk = get_opt_string(j, "unk_token", path)) {
        const auto it = m.vocab.find(*unk);
        if (it == m.vocab.end()) bad(path + ".unk_token", "is \"" + *unk + "\", which is not in model.vocab");
        m.unk_id = it->second;
        m.unk_token = *unk;
      }
      model_ = std::move(m);
    } else {
      known_keys(j, path, {"type", "unk_id", "vocab", "byte_fallback"});
      detail::hf::unigram_model m;
      const auto& v = array_at(j, "vocab", path);
      for (std::size_t i = 0; i < v.size(); ++i) {
        const std::string where = path + ".vocab[" + std::to_string(i) + "]";
        const auto& e = v[i];
        if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number()) bad(where, "is " + e.dump() + ", expected [\"piece\", score]");
        m.pieces.push_back({e[0].get<std::string>(), e[1].get<double>()});
      }
      if (j.contains("unk_id") && !j.at("unk_id").is_null()) {
        m.unk_id = static_cast<std::int32_t>(get_int(j.at("unk_id"), path + ".unk_id", 0, static_cast<std::int64_t>(v.size()) - 1));
      }
      m.byte_fallback = get_bool(j, "byte_fallback", path, false);
      m.finish();
      model_ = std::move(m);
    }
  }

  void load(const nlohmann::json& j) {
    if (!j.is_object()) bad("(root)", "is " + kind_name(j) + ", expected an object");
    known_keys(j, "(root)", {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "model",
                             "post_processor", "decoder"});
    parse_model(field(j, "model", "(root)"));
    if (j.contains("normalizer") && !j.at("normalizer").is_null()) normalizer_ = parse_normalizer(j.at("normalizer"), "normalizer");
    if (j.contains("pre_tokenizer") && !j.at("pre_tokenizer").is_null()) pre_tokenizer_ = parse_pre_tokenizer(j.at("pre_tokenizer"), "pre_tokenizer");
    if (j.contains("post_processor") && !j.at("post_processor").is_null()) post_processor_ = parse_post_processor(j.at("post_processor"), "post_processor");
    // Spellings: the model's vocabulary, then the added tokens over it.
    ids_.reserve(std::visit([](const auto& m) { return m.vocab.size(); }, model_) + 1024);
    std::visit(
        [&](const auto& m) {
          using M = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<M, detail::hf::unigram_model>) {
            for (std::size_t i = 0; i < m.pieces.size(); ++i) set_spelling(static_cast<std::int32_t>(i), m.pieces[i].first);
          } else {
            for (const auto& [s, id] : m.vocab) set_spelling(id, s);
          }
        },
        model_);
    if (j.contains("added_tokens") && !j.at("added_tokens").is_null()) {
      const auto& list = array_at(j, "added_tokens", "(root)");
      std::vector<added_token> special, plain;
      for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string where = "added_tokens[" + std::to_string(i) + "]";
        const auto& e = list[i];
        if (!e.is_object()) bad(where, "is " + kind_name(e) + ", expected an object");
        known_keys(e, where, {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"});
        added_token a;
        a.id = static_cast<std::int32_t>(get_int(field(e, "id", where), where + ".id", 0, std::numeric_limits<std::int32_t>::max() - 1));
        a.content = get_string(e, "content", where);
        a.special = get_bool(e, "special", where, false);
        a.single_word = get_bool(e, "single_word", where, false);
        a.lstrip = get_bool(e, "lstrip", where, false);
        a.rstrip = get_bool(e, "rstrip", where, false);
        a.normalized = get_bool(e, "normalized", where, !a.special);
        (void)utf8_field(a.content, where + ".content");
        a.match = a.content;
        if (a.normalized && normalizer_) {
          auto n = detail::hf::normalized_string::from_original(a.content, 0);
          normalizer_->apply(n);
          a.match = n.text;
        }
        set_spelling(a.id, a.content);
        (a.special ? special : plain).push_back(std::move(a));
      }
      added_ = std::move(special);
      added_.insert(added_.end(), plain.begin(), plain.end());
      for (std::size_t i = 0; i < added_.size(); ++i) {
        if (added_[i].match.empty()) continue;
        (added_[i].normalized ? normalized_trie_ : original_trie_).insert(added_[i].match, static_cast<std::int32_t>(i));
      }
    }
    // Post-processor ids must exist, so that encode cannot produce ids the model lacks.
    check_post_ids(post_processor_ ? &*post_processor_ : nullptr, "post_processor");
  }

  void check_post_ids(const detail::hf::post_processor* p, const std::string& path) const {
    if (p == nullptr) return;
    auto check = [&](std::int32_t id, const std::string& where) {
      if (id >= vocab_size() || !has_spelling_[static_cast<std::size_t>(id)]) {
        bad(where, "refers to id " + std::to_string(id) + ", which is neither in the vocabulary nor an added token");
      }
    };
    for (std::size_t i = 0; i < p->children.size(); ++i) check_post_ids(&p->children[i], path + ".processors[" + std::to_string(i) + "]");
    if (p->k == detail::hf::post_processor::kind::bert || p->k == detail::hf::post_processor::kind::roberta) {
      check(p->cls_id, path + ".cls");
      check(p->sep_id, path + ".sep");
    }
    for (const auto& [name, ids] : p->special_ids) {
      for (std::int32_t id : ids) check(id, path + ".special_tokens." + name);
    }
  }

  void set_spelling(std::int32_t id, const std::string& s) {
    const auto i = static_cast<std::size_t>(id);
    if (i >= spelling_.size()) {
      spelling_.resize(i + 1);
      has_spelling_.resize(i + 1, false);
    }
    if (has_spelling_[i]) ids_.erase(spelling_[i]);
    spelling_[i] = s;
    has_spelling_[i] = true;
    ids_[s] = id;
  }
};

}  // namespace headlens
