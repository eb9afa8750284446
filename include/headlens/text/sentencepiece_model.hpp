#pragma once
/// \file
/// SentencePiece `tokenizer.model` files (the ModelProto protobuf of Llama 1/2, Mistral, Gemma, T5, ...) read
/// without libprotobuf, and encoded exactly as the SentencePiece library (0.1.97) encodes them: its normaliser
/// (precompiled charsmap, whitespace handling, dummy prefix), unigram Viterbi or BPE merges, user-defined symbols,
/// unknown pieces and byte fallback. Every token carries the bytes `[begin, end)` of the original text it covers,
/// as SentencePiece's own ImmutableSentencePieceText reports them.
///
/// TrainerSpec settings that only shape training (split_digits, split_by_whitespace, vocab_size, ...) are read past:
/// the library does not consult them when it encodes. Not provided: WORD and CHAR models, sampling and n-best,
/// decoding (the denormaliser).
///
/// Not to be confused with sentencepiece.hpp, which reproduces one npm package's unigram tokenizer for USE-lite.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "headlens/detail/binary_file.hpp"
#include "headlens/error.hpp"
#include "headlens/text/detail/protobuf_wire.hpp"
#include "headlens/text/detail/sentencepiece_normalizer.hpp"
#include "headlens/text/token.hpp"

namespace headlens {

/// The segmentation algorithm of a SentencePiece model (TrainerSpec.model_type; WORD and CHAR are not supported).
enum class sentencepiece_model_kind : std::int32_t { unigram = 1, bpe = 2 };

/// The type of a piece (ModelProto.SentencePiece.Type; GGUF's `tokenizer.ggml.token_type` uses the same numbers).
enum class sentencepiece_piece_type : std::int32_t {
  normal = 1,        ///< an ordinary piece, found by the segmentation
  unknown = 2,       ///< the unknown piece (exactly one)
  control = 3,       ///< <s>, </s>, ...: never produced from text
  user_defined = 4,  ///< always segmented as one piece wherever its text occurs (not normalised)
  unused = 5,        ///< kept in the vocabulary, never produced
  byte = 6,          ///< <0x00> .. <0xFF>, the byte-fallback pieces
};

/// What a SentencePiece model needs beside its pieces: the algorithm, byte fallback, the normaliser and the names of
/// the special pieces. Defaults are those of the protobuf schema.
struct sentencepiece_model_options {
  sentencepiece_model_kind kind = sentencepiece_model_kind::unigram;
  bool byte_fallback = false;               ///< unknown characters become <0xXX> byte pieces
  std::string precompiled_charsmap;         ///< NormalizerSpec.precompiled_charsmap; empty means no mapping
  std::string normalizer_name;              ///< NormalizerSpec.name ("nmt_nfkc", "identity", ...), informative
  bool add_dummy_prefix = true;             ///< a space is put before the text
  bool remove_extra_whitespaces = true;     ///< leading, trailing and repeated spaces are dropped
  bool escape_whitespaces = true;           ///< spaces become U+2581
  bool treat_whitespace_as_suffix = false;  ///< the dummy space goes after the text instead
  std::string bos_piece = "<s>";            ///< TrainerSpec.bos_piece: bos_id() is its id when it is a control piece
  std::string eos_piece = "</s>";           ///< TrainerSpec.eos_piece
  std::string pad_piece = "<pad>";          ///< TrainerSpec.pad_piece
};

/// A SentencePiece model. Build it from a `tokenizer.model` (`from_file`, `from_bytes`) or from its vocabulary
/// (the constructor, e.g. from GGUF's tokenizer.ggml.tokens / scores / token_type), then `encode`.
///
/// Token spans are SentencePiece's: a piece covers the original bytes its normalised bytes came from; the dummy
/// `▁` covers no bytes of its own; of the byte pieces an unknown character falls back to, all but the last are
/// empty at the character's start and the last covers the character; a run of unknown pieces (without byte
/// fallback) is merged into one token.
class sentencepiece_model {
 public:
  /// Builds a model from its vocabulary: `pieces[i]`, `scores[i]` and `types[i]` describe id `i`. Throws
  /// `argument_error` when the sizes differ, a piece is empty or given twice, there is no or more than one unknown
  /// piece, a byte piece is not `<0xXX>` (upper-case hex) or appears without `byte_fallback`, `byte_fallback` is on
  /// without all 256 byte pieces, or the charsmap is malformed — the checks SentencePiece makes when it loads.
  ///
  /// From GGUF (`tokenizer.ggml.model` = "llama"): pieces, scores and types are `tokenizer.ggml.tokens`, `.scores`
  /// and `.token_type` (the same type numbers); the options that Llama's own tokenizer.model carries are kind = bpe,
  /// byte_fallback = true when byte pieces are present, no charsmap, remove_extra_whitespaces = false and
  /// add_dummy_prefix = `tokenizer.ggml.add_space_prefix` (default true); bos_piece = the piece of
  /// `tokenizer.ggml.bos_token_id`.
  sentencepiece_model(std::vector<std::string> pieces, std::vector<float> scores,
                      std::vector<sentencepiece_piece_type> types, sentencepiece_model_options options = {})
      : sentencepiece_model(std::move(pieces), std::move(scores), std::move(types), std::move(options), nullptr, 0) {}

  /// Reads a `tokenizer.model` file. Throws `io_error` when it cannot be read and `format_error` (with the byte
  /// offset) when it is not a valid SentencePiece model.
  static sentencepiece_model from_file(const std::string& path) {
    const std::vector<unsigned char> bytes = detail::read_file_bytes(path);
    return from_bytes(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
  }

  /// Decodes a serialised ModelProto; `name` names it in errors. Unknown fields are skipped; a known field with
  /// the wrong wire type, a truncated or overlong value, an unknown piece type and an unsupported model type are
  /// `format_error`s with the byte offset.
  static sentencepiece_model from_bytes(std::string_view bytes, const std::string& name = "<memory>") {
    std::vector<std::string> pieces;
    std::vector<float> scores;
    std::vector<sentencepiece_piece_type> types;
    sentencepiece_model_options options;
    std::size_t charsmap_offset = 0;
    std::size_t model_type_offset = 0;
    std::int32_t model_type = 1;
    detail::protobuf_reader model(bytes, 0, bytes.size(), name, "ModelProto");
    while (!model.done()) {
      const auto f = model.next_field();
      if (f.number == 1) {  // repeated SentencePiece pieces
        detail::protobuf_reader piece =
            model.sub_message(f, "pieces", "ModelProto.pieces[" + std::to_string(pieces.size()) + "]");
        std::string text;
        float score = 0.0f;
        std::int32_t type = 1;
        std::size_t type_offset = 0;
        while (!piece.done()) {
          const auto g = piece.next_field();
          if (g.number == 1) {
            text = std::string(piece.bytes(g, "piece"));
          } else if (g.number == 2) {
            score = piece.float32(g, "score");
          } else if (g.number == 3) {
            type_offset = g.offset;
            type = piece.int32(g, "type");
          } else {
            piece.skip(g);
          }
        }
        if (type < 1 || type > 6) {
          piece.fail_at(type_offset, "type is " + std::to_string(type) + ", expected 1 (NORMAL) to 6 (BYTE)");
        }
        if (text.empty()) piece.fail_at(f.offset, "piece is empty, expected its text");
        pieces.push_back(std::move(text));
        scores.push_back(score);
        types.push_back(static_cast<sentencepiece_piece_type>(type));
      } else if (f.number == 2) {  // TrainerSpec
        detail::protobuf_reader trainer = model.sub_message(f, "trainer_spec", "TrainerSpec");
        while (!trainer.done()) {
          const auto g = trainer.next_field();
          switch (g.number) {
            case 3:
              model_type_offset = g.offset;
              model_type = trainer.int32(g, "model_type");
              break;
            case 24:
              options.treat_whitespace_as_suffix = trainer.boolean(g, "treat_whitespace_as_suffix");
              break;
            case 35:
              options.byte_fallback = trainer.boolean(g, "byte_fallback");
              break;
            case 46:
              options.bos_piece = std::string(trainer.bytes(g, "bos_piece"));
              break;
            case 47:
              options.eos_piece = std::string(trainer.bytes(g, "eos_piece"));
              break;
            case 48:
              options.pad_piece = std::string(trainer.bytes(g, "pad_piece"));
              break;
            default:
              trainer.skip(g);  // training-only settings (split_digits, vocab_size, ...) do not affect encoding
          }
        }
      } else if (f.number == 3) {  // NormalizerSpec
        detail::protobuf_reader normalizer = model.sub_message(f, "normalizer_spec", "NormalizerSpec");
        while (!normalizer.done()) {
          const auto g = normalizer.next_field();
          switch (g.number) {
            case 1:
              options.normalizer_name = std::string(normalizer.bytes(g, "name"));
              break;
            case 2: {
              const std::string_view blob = normalizer.bytes(g, "precompiled_charsmap");
              charsmap_offset = static_cast<std::size_t>(blob.data() - bytes.data());
              options.precompiled_charsmap = std::string(blob);
              break;
            }
            case 3:
              options.add_dummy_prefix = normalizer.boolean(g, "add_dummy_prefix");
              break;
            case 4:
              options.remove_extra_whitespaces = normalizer.boolean(g, "remove_extra_whitespaces");
              break;
            case 5:
              options.escape_whitespaces = normalizer.boolean(g, "escape_whitespaces");
              break;
            default:
              normalizer.skip(g);
          }
        }
      } else {
        model.skip(f);  // self_test_data, denormalizer_spec, unknown fields
      }
    }
    if (model_type == 3 || model_type == 4) {
      model.fail_at(model_type_offset, std::string("TrainerSpec.model_type is ") + std::to_string(model_type) +
                                           (model_type == 3 ? " (WORD)" : " (CHAR)") +
                                           ", which headlens does not support (expected 1 UNIGRAM or 2 BPE)");
    }
    if (model_type != 1 && model_type != 2) {
      model.fail_at(model_type_offset,
                    "TrainerSpec.model_type is " + std::to_string(model_type) + ", expected 1 (UNIGRAM) or 2 (BPE)");
    }
    options.kind = static_cast<sentencepiece_model_kind>(model_type);
    try {
      return sentencepiece_model(std::move(pieces), std::move(scores), std::move(types), std::move(options), &name,
                                 charsmap_offset);
    } catch (const argument_error& e) {
      throw format_error::at_byte(name, 0, "ModelProto: " + detail::unprefixed(e));
    }
  }

  /// Number of pieces (ids are 0 .. size() - 1).
  std::int32_t size() const noexcept { return static_cast<std::int32_t>(pieces_.size()); }
  /// The text of piece `id`. Throws `argument_error` for an id out of range.
  const std::string& piece(std::int32_t id) const { return pieces_[checked(id)]; }
  /// The score of piece `id`.
  float score(std::int32_t id) const { return scores_[checked(id)]; }
  /// The type of piece `id`.
  sentencepiece_piece_type type(std::int32_t id) const { return types_[checked(id)]; }
  /// The id of the piece spelled `text` (of any type), or nothing.
  std::optional<std::int32_t> piece_id(std::string_view text) const {
    const std::int32_t id = lookup(text);
    return id >= 0 ? std::optional<std::int32_t>(id) : std::nullopt;
  }
  /// The algorithm.
  sentencepiece_model_kind kind() const noexcept { return options_.kind; }
  /// The options the model was built with.
  const sentencepiece_model_options& options() const noexcept { return options_; }
  /// The unknown piece's id.
  std::int32_t unk_id() const noexcept { return unk_id_; }
  /// The id of `bos_piece` when it is a control piece (as SentencePiece's bos_id()), else nothing.
  std::optional<std::int32_t> bos_id() const { return control_id(options_.bos_piece); }
  /// The id of `eos_piece` when it is a control piece, else nothing.
  std::optional<std::int32_t> eos_id() const { return control_id(options_.eos_piece); }
  /// The id of `pad_piece` when it is a control piece, else nothing.
  std::optional<std::int32_t> pad_id() const { return control_id(options_.pad_piece); }

  /// SentencePiece's normalisation of `text`; `to_original` (optional) receives for each normalised byte, and one
  /// past the end, the offset of the original byte it came from.
  std::string normalize(std::string_view text, std::vector<std::size_t>* to_original = nullptr) const {
    std::vector<std::size_t> map;
    std::string out = normalizer_.normalize(text, map, user_defined_.empty() ? nullptr : &user_defined_);
    if (to_original != nullptr) *to_original = std::move(map);
    return out;
  }

  /// Encodes `text` (UTF-8; a malformed byte is read as U+FFFD, as SentencePiece does) into ids with the byte spans
  /// of the original text. With `add_bos`, the BOS piece comes first with the empty span [0, 0); throws
  /// `argument_error` when the model has none.
  std::vector<text_token> encode(std::string_view text, bool add_bos = false) const {
    std::vector<text_token> out;
    if (add_bos) {
      const auto bos = bos_id();
      if (!bos)
        detail::fail<argument_error>("add_bos is true but the model's bos_piece \"", options_.bos_piece,
                                     "\" is not a control piece");
      out.push_back({*bos, 0, 0});
    }
    std::vector<std::size_t> to_original;
    const std::string normalized =
        normalizer_.normalize(text, to_original, user_defined_.empty() ? nullptr : &user_defined_);
    if (normalized.empty()) return out;
    const std::vector<segment> segments =
        options_.kind == sentencepiece_model_kind::unigram ? encode_unigram(normalized) : encode_bpe(normalized);

    // SentencePieceProcessor::Encode: spans through norm_to_orig, byte fallback, runs of unknowns merged.
    std::size_t consumed = 0;
    bool previous_unknown = false;
    for (const segment& s : segments) {
      if (types_[static_cast<std::size_t>(s.id)] == sentencepiece_piece_type::control) {
        out.push_back({s.id, to_original[consumed], to_original[consumed]});
        previous_unknown = false;
        continue;  // SentencePiece does not advance past a control piece's bytes either
      }
      const std::size_t begin = to_original[consumed];
      const std::size_t end = to_original[consumed + s.length];
      const bool unknown = s.id == unk_id_;
      if (unknown && options_.byte_fallback) {
        for (std::size_t i = 0; i < s.length; ++i) {
          const auto byte = static_cast<unsigned char>(normalized[consumed + i]);
          const bool last = i + 1 == s.length;
          out.push_back({byte_ids_[byte], begin, last ? end : begin});
        }
      } else if (unknown && previous_unknown) {
        out.back().end = end;
      } else {
        out.push_back({s.id, begin, end});
      }
      if (!(unknown && options_.byte_fallback)) previous_unknown = unknown;
      consumed += s.length;
    }
    return out;
  }

  /// The ids of `encode(text, add_bos)`.
  std::vector<std::int32_t> encode_ids(std::string_view text, bool add_bos = false) const {
    std::vector<std::int32_t> ids;
    for (const text_token& t : encode(text, add_bos)) ids.push_back(t.id);
    return ids;
  }

 private:
  /// A piece of the normalised text: its id and byte length.
  struct segment {
    std::int32_t id;
    std::size_t length;
  };

  sentencepiece_model(std::vector<std::string> pieces, std::vector<float> scores,
                      std::vector<sentencepiece_piece_type> types, sentencepiece_model_options options,
                      const std::string* file, std::size_t charsmap_offset)
      : pieces_(std::move(pieces)), scores_(std::move(scores)), types_(std::move(types)), options_(std::move(options)) {
    if (scores_.size() != pieces_.size() || types_.size() != pieces_.size()) {
      detail::fail<argument_error>("pieces, scores and types have ", pieces_.size(), ", ", scores_.size(), " and ",
                                   types_.size(), " entries, expected the same number");
    }
    if (pieces_.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
      detail::fail<argument_error>("the model has ", pieces_.size(), " pieces, expected at most 2^31 - 1");
    }
    if (options_.kind != sentencepiece_model_kind::unigram && options_.kind != sentencepiece_model_kind::bpe) {
      detail::fail<argument_error>("kind is ", static_cast<std::int32_t>(options_.kind),
                                   ", expected 1 (unigram) or 2 (bpe)");
    }
    std::vector<bool> byte_found(256, false);
    byte_ids_.assign(256, -1);
    // Views into pieces_, which outlives the trie construction below.
    std::vector<std::pair<std::string_view, std::int32_t>> trie_entries;
    std::vector<std::pair<std::string_view, std::int32_t>> user_entries;
    pieces_map_.reserve(pieces_.size());
    trie_entries.reserve(pieces_.size());
    float min_score = std::numeric_limits<float>::max();
    float max_score = std::numeric_limits<float>::min();  // FLT_MIN, as SentencePiece starts from
    for (std::size_t i = 0; i < pieces_.size(); ++i) {
      const auto id = static_cast<std::int32_t>(i);
      const std::string& p = pieces_[i];
      const sentencepiece_piece_type t = types_[i];
      const auto type_number = static_cast<std::int32_t>(t);
      if (type_number < 1 || type_number > 6) {
        detail::fail<argument_error>("type of piece ", i, " is ", type_number, ", expected 1 (normal) to 6 (byte)");
      }
      if (p.empty()) detail::fail<argument_error>("piece ", i, " is empty, expected its text");
      const bool normal_like = t == sentencepiece_piece_type::normal || t == sentencepiece_piece_type::user_defined ||
                               t == sentencepiece_piece_type::unused;
      auto& map = normal_like ? pieces_map_ : reserved_map_;
      if (!map.emplace(p, id).second) {
        detail::fail<argument_error>("piece ", i, " \"", p, "\" is already defined (as piece ", map.at(p), ")");
      }
      if (normal_like) trie_entries.emplace_back(p, id);
      if (t == sentencepiece_piece_type::user_defined) user_entries.emplace_back(p, id);
      if (t == sentencepiece_piece_type::unknown) {
        if (unk_id_ >= 0) {
          detail::fail<argument_error>("piece ", i, " is a second unknown piece (the first is ", unk_id_, ")");
        }
        unk_id_ = id;
      }
      if (t == sentencepiece_piece_type::byte) {
        if (!options_.byte_fallback) {
          detail::fail<argument_error>("piece ", i, " \"", p, "\" is a byte piece but byte_fallback is false");
        }
        const int b = byte_of(p);
        if (b < 0) detail::fail<argument_error>("byte piece ", i, " is \"", p, "\", expected <0x00> to <0xFF>");
        byte_found[static_cast<std::size_t>(b)] = true;
        byte_ids_[static_cast<std::size_t>(b)] = id;
      }
      if (t == sentencepiece_piece_type::normal) {
        min_score = std::min(min_score, scores_[i]);
        max_score = std::max(max_score, scores_[i]);
      }
    }
    if (unk_id_ < 0) detail::fail<argument_error>("no piece has the type unknown, expected exactly one");
    if (options_.byte_fallback) {
      for (std::size_t b = 0; b < 256; ++b) {
        if (!byte_found[b]) {
          char name[8];
          std::snprintf(name, sizeof name, "<0x%02X>", static_cast<unsigned>(b));
          detail::fail<argument_error>("byte_fallback is true but there is no byte piece ", name, ", expected all 256");
        }
        // SentencePiece's PieceToId looks in the reserved pieces first: a byte piece is one.
        byte_ids_[b] = lookup(pieces_[static_cast<std::size_t>(byte_ids_[b])]);
      }
    }
    min_score_ = min_score;
    max_score_ = max_score;
    trie_ = detail::byte_trie(std::move(trie_entries));
    user_defined_ = detail::byte_trie(std::move(user_entries));
    detail::sentencepiece_normalizer_options n;
    n.precompiled_charsmap = options_.precompiled_charsmap;
    n.add_dummy_prefix = options_.add_dummy_prefix;
    n.remove_extra_whitespaces = options_.remove_extra_whitespaces;
    n.escape_whitespaces = options_.escape_whitespaces;
    n.treat_whitespace_as_suffix = options_.treat_whitespace_as_suffix;
    // From a file, a malformed charsmap is a format_error at its offset; from the constructor, a bad argument.
    try {
      normalizer_ =
          detail::sentencepiece_normalizer(std::move(n), file ? *file : "precompiled_charsmap", charsmap_offset);
    } catch (const format_error& e) {
      if (file != nullptr) throw;
      detail::fail<argument_error>(detail::unprefixed(e));
    }
  }

  std::size_t checked(std::int32_t id) const {
    if (id < 0 || id >= size()) detail::fail<argument_error>("id is ", id, ", expected 0 <= id < ", size());
    return static_cast<std::size_t>(id);
  }

  /// SentencePiece's PieceToId without the unknown default: reserved pieces first, then the others; -1 if none.
  std::int32_t lookup(std::string_view text) const {
    const std::string key(text);
    const auto r = reserved_map_.find(key);
    if (r != reserved_map_.end()) return r->second;
    const auto n = pieces_map_.find(key);
    return n != pieces_map_.end() ? n->second : -1;
  }

  std::optional<std::int32_t> control_id(const std::string& text) const {
    const std::int32_t id = lookup(text);
    if (id >= 0 && types_[static_cast<std::size_t>(id)] == sentencepiece_piece_type::control) return id;
    return std::nullopt;
  }

  /// The byte a piece `<0xXX>` (upper-case hex digits) stands for, or -1.
  static int byte_of(const std::string& p) {
    if (p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return -1;
    int value = 0;
    for (int i = 3; i < 5; ++i) {
      const char c = p[static_cast<std::size_t>(i)];
      value *= 16;
      if (c >= '0' && c <= '9')
        value += c - '0';
      else if (c >= 'A' && c <= 'F')
        value += c - 'A' + 10;
      else
        return -1;
    }
    return value;
  }

  /// unigram_model.cc's EncodeOptimized: Viterbi over the pieces that start at each character, scores in the
  /// library's precision (path scores stored as float; a candidate summed in double when a user-defined piece
  /// makes the piece score a double), ties kept by the first candidate; a character no piece of its length covers
  /// gets an unknown edge scored min_score - 10.
  std::vector<segment> encode_unigram(const std::string& normalized) const {
    struct best_node {
      std::int32_t id = -1;
      float score = 0.0f;
      std::int64_t starts_at = -1;
    };
    const std::size_t size = normalized.size();
    const float unk_score = min_score_ - 10.0f;
    std::vector<best_node> best(size + 1);
    std::size_t starts_at = 0;
    while (starts_at < size) {
      const float score_here = best[starts_at].score;
      bool has_single_node = false;
      const std::size_t mblen = detail::sentencepiece_one_char_length(std::string_view(normalized).substr(starts_at));
      std::uint32_t node = detail::byte_trie::root;
      for (std::size_t key_pos = starts_at; key_pos < size;) {
        const std::int64_t next = trie_.child(node, static_cast<unsigned char>(normalized[key_pos]));
        if (next < 0) break;
        node = static_cast<std::uint32_t>(next);
        ++key_pos;
        const std::int32_t id = trie_.value(node);
        if (id < 0) continue;
        const sentencepiece_piece_type t = types_[static_cast<std::size_t>(id)];
        if (t == sentencepiece_piece_type::unused) continue;
        best_node& target = best[key_pos];
        const std::size_t length = key_pos - starts_at;
        const double piece_score = t == sentencepiece_piece_type::user_defined
                                       ? static_cast<double>(static_cast<float>(length) * max_score_) - 0.1
                                       : static_cast<double>(scores_[static_cast<std::size_t>(id)]);
        const double candidate = piece_score + static_cast<double>(score_here);
        if (target.starts_at == -1 || candidate > static_cast<double>(target.score)) {
          target.score = static_cast<float>(candidate);
          target.starts_at = static_cast<std::int64_t>(starts_at);
          target.id = id;
        }
        if (!has_single_node && length == mblen) has_single_node = true;
      }
      if (!has_single_node) {
        best_node& target = best[starts_at + mblen];
        const float candidate = unk_score + score_here;
        if (target.starts_at == -1 || candidate > target.score) {
          target.score = candidate;
          target.starts_at = static_cast<std::int64_t>(starts_at);
          target.id = unk_id_;
        }
      }
      starts_at += mblen;
    }
    std::vector<segment> out;
    std::size_t ends_at = size;
    while (ends_at > 0) {
      const best_node& node = best[ends_at];
      HEADLENS_ASSERT(node.starts_at >= 0);
      const auto start = static_cast<std::size_t>(node.starts_at);
      out.push_back({node.id, ends_at - start});
      ends_at = start;
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

  /// bpe_model.cc's Encode: characters (user-defined pieces whole and frozen), then repeatedly merge the adjacent
  /// pair whose concatenation is a piece of the highest score (ties: the leftmost), through the library's own
  /// priority queue with stale entries; unused pieces are split back into what they were merged from.
  std::vector<segment> encode_bpe(const std::string& normalized) const {
    struct symbol {
      std::int64_t prev;
      std::int64_t next;
      bool freeze;
      std::size_t begin;
      std::size_t length;
    };
    struct pair {
      std::int64_t left;
      std::int64_t right;
      float score;
      std::size_t size;
    };
    struct lower_priority {
      bool operator()(const pair& a, const pair& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
      }
    };
    std::priority_queue<pair, std::vector<pair>, lower_priority> agenda;
    std::vector<symbol> symbols;
    std::unordered_map<std::string, std::pair<std::string, std::string>> reverse_merge;
    const std::string_view text(normalized);
    std::string merged;  // reused: no allocation per candidate pair

    const auto maybe_add = [&](std::int64_t left, std::int64_t right) {
      if (left == -1 || right == -1) return;
      const symbol& l = symbols[static_cast<std::size_t>(left)];
      const symbol& r = symbols[static_cast<std::size_t>(right)];
      if (l.freeze || r.freeze) return;
      // SentencePiece takes the bytes from the left symbol's start: contiguous, since only neighbours merge.
      merged.assign(text.data() + l.begin, l.length + r.length);
      const auto it = pieces_map_.find(merged);
      if (it == pieces_map_.end()) return;
      agenda.push({left, right, scores_[static_cast<std::size_t>(it->second)], merged.size()});
      if (types_[static_cast<std::size_t>(it->second)] == sentencepiece_piece_type::unused) {
        reverse_merge[merged] = {std::string(text.substr(l.begin, l.length)),
                                 std::string(text.substr(r.begin, r.length))};
      }
    };

    for (std::size_t pos = 0; pos < text.size();) {
      const std::string_view rest = text.substr(pos);
      const std::size_t user = user_defined_.longest_prefix(rest);
      const std::size_t length = user > 0 ? user : detail::sentencepiece_one_char_length(rest);
      const auto index = static_cast<std::int64_t>(symbols.size());
      symbols.push_back({index - 1, pos + length < text.size() ? index + 1 : -1, user > 0, pos, length});
      pos += length;
    }
    for (std::size_t i = 1; i < symbols.size(); ++i) {
      maybe_add(static_cast<std::int64_t>(i - 1), static_cast<std::int64_t>(i));
    }
    while (!agenda.empty()) {
      const pair top = agenda.top();
      agenda.pop();
      symbol& l = symbols[static_cast<std::size_t>(top.left)];
      symbol& r = symbols[static_cast<std::size_t>(top.right)];
      if (l.length == 0 || r.length == 0 || l.length + r.length != top.size) continue;  // stale
      l.length += r.length;
      l.next = r.next;
      if (r.next >= 0) symbols[static_cast<std::size_t>(r.next)].prev = top.left;
      r.length = 0;
      maybe_add(l.prev, top.left);
      maybe_add(top.left, l.next);
    }

    std::vector<segment> out;
    std::vector<std::string> stack;  // resegmentation of unused pieces, left part on top
    for (std::int64_t index = symbols.empty() ? -1 : 0; index != -1;
         index = symbols[static_cast<std::size_t>(index)].next) {
      const symbol& s = symbols[static_cast<std::size_t>(index)];
      stack.assign(1, std::string(text.substr(s.begin, s.length)));
      while (!stack.empty()) {
        const std::string w = std::move(stack.back());
        stack.pop_back();
        const std::int32_t found = lookup(w);
        const std::int32_t id = found >= 0 ? found : unk_id_;
        const auto split = reverse_merge.find(w);
        if (found < 0 || types_[static_cast<std::size_t>(id)] != sentencepiece_piece_type::unused ||
            split == reverse_merge.end()) {
          out.push_back({id, w.size()});
          continue;
        }
        stack.push_back(split->second.second);
        stack.push_back(split->second.first);
      }
    }
    return out;
  }

  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<sentencepiece_piece_type> types_;
  sentencepiece_model_options options_;
  std::unordered_map<std::string, std::int32_t> pieces_map_;    // normal, user-defined and unused pieces
  std::unordered_map<std::string, std::int32_t> reserved_map_;  // unknown, control and byte pieces
  std::vector<std::int32_t> byte_ids_;
  std::int32_t unk_id_ = -1;
  float min_score_ = 0.0f;
  float max_score_ = 0.0f;
  detail::byte_trie trie_;
  detail::byte_trie user_defined_;
  detail::sentencepiece_normalizer normalizer_;
};

}  // namespace headlens
