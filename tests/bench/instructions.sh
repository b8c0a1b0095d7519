#!/usr/bin/env bash
# Instructions per request (user space, the whole process) under valgrind's
# callgrind: a deterministic measure of the request path that a noisy machine
# does not disturb, for comparing changes. Counted after a warm-up, over
# `seconds` of wrk -c8 GET /.
#
#   tests/bench/instructions.sh SERVER [seconds]     SERVER: loupe | loupe+access | loupe-floor | beast
#
# Needs the Release trees compare.sh builds (build-bench/, build-floor/) and valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."
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
