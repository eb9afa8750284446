// `headlens tokenize`: what a tokenizer makes of a text: ids, the vocabulary's spelling of each token and the bytes
// of the text it covers. The way to check a tokenizer against another runtime before trusting a model's maps.
//
//   headlens tokenize --tokenizer PATH (--text "..." | --file FILE) [--format table|json] [--no-special-tokens]
//
// PATH is anything text/pretrained_tokenizer.hpp reads: a model directory, a tokenizer.json, a tokenizer.model or
// a vocab.json. table: one line per token (index, id, begin, end, token, text), then a count. json: {"tokenizer",
// "source", "text", "tokens": [{"id", "token", "begin", "end", "text"}]}; begin and end are byte offsets into the
// UTF-8 text, and a token the tokenizer adds itself (a beginning-of-sequence token) covers no bytes.

#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <headlens/text/pretrained_tokenizer.hpp>

#include "command.hpp"
#include "token_text.hpp"

namespace {

using headlens_cli::fail;

struct tokenize_args {
  std::string tokenizer, text, file, format = "table";
  bool text_given = false;
  bool no_special_tokens = false;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read --file ", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

/// A token's text for a one-line table: valid UTF-8 with newlines, tabs and carriage returns spelt as escapes.
std::string shown(const std::string& text) {
  std::string out;
  for (char c : headlens_cli::valid_utf8(text)) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out;
}

void run_tokenize(const tokenize_args& args) {
  if (args.text_given == !args.file.empty()) fail("give exactly one of --text and --file");
  const std::string text = args.text_given ? args.text : read_text_file(args.file);
  const headlens::pretrained_tokenizer tok = headlens::load_tokenizer(args.tokenizer, "--tokenizer");
  const std::vector<headlens::text_token> tokens = tok.encode(text, !args.no_special_tokens);
  if (args.format == "json") {
    nlohmann::json list = nlohmann::json::array();
    for (const headlens::text_token& t : tokens) {
      list.push_back({{"id", t.id},
                      {"token", headlens_cli::valid_utf8(tok.token(t.id))},
                      {"begin", t.begin},
                      {"end", t.end},
                      {"text", headlens_cli::valid_utf8(text.substr(t.begin, t.end - t.begin))}});
    }
    const nlohmann::json out = {{"tokenizer", headlens::to_string(tok.kind())},
                                {"source", tok.source()},
                                {"text", headlens_cli::valid_utf8(text)},
                                {"tokens", std::move(list)}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << std::left << std::setw(6) << "#" << std::setw(9) << "id" << std::setw(8) << "begin" << std::setw(8)
            << "end" << "token -> text\n";
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const headlens::text_token& t = tokens[i];
    std::cout << std::setw(6) << i << std::setw(9) << t.id << std::setw(8) << t.begin << std::setw(8) << t.end
              << shown(tok.token(t.id)) << " -> \"" << shown(text.substr(t.begin, t.end - t.begin)) << "\"\n";
  }
  std::cout << tokens.size() << (tokens.size() == 1 ? " token" : " tokens") << " (" << tok.description() << ", "
            << tok.source() << ")\n";
}

void setup_tokenize(CLI::App& app) {
  auto args = std::make_shared<tokenize_args>();
  CLI::App* sub = app.add_subcommand(
      "tokenize", "Show how a tokenizer splits a text: every token's id, its spelling in the vocabulary and the bytes "
                  "of the text it covers.");
  sub->add_option("--tokenizer", args->tokenizer,
                  "a model directory, or a tokenizer.json, tokenizer.model, or vocab.json file (vocab.json with a "
                  "merges.txt beside it is GPT-2's byte-level BPE, alone a word vocabulary)")
      ->required();
  sub->add_option("--text", args->text, "the text (UTF-8)")->each([args](const std::string&) {
    args->text_given = true;
  });
  sub->add_option("--file", args->file, "read the text from this file instead (UTF-8, as it is)");
  sub->add_option("--format", args->format, "table (default) or json")->check(CLI::IsMember({"table", "json"}));
  sub->add_flag("--no-special-tokens", args->no_special_tokens,
                "leave out the tokens the tokenizer adds by itself (a beginning-of-sequence token, [CLS] ... [SEP])");
  sub->footer("Errors print one line, `headlens tokenize: <message>`, and exit with status 1 (2 for a malformed "
              "command line).");
  sub->callback([args] { run_tokenize(*args); });
}

const headlens_cli::register_command tokenize_command{"tokenize", setup_tokenize};

}  // namespace
