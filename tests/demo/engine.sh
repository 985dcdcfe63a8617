#!/usr/bin/env bash
# The demo's stand-in for a coding agent, run by `gigafab agent` as the shell
# engine (tests/demo.sh). It gets the prompt on stdin (the profile's persona,
# a blank line, the job's body) and runs in the job's worktree, on branch
# gigafab/<job-id>. It takes the job's title from the body's "# " heading and
# edits the files the body names in backticks (`textstats.py`, `README.md`,
# ...): one line per file, a comment in Python files, a bullet elsewhere,
# creating a file that does not exist yet. It commits that work itself;
# the agent then commits anything left over and pushes the branch.
# Its output goes to the run log: a spend line, then the one-line summary
# that `gigafab show` prints for the run.
set -euo pipefail
prompt=$(cat)
id=${GIGAFAB_JOB_ID:?run me from gigafab agent}
# The job's body: from the last level-1 heading (personas have one, then ##).
body=$(awk '/^# /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' <<<"$prompt")
title=$(sed -n '1s/^# //p' <<<"$body")
files=$(grep -o '`[A-Za-z0-9_./-]*\.[a-z]*`' <<<"$body" | tr -d '`' | awk '!seen[$0]++' || true)
[ -n "$files" ] || files=NOTES.md
edited=()
for f in $files; do
  mkdir -p "$(dirname "$f")"
  case $f in
    *.py) printf '# %s (%s)\n' "$title" "$id" >>"$f" ;;
    *) printf -- '- %s (%s)\n' "$title" "$id" >>"$f" ;;
  esac
  edited+=("$f")
done
git add -A
GIT_AUTHOR_NAME="demo engine" GIT_AUTHOR_EMAIL="engine@demo.invalid" \
GIT_COMMITTER_NAME="demo engine" GIT_COMMITTER_EMAIL="engine@demo.invalid" \
  git commit -qm "$title" -m "gigafab job $id, run by factory ${GIGAFAB_FACTORY:-?}"
# Spend: made up, but deterministic (40 tokens per byte of prompt, $3 per million).
tokens=$(( ${#prompt} * 40 ))
cost=$(awk -v t="$tokens" 'BEGIN { printf "%.2f", t * 3 / 1000000 }')
printf '{"gigafab": {"tokens": %d, "costUsd": %s}}\n' "$tokens" "$cost"
echo "edited ${edited[*]}: $title"
