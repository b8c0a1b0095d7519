#!/usr/bin/env bash
# Whole-server comparison: loupe-demo against bare Beast and aiohttp, GET /.
#
#   tests/bench/compare.sh [seconds-per-run] [rounds]        (defaults: 5 s, 3 rounds)
#
# Builds what it needs (Release, in build-bench/ and build-floor/), then runs,
# interleaved round by round (A B C ... A B C ...), each server pinned to core
# 0 and wrk to core 1, at 64 and 256 connections:
#   loupe          loupe-demo, tracking and metrics on, access log off
#   loupe+access   the same with the JSON access log on (to /dev/null)
#   loupe-floor    loupe-demo built with -DLOUPE_TRACKING=OFF -DLOUPE_HTTP_METRICS=OFF, access log off
#   beast          tests/bench/beast_hello.cpp: bare Beast, C++20 coroutines, one thread
#   aiohttp        Debian's python3-aiohttp on asyncio's loop; aiohttp+uvloop with python3-uvloop
# and prints per server the median req/s, p50 and p99 latency, peak RSS, and
# the ratio to bare Beast. Then:
#   scaling   loupe-demo --workers 1 and --workers 2 (and beast for reference),
#             server and wrk (-t2) both on the two cores, 64 connections;
#   idle      RSS of loupe-demo, beast and aiohttp+uvloop holding 10,000 idle
#             keep-alive connections (tests/bench/idle_conns.py), one GET each.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-5}
ROUNDS=${2:-3}
PY=/usr/bin/python3   # Debian's, which has python3-aiohttp
scripts/setup.sh
for p in python3-aiohttp python3-uvloop; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOUPE_BUILD_BENCH=ON -DLOUPE_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j 2 --target loupe-demo beast_hello >/dev/null
cmake -S . -B build-floor -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOUPE_TRACKING=OFF -DLOUPE_HTTP_METRICS=OFF \
  -DLOUPE_BUILD_TESTS=OFF >/dev/null
cmake --build build-floor -j 2 --target loupe-demo >/dev/null

TMP=$(mktemp -d)
trap 'jobs -p | xargs -r kill 2>/dev/null; rm -rf "$TMP"' EXIT
# Below the ephemeral range (32768+), where wrk's own sockets could hold the port.
port() { echo $((20000 + RANDOM % 12000)); }

# start NAME PORT [CPUS]: the server's command line, pinned to CPUS (default
# core 0), in the background; sets SPID. Fails if it does not answer.
start() {
  local name=$1 p=$2 cpus=${3:-0}
  case $name in
    loupe) taskset -c "$cpus" build-bench/loupe-demo --port "$p" --monitor off --access-log off >/dev/null 2>&1 & ;;
    loupe+access) taskset -c "$cpus" build-bench/loupe-demo --port "$p" --monitor off --access-log on >/dev/null 2>&1 & ;;
    loupe-floor) taskset -c "$cpus" build-floor/loupe-demo --port "$p" --monitor off --access-log off >/dev/null 2>&1 & ;;
    loupe-w1) taskset -c "$cpus" build-bench/loupe-demo --port "$p" --monitor off --access-log off --workers 1 >/dev/null 2>&1 & ;;
    loupe-w2) taskset -c "$cpus" build-bench/loupe-demo --port "$p" --monitor off --access-log off --workers 2 >/dev/null 2>&1 & ;;
    beast) taskset -c "$cpus" build-bench/tests/beast_hello "$p" >/dev/null 2>&1 & ;;
    aiohttp) taskset -c "$cpus" "$PY" tests/bench/aiohttp_hello.py "$p" >/dev/null 2>&1 & ;;
    aiohttp+uvloop) taskset -c "$cpus" "$PY" tests/bench/aiohttp_hello.py "$p" --uvloop >/dev/null 2>&1 & ;;
  esac
  SPID=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p/" && return 0; sleep 0.1; done
  kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true
  return 1
}
# start_any NAME [CPUS]: start on a free port (a few tries); sets SPID and P.
start_any() {
  for _ in 1 2 3; do
    P=$(port)
    start "$1" "$P" "${2:-0}" && return 0
  done
  echo "compare: $1 did not start" >&2
  exit 1
}

# measure NAME SERVER_CPUS WRK_CPUS WRK_THREADS CONNS: one run; sets RPS P50 P99 RSS.
measure() {
  start_any "$1" "$2"
  taskset -c "$3" wrk -t"$4" -c"$5" -d"${SECS}s" --latency "http://127.0.0.1:$P/" >"$TMP/out" 2>&1 || true
  RSS=$(awk '/VmHWM/ {print $2}' /proc/$SPID/status 2>/dev/null || echo 0)
  RPS=$(awk '/Requests\/sec/ {print $2}' "$TMP/out")
  P50=$(awk '$1 == "50%" {print $2}' "$TMP/out")
  P99=$(awk '$1 == "99%" {print $2}' "$TMP/out")
  kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true
}

SERVERS=(beast loupe loupe+access loupe-floor aiohttp+uvloop aiohttp)
for r in $(seq "$ROUNDS"); do
  for c in 64 256; do
    for s in "${SERVERS[@]}"; do
      measure "$s" 0 1 1 "$c"
      echo "$s $c $RPS $P50 $P99 $RSS" >>"$TMP/results"
      echo "round $r c=$c $s: $RPS req/s p50 $P50 p99 $P99 peak RSS ${RSS} kB" >&2
    done
  done
done

# Medians per (server, connections); ratios to beast at the same connections.
"$PY" - "$TMP/results" <<'PYEOF'
import statistics, sys
def ms(t):
    if t.endswith("us"): return float(t[:-2]) / 1000
    if t.endswith("ms"): return float(t[:-2])
    if t.endswith("s"): return float(t[:-1]) * 1000
    return float("nan")
rows = {}
for line in open(sys.argv[1]):
    s, c, rps, p50, p99, rss = line.split()
    rows.setdefault((s, int(c)), []).append((float(rps), ms(p50), ms(p99), int(rss)))
print(f"| server | conns | req/s (median) | p50 ms | p99 ms | peak RSS MiB | req/s vs beast | p99 vs beast |")
print("|---|---|---|---|---|---|---|---|")
for c in (64, 256):
    base = rows.get(("beast", c))
    b_rps = statistics.median(r[0] for r in base) if base else float("nan")
    b_p99 = statistics.median(r[2] for r in base) if base else float("nan")
    for (s, cc), v in rows.items():
        if cc != c: continue
        rps = statistics.median(r[0] for r in v)
        p50 = statistics.median(r[1] for r in v)
        p99 = statistics.median(r[2] for r in v)
        rss = max(r[3] for r in v) / 1024
        print(f"| {s} | {c} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {rss:.1f} | {rps / b_rps:.2f}x | {p99 / b_p99:.2f}x |")
PYEOF

# Scaling: --workers 1 and 2 on both cores, wrk sharing them (-t2).
echo >&2
for r in $(seq "$ROUNDS"); do
  for s in beast loupe-w1 loupe-w2; do
    measure "$s" 0,1 0,1 2 64
    echo "$s $RPS $P99" >>"$TMP/scaling"
    echo "scaling round $r $s: $RPS req/s p99 $P99" >&2
  done
done
echo
echo "Scaling (server and wrk -t2 sharing both cores, 64 connections, medians):"
echo
"$PY" - "$TMP/scaling" <<'PYEOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    s, rps, p99 = line.split()
    rows.setdefault(s, []).append(float(rps))
print("| server | req/s (median) | vs loupe --workers 1 |")
print("|---|---|---|")
w1 = statistics.median(rows.get("loupe-w1", [float("nan")]))
for s, v in rows.items():
    m = statistics.median(v)
    print(f"| {s} | {m:,.0f} | {m / w1:.2f}x |")
PYEOF

# Idle: RSS holding 10,000 keep-alive connections that each made one request.
ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo
echo "10,000 idle keep-alive connections (one GET / each, then held):"
echo
echo "| server | RSS before kB | RSS with 10,000 idle kB | per connection | connections answered |"
echo "|---|---|---|---|---|"
for s in loupe beast aiohttp+uvloop; do
  start_any "$s"
  before=$(awk '/VmRSS/ {print $2}' /proc/$SPID/status)
  coproc IDLE { "$PY" tests/bench/idle_conns.py "$P" 10000 120; }
  read -r _ answered <&"${IDLE[0]}" || answered=0
  sleep 1
  with=$(awk '/VmRSS/ {print $2}' /proc/$SPID/status)
  kill "$IDLE_PID" 2>/dev/null; wait "$IDLE_PID" 2>/dev/null || true
  kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true
  echo "| $s | $before | $with | $(( (with - before) * 1024 / 10000 )) B | $answered |"
done
