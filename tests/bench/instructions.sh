#!/usr/bin/env bash
# Instructions per request (user space, the whole process) under valgrind's
# callgrind: a deterministic measure of the request path that a noisy machine
# does not disturb, for comparing changes. Counted after a warm-up, over
# `seconds` of wrk -c8 GET /.
#
#   tests/bench/instructions.sh SERVER [seconds]     SERVER: loupe | loupe+access | loupe-floor | beast
#
# Uses the Release trees compare.sh builds (build-bench/, build-floor/); builds them if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
if [ ! -x build-bench/loupe-demo ] || [ ! -x build-bench/tests/beast_hello ] || [ ! -x build-floor/loupe-demo ]; then
  cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOUPE_BUILD_BENCH=ON -DLOUPE_BUILD_TESTS=OFF >/dev/null
  cmake --build build-bench -j 2 --target loupe-demo beast_hello >/dev/null
  cmake -S . -B build-floor -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOUPE_TRACKING=OFF -DLOUPE_HTTP_METRICS=OFF \
    -DLOUPE_BUILD_TESTS=OFF >/dev/null
  cmake --build build-floor -j 2 --target loupe-demo >/dev/null
fi
NAME=${1:?server name}
SECS=${2:-6}
OUT=$(mktemp -d)
trap 'kill "$SPID" 2>/dev/null || true; rm -rf "$OUT"' EXIT
P=$((20000 + RANDOM % 12000))
CG=(valgrind --tool=callgrind "--callgrind-out-file=$OUT/cg.%p")
case $NAME in
  loupe) "${CG[@]}" build-bench/loupe-demo --port $P --monitor off --access-log off >/dev/null 2>&1 & ;;
  loupe+access) "${CG[@]}" build-bench/loupe-demo --port $P --monitor off --access-log on >/dev/null 2>&1 & ;;
  loupe-floor) "${CG[@]}" build-floor/loupe-demo --port $P --monitor off --access-log off >/dev/null 2>&1 & ;;
  beast) "${CG[@]}" build-bench/tests/beast_hello $P >/dev/null 2>&1 & ;;
  *) echo "unknown server $NAME" >&2; exit 2 ;;
esac
SPID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$P/" && break; sleep 0.2; done
wrk -t1 -c8 -d2s "http://127.0.0.1:$P/" >/dev/null           # warm-up
callgrind_control -z "$SPID" >/dev/null 2>&1
wrk -t1 -c8 -d"${SECS}s" "http://127.0.0.1:$P/" >"$OUT/wrk"
callgrind_control -d "$SPID" >/dev/null 2>&1
sleep 0.5
N=$(awk '/requests in/ {print $1}' "$OUT/wrk")
F=$(ls -t "$OUT"/cg.* | head -1)
T=$(callgrind_annotate "$F" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$NAME: $N requests, $((T / N)) instructions per request"
