# loupe_library(NAME [PCH HEADER] SOURCES source...) — one of loupe's components.
#
#   loupe_library(monitor
#     SOURCES
#       monitor/src/commands.cpp
#       monitor/src/console.cpp)
#   target_link_libraries(loupe_monitor PUBLIC loupe::runtime)
#
# Defines the library loupe_NAME, known as loupe::NAME both here (an alias) and
# in the installed package (its EXPORT_NAME; the install section of the top
# CMakeLists.txt installs it). Its public headers are NAME/include/ in the
# build and include/ once installed. It is compiled with loupe's warnings
# (loupe_target_defaults) and the precompiled Asio/Beast header: built from
# HEADER when given (the runtime's), else reused from loupe_runtime.
# What is particular to a component (its dependencies, private include
# directories, compile definitions) is set after the call, on loupe_NAME.

# loupe_target_defaults(TARGET [PCH HEADER]): loupe's warnings and precompiled
# header for a target of loupe's own (a component, or a test-only library).
function(loupe_target_defaults target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "PCH" "")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "loupe_target_defaults(${target}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)  # GCC 12 false positive on Asio coroutine frames
  endif()
  if(LOUPE_USE_PCH)
    if(arg_PCH)
      target_precompile_headers(${target} PRIVATE ${arg_PCH})
    else()
      target_precompile_headers(${target} REUSE_FROM loupe_runtime)
    endif()
  endif()
endfunction()

function(loupe_library name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "PCH" "SOURCES")
  if(arg_UNPARSED_ARGUMENTS OR NOT arg_SOURCES)
    message(FATAL_ERROR "loupe_library(${name}): usage: loupe_library(NAME [PCH HEADER] SOURCES source...)")
  endif()
  set(target loupe_${name})
  add_library(${target} ${arg_SOURCES})
  add_library(loupe::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/${name}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  if(arg_PCH)
    loupe_target_defaults(${target} PCH ${arg_PCH})
  else()
    loupe_target_defaults(${target})
  endif()
endfunction()
