# Claim race: 200 queued jobs, 8 processes each claiming in a loop until exit 6.
# Every job is assigned exactly once, to the claimer that printed it.
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
S=.gigafab
manifest job.md "Race"
for i in $(seq 1 200); do gf submit job.md; done >submitted
expect_eq "$(sort -u submitted | wc -l)" 200 "submitted jobs"

claimer() { claim_until_empty "f$1" "claims.$1" "errors.$1"; }  # claimer N
rm -f gate
for n in $(seq 1 8); do (while [ ! -e gate ]; do sleep 0.001; done; claimer "$n") & done
sleep 0.2
touch gate
wait

for n in $(seq 1 8); do
  if grep -v 'nothing to claim' "errors.$n" | grep -q .; then fail "claimer $n errors: $(cat "errors.$n")"; fi
done
cat claims.* | awk '{print $1}' | sort >claimed
expect_eq "$(wc -l <claimed)" 200 "claims printed"
expect_eq "$(sort -u claimed | wc -l)" 200 "distinct jobs claimed (a duplicate means a double assignment)"
diff <(sort submitted) claimed >/dev/null || fail "claimed set differs from submitted set"
for n in $(seq 1 8); do [ -s "claims.$n" ] || echo "note: claimer $n won nothing" >&2; done

# The store agrees: every job assigned once, at epoch 1, to the factory that printed it.
gf --json list >list.json
python3 - list.json claims.* <<'PY' || fail "store view differs from what the claimers printed"
import json, sys, glob, re
jobs = {j["id"]: j for j in json.load(open(sys.argv[1]))["jobs"]}
assert len(jobs) == 200, len(jobs)
printed = {}
for path in sys.argv[2:]:
    factory = "f" + path.rsplit(".", 1)[1]
    for line in open(path):
        job, epoch = line.split()
        assert job not in printed, f"{job} printed twice"
        printed[job] = (factory, int(epoch))
for jid, job in jobs.items():
    assert job["stage"] == "assigned", (jid, job["stage"])
    assert job["leaseEpoch"] == 1 and job["attempts"] == 1, (jid, job)
    assert printed[jid][1] == 1
PY
# Lease holders, read straight from the git tree.
for line in $(cat claims.* | tr ' ' ':' | shuf -n 20); do
  id=${line%%:*}
  holder=$(git --git-dir $S show "refs/gigafab/state:jobs/${id:2:2}/$id/lease.toml" | sed -n "s/^holder = '\(.*\)'$/\1/p")
  grep -qx "$id 1" "$(grep -l "^$id " claims.*)" || fail "who printed $id"
  expect_eq "claims.${holder#f}" "$(grep -l "^$id " claims.*)" "holder of $id"
done
expect_eq "$(git --git-dir $S log --format=%B refs/gigafab/state | grep -c '^Gigafab-Op: claim$')" 200 "claim commits"
expect_eq "$(git --git-dir $S rev-list --merges --count refs/gigafab/state)" 0 "merges"
fsck_clean $S
pass
