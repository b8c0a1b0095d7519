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
# the ratio to bare Beast.
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
port() { echo $((20000 + RANDOM % 20000)); }

# start NAME PORT: the server's command line, pinned to core 0, in the background; sets SPID.
start() {
  local name=$1 p=$2
  case $name in
    loupe) taskset -c 0 build-bench/loupe-demo --port "$p" --monitor off --access-log off >/dev/null 2>&1 & ;;
    loupe+access) taskset -c 0 build-bench/loupe-demo --port "$p" --monitor off --access-log on >/dev/null 2>&1 & ;;
    loupe-floor) taskset -c 0 build-floor/loupe-demo --port "$p" --monitor off --access-log off >/dev/null 2>&1 & ;;
    beast) taskset -c 0 build-bench/tests/beast_hello "$p" >/dev/null 2>&1 & ;;
    aiohttp) taskset -c 0 "$PY" tests/bench/aiohttp_hello.py "$p" >/dev/null 2>&1 & ;;
    aiohttp+uvloop) taskset -c 0 "$PY" tests/bench/aiohttp_hello.py "$p" --uvloop >/dev/null 2>&1 & ;;
  esac
  SPID=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p/" && return 0; sleep 0.1; done
  echo "compare: $name did not start" >&2
  return 1
}

SERVERS=(beast loupe loupe+access loupe-floor aiohttp+uvloop aiohttp)
for r in $(seq "$ROUNDS"); do
  for c in 64 256; do
    for s in "${SERVERS[@]}"; do
      p=$(port)
      start "$s" "$p"
      taskset -c 1 wrk -t1 -c"$c" -d"${SECS}s" --latency "http://127.0.0.1:$p/" >"$TMP/out" 2>&1 || true
      rss=$(awk '/VmHWM/ {print $2}' /proc/$SPID/status 2>/dev/null || echo 0)
      rps=$(awk '/Requests\/sec/ {print $2}' "$TMP/out")
      p50=$(awk '$1 == "50%" {print $2}' "$TMP/out")
      p99=$(awk '$1 == "99%" {print $2}' "$TMP/out")
      echo "$s $c $rps $p50 $p99 $rss" >>"$TMP/results"
      kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true
      echo "round $r c=$c $s: $rps req/s p50 $p50 p99 $p99 peak RSS ${rss} kB" >&2
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
