# Crash safety: 20 rounds of an 8-way claim storm in which one claimer is
# killed with SIGKILL at a random moment. After every round the store is
# intact (git fsck, the ref at a complete commit), every printed claim is
# recorded to the factory that printed it, no job is held twice, and the fleet
# keeps working. Then: lock files left by dead processes are recovered.
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
S=.gigafab
manifest job.md "Storm"
ROUNDS=${CRASH_ROUNDS:-20}

claimer() {  # claimer FACTORY OUTFILE
  local rc
  while :; do
    rc=0
    "$GIGAFAB" claim --factory "$1" --ttl 3600 >>"$2" 2>/dev/null || rc=$?
    [ "$rc" -eq 0 ] || return 0
  done
}

for round in $(seq 1 "$ROUNDS"); do
  for i in $(seq 1 16); do gf submit job.md; done >/dev/null
  pids=()
  for n in $(seq 1 8); do
    claimer "r${round}f$n" "claims.$round.$n" &
    pids+=($!)
  done
  sleep "0.0$((RANDOM % 9 + 1))$((RANDOM % 10))"
  victim=$((RANDOM % 8 + 1))
  kill -KILL "${pids[$((victim - 1))]}" 2>/dev/null || true
  pkill -KILL -f -- "--factory r${round}f$victim " 2>/dev/null || true
  wait

  fsck_clean $S
  [ "$(git --git-dir $S cat-file -t 'refs/gigafab/state^{commit}')" = commit ] || fail "round $round: ref not at a commit"
  # Every claim that printed an id is recorded to that factory, at that epoch.
  for f in claims.$round.*; do
    factory="r${round}f${f##*.}"
    while read -r id epoch; do
      lease=$(git --git-dir $S show "refs/gigafab/state:jobs/${id:2:2}/$id/lease.toml") ||
        fail "round $round: $id printed by $factory has no lease"
      grep -qx "holder = '$factory'" <<<"$lease" || fail "round $round: $id printed by $factory but: $lease"
      grep -qx "epoch = $epoch" <<<"$lease" || fail "round $round: epoch of $id"
    done <"$f"
  done
  dups=$(cat claims.* | awk '{print $1}' | sort | uniq -d)
  [ -z "$dups" ] || fail "round $round: claimed twice: $dups"
  # One lease per assigned job, and the lease index agrees.
  assigned=$(gf list --stage assigned | grep -c '^j-' || true)
  leases=$(git --git-dir $S ls-tree --name-only refs/gigafab/state index/leases/ | wc -l)
  expect_eq "$leases" "$assigned" "round $round: lease index entries vs assigned jobs"
  # The fleet keeps working: whatever the storm left queued can still be claimed.
  while gf claim --factory "sweeper" --ttl 3600 >/dev/null 2>&1; do :; done
  run gf claim --factory sweeper
  expect_rc 6
done
echo "rounds: $ROUNDS, commits: $(count_commits $S), stale-lock recoveries: $(grep -c 'removed stale lock' $S/gigafab.log 2>/dev/null || echo 0)"

# A ref lock file left by a process killed mid-update is removed once stale, and logged.
: >$S/refs/gigafab/state.lock
touch -d '-10 seconds' $S/refs/gigafab/state.lock
run gf submit job.md
expect_rc 0
expect_err "removed stale lock $TEST_DIR/$S/refs/gigafab/state.lock left by a dead process"
[ ! -e $S/refs/gigafab/state.lock ] || fail "stale ref lock still there"
grep -q "removed stale lock" $S/gigafab.log || fail "recovery not logged in gigafab.log"

# A fresh ref lock (a live git process) is waited for, not broken.
: >$S/refs/gigafab/state.lock
(sleep 1; rm -f $S/refs/gigafab/state.lock) &
run gf submit job.md
expect_rc 0
[[ "$ERR" != *"removed stale lock"* ]] || fail "a live lock was broken"
wait

# The writer lock of a process killed while holding it is released by the kernel.
flock $S/gigafab.lock sleep 60 &
holder=$!
sleep 0.2
run timeout 1 "$GIGAFAB" submit job.md
expect_rc 124
pkill -KILL -P $holder 2>/dev/null || true
kill -KILL $holder 2>/dev/null || true
wait $holder 2>/dev/null || true
run timeout 5 "$GIGAFAB" submit job.md
expect_rc 0
fsck_clean $S
pass
