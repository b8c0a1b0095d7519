// The profiler's error codes: profiler_errc and its category ("loupe.profiler").
// A code's message is the whole sentence, so that what() of the
// std::system_error thrown with it reads as it did when it was a
// std::runtime_error.
#include <loupe/profiler/profiler.hpp>

#include <string>

namespace loupe::profiler {

namespace {

class profiler_category_impl : public std::error_category {
 public:
  const char* name() const noexcept override { return "loupe.profiler"; }
  std::string message(int ev) const override {
    switch (static_cast<profiler_errc>(ev)) {
      case profiler_errc::cpu_unavailable: return "CPU profiling is unavailable: loupe was built without gperftools";
      case profiler_errc::heap_unavailable: return "heap profiling is unavailable: loupe was built without tcmalloc";
      case profiler_errc::busy: return "a CPU profile is already being recorded";
    }
    return "unknown profiler error";
  }
};

}  // namespace

const std::error_category& profiler_category() noexcept {
  static const profiler_category_impl c;
  return c;
}
std::error_code make_error_code(profiler_errc e) noexcept { return {static_cast<int>(e), profiler_category()}; }

}  // namespace loupe::profiler
