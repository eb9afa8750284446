# `headlens importance` and `headlens classify --causal-check --importance --card` on the tiny GPT-2 fixture over the
# bundled GUM sample: the JSON reports carry every head with the values the library computes (the library itself is
# tested against hooked forwards and PyTorch in test_ablation_target / test_head_importance / test_causal_check;
# this checks the command line's wiring), the card reads back with its provenance, and bad input fails with one
# named line.
#   cmake -DCLI=<headlens> -DDATA=<tests/data> -DWORK=<scratch dir> -P run_ablation.cmake
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/run_helpers.cmake)

set(gpt2 "${DATA}/models/gpt2")
set(gum "${DATA}/gum/gum_cc_by_sample.conllu")

# importance, JSON: 8 heads under each kind, ranks 1..8, progress on stderr.
run(0 out importance --model "${gpt2}" --conllu "${gum}" --max-units 6 --format json --out "${WORK}/importance.json")
expect_match("${out}" "headlens importance: GPT-2 \\(2 layers x 4 heads" "progress line")
file(READ "${WORK}/importance.json" json)
string(JSON kinds LENGTH "${json}" kinds)
if(NOT kinds EQUAL 2)
  message(FATAL_ERROR "importance: ${kinds} ablation kinds, expected zero and mean:\n${json}")
endif()
foreach(k 0 1)
  string(JSON heads LENGTH "${json}" kinds ${k} heads)
  if(NOT heads EQUAL 8)
    message(FATAL_ERROR "importance kind ${k}: ${heads} heads, expected 8")
  endif()
  set(ranks "")
  foreach(h RANGE 7)
    string(JSON rank GET "${json}" kinds ${k} heads ${h} rank)
    list(APPEND ranks ${rank})
  endforeach()
  list(SORT ranks COMPARE NATURAL)
  if(NOT ranks STREQUAL "1;2;3;4;5;6;7;8")
    message(FATAL_ERROR "importance kind ${k}: ranks ${ranks}, expected 1 to 8 once each")
  endif()
endforeach()
string(JSON sequences GET "${json}" sequences)
if(NOT sequences EQUAL 6)
  message(FATAL_ERROR "importance: ${sequences} sequences, expected the 6 of --max-units 6")
endif()

# The table and Markdown forms, zero ablation only.
run(0 out importance --model "${gpt2}" --conllu "${gum}" --max-units 4 --ablation zero --quiet)
expect_match("${out}" "zero ablation: ranking not stable: too few documents" "table header")
expect_match("${out}" "\nlayer +head +zero change" "table columns")
if(out MATCHES "mean ablation")
  message(FATAL_ERROR "--ablation zero printed a mean ablation:\n${out}")
endif()
run(0 out importance --model "${gpt2}" --conllu "${gum}" --max-units 4 --context window --window 12 --format md --quiet)
expect_match("${out}" "window \\(12 words" "window context named")

# classify with the causal check, importance and a card.
run(0 out classify --model "${gpt2}" --conllu "${gum}" --causal-check --causal-sets 20 --importance zero
    --ablation-max-units 5 --card "${WORK}/card.json" --card-name gpt2-fixture --format json --out "${WORK}/report.json")
file(READ "${WORK}/report.json" report)
string(JSON labels LENGTH "${report}" causal_check labels)
if(NOT labels EQUAL 4)
  message(FATAL_ERROR "classify --causal-check: ${labels} labels in the report's causal_check, expected 4:\n${report}")
endif()
file(READ "${WORK}/card.json" card)
string(JSON format GET "${card}" format)
string(JSON name GET "${card}" model name)
string(JSON heads LENGTH "${card}" heads)
string(JSON checks LENGTH "${card}" causal_checks)
string(JSON files LENGTH "${card}" provenance files)
string(JSON command GET "${card}" provenance command)
if(NOT format STREQUAL "headlens.head-card" OR NOT name STREQUAL "gpt2-fixture" OR NOT heads EQUAL 8 OR
   NOT checks EQUAL 4 OR files LESS 4)
  message(FATAL_ERROR "card: format ${format}, name ${name}, ${heads} heads, ${checks} causal checks, ${files} files; "
                      "expected headlens.head-card, gpt2-fixture, 8, 4, the model's files and the corpus:\n${card}")
endif()
expect_match("${command}" "classify .*--card" "card's command line")
string(JSON zero GET "${card}" heads 0 importance zero value)
if(zero STREQUAL "" OR zero MATCHES "null")
  message(FATAL_ERROR "card: head 0.0 has no zero-ablation importance:\n${card}")
endif()
# The corpus is hashed: sha256 of the GUM sample, as `sha256sum` computes it.
file(SHA256 "${gum}" gum_sha)
expect_match("${card}" "\"sha256\": \"${gum_sha}\"" "corpus hash in the card")

# Bad input: an unknown ablation, a window too small, an importance of a model that cannot ablate is not reachable
# here; a missing corpus file.
run(2 out importance --model "${gpt2}" --ablation half)
expect_match("${out}" "headlens importance: --ablation" "bad --ablation")
run(2 out importance --model "${gpt2}" --context window --window 1)
expect_match("${out}" "headlens importance: --window" "too small --window")
run(1 out importance --model "${gpt2}" --conllu "${WORK}/missing.conllu")
expect_match("${out}" "headlens importance: .*missing.conllu" "missing corpus")

# prune: a quarter of GPT-2's 8 heads, the curve from 0 to 2 heads, the smaller checkpoint written and loaded back.
run(0 out prune --model "${gpt2}" --conllu "${gum}" --max-units 4 --share 0.25 --format json --output "${WORK}/pruned"
    --out "${WORK}/prune.json")
file(READ "${WORK}/prune.json" plan)
string(JSON points LENGTH "${plan}" curve)
string(JSON stopped GET "${plan}" stopped_by)
if(NOT points EQUAL 3 OR NOT stopped STREQUAL "target_share")
  message(FATAL_ERROR "prune --share 0.25: ${points} curve points, stopped by ${stopped}; expected 3 (0, 1 and 2 "
                      "heads pruned), target_share:\n${plan}")
endif()
file(READ "${WORK}/pruned/config.json" config)
string(JSON per_layer GET "${config}" headlens_heads_per_layer)
string(JSON l0 GET "${config}" headlens_heads_per_layer 0)
string(JSON l1 GET "${config}" headlens_heads_per_layer 1)
math(EXPR kept "${l0} + ${l1}")
if(NOT kept EQUAL 6)
  message(FATAL_ERROR "pruned config.json: heads per layer ${per_layer}, expected 6 heads kept in all")
endif()
run(0 out importance --model "${WORK}/pruned" --conllu "${gum}" --max-units 2 --ablation zero --format json
    --out "${WORK}/pruned-importance.json")
file(READ "${WORK}/pruned-importance.json" json)
string(JSON heads LENGTH "${json}" kinds 0 heads)
if(NOT heads EQUAL 6)
  message(FATAL_ERROR "importance of the pruned checkpoint: ${heads} heads, expected the 6 kept")
endif()
run(1 out prune --model "${gpt2}" --conllu "${gum}")
expect_match("${out}" "headlens prune: give --share, --loss-budget or --absolute-budget" "no goal")
run(2 out prune --model "${gpt2}" --share 0.5 --loss-budget 0.01)
expect_match("${out}" "headlens prune: .*excludes" "two goals")

# sparsity: top-k 4 on the GPT-2 fixture; every head reported, shares in [0, 1], top-k of every key = dense.
run(0 out sparsity --model "${gpt2}" --conllu "${gum}" --max-units 4 --top-k 4 --format json --out "${WORK}/sparse.json")
file(READ "${WORK}/sparse.json" json)
string(JSON heads LENGTH "${json}" heads)
string(JSON dropped GET "${json}" dropped)
if(NOT heads EQUAL 8 OR dropped LESS_EQUAL 0 OR dropped GREATER 1)
  message(FATAL_ERROR "sparsity --top-k 4: ${heads} heads, ${dropped} dropped; expected 8 heads, a share in (0, 1]:\n${json}")
endif()
run(0 out sparsity --model "${gpt2}" --conllu "${gum}" --max-units 4 --top-k 1000 --format json --out "${WORK}/dense.json")
file(READ "${WORK}/dense.json" json)
string(JSON dropped GET "${json}" dropped)
string(JSON change GET "${json}" loss_change)
if(NOT dropped EQUAL 0 OR NOT change EQUAL 0)
  message(FATAL_ERROR "sparsity --top-k 1000 (every key kept): ${dropped} dropped, loss change ${change}; expected 0, 0")
endif()
run(1 out sparsity --model "${gpt2}")
expect_match("${out}" "headlens sparsity: give --top-k K or --threshold TAU" "no mode")
run(2 out sparsity --model "${gpt2}" --threshold 2)
expect_match("${out}" "headlens sparsity: --threshold" "threshold out of range")
