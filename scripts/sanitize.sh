#!/usr/bin/env bash
# Builds the unit and integration tests with sanitizers and runs them (the
# end-to-end scripts and benchmark smoke runs stay with the main run).
#   scripts/sanitize.sh [address,undefined | thread]     (default address,undefined)
#   scripts/sanitize.sh address,undefined --build TARGET  (build one target, run nothing)
# The build goes to build-<sanitizers>/; any report fails the run.
#   address,undefined: clang-16, with libFuzzer's coverage hooks too, so that
#     the same tree builds the fuzz target (scripts/fuzz.sh); the tests are
#     then built by a second compiler (the main build is GCC's).
#   thread: GCC.
set -euo pipefail
cd "$(dirname "$0")/.."
SAN=${1:-address,undefined}
DIR=build-${SAN//,/-}
ONLY=
if [ "${2:-}" = --build ]; then ONLY=${3:?"--build needs a target"}; fi
case "$SAN" in
  address,undefined)
    # Debian 12's default clang-14 cannot compile std::source_location with
    # libstdc++ 12 (no __builtin_source_location); clang-16 can.
    scripts/setup.sh clang-16 libclang-rt-16-dev
    CONFIG=(-DCMAKE_CXX_COMPILER=clang++-16 -DLOUPE_SANITIZE=address,undefined,fuzzer-no-link -DLOUPE_BUILD_FUZZ=ON) ;;
  thread)
    scripts/setup.sh
    CONFIG=(-DLOUPE_SANITIZE=thread) ;;
  *) echo "sanitize.sh: unknown sanitizers '$SAN' (expected address,undefined or thread)" >&2; exit 2 ;;
esac
if [ ! -f "$DIR/build.ninja" ]; then
  # -O1 with line tables only: sanitizer builds at -O2 -g took 4x as long to compile on two cores.
  cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" \
    "${CONFIG[@]}" -DLOUPE_BUILD_EXAMPLES=OFF >/dev/null
fi
if [ -n "$ONLY" ]; then
  cmake --build "$DIR" -j 2 --target "$ONLY"
  exit 0
fi
cmake --build "$DIR" -j 2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
# Profiler tests need gperftools, which the sanitizers' allocators exclude; the
# package check links an uninstrumented consumer against the installed libraries.
ctest --test-dir "$DIR" --output-on-failure -j 2 --timeout 300 -E '^(e2e|bench|package)\.|^Profiler'
