#!/usr/bin/env bash
# Builds loupe and runs the whole test suite (unit, integration, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
BUILD_DIR=${LOUPE_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2 --timeout 300
