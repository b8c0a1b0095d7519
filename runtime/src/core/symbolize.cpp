// Stack frames named from DWARF through libbacktrace; see symbolize.hpp.

#include "core/symbolize.hpp"

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cxxabi.h>
#include <dlfcn.h>
#include <pthread.h>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#if LOUPE_HAVE_LIBBACKTRACE
#include LOUPE_BACKTRACE_HEADER  // GCC's, by its path (see CMakeLists.txt)
#endif

namespace loupe::detail {

namespace {

constexpr std::size_t max_name = 200;

// "_Z…" demangled; anything else as it is; cut to max_name characters.
std::string readable(const char* name) {
  if (!name || !*name) return "??";
  std::string out;
  int status = -1;
  char* demangled = name[0] == '_' && name[1] == 'Z' ? abi::__cxa_demangle(name, nullptr, nullptr, &status) : nullptr;
  out = status == 0 && demangled ? demangled : name;
  std::free(demangled);
  // A GCC coroutine's body, "f(f(args)::_Z….Frame*) [clone .actor]": "f [coroutine]".
  if (const auto frame = out.find(".Frame*)");
      frame != std::string::npos && out.find("[clone .actor]") != std::string::npos) {
    int depth = 0;
    for (auto i = frame + 8; i-- > 0;) {
      if (out[i] == ')') ++depth;
      else if (out[i] == '(' && --depth == 0) {
        out = out.substr(0, i) + " [coroutine]";
        break;
      }
    }
  }
  if (out.size() > max_name) out = out.substr(0, max_name - 3) + "...";
  return out;
}

struct source_line {
  std::string function;
  std::string file;
  int line = 0;
};

// The symbol from the tables, "name+0x12", and the module, by dladdr (the
// fallback when libbacktrace has nothing or is not built in).
void describe_by_symbol(std::string& out, std::uintptr_t pc, std::string symbol, std::uintptr_t offset) {
  Dl_info info{};
  const bool found = ::dladdr(reinterpret_cast<void*>(pc), &info) != 0;
  if (symbol.empty() && found && info.dli_sname) {
    symbol = readable(info.dli_sname);
    offset = pc - reinterpret_cast<std::uintptr_t>(info.dli_saddr);
  }
  if (!symbol.empty()) out += fmt::format(" in {}+{:#x}", symbol, offset);
  if (found && info.dli_fname) out += fmt::format(" ({})", info.dli_fname);
}

#if LOUPE_HAVE_LIBBACKTRACE
// libbacktrace reads the debug information inside dl_iterate_phdr, holding
// the loader's lock for a few hundred ms. gperftools' CPU profiler unwinds
// with libunwind in its SIGPROF handler, which takes the same lock: a
// profiling signal on this thread while it holds it, with another thread's
// handler holding the profiler's own lock and waiting for the loader's,
// deadlocks the process. With SIGPROF blocked here the other handler only
// waits until the lock is released (once: later calls do not take it).
class profiling_signal_blocked {
 public:
  profiling_signal_blocked() noexcept {
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    ::pthread_sigmask(SIG_BLOCK, &prof, &saved_);
  }
  ~profiling_signal_blocked() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  profiling_signal_blocked(const profiling_signal_blocked&) = delete;
  profiling_signal_blocked& operator=(const profiling_signal_blocked&) = delete;

 private:
  sigset_t saved_;
};

backtrace_state* state() {
  // threaded = 1: the watchdog's and the console's threads may both ask.
  static backtrace_state* const s = backtrace_create_state(
      nullptr, 1, [](void*, const char*, int) {}, nullptr);
  return s;
}

struct symbol_found {
  std::string name;
  std::uintptr_t offset = 0;
};
#endif

}  // namespace

std::string symbolize(void* const* frames, int n, bool first_is_exact) {
#if LOUPE_HAVE_LIBBACKTRACE
  const profiling_signal_blocked no_sigprof;
#endif
  std::string out;
  int number = 0;
  for (int i = 0; i < n; ++i) {
    const auto pc = reinterpret_cast<std::uintptr_t>(frames[i]);
    // A return address is the instruction after the call: look up the call.
    const std::uintptr_t lookup = (i == 0 && first_is_exact) || pc == 0 ? pc : pc - 1;
    std::vector<source_line> lines;
#if LOUPE_HAVE_LIBBACKTRACE
    if (backtrace_state* s = state()) {
      backtrace_pcinfo(
          s, lookup,
          [](void* data, std::uintptr_t, const char* file, int line, const char* function) {
        if (file || function)
          static_cast<std::vector<source_line>*>(data)->push_back({readable(function), file ? file : "", line});
        return 0;
          },
          [](void*, const char*, int) {}, &lines);
    }
#endif
    std::string symbol;
    std::uintptr_t offset = 0;
#if LOUPE_HAVE_LIBBACKTRACE
    // The symbol holding the address: its (demangled) linkage name is the
    // qualified one, where DWARF often has only "operator()" or the bare name.
    if (backtrace_state* s = state()) {
      symbol_found found;
      backtrace_syminfo(
          s, lookup,
          [](void* data, std::uintptr_t at, const char* name, std::uintptr_t value, std::uintptr_t) {
        if (name) *static_cast<symbol_found*>(data) = {readable(name), at - value};
          },
          [](void*, const char*, int) {}, &found);
      symbol = std::move(found.name);
      offset = found.offset + (lookup != pc ? 1 : 0);
    }
#endif
    if (lines.empty()) {
      out += fmt::format("  #{} {:#x}", number++, pc);
      describe_by_symbol(out, pc, std::move(symbol), offset);
      out += "\n";
      continue;
    }
    if (!symbol.empty()) lines.back().function = std::move(symbol);
    // Innermost (inlined) first, the function that holds them last.
    for (std::size_t k = 0; k < lines.size(); ++k) {
      const source_line& l = lines[k];
      out += fmt::format("  #{} {:#x} in {}", number++, pc, l.function);
      if (!l.file.empty()) out += fmt::format(" at {}:{}", l.file, l.line);
      if (k + 1 < lines.size()) out += " (inlined)";
      out += "\n";
    }
  }
  return out;
}

void warm_up_symbolizer() noexcept {
#if LOUPE_HAVE_LIBBACKTRACE
  const profiling_signal_blocked no_sigprof;
  if (backtrace_state* s = state())
    backtrace_pcinfo(
        s, reinterpret_cast<std::uintptr_t>(&warm_up_symbolizer),
        [](void*, std::uintptr_t, const char*, int, const char*) { return 0; }, [](void*, const char*, int) {}, nullptr);
#endif
}

}  // namespace loupe::detail
