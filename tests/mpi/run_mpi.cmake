# headlens-mpi classify under mpirun on localhost (tests/mpi/CMakeLists.txt):
#   cmake -DCLI=<headlens> -DMPI_CLI=<headlens-mpi> -DMPIEXEC=<mpirun> -DMODEL=<model dir> -DSAMPLE=<conllu>
#         -DCASES=reports|failures -DWORK=<scratch dir> -P run_mpi.cmake
# reports:  with 2 and 3 ranks, every format (stdout and --out) and --evidence are the bytes `headlens classify`
#           writes for the same arguments.
# failures: a rank that throws, is killed, or cannot read its input ends the run non-zero with one line
#           `headlens-mpi classify: ...` and no report, partial or whole.
cmake_minimum_required(VERSION 3.20)
if(NOT EXISTS "${MODEL}/config.json" AND NOT EXISTS "${MODEL}/dist/model.json")
  message("SKIPPED: no model at ${MODEL}; run `make models` (tools/fetch-use-lite.sh)")
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/../cli/run_helpers.cmake)

# As CI runs: root, more ranks than cores, one OpenMP thread per rank.
set(ENV{OMPI_ALLOW_RUN_AS_ROOT} 1)
set(ENV{OMPI_ALLOW_RUN_AS_ROOT_CONFIRM} 1)
set(ENV{OMP_NUM_THREADS} 1)
set(mpi_flags "")
execute_process(COMMAND "${MPIEXEC}" --version OUTPUT_VARIABLE version ERROR_QUIET)
if(version MATCHES "Open MPI|OpenRTE")
  set(mpi_flags --oversubscribe --bind-to none)
endif()

# single(<stdout file> args...): `headlens classify args...`, which must succeed; its stdout into the file.
function(single stdout_file)
  execute_process(COMMAND "${CLI}" classify --model "${MODEL}" ${ARGN} RESULT_VARIABLE rc OUTPUT_FILE "${stdout_file}"
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "headlens classify ${ARGN}: exit ${rc}\n${err}")
  endif()
endfunction()

# ranks(<np> <rc var> <stdout var> <stderr var> args...): `mpirun -np <np> headlens-mpi classify args...`.
function(ranks np rc_var out_var err_var)
  execute_process(COMMAND "${MPIEXEC}" ${mpi_flags} -np ${np} "${MPI_CLI}" classify --model "${MODEL}" ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  set(${rc_var} "${rc}" PARENT_SCOPE)
  set(${out_var} "${out}" PARENT_SCOPE)
  set(${err_var} "${err}" PARENT_SCOPE)
endfunction()

function(expect_same_file actual expected what)
  execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${actual}" "${expected}" RESULT_VARIABLE differ)
  if(NOT differ EQUAL 0)
    execute_process(COMMAND diff -u "${expected}" "${actual}" OUTPUT_VARIABLE diff ERROR_QUIET)
    message(FATAL_ERROR "${what}: ${actual} differs from headlens classify's ${expected}:\n${diff}")
  endif()
endfunction()

function(expect_no_temporaries)
  file(GLOB left "${WORK}/*.tmp-*")
  if(left)
    message(FATAL_ERROR "temporary report files left behind: ${left}")
  endif()
endfunction()

if(CASES STREQUAL "reports")
  set(single_evidence "${WORK}/single.evidence.json")
  # (tag, arguments) cases; OUT stands for the report file, EVIDENCE for the evidence file.
  set(case_table "--quiet --evidence EVIDENCE")
  set(case_json "--quiet --format json --out OUT")
  set(case_csv "--quiet --format csv --window 16 --out OUT")
  set(case_md "--quiet --format md")
  set(case_html "--quiet --format html --out OUT")
  foreach(tag table json csv md html)
    separate_arguments(arguments UNIX_COMMAND "${case_${tag}}")
    list(APPEND arguments --conllu "${SAMPLE}")
    list(TRANSFORM arguments REPLACE "^OUT$" "${WORK}/single.${tag}" OUTPUT_VARIABLE single_args)
    list(TRANSFORM single_args REPLACE "^EVIDENCE$" "${single_evidence}")
    single("${WORK}/single.${tag}.stdout" ${single_args})
    foreach(np 2 3)
      set(prefix "${WORK}/np${np}")
      list(TRANSFORM arguments REPLACE "^OUT$" "${prefix}.${tag}" OUTPUT_VARIABLE mpi_args)
      list(TRANSFORM mpi_args REPLACE "^EVIDENCE$" "${prefix}.evidence.json")
      ranks(${np} rc out err ${mpi_args})
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR "mpirun -np ${np} headlens-mpi classify ${mpi_args}: exit ${rc}\n${out}\n${err}")
      endif()
      file(WRITE "${prefix}.${tag}.stdout" "${out}")
      expect_same_file("${prefix}.${tag}.stdout" "${WORK}/single.${tag}.stdout" "-np ${np} ${tag}: stdout")
      if(EXISTS "${WORK}/single.${tag}")
        expect_same_file("${prefix}.${tag}" "${WORK}/single.${tag}" "-np ${np} ${tag}: --out")
      endif()
      if(tag STREQUAL "table")
        expect_same_file("${prefix}.evidence.json" "${single_evidence}" "-np ${np}: --evidence")
      endif()
    endforeach()
  endforeach()
  file(READ "${WORK}/single.table.stdout" table)
  expect_match("${table}" "head report \\(annotated policy\\)" "the table compared")
  expect_no_temporaries()
  message("mpi:classify: table, json, csv, md, html and evidence identical to headlens classify with 2 and 3 ranks")
  return()
endif()

# expect_failure(<what> <np> <fault or ""> <line regex> args...): exit non-zero within the time limit, exactly one
# `headlens-mpi classify:` line on stderr and matching the regex (an empty regex: no such line is required, as when
# a rank is killed and mpirun reports it), nothing on stdout, no report file (WORK/report.txt), no temporary.
function(expect_failure what np fault regex)
  file(REMOVE "${WORK}/report.txt")
  if(fault STREQUAL "")
    unset(ENV{HEADLENS_MPI_FAULT})
  else()
    set(ENV{HEADLENS_MPI_FAULT} "${fault}")
  endif()
  ranks(${np} rc out err ${ARGN})
  unset(ENV{HEADLENS_MPI_FAULT})
  if(rc EQUAL 0 OR NOT rc MATCHES "^[0-9]+$")
    message(FATAL_ERROR "${what}: exit '${rc}', expected a non-zero status\nstdout: ${out}\nstderr: ${err}")
  endif()
  if(NOT out STREQUAL "")
    message(FATAL_ERROR "${what}: expected nothing on stdout (no partial report), got:\n${out}")
  endif()
  if(EXISTS "${WORK}/report.txt")
    message(FATAL_ERROR "${what}: the report file was written")
  endif()
  expect_no_temporaries()
  string(REGEX MATCHALL "(^|\n)headlens-mpi classify: [^\n]*" lines "${err}")
  list(LENGTH lines count)
  if(NOT regex STREQUAL "")
    if(NOT count EQUAL 1)
      message(FATAL_ERROR "${what}: ${count} `headlens-mpi classify:` lines on stderr, expected 1:\n${err}")
    endif()
    expect_match("${lines}" "${regex}" "${what}")
  endif()
endfunction()

set(out_args --quiet --conllu "${SAMPLE}" --out "${WORK}/report.txt")
expect_failure("rank 1 throws" 2 "1" "headlens-mpi classify: fault injected on rank 1 \\(HEADLENS_MPI_FAULT=1\\)$"
               ${out_args})
expect_failure("rank 0 throws, 3 ranks, report to stdout" 3 "0" "headlens-mpi classify: fault injected on rank 0" --quiet
               --conllu "${SAMPLE}")
expect_failure("rank 2 is killed" 3 "2:kill" "" ${out_args})
expect_failure("every rank misses --conllu" 2 "" "headlens-mpi classify: cannot open .*missing\\.conllu"
               --quiet --conllu "${WORK}/missing.conllu" --out "${WORK}/report.txt")
expect_failure("rank 0 cannot write --out" 2 "" "headlens-mpi classify: cannot open --out .*no/such/dir/r\\.txt"
               --quiet --out "${WORK}/no/such/dir/r.txt")
expect_failure("a malformed command line" 3 "" "headlens-mpi classify: .*--format" --quiet --format nope)
message("mpi:failing_rank: thrown, killed and unreadable-input ranks end the run with one line and no report")
