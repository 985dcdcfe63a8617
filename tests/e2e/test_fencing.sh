# Fencing: A's lease expires, the reaper requeues the job, B claims it; A's
# late report is fenced (exit 3) and changes nothing; B finishes the job.
# Time is moved with GIGAFAB_NOW instead of sleeping.
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
S=.gigafab
manifest job.md "Fenced"
T0=1800000000000
at() { local t=$1; shift; GIGAFAB_NOW=$t "$GIGAFAB" "$@"; }

J=$(at $T0 submit job.md)
run at $T0 claim --factory A --ttl 1
expect_eq "$OUT" "$J 1" "A claims"
at $((T0 + 100)) start "$J" --epoch 1 --factory A >/dev/null
at $((T0 + 200)) checkpoint "$J" --epoch 1 --factory A --ref gigafab/wip-a >/dev/null

# Past the lease: A's renewal is fenced even before anyone reaps.
run at $((T0 + 1500)) renew "$J" --epoch 1 --factory A
expect_rc 3
expect_err "lease expired"

run at $((T0 + 2000)) --json reap
expect_rc 0
expect_eq "$(json '[(r["id"], r["stage"], r["factory"], r["epoch"], r["leaseEpoch"]) for r in d["reaped"]]')" \
  "[('$J', 'queued', 'A', 1, 2)]" "reaped"
run at $((T0 + 2000)) --json show "$J"
expect_eq "$(json 'd["checkpoint"]')" gigafab/wip-a "the reaper keeps the checkpoint"
expect_eq "$(json 'd["attempts"]')" 1 "attempts"
expect_eq "$(json '[r["result"] for r in d["runs"]]')" "['expired']" "A's run"

run at $((T0 + 3000)) claim --factory B --ttl 60
expect_eq "$OUT" "$J 2" "B claims at epoch 2"

# The zombie: every mutation from A is fenced and nothing is written.
before=$(tip $S)
show_before=$(at $((T0 + 3000)) --json show "$J")
for cmd in "report $J --result pass" "start $J" "renew $J" "release $J" "checkpoint $J --ref gigafab/zombie"; do
  run at $((T0 + 3500)) $cmd --epoch 1 --factory A
  expect_rc 3
  expect_err "job $J is fenced (epoch 1 < 2)"
done
run at $((T0 + 3500)) --json report "$J" --epoch 1 --factory A --result pass
expect_eq "$(json 'd["error"]["code"]')" fenced "json error code"
expect_eq "$(tip $S)" "$before" "tip after the zombie's calls"
expect_eq "$(at $((T0 + 3000)) --json show "$J")" "$show_before" "job, runs and lease after the zombie's calls"
# Guessing the new epoch does not help A either: it is not the holder.
run at $((T0 + 3500)) report "$J" --epoch 2 --factory A --result pass
expect_rc 3
expect_err "leased to B, not A"

# B resumes and finishes.
at $((T0 + 4000)) start "$J" --epoch 2 --factory B >/dev/null
at $((T0 + 5000)) report "$J" --epoch 2 --factory B --result pass --summary "resumed from gigafab/wip-a" >/dev/null
at $((T0 + 6000)) ship "$J" >/dev/null
run at $((T0 + 6000)) --json show "$J"
expect_eq "$(json 'd["stage"]')" shipped "stage"
expect_eq "$(json '[(r["epoch"], r["factory"], r["result"]) for r in d["runs"]]')" \
  "[(1, 'A', 'expired'), (2, 'B', 'pass')]" "runs"
run gf log "$J"
expect_eq "$(awk '{print $3}' <<<"$OUT" | tr '\n' ' ')" "submit claim start checkpoint reap claim start report ship " "history"

# Attempts: a job whose lease keeps expiring is dead-lettered after max_attempts.
K=$(printf '+++\nmax_attempts = 2\n+++\n# Flaky\n\nx\n' | at $T0 submit -)
at $((T0 + 10000)) claim --factory A --ttl 1 >/dev/null
at $((T0 + 12000)) claim --factory B --ttl 1 >/dev/null
run at $((T0 + 14000)) --json reap
expect_eq "$(json '[(r["id"], r["stage"]) for r in d["reaped"]]')" "[('$K', 'dead_letter')]" "dead letter"
run at $((T0 + 14000)) claim --factory C
expect_rc 6
fsck_clean $S
pass
