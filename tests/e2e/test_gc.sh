# gigafab gc: one pack, nothing lost, unreachable objects dropped, writes go on
# during a gc, a gc killed half-way loses nothing, and the store packs itself
# in the background once it has about doubled.
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

# An object no ref reaches yet: kept while recent (a write in flight may be
# about to reference it), dropped once old.
fresh=$(echo "fresh dangling" | git --git-dir $S hash-object -w --stdin)
old=$(echo "old dangling" | git --git-dir $S hash-object -w --stdin)
touch -d '1 hour ago' "$S/objects/${old:0:2}/${old:2}"
run gf gc
expect_rc 0
git --git-dir $S cat-file -e "$fresh" || fail "gc dropped a recent unreferenced object"
git --git-dir $S cat-file -e "$old" 2>/dev/null && fail "gc kept an old unreferenced object"
expect_eq "$(git --git-dir $S count-objects -v | awk '/^count:/ {print $2}')" 0 "loose objects after gc"

# Writes go on during a gc: four claimers and a submitter race five gc runs;
# every job is claimed exactly once and nothing acknowledged is lost.
for i in $(seq 1 120); do gf submit job.md; done >race_ids
claimer() { claim_until_empty "g$1" "claims.$1" "claim_errors.$1"; }
for n in 1 2 3 4; do claimer $n & done
(for i in $(seq 1 20); do "$GIGAFAB" submit job.md || echo "submit failed" >&2; done >late_ids) 2>submit_errors &
for i in 1 2 3 4 5; do gf gc >/dev/null || fail "gc $i during writes failed"; done
wait
[ -s submit_errors ] && fail "submits failed during gc: $(cat submit_errors)"
for n in 1 2 3 4; do
  if grep -v 'nothing to claim' "claim_errors.$n" | grep -q .; then fail "claimer $n: $(cat "claim_errors.$n")"; fi
done
cat claims.* | awk '{print $1}' | sort >claimed
expect_eq "$(sort -u claimed | wc -l)" "$(wc -l <claimed)" "no job claimed twice"
gf --json list --stage assigned >assigned.json
OUT=$(cat assigned.json)
expect_eq "$(json 'len(d["jobs"])')" "$(wc -l <claimed)" "every claim printed is in the store"
OUT=$(gf --json list --stage queued)
expect_eq "$(( $(json 'len(d["jobs"])') + $(wc -l <claimed) ))" "$(( $(wc -l <race_ids) + $(wc -l <late_ids) + 29 ))" \
  "every submitted job is queued or claimed"
fsck_clean $S

# A gc killed at any point loses nothing: the old packs go only after the new
# one is complete.
gf --json list >before_kill.json
for delay in 0.01 0.03 0.06 0.1 0.15; do
  "$GIGAFAB" gc >/dev/null 2>&1 &
  pid=$!
  sleep $delay
  kill -9 $pid 2>/dev/null || true  # a gc may be done by then
  wait $pid 2>/dev/null || true
  fsck_clean $S
  gf --json list >after_kill.json
  cmp -s before_kill.json after_kill.json || fail "jobs changed after a gc killed at ${delay}s"
done
run gf gc
expect_rc 0
expect_eq "$(git --git-dir $S count-objects -v | awk '/^packs:/ {print $2}')" 1 "packs after a clean gc"

# git's pack-objects builds the pack when there is a git; a git that fails
# fails the gc with what it said, and leaves the store as it was.
run gf --json gc
expect_rc 0
expect_eq "$(json 'd["packer"]')" "git pack-objects" "the packer with a git on PATH"
pack_before=$(ls $S/objects/pack/*.pack)
printf '#!/bin/sh\necho "fatal: out of cheese" >&2\nexit 128\n' >failing-git
chmod +x failing-git
OUT=$(GIGAFAB_GIT=$PWD/failing-git "$GIGAFAB" gc 2>&1) && fail "gc with a failing git succeeded: $OUT"
case "$OUT" in *"pack-objects exited with 128: fatal: out of cheese"*) ;; *) fail "gc did not say what git said: $OUT" ;; esac
expect_eq "$(ls $S/objects/pack/*.pack)" "$pack_before" "the packs after a failed gc"
fsck_clean $S
gf --json list >after_failed.json
cmp -s before_kill.json after_failed.json || fail "jobs changed after a failed gc"
# Without a git, libgit2 packs it.
OUT=$(GIGAFAB_GIT=none "$GIGAFAB" --json gc)
expect_eq "$(json 'd["packer"]')" "libgit2" "the packer without a git"
fsck_clean $S
gf --json list >after_libgit2.json
cmp -s before_kill.json after_libgit2.json || fail "jobs changed after a libgit2 gc"
run gf submit job.md
expect_rc 0

# The store packs itself: once the packs written since the last gc add up to
# about half of it, a write starts `gc --background`, which leaves one pack.
for i in $(seq 1 150); do gf submit job.md >/dev/null; done
for i in $(seq 1 100); do
  grep -q "background gc (" $S/gigafab.log 2>/dev/null && break
  sleep 0.1
done
grep -q "background gc (" $S/gigafab.log || fail "no background gc ran: $(git --git-dir $S count-objects -v | tr '\n' ' ')"
# ... at the lowest CPU priority, so that it takes no CPU from the writers.
grep -q "background gc (nice 19, git pack-objects):" $S/gigafab.log || fail "the background gc did not lower its priority: $(grep 'background gc' $S/gigafab.log)"
flock $S/gigafab-gc.lock true  # waits for a gc still running
# Writes during a gc leave their packs alone; the next write merges them.
gf submit job.md >/dev/null
packs=$(git --git-dir $S count-objects -v | awk '/^packs:/ {print $2}')
[ "$packs" -le 9 ] || fail "$packs packs after the background gc"
fsck_clean $S
run gf --json list
expect_rc 0
pass
