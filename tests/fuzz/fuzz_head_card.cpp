// libFuzzer harness for the head-card reader (analysis/head_card_json.hpp): arbitrary bytes as a card's JSON text.
// Accepted outcomes: a `headlens::format_error` (malformed JSON, or JSON that is not a valid card), or a card that
// passes `validate_head_card`, whose every head lies inside its model, and that writes back to a text which reads
// back to the same text (the exact round trip), and renders as Markdown and HTML without throwing. Anything else
// (another exception, a crash, a sanitizer report, a broken invariant) is a finding.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     -isystem /usr/include/eigen3 tests/fuzz/fuzz_head_card.cpp -o fuzz_head_card &&
//     ./fuzz_head_card -dict=tests/fuzz/head_card.dict -max_total_time=300 /tmp/head-card-corpus
//     tests/fuzz/corpus/head_card
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
#include <headlens/analysis/head_card.hpp>
#include <headlens/analysis/head_card_html.hpp>
#include <headlens/analysis/head_card_json.hpp>
#include <headlens/analysis/head_card_markdown.hpp>

#include "fuzz_invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  headlens::head_card card;
  try {
    card = headlens::parse_head_card(text, "fuzz.json");
  } catch (const headlens::format_error& e) {
    require(e.file() == "fuzz.json", "the error names the source");
    require(e.byte_offset() <= size + 1, "a byte offset inside the input");
    return 0;
  }
  headlens::validate_head_card(card);  // throws (a finding) if the reader let an invalid card through
  for (const headlens::card_head& h : card.heads) {
    require(h.verdict.layer >= 0 && h.verdict.layer < card.model.layers(), "heads inside the model's layers");
    require(h.verdict.head >= 0 && h.verdict.head < card.model.heads_per_layer[std::size_t(h.verdict.layer)],
            "heads inside their layer");
  }
  const std::string written = headlens::head_card_json_text(card);
  const std::string again = headlens::head_card_json_text(headlens::parse_head_card(written, "written.json"));
  require(written == again, "a written card reads back and writes the same text");
  std::ostringstream md, html;
  headlens::write_head_card_markdown(md, card);
  headlens::write_head_card_html(html, card);
  require(html.str().find("<script") == std::string::npos, "no script in the HTML fragment");
  return 0;
}

#include "replay_main.hpp"  // the replay main when built without libFuzzer
