#!/usr/bin/env bash
# profiler_e2e.sh — CPU and heap profiles from loupe-demo, read by google-pprof.
#
#   bash tests/e2e/profiler_e2e.sh build/loupe-demo
#
# The endpoints are on the console's listener (--monitor-port), never on the
# application's port. A CPU profile taken from GET /debug/pprof/profile while
# GET /cpu?ms=20 is requested in a loop has demo_burn_cpu among
# google-pprof's top entries; a second profile request meanwhile gets 409 and
# the loop keeps serving; the heap profile is read by google-pprof; the
# console's `profile 1` writes a readable file; LOUPE_CPUPROFILE gives a
# readable whole-run profile after SIGTERM; the endpoints are 404 without
# --debug-endpoints, and 404 on the application's port with it. Prints what it
# ran, PASS/FAIL per check and a summary; exits non-zero on a failure (2: a
# tool is missing). Every wait is bounded.
set -u

DEMO="${1:?usage: profiler_e2e.sh /path/to/loupe-demo}"
for tool in curl nc google-pprof timeout; do
  command -v "$tool" >/dev/null || { echo "profiler_e2e: required tool missing: $tool" >&2; exit 2; }
done
TMP="$(mktemp -d "${TMPDIR:-/tmp}/profiler_e2e.XXXXXX")"
PIDS=()
PASSED=0
FAILED=0
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  jobs -p | xargs -r kill 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1 ($2)"; FAILED=$((FAILED + 1)); }

# start NAME ARGS...: runs the demo; sets HPORT and MPORT.
start() {
  local name=$1; shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  PIDS+=($!)
  LAST_PID=$!
  for _ in $(seq 100); do grep -q "Monitor console on" "$TMP/$name.out" 2>/dev/null && break; sleep 0.1; done
  HPORT=$(grep -o 'Running on http://127.0.0.1:[0-9]*' "$TMP/$name.out" | grep -o '[0-9]*$')
  MPORT=$(grep -o 'Monitor console on 127.0.0.1:[0-9]*' "$TMP/$name.out" | grep -o '[0-9]*$')
  [[ -n "$HPORT" ]] || { echo "profiler_e2e: $name did not start"; cat "$TMP/$name.out" "$TMP/$name.err"; exit 1; }
}

# ---- endpoints off by default -------------------------------------------------
start off "$DEMO" --port 0 --monitor-port 0
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=1")
[[ "$CODE" == 404 ]] && pass "the debug endpoints are off without --debug-endpoints" || fail "endpoints off by default" "got $CODE"
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null

# ---- CPU profile over HTTP while /cpu is busy ------------------------------------
start on env TCMALLOC_SAMPLE_PARAMETER=524288 "$DEMO" --port 0 --monitor-port 0 --debug-endpoints --profile-dir "$TMP"
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/debug/pprof/heap")
[[ "$CODE" == 404 ]] && pass "the application's port never serves the debug endpoints" || fail "not on the app port" "got $CODE"
( end=$((SECONDS + 8)); while ((SECONDS < end)); do curl -s -o /dev/null "http://127.0.0.1:$HPORT/cpu?ms=20"; done ) &
LOAD=$!
echo "+ curl -o cpu.prof 'http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=3'"
curl -s -o "$TMP/cpu.prof" -w '%{http_code}' "http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=3" >"$TMP/cpu.code" &
PROF=$!
sleep 1
CODE=$(curl -s -o "$TMP/second.txt" -w '%{http_code}' "http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=1")
[[ "$CODE" == 409 ]] && pass "a second profile while one runs gets 409" || fail "409 for a second profile" "got $CODE"
CODE=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPORT/")
[[ "$CODE" == 200 ]] && pass "the loop keeps serving while the profile records" || fail "serving during a profile" "got $CODE"
wait "$PROF"
kill "$LOAD" 2>/dev/null; wait "$LOAD" 2>/dev/null
echo "+ google-pprof --text $DEMO cpu.prof"
google-pprof --text "$DEMO" "$TMP/cpu.prof" >"$TMP/cpu.txt" 2>"$TMP/cpu.pprof.err"
head -8 "$TMP/cpu.txt"
if [[ "$(cat "$TMP/cpu.code")" == 200 ]] && head -6 "$TMP/cpu.txt" | grep -q demo_burn_cpu; then
  pass "google-pprof --text finds demo_burn_cpu among the top entries"
else
  fail "demo_burn_cpu among the top entries" "status $(cat "$TMP/cpu.code"); $(head -3 "$TMP/cpu.pprof.err")"
fi
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=0")
[[ "$CODE" == 400 ]] && pass "seconds out of range is 400" || fail "seconds=0 is 400" "got $CODE"

# ---- heap ----------------------------------------------------------------------
curl -s -o "$TMP/heap.prof" "http://127.0.0.1:$MPORT/debug/pprof/heap"
echo "+ google-pprof --text $DEMO heap.prof"
if google-pprof --text "$DEMO" "$TMP/heap.prof" >"$TMP/heap.txt" 2>&1; then
  head -4 "$TMP/heap.txt"; pass "google-pprof reads the heap profile"
else
  fail "google-pprof reads the heap profile" "$(head -3 "$TMP/heap.txt")"
fi

# ---- the console's profile command -------------------------------------------------
( end=$((SECONDS + 3)); while ((SECONDS < end)); do curl -s -o /dev/null "http://127.0.0.1:$HPORT/cpu?ms=20"; done ) &
LOAD=$!
printf 'profile 1\nquit\n' | timeout 15 nc -q 5 127.0.0.1 "$MPORT" >"$TMP/console.txt"
kill "$LOAD" 2>/dev/null; wait "$LOAD" 2>/dev/null
cat "$TMP/console.txt"
FILE=$(grep -o "written to [^ ]*\.prof" "$TMP/console.txt" | sed 's/written to //')
if [[ -n "$FILE" && -s "$FILE" ]] && google-pprof --text "$DEMO" "$FILE" >/dev/null 2>&1; then
  pass "the console's profile command writes a profile google-pprof reads"
else
  fail "console profile" "file '$FILE'"
fi
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null

# ---- the whole run, flushed on SIGTERM ------------------------------------------------
start whole env LOUPE_CPUPROFILE="$TMP/run.prof" "$DEMO" --port 0 --monitor-port 0
for _ in $(seq 40); do curl -s -o /dev/null "http://127.0.0.1:$HPORT/cpu?ms=20"; done
kill -TERM "$LAST_PID"
EXIT=0
wait "$LAST_PID" || EXIT=$?
echo "+ LOUPE_CPUPROFILE=run.prof loupe-demo ...; kill -TERM: exit $EXIT"
if [[ $EXIT -eq 0 && -s "$TMP/run.prof" ]] && google-pprof --text "$DEMO" "$TMP/run.prof" >"$TMP/run.txt" 2>&1 &&
   grep -q demo_burn_cpu "$TMP/run.txt"; then
  head -3 "$TMP/run.txt"; pass "LOUPE_CPUPROFILE gives a readable whole-run profile after SIGTERM"
else
  fail "LOUPE_CPUPROFILE after SIGTERM" "exit $EXIT, $(wc -c <"$TMP/run.prof" 2>/dev/null) bytes, $(head -2 "$TMP/run.txt" 2>/dev/null)"
fi

echo "profiler_e2e: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
