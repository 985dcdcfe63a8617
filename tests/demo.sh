#!/usr/bin/env bash
# The README's demo: a local store, a handful of sample jobs (one waiting on
# another), the job list, one job in full, and the audit trail.
# usage: tests/demo.sh [GIGAFAB-BINARY]   (DEMO_DIR=... to choose where)
set -euo pipefail
gigafab=$(realpath "${1:-build/gigafab}")
dir=${DEMO_DIR:-$(mktemp -d /tmp/gigafab-demo.XXXXXX)}
mkdir -p "$dir"
cd "$dir"
say() { printf '\n$ %s\n' "$*"; }
step() { say "$@"; "$@"; }

step "$gigafab" init
cat >uploader.md <<'MD'
+++
title = "Add retry to the uploader"
profile = "backend-dev"
priority = "high"
idempotency_key = "tracker:ISSUE-42"
[budget]
usd = 5.0
wall = "45m"
[repo]
url = "https://example.com/acme/uploader.git"
base = "main"
+++
# Add retry to the uploader

Uploads to the blob store fail about once a day on a transient 503. Retry them
with exponential backoff (3 attempts, jittered), and log the final failure.
MD
cat >docs.md <<'MD'
+++
profile = "docs-writer"
priority = "low"
+++
# Document the upload retry policy

Explain the retry policy in docs/uploads.md once the uploader retries.
MD
cat >ui.md <<'MD'
+++
profile = "frontend-dev"
+++
# Show upload progress in the web console

A progress bar per upload, with the retry count when a retry happens.
MD
say "$gigafab" submit uploader.md
uploader=$("$gigafab" submit uploader.md)
echo "$uploader"
step "$gigafab" submit --dep "$uploader" docs.md
step "$gigafab" submit ui.md
echo "(submitting the same idempotency key again returns the same job and writes nothing:)"
step "$gigafab" submit uploader.md
step "$gigafab" list
step "$gigafab" show "$uploader"
step "$gigafab" log
step git --git-dir .gigafab log --stat -1 refs/gigafab/state
printf '\nThe demo store is in %s/.gigafab (try: cd %s && %s list --json)\n' "$dir" "$dir" "$gigafab"
