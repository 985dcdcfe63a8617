# The reaper racing the holder, 200 times: a renewal (or report) and a reap
# are started at the same instant, the holder acting just before its lease
# expires and the reaper just after. Whichever commits first wins; the other
# must see its effect. Never a lost renewal (holder fenced although the reaper
# found its lease renewed), never a requeue of a finished job.
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
S=.gigafab
manifest job.md "Raced" 'max_attempts = 100\n'
T=1800000000000
TTL=10
at() { local t=$1; shift; GIGAFAB_NOW=$t "$GIGAFAB" "$@"; }
for i in $(seq 1 100); do at $T submit job.md; done >/dev/null

race() {  # race HOLDER-COMMAND...: runs it at T+TTL-1 against a reap at T+TTL+1
  rm -f gate holder.rc reap.rc
  (while [ ! -e gate ]; do sleep 0.001; done; rc=0; at $((T + TTL * 1000 - 1)) "$@" >/dev/null 2>holder.err || rc=$?; echo $rc >holder.rc) &
  (while [ ! -e gate ]; do sleep 0.001; done; rc=0; at $((T + TTL * 1000 + 1)) reap >/dev/null 2>reap.err || rc=$?; echo $rc >reap.rc) &
  sleep 0.02
  touch gate
  wait
  [ "$(cat reap.rc)" = 0 ] || fail "reap failed: $(cat reap.err)"
}

job_state() {  # "STAGE EPOCH" of a job
  at $((T + TTL * 1000 + 2)) show "$1" | awk '/^stage:/ {s=$2} /^lease epoch:/ {e=$3} END {print s, e}'
}
renew_won=0 renew_lost=0 report_won=0 report_lost=0
for i in $(seq 1 200); do
  read -r J E < <(at $T claim --factory holder --ttl $TTL)
  if ((i % 2)); then
    race renew "$J" --epoch "$E" --factory holder --ttl $TTL
    state=$(job_state "$J")
    case "$(cat holder.rc)" in
      0) expect_eq "$state" "assigned $E" "after a renewal that won (round $i)"; renew_won=$((renew_won + 1)) ;;
      3) expect_eq "$state" "queued $((E + 1))" "after a reap that won (round $i)"; renew_lost=$((renew_lost + 1)) ;;
      *) fail "renew exited $(cat holder.rc): $(cat holder.err)" ;;
    esac
    # Leave no live lease behind for the next round's reaper.
    if [ "$(cat holder.rc)" = 0 ]; then
      at $((T + TTL * 1000 + 3)) release "$J" --epoch "$E" --factory holder >/dev/null
    fi
  else
    at $T start "$J" --epoch "$E" --factory holder >/dev/null
    race report "$J" --epoch "$E" --factory holder --result pass
    state=$(job_state "$J")
    case "$(cat holder.rc)" in
      0) expect_eq "$state" "testing $E" "after a report that won (round $i)"; report_won=$((report_won + 1)) ;;
      3) expect_eq "$state" "queued $((E + 1))" "after a reap that won (round $i)"; report_lost=$((report_lost + 1)) ;;
      *) fail "report exited $(cat holder.rc): $(cat holder.err)" ;;
    esac
  fi
done
echo "renew won $renew_won, lost $renew_lost; report won $report_won, lost $report_lost"
# No finished job was ever requeued: every testing job's events end with its report.
run gf --json list --stage testing
for J in $(json '" ".join(j["id"] for j in d["jobs"])'); do
  run gf --json events "$J"
  expect_eq "$(json 'd["events"][-1]["type"]')" report "last event of finished job $J"
done
fsck_clean $S
pass
