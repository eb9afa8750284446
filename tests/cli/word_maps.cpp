// word_maps MODEL_DIR DOC.conllu PREFIX [TOKENIZER]
//
// Writes, for document k of DOC.conllu, the word-level attention maps [layers, heads, W, W] of the model run over
// the whole document as PREFIX_k.npy (float32): the model's materialised token maps
// (`attention_model::attention`) turned into word maps by `token_to_word_maps`. That is the input `headlens
// classify-maps` takes, computed apart from `headlens classify`'s streaming path, so tests can check the two agree.

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <headlens/analysis/alignment.hpp>
#include <headlens/analysis/conllu.hpp>
#include <headlens/io/npy.hpp>
#include <headlens/models/attention_model.hpp>

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: word_maps MODEL_DIR DOC.conllu PREFIX [TOKENIZER]\n");
    return 2;
  }
  try {
    headlens::attention_model_options options;
    if (argc == 5) options.tokenizer = argv[4];
    const auto model = headlens::load_attention_model(argv[1], options);
    const std::vector<headlens::document> docs = headlens::read_conllu(argv[2]);
    for (std::size_t k = 0; k < docs.size(); ++k) {
      const headlens::document_text surface = headlens::document_surface_text(docs[k]);
      const std::vector<headlens::model_token> tokens = model->tokenize(surface.text);
      const headlens::token_alignment alignment = headlens::align_tokens(tokens, surface.words);
      const headlens::tensor<float> words =
          headlens::token_to_word_maps(model->attention(headlens::token_ids(tokens)), alignment);
      headlens::write_npy(std::string(argv[3]) + "_" + std::to_string(k) + ".npy", words);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "word_maps: %s\n", e.what());
    return 1;
  }
  return 0;
}
