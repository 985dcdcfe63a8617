#!/usr/bin/env bash
# Many hosts, one fleet, no server: four stores cloned from one bare remote
# (a path, then git:// via a git daemon on loopback) race eight claimers over
# 200 jobs; fencing across hosts; the remote going away mid-storm.
source "$(dirname "$0")/lib.sh"

manifest race.md "Race job" 'capabilities = ["race"]\n'

# claimer STORE FACTORY OUT: claims until nothing is left; "ID EPOCH FACTORY"
# per claim in OUT, failures (other than exit 6) in OUT.err.
claimer() {
  local store=$1 factory=$2 out=$3 rc line
  : >"$out"
  while :; do
    set +e
    line=$("$GIGAFAB" --store "$store" claim --factory "$factory" --caps race --ttl 600 2>>"$out.err")
    rc=$?
    set -e
    case $rc in
      0) echo "$line $factory" >>"$out" ;;
      6) return 0 ;;
      *) echo "exit $rc" >>"$out.err"; sleep 0.2 ;;  # unreachable remote: try again
    esac
  done
}

# race REMOTE-URL TAG: four hosts, eight claimers, 200 jobs; asserts exactly-once.
race() {
  local url=$1 tag=$2 h c pids=()
  for h in 1 2 3 4; do gf init "$tag-host$h" --remote "$url" >/dev/null; done
  for i in $(seq 200); do gf --store "$tag-host$((i % 4 + 1))" submit race.md >/dev/null; done
  local start end
  start=$(date +%s%N)
  for c in 1 2 3 4 5 6 7 8; do
    claimer "$tag-host$((c % 4 + 1))" "$tag-c$c" "$tag.claims.$c" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  end=$(date +%s%N)
  cat "$tag".claims.? >"$tag.claims"
  if [ "$(wc -l <"$tag.claims")" -ne 200 ]; then cat "$tag".claims.?.err >&2 2>/dev/null || true; fi
  expect_eq "$(wc -l <"$tag.claims")" 200 "$tag: claims made"
  expect_eq "$(cut -d' ' -f1 "$tag.claims" | sort -u | wc -l)" 200 "$tag: distinct jobs claimed"
  echo "$tag: 200 claims by 8 claimers on 4 hosts in $(((end - start) / 1000000)) ms" >&2
  # every host sees the same final state: 200 assigned, each to its claimer
  for h in 1 2 3 4; do
    run gf --store "$tag-host$h" list --stage assigned --json
    expect_eq "$(json 'len(d["jobs"])')" 200 "$tag: host $h sees 200 assigned"
  done
  gf --store "$tag-host1" list --json >"$tag.final.json"
  python3 - "$tag.claims" "$tag.final.json" <<'PY' || fail "$tag: a claim does not match the final state"
import json, sys
jobs = {j["id"]: j for j in json.load(open(sys.argv[2]))["jobs"]}
for line in open(sys.argv[1]):
    job, epoch, factory = line.split()
    assert jobs[job]["stage"] == "assigned" and jobs[job]["lastFactory"] == factory, (job, jobs[job], factory)
    assert jobs[job]["leaseEpoch"] == int(epoch), (job, jobs[job], epoch)
PY
}

# --- a bare repository on a path --------------------------------------------
git init -q --bare remote.git
race "$TEST_DIR/remote.git" path
expect_eq "$(git --git-dir remote.git rev-list --merges refs/gigafab/state | wc -l)" 0 "merge commits on the remote"
expect_eq "$(git --git-dir remote.git rev-list --min-parents=2 --all | wc -l)" 0 "merges anywhere on the remote"
expect_eq "$(git --git-dir remote.git rev-list --count refs/gigafab/state)" \
  "$(git --git-dir remote.git rev-list --first-parent --count refs/gigafab/state)" "a linear chain"
# 1 init + 200 submits + 200 claims
[ "$(git --git-dir remote.git rev-list --count refs/gigafab/state)" -ge 401 ] || fail "transitions missing on the remote"
fsck_clean remote.git

# remote list / sync / --offline
run gf --store path-host1 remote list
expect_out "origin"
run gf --store path-host2 submit race.md
expect_rc 0
NEWJOB=$OUT
run gf --store path-host3 sync
expect_rc 0
expect_out "submit $NEWJOB"
run gf --store path-host3 sync
expect_out "up to date"
run gf --store path-host4 --offline list --stage queued
expect_rc 0
expect_err "offline"
[[ "$OUT" != *"queued"* ]] || fail "--offline fetched anyway: $OUT"
run gf --store path-host4 list --stage queued
expect_out "queued"

# credentials in a URL never reach a message, and a failed init leaves nothing
run gf init nohost --remote "https://alice:s3cr3t-token@127.0.0.1:9/fleet.git"
expect_rc 1
expect_err "remote 'origin' unreachable"
[[ "$ERR$OUT" != *s3cr3t* ]] || fail "a credential leaked: $ERR"
[ ! -e nohost ] || fail "a failed init left a store behind"
run gf --store path-host1 remote add second "https://bob:hunter2@127.0.0.1:9/x.git"
expect_rc 4
[[ "$ERR$OUT" != *hunter2* ]] || fail "a credential leaked: $ERR"

# --- fencing across hosts: the zombie's report after a reap elsewhere ------
git init -q --bare fence.git
gf init fa --remote "$TEST_DIR/fence.git" >/dev/null
gf init fb --remote "$TEST_DIR/fence.git" >/dev/null
manifest fence.md "Fence job" 'capabilities = ["fence"]\n'
JOB=$(gf --store fa submit fence.md)
run gf --store fa claim --factory zombie --caps fence --ttl 1
expect_rc 0
expect_eq "$OUT" "$JOB 1" "zombie's claim"
gf --store fa start "$JOB" --epoch 1 --factory zombie >/dev/null
sleep 1.2
run gf --store fb reap
expect_rc 0
expect_out "$JOB"
run gf --store fb claim --factory healthy --caps fence
expect_eq "$OUT" "$JOB 2" "the job's new lease on the other host"
before=$(git --git-dir fence.git rev-parse refs/gigafab/state)
run gf --store fa report "$JOB" --epoch 1 --factory zombie --result pass
expect_rc 3
expect_eq "$(git --git-dir fence.git rev-parse refs/gigafab/state)" "$before" "the fenced report wrote to the remote"

# --- git:// with a git daemon on loopback; the daemon dies mid-storm --------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir daemon-root
git init -q --bare daemon-root/fleet.git
# receive-pack runs a detached `git gc --auto` after pushes; it moves loose
# objects into packs while a later `git fsck` lists them, which fsck reports
# as missing. The test packs the remote itself, after the storm, instead.
git --git-dir daemon-root/fleet.git config gc.auto 0
git --git-dir daemon-root/fleet.git config maintenance.auto false
start_daemon() {
  git daemon --reuseaddr --base-path="$TEST_DIR/daemon-root" --export-all --enable=receive-pack \
    --listen=127.0.0.1 --port="$PORT" "$TEST_DIR/daemon-root" >>daemon.log 2>&1 &
  DAEMON=$!
  BACKGROUND_PIDS+=("$DAEMON")
  for i in $(seq 100); do
    git ls-remote "git://127.0.0.1:$PORT/fleet.git" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  fail "git daemon did not start: $(cat daemon.log)"
}
start_daemon
race "git://127.0.0.1:$PORT/fleet.git" daemon
expect_eq "$(git --git-dir daemon-root/fleet.git rev-list --merges refs/gigafab/state | wc -l)" 0 "merges over git://"

# the storm again, with the daemon stopped and restarted in the middle
for i in $(seq 60); do gf --store "daemon-host$((i % 4 + 1))" submit race.md >/dev/null; done
pids=()
for c in 1 2 3 4 5 6 7 8; do
  claimer "daemon-host$((c % 4 + 1))" "storm-c$c" "storm.claims.$c" &
  pids+=($!)
done
sleep 0.5
kill "$DAEMON"
wait "$DAEMON" 2>/dev/null || true
run gf --store daemon-host1 list
expect_rc 1
expect_err "gigafab: list: remote 'origin' unreachable"
run gf --store daemon-host2 submit race.md
expect_rc 1
expect_err "gigafab: submit: remote 'origin' unreachable"
sleep 1
start_daemon
for pid in "${pids[@]}"; do wait "$pid"; done
cat storm.claims.? >storm.claims
grep -q "remote 'origin' unreachable" storm.claims.*.err || fail "no claimer saw the remote go away"
# every acknowledged claim is in the final state, each job exactly once
gf --store daemon-host3 list --json >storm.final.json
python3 - storm.claims storm.final.json <<'PY' || fail "an acknowledged claim was lost"
import json, sys
jobs = {j["id"]: j for j in json.load(open(sys.argv[2]))["jobs"]}
claims = [l.split() for l in open(sys.argv[1])]
ids = [c[0] for c in claims]
assert len(ids) == len(set(ids)), "a job was claimed twice"
for job, epoch, factory in claims:
    assert jobs[job]["stage"] == "assigned" and jobs[job]["lastFactory"] == factory, (job, jobs[job], factory)
queued = [j for j in jobs.values() if j["stage"] == "queued" and j["title"] == "Race job"]
assert not queued, f"{len(queued)} jobs left queued after the storm"
PY
expect_eq "$(git --git-dir daemon-root/fleet.git rev-list --merges refs/gigafab/state | wc -l)" 0 "merges after the storm"
fsck_clean daemon-root/fleet.git
# the server packs what the storm wrote; the hosts go on working against it
git --git-dir daemon-root/fleet.git gc --quiet
fsck_clean daemon-root/fleet.git
run gf --store daemon-host4 submit race.md
expect_rc 0
run gf --store daemon-host1 show "$OUT"
expect_rc 0

pass
