# troupe_add_module(<name> <source>...)
#
# Builds an actor module: <name>.so (no "lib" prefix), loaded with
# `troupe serve --module path/to/<name>.so`, the config's "modules" or
# system::load_module. The file name is free; the engine knows the module
# by the name in its TROUPE_MODULE("...") entry point.
#
# The module does not link the engine: it is compiled against troupe::headers
# and resolves the engine's symbols against the `troupe` binary that loads
# it. Hence what this function sets and a module must keep:
#   - default symbol visibility, inline functions included: the engine and
#     the module share one copy of each inline function's statics (type tags,
#     registries), found by the dynamic linker;
#   - no -Bsymbolic / -Bsymbolic-functions in the link flags, for the same
#     reason;
#   - undefined symbols allowed at link time (-z undefs overrides a
#     toolchain's -z defs / --no-undefined).
function(troupe_add_module name)
  if(ARGC LESS 2)
    message(FATAL_ERROR "troupe_add_module(${name}): give the module's source files after its name")
  endif()
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE troupe::headers)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    CXX_EXTENSIONS OFF
    POSITION_INDEPENDENT_CODE ON
    CXX_VISIBILITY_PRESET default
    VISIBILITY_INLINES_HIDDEN OFF)
  target_link_options(${name} PRIVATE LINKER:-z,undefs)
endfunction()
