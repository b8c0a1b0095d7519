#!/usr/bin/env bash
# metrics_e2e.sh — end-to-end checks of loupe-demo's observability surface with
# real tools: curl, promtool, prometheus, wrk and python3.
#
#   bash tests/e2e/metrics_e2e.sh build/loupe-demo
#
# Checks that /metrics has the Prometheus text-format content type and passes
# `promtool check metrics` with no lint output; that unmatched paths and
# unknown methods are folded into `_unmatched` / `_OTHER`; that a real
# Prometheus server scrapes the demo (up == 1, the request counter is
# queryable); that the request counter is exact under load from wrk; and that
# the JSON log records of one request (app record, access record, slow-callback
# warning) are joined by the same request_id and task_id, with X-Request-ID
# honoured or generated. Prints a transcript, one `PASS name` / `FAIL name
# (details)` per check, and `metrics_e2e: N passed, M failed` last; exits
# non-zero if any check failed (2 if a required tool is missing). Every wait is
# bounded.
set -u

DEMO="${1:?usage: metrics_e2e.sh /path/to/loupe-demo}"
source "$(dirname "$0")/lib.sh"
e2e_init metrics_e2e curl promtool prometheus wrk python3 timeout
START_SECONDS=$SECONDS

# free_port: prints a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# The demos run with --monitor-port 0 (demo_start's default), which keeps them
# from contending for the fixed console port when tests run in parallel.

# stop_demo TAG: SIGTERM, then requires exit code 0 within 10 s.
stop_demo() {
  term_wait "$DEMO_PID" 10 "the $1 demo"
  DEMO_PID=""
  expect_eq "$1 demo exits 0 after SIGTERM" "$EXIT_CODE" 0
  if [[ "$EXIT_CODE" != 0 ]]; then
    echo "  demo stderr (last 15 lines):"
    tail -n 15 "$DEMO_ERR" | cut -c 1-600 | sed 's/^/    /'
  fi
}

# metric FILE NAME [LABEL=VALUE...]: sums the samples of metric NAME in the
# text-format FILE whose labels include all the given ones; prints "absent" if
# there is none.
metric() {
  python3 - "$@" <<'EOF'
import re, sys
path, name, want = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
label_re = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
total, found = 0.0, False
for line in open(path, encoding="utf-8"):
    if line.startswith("#") or not line.strip():
        continue
    m = re.match(r'([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)', line)
    if not m or m.group(1) != name:
        continue
    labels = dict(label_re.findall(m.group(2) or ""))
    if all(labels.get(k) == v for k, v in want.items()):
        total += float(m.group(3))
        found = True
print(("%d" % total if total == int(total) else repr(total)) if found else "absent")
EOF
}

# fetch_metrics FILE CHECK-NAME: GET /metrics into FILE (no transcript of the
# body); a check that it answered 200 with a body.
fetch_metrics() {
  : >"$1"
  local code
  code="$(timeout 15 curl -sS --max-time 10 -o "$1" -w '%{http_code}' "$BASE/metrics" 2>"$1.err")"
  echo "  (GET /metrics: status $code, $(wc -c <"$1") bytes)"
  if [[ "$code" == 200 && -s "$1" ]]; then
    pass "$2"
  else
    fail "$2" "status '$code', $(wc -c <"$1") bytes; curl: $(tr '\n' ' ' <"$1.err")"
  fi
}

# =======================================================================================

section "start-up"
start_checked metrics || die

section "1. /metrics content type"
do_curl "$BASE/metrics"
expect_eq "GET /metrics status" "$STATUS" 200
expect_eq "GET /metrics content-type" "$(header Content-Type)" "text/plain; version=0.0.4; charset=utf-8"

section "2. promtool check metrics, label folding, demo_echo_bytes_total"
ECHO_BODY='metrics e2e: seventeen and then some'
do_curl "$BASE/"
expect_eq "GET / status" "$STATUS" 200
do_curl -H 'Content-Type: text/plain' --data-binary "$ECHO_BODY" "$BASE/echo"
expect_eq "POST /echo status" "$STATUS:$BODY" "200:$ECHO_BODY"
do_curl "$BASE/no/such/path"
expect_eq "GET /no/such/path status" "$STATUS" 404
do_curl -X PURGE "$BASE/"
expect_match "PURGE / status is 4xx" "$STATUS" '^4[0-9][0-9]$'

echo
echo "\$ curl -s $BASE/metrics >scrape1.txt; promtool check metrics <scrape1.txt"
fetch_metrics "$TMP/scrape1.txt" "GET /metrics after the requests"
timeout 20 promtool check metrics <"$TMP/scrape1.txt" >"$TMP/promtool.out" 2>&1
promtool_rc=$?
echo "  promtool exit code: $promtool_rc, output: $(wc -c <"$TMP/promtool.out") bytes"
sed 's/^/  | /' "$TMP/promtool.out"
if [[ $promtool_rc -eq 0 && ! -s "$TMP/promtool.out" ]]; then
  pass "promtool check metrics: exit 0, no output"
else
  fail "promtool check metrics: exit 0, no output" "exit $promtool_rc; output: $(head -c 1500 "$TMP/promtool.out" | tr '\n' ' ')"
fi

echo
echo "\$ grep -c /no/such/path   # in the scrape"
if grep -n -F '/no/such/path' "$TMP/scrape1.txt" >"$TMP/rawpath.txt"; then
  fail "raw unmatched path absent from /metrics" "found: $(head -n 3 "$TMP/rawpath.txt" | tr '\n' ' ')"
else
  pass "raw unmatched path absent from /metrics"
fi
grep '^http_server_requests_total' "$TMP/scrape1.txt" | sed 's/^/  /'
expect_eq "GET /no/such/path counted under _unmatched" \
  "$(metric "$TMP/scrape1.txt" http_server_requests_total http_request_method=GET http_response_status_code=404 http_route=_unmatched)" 1
expect_eq "PURGE counted under _OTHER" \
  "$(metric "$TMP/scrape1.txt" http_server_requests_total http_request_method=_OTHER)" 1
expect_eq "no series with method PURGE" \
  "$(metric "$TMP/scrape1.txt" http_server_requests_total http_request_method=PURGE)" absent
grep '^demo_echo_bytes_total' "$TMP/scrape1.txt" | sed 's/^/  /'
expect_eq "demo_echo_bytes_total == body length (${#ECHO_BODY})" \
  "$(metric "$TMP/scrape1.txt" demo_echo_bytes_total)" "${#ECHO_BODY}"

section "3. a real Prometheus scrapes the demo"
PPORT="$(free_port)"
mkdir -p "$TMP/data"
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: loupe-demo
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOF
sed 's/^/  | /' "$TMP/prometheus.yml"
PROM_ARGS=(--config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/data"
  --web.listen-address="127.0.0.1:$PPORT")
show_cmd prometheus "${PROM_ARGS[@]}" "&"
prometheus "${PROM_ARGS[@]}" >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!

# prom_query QUERY: prints a one-line summary of an instant query's result, e.g.
# `job=loupe-demo value=1`, one line per series; nothing for an empty result.
prom_query() {
  timeout 5 curl -sS --max-time 3 -G --data-urlencode "query=$1" \
    "http://127.0.0.1:$PPORT/api/v1/query" 2>/dev/null |
    python3 -c 'import json, sys
try:
    doc = json.load(sys.stdin)
except Exception:
    sys.exit(0)
if doc.get("status") != "success":
    sys.exit(0)
for r in doc["data"]["result"]:
    labels = " ".join("%s=%s" % kv for kv in sorted(r["metric"].items()))
    print("%s value=%s" % (labels, r["value"][1]))'
}

# poll_query QUERY ERE SECONDS: polls until a result line matches ERE; sets
# QUERY_RESULT to the last result seen.
poll_query() {
  local query="$1" ere="$2" secs="$3" started=$SECONDS deadline=$((SECONDS + $3))
  echo
  echo "\$ curl -G --data-urlencode $(quote "query=$query") http://127.0.0.1:$PPORT/api/v1/query   # polled, up to $secs s"
  QUERY_RESULT=""
  while ((SECONDS < deadline)); do
    QUERY_RESULT="$(prom_query "$query")"
    if grep -Eq "$ere" <<<"$QUERY_RESULT"; then
      sed 's/^/  /' <<<"$QUERY_RESULT"
      echo "  (after $((SECONDS - started)) s)"
      return 0
    fi
    kill -0 "$PROM_PID" 2>/dev/null || { echo "  (prometheus exited)"; break; }
    kill -0 "$DEMO_PID" 2>/dev/null || { echo "  (the demo exited)"; break; }
    sleep 0.5
  done
  echo "  last result: ${QUERY_RESULT:-<empty>}"
  return 1
}

prom_ok=yes
if poll_query up '(^| )job=loupe-demo( .*)? value=1$' 40; then
  pass "prometheus up == 1"
else
  prom_ok=no
  fail "prometheus up == 1" "last result: '${QUERY_RESULT:-<empty>}'"
fi
if poll_query 'http_server_requests_total{http_route="/"}' 'value=' 15; then
  pass "prometheus has http_server_requests_total{http_route=\"/\"}"
else
  prom_ok=no
  fail "prometheus has http_server_requests_total{http_route=\"/\"}" "empty result"
fi
if [[ $prom_ok == no ]]; then
  echo "  prometheus targets (health, lastError):"
  timeout 5 curl -sS --max-time 3 "http://127.0.0.1:$PPORT/api/v1/targets" 2>&1 |
    python3 -c 'import json, sys
try:
    for t in json.load(sys.stdin)["data"]["activeTargets"]:
        print("    %s health=%s lastScrape=%s lastError=%r" % (t["scrapeUrl"], t["health"], t["lastScrape"], t["lastError"]))
except Exception as e:
    print("    (could not read /api/v1/targets: %s)" % e)'
  echo "  prometheus log (last 40 lines):"
  tail -n 40 "$TMP/prometheus.log" | sed 's/^/    /'
fi
term_wait "$PROM_PID" 10 prometheus
PROM_PID=""
stop_demo metrics

section "4. exact request count under load (wrk)"
if start_checked wrk --access-log off; then
  # Why -c equal to -t, and a Lua stop: when wrk's -d timer fires it stops each
  # thread wherever it is, so a request it has sent may still be in flight; the
  # server answers (and counts) it, but wrk never reads the response and leaves
  # it out of "N requests". With one connection per thread there is at most one
  # request in flight per thread, and the response() callback below stops the
  # thread right after a response has been read, before the next request is
  # written. The -d is longer than the Lua deadline (which falls 1-2 s after the
  # start, os.time() having a 1 s resolution) so that the Lua stop always comes
  # first; wrk still sleeps for the whole -d before it prints. Each thread
  # writes a line to stderr when it stops itself, so the transcript shows it.
  cat >"$TMP/stop.lua" <<'EOF'
local deadline
function init(args)
  deadline = os.time() + 2
end
function response(status, headers, body)
  if os.time() >= deadline then
    io.stderr:write("lua: thread stopped itself after a response\n")
    wrk.thread:stop()
  end
end
EOF
  sed 's/^/  | /' "$TMP/stop.lua"
  show_cmd timeout 30 wrk -t2 -c2 -d5s -s "$TMP/stop.lua" "$BASE/"
  timeout 30 wrk -t2 -c2 -d5s -s "$TMP/stop.lua" "$BASE/" >"$TMP/wrk.out" 2>&1
  wrk_rc=$?
  sed 's/^/  | /' "$TMP/wrk.out"
  echo "  wrk exit code: $wrk_rc"
  expect_eq "wrk exit code" "$wrk_rc" 0
  expect_eq "both wrk threads stopped by the Lua deadline, not by -d" \
    "$(grep -c '^lua: thread stopped itself' "$TMP/wrk.out")" 2
  wrk_n="$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$TMP/wrk.out" | head -n 1)"
  if grep -Eq 'Non-2xx|Socket errors' "$TMP/wrk.out"; then
    fail "wrk: no non-2xx responses or socket errors" "$(grep -E 'Non-2xx|Socket errors' "$TMP/wrk.out" | tr '\n' ' ')"
  else
    pass "wrk: no non-2xx responses or socket errors"
  fi
  if [[ -z "$wrk_n" ]]; then
    fail "wrk request count parsed" "no 'N requests in' line"
  else
    pass "wrk request count parsed ($wrk_n)"
    if ((wrk_n > 0)); then pass "wrk made requests"; else fail "wrk made requests" "0 requests"; fi
    fetch_metrics "$TMP/scrape-wrk.txt" "GET /metrics after wrk"
    grep '^http_server_requests_total' "$TMP/scrape-wrk.txt" | sed 's/^/  /'
    expect_eq "http_server_requests_total{GET,200,/} == wrk's count" \
      "$(metric "$TMP/scrape-wrk.txt" http_server_requests_total http_request_method=GET http_response_status_code=200 http_route=/)" \
      "$wrk_n"
  fi
  stop_demo wrk
fi

section "5. request_id / task_id join across log records"
if start_checked join --slow-callback-ms 100 --watchdog-ms 0 --log-format json; then
  do_curl -H 'X-Request-ID: e2e-join-1' "$BASE/block?ms=250"
  expect_eq "GET /block?ms=250 status" "$STATUS" 200
  expect_eq "X-Request-ID echoed" "$(header X-Request-ID)" "e2e-join-1"

  # find_records: prints, as JSON, the app / access / slow-callback records of
  # request e2e-join-1 found in the stderr file so far (keys app, access, slow),
  # with "complete": true once all three are there.
  find_records() {
    python3 - "$DEMO_ERR" <<'EOF'
import json, sys
found = {}
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if not isinstance(r, dict):
        continue
    if r.get("logger") == "app" and r.get("msg") == "blocking the loop on purpose":
        found.setdefault("app", r)
    elif r.get("logger") == "loupe.access" and r.get("path") == "/block":
        found.setdefault("access", r)
    elif r.get("logger") == "loupe" and r.get("event") == "slow_callback":
        found.setdefault("slow", r)
found["complete"] = all(k in found for k in ("app", "access", "slow"))
print(json.dumps(found))
EOF
  }
  echo
  echo "\$ # wait (up to 5 s) for the app, access and slow_callback records in the demo's stderr"
  for ((i = 0; i < 50; i++)); do
    RECORDS="$(find_records)"
    [[ "$RECORDS" == *'"complete": true'* ]] && break
    sleep 0.1
  done
  python3 -c 'import json, sys
d = json.loads(sys.argv[1])
for k in ("app", "access", "slow"):
    print("  %-6s %s" % (k, json.dumps(d[k]) if k in d else "<missing>"))' "$RECORDS"
  for kind in app access slow; do
    got="$(python3 -c 'import json, sys
r = json.loads(sys.argv[1]).get(sys.argv[2])
print("missing" if r is None else "%s task_id=%s" % (r.get("request_id"), r.get("task_id")))' "$RECORDS" "$kind")"
    expect_match "$kind record has request_id e2e-join-1" "$got" '^e2e-join-1 task_id='
  done
  join="$(python3 -c 'import json, sys
d = json.loads(sys.argv[1])
ids = [d[k].get("task_id") if k in d else None for k in ("app", "access", "slow")]
ok = all(isinstance(t, int) and not isinstance(t, bool) and t != 0 for t in ids) and len(set(ids)) == 1
print("same" if ok else "task_ids app/access/slow = %s" % ids)' "$RECORDS")"
  expect_eq "app, access, slow_callback records share one non-zero task_id" "$join" same

  do_curl "$BASE/"
  expect_match "no X-Request-ID -> generated 32-hex id" "$(header X-Request-ID)" '^[0-9a-f]{32}$'
  do_curl -H 'X-Request-ID: has a space' "$BASE/"
  expect_match "X-Request-ID with spaces -> replaced by generated id" "$(header X-Request-ID)" '^[0-9a-f]{32}$'
  long129="$(printf 'r%.0s' {1..129})"
  do_curl -H "X-Request-ID: $long129" "$BASE/"
  expect_match "129-char X-Request-ID -> replaced by generated id" "$(header X-Request-ID)" '^[0-9a-f]{32}$'
  long128="${long129:1}"
  do_curl -H "X-Request-ID: $long128" "$BASE/"
  expect_eq "128-char X-Request-ID honoured" "$(header X-Request-ID)" "$long128"

  stop_demo join

  echo
  echo "\$ # every line of the demo's stderr must be a JSON object"
  bad="$(python3 - "$DEMO_ERR" <<'EOF'
import json, sys
n, bad = 0, []
for i, line in enumerate(open(sys.argv[1], encoding="utf-8", errors="replace"), 1):
    n += 1
    try:
        ok = isinstance(json.loads(line), dict)
    except ValueError:
        ok = False
    if not ok:
        bad.append("line %d: %r" % (i, line[:200]))
print("%d lines, %d bad" % (n, len(bad)))
for b in bad[:5]:
    print(b)
EOF
)"
  sed 's/^/  /' <<<"$bad"
  if [[ "$(head -n 1 <<<"$bad")" == *" 0 bad" && "$(head -n 1 <<<"$bad")" != "0 lines"* ]]; then
    pass "every stderr line is a JSON object"
  else
    fail "every stderr line is a JSON object" "$(tr '\n' ' ' <<<"$bad")"
  fi
fi

echo
echo "(ran for $((SECONDS - START_SECONDS)) s)"
summary
