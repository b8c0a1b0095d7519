// Names the frames of a native stack captured with backtrace(): function
// (demangled), file:line and the frames inlined into each, read from the
// binaries' DWARF debug information by libbacktrace (GCC's, in Debian's
// libgcc-12-dev), so static, anonymous-namespace and lambda frames are named
// too. A frame without debug information (a system library) is named from
// the symbol tables, with its offset and the file of its module.
//
//   #1 0x55d0c3a1b2c4 in std::this_thread::sleep_for<long, std::ratio<1l, 1000l> >(...) at .../this_thread_sleep.h:82 (inlined)
//   #2 0x55d0c3a1b2c4 in (anonymous namespace)::block(std::chrono::milliseconds) at /src/app/main.cpp:41
//
// Not async-signal-safe (it allocates and reads files): capture the raw
// frames in the signal handler, symbolize them later on another thread.
// Thread-safe; the first call reads the debug information (a few hundred ms
// for a large test binary), later calls reuse it.
#pragma once

#include <string>

namespace loupe::detail {

/// One line per frame (inlined frames included), each "  #N 0xADDR in ...\n".
/// `first_is_exact`: frames[0] is an interrupted instruction (a signal
/// handler's first caller frame), not a return address.
std::string symbolize(void* const* frames, int n, bool first_is_exact);

/// Reads the executable's debug information now (on the calling thread), so
/// that the next symbolize() is quick: about 0.2 s and 30 MB for a 100 MB
/// RelWithDebInfo binary.
void warm_up_symbolizer() noexcept;

/// Has the watchdog's thread call warm_up_symbolizer() in the background, so
/// that a process's first stall report is not delayed by it (run_app, when
/// the watchdog is on; a test reads the information when it first needs it).
/// Defined in watchdog.cpp.
void prepare_stack_names() noexcept;

}  // namespace loupe::detail
