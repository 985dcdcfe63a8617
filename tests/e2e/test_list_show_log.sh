# gigafab list / show / log: filters, products, ids from outside, the audit trail.
source "$(dirname "$0")/lib.sh"
gf init >/dev/null
S=.gigafab
manifest a.md "First job" 'priority = "high"\n'
manifest b.md "Second job"
A=$(gf submit a.md)
B=$(gf submit --dep "$A" b.md)
C=$(gf --product mobile submit a.md)

run gf list
expect_rc 0
expect_out "ID"
expect_out "$A  queued"
expect_out "$B  blocked"
[[ "$OUT" != *"$C"* ]] || fail "list shows another product's job"
run gf list --stage blocked
expect_eq "$(grep -c '^j-' <<<"$OUT")" 1 "blocked jobs"
expect_out "$B"
run gf --json list --stage queued,blocked
expect_eq "$(json 'len(d["jobs"])')" 2 "--stage a,b"
run gf --json list --stage queued --stage shipped
expect_eq "$(json '[j["id"] for j in d["jobs"]]')" "['$A']" "repeated --stage"
run gf --json --product mobile list
expect_eq "$(json '[j["id"] for j in d["jobs"]]')" "['$C']" "--product"
GIGAFAB_PRODUCT=mobile run gf --json list
expect_eq "$(json '[j["id"] for j in d["jobs"]]')" "['$C']" "GIGAFAB_PRODUCT"
run gf list --stage finished
expect_rc 2
expect_err "unknown stage 'finished' (one of: queued, blocked, assigned, building, review, testing, shipped, failed, dead_letter)"
run gf --json list --stage nope
expect_rc 2
expect_eq "$(json 'd["error"]["code"]')" usage "json error for a bad stage"

# show: the body, plain and JSON; products are isolated; ids are validated.
run gf show "$A"
expect_rc 0
expect_out "stage:         queued"
expect_out "Do the thing."
run gf show "$C"
expect_rc 5
expect_err "gigafab: show: job $C not found"
run gf --json show j-aaaaaaaa
expect_rc 5
expect_eq "$(json 'd["error"]["code"]')" not_found "json not_found"
for bad in "../../etc/passwd" "j-ab/defgh" "j-.." $'j-abc\x01efgh' "J-ABCDEFGH" ""; do
  run gf show "$bad"
  [ "$RC" -eq 2 ] || fail "show '$bad' should be a usage error, got $RC"
done
run gf show $'j-abc\x01efgh'
expect_err 'invalid job id '"'"'j-abc\x01efgh'"'"

# log: oldest first, one line per transition, filtered by job or product.
run gf log
expect_rc 0
expect_eq "$(wc -l <<<"$OUT")" 3 "log lines in the default product (init + 2 submits)"
expect_out_re "init +- +tester +init gigafab store"
[[ "$(sed -n 2p <<<"$OUT")" == *"submit  $A"* ]] || fail "second log line is A's submit"
run gf log "$B"
expect_eq "$(wc -l <<<"$OUT")" 1 "log lines for B"
expect_out "submit  $B  tester  submit $B: Second job"
run gf --json log "$A"
expect_eq "$(json 'd["entries"][0]["trailers"]["Gigafab-Job"]')" "$A" "trailers in log --json"
expect_eq "$(json 'd["entries"][0]["op"]')" submit "op in log --json"
expect_eq "$(json 'd["entries"][0]["commit"]')" "$(git --git-dir $S log --format=%H --grep "Gigafab-Job: $A" refs/gigafab/state)" "commit id"
run gf log j-aaaaaaaa
expect_rc 5
run gf log "$C"
expect_rc 5
run gf --product mobile log "$C"
expect_rc 0
run gf log --limit 1
expect_eq "$(wc -l <<<"$OUT")" 1 "--limit"
expect_out "$B"

# Plain git is the audit trail too.
raw=$(git --git-dir $S log --format='%s%n%b' refs/gigafab/state)
grep -q "^submit $A: First job$" <<<"$raw" || fail "git log summary"
grep -q "^Gigafab-Job: $C$" <<<"$raw" || fail "git log trailers"
pass
