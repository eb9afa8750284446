// libFuzzer harness for the GPT-2 byte-level BPE (text/bpe.hpp), its hand-written pre-tokeniser, its vocab.json and
// merges.txt readers, and the word tokenizer's splitter (text/word_tokenizer.hpp). The first byte picks:
// - even: the rest is text. Valid UTF-8 must give pre-tokeniser pieces that are non-empty and tile the text, each
//   of which splits into itself alone again; BPE tokens (a small fixed vocabulary) whose spans tile the text and
//   whose decoding is the text; words inside the text, in order. Invalid UTF-8 must throw argument_error.
// - odd: the rest is "vocab.json text" NUL "merges.txt text"; reading must succeed or throw format_error, building
//   must succeed or throw argument_error, and a built tokenizer must round-trip a fixed text.
// Anything else (another exception, a crash, a sanitizer report, a broken invariant) is a finding.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     -isystem /usr/include/eigen3 tests/fuzz/fuzz_bpe.cpp -o fuzz_bpe && ./fuzz_bpe -max_total_time=300
//     /tmp/bpe-corpus tests/fuzz/corpus/bpe
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
#include <headlens/text/bpe.hpp>
#include <headlens/text/word_tokenizer.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace {

std::string byte_symbol(int b) {
  std::string s;
  headlens::append_utf8(s, headlens::gpt2_byte_to_unicode()[std::size_t(b)]);
  return s;
}

/// The 256 byte symbols and a few merges, including one that merges a multi-byte character's bytes.
const headlens::byte_level_bpe& small_bpe() {
  static const headlens::byte_level_bpe tokenizer = [] {
    std::vector<std::pair<std::string, std::int32_t>> vocab;
    for (int b = 0; b < 256; ++b) vocab.emplace_back(byte_symbol(b), b);
    const std::string space = byte_symbol(' ');
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"h", "e"}, {"t", "he"}, {space, "the"}, {byte_symbol(0xC3), byte_symbol(0xA9)}, {"'", "s"}, {space, space}};
    for (const auto& m : merges) vocab.emplace_back(m.first + m.second, std::int32_t(vocab.size()));
    vocab.emplace_back("<|endoftext|>", std::int32_t(vocab.size()));
    return headlens::byte_level_bpe(vocab, merges);
  }();
  return tokenizer;
}

bool valid_utf8(const std::string& text) {
  try {
    headlens::decode_utf8(text);
    return true;
  } catch (const headlens::argument_error&) {
    return false;
  }
}

void fuzz_text(const std::string& text) {
  if (!valid_utf8(text)) {
    bool threw = false;
    try {
      headlens::gpt2_pretokenize(text);
    } catch (const headlens::argument_error&) {
      threw = true;
    }
    require(threw, "invalid UTF-8 is rejected by the pre-tokeniser");
    threw = false;
    try {
      small_bpe().encode(text);
    } catch (const headlens::argument_error&) {
      threw = true;
    }
    require(threw, "invalid UTF-8 is rejected by encode");
    return;
  }
  std::size_t at = 0;
  for (const auto& piece : headlens::gpt2_pretokenize(text)) {
    require(piece.begin == at && piece.end > piece.begin, "pieces are non-empty and tile the text");
    const std::string alone = text.substr(piece.begin, piece.end - piece.begin);
    const auto again = headlens::gpt2_pretokenize(alone);
    require(again.size() == 1 && again[0].end == alone.size(), "a piece on its own is one piece");
    at = piece.end;
  }
  require(at == text.size(), "pieces cover the text");

  const auto& bpe = small_bpe();
  std::vector<std::int32_t> ids;
  at = 0;
  for (const auto& t : bpe.encode(text)) {
    require(t.begin == at && t.end > t.begin, "tokens are non-empty and tile the text");
    require(t.id >= 0 && std::size_t(t.id) < bpe.size(), "ids in range");
    ids.push_back(t.id);
    at = t.end;
  }
  require(at == text.size(), "tokens cover the text");
  require(bpe.decode(ids) == text, "decode(encode(text)) == text");

  std::size_t last_end = 0;
  for (const auto& w : headlens::split_words(text)) {
    require(w.begin >= last_end && w.end > w.begin && w.end <= text.size(), "words are ordered inside the text");
    last_end = w.end;
  }
}

void fuzz_files(const std::string& input) {
  const std::size_t nul = input.find('\0');
  const std::string vocab_text = input.substr(0, nul);
  const std::string merges_text = nul == std::string::npos ? std::string() : input.substr(nul + 1);
  std::vector<std::pair<std::string, std::int32_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  try {
    vocab = headlens::byte_level_bpe::parse_vocab_json(vocab_text, "fuzz-vocab.json");
    merges = headlens::byte_level_bpe::parse_merges(merges_text, "fuzz-merges.txt");
  } catch (const headlens::format_error& e) {
    require(e.byte_offset() <= input.size() && e.line() <= input.size() + 1, "error positions inside the input");
    return;
  }
  try {
    const headlens::byte_level_bpe tokenizer(vocab, merges);
    const std::string text = "the 's caf\xC3\xA9  \n\n x2 \xF0\x9F\x99\x82";
    require(tokenizer.decode(tokenizer.encode_ids(text)) == text, "a built tokenizer round-trips");
  } catch (const headlens::argument_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    fuzz_text(rest);
  } else {
    fuzz_files(rest);
  }
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
