#!/usr/bin/env bash
# monitor_e2e.sh — the monitor console driven by real clients (telnet and nc)
# against a running loupe-demo.
#
#   bash tests/e2e/monitor_e2e.sh build/loupe-demo
#
# With a request stuck in GET /sleep?ms=60000: `ps` lists its task with the
# route and the timer wait, `where` shows the demo's source file and the line
# of the co_await, `cancel` ends it (the HTTP client's request ends within a
# second, with 503) and `ps-terminated` shows it cancelled by the console.
# While GET /block?ms=2000 holds the loop, the console still answers `ps` and
# `stacktrace` (before the blocked request completes), and `stacktrace` names
# the blocking handler. Also: --json output parses, and a non-loopback
# --monitor-host is refused at start-up. Prints the transcript, `PASS`/`FAIL`
# per check and a summary; exits non-zero on any failure (2: a tool is missing).
# Every wait is bounded.
set -u

DEMO="${1:?usage: monitor_e2e.sh /path/to/loupe-demo}"
DEMO_SRC="$(cd "$(dirname "$0")/../.." && pwd)/examples/demo/main.cpp"
source "$(dirname "$0")/lib.sh"
e2e_init monitor_e2e curl nc telnet python3 timeout

now() { date +%s.%N; }

demo_start demo --log-format text || die "the demo did not start: $DEMO_START_ERROR"

# ---- a stuck request --------------------------------------------------------
( curl -s -m 70 -o "$TMP/sleep.body" -w '%{http_code}' "http://127.0.0.1:$PORT/sleep?ms=60000" >"$TMP/sleep.code"
  now >"$TMP/sleep.ended" ) &
ID=""
for _ in $(seq 50); do
  ID=$(console "ps /sleep" | awk '$6 == "http.request" {print $1; exit}')
  [[ -n "$ID" ]] && break
  sleep 0.1
done
[[ -n "$ID" ]] || die "the /sleep request never showed up in ps"

# A real telnet client: ps and where.
{ sleep 0.5; echo "ps"; sleep 0.5; echo "where $ID"; sleep 0.5; echo "quit"; sleep 0.5; } |
  timeout 10 telnet 127.0.0.1 "$MPORT" >"$TMP/telnet.txt" 2>&1
echo "---- telnet session ----"; cat "$TMP/telnet.txt"
SLEEP_LINE=$(grep -n 'co_await loupe::sleep_for' "$DEMO_SRC" | head -1 | cut -d: -f1)
check "ps lists the stuck request's task" "$TMP/telnet.txt" "^ +$ID +main +suspended .*http\.request +async_wait on deadline_timer +main\.cpp:$SLEEP_LINE +GET /sleep\?ms=60000 \(route /sleep\)"
check "where shows the co_await's file and line" "$TMP/telnet.txt" "at: +.*examples/demo/main\.cpp:$SLEEP_LINE\$"
check "where shows the wait" "$TMP/telnet.txt" "waiting for: +async_wait on deadline_timer"
check "where shows the spawn site and parents" "$TMP/telnet.txt" "#[0-9]+ 'http\.connection' suspended"
check "where shows the request" "$TMP/telnet.txt" "request: +GET /sleep\?ms=60000 \(route /sleep\) request_id=[0-9a-f]{32}"

# Cancel it through nc; the HTTP client must see its request end within a second.
BEFORE=$(now)
console "cancel $ID" "ps-terminated" "where-terminated $ID" >"$TMP/cancel.txt"
echo "---- nc session ----"; cat "$TMP/cancel.txt"
wait_until 3 test -s "$TMP/sleep.ended"
check "cancel reports the outcome" "$TMP/cancel.txt" "task #$ID 'http\.request' ended: cancelled by console"
check "ps-terminated shows it cancelled by the console" "$TMP/cancel.txt" "^ +$ID +main +http\.request .* cancelled by console +GET /sleep"
check "where-terminated shows the last wait" "$TMP/cancel.txt" "last wait: +async_wait on deadline_timer at .*main\.cpp:$SLEEP_LINE"
if [[ -s "$TMP/sleep.ended" ]]; then
  ELAPSED=$(python3 -c "print(round($(cat "$TMP/sleep.ended") - $BEFORE, 3))")
  echo "the HTTP client's request ended ${ELAPSED}s after the cancel was sent, status $(cat "$TMP/sleep.code")"
  if python3 -c "import sys; sys.exit(0 if $ELAPSED < 1.0 else 1)"; then pass "the client's request ended within a second"
  else fail "the client's request ended within a second" "${ELAPSED}s"; fi
  check "the client got 503" "$TMP/sleep.code" "^503$"
else
  fail "the client's request ended" "curl still running 3 s after the cancel"
fi

# ---- a blocked loop -----------------------------------------------------------
( curl -s -m 15 -o /dev/null "http://127.0.0.1:$PORT/block?ms=2000"; now >"$TMP/block.ended" ) &
BLOCK_PID=$!
sleep 0.3
console "ps" "stacktrace" >"$TMP/block.txt"
echo "---- console while the loop is blocked ----"; cat "$TMP/block.txt"
# The stack was taken while the callback had run for less than its 2 s: the
# console answered during the block, not after it.
RAN=$(grep -o "running a callback of task #[0-9]* 'http.request' for [0-9]*ms" "$TMP/block.txt" | grep -o '[0-9]*ms$' | tr -d ms)
if [[ -n "$RAN" && "$RAN" -lt 2000 ]]; then
  pass "the console answered while the loop was still blocked (${RAN} ms into the 2000 ms callback)"
else
  fail "the console answered while the loop was still blocked" "callback time '${RAN}'"
fi
check "ps answered during the block" "$TMP/block.txt" "http\.request .*GET /block\?ms=2000 \(route /block\)"
check "stacktrace says which task's callback runs" "$TMP/block.txt" "loop 'main': running a callback of task #[0-9]+ 'http\.request' for"
check "stacktrace names the blocking handler" "$TMP/block.txt" "demo_block_loop"
wait_exit "$BLOCK_PID" 15

# ---- JSON for scripts ---------------------------------------------------------
console "ps --json" "loops --json" | grep '^loupe> \[' | sed 's/^loupe> //' >"$TMP/json.txt"
if python3 -c "
import json, sys
lines = open('$TMP/json.txt').read().splitlines()
ps, loops = json.loads(lines[0]), json.loads(lines[1])
assert any(t['name'] == 'http.accept' and t['wait']['operation'] == 'async_accept' for t in ps), ps
assert loops[0]['loop'] == 'main' and 'lag_p99_ms' in loops[0], loops
"; then pass "ps --json and loops --json parse"; else fail "ps --json and loops --json parse" "$(cat "$TMP/json.txt")"; fi

# ---- a non-loopback console is refused ------------------------------------------
timeout 10 "$DEMO" --port 0 --monitor-host 0.0.0.0 --monitor-port 0 >"$TMP/remote.out" 2>"$TMP/remote.err"
CODE=$?
if [[ $CODE -eq 2 ]] && grep -q "not a loopback address" "$TMP/remote.err" &&
   ! grep -q "Running on" "$TMP/remote.out"; then pass "a non-loopback console is refused before anything binds (exit 2)"
else fail "a non-loopback console is refused at start-up" "exit $CODE: $(tail -2 "$TMP/remote.err")"; fi

summary
