#!/usr/bin/env bash
# scenario_e2e.sh — the instruments in the commonest stuck cases, through the
# real console (nc) of a running loupe-demo:
#
#   bash tests/e2e/scenario_e2e.sh build/loupe-demo
#
# 1. An upstream that never answers (a Python listener that accepts and stays
#    silent): GET /upstream's handler shows in `ps` waiting at the demo's own
#    `co_await session.get(...)` line, and `where` prints the await chain
#    handler → client request task, each with its file:line.
# 2. A client that gives up (curl -m 1 on GET /sleep?ms=3000): `ps` says
#    "client gone" while the handler still runs, the access record says 499
#    with client_gone, and `ps-terminated` shows how it ended.
# 3. A 3 s loop block (GET /block?ms=3000): `loops` says the loop is blocked,
#    by which task, serving which request and route, for how long.
# 4. A `cancel` of each runtime task: the accept loop is refused, a
#    connection's cancel closes that connection, and app.main's cancel shuts
#    the demo down gracefully (logged as such, then `stopped`, exit 0); the
#    server still serves after the first two.
# Prints the transcripts, `PASS`/`FAIL` per check and a summary; exits non-zero
# on any failure (2: a tool is missing). Every wait is bounded (about 15 s).
set -u

DEMO="${1:?usage: scenario_e2e.sh /path/to/loupe-demo}"
DEMO_SRC="$(cd "$(dirname "$0")/../.." && pwd)/examples/demo/main.cpp"
source "$(dirname "$0")/lib.sh"
e2e_init scenario_e2e curl nc python3 timeout

# The id of the first live task named $1 whose ps line matches the ERE $2.
task_id() {
  console "ps --all" | awk -v name="$1" -v re="$2" '$6 == name && $0 ~ re {print $1; exit}'
}
# Waits at most 10 s for task_id "$1" "$2"; sets ID.
wait_task() {
  ID=""
  _found() { ID=$(task_id "$1" "$2"); [[ -n "$ID" ]]; }
  wait_until 10 _found "$1" "$2"
}

# ---- an upstream that never answers ------------------------------------------------
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
deadline = time.time() + 60
while time.time() < deadline:
    s.settimeout(max(0.1, deadline - time.time()))
    try: held.append(s.accept()[0])  # accepted, read from never, answered never
    except socket.timeout: break
' >"$TMP/upstream.port" &
wait_until 10 test -s "$TMP/upstream.port" || die "the silent upstream did not start"
UPSTREAM="http://127.0.0.1:$(head -1 "$TMP/upstream.port")/never"

start_checked scenario --log-format json --upstream "$UPSTREAM" || die "the demo did not start"

section "1. a handler waiting on an upstream that never answers"
curl -s -m 30 -o /dev/null "$BASE/upstream" &
wait_task http.request "GET /upstream" || die "GET /upstream never showed up in ps"
HANDLER=$ID
UPSTREAM_LINE=$(grep -n 'co_await session.get(upstream.url)' "$DEMO_SRC" | head -1 | cut -d: -f1)
wait_until 10 eval 'console "ps --all" | grep -q "await on task"'
console "ps --all" "where $HANDLER" >"$TMP/upstream.txt"
cat "$TMP/upstream.txt"
check "ps names the handler's co_await in the demo's source" "$TMP/upstream.txt" \
  "^ +$HANDLER +main +suspended .*http\.request +await on task #[0-9]+ +main\.cpp:$UPSTREAM_LINE +GET /upstream \(route /upstream\)"
check "ps lists the client request's own task and URL" "$TMP/upstream.txt" \
  "http\.client .* GET http://127\.0\.0\.1:[0-9]+/never"
check "where's await chain starts at the handler's file:line" "$TMP/upstream.txt" \
  "^ +#$HANDLER 'http\.request': await on task #[0-9]+ at .*examples/demo/main\.cpp:$UPSTREAM_LINE, for "
check "where's await chain goes on to the client request's wait" "$TMP/upstream.txt" \
  "^ +#[0-9]+ 'http\.client' .*: async_[a-z_]+ on .* at [^ ]+:[0-9]+, for "

section "2. a client that gives up"
curl -s -m 1 -o /dev/null "$BASE/sleep?ms=3000"
# Noticed within one sweep of the server's deadlines (about a second).
_gone() { console "ps /sleep" >"$TMP/gone.txt"; grep -q "client gone" "$TMP/gone.txt"; }
wait_until 3 _gone
cat "$TMP/gone.txt"
check "ps shows the request as client gone while its handler runs" "$TMP/gone.txt" \
  "http\.request .*GET /sleep\?ms=3000 \(route /sleep\), client gone"
_access_499() { grep -q '"status":499' "$DEMO_ERR" "$DEMO_OUT"; }
wait_until 5 _access_499
grep -h '"path":"/sleep"' "$DEMO_ERR" "$DEMO_OUT" | tail -1
_access_line() { grep -h '"path":"/sleep"' "$DEMO_ERR" "$DEMO_OUT" | tail -1; }
expect_contains "the access record says 499" "$(_access_line)" '"status":499'
expect_contains "the access record says client_gone" "$(_access_line)" '"client_gone":true'
console "ps-terminated" >"$TMP/gone-terminated.txt"
cat "$TMP/gone-terminated.txt"
check "ps-terminated shows how it ended" "$TMP/gone-terminated.txt" \
  "http\.request .*GET /sleep\?ms=3000 \(route /sleep\), client gone"

section "3. a loop blocked for 3 s"
curl -s -m 15 -o /dev/null "$BASE/block?ms=3000" &
BLOCK_PID=$!
_blocked() { console "loops" >"$TMP/loops.txt"; grep -q "blocked by task" "$TMP/loops.txt"; }
wait_until 5 _blocked
cat "$TMP/loops.txt"
check "loops says the loop is blocked, by which task, request and route" "$TMP/loops.txt" \
  "main: blocked by task #[0-9]+ 'http\.request' serving GET /block\?ms=3000 \(route /block\) for [0-9.]+m?s"
wait_exit "$BLOCK_PID" 15

section "4. cancel of each runtime task"
# An idle keep-alive connection of its own, so its task can be cancelled.
exec 7<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /json HTTP/1.1\r\nHost: x\r\n\r\n' >&7
wait_task http.connection "" || die "no http.connection task"
ACCEPT=$(task_id http.accept "")
MAIN=$(task_id app.main "")
CONN=$(console "ps --all" | awk '$6 == "http.connection" {print $1}' | sort -n | tail -1)
console "cancel $ACCEPT" "cancel $CONN" >"$TMP/cancel.txt"
cat "$TMP/cancel.txt"
check "cancelling the accept loop is refused, with the reason" "$TMP/cancel.txt" \
  "refused: .*it is the server's accept loop"
check "cancelling a connection closes that connection instead" "$TMP/cancel.txt" \
  "not cancelled; instead, this closes the connection"
# The connection's socket is closed by the server: a read ends (EOF) at once.
if timeout 5 cat <&7 >/dev/null; then pass "the cancelled connection was closed by the server"
else fail "the cancelled connection was closed by the server" "still open 5 s later"; fi
exec 7<&-
do_curl "$BASE/"
expect_eq "the server still serves after both" "$STATUS" 200
console "cancel $MAIN" >"$TMP/cancel-main.txt"
cat "$TMP/cancel-main.txt"
check "cancelling app.main means a graceful shutdown, said as such" "$TMP/cancel-main.txt" \
  "not cancelled; instead, this shuts the application down gracefully"
wait_exit "$DEMO_PID" 15
expect_eq "the demo exits 0 after the graceful shutdown" "$EXIT_CODE" 0
[[ "$EXIT_CODE" == timeout ]] && kill_tree "$DEMO_PID"
DEMO_PID=""
check "the log says why it shut down" "$DEMO_ERR" "shutdown requested \(a cancel of app\.main\)"
check "the log says stopped" "$DEMO_ERR" '"stopped'
if grep -q "received SIGTERM" "$DEMO_ERR"; then fail "no false SIGTERM record" "$(grep -m1 'received SIGTERM' "$DEMO_ERR")"
else pass "no false SIGTERM record"; fi

summary
