# gigafab submit: manifests, overrides, deps, and bad input that changes nothing.
source "$(dirname "$0")/lib.sh"
gf init >/dev/null
S=.gigafab

cat >full.md <<'MD'
+++
title = "Add retry to the uploader"
profile = "backend-dev"
capabilities = ["cpp", "linux"]
priority = "high"
idempotency_key = "tracker:ISSUE-42"
max_attempts = 5
[budget]
usd = 5.0
wall = "45m"
[repo]
url = "https://example.com/acme/uploader.git"
base = "main"
+++
# Uploader retries

Retry failed uploads with *exponential* backoff.
MD
run gf submit full.md
expect_rc 0
expect_out_re '^j-[a-z2-7]{8}$'
ID=$OUT
run gf show --json "$ID"
expect_rc 0
expect_eq "$(json 'd["title"]')" "Add retry to the uploader" "title from front matter"
expect_eq "$(json 'd["stage"]')" queued "stage"
expect_eq "$(json 'd["priority"]')" high "priority"
expect_eq "$(json '",".join(d["capabilities"])')" "cpp,linux" "capabilities"
expect_eq "$(json 'd["maxAttempts"]')" 5 "maxAttempts"
expect_eq "$(json 'd["budget"]["usd"]')" 5.0 "budget.usd"
expect_eq "$(json 'd["budget"]["wall"]')" 45m "budget.wall"
expect_eq "$(json 'd["budget"]["tokens"]')" 2000000 "budget.tokens from the profile"
expect_eq "$(json 'd["review"]')" True "review from the profile"
expect_eq "$(json 'd["profile"]')" backend-dev "profile"
expect_eq "$(json 'd["idempotencyKey"]')" "tracker:ISSUE-42" "idempotencyKey"
expect_eq "$(json 'd["leaseEpoch"]')" 0 "leaseEpoch"
expect_eq "$(json 'd["productId"]')" default "productId"
expect_eq "$(json 'd["repo"]["url"]')" "https://example.com/acme/uploader.git" "repo.url"
echo "$OUT" >show.json
python3 - "$TEST_DIR/full.md" show.json <<'PY' || fail "body not verbatim"
import json, sys
doc = json.load(open(sys.argv[2]))
text = open(sys.argv[1]).read()
assert doc["body"] == text.split("+++\n", 2)[2], doc["body"]
for key in ["id", "productId", "title", "stage", "priority", "capabilities", "deps", "leaseEpoch", "rev",
            "createdAt", "updatedAt", "profile", "budget", "attempts", "maxAttempts", "idempotencyKey"]:
    assert key in doc, key
PY

# The commit: one per submit, with the audit trailers, touching only its paths.
msg=$(git --git-dir $S log -1 --format=%B refs/gigafab/state)
for t in "Gigafab-Op: submit" "Gigafab-Job: $ID" "Gigafab-Product: default" "Gigafab-Actor: tester"; do
  grep -qx "$t" <<<"$msg" || fail "trailer '$t' missing in: $msg"
done
shard=${ID:2:2}
files=$(git --git-dir $S show --name-only --format= refs/gigafab/state | sort)
grep -qx "jobs/$shard/$ID/job.toml" <<<"$files" || fail "job.toml path: $files"
grep -qx "jobs/$shard/$ID/body.md" <<<"$files" || fail "body.md path: $files"
grep -qE "^index/queued/default/cpp\+linux/@1-[0-9]+-j-[a-z0-9]+(-[ef]+)?/1-[0-9]+-$ID(-[ef]+)?$" <<<"$files" || fail "queued index entry: $files"
grep -qx "profiles/backend-dev/1.md" <<<"$files" || fail "profile snapshot: $files"
git --git-dir $S show "refs/gigafab/state:jobs/$shard/$ID/job.toml" | grep -qE "^stage = .queued.$" || fail "job.toml readable"

# Title from the first heading (cmark) when the front matter has none; stdin input.
run gf --json submit - <<'MD'
Some intro text.

## Fix `parse()` for *empty* input

Details.
MD
expect_rc 0
expect_eq "$(json 'd["title"]')" "Fix parse() for empty input" "title from heading"
expect_eq "$(json 'd["priority"]')" normal "default priority"

# Flags override the front matter.
run gf --json submit --priority critical --profile docs-writer --idempotency-key k-flags full.md
expect_rc 0
expect_eq "$(json 'd["priority"]')" critical "--priority"
expect_eq "$(json 'd["profile"]')" docs-writer "--profile"
expect_eq "$(json 'd["idempotencyKey"]')" k-flags "--idempotency-key"

# Deps: unmet deps start blocked; a dep that does not exist is exit 5.
manifest dep.md "Needs the uploader"
run gf --json submit --dep "$ID" dep.md
expect_rc 0
expect_eq "$(json 'd["stage"]')" blocked "stage with an unmet dep"
expect_eq "$(json 'd["deps"][0]')" "$ID" "deps"
before=$(tip $S)
run gf submit --dep j-aaaaaaaa dep.md
expect_rc 5
expect_err "gigafab: submit: dependency j-aaaaaaaa not found"
expect_eq "$(tip $S)" "$before" "tip after unknown dep"

# Same idempotency key: same id, nothing written.
before=$(tip $S)
run gf submit full.md
expect_rc 0
expect_eq "$OUT" "$ID" "idempotent resubmit"
expect_eq "$(tip $S)" "$before" "tip after idempotent resubmit"
# ... but the key is per product.
run gf --product other submit full.md
expect_rc 0
[ "$OUT" != "$ID" ] || fail "idempotency keys must be scoped to the product"

# Bad input: a clear one-line error, a non-zero exit, and the tip unchanged.
check_bad() {  # check_bad RC "expected stderr" ARGS...
  local want_rc=$1 want_err=$2
  shift 2
  local before
  before=$(tip $S)
  run gf "$@"
  expect_rc "$want_rc"
  expect_err "$want_err"
  [ "$(wc -l <<<"$ERR")" -le 2 ] || fail "error should be one line: $ERR"
  expect_eq "$(tip $S)" "$before" "tip after bad input ($*)"
}
printf '+++\ntitle = "x\npriority = "high"\n+++\n# x\n' >malformed.md
check_bad 2 "malformed.md:2: malformed TOML" submit malformed.md
printf '+++\ntitle = "x"\npriorty = "high"\n+++\n# x\n' >unknown.md
check_bad 2 "unknown.md:3: unknown key 'priorty' (did you mean 'priority'?)" submit unknown.md
printf '+++\n[budget]\nusdd = 1.0\n+++\n# x\n' >unknown2.md
check_bad 2 "unknown2.md:3: unknown key 'budget.usdd' (did you mean 'budget.usd'?)" submit unknown2.md
printf '+++\npriority = 3\n+++\n# x\n' >type.md
check_bad 2 "type.md:2: 'priority' must be a string, not an integer" submit type.md
printf '+++\ncapabilities = "linux"\n+++\n# x\n' >type2.md
check_bad 2 "type2.md:2: 'capabilities' must be an array of strings, not a string" submit type2.md
printf '+++\ntitle = "x"\n+++\n\n   \n' >empty.md
check_bad 2 "empty.md:4: the manifest body is empty" submit empty.md
printf '+++\ntitle = "x"\n# x\nbody\n' >open.md
check_bad 2 "open.md:1: front matter opened with '+++' is never closed" submit open.md
printf '+++\nprofile = "backend-dve"\n+++\n# x\n' >badprofile.md
check_bad 5 "unknown profile 'backend-dve' (did you mean 'backend-dev'?)" submit badprofile.md
printf '+++\npriority = "urgent"\n+++\n# x\n' >badprio.md
check_bad 2 "badprio.md:2: 'priority' unknown priority 'urgent'" submit badprio.md
printf '+++\n[budget]\nwall = "forever"\n+++\n# x\n' >badwall.md
check_bad 2 "invalid duration 'forever'" submit badwall.md
printf 'no heading here\n' >notitle.md
check_bad 2 "notitle.md:1: the job has no title" submit notitle.md
printf '+++\ndeps = ["../../etc"]\n+++\n# x\n' >baddep.md
check_bad 2 "invalid job id '../../etc'" submit baddep.md
check_bad 2 "invalid job id 'j-a/cdefgh'" submit --dep j-a/cdefgh full.md
check_bad 2 "unknown priority 'urgent'" submit --priority urgent full.md
check_bad 2 "invalid profile '../x'" submit --profile ../x full.md
check_bad 2 "invalid product '..'" --product .. submit full.md
check_bad 1 "cannot read missing.md" submit missing.md
check_bad 2 "file is required" submit

# Nothing above left a half-written job behind.
run gf --json list
expect_eq "$(json 'len(d["jobs"])')" 4 "jobs in the default product"
fsck_clean $S
pass
