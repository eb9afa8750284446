// libFuzzer harness for the JSON head-report reader (analysis/report_json.hpp: `report_from_json`, with the verdicts
// and the optional causal check, `causal_check_from_json`): any byte string that parses as JSON must either give a
// report, or throw headlens::argument_error (a field at fault). A report read back must write in every format (table,
// Markdown, CSV, the causal CSV, JSON, HTML) and read back from its own JSON with the same causal verdicts. Any other
// exception, a crash, a sanitizer report or a broken invariant is a finding. Bytes that are not JSON are nlohmann's
// to reject and are skipped.
//
// libFuzzer (clang): clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -DHEADLENS_LIBFUZZER -Iinclude
//     -isystem /usr/include/eigen3 tests/fuzz/fuzz_report_json.cpp -o fuzz_report_json &&
//     ./fuzz_report_json -max_total_time=300 /tmp/report-corpus tests/fuzz/corpus/report_json
// Without HEADLENS_LIBFUZZER (any compiler, as the CMake build does) a main() replays files or directories.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#if __has_include(<nlohmann/json.hpp>)
#include <headlens/analysis/report_html.hpp>
#include <headlens/analysis/report_json.hpp>

#include "fuzz_invariant.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const nlohmann::json in =
      nlohmann::json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size, nullptr,
                            /*allow_exceptions=*/false);
  if (in.is_discarded()) return 0;
  headlens::head_report report;
  try {
    report = headlens::report_from_json(in);
  } catch (const headlens::argument_error&) {
    return 0;
  }
  std::ostringstream out;
  headlens::write_table(out, report);
  headlens::write_markdown(out, report);
  headlens::write_csv(out, report);
  headlens::write_json(out, report);
  headlens::write_html(out, report);
  if (report.causal) headlens::write_causal_csv(out, *report.causal);
  const headlens::head_report back = headlens::report_from_json(headlens::report_to_json(report));
  require(back.heads.size() == report.heads.size(), "the heads read back");
  require(back.causal.has_value() == report.causal.has_value(), "the causal check read back");
  if (report.causal) {
    for (std::size_t c = 0; c < headlens::head_category_count; ++c) {
      require(back.causal->labels[c].verdict == report.causal->labels[c].verdict, "the causal verdicts read back");
      require(back.causal->labels[c].heads == report.causal->labels[c].heads, "the causal heads read back");
    }
  }
  return 0;
}
#else
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }  // no nlohmann_json: nothing
#endif

#include "replay_main.hpp"  // the replay main when built without libFuzzer
