# gigafab agent when things go wrong: an agent killed mid-job (another one
# resumes from the pushed branch; the dead one is fenced), the wall budget
# (the engine's process group is killed, the job fails budget_exceeded), a
# missing engine, SIGTERM to the agent (jobs released), an unreachable repo.
ENGINE=$(cd "$(dirname "$0")/../engines" && pwd)/fake-engine.sh
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
export GIGAFAB_STORE=$TEST_DIR/.gigafab
export FAKE_ENGINE_PIDS=$TEST_DIR/pids
export GIGAFAB_KILL_GRACE=1s
git init -q -b main src
echo hello >src/README
git -C src add README
git -C src -c user.name=t -c user.email=t@example.invalid commit -qm init
git clone -q --bare src target.git
REPO=$TEST_DIR/target.git
# A killed agent's factory still looks healthy for a while: do not hold its
# jobs back for it (the router's defer window).
gf weights set defer_window=1s >/dev/null

# job FILE TITLE BODY-LINES [FRONT-MATTER]: submits a job on $REPO; prints its id.
job() {
  manifest "$1" "$2" "${4:-}[repo]\nurl = \"$REPO\"\n"
  printf '%b' "$3" >>"$1"
  gf submit "$1"
}
agent_bg() {  # agent_bg NAME ARGS...: an agent in the background; sets AGENT_PID
  local name=$1
  shift
  "$GIGAFAB" agent --factory "$name" --poll 0.2 --engine shell --engine-command "$ENGINE" \
    --workdir "$TEST_DIR/work-$name" "$@" >"$TEST_DIR/$name.out" 2>"$TEST_DIR/$name.err" &
  AGENT_PID=$!
  BACKGROUND_PIDS+=("$AGENT_PID")
}
wait_for() {  # wait_for WHAT CMD...: up to 20 s
  local what=$1 i
  shift
  for i in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out waiting for $what"
}
none_alive() {  # every pid in $FAKE_ENGINE_PIDS is gone (or a zombie nobody reaped)
  local pid state
  for pid in $(cat "$FAKE_ENGINE_PIDS"); do
    state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    if [ -n "$state" ] && [[ "$state" != Z* ]]; then return 1; fi
  done
  return 0
}
expect_stage() {
  run gf --json show "$1"
  expect_eq "$(json 'd["stage"]')" "$2" "stage of $1"
}

# 1. kill -9 mid-job; after the lease expires another agent resumes from the branch.
: >pids
J=$(job slow.md "Slow" 'fake-wip-push\nfake-sleep: 30\n')
agent_bg dead --ttl 2
wait_for "the wip push" git --git-dir target.git rev-parse -q --verify "gigafab/$J"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
# The engine's leader dies with the agent (its orphaned sleep is killed here).
leader=$(head -1 pids)
wait_for "the engine to die with its agent" sh -c "! ps -o stat= -p $leader | grep -qv '^Z'"
kill $(cat pids) 2>/dev/null || true
sleep 3
run gf agent --factory alive --ttl 2 --drain --poll 0.2 --engine shell --engine-command "$ENGINE" --workdir work-alive
expect_rc 0
expect_err "job $J: resuming from gigafab/$J"
run gf --json show "$J"
expect_eq "$(json 'd["stage"]')" testing "resumed job"
expect_eq "$(json 'len(d["runs"])')" 2 "runs of the resumed job"
expect_eq "$(json 'd["runs"][1]["factory"]')" alive "second run"
expect_eq "$(git --git-dir target.git show "gigafab/$J:wip.txt")" "wip from epoch 1" "wip kept"
expect_eq "$(git --git-dir target.git show "gigafab/$J:resumed.txt")" "resumed at epoch 2" "second run saw the wip"
run gf report "$J" --epoch 1 --factory dead --result pass
expect_rc 3
run gf log "$J"
expect_eq "$(awk '{print $3}' <<<"$OUT" | grep -c '^claim$')" 2 "claims of the resumed job"

# 2. The wall budget: an engine that ignores SIGTERM is killed, the job fails.
: >pids
J=$(job budget.md "Over budget" 'fake-ignore-term\nfake-sleep: 30\n' '[budget]\nwall = "2s"\n')
start=$(date +%s)
run gf agent --factory fa --drain --engine shell --engine-command "$ENGINE" --workdir work-fa
expect_rc 0
[ $(($(date +%s) - start)) -lt 15 ] || fail "the budget did not stop the engine in time"
run gf --json show "$J"
expect_eq "$(json 'd["stage"]')" failed "budget job"
expect_eq "$(json 'd["reason"]')" budget_exceeded "budget job reason"
[ "$(wc -l <pids)" -ge 2 ] || fail "the engine did not record its pids"
none_alive || fail "an engine process survived the budget: $(ps -o pid,args -p "$(paste -sd, pids)")"
git --git-dir target.git show "gigafab/$J:work.txt" >/dev/null || fail "work of the timed-out run not pushed"
grep -q "wall budget of 2s exceeded" work-fa/"$J"-e1.log || fail "run log lacks the budget note"

# 3. A missing engine: the job fails with the reason in its summary and log.
J=$(job missing.md "No engine" 'hi\n')
run gf agent --factory fa --drain --engine shell --engine-command /nonexistent/engine-x --workdir work-fa
expect_rc 0
run gf --json show "$J"
expect_eq "$(json 'd["stage"]')" failed "job with a missing engine"
expect_eq "$(json 'd["runs"][0]["summary"]')" "gigafab: agent: cannot run '/nonexistent/engine-x': No such file or directory" "summary"
grep -q "cannot run '/nonexistent/engine-x'" work-fa/"$J"-e1.log || fail "run log lacks the reason"

# 3b. The run log keeps the last 1 MiB of a chatty engine.
J=$(job chatty.md "Chatty" 'fake-spam\n')
run gf agent --factory fa --drain --engine shell --engine-command "$ENGINE" --workdir work-fa
expect_rc 0
size=$(stat -c %s work-fa/"$J"-e1.log)
[ "$size" -le $((1024 * 1024 + 4096)) ] || fail "run log of $size bytes"
tail -n 3 work-fa/"$J"-e1.log | grep -q "engine exited with status 0" || fail "run log lost its end"
run gf --json show "$J"
expect_eq "$(json 'd["runs"][0]["summary"]')" "fake engine did $J" "chatty summary"

# 3c. A lost lease (here: released behind the agent's back) kills the engine;
# the job is abandoned, not reported.
: >pids
J=$(job fenced.md "Fenced" 'fake-sleep: 30\n' 'capabilities = ["fen"]\n')
agent_bg ffen --ttl 3 --max-jobs 1 --caps fen
wait_for "the engine" test -s pids
gf release "$J" --epoch 1 --factory ffen >/dev/null
rc=0
wait "$AGENT_PID" || rc=$?
expect_eq "$rc" 0 "agent exit after losing its lease"
grep -q "lease lost" ffen.err || fail "no lease-lost message: $(cat ffen.err)"
none_alive || fail "an engine process survived the lost lease"
run gf --json show "$J"
expect_eq "$(json 'd["stage"]')" queued "fenced job"
expect_eq "$(json 'len(d["runs"])')" 1 "runs of the fenced job"
expect_eq "$(json 'd["runs"][0]["result"]')" released "run of the fenced job"
run gf --json log "$J"
[[ "$OUT" != *'"report"'* ]] || fail "the fenced agent reported"

# 4. SIGTERM: the agent stops its engine, pushes, releases the job, exits 0.
# The signal comes once the engine sleeps, its work.txt written (its pid
# alone in pids is too early: CI once sent it before that write).
: >pids
J=$(job term.md "Interrupted" 'fake-sleep: 30\n')
agent_bg fterm --ttl 10
wait_for "the engine's sleep" sh -c '[ "$(wc -l <pids)" -ge 2 ]'
kill -TERM "$AGENT_PID"
rc=0
wait "$AGENT_PID" || rc=$?
expect_eq "$rc" 0 "agent exit after SIGTERM"
run gf --json show "$J"
expect_eq "$(json 'd["stage"]')" queued "released job"
expect_eq "$(json 'd["checkpoint"]')" "gigafab/$J" "released job's checkpoint"
expect_eq "$(json 'd["runs"][0]["result"]')" released "released run"
git --git-dir target.git show "gigafab/$J:work.txt" >/dev/null || fail "work of the stopped run not pushed"
none_alive || fail "an engine process survived SIGTERM: $(ps -o pid,stat,args -p "$(paste -sd, pids)")"
grep -q "released" fterm.err || fail "no release message: $(cat fterm.err)"

# 5. An unreachable repository: the job is released with a clear message.
manifest nowhere.md "Nowhere" "capabilities = [\"far\"]\n[repo]\nurl = \"$TEST_DIR/nope.git\"\n"
N=$(gf submit nowhere.md)
run gf agent --factory fn --max-jobs 1 --caps far --engine shell --engine-command "$ENGINE" --workdir work-fn
expect_rc 0
expect_err "cannot clone $TEST_DIR/nope.git"
expect_err "released"
run gf --json show "$N"
expect_eq "$(json 'd["stage"]')" queued "job on an unreachable repository"

# 6. --drain waits for a job the router holds back for a better-fitting
# factory (here one that is registered but runs no agent), and takes it once
# the defer window has passed instead of exiting and leaving it queued. (In a
# product of its own, so no job left over from above gets in the way.)
export GIGAFAB_PRODUCT=defer
gf weights set defer_window=3s >/dev/null
gf factory heartbeat --factory exact --caps tidy >/dev/null
D=$(job deferred.md "Deferred" "" 'capabilities = ["tidy"]\n')
start=$(date +%s%N)
run gf agent --factory broad --caps tidy,gpu,macos,linux --drain --poll 0.2 --engine shell \
  --engine-command "$ENGINE" --workdir work-broad
expect_rc 0
expect_err "left for better-fitting factories; waiting"
expect_err "claimed $D"
expect_stage "$D" testing
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$elapsed" -ge 1500 ] || fail "the job was not held back (${elapsed} ms)"
unset GIGAFAB_PRODUCT
pass
