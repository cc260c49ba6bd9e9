# Installs the engine as a CMake package: find_package(troupe), troupe_add_module().
#
# A module (.so) compiles against the public headers and resolves the
# engine's symbols when `troupe` dlopens it; an embedding program links the
# engine's layers as static libraries:
#
#   <prefix>/bin/troupe                             troupe::cli (imported executable)
#   <prefix>/include/troupe/...                     every layer's public headers + io's
#   <prefix>/lib/libtroupe_*.a                      troupe::troupe (core), troupe::remote,
#                                                   troupe::cluster, troupe::io
#   <prefix>/lib/cmake/troupe/troupeConfig.cmake    those targets, troupe::headers
#   <prefix>/lib/cmake/troupe/troupeModule.cmake    troupe_add_module()

include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The engine refuses a module built with another TROUPE_VERSION_STRING, so
# the package's version (which find_package matches exactly) must be it.
file(STRINGS ${PROJECT_SOURCE_DIR}/engine/core/include/troupe/version.hpp troupe_version_line
     REGEX "#define TROUPE_VERSION_STRING")
string(REGEX REPLACE ".*\"(.*)\".*" "\\1" troupe_header_version "${troupe_version_line}")
if(NOT troupe_header_version STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "engine/core/include/troupe/version.hpp says ${troupe_header_version} but "
                      "project() says ${PROJECT_VERSION}: make them the same version")
endif()

# troupe::headers: what a module compiles against. The public headers
# include <nlohmann/json.hpp> and troupe/io/reactor.hpp, nothing else
# outside the standard library and POSIX.
add_library(troupe_headers INTERFACE)
add_library(troupe::headers ALIAS troupe_headers)
set_target_properties(troupe_headers PROPERTIES EXPORT_NAME headers)
target_include_directories(troupe_headers INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/engine/core/include>
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/engine/remote/include>
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/engine/cluster/include>
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/io/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(troupe_headers INTERFACE cxx_std_20)
target_link_libraries(troupe_headers INTERFACE nlohmann_json::nlohmann_json)

# An engine built with sanitizers hands their flags on to its modules: the
# module's code is checked too, and a module instrumented on its own could
# not load into an engine without the sanitizer runtime.
get_directory_property(troupe_compile_options COMPILE_OPTIONS)
get_directory_property(troupe_link_options LINK_OPTIONS)
list(FILTER troupe_compile_options INCLUDE REGEX "^-f(no-)?sanitize|^-fno-omit-frame-pointer$")
list(FILTER troupe_link_options INCLUDE REGEX "^-f(no-)?sanitize")
target_compile_options(troupe_headers INTERFACE ${troupe_compile_options})
target_link_options(troupe_headers INTERFACE ${troupe_link_options})
# An embedder of an engine built so links the sanitizer runtime too.
target_link_libraries(troupe_core PUBLIC troupe_headers)

# The imported names: troupe::troupe is the core an embedder links,
# troupe::cli the binary.
set_target_properties(troupe PROPERTIES EXPORT_NAME cli)
set_target_properties(troupe_core PROPERTIES EXPORT_NAME troupe OUTPUT_NAME troupe_core)
set_target_properties(troupe_remote PROPERTIES EXPORT_NAME remote)
set_target_properties(troupe_cluster PROPERTIES EXPORT_NAME cluster)
set_target_properties(troupe_io PROPERTIES EXPORT_NAME io)
install(TARGETS troupe troupe_headers troupe_io troupe_core troupe_remote troupe_cluster
        EXPORT troupe_targets
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/engine/core/include/troupe
                  ${PROJECT_SOURCE_DIR}/engine/remote/include/troupe
                  ${PROJECT_SOURCE_DIR}/engine/cluster/include/troupe
                  ${PROJECT_SOURCE_DIR}/io/include/troupe
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")

set(troupe_config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/troupe)
install(EXPORT troupe_targets NAMESPACE troupe:: FILE troupeTargets.cmake
        DESTINATION ${troupe_config_dir})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/troupeConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/troupeConfig.cmake
                              INSTALL_DESTINATION ${troupe_config_dir})
# A module must match the engine's version exactly (module.hpp).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY ExactVersion)
install(FILES ${PROJECT_BINARY_DIR}/troupeConfig.cmake
              ${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/troupeModule.cmake
        DESTINATION ${troupe_config_dir})
