#!/usr/bin/env bash
# Builds the unit and integration tests with sanitizers and runs them (the
# end-to-end scripts and benchmark smoke runs stay with the main run).
#   scripts/sanitize.sh [address,undefined | thread]     (default address,undefined)
# The build goes to build-<sanitizers>/; any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
SAN=${1:-address,undefined}
DIR=build-${SAN//,/-}
scripts/setup.sh
if [ ! -f "$DIR/build.ninja" ]; then
  # -O1 with line tables only: sanitizer builds at -O2 -g took 4x as long to compile on two cores.
  cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" \
    -DLOUPE_SANITIZE="$SAN" -DLOUPE_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build "$DIR" -j 2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
# Profiler tests need gperftools, which the sanitizers' allocators exclude; the
# package check links an uninstrumented consumer against the installed libraries.
ctest --test-dir "$DIR" --output-on-failure -j 2 --timeout 300 -E '^(e2e|bench|package)\.|^Profiler'
