// libFuzzer harness for the tokenizer.json reader and encoder (text/hf_tokenizer.hpp). The first byte picks:
// - even: the rest is a tokenizer.json text. Reading must succeed or throw format_error; a tokenizer read must
//   encode a fixed text (with and without special tokens) or throw argument_error (a WordLevel or Unigram model
//   with no unknown token), and every span must lie inside the text, on character boundaries.
// - odd: the rest is text for a fixed small tokenizer (byte-level BPE with byte fallback, added tokens with every
//   option, a normalizer and pre-tokenizer sequence, a template). Valid UTF-8 must give in-range spans on
//   character boundaries and ids below vocab_size(); invalid UTF-8 must throw argument_error.
// Anything else (another exception, a crash, a sanitizer report, a broken invariant) is a finding.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     tests/fuzz/fuzz_hf_tokenizer.cpp -o fuzz_hf_tokenizer -lpcre2-8 -licuuc
//     && ./fuzz_hf_tokenizer -max_total_time=300 /tmp/hf-corpus tests/fuzz/corpus/hf_tokenizer
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
#include <headlens/text/hf_tokenizer.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace {

bool boundary(const std::string& text, std::size_t at) {
  return at == text.size() || (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0u) != 0x80u);
}

void check_tokens(const headlens::hf_tokenizer& t, const std::string& text, const std::vector<headlens::text_token>& tokens) {
  for (const auto& x : tokens) {
    require(x.begin <= x.end && x.end <= text.size(), "span inside the text");
    require(boundary(text, x.begin) && boundary(text, x.end), "span on character boundaries");
    require(x.id >= 0 && x.id < t.vocab_size(), "id below vocab_size");
    (void)t.token(x.id);
  }
}

const headlens::hf_tokenizer& small_tokenizer() {
  static const headlens::hf_tokenizer t = [] {
    std::string vocab = "{";
    // The 256 byte-level symbols, a few merges, byte-fallback tokens for two bytes.
    const auto& table = headlens::detail::hf::byte_to_unicode();
    for (int b = 0; b < 256; ++b) {
      std::string s;
      headlens::append_utf8(s, table[static_cast<std::size_t>(b)]);
      vocab += nlohmann::json(s).dump() + ":" + std::to_string(b) + ",";
    }
    vocab += R"("he":256,"the":257,"Ġthe":258,"Ã©":259,"ĠĠ":260,"<0x41>":261})";
    const std::string json = R"({"added_tokens":[
        {"id":262,"content":"<s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
        {"id":263,"content":"mask","single_word":true,"lstrip":true,"rstrip":true,"normalized":true,"special":false},
        {"id":264,"content":"ÉTÉ","single_word":false,"lstrip":false,"rstrip":true,"normalized":false,"special":false}],
      "normalizer":{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Replace","pattern":{"Regex":"\\s{3,}"},"content":"  "},
        {"type":"Lowercase"},{"type":"Prepend","prepend":"_"}]},
      "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},
        {"type":"Split","pattern":{"Regex":"(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
         "behavior":"Isolated","invert":false},
        {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]},
      "model":{"type":"BPE","dropout":null,"unk_token":null,"byte_fallback":true,"ignore_merges":true,"vocab":)" +
                             vocab + R"(,"merges":["h e","t he","Ġ the","Ã ©","Ġ Ġ"]},
      "post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
        {"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
         "pair":[],"special_tokens":{"<s>":{"id":"<s>","ids":[262],"tokens":["<s>"]}}}]}})";
    return headlens::hf_tokenizer::from_json_text(json, "<fuzz>");
  }();
  return t;
}

bool valid_utf8(const std::string& text) {
  try {
    headlens::decode_utf8(text);
    return true;
  } catch (const headlens::argument_error&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    std::optional<headlens::hf_tokenizer> t;
    try {
      t = headlens::hf_tokenizer::from_json_text(rest, "<fuzz>");
    } catch (const headlens::format_error&) {
      return 0;
    }
    const std::string text = "Hello, wörld! 12345 <s> [CLS] \xEF\xAC\x81  \t\n e\xCC\x81 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80";
    for (bool special : {true, false}) {
      try {
        check_tokens(*t, text, t->encode(text, special));
      } catch (const headlens::argument_error&) {
      }
    }
    return 0;
  }
  const auto& t = small_tokenizer();
  if (!valid_utf8(rest)) {
    bool threw = false;
    try {
      (void)t.encode(rest);
    } catch (const headlens::argument_error&) {
      threw = true;
    }
    require(threw, "invalid UTF-8 is an argument_error");
    return 0;
  }
  check_tokens(t, rest, t.encode(rest));
  check_tokens(t, rest, t.encode(rest, false));
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
