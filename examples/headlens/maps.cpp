// `headlens maps`: every head's attention over one text, from a real model, to look at or to feed other tools.
//
//   headlens maps [--model PATH [--tokenizer PATH]] (--text "..." | --ids "1 2 3") --out MAPS.npy
//                 [--format npy|bertviz] [--logits LOGITS.npy]
//
// npy: MAPS.npy holds float32 [layers, heads, T, T] (element [l, h, i, j]: the weight head h of layer l puts on
// token j from token i; rows sum to 1) and MAPS.tokens.json the T tokens (id, piece, and the bytes of the text each
// covers). bertviz: one JSON file with the object BertViz's head view and model view take as their `params`
// (`attention` = [{"name", "attn": [layers][heads][T][T], "left_text", "right_text"}], ...), tokens included.
// --ids runs pre-tokenized input (the tokens then cover no text), and --logits writes the model's logits, float32
// [T, vocab]: with both, a port can be checked against any other runtime on the same ids.
// The model is any that models/attention_model.hpp loads (a Hugging Face checkpoint, a GGUF file, or USE-lite), by
// default USE-lite as `make models` fetches it.

#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <headlens/io/npy.hpp>
#include <headlens/models/attention_model.hpp>
#include <headlens/text/word_tokenizer.hpp>

#include "command.hpp"
#include "model_loading.hpp"
#include "token_text.hpp"

namespace {

using headlens_cli::fail;

struct maps_args {
  std::string model, tokenizer, text, ids, out, format = "npy", logits;
  bool text_given = false;
};

/// The JSON description of the tokens: id, piece, bytes [begin, end) of the text and the text they cover.
nlohmann::json tokens_json(const headlens::attention_model& model, const std::string& text,
                           const std::vector<headlens::model_token>& tokens) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : tokens) {
    out.push_back({{"id", t.id},
                   {"piece", model.token_text(t.id)},
                   {"begin", t.begin},
                   {"end", t.end},
                   {"text", headlens_cli::valid_utf8(text.substr(t.begin, t.end - t.begin))}});
  }
  return out;
}

/// Replaces a trailing ".npy" by `suffix`, or appends it.
std::string sidecar_path(const std::string& out, const std::string& suffix) {
  const std::string ext = ".npy";
  if (out.size() > ext.size() && out.compare(out.size() - ext.size(), ext.size(), ext) == 0) {
    return out.substr(0, out.size() - ext.size()) + suffix;
  }
  return out + suffix;
}

void write_text_file(const std::string& path, const std::string& content) {
  std::ofstream file(path, std::ios::binary);
  if (!file) fail("cannot open --out ", path, " for writing");
  file << content;
  file.flush();
  if (!file) fail("cannot write ", path);
}

void run_maps(const maps_args& args) {
  if (args.format != "npy" && args.format != "bertviz") {
    fail("--format is '", args.format, "', expected npy or bertviz");
  }
  if (args.text_given == !args.ids.empty()) fail("give exactly one of --text and --ids");
  const std::unique_ptr<headlens::attention_model> model = headlens_cli::load_model(args.model, args.tokenizer);
  std::vector<headlens::model_token> tokens;
  if (args.text_given) {
    tokens = model->tokenize(args.text);
  } else {
    try {
      for (const std::int32_t id : headlens::parse_token_ids(args.ids, model->vocab_size())) tokens.push_back({id, 0, 0});
    } catch (const headlens::argument_error& e) {
      fail("--ids: ", headlens::detail::unprefixed(e));
    }
  }
  if (tokens.empty()) fail("--text has no tokens (it is empty); the model needs at least one");
  const std::size_t all_tokens = tokens.size();
  if (static_cast<headlens::Index>(tokens.size()) > model->max_tokens()) {
    tokens.resize(static_cast<std::size_t>(model->max_tokens()));
  }
  const headlens::tensor<float> maps = model->attention(headlens::token_ids(tokens));
  const headlens::Index layers = maps.shape[0], heads = maps.shape[1], T = maps.shape[2];
  if (!args.logits.empty()) headlens::write_npy(args.logits, model->logits(headlens::token_ids(tokens)));

  std::string where;
  if (args.format == "npy") {
    headlens::write_npy(args.out, maps);
    const std::string side = sidecar_path(args.out, ".tokens.json");
    nlohmann::json meta = {{"model", model->description()},
                           {"text", args.text},
                           {"shape", maps.shape},
                           {"layout", "[layer, head, query token, key token]; rows sum to 1"},
                           {"tokens", tokens_json(*model, args.text, tokens)}};
    write_text_file(side, meta.dump(2) + "\n");
    where = args.out + " (float32 [" + std::to_string(layers) + ", " + std::to_string(heads) + ", " +
            std::to_string(T) + ", " + std::to_string(T) + "]) and " + side;
  } else {
    // BertViz's params: attention as nested lists [layers][heads][T][T], tokens on both sides.
    std::vector<std::string> pieces;
    for (const auto& t : tokens) pieces.push_back(model->token_text(t.id));
    nlohmann::json attn = nlohmann::json::array();
    for (headlens::Index l = 0; l < layers; ++l) {
      nlohmann::json layer = nlohmann::json::array();
      for (headlens::Index h = 0; h < heads; ++h) {
        nlohmann::json head = nlohmann::json::array();
        for (headlens::Index i = 0; i < T; ++i) {
          const float* row = maps.data.data() + ((l * heads + h) * T + i) * T;
          head.push_back(std::vector<float>(row, row + T));
        }
        layer.push_back(std::move(head));
      }
      attn.push_back(std::move(layer));
    }
    nlohmann::json params = {
        {"attention", nlohmann::json::array({{{"name", nullptr},
                                              {"attn", std::move(attn)},
                                              {"left_text", pieces},
                                              {"right_text", pieces}}})},
        {"default_filter", "all"},
        {"root_div_id", "bertviz-headlens"},
        {"layer", nullptr},
        {"heads", nullptr},
        {"include_layers", [&] {
           std::vector<int> all;
           for (headlens::Index l = 0; l < layers; ++l) all.push_back(static_cast<int>(l));
           return all;
         }()},
        {"tokens", tokens_json(*model, args.text, tokens)}};
    write_text_file(args.out, params.dump() + "\n");
    where = args.out + " (BertViz params, " + std::to_string(layers) + " layers x " + std::to_string(heads) +
            " heads)";
  }
  std::cout << "maps: " << T << " tokens";
  if (all_tokens > tokens.size()) {
    std::cout << " (the first " << T << " of " << all_tokens << "; the model sees " << model->max_tokens() << ")";
  }
  std::cout << " -> " << where;
  if (!args.logits.empty()) std::cout << "; logits -> " << args.logits << " (float32 [" << T << ", " << model->vocab_size() << "])";
  std::cout << "\n";
}

void setup_maps(CLI::App& app) {
  auto args = std::make_shared<maps_args>();
  CLI::App* sub = app.add_subcommand(
      "maps", "Write every head's attention over one text (a Hugging Face or GGUF checkpoint, or Universal "
              "Sentence Encoder-lite): per layer and head, T x T maps and the tokens, as .npy or as BertViz JSON.");
  sub->add_option("--model", args->model, headlens_cli::model_option_help());
  sub->add_option("--tokenizer", args->tokenizer, headlens_cli::tokenizer_option_help());
  sub->add_option("--text", args->text, "the text (UTF-8); the model keeps as many tokens as it sees (USE-lite: 128)")
      ->each([args](const std::string&) { args->text_given = true; });
  sub->add_option("--ids", args->ids,
                  "pre-tokenized input instead of --text: token ids separated by spaces or commas (\"1 15043 3186\"), "
                  "run as they are (no beginning-of-sequence token is added)");
  sub->add_option("--logits", args->logits,
                  "also write the model's logits over the tokens to this .npy file, float32 [T, vocab] (decoders)");
  sub->add_option("--out", args->out,
                  "file to write: with --format npy, float32 [layers, heads, T, T] (element [l, h, i, j] = weight "
                  "from token i to token j), and the tokens beside it in OUT.tokens.json (OUT minus .npy); with "
                  "--format bertviz, one JSON file")
      ->required();
  sub->add_option("--format", args->format, "npy (default) or bertviz")
      ->check(CLI::IsMember({"npy", "bertviz"}));
  sub->footer("Errors print one line, `headlens maps: <message>`, and exit with status 1 (2 for a malformed "
              "command line).");
  sub->callback([args] { run_maps(*args); });
}

const headlens_cli::register_command maps_command{"maps", setup_maps};

}  // namespace
