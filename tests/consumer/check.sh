#!/usr/bin/env bash
# Installs loupe from a build tree (cmake --install) into a temporary prefix,
# then configures, builds and tests this consumer project against it with
# find_package(loupe): headers, libraries and the package config as a user
# gets them.
#   tests/consumer/check.sh [loupe-build-dir]      (default: build)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/loupe-consumer.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cmake --install "$BUILD" --prefix "$WORK/prefix" >/dev/null
echo "installed: $(cd "$WORK/prefix" && find . -name '*.a' -o -name 'loupe-config*.cmake' | sort | tr '\n' ' ')"
cmake -S "$ROOT/tests/consumer" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$WORK/prefix" >/dev/null
cmake --build "$WORK/build" -j 2
ctest --test-dir "$WORK/build" --output-on-failure --timeout 120
