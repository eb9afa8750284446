// The program the find_package consumer builds with headlens::tokenizers: tokenizer.json support compiles, links
// against PCRE2 and ICU through the installed package, and encodes (a word-level tokenizer split by a regex).
#include <headlens/text/hf_tokenizer.hpp>

int main() {
  const headlens::hf_tokenizer tok = headlens::hf_tokenizer::from_json_text(R"({
    "version": "1.0", "added_tokens": [], "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Isolated", "invert": false},
    "post_processor": null, "decoder": null,
    "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "caf\u00e9": 1, " ": 2}, "unk_token": "[UNK]"}})");
  const auto tokens = tok.encode("cafe\xCC\x81 x");  // NFC makes "café" of "cafe" + U+0301
  return tokens.size() == 3 && tokens[0].id == 1 && tokens[1].id == 2 && tokens[1].begin == 6 && tokens[2].id == 0
             ? 0
             : 1;
}
