# gigafab bench against real fleets, only when asked: --api (a running serve)
# and --remote (the store's git remote). The bench's jobs go to product
# gigafab-bench with a capability of their own, every one ends shipped, and
# nothing of the fleet's own products is touched.
source "$(dirname "$0")/lib.sh"
mkdir scratch
small=(--jobs 40 --small 20 --claims 2 --submits 4 --cycles 2 --claimers 1,2 --cli-claims 3 --dir scratch
  --http-seconds 1 --http-jobs 20)
http2=(--http-clients 2)

# product_stages STORE PRODUCT: "stage count" lines of the product's jobs.
product_stages() {
  gf --store "$1" --product "$2" --json list |
    python3 -c 'import json,sys,collections; c=collections.Counter(j["stage"] for j in json.load(sys.stdin)["jobs"]); print(" ".join(f"{k}={v}" for k,v in sorted(c.items())))'
}

# ---- --api: a server with a job of its own that fits any factory ----------------------------------
S=$TEST_DIR/store
gf init "$S" >/dev/null
manifest real.md "A real job anyone may take"
REAL=$(gf --store "$S" submit real.md 2>/dev/null)
BENCH_TOKEN=$(gf --store "$S" --product gigafab-bench token create --operator --name bench 2>/dev/null)
DEFAULT_TOKEN=$(gf --store "$S" token create --operator --name ops 2>/dev/null)
start_server "$S"

# A token of another product: refused before anything is measured or written.
before=$(tip "$S")
run gf --api "$URL" --token "$DEFAULT_TOKEN" bench "${small[@]}" "${http2[@]}"
expect_rc 7
expect_err "needs an operator token of that product or of all products"
expect_eq "$(tip "$S")" "$before" "the refused bench wrote nothing"
[ -z "$(ls scratch)" ] || fail "the refused bench left $(ls scratch)"
run gf --api "$URL" --token "$BENCH_TOKEN" bench "${small[@]}" --http-clients 0
expect_rc 2
expect_err "bench --api needs --http-clients of 1 or more"

run gf --api "$URL" --token "$BENCH_TOKEN" --json bench "${small[@]}" "${http2[@]}"
expect_rc 0
a='d["api"]'
expect_eq "$(json "$a[\"product\"]")" gigafab-bench "product"
expect_out_re '"capability": "bench-[0-9a-f]{8}"'
expect_eq "$(json "$a[\"submitted\"]")" 20 "jobs submitted"
expect_eq "$(json "$a[\"clients\"]")" 2 "clients"
[ "$(json "$a[\"claimsPerSecond\"] > 0 and $a[\"cycles\"][\"cycles\"] > 0 and $a[\"submitsPerSecond\"] > 0 and $a[\"submitToClaimP50Ms\"] > 0")" = True ] ||
  fail "api figures: $OUT"
# 20 submitted, 100 more by the submit-to-claim rounds: all shipped.
expect_eq "$(json "$a[\"shipped\"]")" 120 "jobs shipped"
[ "$(json 'd["http"]["groupCommit"]["cycles"] > 0')" = True ] || fail "the scratch serve ran beside: $OUT"
expect_eq "$(product_stages "$S" gigafab-bench)" "shipped=120" "bench jobs in the server's store"
expect_eq "$(gf --store "$S" --json show "$REAL" | python3 -c 'import json,sys; print(json.load(sys.stdin)["stage"])')" queued \
  "the server's own job"
expect_eq "$(product_stages "$S" default)" "queued=1" "the default product"
# The audit trail has every bench transition: submit, claim, start, report, ship.
gf --store "$S" --product gigafab-bench --json log >log.json
expect_eq "$(python3 -c 'import json,collections; c=collections.Counter(e["op"] for e in json.load(open("log.json"))["entries"]); print([c[o] for o in ("submit","claim","start","report","ship")])')" \
  "[120, 120, 120, 120, 120]" "audited bench operations"
[ -z "$(ls scratch)" ] || fail "bench left $(ls scratch) behind"

run gf --api "$URL" --token "$BENCH_TOKEN" bench "${small[@]}" "${http2[@]}"
expect_rc 0
expect_out "the server at $URL (product gigafab-bench, capability bench-"
expect_out "submit -> waiting claim: p50"
expect_out "shipped the 120 bench jobs"
expect_eq "$(product_stages "$S" gigafab-bench)" "shipped=240" "two runs' bench jobs"

# ---- --remote: the fleet on a git remote, seen from another host ---------------------------------
H1=$TEST_DIR/host1
H2=$TEST_DIR/host2
gf init "$H1" --remote "$TEST_DIR/fleet.git" >/dev/null
REAL=$(gf --store "$H1" submit real.md 2>/dev/null)
run gf --store "$H1" --remote origin --json bench "${small[@]}" --http-clients 0
expect_rc 0
r='d["remote"]'
expect_eq "$(json "$r[\"remote\"]")" origin "remote name"
expect_eq "$(json "$r[\"url\"]")" "$TEST_DIR/fleet.git" "remote url"
expect_eq "$(json "$r[\"submits\"]")" 6 "bench jobs submitted (3 per level)"
expect_eq "$(json "[c[\"claimers\"] for c in $r[\"cliClaimers\"]]")" "[1, 2]" "claimer levels"
expect_eq "$(json "[c[\"claims\"] for c in $r[\"cliClaimers\"]]")" "[3, 3]" "claims per level"
[ "$(json "all(c[\"p50Ms\"] > 0 and c[\"claimsPerSecond\"] > 0 for c in $r[\"cliClaimers\"]) and $r[\"submitP50Ms\"] > 0")" = True ] ||
  fail "remote figures: $OUT"
expect_eq "$(json "$r[\"shipped\"]")" 6 "jobs shipped"
[ -z "$(ls scratch)" ] || fail "bench left $(ls scratch) behind"
# Another host sees what the remote holds: the bench's jobs shipped, the real one queued.
gf init "$H2" --remote "$TEST_DIR/fleet.git" >/dev/null
expect_eq "$(product_stages "$H2" gigafab-bench)" "shipped=6" "bench jobs on the remote"
expect_eq "$(product_stages "$H2" default)" "queued=1" "the fleet's own job"
fsck_clean "$TEST_DIR/fleet.git"

run gf --store "$H1" --remote origin bench "${small[@]}" --http-clients 0
expect_rc 0
expect_out "remote 'origin' ($TEST_DIR/fleet.git; product gigafab-bench, capability bench-"
expect_out "CLI claimer process(es):"
expect_out "shipped the 6 bench jobs"

# A store without that remote, and both real fleets at once: refused.
run gf --store "$S" --remote origin bench "${small[@]}" "${http2[@]}"
expect_rc 5
run gf --store "$H1" --remote origin --api "$URL" --token "$BENCH_TOKEN" bench "${small[@]}" "${http2[@]}"
expect_rc 2
expect_err "give --api or --remote, not both"
[ -z "$(ls scratch)" ] || fail "bench left $(ls scratch) behind"
pass
