cmake_minimum_required(VERSION 3.25)
# Compares (MODE=check) or replaces (MODE=update) the block of DOC between
#   <!-- module-graph:begin -->  and  <!-- module-graph:end -->
# with GRAPH, the module graph sentinel_write_module_graph() generated at
# configure time (cmake/SentinelOptions.cmake).
#   cmake -DDOC=docs/architecture.md -DGRAPH=build/ci/module_graph.md -DMODE=check|update -P ModuleGraphDoc.cmake
set(begin_marker "<!-- module-graph:begin (generated from CMake: make architecture-doc) -->\n")
set(end_marker "<!-- module-graph:end -->")
file(READ "${DOC}" doc)
file(READ "${GRAPH}" graph)
string(FIND "${doc}" "${begin_marker}" b)
string(FIND "${doc}" "${end_marker}" e)
if(b EQUAL -1 OR e EQUAL -1 OR e LESS b)
  message(FATAL_ERROR "${DOC}: no module graph block (a line `${begin_marker}` ... `${end_marker}`)")
endif()
string(LENGTH "${begin_marker}" begin_len)
math(EXPR start "${b} + ${begin_len}")
math(EXPR len "${e} - ${start}")
string(SUBSTRING "${doc}" ${start} ${len} current)
if(MODE STREQUAL "update")
  string(SUBSTRING "${doc}" 0 ${start} head)
  string(SUBSTRING "${doc}" ${e} -1 tail)
  set(updated "${head}${graph}${tail}")
  if(NOT updated STREQUAL doc)
    file(WRITE "${DOC}" "${updated}")
    message(STATUS "${DOC}: module graph updated")
  else()
    message(STATUS "${DOC}: module graph up to date")
  endif()
elseif(NOT current STREQUAL graph)
  message(FATAL_ERROR
    "${DOC}: the module graph differs from the one CMake declares (${GRAPH}).\n"
    "Regenerate it with `make architecture-doc` (or cmake --build <build> --target architecture-doc) "
    "and commit docs/architecture.md.\n--- in the doc:\n${current}--- generated:\n${graph}")
endif()
