#!/usr/bin/env bash
# Builds the request-path fuzz target (tests/fuzz/request_fuzz.cpp) with
# clang, libFuzzer, ASan and UBSan, and runs it for a bounded time from the
# seed corpus. Any finding (crash, sanitizer report, hang, 500, a file served
# from outside the static root) fails the run and leaves the input in
# build-address-undefined/findings/.
#   scripts/fuzz.sh [seconds]      (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
# The ASan+UBSan tree (clang-16, libFuzzer's coverage hooks): see sanitize.sh.
DIR=build-address-undefined
scripts/sanitize.sh address,undefined --build loupe_fuzz_request
# The corpus grows in the build tree; the seeds in the repository stay as they are.
rm -rf "$DIR/findings"
mkdir -p "$DIR/corpus" "$DIR/findings"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
"$DIR/loupe_fuzz_request" "$DIR/corpus" tests/fuzz/seeds \
  -dict=tests/fuzz/http.dict -max_len=8192 -timeout=20 -rss_limit_mb=4096 \
  -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 \
  -artifact_prefix="$DIR/findings/" >"$DIR/fuzz.log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
  tail -n 80 "$DIR/fuzz.log" >&2
  echo "fuzz: FINDING (exit $rc; input saved in $DIR/findings/, whole log in $DIR/fuzz.log)" >&2
  exit 1
fi
grep -E '^#[0-9]+.*(INITED|DONE)' "$DIR/fuzz.log" || true
grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$DIR/fuzz.log" || true
echo "fuzz: no findings in $SECONDS_TO_RUN s"
