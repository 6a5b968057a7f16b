# kvc_add_unittest(<name>Tests SOURCES a.cpp ... [LINK libs...])
# Builds a GoogleTest executable into ${CMAKE_BINARY_DIR}/unittests, where the lit suite in
# test/Unit finds it (lit's GoogleTest format runs every test of every *Tests executable).
find_package(GTest REQUIRED)
function(kvc_add_unittest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  if(NOT name MATCHES "Tests$")
    message(FATAL_ERROR "unit test executable '${name}' must end in 'Tests'")
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE GTest::gtest GTest::gtest_main ${ARG_LINK})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/unittests)
  set_property(GLOBAL APPEND PROPERTY KVC_UNITTEST_TARGETS ${name})
endfunction()
