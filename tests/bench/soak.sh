#!/usr/bin/env bash
# Soak: mixed traffic against loupe-demo for a while, sampling its memory and
# live tasks, to show both stay flat. Not part of CI.
#
#   tests/bench/soak.sh [minutes] [loupe-demo]     (defaults: 10, build/loupe-demo)
#
# Traffic, all at once for the whole run:
#   - wrk, 32 connections, a mix of GET /, /json, /sleep?ms=5 and POST /echo;
#   - every 2 s a GET /block?ms=150 (blocks the loop: a slow callback);
#   - every 5 s a GET /sleep?ms=60000 that the monitor console then cancels
#     (`ps /sleep` ... `cancel ID`: the client gets 503);
#   - every 3 s a client that gives up after 50 ms on /sleep?ms=300.
# Every 30 s: RSS (kB), live tasks, open connections, requests answered.
# Prints the samples and RSS / live tasks at the start and the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
MINUTES=${1:-10}
DEMO=${2:-build/loupe-demo}
[ -x "$DEMO" ] || scripts/build.sh loupe-demo
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; kill "$DPID" 2>/dev/null || true; rm -rf "$TMP"' EXIT

PORT=$((20000 + RANDOM % 12000))
MPORT=$((PORT + 1))
"$DEMO" --port "$PORT" --monitor-port "$MPORT" --access-log on --log-level warn >/dev/null 2>"$TMP/err" &
DPID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done

cat >"$TMP/mix.lua" <<'EOF'
local paths = {"/", "/json", "/sleep?ms=5", "/"}
local n = 0
request = function()
  n = n + 1
  if n % 5 == 0 then
    return wrk.format("POST", "/echo", {["Content-Type"] = "text/plain"}, "soak body " .. n)
  end
  return wrk.format("GET", paths[(n % #paths) + 1])
end
EOF
END=$(( $(date +%s) + MINUTES * 60 ))
wrk -t1 -c32 -d"$((MINUTES * 60))s" -s "$TMP/mix.lua" "http://127.0.0.1:$PORT/" >"$TMP/wrk" 2>&1 &
PIDS+=($!)
( while [ "$(date +%s)" -lt "$END" ]; do curl -s -o /dev/null "http://127.0.0.1:$PORT/block?ms=150"; sleep 2; done ) &
PIDS+=($!)
( while [ "$(date +%s)" -lt "$END" ]; do curl -s -o /dev/null --max-time 0.05 "http://127.0.0.1:$PORT/sleep?ms=300" || true; sleep 3; done ) &
PIDS+=($!)
( cancelled=0
  while [ "$(date +%s)" -lt "$END" ]; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 "http://127.0.0.1:$PORT/sleep?ms=60000" >>"$TMP/cancelled_codes" &
    sleep 0.5
    id=$(printf 'ps /sleep\r\nquit\r\n' | timeout 5 nc 127.0.0.1 "$MPORT" | grep 'ms=60000' | awk '{print $1}' | head -1 || true)
    if [ -n "$id" ]; then printf 'cancel %s\r\nquit\r\n' "$id" | timeout 5 nc 127.0.0.1 "$MPORT" >/dev/null || true; fi
    sleep 4.5
  done ) &
PIDS+=($!)

sample() {
  local m rss
  m=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" || true)
  rss=$(awk '/VmRSS/ {print $2}' /proc/$DPID/status)
  echo "$(( $(date +%s) - START ))s rss_kB=$rss live_tasks=$(awk '/^loupe_tasks\{/ {s+=$2} END {print s+0}' <<<"$m")" \
    "open_connections=$(awk '/^http_server_open_connections\{/ {s+=$2} END {print s+0}' <<<"$m")" \
    "answered=$(awk '/^http_server_requests_total\{/ {s+=$2} END {printf "%d", s}' <<<"$m")"
}
START=$(date +%s)
sleep 10
sample | tee "$TMP/samples"
while [ $(( $(date +%s) + 35 )) -lt "$END" ]; do
  sleep 30
  sample | tee -a "$TMP/samples"
done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
sleep 1
echo "final (traffic stopped):"
sample | tee -a "$TMP/samples"
echo
echo "wrk:"; sed -n '/requests in/,/Requests\/sec/p' "$TMP/wrk"
echo "cancelled /sleep?ms=60000 requests: $(grep -c . "$TMP/cancelled_codes" 2>/dev/null || echo 0) made, status codes: $(sort "$TMP/cancelled_codes" | uniq -c | tr '\n' ' ')"
echo "ERROR records: $(grep -c '"level":"error"' "$TMP/err" || true); slow-callback warnings: $(grep -c 'slow callback' "$TMP/err" || true)"
first=$(sed -n 1p "$TMP/samples"); last_loaded=$(tail -2 "$TMP/samples" | head -1)  # the last one under load
echo "RSS and live tasks 10 s in: $first"
echo "RSS and live tasks at the end of the load: $last_loaded"
