# API tokens from the CLI: operator tokens (create, list, revoke), factory
# tokens (enroll, rotate, revoke), bad input that changes nothing, and no
# secret anywhere in the store's history.
source "$(dirname "$0")/lib.sh"
gf init --no-fsync >/dev/null
S=.gigafab
TOKEN_RE='^gf_[a-z2-7]{12}_[a-z2-7]{32}$'
SECRETS=()
# keep TOKEN: remembers its secret for the final history check; sets ID to its id.
keep() {
  local rest=${1#gf_}
  SECRETS+=("${rest#*_}")
  ID=${rest%%_*}
}
# unchanged CMD...: runs CMD, expects exit $WANT and the tip unchanged.
unchanged() {
  local before
  before=$(tip $S)
  run "$@"
  expect_rc "$WANT"
  expect_eq "$(tip $S)" "$before" "tip after: $*"
}
# has_doc PATH: the state tree holds PATH.
has_doc() { git --git-dir $S cat-file -e "refs/gigafab/state:$1" 2>/dev/null; }
last_message() { git --git-dir $S log -1 --format=%B refs/gigafab/state; }

# Operator tokens: printed once, one audited commit each.
n=$(count_commits $S)
run gf token create --operator
expect_rc 0
expect_out_re "$TOKEN_RE"
expect_err "store it now, it is not shown again"
OP1=$OUT
keep "$OP1"
OP1_ID=$ID
expect_eq "$(count_commits $S)" $((n + 1)) "one commit per token"
has_doc "auth/tokens/$OP1_ID.toml" || fail "no document for token $OP1_ID"
msg=$(last_message)
for t in "Gigafab-Op: token-create" "Gigafab-Token: $OP1_ID" "Gigafab-Role: operator" "Gigafab-Product: default" "Gigafab-Actor: tester"; do
  grep -qx "$t" <<<"$msg" || fail "token commit lacks '$t': $msg"
done
doc=$(git --git-dir $S show "refs/gigafab/state:auth/tokens/$OP1_ID.toml")
[[ "$doc" =~ hash\ =\ .[0-9a-f]{64} && "$doc" =~ salt\ =\ .[0-9a-f]{32} ]] || fail "token document lacks its salted hash: $doc"

run gf --json token create --operator --name ci-bot
expect_rc 0
expect_eq "$(json 'd["role"] + " " + d["productId"] + " " + d["name"]')" "operator default ci-bot" "create --json"
[[ "$(json 'd["token"]')" =~ $TOKEN_RE ]] || fail "create --json lacks the token"
keep "$(json 'd["token"]')"
OP2_ID=$ID
expect_eq "$(json 'd["id"]')" "$OP2_ID" "id is the token's lookup key"
expect_eq "$(json 'd["factory"]')" None "operator tokens have no factory"

run gf --json token create --operator --all-products --name root
expect_rc 0
expect_eq "$(json 'd["productId"]')" "*" "all-products token"
keep "$(json 'd["token"]')"
ALL_ID=$ID
git --git-dir $S log -1 --format=%B refs/gigafab/state | grep -q "^Gigafab-Product:" &&
  fail "an all-products token is store-wide: no Gigafab-Product trailer"

OTHER=$(gf --product other token create --operator 2>/dev/null)
keep "$OTHER"
OTHER_ID=$ID

# Listing: ids, roles, products, names; never a secret or a hash.
run gf token list
expect_rc 0
expect_out "ID"
expect_out "$OP1_ID"
expect_out "$OP2_ID"
expect_out "ci-bot"
[[ "$OUT" != *"$ALL_ID"* && "$OUT" != *"$OTHER_ID"* ]] || fail "token list shows another product's tokens"
run gf --json token list --all-products
expect_rc 0
expect_eq "$(json 'sorted(t["id"] for t in d["tokens"]) == sorted(["'$OP1_ID'", "'$OP2_ID'", "'$ALL_ID'", "'$OTHER_ID'"])')" True "list --all-products"
expect_eq "$(json 'sorted(set(k for t in d["tokens"] for k in t))')" "['createdAt', 'factory', 'id', 'name', 'productId', 'role']" "list fields"
for s in "${SECRETS[@]}"; do [[ "$OUT" != *"$s"* ]] || fail "token list printed a secret"; done
run gf --product other --json token list
expect_eq "$(json '[t["id"] for t in d["tokens"]]')" "['$OTHER_ID']" "list --product other"

# Revoking an operator token.
run gf token revoke "$OP1_ID"
expect_rc 0
expect_eq "$OUT" "$OP1_ID revoked" "revoke output"
has_doc "auth/tokens/$OP1_ID.toml" && fail "revoked token $OP1_ID still stored"
grep -qx "Gigafab-Op: revoke" <<<"$(last_message)" || fail "revoke commit lacks its trailer"
run gf token list
[[ "$OUT" != *"$OP1_ID"* ]] || fail "revoked token still listed"
WANT=5 unchanged gf token revoke "$OP1_ID"
expect_err "token $OP1_ID not found"
WANT=5 unchanged gf token revoke "$ALL_ID"            # not in product default's scope
WANT=5 unchanged gf token revoke "$OTHER_ID"
run gf --json token revoke "$ALL_ID" --all-products
expect_rc 0
expect_eq "$(json 'd["revoked"]')" True "revoke --json"

# Factory tokens: enroll registers the factory and prints its token once.
n=$(count_commits $S)
run gf factory enroll f1 --caps linux,docker --seats 2
expect_rc 0
expect_out_re "$TOKEN_RE"
expect_err "factory f1"
F1A=$OUT
keep "$F1A"
F1A_ID=$ID
expect_eq "$(count_commits $S)" $((n + 1)) "enroll is one commit"
msg=$(last_message)
for t in "Gigafab-Op: enroll" "Gigafab-Token: $F1A_ID" "Gigafab-Role: factory" "Gigafab-Factory: f1" "Gigafab-Product: default"; do
  grep -qx "$t" <<<"$msg" || fail "enroll commit lacks '$t': $msg"
done
expect_eq "$(git --git-dir $S show refs/gigafab/state:auth/factories/f1)" "$F1A_ID" "factory index"
run gf --json factory list
expect_eq "$(json '[(f["id"], f["seats"], f["capabilities"]) for f in d["factories"]]')" "[('f1', 2, ['docker', 'linux'])]" "enroll registered f1"
run gf --json token list
expect_eq "$(json '[t["factory"] for t in d["tokens"] if t["role"] == "factory"]')" "['f1']" "factory token listed"

# A second enrollment is a conflict that points at rotate.
WANT=4 unchanged gf factory enroll f1
expect_err "gigafab factory rotate f1"
run gf --json factory enroll f1
expect_rc 4
expect_eq "$(json 'd["error"]["code"]')" conflict "conflict in JSON"

# Rotate: a new token; the old one's document is gone in the same commit.
run gf factory rotate f1
expect_rc 0
expect_out_re "$TOKEN_RE"
F1B=$OUT
[ "$F1B" != "$F1A" ] || fail "rotate returned the same token"
keep "$F1B"
F1B_ID=$ID
has_doc "auth/tokens/$F1A_ID.toml" && fail "rotated-out token still stored"
has_doc "auth/tokens/$F1B_ID.toml" || fail "rotated-in token not stored"
expect_eq "$(git --git-dir $S show refs/gigafab/state:auth/factories/f1)" "$F1B_ID" "index after rotate"
msg=$(last_message)
grep -qx "Gigafab-Revoked-Token: $F1A_ID" <<<"$msg" || fail "rotate commit lacks the old token: $msg"
run gf --json factory rotate f1
expect_rc 0
keep "$(json 'd["token"]')"
F1C_ID=$ID
expect_eq "$(json 'd["factory"] + " " + d["role"]')" "f1 factory" "rotate --json"

# Revoke: gone at once; rotate and revoke then find nothing; enroll works again.
run gf factory revoke f1
expect_rc 0
expect_eq "$OUT" "$F1C_ID revoked" "factory revoke output"
has_doc "auth/tokens/$F1C_ID.toml" && fail "revoked factory token still stored"
has_doc "auth/factories/f1" && fail "revoked factory still indexed"
WANT=5 unchanged gf factory revoke f1
expect_err "factory f1 has no token"
WANT=5 unchanged gf factory rotate f1
run gf factory enroll f1
expect_rc 0
keep "$OUT"
F1D_ID=$ID

# A factory that registered by heartbeat enrolls without a second registration.
gf factory heartbeat --factory hb --caps linux >/dev/null
run gf factory enroll hb
expect_rc 0
keep "$OUT"

# Bad input changes nothing.
WANT=5 unchanged gf factory rotate nope
expect_err "factory nope not found"
WANT=5 unchanged gf factory revoke nope
WANT=5 unchanged gf --product other factory rotate f1      # f1 belongs to default
WANT=4 unchanged gf --product other factory enroll f1
expect_err "registered to product default"
WANT=2 unchanged gf factory enroll ../x
expect_err "invalid factory"
WANT=2 unchanged gf factory enroll 'a/b'
WANT=2 unchanged gf factory enroll ok --seats 0
WANT=2 unchanged gf factory enroll ok --caps 'bad cap'
WANT=2 unchanged gf factory enroll
WANT=2 unchanged gf factory rotate '..'
WANT=2 unchanged gf --product '../p' factory enroll ok
WANT=2 unchanged gf token create
expect_err "--operator"
WANT=2 unchanged gf token create --operator --name 'has space'
WANT=2 unchanged gf --product 'a b' token create --operator
WANT=2 unchanged gf --product '*' token create --operator
WANT=2 unchanged gf token revoke 'not-a-token-id'
expect_err "invalid token id"
WANT=2 unchanged gf token revoke '../../../etc'
WANT=2 unchanged gf token revoke
WANT=2 unchanged gf token frobnicate

# The audit trail shows every token operation; the history never shows a secret.
run gf log
for op in token-create revoke enroll rotate; do [[ "$OUT" == *" $op "* ]] || fail "log lacks $op: $OUT"; done
history=$(git --git-dir $S log -p --all)
[ "${#SECRETS[@]}" -eq 9 ] || fail "expected 9 secrets, kept ${#SECRETS[@]}"
for s in "${SECRETS[@]}"; do
  [[ "$history" != *"$s"* ]] || fail "the store's history contains a secret"
done
if [ -f "$S/gigafab.log" ] && grep -qF -f <(printf '%s\n' "${SECRETS[@]}") "$S/gigafab.log"; then
  fail "gigafab.log contains a secret"
fi
expect_eq "$(git --git-dir $S show refs/gigafab/state:auth/factories/f1)" "$F1D_ID" "f1's live token"
fsck_clean $S
pass
