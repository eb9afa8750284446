// Writes the tokenizer-only GGUF files of tests/support/gguf_tokenizer_vocab.hpp into a directory, for
// tools/gguf_tokenizer_fixtures.mjs to tokenize with llama.cpp:
//   g++ -std=c++17 -O1 -Iinclude -Itests tools/make_gguf_tokenizer_fixtures.cpp -o build/make_gguf_tok
//   build/make_gguf_tok build/gguf-tok build/models/tokenizers [tests/fuzz/corpus/gguf_tokenizer]
// The optional third argument receives the fuzz seeds: the fixture vocabulary, a tiny byte-level one, and one file
// per rejection (error-*).
#include <fstream>
#include <iostream>
#include <string>

#include "support/gguf_tokenizer_vocab.hpp"

static void write(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  std::cout << path << " " << bytes.size() << " bytes\n";
}

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: make_gguf_tokenizer_fixtures OUT_DIR TOKENIZERS_DIR [FUZZ_SEED_DIR]\n";
    return 2;
  }
  const std::string out = argv[1], tokenizers = argv[2];
  if (argc == 4) {
    using headlens::gguf_value;
    const std::string seeds = argv[3];
    write(seeds + "/spm_fixture.gguf", gguf_tokenizer_vocab::spm_fixture_bytes());
    auto tiny = [](const std::string& model, const std::string& pre) {
      headlens::gguf_writer w;
      gguf_tokenizer_vocab::add_architecture(w, 5);
      w.set("tokenizer.ggml.model", gguf_value::of_string(model));
      w.set("tokenizer.ggml.pre", gguf_value::of_string(pre));
      w.set("tokenizer.ggml.tokens", gguf_value::of_strings({"a", "b", "ab", "\xC4\xA0", "<s>"}));
      w.set("tokenizer.ggml.token_type", gguf_value::of_int32s({1, 1, 1, 1, 3}));
      w.set("tokenizer.ggml.merges", gguf_value::of_strings({"a b"}));
      w.set("tokenizer.ggml.bos_token_id", gguf_value::of_uint32(4));
      w.set("tokenizer.ggml.add_bos_token", gguf_value::of_bool(true));
      return w.bytes();
    };
    write(seeds + "/gpt2_tiny.gguf", tiny("gpt2", "qwen2"));
    write(seeds + "/error-model-bert.gguf", tiny("bert", "qwen2"));
    write(seeds + "/error-pre-unknown.gguf", tiny("gpt2", "falcon"));
    write(seeds + "/error-llama-no-unknown.gguf", tiny("llama", ""));
  }
  write(out + "/spm_fixture.gguf", gguf_tokenizer_vocab::spm_fixture_bytes());
  for (const char* name : {"llama2", "llama3_1", "qwen3"}) {
    write(out + "/" + name + ".gguf",
          gguf_tokenizer_vocab::real_bytes(name, tokenizers + "/" + name + "/tokenizer.json"));
  }
  for (const char* pre : {"gpt-2", "default"}) {
    write(out + "/llama3_1-" + pre + ".gguf",
          gguf_tokenizer_vocab::real_bytes("llama3_1", tokenizers + "/llama3_1/tokenizer.json", pre));
  }
}
