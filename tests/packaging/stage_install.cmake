# cmake -DBUILD_DIR=<headlens build> -DPREFIX=<stage> -P stage_install.cmake
# Installs a headlens build into a fresh prefix, as a packager would, for the find_package consumer to use.
foreach(var BUILD_DIR PREFIX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "stage_install.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${PREFIX})  # a header deleted from the tree must not linger in the stage
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install ${BUILD_DIR} --prefix ${PREFIX} failed: ${rc}")
endif()
foreach(expected include/headlens/headlens.hpp share/cmake/headlens/headlensConfig.cmake
                 share/cmake/headlens/headlensConfigVersion.cmake share/cmake/headlens/headlensTargets.cmake)
  if(NOT EXISTS ${PREFIX}/${expected})
    message(FATAL_ERROR "stage_install.cmake: ${expected} missing from the installed tree")
  endif()
endforeach()
# The headlens tool, when the build has it (EXPECT_TOOL): installed into bin/ and able to run from there.
if(EXPECT_TOOL)
  if(NOT EXISTS ${PREFIX}/bin/headlens)
    message(FATAL_ERROR "stage_install.cmake: bin/headlens missing from the installed tree")
  endif()
  execute_process(COMMAND ${PREFIX}/bin/headlens classify --help RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "Label every attention head")
    message(FATAL_ERROR "the installed bin/headlens classify --help failed (${rc}): ${out}${err}")
  endif()
endif()
