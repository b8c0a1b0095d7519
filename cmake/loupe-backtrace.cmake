# libbacktrace, which names the frames of loupe's stacks from DWARF (file:line,
# inlined frames), as an imported target:
#
#   loupe_deps::backtrace   GCC's libbacktrace.a (Debian: libgcc-12-dev, which
#                           g++ and clang need anyway)
#
# Found through the compiler (-print-file-name), by loupe's build and by the
# installed loupe-config.cmake, so the exported loupe::runtime names this
# target, never a path of the machine loupe was built on. LIBBACKTRACE_LIBRARY
# and LIBBACKTRACE_INCLUDE_DIR (cache variables) point elsewhere. Without it
# the stacks name exported functions only (dladdr).
if(NOT LIBBACKTRACE_LIBRARY OR NOT LIBBACKTRACE_INCLUDE_DIR)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libbacktrace.a
    OUTPUT_VARIABLE _loupe_bt_lib OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=include/backtrace.h
    OUTPUT_VARIABLE _loupe_bt_header OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  # Without the file, the compiler prints the name back unchanged.
  if(IS_ABSOLUTE "${_loupe_bt_lib}" AND EXISTS "${_loupe_bt_lib}")
    set(LIBBACKTRACE_LIBRARY "${_loupe_bt_lib}" CACHE FILEPATH "libbacktrace.a")
  endif()
  if(IS_ABSOLUTE "${_loupe_bt_header}" AND EXISTS "${_loupe_bt_header}")
    get_filename_component(_loupe_bt_dir "${_loupe_bt_header}" DIRECTORY)
    set(LIBBACKTRACE_INCLUDE_DIR "${_loupe_bt_dir}" CACHE PATH "directory of backtrace.h")
  endif()
endif()
mark_as_advanced(LIBBACKTRACE_LIBRARY LIBBACKTRACE_INCLUDE_DIR)

if(LIBBACKTRACE_LIBRARY AND NOT TARGET loupe_deps::backtrace)
  add_library(loupe_deps::backtrace STATIC IMPORTED)
  set_target_properties(loupe_deps::backtrace PROPERTIES IMPORTED_LOCATION "${LIBBACKTRACE_LIBRARY}")
endif()
