#!/usr/bin/env bash
# A stand-in for a coding agent, run by the agent tests as the shell engine.
# Reads the prompt on stdin and obeys directives in it:
#   fake-sleep: N    sleep N seconds (not when resuming), as a child process
#   fake-fail        exit 1
#   fake-wip-push    commit wip.txt and push it to gigafab/<job> first (once)
#   fake-spam        print 3 MB of output first
#   fake-ignore-term ignore SIGTERM (it and its sleep), so only SIGKILL stops it
# Writes work.txt (the agent commits it) and prints a spend line. With
# FAKE_ENGINE_PIDS set, appends its pid and its sleep's to that file.
set -u
prompt=$(cat)
id=${GIGAFAB_JOB_ID:?}
pids=${FAKE_ENGINE_PIDS:-}
[ -n "$pids" ] && echo $$ >>"$pids"
[[ "$prompt" == *"fake-ignore-term"* ]] && trap '' TERM
if [[ "$prompt" == *"fake-spam"* ]]; then head -c 3000000 /dev/zero | tr '\0' x | fold -w 99; fi
echo "prompt: $(head -c 200 <<<"$prompt" | tr '\n' ' ')"
if [ -f wip.txt ]; then
  echo "resumed: $(cat wip.txt)"
  echo "resumed at epoch $GIGAFAB_EPOCH" >resumed.txt
fi
echo "$id epoch $GIGAFAB_EPOCH" >>work.txt
if [[ "$prompt" == *"fake-wip-push"* ]] && [ ! -f wip.txt ]; then
  echo "wip from epoch $GIGAFAB_EPOCH" >wip.txt
  git add -A
  git -c user.name=fake -c user.email=fake@example.invalid commit -qm "wip on $id"
  git push -q origin "HEAD:refs/heads/gigafab/$id"
fi
secs=$(grep -o 'fake-sleep: [0-9]*' <<<"$prompt" | awk '{print $2}' || true)
if [ -n "$secs" ] && [ ! -f resumed.txt ]; then
  sleep "$secs" &
  [ -n "$pids" ] && echo $! >>"$pids"
  wait
fi
echo '{"gigafab": {"tokens": 1234, "costUsd": 0.05}}'
if [[ "$prompt" == *"fake-fail"* ]]; then
  echo "fake engine failed on $id"
  exit 1
fi
echo "fake engine did $id"
