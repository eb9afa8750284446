#pragma once
// The text a `headlens` subcommand runs a model over, given the same way to each: --conllu FILE (annotated
// CoNLL-U; default the bundled GUM sample) or --text FILE (plain UTF-8, words and sentences by the library's one
// splitter, no annotations), and --strict for CoNLL-U links that leave their document.

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <headlens/analysis/conllu.hpp>
#include <headlens/analysis/document.hpp>
#include <headlens/analysis/text_document.hpp>

#include "command.hpp"
#include "model_loading.hpp"

namespace headlens_cli {

/// The whole of file `path`; `option` names it in messages. Throws `usage_error`.
inline std::string read_file(const std::string& path, const char* option) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", option, " ", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail("cannot read ", option, " ", path);
  return buffer.str();
}

/// The documents read, and where from.
struct corpus {
  std::vector<headlens::document> documents;
  std::string source;      ///< the file read
  bool annotated = false;  ///< CoNLL-U (gold annotations), not plain text
};

/// --conllu / --text / --strict.
struct corpus_input {
  std::string conllu, text;
  bool strict = false;

  /// Adds the options to `sub`; `with_strict` adds --strict (for commands that use discourse and coreference links).
  void add_options(CLI::App* sub, bool with_strict = true) {
    auto* c = sub->add_option("--conllu", conllu,
                              "a CoNLL-U file: its words and sentences, and where the command uses them its "
                              "dependencies and GUM-style coreference and discourse. Default: the bundled CC-BY GUM "
                              "sample, tests/data/gum/gum_cc_by_sample.conllu");
    auto* t = sub->add_option("--text", text,
                              "a plain UTF-8 text file instead (words and sentences by the library's one splitter, "
                              "analysis/text_document.hpp; no annotations)");
    c->excludes(t);
    if (with_strict) {
      sub->add_flag("--strict", strict,
                    "reject a --conllu whose discourse or coreference links leave their document (by default an "
                    "excerpt's dangling links are dropped and counted on the report's first line)");
    }
  }

  /// Reads the documents. Throws `usage_error` for both options at once or a corpus without words, and the
  /// readers' errors.
  corpus load() const {
    if (!conllu.empty() && !text.empty()) fail("give --conllu or --text, not both");
    corpus out;
    if (!text.empty()) {
      out.source = text;
      out.documents.push_back(headlens::document_from_text(read_file(text, "--text"), text));
    } else {
      out.source = conllu.empty() ? default_gum_sample() : conllu;
      headlens::conllu_options reading;
      reading.strict = strict;
      out.documents = headlens::read_conllu(out.source, reading);
      out.annotated = true;
    }
    bool any_words = false;
    for (const headlens::document& d : out.documents) any_words = any_words || !d.words.empty();
    if (!any_words) fail("no words in ", out.source);
    return out;
  }
};

}  // namespace headlens_cli
