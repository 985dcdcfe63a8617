# Shared helpers for the end-to-end tests. Each test script sources this,
# runs the real binary ($GIGAFAB) in a fresh temporary directory and asserts
# on stdout, stderr, exit codes and the resulting git history.
set -euo pipefail
: "${GIGAFAB:?set GIGAFAB to the gigafab binary}"
GIGAFAB=$(cd "$(dirname "$GIGAFAB")" && pwd)/$(basename "$GIGAFAB")
TEST_DIR=$(mktemp -d /tmp/gigafab-e2e.XXXXXX)
BACKGROUND_PIDS=()
cleanup() {
  local pid lock
  for pid in "${BACKGROUND_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  # A stopped server may still be finishing a commit or letting go of its
  # spare files: wait for it (a CI run saw an rm race a serve's last writes).
  for pid in "${BACKGROUND_PIDS[@]}"; do
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # A store's own background gc may still run: let it finish before the rm.
  while IFS= read -r lock; do timeout 120 flock "$lock" true 2>/dev/null || true; done \
    < <(find "$TEST_DIR" -name gigafab-gc.lock 2>/dev/null)
  rm -rf "$TEST_DIR"
}
trap cleanup EXIT
cd "$TEST_DIR"
unset GIGAFAB_STORE GIGAFAB_API GIGAFAB_TOKEN GIGAFAB_PRODUCT GIGAFAB_PROFILES GIGAFAB_NOW
export GIGAFAB_ACTOR=tester

gf() { "$GIGAFAB" "$@"; }

# Files a test names here (say, the logs of processes it ran in the
# background) are printed by fail(), since the test's directory goes with it.
DUMP_ON_FAIL=()

fail() {
  echo "FAIL: $*" >&2
  [ -n "${OUT:-}" ] && echo "--- stdout:" >&2 && echo "$OUT" >&2
  [ -n "${ERR:-}" ] && echo "--- stderr:" >&2 && echo "$ERR" >&2
  local file
  for file in "${DUMP_ON_FAIL[@]}"; do
    [ -f "$file" ] && echo "--- $file:" >&2 && cat "$file" >&2
  done
  exit 1
}

# run CMD...: runs without aborting; sets OUT, ERR and RC.
run() {
  set +e
  OUT=$("$@" 2>"$TEST_DIR/.stderr")
  RC=$?
  set -e
  ERR=$(cat "$TEST_DIR/.stderr")
}

expect_rc() { [ "$RC" -eq "$1" ] || fail "expected exit $1, got $RC"; }
expect_out() { [[ "$OUT" == *"$1"* ]] || fail "stdout lacks: $1"; }
expect_err() { [[ "$ERR" == *"$1"* ]] || fail "stderr lacks: $1"; }
expect_out_re() { [[ "$OUT" =~ $1 ]] || fail "stdout does not match: $1"; }
expect_eq() { [ "$1" == "$2" ] || fail "${3:-values differ}: expected '$2', got '$1'"; }

# tip STORE: the commit refs/gigafab/state points at.
tip() { git --git-dir "$1" rev-parse refs/gigafab/state; }
# count_commits STORE
count_commits() { git --git-dir "$1" rev-list --count refs/gigafab/state; }
# json EXPR: evaluates a python expression over the JSON in $OUT (bound to d).
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)" <<<"$OUT"; }

# manifest FILE TITLE [EXTRA-FRONT-MATTER-LINES]: writes a small valid manifest.
manifest() {
  printf '+++\n%b+++\n# %s\n\nDo the thing.\n' "${3:-}" "$2" >"$1"
}

# fsck_clean STORE: git fsck finds nothing wrong.
fsck_clean() {
  local out rc=0
  # git fsck is not safe against a concurrent repack (neither is it with git
  # gc): wait for the store's background gc, if one runs.
  [ -e "$1/gigafab-gc.lock" ] && flock "$1/gigafab-gc.lock" true
  out=$(git --git-dir "$1" fsck --strict --no-dangling 2>&1) || rc=$?
  [ "$rc" -eq 0 ] || fail "git fsck failed on $1: $out"
  if grep -qiE 'error|missing|broken|corrupt|bad' <<<"$out"; then fail "git fsck complained on $1: $out"; fi
}

# claim_until_empty FACTORY OUT ERR: claims until nothing is left (exit 6),
# one "ID EPOCH" line per claim appended to OUT, stderr to ERR; any other
# exit is noted in ERR and returns 1.
claim_until_empty() {
  local rc
  while :; do
    rc=0
    "$GIGAFAB" claim --factory "$1" --ttl 600 >>"$2" 2>>"$3" || rc=$?
    [ "$rc" -eq 0 ] && continue
    [ "$rc" -eq 6 ] && return 0
    echo "claimer $1 exited $rc" >>"$3"
    return 1
  done
}

pass() { echo "PASS: $(basename "$0")"; }

# start_server STORE [SERVE-ARGS...]: runs `gigafab serve` on a free loopback
# port in the background; sets URL (http://127.0.0.1:PORT) and SERVER_PID.
# Stopped when the test exits.
start_server() {
  local store=$1 i
  shift
  : >"$TEST_DIR/.serve.out"
  "$GIGAFAB" --store "$store" serve --listen 127.0.0.1:0 "$@" >"$TEST_DIR/.serve.out" 2>"$TEST_DIR/.serve.err" &
  SERVER_PID=$!
  BACKGROUND_PIDS+=("$SERVER_PID")
  URL=""
  for i in $(seq 200); do
    URL=$(sed -n 's|^gigafab: serving \(http://[^ ]*\)/api/fleet .*|\1|p' "$TEST_DIR/.serve.out")
    [ -n "$URL" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  fail "gigafab serve did not start: $(cat "$TEST_DIR/.serve.err")"
}

# http METHOD PATH TOKEN [BODY] [CURL-ARGS...]: one request to $URL; sets OUT
# (the response body), STATUS (the HTTP status) and HEADERS. An empty TOKEN
# sends no Authorization header.
http() {
  local method=$1 path=$2 token=$3 body=${4:-}
  shift 3
  [ $# -gt 0 ] && shift
  local args=(-s -X "$method" -o "$TEST_DIR/.body" -D "$TEST_DIR/.headers" -w '%{http_code}' "$@")
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  if [ -n "$body" ]; then
    args+=(-H 'Content-Type: application/json' --data-binary "$body")
  elif [ $# -eq 0 ] && [ "$method" != GET ]; then
    args+=(--data-binary "")  # Content-Length: 0, as HTTP clients send
  fi
  STATUS=$(curl "${args[@]}" "$URL$path") || STATUS=000
  OUT=$(cat "$TEST_DIR/.body")
  HEADERS=$(cat "$TEST_DIR/.headers" 2>/dev/null || true)
  ERR=""
}
expect_status() { [ "$STATUS" == "$1" ] || fail "expected HTTP $1, got $STATUS"; }
