# `headlens maps` and `headlens classify` on the tiny GPT-2 and Llama checkpoints of tests/data/models (random
# weights, PyTorch goldens): the maps of a text must equal the golden attention of its ids, classify must run end to
# end (every window narrowed to the GPT-2's 48 positions), and bad paths fail with one named line.
#   cmake -DCLI=<headlens> -DCOMPARE=<npy_compare> -DDATA=<tests/data/models> -DWORK=<scratch dir>
#         -DSAMPLE=<conllu> -P run_checkpoints.cmake
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/run_helpers.cmake)

set(gpt2 "${DATA}/gpt2")
set(llama "${DATA}/llama")

# maps on GPT-2: the first tokenizer case's text tokenizes to seq_0_ids (27 tokens), so the maps are PyTorch's
# seq_0_attention, float32 [2, 4, 27, 27].
run(0 out maps --model "${gpt2}" --text "The quick brown fox jumps over the lazy dog." --out "${WORK}/gpt2.npy")
expect_match("${out}" "27 tokens" "maps summary")
execute_process(COMMAND "${COMPARE}" "${WORK}/gpt2.npy" "${gpt2}/seq_0_attention.npy" 1e-5 RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "GPT-2 maps differ from PyTorch's: ${err}")
endif()
file(READ "${WORK}/gpt2.tokens.json" tokens)
expect_match("${tokens}" "\"model\": \"GPT-2 \\(2 layers x 4 heads, byte-level BPE\\)\"" "gpt2.tokens.json model")
expect_match("${tokens}" "\"piece\": \"Ġfox\"" "gpt2.tokens.json pieces")

# maps --ids: Llama's seq_0 ids as they are (no BOS added), with --logits: PyTorch's attention and logits. Bad ids are
# named.
run(0 out maps --model "${llama}" --tokenizer "${DATA}/words/vocab.json" --ids "279 206 249 195 182 64 19 161 100 20 51"
    --out "${WORK}/llama_ids.npy" --logits "${WORK}/llama_logits.npy")
expect_match("${out}" "11 tokens -> .*logits -> .*llama_logits.npy \\(float32 \\[11, 300\\]\\)" "maps --ids summary")
foreach(pair "llama_ids.npy;seq_0_attention.npy" "llama_logits.npy;seq_0_logits.npy")
  list(GET pair 0 got)
  list(GET pair 1 want)
  execute_process(COMMAND "${COMPARE}" "${WORK}/${got}" "${llama}/${want}" 1e-4 RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "Llama maps --ids: ${got} differs from PyTorch's ${want}: ${err}")
  endif()
endforeach()
run(1 out maps --model "${llama}" --tokenizer "${DATA}/words/vocab.json" --ids "1 2 300" --out "${WORK}/x.npy")
expect_match("${out}" "^headlens maps: --ids: token id 2 is 300, expected 0 <= id < vocab_size = 300" "maps bad --ids")
run(1 out maps --model "${llama}" --tokenizer "${DATA}/words/vocab.json" --ids "1" --text "x" --out "${WORK}/x.npy")
expect_match("${out}" "^headlens maps: give exactly one of --text and --ids" "maps --ids and --text")

# A text longer than the 48 positions keeps its first 48 tokens and says so.
run(0 out maps --model "${gpt2}" --format bertviz --out "${WORK}/long.json"
    --text "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog.")
expect_match("${out}" "48 tokens \\(the first 48 of 5[0-9]; the model sees 48\\)" "maps of a long text")
file(READ "${WORK}/long.json" bertviz)
expect_match("${bertviz}" "\"left_text\":\\[\"The\",\"Ġ\",\"q\"" "bertviz tokens")

# maps on Llama with a word vocabulary given apart: <s> (bos_token_id 1, no bytes) and 7 words.
run(0 out maps --model "${llama}" --tokenizer "${DATA}/words/vocab.json" --text "the cat sat on the mat."
    --out "${WORK}/llama.npy")
file(READ "${WORK}/llama.npy" header OFFSET 10 LIMIT 118)
expect_match("${header}" "'shape': \\(2, 4, 8, 8\\)" "llama.npy header")
file(READ "${WORK}/llama.tokens.json" tokens)
expect_match("${tokens}" "\"begin\": 0,[ \n]*\"end\": 0,[ \n]*\"id\": 1," "llama BOS token")
expect_match("${tokens}" "\"piece\": \"cat\"" "llama word tokens")

# classify on GPT-2 with the bundled sample: every 64-word window makes more than 48 tokens, so all are narrowed.
run(0 out classify --model "${gpt2}" --conllu "${SAMPLE}" --quiet)
expect_match("${out}" "^GPT-2 \\(2 layers x 4 heads, byte-level BPE\\) on " "classify summary")
expect_match("${out}" "[0-9]+ windows narrowed to fit the model's 48 tokens" "classify summary")
expect_match("${out}" "head report \\(annotated policy\\): 8 heads in 2 layers" "classify table")
if(out MATCHES "cut \\(")
  message(FATAL_ERROR "no GUM word makes 48 tokens on its own, yet words were cut:\n${out}")
endif()

# An excerpt cut from GUM (tests/data/gum/gum_cc_by_excerpt.conllu) whose links leave it: read, the dangling links
# dropped and counted on the first line; --strict keeps the old refusal.
get_filename_component(gum_dir "${SAMPLE}" DIRECTORY)
run(0 out classify --model "${gpt2}" --conllu "${gum_dir}/gum_cc_by_excerpt.conllu" --quiet --window 32)
expect_match("${out}" "; [0-9]+ discourse and [0-9]+ coreference links leaving their document \\(an excerpt\\) dropped"
             "classify summary of an excerpt")
run(1 out classify --model "${gpt2}" --conllu "${gum_dir}/gum_cc_by_excerpt.conllu" --quiet --strict)
expect_match("${out}" "^headlens classify: .*gum_cc_by_excerpt.conllu" "classify --strict on an excerpt")

# classify on Llama with GPT-2's BPE, as JSON; and on plain text with the HTML report.
run(0 out classify --model "${llama}" --tokenizer "${gpt2}" --conllu "${SAMPLE}" --quiet --format json
    --out "${WORK}/llama.json")
file(READ "${WORK}/llama.json" report)
string(REGEX MATCHALL "\"head\": [0-3],[^{}]*\"layer\": [01]" heads "${report}")
list(LENGTH heads head_count)
if(NOT head_count EQUAL 8)
  message(FATAL_ERROR "llama.json has ${head_count} heads, expected 8:\n${report}")
endif()
file(WRITE "${WORK}/text.txt" "The cat sat on the mat. It was warm, and the cat did not move.\nThen it slept.\n")
run(0 out classify --model "${gpt2}" --text "${WORK}/text.txt" --quiet --format html --out "${WORK}/report.html")
file(READ "${WORK}/report.html" html)
expect_match("${html}" "GPT-2 \\(2 layers x 4 heads, byte-level BPE\\): head report \\(heuristic policy\\)" "html title")

# Bad paths: one line naming the path and what was expected.
run(1 out maps --model "${DATA}" --text "x" --out "${WORK}/x.npy")
expect_match("${out}" "^headlens maps: no model in .*: expected a Hugging Face directory" "no model")
run(1 out classify --model "${llama}" --quiet)
expect_match("${out}" "^headlens classify: model directory .*llama has no tokenizer; expected tokenizer.json" "no tokenizer")
run(1 out classify --model "${llama}" --tokenizer "${WORK}/nowhere" --quiet)
expect_match("${out}" "^headlens classify: tokenizer .*nowhere does not exist" "missing tokenizer")
run(1 out classify --tokenizer "${gpt2}" --quiet)
expect_match("${out}" "^headlens classify: --tokenizer needs --model" "tokenizer without model")
