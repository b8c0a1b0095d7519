#!/usr/bin/env bash
# Installs loupe from a build tree (cmake --install) into a temporary prefix
# and checks the package as a user gets it:
#   1. its CMake files name no absolute path (gperftools' libraries, say, are
#      found by loupe-config.cmake where loupe is used, not named by the path
#      they had here);
#   2. the prefix is moved elsewhere; everything below uses the moved one;
#   3. tests/consumer: find_package(loupe), a tiny app and its test with the
#      test kit (loupe::runtime, loupe::testkit), configured, built and run;
#   4. the same project with GTest hidden from CMake
#      (-DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON) fails to configure: the switch
#      does hide GTest (this machine has it, for 3);
#   5. tests/consumer/runtime_only with GTest hidden:
#      find_package(loupe COMPONENTS runtime monitor), then profiler, and
#      programs with the console and the profiler, configured, built and run;
#      linked with gperftools' libraries when loupe::profiler names them.
#   Also: share/loupe/gdb/loupe.py is installed and loads into gdb.
#   tests/consumer/check.sh [loupe-build-dir]      (default: build)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/loupe-consumer.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null
echo "installed: $(cd "$WORK/prefix" && find . -name '*.a' -o -name 'loupe*.cmake' | sort | tr '\n' ' ')"
# The gdb commands come with the package, and load into gdb.
gdbpy="$WORK/prefix/share/loupe/gdb/loupe.py"
[[ -f "$gdbpy" ]] || fail "no share/loupe/gdb/loupe.py installed"
if command -v gdb >/dev/null; then
  gdb -batch -nx -x "$gdbpy" -ex 'help loupe' 2>&1 | grep -q 'loupe tasks' || fail "the installed loupe.py does not load into gdb"
  echo "the installed share/loupe/gdb/loupe.py loads into gdb (help loupe)"
fi
config="$(find "$WORK/prefix" -name loupe-config.cmake)"
[[ -n "$config" ]] || fail "no loupe-config.cmake installed"
pkg="$(dirname "$config")"

# 1. An absolute path starts a quoted string or a list item ("/usr/lib/...",
#    ;/usr/lib/..., $<LINK_ONLY:/usr/lib/...>); the file's own prefix is
#    ${_IMPORT_PREFIX} / ${PACKAGE_PREFIX_DIR}, computed where it is.
echo "checking for absolute paths in: $(cd "$pkg" && echo *.cmake)"
if grep -nE '(^|[";:[:space:]])/[[:alnum:]_.~+-]' "$pkg"/*.cmake | grep -v '^[^:]*:[0-9]*:[[:space:]]*#'; then
  fail "absolute paths in the installed CMake files (above)"
fi
if grep -nF -e "$ROOT" -e "$BUILD" -e "$WORK" "$pkg"/*.cmake; then
  fail "the build's or the install's paths in the installed CMake files (above)"
fi

# 2. Moved: nothing may still point at the prefix it was installed to.
mkdir "$WORK/elsewhere"
mv "$WORK/prefix" "$WORK/elsewhere/loupe"
PREFIX="$WORK/elsewhere/loupe"
pkg="$PREFIX/${pkg#"$WORK/prefix/"}"
echo "moved the prefix to $PREFIX"

# 3. Everything, with the test kit.
cmake -S "$ROOT/tests/consumer" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$PREFIX" >/dev/null
cmake --build "$WORK/build" -j 2
ctest --test-dir "$WORK/build" --output-on-failure --timeout 120

# 4. The control: with GTest hidden, a user of the test kit cannot configure.
if cmake -S "$ROOT/tests/consumer" -B "$WORK/build-hidden" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON >"$WORK/hidden.log" 2>&1; then
  fail "tests/consumer configured with -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON: GTest is not hidden"
fi
grep -q GTest "$WORK/hidden.log" || { cat "$WORK/hidden.log"; fail "tests/consumer failed without naming GTest"; }
echo "with GTest hidden, tests/consumer (the test kit) does not configure, as it must not"

# 5. The runtime, the console and the profiler, GTest hidden.
cmake -S "$ROOT/tests/consumer/runtime_only" -B "$WORK/build-runtime-only" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON \
  >"$WORK/runtime-only.log" 2>&1 || { cat "$WORK/runtime-only.log"; fail "tests/consumer/runtime_only did not configure"; }
# CMake reads CMAKE_DISABLE_FIND_PACKAGE_GTest in find_package(GTest) only: it
# says it was unused when nothing looked for GTest at all.
grep -q "CMAKE_DISABLE_FIND_PACKAGE_GTest" "$WORK/runtime-only.log" ||
  { cat "$WORK/runtime-only.log"; fail "find_package(loupe COMPONENTS runtime monitor) or profiler looked for GTest"; }
echo "with GTest hidden, tests/consumer/runtime_only configures, and nothing looked for GTest"
cmake --build "$WORK/build-runtime-only" -j 2
ctest --test-dir "$WORK/build-runtime-only" --output-on-failure --timeout 120
needed="$(readelf -d "$WORK/build-runtime-only/profiled_hello" | grep NEEDED || true)"
for lib in profiler tcmalloc; do
  if grep -q "gperftools::$lib" "$pkg/loupe-profiler-targets.cmake"; then
    grep -q "lib$lib\.so" <<<"$needed" || fail "profiled_hello is not linked with lib$lib: $needed"
    echo "profiled_hello is linked with lib$lib, found by loupe-config.cmake here"
  fi
done
