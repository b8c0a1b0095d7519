#!/usr/bin/env bash
# Builds loupe and runs the whole test suite (unit, integration, end-to-end),
# then the unit and integration tests again built with ASan+UBSan (clang) and
# with TSan (GCC), and a one-minute libFuzzer run on the request path. The
# sources' formatting (scripts/format.sh --check) is checked first.
#   LOUPE_SANITIZERS=off scripts/test.sh     skips the sanitizer builds and the fuzz run
#                                            (about 10 of the 15 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/format.sh --check   # formatting is checked first: it fails in seconds, not after the build
scripts/build.sh
BUILD_DIR=${LOUPE_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2 --timeout 300
if [ "${LOUPE_SANITIZERS:-on}" != off ]; then
  scripts/sanitize.sh address,undefined
  scripts/fuzz.sh 60
  scripts/sanitize.sh thread
fi
