# `headlens tokenize` on the tokenizers of tests/data/models: GPT-2's byte-level BPE (ids and offsets from the
# independent Python reference in gpt2/tokenizer_cases.json) and a word vocabulary, as a table and as JSON, and bad
# input failing with one named line.
# tokenizer.model and tokenizer.json: the ids of SentencePiece itself and of the Rust tokenizers library for the first
# string of their conformance data (tests/data/sentencepiece, tests/data/tokenizers).
#   cmake -DCLI=<headlens> -DDATA=<tests/data/models> -DWORK=<scratch dir> -P run_tokenize.cmake
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/run_helpers.cmake)

# GPT-2, the first case of tokenizer_cases.json: 27 tokens, "Ġfox" = 296 over bytes [15, 19).
run(0 out tokenize --tokenizer "${DATA}/gpt2" --text "The quick brown fox jumps over the lazy dog." --format json)
string(JSON n LENGTH "${out}" tokens)
if(NOT n EQUAL 27)
  message(FATAL_ERROR "GPT-2: ${n} tokens, expected 27:\n${out}")
endif()
string(JSON kind GET "${out}" tokenizer)
expect_match("${kind}" "^byte-level BPE$" "tokenizer kind")
foreach(check "0;265;0;3;The" "10;296;15;19; fox" "26;13;43;44;.")
  list(GET check 0 i)
  list(GET check 1 want_id)
  list(GET check 2 want_begin)
  list(GET check 3 want_end)
  list(GET check 4 want_text)
  string(JSON id GET "${out}" tokens ${i} id)
  string(JSON begin GET "${out}" tokens ${i} begin)
  string(JSON end GET "${out}" tokens ${i} end)
  string(JSON text GET "${out}" tokens ${i} text)
  if(NOT id EQUAL want_id OR NOT begin EQUAL want_begin OR NOT end EQUAL want_end OR NOT text STREQUAL want_text)
    message(FATAL_ERROR "GPT-2 token ${i}: id ${id} [${begin}, ${end}) '${text}', expected id ${want_id} "
                        "[${want_begin}, ${want_end}) '${want_text}'")
  endif()
endforeach()

# The table: one line per token and the count; the vocabulary file named.
run(0 out tokenize --tokenizer "${DATA}/gpt2/vocab.json" --text "The quick brown fox jumps over the lazy dog.")
expect_match("${out}" "\n10 +296 +15 +19 +Ġfox -> \" fox\"\n" "GPT-2 table row")
expect_match("${out}" "\n27 tokens \\(byte-level BPE, [^\n]*vocab.json\\)\n$" "GPT-2 table count")

# A word vocabulary: "cafés" is one word (id 15, bytes [0, 6)); an unknown word takes [UNK] = 0; a newline in the text
# is shown escaped.
file(WRITE "${WORK}/text.txt" "cafés zzz\nthe")
run(0 out tokenize --tokenizer "${DATA}/words/vocab.json" --file "${WORK}/text.txt")
expect_match("${out}" "\n0 +15 +0 +6 +cafés -> \"cafés\"\n1 +0 +7 +10 +\\[UNK\\] -> \"zzz\"\n2 +3 +11 +14 +the"
             "word vocabulary table")

# A word vocabulary that spells its unknown word <unk> (as SentencePiece-trained vocabularies do).
file(WRITE "${WORK}/unk/vocab.json" "{\"<unk>\": 0, \"the\": 1, \"cat\": 2}")
run(0 out tokenize --tokenizer "${WORK}/unk" --text "the dog" --format json)
string(JSON id GET "${out}" tokens 1 id)
if(NOT id EQUAL 0)
  message(FATAL_ERROR "an unknown word with a <unk> vocabulary: id ${id}, expected 0:\n${out}")
endif()

# expect_ids(<json output> <json array of ids> <stride> <what>): the output's token ids are every <stride>-th entry.
function(expect_ids out want stride what)
  string(JSON n LENGTH "${out}" tokens)
  string(JSON m LENGTH "${want}")
  math(EXPR m "${m} / ${stride}")
  if(NOT n EQUAL m)
    message(FATAL_ERROR "${what}: ${n} tokens, expected ${m}:\n${out}")
  endif()
  math(EXPR last "${n} - 1")
  foreach(i RANGE ${last})
    math(EXPR k "${i} * ${stride}")
    string(JSON got GET "${out}" tokens ${i} id)
    string(JSON expected GET "${want}" ${k})
    if(NOT got EQUAL expected)
      message(FATAL_ERROR "${what}: token ${i} is ${got}, expected ${expected}:\n${out}")
    endif()
  endforeach()
endfunction()

get_filename_component(test_data "${DATA}" DIRECTORY)
file(READ "${test_data}/sentencepiece/strings.json" strings)
string(JSON text GET "${strings}" 0)
file(READ "${test_data}/sentencepiece/unigram_nfkc.json" reference)
string(JSON want GET "${reference}" bos_cases 0)
run(0 out tokenize --tokenizer "${test_data}/sentencepiece/unigram_nfkc.model" --text "${text}" --format json)
expect_ids("${out}" "${want}" 1 "tokenizer.model with BOS")
string(JSON kind GET "${out}" tokenizer)
expect_match("${kind}" "^tokenizer.model$" "tokenizer.model kind")
string(JSON want GET "${reference}" cases 0)
run(0 out tokenize --tokenizer "${test_data}/sentencepiece/unigram_nfkc.model" --text "${text}" --format json
    --no-special-tokens)
expect_ids("${out}" "${want}" 3 "tokenizer.model without BOS")

if(HAVE_TOKENIZER_JSON)
  file(READ "${test_data}/tokenizers/corpus.json" corpus)
  string(JSON text GET "${corpus}" 0)
  file(READ "${test_data}/tokenizers/synthetic_bert_wordpiece.reference.json" reference)
  string(JSON want GET "${reference}" add_special_tokens encodings 0)
  run(0 out tokenize --tokenizer "${test_data}/tokenizers/synthetic/bert_wordpiece.json" --text "${text}" --format json)
  expect_ids("${out}" "${want}" 3 "tokenizer.json (WordPiece, [CLS] and [SEP] added)")
endif()

# Bad input: one line naming what is wrong.
run(1 out tokenize --tokenizer "${WORK}/nothing-here" --text "x")
expect_match("${out}" "^headlens tokenize: --tokenizer [^\n]*nothing-here does not exist" "missing tokenizer")
file(MAKE_DIRECTORY "${WORK}/empty")
run(1 out tokenize --tokenizer "${WORK}/empty" --text "x")
expect_match("${out}" "^headlens tokenize: --tokenizer [^\n]*empty has no tokenizer; expected tokenizer.json" "empty dir")
run(1 out tokenize --tokenizer "${DATA}/gpt2" --text "x" --file "${WORK}/text.txt")
expect_match("${out}" "^headlens tokenize: give exactly one of --text and --file" "both texts")
run(1 out tokenize --tokenizer "${DATA}/gpt2" --file "${WORK}/no-such-file.txt")
expect_match("${out}" "^headlens tokenize: cannot read --file [^\n]*no-such-file.txt" "missing --file")
