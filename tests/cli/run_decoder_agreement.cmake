# `headlens classify` on a decoder checkpoint and `headlens classify-maps --causal` on the same model's word maps
# (written by word_maps, the materialised path) must give the same report: classify once normalised a decoder's
# entropies by log n instead of log(i + 1). Each document is one window (it fits the model whole).
#   cmake -DCLI=<headlens> -DWORD_MAPS=<word_maps> -DMODEL=<dir> [-DTOKENIZER=<path>] -DDOC=<conllu> -DWORK=<dir>
#         [-DMUST_DISTINGUISH=ON] -P run_decoder_agreement.cmake
# MUST_DISTINGUISH: classify-maps without --causal must report otherwise (so the check can fail at all).
cmake_minimum_required(VERSION 3.20)
include(${CMAKE_CURRENT_LIST_DIR}/run_helpers.cmake)
file(MAKE_DIRECTORY "${WORK}")
set(tokenizer_args "")
if(TOKENIZER)
  set(tokenizer_args --tokenizer "${TOKENIZER}")
endif()
execute_process(COMMAND "${WORD_MAPS}" "${MODEL}" "${DOC}" "${WORK}/maps" ${TOKENIZER} RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "word_maps failed: ${err}")
endif()
set(distinguished FALSE)
foreach(policy heuristic annotated)
  run(0 streamed classify --model "${MODEL}" ${tokenizer_args} --conllu "${DOC}" --window 48 --policy ${policy}
      --format csv --quiet)
  run(0 causal classify-maps --conllu "${DOC}" --maps "${WORK}/maps_0.npy" --maps "${WORK}/maps_1.npy" --causal
      --policy ${policy} --format csv)
  run(0 bidirectional classify-maps --conllu "${DOC}" --maps "${WORK}/maps_0.npy" --maps "${WORK}/maps_1.npy"
      --policy ${policy} --format csv)
  if(NOT streamed STREQUAL causal)
    message(FATAL_ERROR "${policy}: classify and classify-maps --causal disagree.\nclassify:\n${streamed}\n"
                        "classify-maps --causal:\n${causal}")
  endif()
  if(NOT streamed STREQUAL bidirectional)
    set(distinguished TRUE)
  endif()
endforeach()
if(MUST_DISTINGUISH AND NOT distinguished)
  message(FATAL_ERROR "classify-maps gives the same reports without --causal, so this test could not tell a causal "
                      "run from a bidirectional one")
endif()
