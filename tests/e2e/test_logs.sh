#!/usr/bin/env bash
# gigafab logs: an agent on one host stores its engine's output in the fleet
# as the engine runs; another host follows it live through the git remote,
# and `--api` reads the same bytes. Appends are fenced; a run keeps its last
# MiB; bad input changes nothing.
source "$(dirname "$0")/lib.sh"

git init -q --bare fleet.git
gf init host-a --no-fsync --remote "$TEST_DIR/fleet.git" >/dev/null
gf init host-b --no-fsync --remote "$TEST_DIR/fleet.git" >/dev/null

# The jobs' repository and an engine that prints, waits for ./go, prints again.
git init -q -b main src
echo hello >src/README
git -C src add README
git -C src -c user.name=t -c user.email=t@example.invalid commit -qm init
git clone -q --bare src target.git
cat >engine.sh <<SH
#!/usr/bin/env bash
prompt=\$(cat)
if [[ "\$prompt" == *spam* ]]; then head -c 3000000 /dev/zero | tr '\\0' y | fold -w 99; echo "spam done"; exit 0; fi
echo "step 1 of \$GIGAFAB_JOB_ID"
for i in \$(seq 300); do [ -f "$TEST_DIR/go" ] && break; sleep 0.1; done
printf 'step 2: caf\\xc3\\xa9 and a stray \\xff byte\\n'
echo work >work.txt
echo "all done"
SH
chmod +x engine.sh
manifest job.md "Logged job" "[repo]\nurl = \"$TEST_DIR/target.git\"\n"
J=$(gf --store host-a submit job.md)

# Not run yet: a clear not-found, and nothing else.
run gf --store host-b logs "$J"
expect_rc 5
expect_err "job $J has not run yet"

# Another host follows the job before it runs; it sees step 1 while the engine
# is still waiting, so the output streams rather than arriving at the end.
gf --store host-b logs --follow --poll 0.2 "$J" >follow.out 2>follow.err &
FOLLOW=$!
BACKGROUND_PIDS+=("$FOLLOW")
gf --store host-a agent --factory fa --drain --poll 0.2 --output-every 0.2 --engine shell \
  --engine-command "$TEST_DIR/engine.sh" --workdir "$TEST_DIR/work" >agent.out 2>agent.err &
AGENT=$!
BACKGROUND_PIDS+=("$AGENT")
for i in $(seq 200); do grep -q "step 1 of $J" follow.out && break; sleep 0.1; done
grep -q "step 1 of $J" follow.out || fail "the follower never saw step 1: $(cat follow.out follow.err agent.err)"
grep -q "step 2" follow.out && fail "step 2 printed before the engine was let go"
kill -0 "$FOLLOW" || fail "the follower exited while the run was live"
touch go
wait "$AGENT" || fail "agent exited $?: $(cat agent.err)"
wait "$FOLLOW" || fail "logs --follow exited $?: $(cat follow.err)"
grep -q "step 2: café and a stray $(printf '\xef\xbf\xbd') byte" follow.out || fail "step 2 (UTF-8, the bad byte replaced): $(cat follow.out)"
grep -q "gigafab agent: engine exited with status 0" follow.out || fail "the agent's last note: $(cat follow.out)"

# A plain read from either host gives the same bytes as the follower saw.
run gf --store host-b logs "$J"
expect_rc 0
expect_eq "$OUT" "$(cat follow.out)" "logs after the run vs --follow"
gf --store host-a logs "$J" >a.out
cmp -s a.out follow.out || fail "host a and host b differ"
run gf --store host-b --json logs "$J"
expect_eq "$(json 'd["live"]')" False "live after the run"
expect_eq "$(json 'd["epoch"]')" 1 "epoch"
expect_eq "$(json 'd["start"]')" 0 "start"
expect_eq "$(json 'd["end"] == len(d["text"].encode())')" True "end is the byte count"
run gf --store host-b logs --from 10 "$J"
expect_eq "$OUT" "$(tail -c +11 follow.out)" "--from 10"
# The output is on refs/gigafab/logs of the remote, not in the audit trail.
git --git-dir fleet.git rev-parse -q --verify refs/gigafab/logs >/dev/null || fail "no logs ref on the remote"
run gf --store host-b log "$J"
[[ "$OUT" == *output* ]] && fail "output appends reached the audit trail: $OUT"

# Over --api, with an operator token: the same bytes.
start_server host-a
OP=$(gf --store host-a token create --operator 2>/dev/null)
run gf --api "$URL" --token "$OP" logs "$J"
expect_rc 0
expect_eq "$OUT" "$(cat follow.out)" "logs over --api"
run gf --api "$URL" --token "$OP" logs --follow "$J"
expect_rc 0
expect_eq "$OUT" "$(cat follow.out)" "logs --follow over --api (the run is over: prints and exits)"
run gf --api "$URL" --token "$OP" logs --epoch 2 "$J"
expect_rc 5
expect_err "has no run with epoch 2"

# Appends are fenced: a zombie whose lease was reaped and re-granted is
# refused (409), and the logs ref does not move.
manifest z.md "Zombie job" ""
Z=$(gf --store host-a submit z.md)
FZ=$(gf --store host-a factory enroll fz 2>/dev/null)
gf --store host-a factory enroll fy >/dev/null 2>&1
claimed_at=$(date +%s%N)
run gf --store host-a claim --factory fz --ttl 5
expect_rc 0
expect_eq "$OUT" "$Z 1" "the zombie's claim"
http POST "/api/fleet/jobs/$Z/output" "$FZ" '{"epoch": 1, "offset": 0, "text": "alive\n"}'
expect_status 200
expect_eq "$(json 'd["end"]')" 6 "end after the first append"
# A retried append stores nothing twice.
before=$(git --git-dir host-a rev-parse refs/gigafab/logs)
http POST "/api/fleet/jobs/$Z/output" "$FZ" '{"epoch": 1, "offset": 0, "text": "alive\n"}'
expect_status 200
expect_eq "$(git --git-dir host-a rev-parse refs/gigafab/logs)" "$before" "a retried append wrote"
# past the zombie's 5 s lease
while [ $(( ($(date +%s%N) - claimed_at) / 1000000 )) -lt 5300 ]; do sleep 0.1; done
gf --store host-a reap >/dev/null
run gf --store host-a claim --factory fy
expect_eq "$OUT" "$Z 2" "the new holder's claim"
http POST "/api/fleet/jobs/$Z/output" "$FZ" '{"epoch": 1, "offset": 6, "text": "zombie\n"}'
expect_status 409
expect_eq "$(git --git-dir host-a rev-parse refs/gigafab/logs)" "$before" "the fenced append wrote"
# Bad bodies: 400 naming the field, nothing written.
http POST "/api/fleet/jobs/$Z/output" "$FZ" '{"epoch": 1, "offset": 0}'
expect_status 400
expect_eq "$(json 'd["error"]["field"]')" text "missing text"
http POST "/api/fleet/jobs/$Z/output" "$FZ" '{"epoch": 1, "offset": -3, "text": "x"}'
expect_status 400
http POST "/api/fleet/jobs/$Z/output" "$FZ" '{"epoch": 1, "offset": 0, "text": "x", "txt": 1}'
expect_status 400
expect_out "did you mean 'text'"
http GET "/api/fleet/jobs/$Z/output?from=-1" "$OP"
expect_status 400
http GET "/api/fleet/jobs/$Z/output?epoch=1" "$OP"
expect_status 200
expect_eq "$(json 'd["text"]')" "alive" "the zombie's run keeps what it wrote in time"
expect_eq "$(git --git-dir host-a rev-parse refs/gigafab/logs)" "$before" "a bad append wrote"

# A run keeps its last MiB: 3 MB of output, the start moves on, and a plain
# read says on stderr what was dropped.
manifest spam.md "Spam job" "[repo]\nurl = \"$TEST_DIR/target.git\"\n"
printf 'spam\n' >>spam.md
S=$(gf --store host-a submit spam.md)
gf --store host-a agent --factory fa --drain --poll 0.2 --engine shell --engine-command "$TEST_DIR/engine.sh" \
  --workdir "$TEST_DIR/work" >spam.out 2>spam.err || fail "spam agent: $(cat spam.err)"
run gf --store host-b --json logs "$S"
expect_eq "$(json 'd["end"] > 3000000')" True "bytes written in all"
expect_eq "$(json 'd["start"] > 0 and d["end"] - d["start"] <= 1048576')" True "kept: the last MiB"
expect_eq "$(json '"spam done" in d["text"]')" True "the tail is kept"
run gf --store host-b logs "$S"
expect_rc 0
expect_err "were dropped (a run keeps its last 1048576 bytes)"

# gc keeps every run's output.
gf --store host-a gc >/dev/null
run gf --store host-a logs "$J"
expect_eq "$OUT" "$(cat follow.out)" "logs after gc"

# Bad input: clear errors, exit codes.
run gf --store host-b logs j-nosuchjb
expect_rc 5
run gf --store host-b logs 'bad/id'
expect_rc 2
run gf --store host-b logs --epoch 0 "$J"
expect_rc 2
run gf --store host-b logs --from -5 "$J"
expect_rc 2
fsck_clean fleet.git
pass
