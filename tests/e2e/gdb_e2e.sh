#!/usr/bin/env bash
# gdb_e2e.sh — the gdb commands (monitor/gdb/loupe.py) read a running
# loupe-demo's task registry from its memory, and a core file's:
#
#   bash tests/e2e/gdb_e2e.sh build/loupe-demo
#
# With GET /sleep?ms=15000 suspended, `gdb -p PID` runs `loupe tasks` (the
# request's task, its timer wait at the demo's co_await file:line, the
# request and route) and `loupe where ID` (the wait, the parents). Then, while
# GET /block?ms=3000 holds the loop thread, gcore writes a core, and gdb on
# that core says the loop runs a callback of the blocking request's task and
# still lists the suspended one. The demo goes on serving after gdb detaches.
# Prints the transcripts, `PASS`/`FAIL` per check and a summary; exits non-zero
# on any failure (2: a tool is missing). Every wait is bounded.
set -u

DEMO="${1:?usage: gdb_e2e.sh /path/to/loupe-demo}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SCRIPT="$ROOT/monitor/gdb/loupe.py"
DEMO_SRC="$ROOT/examples/demo/main.cpp"
source "$(dirname "$0")/lib.sh"
e2e_init gdb_e2e curl nc gdb gcore timeout

# run_gdb TARGET-ARG... -- COMMAND...: gdb in batch mode on the demo's pid
# (-p PID) or a core ($DEMO CORE), with the commands; its own chatter dropped.
run_gdb() {
  local -a target=() cmds=()
  while (($# > 0)) && [[ "$1" != -- ]]; do target+=("$1"); shift; done
  shift
  for a in "$@"; do cmds+=(-ex "$a"); done
  show_cmd gdb -batch -nx -x "$SCRIPT" "${target[@]}" "${cmds[@]}"
  timeout 90 gdb -batch -nx -iex 'set debuginfod enabled off' -x "$SCRIPT" "${target[@]}" "${cmds[@]}" 2>&1 |
    grep -v -E '^\[(New )?(Thread|LWP)|^\[Inferior|^\[Thread debugging|^Using host libthread_db|^Core was generated|^Program terminated|^#0 |^0x[0-9a-f]+ in |^[0-9]+\s'
}

start_checked gdb --log-format json || die "the demo did not start"
SLEEP_LINE=$(grep -n 'co_await loupe::sleep_for' "$DEMO_SRC" | head -1 | cut -d: -f1)

section "a live process: gdb -p"
curl -s -m 60 -o /dev/null "$BASE/sleep?ms=15000" &
_sleeping() { console "ps /sleep" | grep -q 'GET /sleep'; }
wait_until 10 _sleeping || die "GET /sleep never started"
run_gdb -p "$DEMO_PID" -- "loupe tasks" "loupe loops" >"$TMP/live.txt"
cat "$TMP/live.txt"
check "loupe tasks lists the sleeping request at the demo's co_await" "$TMP/live.txt" \
  "^ +[0-9]+ +main +suspended +[0-9.]+m?s +http\.request +async_wait on deadline_timer +main\.cpp:$SLEEP_LINE +GET /sleep\?ms=15000 \(route /sleep\)"
check "loupe tasks lists the accept loop" "$TMP/live.txt" "http\.accept +async_accept"
check "loupe loops names the loop and its gdb thread" "$TMP/live.txt" "^loop 'main': running, thread [0-9]+ \(LWP [0-9]+\)"
ID=$(awk '$5 == "http.request" && /GET \/sleep/ {print $1; exit}' "$TMP/live.txt")
run_gdb -p "$DEMO_PID" -- "loupe where ${ID:-0}" >"$TMP/where.txt"
cat "$TMP/where.txt"
check "loupe where gives the co_await's full file:line" "$TMP/where.txt" "^  at: +$DEMO_SRC:$SLEEP_LINE\$"
check "loupe where gives the request and its id" "$TMP/where.txt" "request: +GET /sleep\?ms=15000 \(route /sleep\) request_id=[0-9a-f]{32}"
check "loupe where gives the parents" "$TMP/where.txt" "^  #[0-9]+ 'http\.connection' suspended"
check "loupe where gives the await chain" "$TMP/where.txt" "^  #${ID:-0} 'http\.request': async_wait on deadline_timer at .*main\.cpp:$SLEEP_LINE, for "
do_curl "$BASE/"
expect_eq "the demo serves after gdb detached" "$STATUS" 200

section "a core file, written while the loop is blocked"
curl -s -m 20 -o /dev/null "$BASE/block?ms=3000" &
BLOCK_PID=$!
_blocked() { console loops | grep -q 'blocked by task'; }
wait_until 5 _blocked
show_cmd gcore -o "$TMP/core" "$DEMO_PID"
timeout 60 gcore -o "$TMP/core" "$DEMO_PID" >/dev/null 2>&1
CORE="$TMP/core.$DEMO_PID"
if [[ -s "$CORE" ]]; then pass "gcore wrote a core"; else fail "gcore wrote a core" "no $CORE"; fi
run_gdb "$DEMO" "$CORE" -- "loupe loops" "loupe tasks" >"$TMP/core.txt"
cat "$TMP/core.txt"
check "on the core, loupe loops says which request's callback runs, for how long" "$TMP/core.txt" \
  "^loop 'main': running, thread [0-9]+ \(LWP [0-9]+\), [0-9]+ live task\(s\); running a callback of task #[0-9]+ 'http\.request' serving GET /block\?ms=3000 \(route /block\) for [0-9.]+m?s"
check "on the core, loupe tasks still lists the sleeping request" "$TMP/core.txt" \
  "http\.request +async_wait on deadline_timer +main\.cpp:$SLEEP_LINE +GET /sleep\?ms=15000"
check "on the core, times are dated from the core file" "$TMP/core.txt" "times as of the core file's modification time"
rm -f "$CORE"
wait_exit "$BLOCK_PID" 20

demo_stop 40
expect_eq "the demo exits 0 on SIGTERM" "$EXIT_CODE" 0
summary
