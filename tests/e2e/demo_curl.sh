#!/usr/bin/env bash
# demo_curl.sh — end-to-end checks of loupe-demo with real curl (and nc).
#
#   bash tests/e2e/demo_curl.sh build/loupe-demo
#
# Starts the demo on a free port, checks every route (status, body, content
# type, Allow, 413, 400 for bad input, a malformed request, HEAD), the flag
# handling (exit code 2 naming the flag, --help) and a graceful shutdown with
# a request in flight. Prints a transcript, one `PASS name` / `FAIL name
# (details)` per check, and `demo_curl: N passed, M failed` last; exits
# non-zero if any check failed. Every wait is bounded.
set -u

DEMO="${1:?usage: demo_curl.sh /path/to/loupe-demo}"
source "$(dirname "$0")/lib.sh"
e2e_init demo_curl curl nc timeout

# =======================================================================================

section "start-up"
start_checked main || die

section "GET /"
do_curl "$BASE/"
expect_eq "GET / status" "$STATUS" 200
expect_eq "GET / body" "$BODY" "Hello, world!"
expect_contains "GET / content-type" "$(header Content-Type)" "text/plain"

section "HEAD /"
do_curl -I "$BASE/"
expect_eq "HEAD / status" "$STATUS" 200
expect_eq "HEAD / content-length" "$(header Content-Length)" 13
# curl -I never reads a body, so look at the raw bytes: nothing may follow the headers.
echo
echo "\$ printf 'HEAD / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | nc -N -w 5 127.0.0.1 $PORT"
printf 'HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
  timeout 10 nc -N -w 5 127.0.0.1 "$PORT" >"$TMP/head.raw" 2>"$TMP/head.err"
tr -d '\r' <"$TMP/head.raw" | sed 's/^/< /'
IFS= read -r -d '' head_raw <"$TMP/head.raw"  # keeps trailing CR/LF, unlike $(...)
after_headers="${head_raw#*$'\r\n\r\n'}"
if [[ "$head_raw" != *$'\r\n\r\n'* ]]; then
  fail "HEAD / no body" "no complete header block received: '${head_raw:0:200}'"
else
  expect_eq "HEAD / no body" "${#after_headers}" 0
fi

section "GET /json"
do_curl "$BASE/json"
expect_eq "GET /json status" "$STATUS" 200
expect_eq "GET /json body" "$BODY" '{"data":"Hello, world!"}'
expect_contains "GET /json content-type" "$(header Content-Type)" "application/json"

section "GET /fanout (the client session calls /json and /sleep?ms=10 on the same server)"
do_curl "$BASE/fanout"
expect_eq "GET /fanout status" "$STATUS" 200
expect_eq "GET /fanout body" "$BODY" '{"json":{"data":"Hello, world!"},"sleep":{"status":200,"body":"slept 10 ms"}}'

section "GET /users/{id}"
do_curl "$BASE/users/42"
expect_eq "GET /users/42 status" "$STATUS" 200
expect_eq "GET /users/42 body" "$BODY" '{"id":42}'
expect_contains "GET /users/42 content-type" "$(header Content-Type)" "application/json"
do_curl "$BASE/users/abc"
expect_eq "GET /users/abc status" "$STATUS" 404

section "POST / (wrong method)"
do_curl -X POST "$BASE/"
expect_eq "POST / status" "$STATUS" 405
allow="$(header Allow)"
expect_contains "POST / Allow has GET" "$allow" "GET"
expect_contains "POST / Allow has HEAD" "$allow" "HEAD"

section "POST /echo"
do_curl -H 'Content-Type: text/plain' --data-binary 'echo me, please' "$BASE/echo"
expect_eq "POST /echo status" "$STATUS" 200
expect_eq "POST /echo body" "$BODY" "echo me, please"
expect_contains "POST /echo content-type" "$(header Content-Type)" "text/plain"

head -c 2097152 /dev/zero | tr '\0' 'x' >"$TMP/2mb.bin"
do_curl -H 'Content-Type: application/octet-stream' --data-binary "@$TMP/2mb.bin" "$BASE/echo"
expect_eq "POST /echo 2 MiB -> 413" "$STATUS" 413

section "GET /sleep, /block, /cpu"
do_curl "$BASE/sleep?ms=50"
expect_eq "GET /sleep?ms=50 status" "$STATUS" 200
expect_eq "GET /sleep?ms=50 body" "$BODY" "slept 50 ms"
do_curl "$BASE/block?ms=20"
expect_eq "GET /block?ms=20 status" "$STATUS" 200
expect_eq "GET /block?ms=20 body" "$BODY" "blocked the loop for 20 ms"
do_curl "$BASE/cpu?ms=20"
expect_eq "GET /cpu?ms=20 status" "$STATUS" 200
expect_eq "GET /cpu?ms=20 body" "$BODY" "burned 20 ms of CPU"
for route in sleep block cpu; do
  do_curl "$BASE/$route"
  expect_eq "GET /$route (no ms) status" "$STATUS" 400
  expect_contains "GET /$route (no ms) message" "$BODY" "'ms' is required"
  do_curl "$BASE/$route?ms=abc"
  expect_eq "GET /$route?ms=abc status" "$STATUS" 400
  expect_contains "GET /$route?ms=abc message" "$BODY" "'ms' must be an integer"
done

section "malformed request"
echo "\$ printf 'NOT AN HTTP REQUEST\\r\\n\\r\\n' | nc -N -w 5 127.0.0.1 $PORT"
printf 'NOT AN HTTP REQUEST\r\n\r\n' | timeout 10 nc -N -w 5 127.0.0.1 "$PORT" >"$TMP/bad.raw" 2>"$TMP/bad.err"
tr -d '\r' <"$TMP/bad.raw" | sed 's/^/< /'
echo
bad_status="$(head -n 1 "$TMP/bad.raw" | tr -d '\r')"
expect_contains "malformed request -> 400" "$bad_status" "HTTP/1.1 400"
do_curl "$BASE/"
expect_eq "GET / after malformed request" "$STATUS:$BODY" "200:Hello, world!"

section "flags"
# check_bad_flag NAME FLAG-NAME ARGS...: exit code 2, and stderr names the flag.
check_bad_flag() {
  local name="$1" flag="$2"; shift 2
  echo
  show_cmd "$DEMO" "$@"
  timeout 10 "$DEMO" "$@" >"$TMP/flag.out" 2>"$TMP/flag.err"
  local rc=$?
  sed 's/^/  stderr: /' "$TMP/flag.err"
  echo "  exit code: $rc"
  expect_eq "$name exit code" "$rc" 2
  expect_contains "$name names $flag" "$(cat "$TMP/flag.err")" "$flag"
}
check_bad_flag "--port abc" --port --port abc
check_bad_flag "--port 70000" --port --port 70000
check_bad_flag "--log-format xml" --log-format --port 0 --log-format xml
check_bad_flag "--bogus" --bogus --port 0 --bogus
echo
show_cmd "$DEMO" --help
timeout 10 "$DEMO" --help >"$TMP/help.out" 2>"$TMP/help.err"
help_rc=$?
sed 's/^/  /' "$TMP/help.out"
echo "  exit code: $help_rc"
expect_eq "--help exit code" "$help_rc" 0
expect_contains "--help lists --port" "$(cat "$TMP/help.out")" "--port"

section "graceful shutdown with a request in flight"
# The sleeping request runs in the background; curl -v prints the request line
# to its stderr once it has been sent.
echo "\$ curl -v $BASE/sleep?ms=1500 &"
timeout 15 curl -sS -v --max-time 10 -o "$TMP/inflight.body" -w '%{http_code}' "$BASE/sleep?ms=1500" \
  >"$TMP/inflight.code" 2>"$TMP/inflight.err" &
CURL_PID=$!
sent=no
wait_until 5 grep -qs '^> GET /sleep' "$TMP/inflight.err" && sent=yes
expect_eq "in-flight request sent" "$sent" yes
# A request on a second connection that completes shows the server (one loop)
# has been through its accept queue, so the sleeping request is being served.
do_curl "$BASE/"
expect_eq "probe GET / before SIGTERM" "$STATUS" 200
echo
echo "\$ kill -TERM $DEMO_PID   # the demo"
kill -TERM "$DEMO_PID"
wait_exit "$CURL_PID" 15
curl_rc=$EXIT_CODE
inflight_status="$(cat "$TMP/inflight.code")"
inflight_body="$(cat "$TMP/inflight.body" 2>/dev/null)"
echo "  in-flight curl exit code: $curl_rc"
grep -E '^[<>] ' "$TMP/inflight.err" | tr -d '\r' | sed 's/^/  /'
echo "  < $inflight_body"
expect_eq "in-flight request status" "$inflight_status" 200
expect_eq "in-flight request body" "$inflight_body" "slept 1500 ms"
wait_exit "$DEMO_PID" 10
demo_rc=$EXIT_CODE
echo "  demo exit code: $demo_rc"
echo "  demo stderr:"
sed 's/^/    /' "$DEMO_ERR"
expect_eq "demo exits 0 after SIGTERM" "$demo_rc" 0
expect_contains "demo logs shutting down" "$(cat "$DEMO_ERR")" "shutting down"

echo
summary
