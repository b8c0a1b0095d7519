# gperftools' libraries as imported targets, for loupe::profiler:
#
#   gperftools::profiler   libprofiler (the CPU profiler)
#   gperftools::tcmalloc   libtcmalloc, linked with --no-as-needed: it replaces
#                          malloc, so it is kept although no symbol of it is named
#
# Included by loupe's build and by the installed loupe-config.cmake, so the
# exported loupe::profiler names these targets, never a path of the machine it
# was built on: the libraries are found where loupe is used. A target is only
# defined when its library is found (GPERFTOOLS_PROFILER_LIBRARY,
# GPERFTOOLS_TCMALLOC_LIBRARY: cache variables, to point elsewhere), and not
# again when it exists.
find_library(GPERFTOOLS_PROFILER_LIBRARY profiler)
find_library(GPERFTOOLS_TCMALLOC_LIBRARY tcmalloc)
mark_as_advanced(GPERFTOOLS_PROFILER_LIBRARY GPERFTOOLS_TCMALLOC_LIBRARY)

if(GPERFTOOLS_PROFILER_LIBRARY AND NOT TARGET gperftools::profiler)
  add_library(gperftools::profiler UNKNOWN IMPORTED)
  set_target_properties(gperftools::profiler PROPERTIES IMPORTED_LOCATION "${GPERFTOOLS_PROFILER_LIBRARY}")
endif()
if(GPERFTOOLS_TCMALLOC_LIBRARY AND NOT TARGET gperftools::tcmalloc)
  add_library(gperftools::tcmalloc INTERFACE IMPORTED)
  set_target_properties(gperftools::tcmalloc PROPERTIES
    INTERFACE_LINK_LIBRARIES "-Wl,--no-as-needed;${GPERFTOOLS_TCMALLOC_LIBRARY};-Wl,--as-needed")
endif()
