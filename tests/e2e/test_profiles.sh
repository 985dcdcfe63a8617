# The persona catalog: shipped profiles, a user overlay, and snapshots that keep
# a submitted job's persona when the catalog changes.
source "$(dirname "$0")/lib.sh"

# The catalog works without a store.
run gf profile list
expect_rc 0
for p in backend-dev frontend-dev ios-dev reviewer docs-writer test-engineer; do
  grep -q "^$p " <<<"$OUT" || fail "profile $p missing from: $OUT"
done
run gf --json profile list
expect_eq "$(json 'len(d["profiles"])')" 6 "shipped profiles"
expect_eq "$(json '[p for p in d["profiles"] if p["name"]=="ios-dev"][0]["capabilities"]')" "['macos', 'xcode']" "ios caps"
run gf profile show reviewer
expect_rc 0
expect_out 'name = "reviewer"'
run gf --json profile show test-engineer
expect_eq "$(json 'd["source"]')" "builtin:test-engineer.md" "source"
[ -n "$(json 'd["persona"]')" ] || fail "persona body"
run gf profile show reviwer
expect_rc 5
expect_err "unknown profile 'reviwer' (did you mean 'reviewer'?)"
run gf profile show ../etc
expect_rc 2

# A user catalog overlays the shipped one.
mkdir mine
write_profile() {  # write_profile VERSION PERSONA
  cat >mine/backend-dev.md <<MD
+++
name = "backend-dev"
version = $1
description = "our own backend persona"
capabilities = ["linux", "go"]
engine = "codex"
review = false
[budget]
usd = 1.5
+++
# Backend (ours)

$2
MD
}
write_profile 7 "Persona seven."
export GIGAFAB_PROFILES=$TEST_DIR/mine
run gf --json profile show backend-dev
expect_eq "$(json 'd["version"]')" 7 "overlay version"
expect_eq "$(json 'd["source"]')" "$TEST_DIR/mine/backend-dev.md" "overlay source"

gf init >/dev/null
S=.gigafab
manifest job.md "Persona job" 'profile = "backend-dev"\n'
J1=$(gf submit job.md)
git --git-dir $S show refs/gigafab/state:profiles/backend-dev/7.md | grep -q "Persona seven." || fail "snapshot stored"

# Editing the catalog without bumping the version is refused (versions are immutable).
write_profile 7 "Persona seven, edited."
before=$(tip $S)
run gf submit job.md
expect_rc 4
expect_err "profile backend-dev version 7 is already stored with different content"
expect_eq "$(tip $S)" "$before" "tip after a conflicting profile"

# Bump it: new jobs get the new persona, the old job keeps the one it was submitted with.
write_profile 8 "Persona eight."
J2=$(gf submit job.md)
run gf --json show "$J1"
expect_eq "$(json 'd["profileVersion"]')" 7 "old job's profile version"
[[ "$(json 'd["profileSnapshot"]["persona"]')" == *"Persona seven."* ]] || fail "old job keeps its persona"
expect_eq "$(json 'd["profileSnapshot"]["engine"]')" codex "snapshot engine"
run gf --json show "$J2"
[[ "$(json 'd["profileSnapshot"]["persona"]')" == *"Persona eight."* ]] || fail "new job gets the new persona"
rm mine/backend-dev.md
run gf --json show "$J1"
[[ "$(json 'd["profileSnapshot"]["persona"]')" == *"Persona seven."* ]] || fail "snapshot survives the catalog file's removal"

# A broken user profile is a clear error naming the file and line.
printf '+++\nname = "bad"\nversion = "one"\n+++\n# x\n' >mine/bad.md
run gf profile list
expect_rc 2
expect_err "mine/bad.md:3: 'version' must be an integer, not a string"
printf '+++\nname = "other"\nversion = 1\n+++\n# x\n' >mine/bad.md
run gf profile list
expect_rc 2
expect_err "profile name 'other' does not match its file name 'bad.md'"
pass
