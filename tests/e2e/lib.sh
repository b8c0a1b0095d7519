# lib.sh — what the end-to-end scripts in tests/e2e/ share. Each script sets
# DEMO (the loupe-demo binary, its $1), sources this file and calls e2e_init:
#
#   DEMO="${1:?usage: x.sh /path/to/loupe-demo}"
#   source "$(dirname "$0")/lib.sh"
#   e2e_init x curl nc timeout
#
# Every wait here is bounded. At exit (the end, a failure, Ctrl-C, SIGTERM)
# every process the script started, and whatever those started, is killed and
# $TMP is removed.
#
# e2e_init NAME TOOL...          prefix messages with NAME; exit 2 unless $DEMO is executable and each TOOL is on PATH; make $TMP; set the cleanup traps
# pass NAME                      count a passed check and print `PASS NAME`
# fail NAME DETAILS              count a failed check and print `FAIL NAME (DETAILS)`
# expect_eq NAME ACTUAL EXPECTED a check: ACTUAL is EXPECTED
# expect_contains NAME TEXT PART a check: TEXT contains PART
# expect_match NAME ACTUAL ERE   a check: ACTUAL matches the extended regex ERE
# check NAME FILE ERE            a check: a line of FILE matches the extended regex ERE
# summary                        print `NAME: P passed, F failed`; status 0 only if none failed
# die [MESSAGE]                  print `NAME: MESSAGE` and the summary, exit 1
# section TITLE...               print a `==== TITLE ====` heading
# quote ARG                      print ARG, shell-quoted only if it needs it
# show_cmd ARG...                print `$ ARG...`, each quoted as needed, for the transcript
# wait_until SECONDS CMD...      run CMD every 0.05 s until it succeeds (status 0) or SECONDS (an integer) have passed (status 1)
# wait_exit PID SECONDS          wait at most SECONDS for background process PID; EXIT_CODE = its exit code, or "timeout" (still running)
# kill_tree PID...               SIGKILL the processes and all their descendants (each stopped first, so none forks away) and reap them
# term_wait PID SECONDS LABEL    SIGTERM PID and wait at most SECONDS, then kill_tree it; prints and sets EXIT_CODE (or "timeout") and STOP_MS
# demo_start TAG [VAR=VALUE...] [FLAG...]  run [env VAR=VALUE...] $DEMO --port 0 --monitor-port 0 FLAG... in the background, wait at most 10 s for its ports; sets DEMO_PID PORT BASE (https://localhost:PORT with --tls-cert) MPORT DEMO_OUT DEMO_ERR, or kills it and returns 1 with the reason in DEMO_START_ERROR
# start_checked TAG [ARG...]     demo_start, counted as the check `start-TAG`
# demo_stop [SECONDS]            term_wait the demo (at most SECONDS, 10 by default); clears DEMO_PID
# do_curl CURL-ARG...            run curl (at most 10 s) and print the exchange; sets STATUS HDRS BODYF BODY CURL_RC
# header NAME                    print the value of response header NAME from the last do_curl
# console CMD...                 one session with the demo's console ($MPORT) through nc: the commands, one per line, then quit; the transcript on stdout (at most 10 s)

# ---- set-up and clean-up -------------------------------------------------------

e2e_init() {
  E2E_NAME=$1; shift
  PASSED=0
  FAILED=0
  if [[ ! -x "${DEMO:-}" ]]; then
    echo "$E2E_NAME: ${DEMO:-<no demo given>} is not an executable" >&2
    exit 2
  fi
  local tool missing=()
  for tool in "$@"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if ((${#missing[@]} > 0)); then
    echo "$E2E_NAME: required tool(s) missing: ${missing[*]}" >&2
    exit 2
  fi
  TMP="$(mktemp -d "${TMPDIR:-/tmp}/$E2E_NAME.XXXXXX")"
  trap _e2e_cleanup EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Kills everything descended from this shell, then removes $TMP.
_e2e_cleanup() {
  _e2e_scan
  local -a kids
  read -ra kids <<<"${_E2E_KIDS[$$]-}"
  ((${#kids[@]} == 0)) || kill_tree "${kids[@]}"
  rm -rf "$TMP"
}

# Fills _E2E_KIDS[PPID] with " PID PID..." for every process, from /proc (no
# child process, so nothing of its own shows up).
_e2e_scan() {
  local f line ppid
  _E2E_KIDS=()
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    ppid=${line##*) }         # after "PID (COMM) ": "STATE PPID ..."
    ppid=${ppid#* }
    ppid=${ppid%% *}
    _E2E_KIDS[ppid]+=" ${line%% *}"
  done
}

kill_tree() {
  local -a level=("$@") next kids all=()
  local p
  while ((${#level[@]} > 0)); do
    for p in "${level[@]}"; do kill -STOP "$p" 2>/dev/null && all+=("$p"); done
    _e2e_scan
    next=()
    for p in "${level[@]}"; do
      read -ra kids <<<"${_E2E_KIDS[$p]-}"
      next+=("${kids[@]}")
    done
    level=("${next[@]}")
  done
  ((${#all[@]} == 0)) && return 0
  kill -KILL "${all[@]}" 2>/dev/null
  for p in "${all[@]}"; do wait "$p" 2>/dev/null; done  # reaps our own children
  return 0
}

# ---- reporting ---------------------------------------------------------------

pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1 ($2)"; }

expect_eq() {
  if [[ "$2" == "$3" ]]; then pass "$1"; else fail "$1" "expected '$3', got '$2'"; fi
}
expect_contains() {
  if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1" "expected to contain '$3', got '${2:0:300}'"; fi
}
expect_match() {
  if [[ "$2" =~ $3 ]]; then pass "$1"; else fail "$1" "expected to match /$3/, got '${2:0:300}'"; fi
}
check() {
  if grep -Eq -- "$3" "$2"; then pass "$1"; else fail "$1" "no match for /$3/"; fi
}

summary() {
  echo "$E2E_NAME: $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}
die() {
  [[ -z "${1:-}" ]] || echo "$E2E_NAME: $1"
  summary
  exit 1
}

section() { printf '\n==== %s ====\n' "$*"; }

quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:@%+=,-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
show_cmd() {
  local out="\$" a
  for a in "$@"; do out+=" $(quote "$a")"; done
  echo "$out"
}

# ---- bounded waits -------------------------------------------------------------

_e2e_us() { _E2E_US=${EPOCHREALTIME//[!0-9]/}; }  # microseconds since the epoch

wait_until() {
  local secs=$1 deadline; shift
  _e2e_us
  deadline=$((_E2E_US + secs * 1000000))
  while :; do
    "$@" && return 0
    _e2e_us
    ((_E2E_US < deadline)) || return 1
    sleep 0.05
  done
}

_e2e_gone() { ! kill -0 "$1" 2>/dev/null; }

wait_exit() {
  if wait_until "$2" _e2e_gone "$1"; then
    wait "$1"
    EXIT_CODE=$?
  else
    EXIT_CODE=timeout
  fi
}

term_wait() {
  local pid=$1 secs=$2 label=$3 t0
  echo
  echo "\$ kill -TERM $pid   # $label"
  kill -TERM "$pid" 2>/dev/null
  _e2e_us
  t0=$_E2E_US
  wait_exit "$pid" "$secs"
  _e2e_us
  STOP_MS=$(((_E2E_US - t0) / 1000))
  if [[ "$EXIT_CODE" == timeout ]]; then
    echo "  ($label still running $secs s after SIGTERM: killed)"
    kill_tree "$pid"
  fi
  echo "  $label exit code: $EXIT_CODE (${STOP_MS} ms after SIGTERM)"
}

# ---- the demo ------------------------------------------------------------------

# True once the demo's stdout names its port (and its console's unless
# --monitor off), or once the demo has exited.
_e2e_demo_up() {
  PORT="$(sed -n 's|.*Running on https\{0,1\}://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$DEMO_OUT" | head -n 1)"
  MPORT="$(sed -n 's|.*Monitor console on [^ ]*:\([0-9][0-9]*\).*|\1|p' "$DEMO_OUT" | head -n 1)"
  [[ -n "$PORT" && ($_E2E_CONSOLE == no || -n "$MPORT") ]] || _e2e_gone "$DEMO_PID"
}

demo_start() {
  local tag=$1 a prev=""; shift
  local -a env=() cmd
  while (($# > 0)) && [[ "$1" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do env+=("$1"); shift; done
  cmd=("$DEMO" --port 0 --monitor-port 0 "$@")
  ((${#env[@]} == 0)) || cmd=(env "${env[@]}" "${cmd[@]}")
  _E2E_CONSOLE=yes
  for a in "$@"; do
    [[ "$prev" == --monitor && "$a" == off ]] && _E2E_CONSOLE=no
    prev=$a
  done
  DEMO_OUT="$TMP/$tag.stdout"
  DEMO_ERR="$TMP/$tag.stderr"
  : >"$DEMO_OUT"; : >"$DEMO_ERR"
  wait_until 10 test -x "$DEMO"  # mid-rebuild?
  show_cmd "${cmd[@]}"
  "${cmd[@]}" >"$DEMO_OUT" 2>"$DEMO_ERR" &
  DEMO_PID=$!
  DEMO_START_ERROR=""
  wait_until 10 _e2e_demo_up
  if [[ -z "$PORT" || ($_E2E_CONSOLE == yes && -z "$MPORT") ]]; then
    local line="'Running on'"
    [[ -z "$PORT" ]] || line="'Monitor console on'"
    DEMO_START_ERROR="no $line line (exited, or 10 s passed); stdout: $(head -c 500 "$DEMO_OUT"); stderr: $(head -c 500 "$DEMO_ERR")"
    kill_tree "$DEMO_PID"
    DEMO_PID=""
    return 1
  fi
  BASE="http://127.0.0.1:$PORT"
  grep -q 'Running on https://' "$DEMO_OUT" && BASE="https://localhost:$PORT"
  grep -E 'Running on|Monitor console on' "$DEMO_OUT"
  return 0
}

start_checked() {
  if demo_start "$@"; then
    pass "start-$1"
  else
    fail "start-$1" "$DEMO_START_ERROR"
    return 1
  fi
}

demo_stop() {
  term_wait "$DEMO_PID" "${1:-10}" "the demo"
  DEMO_PID=""
}

# ---- curl ----------------------------------------------------------------------

_E2E_REQ=0
do_curl() {
  _E2E_REQ=$((_E2E_REQ + 1))
  HDRS="$TMP/req$_E2E_REQ.headers"
  BODYF="$TMP/req$_E2E_REQ.body"
  local err="$TMP/req$_E2E_REQ.err" a size
  : >"$HDRS"; : >"$BODYF"
  echo
  show_cmd curl "$@"
  STATUS="$(timeout 15 curl -sS --max-time 10 -D "$HDRS" -o "$BODYF" -w '%{http_code}' "$@" 2>"$err")"
  CURL_RC=$?
  # With -I (HEAD) curl writes the headers where the body would go.
  for a in "$@"; do [[ "$a" == -I || "$a" == --head ]] && : >"$BODYF"; done
  BODY="$(cat "$BODYF")"
  if [[ $CURL_RC -ne 0 ]]; then
    echo "  (curl exit code $CURL_RC: $(tr '\n' ' ' <"$err"))"
  fi
  tr -d '\r' <"$HDRS" | sed -e '/^$/d' -e 's/^/< /'
  size=$(wc -c <"$BODYF")
  if ((size == 0)); then
    echo "< [no body]"
  elif ((size <= 400)); then
    echo "< $BODY"
  else
    echo "< [$size bytes of body]"
  fi
}

header() {
  tr -d '\r' <"$HDRS" | awk -v name="$1" '
    tolower(substr($0, 1, length(name) + 1)) == tolower(name) ":" { sub(/^[^:]*:[ \t]*/, ""); v = $0 }
    END { print v }'
}

# ---- the console -----------------------------------------------------------------

# (nc -N: done as soon as the console has answered quit and closed; with -q 3
# every session took 3 s more, longer than some of the waits it watches.)
console() {
  printf '%s\n' "$@" quit | timeout 10 nc -N 127.0.0.1 "$MPORT"
}
