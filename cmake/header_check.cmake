# Every public header compiles on its own (Seastar checks its headers the same
# way): one translation unit per header, holding nothing but its #include,
# built by the default build into the object library troupe_header_check.
# A header that leans on what its includer happened to include first fails
# here, by name, instead of in a module author's build.
if(TROUPE_FUZZ)
  return()
endif()

set(troupe_public_include_dirs
    ${PROJECT_SOURCE_DIR}/io/include
    ${PROJECT_SOURCE_DIR}/engine/core/include
    ${PROJECT_SOURCE_DIR}/engine/remote/include
    ${PROJECT_SOURCE_DIR}/engine/cluster/include)

set(troupe_header_check_sources)
foreach(dir IN LISTS troupe_public_include_dirs)
  # engine/remote/include may not exist yet; a glob of it is then empty.
  file(GLOB_RECURSE headers CONFIGURE_DEPENDS RELATIVE ${dir} ${dir}/*.hpp)
  foreach(header IN LISTS headers)
    set(source ${PROJECT_BINARY_DIR}/header_check/${header}.cpp)
    # CONFIGURE rewrites the file only when its text changes, so a new
    # cmake run does not rebuild every check.
    file(CONFIGURE OUTPUT ${source} CONTENT "#include <${header}>\n")
    list(APPEND troupe_header_check_sources ${source})
  endforeach()
endforeach()

add_library(troupe_header_check OBJECT ${troupe_header_check_sources})
# Only what the public headers promise to need: the layers' include folders,
# nlohmann_json, and troupe_io's usage requirements (liburing, threads).
foreach(dir IN LISTS troupe_public_include_dirs)
  if(IS_DIRECTORY ${dir})
    target_include_directories(troupe_header_check PRIVATE ${dir})
  endif()
endforeach()
target_link_libraries(troupe_header_check PRIVATE troupe_io nlohmann_json::nlohmann_json)
