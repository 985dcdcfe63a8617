# gigafab bench on tiny stores: every figure is there, the stores have the
# 90/10 shape, durability is on unless --no-fsync, and nothing is left behind.
source "$(dirname "$0")/lib.sh"
mkdir scratch
small=(--jobs 40 --small 20 --claims 2 --submits 4 --cycles 2 --claimers 1,2 --cli-claims 3 --dir scratch
  --http-clients 2 --http-seconds 1 --http-jobs 60)

run gf --json bench "${small[@]}" --no-fsync
expect_rc 0
expect_eq "$(json 'd["fsync"]')" False "fsync with --no-fsync"
expect_eq "$(json '[d["smallStore"][k] for k in ("jobs", "shipped", "queued")]')" "[20, 18, 2]" "small store shape"
expect_eq "$(json '[d["largeStore"][k] for k in ("jobs", "shipped", "queued")]')" "[40, 36, 4]" "large store shape"
expect_eq "$(json '[c["claimers"] for c in d["cliClaimers"]]')" "[1, 2]" "claimer levels"
[ "$(json 'all(d[k] > 0 for k in ("baselineCommitsPerSecond", "submitsPerSecond", "cyclesPerSecond", "cycleTransitionsToBaseline"))')" = True ] ||
  fail "rates: $OUT"
# 1 init + 4 submits + 2 cycles of claim, start, report
[ "$(json 'd["fdatasyncP50Us"] > 0 and d["durableCommitFilesP50Ms"] > 0')" = True ] || fail "disk probes: $OUT"
expect_eq "$(json 'd["gc"]["transitions"]')" 11 "transitions before gc"
[ "$(json 'd["gc"]["bytesPerTransition"] > 0')" = True ] || fail "gc: $OUT"
[ "$(json 'all(d[s]["gcWaitSeconds"] >= 0 for s in ("smallStore", "largeStore"))')" = True ] || fail "gc wait: $OUT"
[ "$(json 'all(d[s][k] > 0 for s in ("smallStore", "largeStore") for k in ("listCliMs", "listFirstCliMs", "listInProcessMs", "showCliP50Ms", "showInProcessP50Ms", "p50Ms", "listJsonBytes"))')" = True ] ||
  fail "store figures: $OUT"
# The HTTP section: a scratch serve with and without group commit. Without,
# every cycle is three commits; with, never more.
[ "$(json 'd["serveResidentBytesLargeStore"] > 0 and d["servePeakBytesLargeStore"] >= d["serveResidentBytesLargeStore"]')" = True ] || fail "serve memory: $OUT"
h='d["http"]'
[ "$(json "$h[\"groupCommit\"][\"cycles\"] > 0 and $h[\"commitPerRequest\"][\"cycles\"] > 0")" = True ] || fail "http: $OUT"
expect_eq "$(json "$h[\"commitPerRequest\"][\"commits\"] == 3 * $h[\"commitPerRequest\"][\"cycles\"]")" True "one commit per request"
expect_eq "$(json "$h[\"groupCommit\"][\"commits\"] <= 3 * $h[\"groupCommit\"][\"cycles\"]")" True "group commits"
[ "$(json "$h[\"submitToClaimP50Ms\"] > 0")" = True ] || fail "submit to claim: $OUT"
# Without fsync the disk bounds nothing.
expect_eq "$(json "$h[\"diskCeilingCyclesPerSecond\"]")" None "disk ceiling without fsync"
[ -z "$(ls scratch)" ] || fail "bench left $(ls scratch) behind"

run gf bench "${small[@]}"
expect_rc 0
expect_out "fsync on"
expect_out "disk: one fdatasync of an 8 KiB write"
expect_out "disk: a durable commit's files alone"
expect_out "disk's ceiling for serve: 2 operations a commit"
expect_out "claim -> start -> report:"
expect_out "after gc: 11 transitions"
expect_out "store of 40 jobs (36 shipped, 4 queued"
expect_out "list --json:"
expect_out "show --json:"
expect_out "MB resident"
expect_out "group commit / one commit per request:"
expect_out "submit -> waiting claim via serve: p50"

run gf bench --jobs 40 --small 20 --claims 3 --dir scratch
expect_rc 2
expect_err "--claims must be between 1 and the queued jobs of each store"
pass
