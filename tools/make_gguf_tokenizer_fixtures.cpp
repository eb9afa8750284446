// Writes the tokenizer-only GGUF files of tests/support/gguf_tokenizer_vocab.hpp into a directory, for
// tools/gguf_tokenizer_fixtures.mjs to tokenize with llama.cpp:
//   g++ -std=c++17 -O1 -Iinclude -Itests tools/make_gguf_tokenizer_fixtures.cpp -o build/make_gguf_tok
//   build/make_gguf_tok build/gguf-tok build/models/tokenizers
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
  if (argc != 3) {
    std::cerr << "usage: make_gguf_tokenizer_fixtures OUT_DIR TOKENIZERS_DIR\n";
    return 2;
  }
  const std::string out = argv[1], tokenizers = argv[2];
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
