#!/usr/bin/env bash
# What loupe's callback tracking costs, measured two ways in one run:
#   1. google-benchmark: ns per callback / per task resumption, tracked vs plain Asio;
#   2. wrk against loupe-demo GET /: tracking on vs compiled out (-DLOUPE_TRACKING=OFF),
#      interleaved A B A B ..., server pinned to core 0 and wrk to core 1.
#   tests/bench/tracking_cost.sh [seconds-per-run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-5}
ROUNDS=${2:-3}
for p in wrk libbenchmark-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
    [ "$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null || {
      echo "tracking_cost: please install $p" >&2; exit 1; }
  }
done
scripts/setup.sh
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOUPE_BUILD_BENCH=ON -DLOUPE_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j 2 --target loupe-demo tracking_bench tracking_bench_untracked
cmake -S . -B build-untracked -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOUPE_TRACKING=OFF -DLOUPE_BUILD_TESTS=OFF >/dev/null
cmake --build build-untracked -j 2 --target loupe-demo

echo "== per-callback cost (google-benchmark, pinned to core 0) =="
for b in tracking_bench_untracked tracking_bench; do
  taskset -c 0 build-bench/tests/$b --benchmark_min_time=1 --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true 2>/dev/null | grep -E "median" | sed "s/^/$b /"
done

run_wrk() {  # $1 = demo binary; prints req/s
  local port=$((20000 + RANDOM % 20000))
  taskset -c 0 "$1" --port $port --log-level warn --monitor-port 0 >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  taskset -c 1 wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}'
  kill -TERM $pid; wait $pid || true
}

echo "== wrk GET / (64 connections, ${SECS}s x ${ROUNDS} rounds, interleaved) =="
tracked=(); untracked=()
for r in $(seq "$ROUNDS"); do
  t=$(run_wrk build-bench/loupe-demo); u=$(run_wrk build-untracked/loupe-demo)
  echo "round $r: tracked $t req/s, untracked $u req/s"
  tracked+=("$t"); untracked+=("$u")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mt=$(median "${tracked[@]}"); mu=$(median "${untracked[@]}")
awk -v t="$mt" -v u="$mu" 'BEGIN {printf "median: tracked %.0f req/s, untracked %.0f req/s, ratio %.3f\n", t, u, t/u}'
