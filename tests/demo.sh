#!/usr/bin/env bash
# The README's demo: a real local fleet, end to end. A store and a small
# sample project (a bare git repository), five jobs on it (one waiting on
# another), two factories (`gigafab agent`) draining the queue in parallel
# with a bundled stand-in engine (tests/demo/engine.sh) that edits and
# commits in each job's worktree, an operator approving and shipping one job
# (which releases its dependent to a second round), then the results: the job
# list, one job's run, its audit trail and the branches pushed to the project.
# usage: tests/demo.sh [GIGAFAB-BINARY]   (DEMO_DIR=... to choose where)
set -euo pipefail
gigafab=$(realpath "${1:-build/gigafab}")
engine=$(realpath "$(dirname "$0")/demo/engine.sh")
dir=${DEMO_DIR:-$(mktemp -d /tmp/gigafab-demo.XXXXXX)}
mkdir -p "$dir"
dir=$(realpath "$dir")
cd "$dir"
unset GIGAFAB_STORE GIGAFAB_API GIGAFAB_TOKEN GIGAFAB_PRODUCT GIGAFAB_FACTORY
agents=()
stop_agents() { local p; for p in "${agents[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_agents EXIT
say() { printf '\n$ %s\n' "$*"; }
step() { say "$@"; "$@"; }
note() { printf '\n## %s\n' "$1"; shift; [ $# -eq 0 ] || printf '## %s\n' "$@"; }

note "A sample project to work on: textstats, a bare git repository with one commit on main"
mkdir src
cat >src/README.md <<'EOF'
# textstats

Counts the lines, words and characters of text files.
EOF
cat >src/textstats.py <<'EOF'
"""textstats: count the lines, words and characters of text files."""
import sys


def count(text):
    return len(text.splitlines()), len(text.split()), len(text)


def main(argv):
    for path in argv[1:]:
        with open(path, encoding="utf-8") as f:
            lines, words, chars = count(f.read())
        print(f"{lines:7} {words:7} {chars:7} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
EOF
git init -q -b main src
git -C src add -A
git -C src -c user.name=demo -c user.email=demo@example.invalid commit -qm "textstats: count lines, words, characters"
git clone -q --bare src textstats.git
rm -rf src
repo=$dir/textstats.git
step git --git-dir textstats.git log --oneline main

note "A fleet store (a bare git repository of its own) and five jobs on textstats"
step "$gigafab" init
job() {  # job FILE PROFILE PRIORITY EXTRA-FRONT-MATTER: the manifest's front matter; the body is on stdin
  { printf '+++\nprofile = "%s"\npriority = "%s"\n%s' "$2" "$3" "$4"
    printf '[repo]\nurl = "%s"\nbase = "main"\n+++\n' "$repo"
    cat; } >"$1"
}
job top.md backend-dev high 'idempotency_key = "tracker:TS-12"
[budget]
usd = 2.0
wall = "10m"
' <<'EOF'
# Add a --top N option

Print the N most frequent words after the counts, most frequent first, ties
in alphabetical order. Implement it in `textstats.py`.
EOF
job tests.md test-engineer normal '' <<'EOF'
# Add unit tests for count()

Cover empty input, a file without a trailing newline and runs of blank lines,
in `tests/test_textstats.py`.
EOF
job usage.md docs-writer normal '' <<'EOF'
# Document the command line

Add a Usage section to `README.md` with an example run and its output.
EOF
job stdin.md backend-dev normal '' <<'EOF'
# Read standard input when no file is given

`textstats.py` with no arguments should count its standard input, like wc.
EOF
job changelog.md docs-writer low '' <<'EOF'
# Add a changelog entry for --top

Describe the new option in `CHANGELOG.md`, once it has shipped.
EOF
submit() {  # submit VAR [ARGS...] FILE: submits, shows the id and keeps it in VAR
  local -n id_=$1
  shift
  say "$gigafab" submit "$@"
  id_=$("$gigafab" submit "$@")
  echo "$id_"
}
submit top top.md
submit tests tests.md
submit usage usage.md
submit stdin stdin.md
submit changelog --dep "$top" changelog.md
echo "(the same idempotency key again returns the same job and writes nothing:)"
say "$gigafab" submit top.md
"$gigafab" submit top.md 2>&1
step "$gigafab" list

agent() {  # agent FACTORY: a factory draining the queue in the background, its output in FACTORY.log
  local cmd=("$gigafab" agent --factory "$1" --caps linux --drain --poll 0.2
    --engine shell --engine-command "$engine" --workdir "work-$1")
  say "${cmd[@]}" ">>$1.log 2>&1 &"
  "${cmd[@]}" >>"$1.log" 2>&1 &
  agents+=($!)
}
wait_agents() {
  local p
  say wait
  for p in "${agents[@]}"; do
    wait "$p" || { echo "demo: an agent failed:" >&2; cat demo-*.log >&2; exit 1; }
  done
  agents=()
}
stage() { "$gigafab" show "$1" | awk '$1 == "stage:" { print $2 }'; }
expect_stage() {  # expect_stage STAGE ID...: the demo stops if a job is elsewhere
  local id want=$1
  shift
  for id in "$@"; do
    [ "$(stage "$id")" == "$want" ] || { echo "demo: job $id is $(stage "$id"), not $want" >&2; exit 1; }
  done
}

note "Two factories drain the queue in parallel. Each claims a job, clones textstats" \
  "into a worktree on branch gigafab/<id>, runs the engine there (tests/demo/engine.sh:" \
  "it edits the files the job names and commits), pushes the branch and reports."
agent demo-a
agent demo-b
wait_agents
echo "(--drain: an agent exits once nothing it can claim is left; the changelog job stays blocked)"
step cat demo-a.log demo-b.log
step "$gigafab" list
expect_stage review "$top" "$stdin"
expect_stage testing "$tests" "$usage"
expect_stage blocked "$changelog"

note "backend-dev jobs stop in review (the profile asks for it). An operator approves" \
  "and ships --top, which releases the changelog job to a second round."
step "$gigafab" approve "$top"
step "$gigafab" ship "$top"
agent demo-a
wait_agents
step "$gigafab" list
expect_stage testing "$changelog"

note "One job in full: its run (factory, tokens, cost, summary) and its checkpoint branch"
step "$gigafab" show "$top"
note "That run's output, as stored in the fleet (readable from any host; the JSON line is its spend)"
step "$gigafab" logs "$top"
note "Its audit trail, one line per transition (a commit each in the store)"
step "$gigafab" log "$top"

note "The work, pushed to the project as one branch per job"
say git --git-dir textstats.git branch --list "'gigafab/*'"
git --git-dir textstats.git branch --list 'gigafab/*'
step git --git-dir textstats.git log --oneline "gigafab/$top"
step git --git-dir textstats.git diff main "gigafab/$top"
printf '\nThe demo is in %s: the store .gigafab (try: cd %s && %s list --json),\n' "$dir" "$dir" "$gigafab"
printf 'the project textstats.git, and each factory'"'"'s run logs under work-demo-a/ and work-demo-b/.\n'
