# Factories and the scoring router: registration and liveness, jobs landing
# where the scores say, explain, seat limits under concurrent claims,
# preemption, and no starvation.
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
S=.gigafab
T0=1800000000000
at() { local t=$1; shift; GIGAFAB_NOW=$t "$GIGAFAB" "$@"; }

# Heartbeats register once; liveness lives on a ref without history.
before=$(count_commits $S)
for i in $(seq 1 20); do at $((T0 + i)) factory heartbeat --factory lin-a --caps linux --seats 2 --load 0 --engine claude >/dev/null; done
expect_eq "$(count_commits $S)" $((before + 1)) "state commits for 20 heartbeats"
expect_eq "$(git --git-dir $S rev-list --count refs/gigafab/liveness)" 1 "liveness history"
at $T0 factory heartbeat --factory lin-b --caps linux --seats 2 --load 4 >/dev/null
at $T0 factory heartbeat --factory mac --caps linux,macos,xcode --seats 1 --load 0 >/dev/null
run at $((T0 + 1000)) --json factory heartbeat --factory lin-a --seats 3
expect_eq "$(json 'd["seats"], d["capabilities"], d["health"]')" "3 ['linux'] healthy" "seats change keeps caps"
expect_eq "$(git --git-dir $S log -1 --format=%s refs/gigafab/state)" "update factory lin-a" "registration change is audited"
run at $((T0 + 45000)) factory list
expect_out_re "lin-a +degraded +0/3 +0 +claude +linux"
run at $((T0 + 200000)) --json factory list
expect_eq "$(json '[f["health"] for f in d["factories"]]')" "['down', 'down', 'down']" "health after silence"
run gf factory heartbeat --factory lin-a --seats 0
expect_rc 2
run gf factory heartbeat --factory "bad/id"
expect_rc 2

# Jobs land where the scores say.
for f in lin-a lin-b mac; do at $T0 factory heartbeat --factory $f >/dev/null; done
manifest linux.md "Linux job" 'capabilities = ["linux"]\n'
manifest ios.md "iOS job" 'capabilities = ["macos", "xcode"]\n'
manifest gpu.md "GPU job" 'capabilities = ["gpu"]\n'
L1=$(at $T0 submit linux.md)
I1=$(at $T0 submit ios.md)
G1=$(at $T0 submit gpu.md)
run at $((T0 + 1000)) --json explain "$L1"
expect_eq "$(json '[(c["factory"], c["rank"]) for c in d["candidates"]]')" "[('lin-a', 1), ('mac', 2), ('lin-b', 3)]" "ranking of the linux job"
expect_eq "$(json '[c["terms"]["capabilityFit"] for c in d["candidates"]]')" "[1.0, 0.5, 1.0]" "capability fit"
expect_eq "$(json '[c["terms"]["load"] for c in d["candidates"]]')" "[1.0, 1.0, 0.2]" "load term"
run at $((T0 + 1000)) explain "$G1"
expect_out "filtered: missing capabilities [gpu]"
# lin-b and mac leave the fresh linux job to lin-a; the iOS job can only go to mac.
run at $((T0 + 1000)) claim --factory lin-b
expect_rc 6
expect_err "left for better-fitting factories"
run at $((T0 + 1000)) claim --factory mac
expect_eq "$OUT" "$I1 1" "mac takes the iOS job"
run at $((T0 + 1000)) claim --factory lin-a
expect_eq "$OUT" "$L1 1" "lin-a takes the linux job"
for f in lin-a lin-b mac; do
  run at $((T0 + 1000)) claim --factory $f
  expect_rc 6
done
run at $((T0 + 1000)) --json show "$L1"
# mac's only seat is taken by then, so two factories were eligible.
expect_eq "$(json 'd["runs"][0]["routing"]["rank"], d["runs"][0]["routing"]["candidates"]')" "1 2" "routing kept with the run"
expect_eq "$(json 'round(d["runs"][0]["routing"]["total"], 3)')" "2.251" "total at claim: 1 + 0 + 1 + 0.75 + 1 - 1.5 x (1 - 1s/30min)"
run at $((T0 + 1000)) --json show "$I1"
expect_eq "$(json 'd["runs"][0]["routing"]["rank"], d["runs"][0]["routing"]["candidates"]')" "1 1" "only mac fits iOS"
# After the defer window anyone that fits may take a job.
L2=$(at $((T0 + 2000)) submit linux.md)
run at $((T0 + 3000)) claim --factory lin-b
expect_rc 6
run at $((T0 + 200000)) claim --factory lin-b --caps linux
expect_eq "$OUT" "$L2 1" "a job past the defer window goes to whoever claims"

# Weights are per product, audited, validated.
run gf weights set weights.load=2 starvation_window=20m
expect_rc 0
expect_out_re "weights.load +2"
expect_eq "$(git --git-dir $S log -1 --format=%s refs/gigafab/state)" "weights default: weights.load=2 starvation_window=20m" "weights commit"
run gf --json weights show
expect_eq "$(json 'd["weights.load"], d["starvation_window"], d["weights.affinity"]')" "2 20m 0.5" "weights show"
run gf weights set weights.lod=1
expect_rc 2
expect_err "unknown setting 'weights.lod' (did you mean 'weights.load'?)"
run gf weights set load=-1
expect_rc 2
run gf --product other --json weights show
expect_eq "$(json 'd["weights.load"]')" 1 "weights are per product"
gf weights set weights.load=1 starvation_window=30m >/dev/null

# Seats hold under an 8-way concurrent claim.
gf --product seats factory heartbeat --factory s3 --caps linux --seats 3 >/dev/null
for i in $(seq 1 12); do gf --product seats submit linux.md; done >/dev/null
rm -f gate
for n in $(seq 1 8); do
  (while [ ! -e gate ]; do sleep 0.001; done; rc=0; "$GIGAFAB" --product seats claim --factory s3 >"seat.$n" 2>&1 || rc=$?; echo $rc >"seat.$n.rc") &
done
sleep 0.2
touch gate
wait
expect_eq "$(cat seat.*.rc | sort | uniq -c | tr -s ' ' | tr '\n' ';')" " 3 0; 5 6;" "3 claims won, 5 refused"
grep -h "all 3 seats in use" seat.* >/dev/null || fail "seat refusal message"
run gf --product seats --json factory list
expect_eq "$(json 'len(d["factories"][0]["jobs"]), d["factories"][0]["seatsUsed"]')" "3 3" "held leases"

# Preemption: a critical job that fits nowhere evicts the lowest-priority running job.
export GIGAFAB_PRODUCT=pre
gf factory heartbeat --factory p1 --caps linux --seats 1 >/dev/null
V=$(gf submit --priority low linux.md)
gf claim --factory p1 >/dev/null
gf start "$V" --epoch 1 --factory p1 >/dev/null
C=$(FLEET_PREEMPTION=1 gf submit --priority critical linux.md)
run gf --json show "$V"
expect_eq "$(json 'd["stage"], d["leaseEpoch"], d["runs"][-1]["result"]')" "queued 2 preempted" "victim requeued"
run gf report "$V" --epoch 1 --factory p1 --result pass
expect_rc 3
expect_err "fenced (epoch 1 < 2)"
run gf claim --factory p1
expect_eq "$OUT" "$C 1" "the critical job takes the freed seat"
# Without preemption nothing is evicted.
V2=$(gf --product nopre submit --priority low linux.md)
gf --product nopre factory heartbeat --factory q1 --caps linux --seats 1 >/dev/null
gf --product nopre claim --factory q1 >/dev/null
gf --product nopre submit --priority critical linux.md >/dev/null
run gf --product nopre --json show "$V2"
expect_eq "$(json 'd["stage"]')" assigned "no eviction without preemption"
unset GIGAFAB_PRODUCT

# No starvation: one low job against a steady stream of new high jobs (two a
# minute) and one factory claiming a job a minute, so the backlog grows without
# end. Aging lifts every waiting job one level per 10-minute window; at
# critical, older wins. The low job is claimed once it is critical and the
# oldest: within 3 windows (30 minutes) of its submission.
export GIGAFAB_PRODUCT=starve
at $T0 factory heartbeat --factory w --caps linux --seats 1000 >/dev/null
LOW=$(at $T0 submit --priority low linux.md)
claimed_at=""
for minute in $(seq 1 40); do
  now=$((T0 + minute * 60000))
  at $now submit --priority high linux.md >/dev/null
  at $now submit --priority high linux.md >/dev/null
  read -r id _ < <(at $now claim --factory w)
  if [ "$id" = "$LOW" ]; then claimed_at=$minute; break; fi
done
[ -n "$claimed_at" ] || fail "the low-priority job starved for 40 minutes"
[ "$claimed_at" -le 31 ] || fail "the low-priority job waited $claimed_at minutes (bound: 3 aging windows)"
echo "low-priority job claimed after $claimed_at minutes under a stream of high-priority jobs"
fsck_clean $S
pass
