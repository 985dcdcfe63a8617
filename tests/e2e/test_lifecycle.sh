# Every transition of DESIGN.md section 4 from the CLI, every illegal one with
# its exit code, and the job's whole life in `log` and `events`.
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
S=.gigafab
manifest plain.md "Plain job"
manifest reviewed.md "Reviewed job" 'review = true\n'
manifest linux.md "Needs linux" 'capabilities = ["linux"]\n'

# expect_job ID STAGE EPOCH
expect_job() {
  run gf --json show "$1"
  expect_eq "$(json 'd["stage"]')" "$2" "stage of $1"
  expect_eq "$(json 'd["leaseEpoch"]')" "$3" "epoch of $1"
}
# unchanged CMD...: runs CMD, expects exit $WANT and the tip unchanged.
unchanged() {
  local before
  before=$(tip $S)
  run "$@"
  expect_rc "$WANT"
  expect_eq "$(tip $S)" "$before" "tip after: $*"
}

# queued -> assigned -> building -> review -> testing -> shipped
R=$(gf submit reviewed.md)
run gf claim --factory fa --ttl 60
expect_rc 0
expect_eq "$OUT" "$R 1" "claim prints ID EPOCH"
expect_job "$R" assigned 1
run gf --json show "$R"
expect_eq "$(json 'd["lease"]["holder"]')" fa "lease holder"
expect_eq "$(json 'd["attempts"]')" 1 "attempts after a claim"
WANT=4 unchanged gf report "$R" --epoch 1 --factory fa --result pass   # must start first
expect_err "cannot report job $R: it is assigned (report needs building)"
run gf start "$R" --epoch 1 --factory fa
expect_rc 0
expect_eq "$OUT" "$R building 1" "start output"
WANT=4 unchanged gf start "$R" --epoch 1 --factory fa
run gf checkpoint "$R" --epoch 1 --factory fa --ref "refs/heads/gigafab/$R"
expect_rc 0
run gf --json renew "$R" --epoch 1 --factory fa --ttl 120
expect_rc 0
expect_eq "$(json 'd["epoch"]')" 1 "renew keeps the epoch"
WANT=4 unchanged gf approve "$R"
expect_err "cannot approve job $R: it is building (approve needs review)"
WANT=4 unchanged gf ship "$R"
run gf report "$R" --epoch 1 --factory fa --result pass --cost 0.25 --tokens 1000 --summary "added retries"
expect_rc 0
expect_job "$R" review 1
WANT=4 unchanged gf ship "$R"
expect_err "cannot ship job $R: it is review (ship needs testing)"
WANT=4 unchanged gf requeue "$R"
run gf approve "$R"
expect_rc 0
expect_job "$R" testing 1
WANT=4 unchanged gf approve "$R"
WANT=4 unchanged gf reject "$R"
run gf ship "$R"
expect_rc 0
expect_job "$R" shipped 1
for op in approve reject ship requeue; do WANT=4 unchanged gf $op "$R"; done
# The lease ended with the report: the old holder's calls are refused.
WANT=4 unchanged gf renew "$R" --epoch 1 --factory fa
run gf --json show "$R"
expect_eq "$(json 'd["lease"]')" None "no lease after the report"
expect_eq "$(json 'd["runs"][0]["result"]')" pass "run result"
expect_eq "$(json 'd["runs"][0]["costUsd"]')" 0.25 "run cost"
expect_eq "$(json 'd["runs"][0]["tokens"]')" 1000 "run tokens"
expect_eq "$(json 'd["runs"][0]["summary"]')" "added retries" "run summary"
expect_eq "$(json 'd["checkpoint"]')" "refs/heads/gigafab/$R" "checkpoint"

# The job's whole life, in order, one commit per transition, renewals hidden.
run gf log "$R"
expect_eq "$(awk '{print $3}' <<<"$OUT" | tr '\n' ' ')" "submit claim start checkpoint report approve ship " "log ops"
run gf log --all "$R"
expect_eq "$(awk '{print $3}' <<<"$OUT" | tr '\n' ' ')" "submit claim start checkpoint renew report approve ship " "log --all ops"
msg=$(git --git-dir $S log -1 --format=%B --grep "Gigafab-Op: claim" refs/gigafab/state)
for t in "Gigafab-Op: claim" "Gigafab-Job: $R" "Gigafab-Factory: fa" "Gigafab-Epoch: 1" "Gigafab-Actor: tester"; do
  grep -qx "$t" <<<"$msg" || fail "claim commit lacks '$t': $msg"
done
run gf --json events "$R"
expect_eq "$(json '" ".join(e["type"] for e in d["events"])')" "submit claim start checkpoint report approve ship" "events"
expect_eq "$(json '[e["seq"] for e in d["events"]]')" "[1, 2, 3, 4, 5, 6, 7]" "event sequence numbers"
expect_eq "$(json 'd["events"][4]["from"] + ">" + d["events"][4]["to"]')" "building>review" "report event"
run gf --json events "$R" --after 5
expect_eq "$(json '[e["seq"] for e in d["events"]]')" "[6, 7]" "events --after"

# building -> testing without review; review -> failed; failed -> queued; release.
P=$(gf submit plain.md)
gf claim --factory fa >/dev/null
gf start "$P" --epoch 1 --factory fa >/dev/null
gf report "$P" --epoch 1 --factory fa --result pass >/dev/null
expect_job "$P" testing 1
gf ship "$P" >/dev/null

R2=$(gf submit reviewed.md)
gf claim --factory fa >/dev/null
gf start "$R2" --epoch 1 --factory fa >/dev/null
gf report "$R2" --epoch 1 --factory fa --result pass >/dev/null
run gf reject "$R2"
expect_rc 0
expect_job "$R2" failed 1
run gf requeue "$R2"
expect_rc 0
expect_job "$R2" queued 2
run gf claim --factory fb
expect_eq "$OUT" "$R2 2" "claim after a requeue takes the bumped epoch"
WANT=3 unchanged gf start "$R2" --epoch 1 --factory fa
expect_err "job $R2 is fenced (epoch 1 < 2)"
WANT=3 unchanged gf start "$R2" --epoch 2 --factory fa
expect_err "job $R2 is leased to fb, not fa"
WANT=3 unchanged gf start "$R2" --epoch 3 --factory fb
gf checkpoint "$R2" --epoch 2 --factory fb --ref "gigafab/$R2" >/dev/null
run gf release "$R2" --epoch 2 --factory fb
expect_rc 0
expect_job "$R2" queued 3
run gf --json show "$R2"
expect_eq "$(json 'd["checkpoint"]')" "gigafab/$R2" "release keeps the checkpoint"
expect_eq "$(json '[r["result"] for r in d["runs"]]')" "['pass', 'released']" "runs after release"
WANT=3 unchanged gf release "$R2" --epoch 2 --factory fb

# Fail, and requeue until the attempts are used up: dead_letter.
F=$(gf submit --priority critical plain.md)
gf claim --factory fa >/dev/null
gf start "$F" --epoch 1 --factory fa >/dev/null
gf report "$F" --epoch 1 --factory fa --result fail --summary "tests fail" >/dev/null
expect_job "$F" failed 1
run gf --json show "$F"
expect_eq "$(json 'd["reason"]')" reported_fail "reason"
for epoch in 2 3; do
  gf requeue "$F" >/dev/null
  run gf claim --factory fa
  expect_eq "$OUT" "$F $epoch" "claim $epoch of the failing job"
  gf start "$F" --epoch $epoch --factory fa >/dev/null
  gf report "$F" --epoch $epoch --factory fa --result fail >/dev/null
done
run gf requeue "$F"
expect_rc 0
expect_job "$F" dead_letter 4
run gf --json show "$F"
expect_eq "$(json 'd["reason"]')" attempts_exhausted "reason"
for op in approve reject ship requeue; do WANT=4 unchanged gf $op "$F"; done

# Budget: a pass that overspends is a failure with reason budget_exceeded.
Bj=$(printf '+++\n[budget]\nusd = 1.0\n+++\n# Budgeted\n\nx\n' | gf submit --priority critical -)
gf claim --factory fa >/dev/null
gf start "$Bj" --epoch 1 --factory fa >/dev/null
gf report "$Bj" --epoch 1 --factory fa --result pass --cost 1.5 >/dev/null
run gf --json show "$Bj"
expect_eq "$(json 'd["stage"] + " " + d["reason"] + " " + d["runs"][0]["reason"]')" "failed budget_exceeded budget_exceeded" "over budget"

# Capabilities: a job is claimed only by a factory offering what it needs.
L=$(gf --product caps submit linux.md)
run gf --product caps claim --factory mac --caps macos,xcode
expect_rc 6
expect_err "nothing to claim for mac: 1 queued, none within capabilities [macos,xcode]"
run gf --product caps claim --factory lin --caps linux,docker
expect_eq "$OUT" "$L 1" "claim with capabilities"

# Deps: shipping a dep queues the jobs that waited only on it.
export GIGAFAB_PRODUCT=deps
D1=$(gf submit plain.md)
D2=$(gf submit plain.md)
W=$(gf submit --dep "$D1" --dep "$D2" plain.md)
expect_job "$W" blocked 0
for d in "$D1" "$D2"; do
  run gf claim --factory fd
  e=${OUT#* }
  gf start "${OUT% *}" --epoch "$e" --factory fd >/dev/null
  gf report "${OUT% *}" --epoch "$e" --factory fd --result pass >/dev/null
done
gf ship "$D1" >/dev/null
expect_job "$W" blocked 0
gf ship "$D2" >/dev/null
expect_job "$W" queued 0
run gf --json events "$W"
expect_eq "$(json 'd["events"][-1]["type"]')" unblock "unblock event"
run gf claim --factory fd
expect_eq "$OUT" "$W 1" "the unblocked job is claimable"

# Bad input.
WANT=5 unchanged gf start j-aaaaaaaa --epoch 1 --factory fa
expect_err "job j-aaaaaaaa not found"
WANT=5 unchanged gf ship j-aaaaaaaa
WANT=2 unchanged gf start "$W" --factory fd
expect_err "--epoch is required"
WANT=2 unchanged gf start "$W" --epoch one --factory fd
WANT=2 unchanged gf start "$W" --epoch 0 --factory fd
WANT=2 unchanged gf claim --factory fa --ttl -5
WANT=2 unchanged gf claim --factory fa --ttl 0
WANT=2 unchanged gf claim --factory ../fa
WANT=2 unchanged gf claim
WANT=2 unchanged gf renew "$W" --epoch 1 --factory fd --ttl 0
WANT=2 unchanged gf report "$W" --epoch 1 --factory fd --result maybe
WANT=2 unchanged gf checkpoint "$W" --epoch 1 --factory fd --ref "bad ref"
WANT=2 unchanged gf checkpoint "$W" --epoch 1 --factory fd --ref "../x"
WANT=2 unchanged gf approve "j-../../x"
fsck_clean $S
pass
