# gigafab agent: two agents drain 30 jobs from one store with the fake engine;
# every job runs once, its work is pushed to gigafab/<id> in the job's
# repository, and the spend line reaches the run.
ENGINE=$(cd "$(dirname "$0")/../engines" && pwd)/fake-engine.sh
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
S=.gigafab
export GIGAFAB_STORE=$TEST_DIR/$S

# The jobs' repository: a bare repo with one commit on main.
git init -q -b main src
echo hello >src/README
git -C src add README
git -C src -c user.name=t -c user.email=t@example.invalid commit -qm init
git clone -q --bare src target.git
REPO=$TEST_DIR/target.git

ids=()
for i in $(seq 30); do
  manifest job$i.md "Job $i" "capabilities = [\"linux\"]\n[repo]\nurl = \"$REPO\"\n"
  ids+=("$(gf submit job$i.md)")
done
manifest other.md "Needs gpu" "capabilities = [\"gpu\"]\n[repo]\nurl = \"$REPO\"\n"
GPU=$(gf submit other.md)

agent() {  # agent NAME: runs an agent in the background, draining
  "$GIGAFAB" agent --factory "$1" --caps linux --seats 2 --drain --poll 0.2 --ttl 30 \
    --engine shell --engine-command "$ENGINE" --workdir "$TEST_DIR/work-$1" >"$TEST_DIR/$1.out" 2>"$TEST_DIR/$1.err" &
}
agent fa
PA=$!
agent fb
PB=$!
BACKGROUND_PIDS+=("$PA" "$PB")
DUMP_ON_FAIL+=("$TEST_DIR/fa.err" "$TEST_DIR/fb.err")
wait "$PA" || fail "agent fa exited $?: $(cat fa.err)"
wait "$PB" || fail "agent fb exited $?: $(cat fb.err)"

for id in "${ids[@]}"; do
  run gf --json show "$id"
  expect_eq "$(json 'd["stage"]')" testing "stage of $id"
  expect_eq "$(json 'len(d["runs"])')" 1 "runs of $id"
  expect_eq "$(json 'd["runs"][0]["tokens"]')" 1234 "tokens of $id"
  expect_eq "$(json 'd["runs"][0]["costUsd"]')" 0.05 "cost of $id"
  expect_eq "$(json 'd["runs"][0]["summary"]')" "fake engine did $id" "summary of $id"
  expect_eq "$(json 'd["checkpoint"]')" "gigafab/$id" "checkpoint of $id"
  run gf log "$id"
  expect_eq "$(awk '{print $3}' <<<"$OUT" | grep -c '^claim$')" 1 "claims of $id"
  expect_eq "$(awk '{print $3}' <<<"$OUT" | tr '\n' ' ')" "submit claim start checkpoint report " "log of $id"
  work=$(git --git-dir target.git show "gigafab/$id:work.txt") || fail "no gigafab/$id branch with work.txt"
  [[ "$work" == "$id epoch 1" ]] || fail "work.txt of $id: $work"
  git --git-dir target.git merge-base --is-ancestor main "gigafab/$id" || fail "gigafab/$id does not start at main"
  author=$(git --git-dir target.git log -1 --format=%an "gigafab/$id")
  expect_eq "$author" "gigafab agent" "author of the work commit"
done
# Both agents worked; the gpu job was left alone; worktrees were removed, logs kept.
grep -q claimed fa.err || fail "agent fa claimed nothing: $(cat fa.err)"
grep -q claimed fb.err || fail "agent fb claimed nothing: $(cat fb.err)"
run gf --json show "$GPU"
expect_eq "$(json 'd["stage"]')" queued "gpu job"
n_dirs=$(find work-fa work-fb -mindepth 1 -maxdepth 1 -type d | wc -l)
expect_eq "$n_dirs" 0 "worktrees left after pushing"
n_logs=$(ls work-fa/*.log work-fb/*.log | wc -l)
expect_eq "$n_logs" 30 "run logs"
grep -q "fake engine did" work-fa/*.log || fail "run log lacks the engine's output"
run gf --json factory list
[[ "$OUT" == *'"fa"'* && "$OUT" == *'"fb"'* ]] || fail "agents did not heartbeat: $OUT"

# A job whose engine fails is reported fail with its last line; --max-jobs 1.
manifest failing.md "Failing" "capabilities = [\"linux\"]\n[repo]\nurl = \"$REPO\"\n"
printf 'fake-fail\n' >>failing.md
F=$(gf submit failing.md)
run gf agent --factory fa --caps linux --max-jobs 1 --poll 0.2 --engine shell --engine-command "$ENGINE" --workdir work-fa
expect_rc 0
run gf --json show "$F"
expect_eq "$(json 'd["stage"]')" failed "failing job"
expect_eq "$(json 'd["reason"]')" reported_fail "failing job reason"
expect_eq "$(json 'd["runs"][0]["summary"]')" "fake engine failed on $F" "failing summary"
git --git-dir target.git show "gigafab/$F:work.txt" >/dev/null || fail "failed work not pushed"

# engines.toml: a stand-in "claude" (its JSON result gives cost, tokens and
# the summary), the prompt as a file, env and placeholders.
cat >engines.toml <<'TOML'
[engines.claude]
command = ["sh", "-c", "cp \"$1\" prompt-copy.md; echo \"$X_ENV {job_id}\" >env.txt; printf '%s\\n' '{\"type\":\"result\",\"result\":\"line one\\nclaude did it\",\"total_cost_usd\":0.5,\"usage\":{\"input_tokens\":10,\"output_tokens\":5}}'", "claude", "{prompt_file}"]
prompt = "file"
env = { X_ENV = "from-toml" }
timeout = "10m"
TOML
manifest claude.md "Claude job" "capabilities = [\"linux\"]\n[repo]\nurl = \"$REPO\"\n"
C=$(gf submit --profile docs-writer claude.md)  # the profile's engine is claude
cp engines.toml .gigafab/engines.toml  # the store's engines.toml, found without --engines
run gf agent --factory fa --caps linux --max-jobs 1 --workdir work-fa
expect_rc 0
run gf --json show "$C"
expect_eq "$(json 'd["stage"]')" testing "claude job"
expect_eq "$(json 'd["runs"][0]["summary"]')" "claude did it" "claude summary"
expect_eq "$(json 'd["runs"][0]["costUsd"]')" 0.5 "claude cost"
expect_eq "$(json 'd["runs"][0]["tokens"]')" 15 "claude tokens"
expect_eq "$(git --git-dir target.git show "gigafab/$C:env.txt")" "from-toml $C" "engine env and placeholders"
prompt=$(git --git-dir target.git show "gigafab/$C:prompt-copy.md")
[[ "$prompt" == "# Documentation writer"* ]] || fail "prompt does not start with the persona: $prompt"
grep -q "^# Claude job" <<<"$prompt" || fail "prompt lacks the body: $prompt"

# --api: the same loop against `gigafab serve`, with the factory's own token.
start_server .gigafab
FT=$(gf factory enroll fapi --caps linux --seats 1 2>/dev/null)
manifest api.md "API job" "capabilities = [\"linux\"]\n[repo]\nurl = \"$REPO\"\n"
A=$(gf submit api.md)
run env -u GIGAFAB_STORE "$GIGAFAB" --api "$URL" --token "$FT" agent --factory fapi --caps linux --drain --poll 0.2 \
  --engine shell --engine-command "$ENGINE" --workdir "$TEST_DIR/work-api"
expect_rc 0
run gf --json show "$A"
expect_eq "$(json 'd["stage"]')" testing "job run through --api"
expect_eq "$(json 'd["runs"][0]["factory"]')" fapi "factory of the --api run"
git --git-dir target.git show "gigafab/$A:work.txt" >/dev/null || fail "--api run not pushed"
# The wall budget's reason travels over the API too.
manifest slow.md "Slow API job" "capabilities = [\"linux\"]\n[budget]\nwall = \"1s\"\n[repo]\nurl = \"$REPO\"\n"
printf 'fake-sleep: 30\n' >>slow.md
B=$(gf submit slow.md)
run env -u GIGAFAB_STORE GIGAFAB_KILL_GRACE=1s "$GIGAFAB" --api "$URL" --token "$FT" agent --factory fapi --caps linux \
  --drain --poll 0.2 --engine shell --engine-command "$ENGINE" --workdir "$TEST_DIR/work-api"
expect_rc 0
run gf --json show "$B"
expect_eq "$(json 'd["stage"]')" failed "timed-out job through --api"
expect_eq "$(json 'd["reason"]')" budget_exceeded "reason through --api"

# The two-agent scenario through --api: two factories, each with its own
# token and two seats, drain 12 jobs through `gigafab serve`. (Their own
# capability keeps the factories registered above out of the routing.)
TA=$(gf factory enroll fapi-a --caps linux,api --seats 2 2>/dev/null)
TB=$(gf factory enroll fapi-b --caps linux,api --seats 2 2>/dev/null)
api_ids=()
for i in $(seq 12); do
  manifest api$i.md "API job $i" "capabilities = [\"linux\", \"api\"]\n[repo]\nurl = \"$REPO\"\n"
  api_ids+=("$(gf submit api$i.md)")
done
api_agent() {  # api_agent NAME TOKEN: an agent on $URL in the background, draining
  env -u GIGAFAB_STORE "$GIGAFAB" --api "$URL" --token "$2" agent --factory "$1" --caps linux,api --seats 2 --drain \
    --poll 0.2 --ttl 30 --engine shell --engine-command "$ENGINE" --workdir "$TEST_DIR/work-$1" \
    >"$TEST_DIR/$1.out" 2>"$TEST_DIR/$1.err" &
}
api_agent fapi-a "$TA"
PA=$!
api_agent fapi-b "$TB"
PB=$!
BACKGROUND_PIDS+=("$PA" "$PB")
wait "$PA" || fail "agent fapi-a exited $?: $(cat fapi-a.err)"
wait "$PB" || fail "agent fapi-b exited $?: $(cat fapi-b.err)"
for id in "${api_ids[@]}"; do
  run gf --json show "$id"  # one python per job: the fields, |-separated
  fields=$(json '"|".join(str(x) for x in [d["stage"], len(d["runs"]), d["checkpoint"]] + [d["runs"][0][k] for k in ("factory", "tokens", "summary")])')
  IFS='|' read -r stage n_runs checkpoint factory tokens summary <<<"$fields"
  expect_eq "$stage" testing "stage of $id (--api)"
  expect_eq "$n_runs" 1 "runs of $id (--api)"
  expect_eq "$checkpoint" "gigafab/$id" "checkpoint of $id (--api)"
  [[ "$factory" == fapi-[ab] ]] || fail "factory of $id (--api): $factory"
  expect_eq "$tokens" 1234 "tokens of $id (--api)"
  expect_eq "$summary" "fake engine did $id" "summary of $id (--api)"
  run gf log "$id"
  expect_eq "$(awk '{print $3}' <<<"$OUT" | grep -c '^claim$')" 1 "claims of $id (--api)"
  expect_eq "$(awk '{print $3}' <<<"$OUT" | tr '\n' ' ')" "submit claim start checkpoint report " "log of $id (--api)"
  work=$(git --git-dir target.git show "gigafab/$id:work.txt") || fail "no gigafab/$id branch with work.txt (--api)"
  [[ "$work" == "$id epoch 1" ]] || fail "work.txt of $id (--api): $work"
done
grep -q claimed fapi-a.err || fail "agent fapi-a claimed nothing: $(cat fapi-a.err)"
grep -q claimed fapi-b.err || fail "agent fapi-b claimed nothing: $(cat fapi-b.err)"
n_logs=$(ls work-fapi-a/*.log work-fapi-b/*.log | wc -l)
expect_eq "$n_logs" 12 "run logs of the --api agents"

# Bad options change nothing.
manifest r.md "Reason" "capabilities = [\"rsn\"]\n"
R=$(gf submit r.md)
read -r _ EP < <(gf claim --factory fr --caps rsn)
gf start "$R" --epoch "$EP" --factory fr >/dev/null
before=$(tip $S)
run gf report "$R" --epoch "$EP" --factory fr --result pass --reason budget_exceeded
expect_rc 2
expect_err "a reason goes with a failing report only"
run gf report "$R" --epoch "$EP" --factory fr --result fail --reason "Bad Reason"
expect_rc 2
expect_err "invalid reason 'Bad Reason'"
expect_eq "$(tip $S)" "$before" "tip after bad reasons"
run gf report "$R" --epoch "$EP" --factory fr --result fail --reason engine_crashed
expect_rc 0
run gf --json show "$R"
expect_eq "$(json 'd["reason"]')" engine_crashed "reported reason"
before=$(tip $S)
run gf agent --factory fa --engine nosuch --drain
expect_rc 2
expect_err "unknown engine 'nosuch'"
run gf agent --factory fa --engines missing.toml --drain
expect_rc 2
expect_err "engines file 'missing.toml' does not exist"
printf '[engines.x]\ncommand = ["a"]\nprompt = "pipe"\n' >bad.toml
run gf agent --factory fa --engines bad.toml --drain
expect_rc 2
expect_err "engines.x.prompt"
expect_eq "$(tip $S)" "$before" "tip after bad options"
pass
