#!/usr/bin/env bash
# Runs clang-tidy-16 with the repository's .clang-tidy over the library
# sources (runtime, monitor, profiler, testkit; their own headers are checked
# through the files that include them) and prints the findings, then a count
# per check. Exits 1 when there is any finding. Not part of CI (slow).
#   scripts/tidy.sh [build-dir [file...]]   (default: build, or $LOUPE_BUILD_DIR; all the files)
# The build directory only has to be configured (cmake writes
# compile_commands.json; scripts/build.sh does that) and is only read: its
# compile commands are copied to .cache/tidy/ with CMake's precompiled header
# (GCC's, which clang cannot read) replaced by runtime/src/pch.hpp itself, and
# with the sources of the checkout it was configured from mapped to this one
# (so a build directory of another worktree will do).
# Time: the 44 files take about 11 CPU-minutes (15 s to 1 min each): some
# 6 minutes on two idle cores, 23 measured on a busy two-core machine. JOBS=N
# sets how many clang-tidy processes run at once (default: the CPU count).
set -euo pipefail
cd "$(dirname "$0")/.."
HERE=$PWD
BUILD_DIR=${1:-${LOUPE_BUILD_DIR:-build}}
shift $(( $# > 0 ? 1 : 0 ))
TIDY=${CLANG_TIDY:-clang-tidy-16}
JOBS=${JOBS:-$(nproc)}

if ! command -v "$TIDY" >/dev/null 2>&1; then
  echo "tidy: $TIDY not found (apt-get install clang-tidy-16, or scripts/setup.sh clang-tidy-16)" >&2
  exit 2
fi
if [ ! -f "$BUILD_DIR/compile_commands.json" ]; then
  echo "tidy: no $BUILD_DIR/compile_commands.json; configure first (scripts/build.sh, or cmake -S . -B $BUILD_DIR -G Ninja)" >&2
  exit 2
fi
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
SOURCE_ROOT=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
SOURCE_ROOT=${SOURCE_ROOT:-$HERE}

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files 'runtime/src/*.cpp' 'monitor/src/*.cpp' 'profiler/src/*.cpp' 'testkit/src/*.cpp')
fi
DB_DIR=$HERE/.cache/tidy
mkdir -p "$DB_DIR"
# Writes the rewritten database and prints the files of ours that it lacks.
python3 - "$BUILD_DIR" "$SOURCE_ROOT" "$HERE" "$DB_DIR/compile_commands.json" "${files[@]}" <<'EOF'
import json, os, shlex, sys
build, src, here, out, *files = sys.argv[1:]
def under(p, root): return p == root or p.startswith(root.rstrip("/") + "/")
def mapped(p):
    if under(p, build) or not under(p, src): return p
    return os.path.join(here, os.path.relpath(p, src))
wanted = {os.path.normpath(os.path.join(here, f)) for f in files}
entries, seen = [], set()
for e in json.load(open(os.path.join(build, "compile_commands.json"))):
    args = e.get("arguments") or shlex.split(e["command"])
    f = mapped(os.path.normpath(os.path.join(e["directory"], e["file"])))
    if f not in wanted or f in seen: continue
    seen.add(f)
    new, i = [], 0
    while i < len(args):
        a = args[i]
        if a == "-include" and i + 1 < len(args) and args[i + 1].endswith("cmake_pch.hxx"):
            new += ["-include", os.path.join(here, "runtime/src/pch.hpp")]; i += 2; continue
        if a == "-Winvalid-pch": i += 1; continue
        if a.startswith("-I"): a = "-I" + mapped(a[2:])
        elif a == e["file"] or os.path.normpath(os.path.join(e["directory"], a)) == os.path.normpath(os.path.join(e["directory"], e["file"])): a = f
        new.append(a); i += 1
    entries.append({"directory": e["directory"], "file": f, "arguments": new})
json.dump(entries, open(out, "w"), indent=1)
for f in sorted(wanted - seen): print("tidy: not in the compile database, skipped: " + os.path.relpath(f, here), file=sys.stderr)
print("\n".join(sorted(seen)), file=open(out + ".files", "w"))
EOF

LOG=$DB_DIR/tidy.log
start=$(date +%s)
# One clang-tidy per file; a header included by several files is reported once.
xargs -a "$DB_DIR/compile_commands.json.files" -d '\n' -P "$JOBS" -n 1 \
  "$TIDY" -p "$DB_DIR" --quiet >"$LOG" 2>&1 || true
elapsed=$(( $(date +%s) - start ))
if grep -q 'error: .*\[clang-diagnostic-error\]' "$LOG"; then
  grep -B2 -A3 '\[clang-diagnostic-error\]' "$LOG" | head -40 >&2
  echo "tidy: some files did not compile for clang-tidy (whole log in $LOG)" >&2
  exit 2
fi
findings=$(grep -E '^/.*:[0-9]+:[0-9]+: warning: .*\[[a-z0-9.,-]+\]$' "$LOG" | sort -u || true)
if [ -z "$findings" ]; then
  echo "tidy: no findings in $(wc -l <"$DB_DIR/compile_commands.json.files") files (${elapsed} s)"
  exit 0
fi
# Each finding with its source line and caret, once.
awk '/^\/.*:[0-9]+:[0-9]+: warning: .*\]$/ { if (seen[$0]++) { skip = 1; next } skip = 0; print; n = 2; next }
     n > 0 && !skip { print; n-- }' "$LOG" | sed "s|^$HERE/||"
echo
echo "tidy: $(echo "$findings" | wc -l) finding(s) in $(wc -l <"$DB_DIR/compile_commands.json.files") files (${elapsed} s), by check:"
echo "$findings" | sed -E 's/.*\[([^]]+)\]$/\1/' | sort | uniq -c | sort -rn
exit 1
