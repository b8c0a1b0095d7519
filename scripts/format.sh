#!/usr/bin/env bash
# Formats the tracked C++ sources (*.cpp, *.hpp under runtime, testkit,
# monitor, profiler, examples and tests) with clang-format-16 and the
# repository's .clang-format.
#   scripts/format.sh            rewrites the files in place
#   scripts/format.sh --check    changes nothing; exits 1, naming the files,
#                                when one is not formatted (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
FORMAT=${CLANG_FORMAT:-clang-format-16}
MODE=${1:-}
case "$MODE" in
  ""|--check) ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac
if ! command -v "$FORMAT" >/dev/null 2>&1; then
  echo "format: $FORMAT not found (apt-get install clang-format-16, or scripts/setup.sh clang-format-16)" >&2
  exit 2
fi

mapfile -t files < <(git ls-files -- runtime testkit monitor profiler examples tests | grep -E '\.(cpp|hpp)$')
if [ ${#files[@]} -eq 0 ]; then
  echo "format: no C++ sources found" >&2
  exit 2
fi

if [ "$MODE" != --check ]; then
  printf '%s\0' "${files[@]}" | xargs -0 -n 16 -P "$(nproc)" "$FORMAT" -i --style=file
  echo "format: formatted ${#files[@]} files"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  if ! "$FORMAT" --dry-run -Werror --style=file "$f" >/dev/null 2>&1; then bad+=("$f"); fi
done
if [ ${#bad[@]} -eq 0 ]; then
  echo "format: ${#files[@]} files formatted as .clang-format says"
  exit 0
fi
# The first file's complaints, for the log.
"$FORMAT" --dry-run -Werror --style=file "${bad[0]}" 2>&1 | head -n 20 >&2 || true
{
  echo "format: ${#bad[@]} of ${#files[@]} files are not formatted:"
  printf '  %s\n' "${bad[@]}"
  echo "format: run scripts/format.sh (clang-format-16) and commit the result"
} >&2
exit 1
