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
# --debug-endpoints, and 404 on the application's port with it; stderr stays
# one JSON record per line after profiles. Prints what it
# ran, PASS/FAIL per check and a summary; exits non-zero on a failure (2: a
# tool is missing). Every wait is bounded.
set -u

DEMO="${1:?usage: profiler_e2e.sh /path/to/loupe-demo}"
source "$(dirname "$0")/lib.sh"
e2e_init profiler_e2e curl nc google-pprof timeout

# ---- endpoints off by default -------------------------------------------------
demo_start off || die "off did not start: $DEMO_START_ERROR"
CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=1")
[[ "$CODE" == 404 ]] && pass "the debug endpoints are off without --debug-endpoints" || fail "endpoints off by default" "got $CODE"
demo_stop

# ---- CPU profile over HTTP while /cpu is busy ------------------------------------
demo_start on TCMALLOC_SAMPLE_PARAMETER=524288 --debug-endpoints --profile-dir "$TMP" || die "on did not start: $DEMO_START_ERROR"
CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/debug/pprof/heap")
[[ "$CODE" == 404 ]] && pass "the application's port never serves the debug endpoints" || fail "not on the app port" "got $CODE"
( end=$((SECONDS + 8)); while ((SECONDS < end)); do curl -s -m 10 -o /dev/null "http://127.0.0.1:$PORT/cpu?ms=20"; done ) &
LOAD=$!
echo "+ curl -o cpu.prof 'http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=3'"
curl -s -m 20 -o "$TMP/cpu.prof" -w '%{http_code}' "http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=3" >"$TMP/cpu.code" &
PROF=$!
sleep 1
CODE=$(curl -s -m 10 -o "$TMP/second.txt" -w '%{http_code}' "http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=1")
[[ "$CODE" == 409 ]] && pass "a second profile while one runs gets 409" || fail "409 for a second profile" "got $CODE"
CODE=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")
[[ "$CODE" == 200 ]] && pass "the loop keeps serving while the profile records" || fail "serving during a profile" "got $CODE"
wait_exit "$PROF" 25
kill_tree "$LOAD"
echo "+ google-pprof --text $DEMO cpu.prof"
google-pprof --text "$DEMO" "$TMP/cpu.prof" >"$TMP/cpu.txt" 2>"$TMP/cpu.pprof.err"
head -8 "$TMP/cpu.txt"
if [[ "$(cat "$TMP/cpu.code")" == 200 ]] && head -6 "$TMP/cpu.txt" | grep -q demo_burn_cpu; then
  pass "google-pprof --text finds demo_burn_cpu among the top entries"
else
  fail "demo_burn_cpu among the top entries" "status $(cat "$TMP/cpu.code"); $(head -3 "$TMP/cpu.pprof.err")"
fi
CODE=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/debug/pprof/profile?seconds=0")
[[ "$CODE" == 400 ]] && pass "seconds out of range is 400" || fail "seconds=0 is 400" "got $CODE"

# ---- heap ----------------------------------------------------------------------
curl -s -m 20 -o "$TMP/heap.prof" "http://127.0.0.1:$MPORT/debug/pprof/heap"
echo "+ google-pprof --text $DEMO heap.prof"
if google-pprof --text "$DEMO" "$TMP/heap.prof" >"$TMP/heap.txt" 2>&1; then
  head -4 "$TMP/heap.txt"; pass "google-pprof reads the heap profile"
else
  fail "google-pprof reads the heap profile" "$(head -3 "$TMP/heap.txt")"
fi

# ---- the console's profile command -------------------------------------------------
( end=$((SECONDS + 3)); while ((SECONDS < end)); do curl -s -m 10 -o /dev/null "http://127.0.0.1:$PORT/cpu?ms=20"; done ) &
LOAD=$!
console "profile 1" >"$TMP/console.txt"
kill_tree "$LOAD"
cat "$TMP/console.txt"
FILE=$(grep -o "written to [^ ]*\.prof" "$TMP/console.txt" | sed 's/written to //')
if [[ -n "$FILE" && -s "$FILE" ]] && google-pprof --text "$DEMO" "$FILE" >/dev/null 2>&1; then
  pass "the console's profile command writes a profile google-pprof reads"
else
  fail "console profile" "file '$FILE'"
fi
demo_stop
# After two CPU profiles stderr is still one JSON record per line: gperftools'
# "PROFILE: interrupts/evictions/bytes = ..." became a record of its own.
NOT_JSON=$(grep -cv '^{.*}$' "$DEMO_ERR")
STOPPED=$(grep -c '"event":"cpu_profile_stopped"' "$DEMO_ERR")
if [[ "$NOT_JSON" == 0 && "$STOPPED" -ge 2 ]] && ! grep -q '^PROFILE:' "$DEMO_ERR"; then
  pass "stderr stays one JSON record per line; each profile's figures are a cpu_profile_stopped record"
else
  fail "stderr is JSON lines" "$NOT_JSON other line(s), $STOPPED cpu_profile_stopped record(s): $(grep -v '^{' "$DEMO_ERR" | head -2)"
fi

# ---- the whole run, flushed on SIGTERM ------------------------------------------------
demo_start whole LOUPE_CPUPROFILE="$TMP/run.prof" || die "whole did not start: $DEMO_START_ERROR"
for _ in $(seq 40); do curl -s -m 10 -o /dev/null "http://127.0.0.1:$PORT/cpu?ms=20"; done
demo_stop 20
EXIT=$EXIT_CODE
echo "+ LOUPE_CPUPROFILE=run.prof loupe-demo ...; kill -TERM: exit $EXIT"
if [[ $EXIT == 0 && -s "$TMP/run.prof" ]] && google-pprof --text "$DEMO" "$TMP/run.prof" >"$TMP/run.txt" 2>&1 &&
   grep -q demo_burn_cpu "$TMP/run.txt"; then
  head -3 "$TMP/run.txt"; pass "LOUPE_CPUPROFILE gives a readable whole-run profile after SIGTERM"
else
  fail "LOUPE_CPUPROFILE after SIGTERM" "exit $EXIT, $(wc -c <"$TMP/run.prof" 2>/dev/null) bytes, $(head -2 "$TMP/run.txt" 2>/dev/null)"
fi

summary
