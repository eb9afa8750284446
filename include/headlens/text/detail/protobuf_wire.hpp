#pragma once
/// \file
/// A reader for the protobuf wire format (https://protobuf.dev/programming-guides/encoding/), enough to decode a
/// message whose schema the caller knows: tags, varints, fixed32/64 and length-delimited fields, unknown fields
/// (groups included) skipped. Internal: sentencepiece_model.hpp reads `tokenizer.model` with it so that headlens
/// needs no libprotobuf. Every malformed input is a `format_error` with the file and the byte offset.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "headlens/error.hpp"

namespace headlens {
namespace detail {

/// Protobuf wire types.
enum class wire_type : std::uint32_t {
  varint = 0,
  fixed64 = 1,
  length_delimited = 2,
  start_group = 3,
  end_group = 4,
  fixed32 = 5
};

/// The name of a wire type, for messages.
inline const char* wire_type_name(std::uint32_t type) noexcept {
  switch (type) {
    case 0:
      return "varint";
    case 1:
      return "fixed64";
    case 2:
      return "length-delimited";
    case 3:
      return "start-group";
    case 4:
      return "end-group";
    case 5:
      return "fixed32";
    default:
      return "invalid";
  }
}

/// Reads the fields of one message in `[begin, end)` of a buffer. Offsets are absolute in the buffer, so that the
/// reader of an embedded message (`sub_message`) reports offsets in the file.
class protobuf_reader {
 public:
  /// One field's key: its number, wire type and the offset of its tag.
  struct field {
    std::uint32_t number = 0;
    std::uint32_t type = 0;
    std::size_t offset = 0;
  };

  /// Reads `bytes[begin, end)` as the message `message` (named in errors, e.g. "ModelProto") of file `file`.
  protobuf_reader(std::string_view bytes, std::size_t begin, std::size_t end, const std::string& file,
                  std::string message)
      : bytes_(bytes), pos_(begin), end_(end), file_(file), message_(std::move(message)) {}

  /// True when every field has been read.
  bool done() const noexcept { return pos_ >= end_; }
  /// The offset of the next byte to read.
  std::size_t offset() const noexcept { return pos_; }
  /// The message name given at construction.
  const std::string& message() const noexcept { return message_; }

  /// Reads the next tag. Field number 0, a number above 2^29 - 1 and wire types 6 and 7 are errors.
  field next_field() {
    field f;
    f.offset = pos_;
    const std::uint64_t key = varint("a field tag");
    f.number = static_cast<std::uint32_t>(key >> 3);
    f.type = static_cast<std::uint32_t>(key & 7);
    if ((key >> 3) == 0 || (key >> 3) > 0x1FFFFFFFu) {
      fail_at(f.offset, "field number " + std::to_string(key >> 3) + " is invalid, expected 1 to 536870911");
    }
    if (f.type > 5) {
      fail_at(f.offset, "field " + std::to_string(f.number) + " has wire type " + std::to_string(f.type) +
                            ", which does not exist (expected 0 to 5)");
    }
    return f;
  }

  /// Throws unless `f` has wire type `expected`: headlens rejects a known field of the wrong type rather than
  /// treating it as unknown, since a tokenizer written so is not one SentencePiece wrote.
  void expect(const field& f, wire_type expected, const char* name) const {
    if (f.type != static_cast<std::uint32_t>(expected)) {
      fail_at(f.offset, std::string("field ") + std::to_string(f.number) + " (" + name + ") has wire type " +
                            std::to_string(f.type) + " (" + wire_type_name(f.type) + "), expected " +
                            std::to_string(static_cast<std::uint32_t>(expected)) + " (" +
                            wire_type_name(static_cast<std::uint32_t>(expected)) + ")");
    }
  }

  /// Reads a base-128 varint of at most 10 bytes; `what` names it in errors.
  std::uint64_t varint(const char* what) {
    const std::size_t start = pos_;
    std::uint64_t value = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= end_) fail_at(start, std::string("truncated varint (") + what + ")");
      const auto byte = static_cast<unsigned char>(bytes_[pos_++]);
      if (shift == 63 && byte > 1) fail_at(start, std::string("varint (") + what + ") overflows 64 bits");
      value |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    fail_at(start, std::string("varint (") + what + ") is longer than 10 bytes");
  }

  /// A varint field read as a bool (any non-zero value is true, as protobuf decodes it).
  bool boolean(const field& f, const char* name) {
    expect(f, wire_type::varint, name);
    return varint(name) != 0;
  }

  /// A varint field read as an int32 (protobuf keeps the low 32 bits of the 64-bit varint).
  std::int32_t int32(const field& f, const char* name) {
    expect(f, wire_type::varint, name);
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(varint(name)));
  }

  /// A fixed32 field read as a float.
  float float32(const field& f, const char* name) {
    expect(f, wire_type::fixed32, name);
    if (end_ - pos_ < 4) fail_at(pos_, std::string("truncated fixed32 (") + name + ")");
    std::uint32_t bits = 0;
    for (std::size_t i = 0; i < 4; ++i)
      bits |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    pos_ += 4;
    float value = 0;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }

  /// A length-delimited field: returns `[begin, end)` of its payload and moves past it.
  std::pair<std::size_t, std::size_t> length_delimited(const field& f, const char* name) {
    expect(f, wire_type::length_delimited, name);
    return payload(name);
  }

  /// The payload of a length-delimited field as bytes.
  std::string_view bytes(const field& f, const char* name) {
    const auto range = length_delimited(f, name);
    return bytes_.substr(range.first, range.second - range.first);
  }

  /// A reader for an embedded message field, named `message` in errors.
  protobuf_reader sub_message(const field& f, const char* name, std::string message) {
    const auto range = length_delimited(f, name);
    return protobuf_reader(bytes_, range.first, range.second, file_, std::move(message));
  }

  /// Skips a field of any wire type, as protobuf does for a field number it does not know.
  void skip(const field& f, int depth = 0) {
    switch (f.type) {
      case 0:
        varint("an unknown field");
        return;
      case 1:
        advance(8, "an unknown fixed64 field");
        return;
      case 2:
        payload("an unknown field");
        return;
      case 5:
        advance(4, "an unknown fixed32 field");
        return;
      case 3: {
        if (depth >= 64) fail_at(f.offset, "groups nested more than 64 deep");
        for (;;) {
          if (done()) fail_at(f.offset, "group of field " + std::to_string(f.number) + " is not closed");
          const field inner = next_field();
          if (inner.type == 4) {
            if (inner.number != f.number) {
              fail_at(inner.offset, "end-group of field " + std::to_string(inner.number) +
                                        " closes the group of field " + std::to_string(f.number));
            }
            return;
          }
          skip(inner, depth + 1);
        }
      }
      default:  // 4: an end-group with no group open
        fail_at(f.offset, "end-group of field " + std::to_string(f.number) + " without a start-group");
    }
  }

  /// Throws a `format_error` at byte `offset` naming the message being read.
  [[noreturn]] void fail_at(std::size_t offset, const std::string& what) const {
    throw format_error::at_byte(file_, offset, message_ + ": " + what);
  }

 private:
  std::pair<std::size_t, std::size_t> payload(const char* name) {
    const std::size_t start = pos_;
    const std::uint64_t length = varint(name);
    if (length > end_ - pos_) {
      fail_at(start, std::string("length ") + std::to_string(length) + " of " + name + " runs past the end of " +
                         (message_.empty() ? "the message" : message_) + " (" + std::to_string(end_ - pos_) +
                         " bytes left)");
    }
    const std::size_t begin = pos_;
    pos_ += static_cast<std::size_t>(length);
    return {begin, pos_};
  }

  void advance(std::size_t n, const char* what) {
    if (end_ - pos_ < n) fail_at(pos_, std::string("truncated ") + what);
    pos_ += n;
  }

  std::string_view bytes_;
  std::size_t pos_;
  std::size_t end_;
  const std::string& file_;
  std::string message_;
};

}  // namespace detail
}  // namespace headlens
