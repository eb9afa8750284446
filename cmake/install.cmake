# Install and export rules for the header-only target, usable from a subproject too (as Eigen does).
include(CMakePackageConfigHelpers)

install(TARGETS headlens EXPORT headlensTargets)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/headlens DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT headlensTargets
  NAMESPACE headlens::
  DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/headlens)
# The MPI component in an export set of its own, so a consumer that does not ask for it never looks for MPI.
if(TARGET headlens_mpi)
  install(TARGETS headlens_mpi EXPORT headlensMpiTargets)
  install(EXPORT headlensMpiTargets
    NAMESPACE headlens::
    DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/headlens)
endif()
# The tokenizers component likewise: only a consumer that asks for it looks for PCRE2.
if(TARGET headlens_tokenizers)
  install(TARGETS headlens_tokenizers EXPORT headlensTokenizersTargets)
  install(EXPORT headlensTokenizersTargets
    NAMESPACE headlens::
    DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/headlens)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/headlensConfig.cmake.in
  ${PROJECT_BINARY_DIR}/headlensConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/headlens)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/headlensConfigVersion.cmake
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/headlensConfig.cmake ${PROJECT_BINARY_DIR}/headlensConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_DATADIR}/cmake/headlens)
