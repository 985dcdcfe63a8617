# --api URL --token T: every command against `gigafab serve` prints the same
# and exits with the same code as against a local store.
#
# Two kinds of comparison, with the clock fixed by GIGAFAB_NOW on both sides
# (the server is restarted when the test moves time):
#   same CMD  reads the served store R locally (--store R) and through the API,
#             and wants byte-identical stdout, stderr and exit code;
#   both CMD  runs CMD on a local store L and through the API on R, which went
#             through the same history: stdout, stderr and exit code must
#             match once each side's job ids are replaced by J1, J2, ...
# Both want exit 0 unless called as RCWANT=N both|same CMD.
# Then: auth failures (7), local-only commands (2), a server that is down (1),
# and 8 concurrent API claimers over 200 jobs assigning each exactly once.
source "$(dirname "$0")/lib.sh"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY GIGAFAB_FACTORY
L=$TEST_DIR/local
R=$TEST_DIR/served
gf init --no-fsync "$L" >/dev/null
gf init --no-fsync "$R" >/dev/null
manifest plain.md "Plain job"
manifest reviewed.md "Reviewed job" 'review = true\n'
manifest linux.md "Needs linux" 'capabilities = ["linux"]\n'

NOW=2030-01-01T00:00:00.000Z
SERVER_PID=
URL=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap 'stop_server; rm -rf "$TEST_DIR"' EXIT
# start_server: serves R at time $NOW on a free port; sets URL.
start_server() {
  stop_server
  : >"$TEST_DIR/serve.out"
  GIGAFAB_NOW=$NOW "$GIGAFAB" --store "$R" serve --listen 127.0.0.1:0 >"$TEST_DIR/serve.out" 2>"$TEST_DIR/serve.err" &
  SERVER_PID=$!
  local line=
  for _ in $(seq 1 100); do
    line=$(grep -m1 '^gigafab: serving ' "$TEST_DIR/serve.out" || true)
    [ -n "$line" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "serve exited: $(cat "$TEST_DIR/serve.err")"
    sleep 0.1
  done
  [ -n "$line" ] || fail "serve did not print its URL"
  URL=$(sed -E 's/^gigafab: serving (http:[^ ]*) .*/\1/' <<<"$line")
  [[ "$URL" =~ ^http://127\.0\.0\.1:[0-9]+/api/fleet$ ]] || fail "unexpected serve line: $line"
}
# at TIME: moves the clock of both sides (restarts the server).
at() {
  NOW=$1
  start_server
}

loc() { GIGAFAB_NOW=$NOW "$GIGAFAB" --store "$L" "$@"; }
onr() { GIGAFAB_NOW=$NOW "$GIGAFAB" --store "$R" "$@"; }
TOKEN=
api() { "$GIGAFAB" --api "$URL" --token "$TOKEN" "$@"; }

LIDS=()
RIDS=()
# ids SIDE ARG: ARG with @N replaced by that side's Nth job id (1-based).
ids() {
  local -n list=$1
  local arg=$2 i
  for ((i = ${#list[@]}; i >= 1; i--)); do arg=${arg//@$i/${list[i - 1]}}; done
  printf '%s' "$arg"
}
# norm SIDE TEXT: TEXT with that side's job ids replaced by J1, J2, ...
norm() {
  local -n list=$1
  local text=$2 i
  for ((i = ${#list[@]}; i >= 1; i--)); do text=${text//${list[i - 1]}/J$i}; done
  printf '%s' "$text"
}
# compare WHAT: the last local run (LOUT/LERR/LRC) against the last run
# (OUT/ERR/RC), which must have exited $RCWANT (default 0).
compare() {
  [ "$LRC" -eq "$RC" ] || fail "$1: exit $LRC locally, $RC with --api (local stderr: $LERR)"
  [ "$RC" -eq "${RCWANT:-0}" ] || fail "$1: expected exit ${RCWANT:-0}, got $RC"
  [ "$LOUT" == "$OUT" ] || fail "$1: stdout differs; locally:
$LOUT"
  [ "$LERR" == "$ERR" ] || fail "$1: stderr differs; locally:
$LERR"
}
# both CMD...: CMD on L locally and on R through the API (ids normalized).
both() {
  local -a la=() ra=()
  local a
  for a in "$@"; do
    la+=("$(ids LIDS "$a")")
    ra+=("$(ids RIDS "$a")")
  done
  run loc "${la[@]}"
  LOUT=$(norm LIDS "$OUT") LERR=$(norm LIDS "$ERR") LRC=$RC
  run api "${ra[@]}"
  OUT=$(norm RIDS "$OUT") ERR=$(norm RIDS "$ERR")
  compare "$*"
}
# both_submit ARGS...: submits on both sides and records the new ids.
both_submit() {
  local -a la=() ra=()
  local a lid rid
  for a in "$@"; do
    la+=("$(ids LIDS "$a")")
    ra+=("$(ids RIDS "$a")")
  done
  lid=$(loc "${la[@]}") || fail "local submit $*"
  rid=$(api "${ra[@]}") || fail "api submit $*"
  LIDS+=("$lid")
  RIDS+=("$rid")
}
# same CMD...: CMD on R, locally and through the API: byte-identical.
same() {
  local -a ra=()
  local a
  for a in "$@"; do ra+=("$(ids RIDS "$a")"); done
  run onr "${ra[@]}"
  LOUT=$OUT LERR=$ERR LRC=$RC
  run api "${ra[@]}"
  compare "same $*"
}
# want RC: the last run exited RC.
want() { [ "$RC" -eq "$1" ] || fail "$CMD: expected exit $1, got $RC"; }
# run as in lib.sh, remembering the command for want's message.
run() {
  CMD="$*"
  set +e
  OUT=$("$@" 2>"$TEST_DIR/.stderr")
  RC=$?
  set -e
  ERR=$(cat "$TEST_DIR/.stderr")
}

# Tokens live in the served store; factories are enrolled on both sides alike.
TOKEN=$(onr token create --operator --all-products --name tester 2>/dev/null)
FA_TOKEN=$(onr factory enroll fa --caps linux,docker --seats 4 2>/dev/null)
loc factory enroll fa --caps linux,docker --seats 4 >/dev/null 2>&1
onr factory enroll fb --caps linux --seats 4 >/dev/null 2>&1
loc factory enroll fb --caps linux --seats 4 >/dev/null 2>&1
at $NOW

# ---- submit, list, show -------------------------------------------------------------
both_submit submit reviewed.md                        # @1
both_submit submit --priority high --idempotency-key k-1 plain.md   # @2
both --json submit --idempotency-key k-1 plain.md     # a duplicate: same job
expect_out '"duplicate": true'
both submit --idempotency-key k-1 plain.md
expect_eq "$OUT" "J2" "duplicate prints the first job"
both_submit submit --priority low linux.md            # @3
both_submit submit --dep @1 --profile backend-dev plain.md   # @4 (blocked)
RCWANT=1 both submit nosuch.md
RCWANT=2 both submit --priority urgent plain.md
RCWANT=2 both submit --dep j-../x plain.md
RCWANT=5 both submit --dep j-aaaaaaaa plain.md
printf '+++\ntitel = "x"\n+++\n# x\n' >typo.md
RCWANT=2 both submit typo.md
same list
same list --json
same list --stage queued,blocked
same --json list --stage blocked --stage queued
RCWANT=2 same list --stage nope
same show @1
same --json show @4
RCWANT=5 same show j-aaaaaaaa
RCWANT=5 same --json show j-aaaaaaaa
RCWANT=2 same show "j-../../x"

# ---- claim, the worker calls, the operator gates -----------------------------------------
both_submit --product caps submit linux.md           # @5
RCWANT=6 both --product caps claim --factory mac --caps macos,xcode
expect_err "nothing to claim for mac: 1 queued, none within capabilities [macos,xcode]"
RCWANT=6 both --json --product caps claim --factory mac --caps macos
both --json claim --factory fa --ttl 60
both claim --factory fb --ttl 60
expect_eq "$OUT" "J1 1" "claim prints ID EPOCH"
RCWANT=4 both report @1 --epoch 1 --factory fb --result pass
expect_err "cannot report job J1: it is assigned (report needs building)"
both start @1 --epoch 1 --factory fb
expect_eq "$OUT" "J1 building 1" "start"
RCWANT=4 both start @1 --epoch 1 --factory fb
RCWANT=3 both start @1 --epoch 1 --factory fa
expect_err "job J1 is leased to fb, not fa"
RCWANT=2 both --json start @1 --epoch 0 --factory fb
both checkpoint @1 --epoch 1 --factory fb --ref "refs/heads/gigafab/@1"
RCWANT=2 both checkpoint @1 --epoch 1 --factory fb --ref "../x"
both renew @1 --epoch 1 --factory fb --ttl 120
RCWANT=2 both --json renew @1 --epoch 1 --factory fb --ttl 0
RCWANT=3 both renew @1 --epoch 2 --factory fb
RCWANT=4 both approve @1
expect_err "cannot approve job J1: it is building (approve needs review)"
both report @1 --epoch 1 --factory fb --result pass --cost 0.25 --tokens 1000 --summary "added retries"
expect_eq "$OUT" "J1 review 1" "report"
RCWANT=2 both report @1 --epoch 1 --factory fb --result pass --cost -1
RCWANT=4 both ship @1
both --json approve @1
both ship @1
expect_eq "$OUT" "J1 shipped 1" "ship"
RCWANT=5 both ship j-aaaaaaaa
expect_err "job j-aaaaaaaa not found"
RCWANT=4 both --json requeue @1
same show @1
same --json show @1
same events @1
same --json events @1 --after 3
same events @1 --after -4
same log @1
same --json log --all @1
same log --limit 3
RCWANT=5 same events j-aaaaaaaa
RCWANT=5 same log j-aaaaaaaa
# The shipped dep unblocked @4.
same --json show @4

# The high-priority job @2 went to fa; start it and fail it; requeue; release.
both start @2 --epoch 1 --factory fa
both report @2 --epoch 1 --factory fa --result fail --summary "tests fail"
expect_eq "$OUT" "J2 failed 1" "report fail"
both requeue @2
expect_eq "$OUT" "J2 queued 2" "requeue"
both claim --factory fa --caps linux,docker
expect_eq "$OUT" "J2 2" "claim after a requeue"
RCWANT=3 both start @2 --epoch 1 --factory fa
expect_err "job J2 is fenced (epoch 1 < 2)"
RCWANT=3 both start @2 --epoch 3 --factory fa
both --json release @2 --epoch 2 --factory fa
RCWANT=3 both release @2 --epoch 2 --factory fa

# ---- factories, explain, weights, metrics -----------------------------------------------
both factory heartbeat --factory fa --load 0.5 --engine claude --usd-per-hour 2
both --json factory heartbeat --factory fb
RCWANT=2 both factory heartbeat --factory fa --seats 0
RCWANT=2 both factory heartbeat --factory "fa/x"
same factory list
same --json factory list
same explain @2
same --json explain @3
same explain @3 --factory fb
RCWANT=5 same explain @3 --factory nobody
RCWANT=5 same explain j-aaaaaaaa
same weights show
same --json weights show
both weights set weights.load=0.5 starvation_window=20m
both --json weights set aging_window=15m
RCWANT=2 both weights set bogus=1
same weights show
same metrics
same metrics --json
same --product other metrics --json
same --product other list --json

# ---- reap: an hour later every lease has expired -----------------------------------------
both claim --factory fb --ttl 30
at 2030-01-01T01:00:00.000Z
both reap
[ -n "$OUT" ] || fail "reap printed nothing"
both --json reap
same list
same --json show @2
same factory list
same metrics --json
same log

# ---- tokens through the API -----------------------------------------------------------------
run api factory enroll fc --caps gpu --seats 2
want 0
FC_TOKEN=$OUT
[[ "$FC_TOKEN" == gf_* ]] || fail "enroll prints the token"
expect_err "store it now"
run api factory enroll fc
want 4
run api --json factory rotate fc
want 0
FC_NEW=$(json 'd["token"]')
expect_eq "$(json 'd["factory"]')" fc "rotated token's factory"
run "$GIGAFAB" --api "$URL" --token "$FC_TOKEN" list
want 7
run "$GIGAFAB" --api "$URL" --token "$FC_NEW" factory heartbeat --factory fc
want 0
run api factory revoke fc
want 0
expect_out "revoked"
run "$GIGAFAB" --api "$URL" --token "$FC_NEW" list
want 7
run api factory rotate fc
want 5
run api factory rotate "../fc"
want 2

# ---- auth ------------------------------------------------------------------------------------
run "$GIGAFAB" --api "$URL" --token gf_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb list
want 7
[[ "$ERR" != *bbbbbbbb* ]] || fail "the token appears in a message"
run "$GIGAFAB" --api "$URL" --token nonsense --json list
want 7
expect_out '"code": "unauthorized"'
run "$GIGAFAB" --api "$URL" list
want 2
expect_err "--api needs a token"
# A factory token may not ship, nor act as another factory.
run "$GIGAFAB" --api "$URL" --token "$FA_TOKEN" ship "${RIDS[2]}"
want 7
run "$GIGAFAB" --api "$URL" --token "$FA_TOKEN" claim --factory fb
want 7
run "$GIGAFAB" --api "$URL" --token "$FA_TOKEN" --product other list
want 7
# GIGAFAB_API / GIGAFAB_TOKEN work like the flags.
run env GIGAFAB_API="${URL%/api/fleet}" GIGAFAB_TOKEN="$FA_TOKEN" "$GIGAFAB" claim --factory fa --caps linux,docker
want 0
expect_out_re "^j-[a-z2-7]{8} [0-9]+$"
run env GIGAFAB_API="$URL/" GIGAFAB_TOKEN="$FA_TOKEN" "$GIGAFAB" factory list
want 0
run "$GIGAFAB" --api ftp://example.com --token x list
want 2
expect_err "--api wants the server's URL"

# ---- local-only commands -------------------------------------------------------------------------
for cmd in "init $TEST_DIR/x" gc "token list" \
  "token create --operator" "metrics --prometheus" "serve --listen 127.0.0.1:0"; do
  # shellcheck disable=SC2086
  run api $cmd
  want 2
  expect_err "works only on a local store (not with --api)"
done
[ ! -e "$TEST_DIR/x" ] || fail "init --api created a store"

# ---- 8 concurrent API claimers over 200 jobs ---------------------------------------------------
for k in $(seq 1 8); do
  gf --store "$R" --product race factory enroll "w$k" --caps race --seats 200 >"$TEST_DIR/w$k.token" 2>/dev/null
done
for i in $(seq 1 200); do
  printf '+++\ncapabilities = ["race"]\n+++\n# race %s\n' "$i" >"$TEST_DIR/race.md"
  api --product race submit "$TEST_DIR/race.md" >>"$TEST_DIR/race.ids"
done
expect_eq "$(sort -u "$TEST_DIR/race.ids" | wc -l)" 200 "race jobs submitted"
for k in $(seq 1 8); do
  (
    tok=$(cat "$TEST_DIR/w$k.token")
    misses=0
    while [ "$misses" -lt 3 ]; do
      set +e
      line=$("$GIGAFAB" --api "$URL" --token "$tok" --product race claim --factory "w$k" 2>>"$TEST_DIR/w$k.err")
      rc=$?
      set -e
      if [ "$rc" -eq 0 ]; then
        echo "$line w$k" >>"$TEST_DIR/w$k.claims"
        misses=0
      elif [ "$rc" -eq 6 ]; then
        misses=$((misses + 1))
      else
        echo "claimer w$k: exit $rc" >>"$TEST_DIR/w$k.err"
        exit 1
      fi
    done
  ) &
done
for job in $(jobs -p); do
  [ "$job" == "$SERVER_PID" ] && continue
  wait "$job" || fail "a claimer failed: $(cat "$TEST_DIR"/w*.err)"
done
cat "$TEST_DIR"/w*.claims >"$TEST_DIR/claims"
expect_eq "$(wc -l <"$TEST_DIR/claims")" 200 "claims made"
expect_eq "$(awk '{print $1}' "$TEST_DIR/claims" | sort -u | wc -l)" 200 "distinct jobs claimed"
api --product race --json list >"$TEST_DIR/race.json" || fail "list --json over the API"
python3 - "$TEST_DIR/claims" "$TEST_DIR/race.ids" "$TEST_DIR/race.json" <<'EOF' || fail "claims and list disagree"
import json, sys
jobs = {j["id"]: j for j in json.load(open(sys.argv[3]))["jobs"]}
claims = [l.split() for l in open(sys.argv[1])]
submitted = set(open(sys.argv[2]).read().split())
assert set(jobs) == submitted, "list shows other jobs than were submitted"
assert {c[0] for c in claims} == submitted, "not every job was claimed exactly once"
for job_id, epoch, factory in claims:
    j = jobs[job_id]
    assert j["stage"] == "assigned" and j["leaseEpoch"] == int(epoch) == 1, j
    assert j["lastFactory"] == factory, (j["lastFactory"], factory)
EOF

# ---- the server is gone ---------------------------------------------------------------------------
stop_server
run api list
want 1
expect_err "cannot reach ${URL}"
run api --json show "${RIDS[0]}"
want 1
expect_out '"code": "error"'
fsck_clean "$R"
fsck_clean "$L"
pass
