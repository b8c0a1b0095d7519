#!/usr/bin/env bash
# attack_e2e.sh — slow-client attacks against loupe-demo while a probe is served.
#
#   bash tests/e2e/attack_e2e.sh build/loupe-demo [seconds-per-attack]
#
# The demo runs with short limits (header 2 s, body 3 s, write 3 s,
# keep-alive 5 s). One after another, each for a bounded time: slowhttptest's
# slowloris (-H: headers that never end), slow body (-B: a body a few bytes a
# second) and slow read (-X: a client reading 1 MiB responses 32 bytes a
# second through a tiny window), then a blank-line slowloris (connections that send
# only CRLF, twice a second). Meanwhile a probe sends GET / every 0.25 s.
#
# Passes when the probe saw no failure (every answer 200 within 2 s), every
# attack got its connections open and the server cut each of them at the
# configured timeout (no attacker connection left open at the end), and the
# demo exits 0 on SIGTERM. Prints the figures per attack. Every wait is
# bounded; exits non-zero on a failure (2: a tool is missing).
set -u

DEMO="${1:?usage: attack_e2e.sh /path/to/loupe-demo [seconds-per-attack]}"
LEN="${2:-10}"
source "$(dirname "$0")/lib.sh"
e2e_init attack_e2e curl slowhttptest python3 timeout

HEADER_S=2 BODY_S=3 WRITE_S=3
demo_start attack --log-level warn --access-log off \
  --header-timeout-ms $((HEADER_S * 1000)) --body-timeout-ms $((BODY_S * 1000)) \
  --write-timeout-ms $((WRITE_S * 1000)) --keepalive-timeout-ms 5000 || die "the demo did not start: $DEMO_START_ERROR"
URL="$BASE"
echo "loupe-demo on $URL (header timeout ${HEADER_S}s, body ${BODY_S}s, write ${WRITE_S}s); ${LEN}s per attack"

# ---- the probe ------------------------------------------------------------------
(
  while :; do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$URL/" 2>/dev/null)
    echo "${code:-000}" >>"$TMP/probe.txt"
    sleep 0.25
  done
) &
PROBE_PID=$!
PROBE_START=$SECONDS

# The server's view of an attack: its established connections on PORT, every
# 0.25 s (read from /proc/net/tcp, so no other tool is needed).
cat >"$TMP/watch.py" <<'EOF'
import sys, time
port, seconds, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
def established():
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:
                n += 1
    return n
start = time.monotonic()
with open(out, "w") as o:
    while time.monotonic() - start < seconds:
        o.write(f"{time.monotonic() - start:.2f} {established()}\n")
        o.flush()
        time.sleep(0.25)
EOF

# attack NAME TIMEOUT CONNECTIONS RATE ARGS...: slowhttptest for $LEN s while
# the server's established connections are counted. Passes when the attack
# got its connections open and the server had cut every one of them (none
# left but the probe's) by the time the last one could have connected, plus
# TIMEOUT, plus 2 s of slack — and before slowhttptest's own end.
attack() {
  local name=$1 timeout_s=$2 conns=$3 rate=$4; shift 4
  echo "+ slowhttptest $* -c $conns -r $rate -l $LEN"
  python3 "$TMP/watch.py" "$PORT" "$LEN" "$TMP/$name.watch" &
  local watcher=$!
  timeout $((LEN + 30)) slowhttptest "$@" -c "$conns" -r "$rate" -l "$LEN" -p 2 >"$TMP/$name.log" 2>&1
  wait "$watcher"
  python3 - "$TMP/$name.watch" "$name" "$timeout_s" "$conns" "$rate" "$LEN" <<'EOF' >"$TMP/$name.verdict"
import sys
path, name = sys.argv[1], sys.argv[2]
timeout_s, conns, rate, length = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
samples = [tuple(map(float, l.split())) for l in open(path) if l.strip()]
peak_t, peak = max(samples, key=lambda s: s[1]) if samples else (0.0, 0.0)
ramp = conns / rate
gone = next((t for t, n in samples if t > peak_t and n <= 2), None)  # the probe's may be there
bound = ramp + timeout_s + 2
print(f"{name}: {conns} attacker connections at {rate}/s; the server held at most {int(peak)} at once "
      f"(at {peak_t:.1f} s) and had cut them all by " + (f"{gone:.1f} s" if gone is not None else "never") +
      f" (the last one connected by {ramp:.1f} s; timeout {timeout_s:.0f} s)")
ok = peak >= min(conns, 20) and gone is not None and gone <= bound and gone < length - 0.5
print("ok" if ok else "not ok")
EOF
  head -1 "$TMP/$name.verdict"
  if [[ "$(tail -1 "$TMP/$name.verdict")" == ok ]]; then
    pass "$name: the attacker's connections were cut at the ${timeout_s} s timeout"
  else
    fail "$name" "$(head -1 "$TMP/$name.verdict")"
  fi
}

attack slowloris "$HEADER_S" 500 200 -H -i 1 -x 24 -u "$URL/"
attack slow-body "$BODY_S" 500 200 -B -i 1 -s 100000 -x 24 -u "$URL/echo"
# Ten 1 MiB responses per connection, far more than the kernel buffers: the
# server's writes wait on the attacker, who reads 32 bytes a second.
attack slow-read "$WRITE_S" 200 100 -X -k 10 -n 1 -z 32 -w 512 -y 1024 -u "$URL/bytes?n=1048576"

# ---- blank-line slowloris ----------------------------------------------------------
echo "+ blank-line slowloris: 300 connections sending CRLF twice a second for ${LEN}s"
timeout $((LEN + 30)) python3 - 127.0.0.1 "$PORT" "$LEN" <<'EOF' >"$TMP/blank.txt"
import socket, sys, time, selectors
host, port, length = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sel = selectors.DefaultSelector()
opened = {}
for _ in range(300):
    s = socket.create_connection((host, port))
    s.setblocking(False)
    opened[s] = time.monotonic()
    sel.register(s, selectors.EVENT_READ)
lived = []
start = time.monotonic()
next_send = start
while opened and time.monotonic() - start < length:
    now = time.monotonic()
    if now >= next_send:
        for s in list(opened):
            try:
                s.send(b"\r\n")
            except OSError:
                pass
        next_send = now + 0.5
    for key, _ in sel.select(timeout=max(0.0, next_send - time.monotonic())):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:  # closed by the server
            lived.append(time.monotonic() - opened.pop(s))
            sel.unregister(s)
            s.close()
lived.sort()
left = len(opened)
if lived:
    print(f"blank-line slowloris: 300 connections, {len(lived)} cut by the server after "
          f"{lived[0]:.2f}-{lived[-1]:.2f} s (median {lived[len(lived)//2]:.2f} s), {left} still open after {length:.0f} s")
else:
    print(f"blank-line slowloris: none of 300 connections cut, {left} still open after {length:.0f} s")
print("max", lived[-1] if lived else 1e9, "left", left)
EOF
head -1 "$TMP/blank.txt"
read -r _ MAXLIVED _ LEFT < <(tail -1 "$TMP/blank.txt")
if [[ "$LEFT" == 0 ]] && python3 -c "import sys; sys.exit(0 if $MAXLIVED <= $HEADER_S + 1.5 else 1)"; then
  pass "blank-line slowloris: every connection was cut at the ${HEADER_S} s header timeout"
else
  fail "blank-line slowloris" "$(head -1 "$TMP/blank.txt")"
fi

# ---- the probe's view ------------------------------------------------------------------
kill_tree "$PROBE_PID"
TOTAL=$(wc -l <"$TMP/probe.txt")
BAD=$(grep -cv '^200$' "$TMP/probe.txt")
echo "probe: $TOTAL requests of GET / during the attacks, $BAD failed ($(sort "$TMP/probe.txt" | uniq -c | tr '\n' ' '))"
if [[ "$TOTAL" -ge $(((SECONDS - PROBE_START) * 2)) && "$BAD" -eq 0 ]]; then
  pass "the probe was served throughout (no failure in $TOTAL requests)"
else
  fail "the probe was served throughout" "$BAD of $TOTAL failed"
fi

demo_stop 20
EXIT=$EXIT_CODE
if [[ $EXIT == 0 ]] && ! grep -q '"level":"error"' "$DEMO_ERR"; then
  pass "the demo exits 0 on SIGTERM, with no ERROR record"
else
  fail "clean exit" "exit $EXIT; $(grep '"level":"error"' "$DEMO_ERR" | head -2)"
fi

summary
