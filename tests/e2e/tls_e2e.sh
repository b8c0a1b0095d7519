#!/usr/bin/env bash
# tls_e2e.sh — loupe-demo over HTTPS with real peers: curl, openssl s_client
# and Python's aiohttp (Debian's python3-aiohttp).
#
#   bash tests/e2e/tls_e2e.sh build/loupe-demo
#
# Makes a throw-away CA and certificates with the openssl command (in $TMP,
# removed at exit), then checks: bad --tls-* flags stop start-up with exit 2
# before anything binds; curl --cacert gets 200 over HTTP/1.1 on one kept-alive
# connection and is refused without it (counted by the server); plain HTTP to
# the port gets a 400 saying so; s_client negotiates TLS 1.3 and 1.2, ALPN
# http/1.1 (and none for h2 alone), and TLS 1.1 is refused; aiohttp fetches
# over HTTPS and echoes over WSS, verifying against the CA; SIGHUP loads a new certificate (a new
# serial for new connections) while a request in flight on the old one
# finishes, and a broken file on SIGHUP keeps the old certificate. Every wait
# is bounded.
set -u

DEMO="${1:?usage: tls_e2e.sh /path/to/loupe-demo}"
source "$(dirname "$0")/lib.sh"
e2e_init tls curl openssl timeout

PY=/usr/bin/python3  # Debian's, with python3-aiohttp

# ---- certificates ----------------------------------------------------------------
# leaf NAME: a P-256 key and a certificate for localhost and 127.0.0.1 signed by the CA.
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=loupe e2e CA" \
    -keyout "$TMP/ca.key" -out "$TMP/ca.crt" 2>/dev/null
}
leaf() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$TMP/$1.key" -out "$TMP/$1.csr" 2>/dev/null &&
    openssl x509 -req -in "$TMP/$1.csr" -CA "$TMP/ca.crt" -CAkey "$TMP/ca.key" -days 2 \
      -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n') \
      -out "$TMP/$1.crt" 2>/dev/null
}
serial_of() { openssl x509 -noout -serial -in "$1" | cut -d= -f2; }
# The serial of the certificate the demo serves to a new connection now.
served_serial() {
  timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}
ca && leaf site && leaf next || die "cannot make certificates with openssl"
cp "$TMP/site.crt" "$TMP/live.crt"
cp "$TMP/site.key" "$TMP/live.key"

# =======================================================================================

section "bad TLS flags stop start-up (exit 2, nothing bound)"
bad_flags() {
  local name=$1 expect=$2; shift 2
  show_cmd "$DEMO" --port 0 --monitor off "$@"
  timeout 10 "$DEMO" --port 0 --monitor off "$@" >"$TMP/bad.out" 2>"$TMP/bad.err"
  local rc=$?
  sed 's/^/  /' "$TMP/bad.err"
  expect_eq "$name exit code" "$rc" 2
  expect_contains "$name message" "$(cat "$TMP/bad.err")" "$expect"
  expect_eq "$name bound nothing" "$(grep -c 'Running on' "$TMP/bad.out")" 0
}
bad_flags "key without cert" "--tls-key needs --tls-cert" --tls-key "$TMP/site.key"
bad_flags "missing cert file" "$TMP/nope.crt" --tls-cert "$TMP/nope.crt" --tls-key "$TMP/site.key"
bad_flags "key of another cert" "does not match" --tls-cert "$TMP/site.crt" --tls-key "$TMP/next.key"

section "start-up with --tls-cert and --tls-key"
start_checked https --tls-cert "$TMP/live.crt" --tls-key "$TMP/live.key" --log-format json || die
expect_match "serves https" "$BASE" '^https://localhost:[0-9]+$'

section "curl --cacert: HTTP/1.1 on one kept-alive connection"
show_cmd curl -sS --cacert ca.crt "$BASE/" "$BASE/json"
out="$(timeout 15 curl -sS --max-time 10 --cacert "$TMP/ca.crt" "$BASE/" "$BASE/json" \
  -w ' [%{http_code} HTTP/%{http_version} connects=%{num_connects}]\n' 2>&1)"
echo "$out"
expect_contains "GET / over https" "$out" "Hello, world! [200 HTTP/1.1 connects=1]"
expect_contains "keep-alive reuses the connection" "$out" "[200 HTTP/1.1 connects=0]"

section "curl without the CA: refused, and counted by the server"
do_curl "$BASE/"
expect_eq "untrusted: curl exit code 60" "$CURL_RC" 60
do_curl --cacert "$TMP/ca.crt" "$BASE/metrics"
check "handshake failure counted" "$BODYF" '^http_server_tls_handshake_failures_total\{.*reason="certificate_rejected".*\} [1-9]'
check "handshakes counted by version" "$BODYF" '^http_server_tls_handshakes_total\{.*tls_protocol_version="TLSv1.3".*\} [1-9]'

section "the demo's own client over https: /fanout calls itself"
do_curl --cacert "$TMP/ca.crt" "$BASE/fanout"
expect_eq "fanout status" "$STATUS" 200
expect_contains "fanout over https" "$BODY" '"json":{"data":"Hello, world!"}'

section "plain HTTP to the HTTPS port"
do_curl "http://127.0.0.1:$PORT/"
expect_eq "plain http status" "$STATUS" 400
expect_contains "plain http is told" "$BODY" "use https://"

section "openssl s_client: protocols and ALPN"
s_client() {
  show_cmd openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile ca.crt "$@"
  timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$TMP/ca.crt" "$@" \
    </dev/null 2>&1 | grep -E '^(New,|ALPN|No ALPN|Verify return code)|alert' | sed 's/^ *//' | sort -u
}
out="$(s_client -alpn h2,http/1.1)"
echo "$out"
expect_contains "TLS 1.3 by default" "$out" "New, TLSv1.3"
expect_contains "ALPN http/1.1 chosen over h2" "$out" "ALPN protocol: http/1.1"
expect_contains "verified" "$out" "Verify return code: 0 (ok)"
out="$(s_client -tls1_2 -alpn http/1.1)"
echo "$out"
expect_contains "TLS 1.2" "$out" "New, TLSv1.2"
out="$(s_client -alpn h2)"
echo "$out"
expect_contains "h2 alone: no ALPN" "$out" "No ALPN negotiated"
out="$(s_client -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')"
echo "$out"
expect_contains "TLS 1.1 refused" "$out" "alert protocol version"

section "Python aiohttp as an HTTPS client"
if [[ -x "$PY" ]] && "$PY" -c 'import aiohttp' 2>/dev/null; then
  cat >"$TMP/client.py" <<'EOF'
import asyncio, ssl, sys
import aiohttp

async def main(base, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/json", ssl=ctx) as r:
            print(r.status, r.version, await r.text())
        async with s.post(base + "/echo", data=b"x" * 300000, ssl=ctx) as r:
            print(r.status, len(await r.read()))
        async with s.ws_connect(base.replace("https://", "wss://") + "/ws", ssl=ctx) as ws:
            await ws.send_str("over wss")
            msg = await ws.receive()
            print("wss echo:", msg.data)
            await ws.send_bytes(b"b" * 100000)
            msg = await ws.receive()
            print("wss binary:", len(msg.data))
    async with aiohttp.ClientSession() as s:
        try:
            async with s.get(base + "/", ssl=ssl.create_default_context()) as r:
                print("unexpected", r.status)
        except aiohttp.ClientConnectorCertificateError as e:
            print("untrusted:", type(e).__name__)

asyncio.run(main(sys.argv[1], sys.argv[2]))
EOF
  show_cmd "$PY" client.py "$BASE" ca.crt
  out="$(timeout 20 "$PY" "$TMP/client.py" "$BASE" "$TMP/ca.crt" 2>&1)"
  echo "$out"
  expect_contains "aiohttp GET /json" "$out" '200 HttpVersion(major=1, minor=1) {"data":"Hello, world!"}'
  expect_contains "aiohttp POST 300 kB" "$out" "200 300000"
  expect_contains "aiohttp wss echo" "$out" "wss echo: over wss"
  expect_contains "aiohttp wss 100 kB binary" "$out" "wss binary: 100000"
  expect_contains "aiohttp refuses without the CA" "$out" "untrusted: ClientConnectorCertificateError"
else
  fail "aiohttp" "$PY with aiohttp is not installed (apt-get install python3-aiohttp)"
fi

section "SIGHUP reloads the certificate; a request in flight finishes"
before="$(served_serial)"
expect_eq "serving the first certificate" "$before" "$(serial_of "$TMP/site.crt")"
timeout 15 curl -sS --max-time 10 --cacert "$TMP/ca.crt" "$BASE/sleep?ms=1500" -o "$TMP/slow.body" \
  -w '%{http_code}' >"$TMP/slow.status" 2>&1 &
slow=$!
wait_until 5 grep -q '"path":"/sleep"' "$DEMO_OUT" "$DEMO_ERR" || true
sleep 0.3  # (the request is on the wire: its connection was made with the first certificate)
cp "$TMP/next.crt" "$TMP/live.crt"
cp "$TMP/next.key" "$TMP/live.key"
echo "\$ kill -HUP \$DEMO_PID"
kill -HUP "$DEMO_PID"
wait_until 5 grep -q 'TLS certificate reloaded' "$DEMO_OUT" "$DEMO_ERR"
check "reload logged" "$DEMO_ERR" 'SIGHUP: TLS certificate reloaded'
after="$(served_serial)"
expect_eq "new connections get the new certificate" "$after" "$(serial_of "$TMP/next.crt")"
wait "$slow"
expect_eq "the request in flight finished" "$(cat "$TMP/slow.status")" 200
echo "not a certificate" >"$TMP/live.crt"
kill -HUP "$DEMO_PID"
wait_until 5 grep -q 'not reloaded' "$DEMO_ERR"
check "a bad reload is a warning" "$DEMO_ERR" '"level":"warning".*TLS certificate not reloaded, keeping the current one'
expect_eq "and the current certificate stays" "$(served_serial)" "$(serial_of "$TMP/next.crt")"
if grep -q '"level":"error"' "$DEMO_ERR" "$DEMO_OUT"; then
  fail "no error records" "$(grep -h '"level":"error"' "$DEMO_ERR" "$DEMO_OUT" | head -3)"
else
  pass "no error records"
fi

section "shutdown"
demo_stop
expect_eq "exit code" "$EXIT_CODE" 0

summary
