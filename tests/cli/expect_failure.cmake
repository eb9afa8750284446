# Runs `headlens attention` on bad input and checks that it fails as documented: a non-zero exit status and exactly
# one line on stderr, `headlens attention: <message>`, where the message matches EXPECT.
#   cmake -DCLI=<headlens> -DARGS="--weights|W|..." -DEXPECT=<regex> -P expect_failure.cmake
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND "${CLI}" attention ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "exit status ${rc}; stderr: ${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "headlens attention succeeded on bad input (stdout: ${out})")
endif()
if(NOT err MATCHES "^headlens attention: [^\n]*\n$")
  message(FATAL_ERROR "expected one line `headlens attention: <message>` on stderr, got:\n${err}")
endif()
if(NOT err MATCHES "^headlens attention: ${EXPECT}")
  message(FATAL_ERROR "stderr does not match `headlens attention: ${EXPECT}`:\n${err}")
endif()
