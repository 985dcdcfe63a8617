#!/usr/bin/env bash
# gigafab serve over real HTTP on loopback: the auth matrix, malformed input,
# status codes of the lifecycle, the SSE stream with Last-Event-ID resume, an
# 8-way HTTP claim race while a CLI writes to the same store, and SIGTERM.
source "$(dirname "$0")/lib.sh"

S=$TEST_DIR/store
gf init "$S" >/dev/null
export GIGAFAB_STORE=$S
OP=$(gf token create --operator --name ops 2>/dev/null)
OPB=$(gf --product beta token create --operator --name ops-beta 2>/dev/null)
F1=$(gf factory enroll f1 --caps linux 2>/dev/null)
F2=$(gf factory enroll f2 --caps linux 2>/dev/null)
[[ "$OP" == gf_* && "$F1" == gf_* ]] || fail "tokens not issued: '$OP' '$F1'"
# The binary does not link cpp-httplib (nor the OpenSSL TLS and brotli
# libraries it brings): serve loads its HTTP module, the other commands never.
ldd "$GIGAFAB" | grep -q 'libcpp-httplib\|libssl\|libbrotli' && fail "gigafab links httplib: $(ldd "$GIGAFAB")"
LD_DEBUG=libs gf --version 2>loaded.txt >/dev/null
grep -q 'libc.so' loaded.txt || fail "LD_DEBUG shows no library loads: $(head -3 loaded.txt)"
grep -q 'libcpp-httplib' loaded.txt && fail "gigafab --version loaded httplib"
start_server "$S" --max-body 65536 --keepalive 1
grep -q 'libcpp-httplib' "/proc/$SERVER_PID/maps" || fail "serve has not loaded httplib"

# JSON-encodes a manifest file as a submit body.
submit_body() { python3 -c 'import json,sys; print(json.dumps({"manifest": open(sys.argv[1]).read()}))' "$1"; }

http GET /healthz ""
expect_status 200

# --- submit (JSON and raw markdown) -----------------------------------------
manifest m1.md "Build the uploader" 'capabilities = ["linux"]\n'
http POST /api/fleet/jobs "$OP" "$(submit_body m1.md)"
expect_status 201
J1=$(json 'd["id"]')
expect_eq "$(json 'd["stage"]')" queued "stage"
http POST '/api/fleet/jobs?priority=high' "$OP" "" -H 'Content-Type: text/markdown' --data-binary @m1.md
expect_status 201
expect_eq "$(json 'd["priority"]')" high "priority from the query"
http GET "/api/fleet/jobs?stage=queued" "$F1"
expect_status 200
expect_eq "$(json 'len(d["jobs"])')" 2 "queued jobs"

# --- the auth matrix: each answered right and nothing written ---------------
before=$(tip "$S")
http GET /api/fleet/jobs ""
expect_status 401
expect_eq "$(json 'd["error"]["code"]')" unauthorized "no token"
http GET /api/fleet/jobs "gf_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
expect_status 401
http POST /api/fleet/jobs "not-a-token" "$(submit_body m1.md)"
expect_status 401
http GET /api/fleet/jobs "" "" -H 'Authorization: Basic Zm9vOmJhcg=='
expect_status 401
# a factory acting as another factory
http POST /api/fleet/factories/heartbeat "$F1" '{"factory": "f2"}'
expect_status 403
http POST /api/fleet/claim "$F1" '{"factory": "f2"}'
expect_status 403
# a factory calling operator actions
http POST "/api/fleet/jobs/$J1/actions/ship" "$F1" ""
expect_status 403
http POST /api/fleet/factories/enroll "$F1" '{"factory": "f9"}'
expect_status 403
http PATCH /api/fleet/weights "$F1" '{"set": ["weights.load=2"]}'
expect_status 403
# product isolation: beta's token sees nothing of default, and the reverse
http GET "/api/fleet/jobs/$J1" "$OPB"
expect_status 404
http POST "/api/fleet/jobs/$J1/actions/requeue" "$OPB" ""
expect_status 404
http GET "/api/fleet/jobs/$J1" "$OPB" "" -H 'x-product-id: default'
expect_status 403
http GET /api/fleet/jobs "$OPB"
expect_eq "$(json 'len(d["jobs"])')" 0 "beta sees default's jobs"
expect_eq "$(tip "$S")" "$before" "the auth failures wrote something"

# revoked and rotated tokens stop working at once
T2=$(gf token create --operator --name temp 2>/dev/null)
http GET /api/fleet/jobs "$T2"
expect_status 200
gf token revoke "$(cut -d_ -f2 <<<"$T2")" >/dev/null
http GET /api/fleet/jobs "$T2"
expect_status 401
F3=$(gf factory enroll f3 --caps linux 2>/dev/null)
http POST /api/fleet/factories/heartbeat "$F3" '{}'
expect_status 200
http POST /api/fleet/factories/f3/token/rotate "$OP" ""
expect_status 200
F3NEW=$(json 'd["token"]')
before=$(tip "$S")
http POST /api/fleet/factories/heartbeat "$F3" '{"load": 0.5}'
expect_status 401
expect_eq "$(tip "$S")" "$before" "a rotated-out token wrote something"
http POST /api/fleet/factories/heartbeat "$F3NEW" '{}'
expect_status 200
http POST /api/fleet/factories/f3/token/revoke "$OP" ""
expect_status 200
http POST /api/fleet/factories/heartbeat "$F3NEW" '{}'
expect_status 401
# enrolling over the API returns the token once
http POST /api/fleet/factories/enroll "$OP" '{"factory": "f4", "capabilities": ["linux"], "seats": 2}'
expect_status 201
F4=$(json 'd["token"]')
http POST /api/fleet/factories/heartbeat "$F4" '{}'
expect_status 200
expect_eq "$(json 'd["seats"]')" 2 "enrolled seats"

# --- malformed input: 4xx with a JSON error, store unchanged ---------------
before=$(tip "$S")
http POST /api/fleet/claim "$F1" '{"ttl": 60'
expect_status 400
expect_eq "$(json 'd["error"]["field"]')" body "malformed JSON field"
http POST /api/fleet/claim "$F1" '{"ttl": "sixty"}'
expect_status 400
expect_eq "$(json 'd["error"]["field"]')" ttl "wrong type field"
http POST /api/fleet/claim "$F1" '{"tll": 60}'
expect_status 400
expect_out "did you mean 'ttl'"
http POST /api/fleet/claim "$F1" '[1, 2]'
expect_status 400
http POST /api/fleet/jobs "$OP" '{"manifest": "+++\npriority = \"urgent\"\n+++\n# x\nbody\n"}'
expect_status 400
expect_eq "$(json 'd["error"]["field"]')" manifest "bad manifest field"
http POST /api/fleet/jobs "$OP" '{"manifest": 42}'
expect_status 400
head -c 70000 /dev/zero | tr '\0' x >big.json
http POST /api/fleet/jobs "$OP" "" -H 'Content-Type: application/json' --data-binary @big.json
expect_status 413
expect_eq "$(json 'd["error"]["code"]')" usage "413 body"
http GET /api/fleet/jobs/not-an-id "$OP"
expect_status 400
expect_eq "$(json 'd["error"]["field"]')" id "invalid id field"
http PATCH "/api/fleet/jobs/j-\$\$\$\$" "$F1" '{"epoch": 1, "stage": "building"}'
expect_status 400
http GET /api/fleet/jobs/j-aaaaaaaa "$OP"
expect_status 404
http GET "/api/fleet/jobs?stage=done" "$OP"
expect_status 400
http GET "/api/fleet/jobs?stgae=queued" "$OP"
expect_status 400
http GET /api/fleet/nothing-here "$OP"
expect_status 404
http DELETE /api/fleet/jobs "$OP"
expect_status 405
http POST "/api/fleet/jobs/$J1/actions/launch" "$OP" ""
expect_status 404
expect_eq "$(tip "$S")" "$before" "malformed requests wrote something"
http GET /healthz ""
expect_status 200

# --- lifecycle statuses: 200, 409 fenced, 422 illegal, 204 nothing ---------
http POST /api/fleet/claim "$F1" '{"capabilities": ["linux"], "ttl": 120}'
expect_status 200
CJ=$(json 'd["id"]')
EPOCH=$(json 'd["epoch"]')
expect_eq "$(json 'd["factory"]')" f1 "claimer"
http PATCH "/api/fleet/jobs/$CJ" "$F1" "{\"epoch\": $((EPOCH + 1)), \"stage\": \"building\"}"
expect_status 409
expect_eq "$(json 'd["error"]["code"]')" fenced "stale epoch"
http PATCH "/api/fleet/jobs/$CJ" "$F2" "{\"epoch\": $EPOCH, \"stage\": \"building\"}"
expect_status 409
http PATCH "/api/fleet/jobs/$CJ" "$F1" "{\"epoch\": $EPOCH, \"stage\": \"building\"}"
expect_status 200
expect_eq "$(json 'd["stage"]')" building "after start"
http POST "/api/fleet/jobs/$CJ/actions/ship" "$OP" ""
expect_status 422
expect_eq "$(json 'd["error"]["code"]')" conflict "illegal transition"
http POST "/api/fleet/jobs/$CJ/lease/renew" "$F1" "{\"epoch\": $EPOCH, \"ttl\": 300}"
expect_status 200
http PATCH "/api/fleet/jobs/$CJ" "$F1" "{\"epoch\": $EPOCH, \"checkpoint\": \"gigafab/$CJ\"}"
expect_status 200
http PATCH "/api/fleet/jobs/$CJ" "$F1" "{\"epoch\": $EPOCH, \"result\": \"pass\", \"costUsd\": 0.5, \"tokens\": 1200}"
expect_status 200
expect_eq "$(json 'd["stage"]')" testing "after report"
http POST "/api/fleet/jobs/$CJ/actions/ship" "$OP" ""
expect_status 200
expect_eq "$(json 'd["stage"]')" shipped "after ship"
http GET "/api/fleet/jobs/$CJ/runs" "$F2"
expect_eq "$(json 'd["runs"][0]["result"]')" pass "run result"
http GET "/api/fleet/jobs/$CJ/explain" "$OP"
expect_status 200
http GET "/api/fleet/jobs/$CJ/log" "$OP"
expect_eq "$(json 'sorted(set(e["op"] for e in d["entries"]))')" \
  "['checkpoint', 'claim', 'renew', 'report', 'ship', 'start', 'submit']" "job log ops"
expect_out "factory:f1"
http POST /api/fleet/claim "$F2" '{"capabilities": ["gpu"]}'
expect_status 204
[[ "$HEADERS" == *"X-Gigafab-Message: nothing to claim"* ]] || fail "204 without a reason header: $HEADERS"
http GET /api/fleet/metrics "$OP"
expect_eq "$(json 'd["jobs"]["shipped"]')" 1 "metrics shipped"
http GET /metrics "$OP"
expect_status 200
expect_out 'gigafab_jobs{product="default",stage="shipped"} 1'

# --- SSE: live events, Last-Event-ID resume, keep-alive ----------------------
SF=$(gf factory enroll sse-f --caps sse 2>/dev/null)
manifest sse.md "Stream me" 'capabilities = ["sse"]\n'
http POST /api/fleet/jobs "$OP" "$(submit_body sse.md)"
SJ=$(json 'd["id"]')
# wait_for_id FILE N: until the stream in FILE has delivered event N
wait_for_id() {
  local i
  for i in $(seq 100); do
    grep -qx "id: $2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "event $2 not streamed; got: $(cat "$1")"
}
curl -sN -H "Authorization: Bearer $F1" "$URL/api/fleet/jobs/$SJ/events/stream" >sse1.txt &
SSE1=$!
BACKGROUND_PIDS+=("$SSE1")
wait_for_id sse1.txt 1
http POST /api/fleet/claim "$SF" '{"capabilities": ["sse"]}'
SEPOCH=$(json 'd["epoch"]')
wait_for_id sse1.txt 2
grep -q '^event: claim$' sse1.txt || fail "claim event not named: $(cat sse1.txt)"
kill "$SSE1"
# missed while disconnected: start, checkpoint, report
http PATCH "/api/fleet/jobs/$SJ" "$SF" "{\"epoch\": $SEPOCH, \"stage\": \"building\"}"
http PATCH "/api/fleet/jobs/$SJ" "$SF" "{\"epoch\": $SEPOCH, \"checkpoint\": \"gigafab/$SJ\"}"
http PATCH "/api/fleet/jobs/$SJ" "$SF" "{\"epoch\": $SEPOCH, \"result\": \"pass\"}"
expect_status 200
curl -sN -H "Authorization: Bearer $F1" -H 'Last-Event-ID: 2' "$URL/api/fleet/jobs/$SJ/events/stream" >sse2.txt &
SSE2=$!
BACKGROUND_PIDS+=("$SSE2")
wait_for_id sse2.txt 5
http POST "/api/fleet/jobs/$SJ/actions/ship" "$OP" ""
expect_status 200
wait_for_id sse2.txt 6
for i in $(seq 60); do grep -q '^: keep-alive' sse2.txt && break; sleep 0.05; done
grep -q '^: keep-alive' sse2.txt || fail "no keep-alive comment on an idle stream"
kill "$SSE2"
expect_eq "$(grep '^id: ' sse1.txt | tr '\n' ' ')" "id: 1 id: 2 " "live stream ids"
expect_eq "$(grep '^id: ' sse2.txt | tr '\n' ' ')" "id: 3 id: 4 id: 5 id: 6 " "resumed stream ids (no gap, no duplicate)"
grep '^data: ' sse2.txt | sed 's/^data: //' | python3 -c '
import json, sys
types = [json.loads(l)["type"] for l in sys.stdin]
assert types == ["start", "checkpoint", "report", "ship"], types'
http GET "/api/fleet/jobs/$SJ/events/stream" "$OPB"
expect_status 404
http GET "/api/fleet/jobs/$SJ/events/stream" ""
expect_status 401
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $F1" -H 'Last-Event-ID: x' \
  "$URL/api/fleet/jobs/$SJ/events/stream")
expect_status 400

# --- 8 HTTP claimers race for 200 jobs while a CLI writes directly ----------
manifest race.md "Race job" 'capabilities = ["race"]\n'
for i in $(seq 200); do gf submit race.md >/dev/null; done
declare -a CT
for c in $(seq 8); do CT[$c]=$(gf factory enroll "c$c" --caps race --seats 200 2>/dev/null); done
claimer() {
  local token=$1 out=$2 status
  : >"$out"
  while :; do
    status=$(curl -s -o "$out.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/json' --data-binary '{"capabilities": ["race"], "ttl": 600}' \
      "$URL/api/fleet/claim")
    case "$status" in
      200) python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["id"], d["factory"], d["epoch"])' \
             "$out.body" >>"$out" ;;
      204) return 0 ;;
      *) echo "HTTP $status: $(cat "$out.body")" >>"$out.errors"; return 1 ;;
    esac
  done
}
pids=()
for c in $(seq 8); do
  claimer "${CT[$c]}" "claims.$c" &
  pids+=($!)
done
manifest other.md "Direct CLI job" 'capabilities = ["other"]\n'
for i in $(seq 20); do gf submit other.md >/dev/null; done
for pid in "${pids[@]}"; do wait "$pid" || fail "a claimer failed: $(cat claims.*.errors 2>/dev/null)"; done
cat claims.? >claims.all
expect_eq "$(wc -l <claims.all)" 200 "claims made"
expect_eq "$(cut -d' ' -f1 claims.all | sort -u | wc -l)" 200 "distinct jobs claimed"
run gf list --stage assigned --json
expect_eq "$(json 'len(d["jobs"])')" 200 "assigned jobs"
run gf list --stage queued --json
expect_eq "$(json 'sum(1 for j in d["jobs"] if j["title"] == "Direct CLI job")')" 20 \
  "CLI submits made while the server wrote"
# every claim printed is that factory's lease
python3 - "$S" <<'PY' || fail "a claim does not match its lease"
import json, subprocess, sys
store = sys.argv[1]
for line in open("claims.all"):
    job, factory, epoch = line.split()
    shard = job[2:4]
    lease = subprocess.run(["git", "--git-dir", store, "show", f"refs/gigafab/state:jobs/{shard}/{job}/lease.toml"],
                           capture_output=True, text=True)
    if lease.returncode != 0:
        # the layout may shard differently; fall back to the CLI
        out = subprocess.run([__import__("os").environ["GIGAFAB"], "--store", store, "show", job, "--json"],
                             capture_output=True, text=True, check=True)
        l = json.loads(out.stdout)["lease"]
        assert l["holder"] == factory and str(l["epoch"]) == epoch, (job, l, factory, epoch)
    else:
        assert (f"holder = '{factory}'" in lease.stdout or f'holder = "{factory}"' in lease.stdout) and f"epoch = {epoch}\n" in lease.stdout, (job, lease.stdout)
PY
fsck_clean "$S"
# Group commit: claims that arrived together share commits, and the audit
# trail still lists every operation: one claim per race job, with its factory
# and epoch.
groups=$(git --git-dir "$S" log --format=%s refs/gigafab/state | grep -c '^group: ' || true)
[ "$groups" -ge 1 ] || fail "no group commit during the 8-way race"
gf --json log --all >audit.json
python3 - claims.all audit.json <<'PY' || fail "the audit trail does not list every claim"
import json, sys
claims = {}
for e in json.load(open(sys.argv[2]))["entries"]:
    if e["op"] == "claim":
        claims.setdefault(e["job"], []).append(e)
for line in open(sys.argv[1]):
    job, factory, epoch = line.split()
    got = claims.get(job, [])
    assert len(got) == 1, (job, got)
    t = got[0]["trailers"]
    assert t.get("Gigafab-Factory") == factory and t.get("Gigafab-Epoch") == epoch, (job, t)
    assert got[0]["actor"].startswith("factory:" + factory), got[0]
PY

# --- a waiting claim rides along: the submit and its claim share one commit --
curl -s -o rider.body -w '%{http_code}' -X POST -H "Authorization: Bearer $F2" -H 'Content-Type: application/json' \
  --data-binary '{"capabilities": ["rider"], "wait": 20}' "$URL/api/fleet/claim" >rider.status &
RIDER=$!
sleep 0.5
manifest m9.md "A job for the rider" 'capabilities = ["rider"]\n'
http POST /api/fleet/jobs "$OP" "$(submit_body m9.md)"
expect_status 201
JR=$(json 'd["id"]')
wait "$RIDER"
expect_eq "$(cat rider.status)" 200 "the waiting claim's status"
python3 -c 'import json,sys; d=json.load(open("rider.body")); assert d["job"]["id"] == sys.argv[1] and d["lease"]["holder"] == "f2", d' "$JR" \
  || fail "the waiting claim did not get $JR: $(cat rider.body)"
git --git-dir "$S" log --format='%B%x00' refs/gigafab/state >rider.log
python3 - "$JR" rider.log <<'PY' || fail "the submit of $JR and its claim are not in one commit"
import sys
job, log = sys.argv[1], open(sys.argv[2]).read().split("\0")
with_submit = [m for m in log if f"submit {job}:" in m]
assert len(with_submit) == 1, with_submit
assert f"claim {job}:" in with_submit[0] and "Gigafab-Op: group" in with_submit[0], with_submit[0]
PY
fsck_clean "$S"

# --- concurrent writes: serve's merger keeps the packs few ------------------
# Group commits write one pack each; serve merges them on a thread of its
# own (Store::merge_aside) while the batches go on.
jobs_before=$(gf --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
commits_before=$(git --git-dir "$S" rev-list --count refs/gigafab/state)
python3 - "$URL" "$OP" <<'PY' || fail "concurrent submits through serve failed"
import json, sys, threading, urllib.request
url, token = sys.argv[1], sys.argv[2]
errors = []
def submit(k):
    for i in range(10):
        body = json.dumps({"manifest": f'+++\ncapabilities = ["none-such"]\n+++\n# burst {k}-{i}\n\nDo the thing.\n'}).encode()
        req = urllib.request.Request(url + "/api/fleet/jobs", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req) as r:
                if r.status != 201: errors.append(r.status)
        except Exception as e:
            errors.append(repr(e))
threads = [threading.Thread(target=submit, args=(k,)) for k in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors[:3]
PY
expect_eq "$(gf --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')" \
  "$((jobs_before + 80))" "jobs after 80 concurrent submits"
commits=$(( $(git --git-dir "$S" rev-list --count refs/gigafab/state) - commits_before ))
packs=$(ls "$S/objects/pack" | grep -c '\.pack$')
for _ in $(seq 50); do [ "$packs" -le 8 ] && break; sleep 0.1; packs=$(ls "$S/objects/pack" | grep -c '\.pack$'); done
if [ "$packs" -gt 8 ]; then
  ls -l --time-style=+%T.%N "$S/objects/pack" >packs.txt
  DUMP_ON_FAIL+=(packs.txt "$S/gigafab.log" "$TEST_DIR/.serve.err")
  fail "$packs packs after the concurrent submits (serve's merges did not keep up)"
fi
# Each client submits one after another: at least 10 commits, a pack each.
[ "$commits" -ge 10 ] || fail "only $commits commits: the burst did not make enough packs to need a merge"
fsck_clean "$S"

# --- a burst of connections fits the listen backlog (the system's, not 5) ---
# While serve is stopped nothing is accepted, so every connection that
# completes its handshake waits in the backlog; past it, the kernel drops the
# SYN and the client would retry a second later.
kill -STOP "$SERVER_PID"
connected=$(python3 - "$URL" <<'PY'
import select, socket, sys, time, urllib.parse
url = urllib.parse.urlparse(sys.argv[1])
pending = []
for _ in range(32):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((url.hostname, url.port))
    pending.append(s)
done = 0
deadline = time.time() + 0.5
while pending and time.time() < deadline:
    _, ready, _ = select.select([], pending, [], max(0, deadline - time.time()))
    for s in ready:
        pending.remove(s)
        done += s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
print(done)
PY
)
kill -CONT "$SERVER_PID"
expect_eq "$connected" 32 "connections that completed while serve accepted none"
http GET /healthz ""
expect_status 200
# serve keeps empty files ready for its next packs (gitstore/spare_files.hpp).
expect_eq "$(ls "$S/objects/pack" | grep -c "^tmp_gigafab_spare_${SERVER_PID}_" || true)" 4 "spare files kept by serve"

# --- SIGTERM: stop accepting, finish in-flight requests, exit 0 -------------
curl -s -o waiting.body -w '%{http_code}' -X POST -H "Authorization: Bearer $F2" -H 'Content-Type: application/json' \
  --data-binary '{"capabilities": ["gpu"], "wait": 30}' "$URL/api/fleet/claim" >waiting.status &
WAITER=$!
sleep 0.3
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
rc=$?
wait "$WAITER"
set -e
expect_eq "$rc" 0 "serve exit code after SIGTERM"
expect_eq "$(ls "$S/objects/pack" | grep -c '^tmp_gigafab_spare_' || true)" 0 "spare files left after SIGTERM"
expect_eq "$(cat waiting.status)" 204 "the in-flight waiting claim was answered"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz" || true)
expect_eq "$STATUS" 000 "still accepting after SIGTERM"
fsck_clean "$S"

# --- --no-group-commit: one commit per request ------------------------------
gf init solo --no-fsync >/dev/null
for i in $(seq 24); do gf --store solo submit race.md >/dev/null; done
declare -a ST
for c in 1 2 3 4; do ST[$c]=$(gf --store solo factory enroll "s$c" --caps race --seats 24 2>/dev/null); done
start_server solo --no-group-commit
before=$(count_commits solo)
pids=()
for c in 1 2 3 4; do
  claimer "${ST[$c]}" "solo.$c" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a claimer failed: $(cat solo.*.errors 2>/dev/null)"; done
expect_eq "$(cat solo.? | wc -l)" 24 "claims without group commit"
expect_eq "$(( $(count_commits solo) - before ))" 24 "one commit per claim"
expect_eq "$(git --git-dir solo log --format=%s refs/gigafab/state | grep -c '^group: ' || true)" 0 "group commits"
kill "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true

# --- --no-pipeline: 8 claimers and a CLI writer, one group at a time --------
# (the race above ran pipelined, serve's default: there the CLI's commits
# made groups in flight lose the ref, and those built on them; each ran again)
gf init piped >/dev/null
for i in $(seq 200); do gf --store piped submit race.md >/dev/null; done
declare -a PT
for c in $(seq 8); do PT[$c]=$(gf --store piped factory enroll "p$c" --caps race --seats 200 2>/dev/null); done
start_server piped --no-pipeline
pids=()
for c in $(seq 8); do
  claimer "${PT[$c]}" "piped.$c" &
  pids+=($!)
done
for i in $(seq 20); do gf --store piped submit other.md >/dev/null; done
for pid in "${pids[@]}"; do wait "$pid" || fail "a claimer failed: $(cat piped.*.errors 2>/dev/null)"; done
cat piped.? >piped.all
expect_eq "$(wc -l <piped.all)" 200 "claims made (one group at a time)"
expect_eq "$(cut -d' ' -f1 piped.all | sort -u | wc -l)" 200 "distinct jobs claimed (one group at a time)"
run gf --store piped list --stage assigned --json
expect_eq "$(json 'len(d["jobs"])')" 200 "assigned jobs (one group at a time)"
run gf --store piped list --stage queued --json
expect_eq "$(json 'sum(1 for j in d["jobs"] if j["title"] == "Direct CLI job")')" 20 "CLI submits (one group at a time)"
run gf --store piped --json log --all
expect_eq "$(json 'sum(1 for e in d["entries"] if e["op"] == "claim")')" 200 "claims in the audit trail (one group at a time)"
fsck_clean piped
pass
