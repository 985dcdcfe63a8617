# claim --wait blocks until a fitting job arrives; events --follow streams a
# job's events as another process drives it, and ends when the job ships.
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
manifest job.md "Waited for"

# Nothing queued: --wait 0 fails at once, --wait N waits for a submit.
run gf claim --factory w
expect_rc 6
SECONDS=0
( sleep 1; gf submit job.md >submitted ) &
run gf claim --factory w --wait 10
wait
expect_rc 0
expect_eq "$OUT" "$(cat submitted) 1" "the waiting claimer gets the job submitted later"
[ "$SECONDS" -lt 8 ] || fail "claim --wait took ${SECONDS}s"
SECONDS=0
run gf claim --factory w --wait 1
expect_rc 6
[ "$SECONDS" -ge 1 ] || fail "claim --wait 1 returned before a second"
run gf claim --factory w --wait -1
expect_rc 2

# events --follow prints each event as it happens and exits when the job ships.
J=$(cat submitted)
gf --json events "$J" --follow >follow.out 2>follow.err &
follower=$!
sleep 0.5
gf start "$J" --epoch 1 --factory w >/dev/null
sleep 0.3
gf report "$J" --epoch 1 --factory w --result pass >/dev/null
gf ship "$J" >/dev/null
for _ in $(seq 1 50); do kill -0 $follower 2>/dev/null || break; sleep 0.1; done
kill -0 $follower 2>/dev/null && fail "events --follow did not exit after the job shipped"
wait $follower || fail "events --follow failed: $(cat follow.err)"
types=$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["type"] for l in open("follow.out")))')
expect_eq "$types" "submit claim start report ship" "followed events"
seqs=$(python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["seq"]) for l in open("follow.out")))')
expect_eq "$seqs" "1 2 3 4 5" "one line per event, in order, no duplicates"
pass
