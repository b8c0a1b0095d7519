#!/usr/bin/env bash
# Builds and runs loupe-demo; arguments go to the demo (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh loupe-demo
exec "${LOUPE_BUILD_DIR:-build}/loupe-demo" "$@"
