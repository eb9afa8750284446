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
