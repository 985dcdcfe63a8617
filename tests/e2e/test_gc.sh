# gigafab gc: one pack, nothing lost, unreachable objects dropped, writes go on.
source "$(dirname "$0")/lib.sh"
gf init >/dev/null
S=.gigafab
manifest job.md "Collected"
for i in $(seq 1 30); do gf submit job.md; done >ids
for i in $(seq 1 5); do gf factory heartbeat --factory f1 --caps linux >/dev/null; done
read -r J E < <(gf claim --factory f1)
gf start "$J" --epoch "$E" --factory f1 >/dev/null
gf --json list >before.json
log_before=$(gf log --all)
run gf --json gc
expect_rc 0
expect_eq "$(json 'd["transitions"]')" "$(count_commits $S)" "transitions counted"
[ "$(json 'd["packBytes"] > 0 and d["objects"] > 100')" = True ] || fail "gc stats: $OUT"
expect_eq "$(git --git-dir $S count-objects -v | awk '/^packs:/ {print $2}')" 1 "packs after gc"
expect_eq "$(git --git-dir $S count-objects -v | awk '/^count:/ {print $2}')" 0 "loose objects after gc"
fsck_clean $S
gf --json list >after.json
cmp -s before.json after.json || fail "jobs changed across gc"
expect_eq "$(gf log --all)" "$log_before" "audit trail across gc"
run gf report "$J" --epoch "$E" --factory f1 --result pass
expect_rc 0
run gf gc
expect_rc 0
expect_out "removed 2 packs"  # the previous full pack and the report's
run gf --store nowhere gc
expect_rc 1
pass
