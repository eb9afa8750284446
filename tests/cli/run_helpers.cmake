# What the CLI scripts (run_use_lite.cmake, run_checkpoints.cmake) share: running the tool and matching its output.
# The including script sets CLI (the headlens binary) and WORK (a scratch directory, emptied here).
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# run(<expected exit code> <output variable> args...): stdout and stderr together in the variable.
function(run expect out_var)
  execute_process(COMMAND "${CLI}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expect)
    message(FATAL_ERROR "headlens ${ARGN}: exit ${rc}, expected ${expect}\nstdout: ${out}\nstderr: ${err}")
  endif()
  set(${out_var} "${out}${err}" PARENT_SCOPE)
endfunction()

function(expect_match text regex what)
  if(NOT text MATCHES "${regex}")
    message(FATAL_ERROR "${what}: expected to match '${regex}', got:\n${text}")
  endif()
endfunction()
