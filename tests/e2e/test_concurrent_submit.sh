# Eight processes submitting at the same instant: with one idempotency key they
# all get the same job and exactly one is created; with distinct keys every
# submit lands, as one linear chain of commits.
source "$(dirname "$0")/lib.sh"
gf init >/dev/null
S=.gigafab
manifest job.md "Concurrent"

# start_together N CMD...: N copies of CMD released at once by a shared gate.
start_together() {
  local n=$1
  shift
  rm -f gate
  for i in $(seq 1 "$n"); do
    (while [ ! -e gate ]; do sleep 0.001; done; "$@" >"out.$i" 2>"err.$i"; echo $? >"rc.$i") &
  done
  sleep 0.2
  touch gate
  wait
}

for round in 1 2 3; do
  before=$(count_commits $S)
  start_together 8 "$GIGAFAB" submit --idempotency-key "same-key-$round" job.md
  for i in $(seq 1 8); do
    expect_eq "$(cat rc.$i)" 0 "exit of submitter $i (round $round): $(cat err.$i)"
  done
  ids=$(cat out.* | sort -u)
  expect_eq "$(wc -l <<<"$ids")" 1 "distinct ids printed in round $round"
  expect_eq "$(count_commits $S)" $((before + 1)) "commits created by round $round"
  run gf --json list
  expect_eq "$(json "sum(1 for j in d['jobs'] if j['idempotencyKey'] == 'same-key-$round')")" 1 "jobs with key $round"
done

before=$(count_commits $S)
start_together 8 "$GIGAFAB" submit job.md
for i in $(seq 1 8); do expect_eq "$(cat rc.$i)" 0 "exit of distinct submitter $i"; done
expect_eq "$(cat out.* | sort -u | wc -l)" 8 "distinct jobs from 8 distinct submits"
expect_eq "$(count_commits $S)" $((before + 8)) "one commit per submit"
expect_eq "$(git --git-dir $S rev-list --merges --count refs/gigafab/state)" 0 "merge commits"
run gf --json list
expect_eq "$(json 'len(d["jobs"])')" 11 "jobs in the store"
fsck_clean $S
pass
