# gigafab init, store discovery, and stores that are not (or no longer) stores.
source "$(dirname "$0")/lib.sh"

# Outside any store every command says so and exits 1.
for cmd in "list" "show j-aaaaaaaa" "log"; do
  run gf $cmd
  expect_rc 1
  expect_eq "$ERR" "gigafab: no store found (run 'gigafab init')" "error outside a store ($cmd)"
done
manifest job.md "Outside"
run gf submit job.md
expect_rc 1
expect_err "no store found (run 'gigafab init')"

# init creates ./.gigafab, a bare repository whose state ref has one commit.
run gf init
expect_rc 0
expect_out "Initialized gigafab store in $TEST_DIR/.gigafab"
[ "$(git --git-dir .gigafab rev-parse --is-bare-repository)" = true ] || fail "store is not bare"
expect_eq "$(count_commits .gigafab)" 1 "commits after init"
git --git-dir .gigafab log -1 --format=%B refs/gigafab/state | grep -q '^Gigafab-Op: init$' || fail "init trailer"
git --git-dir .gigafab log --oneline refs/gigafab/state | grep -q 'init gigafab store' || fail "git log of the store"
[ "$(git --git-dir .gigafab config gigafab.fsync)" = true ] || fail "durable by default"

# A second init of the same place refuses and changes nothing.
before=$(tip .gigafab)
run gf init
expect_rc 4
expect_err "already exists"
expect_eq "$(tip .gigafab)" "$before" "tip after refused init"

# Discovery walks up from subdirectories, like git.
mkdir -p deep/er/dir
(cd deep/er/dir && gf submit ../../../job.md >/dev/null) || fail "submit from a subdirectory"
expect_eq "$(count_commits .gigafab)" 2 "commits after submit from subdir"

# --store and GIGAFAB_STORE name a store explicitly; init PATH creates one there.
run gf init --no-fsync other/store
expect_rc 0
[ "$(git --git-dir other/store config gigafab.fsync)" = false ] || fail "--no-fsync recorded"
gf --store other/store submit job.md >/dev/null
expect_eq "$(count_commits other/store)" 2 "--store"
GIGAFAB_STORE=other/store gf submit job.md >/dev/null
expect_eq "$(count_commits other/store)" 3 "GIGAFAB_STORE"
run gf --json init other/third
expect_rc 0
expect_eq "$(json 'd["fsync"]')" True "init --json"

# A path that is not a gigafab store.
mkdir plain
run gf --store plain list
expect_rc 1
expect_err "not a gigafab store: plain"
git init -q --bare plain.git
run gf --store plain.git list
expect_rc 1
expect_err "not a gigafab store"
run gf --store does/not/exist list
expect_rc 1
expect_err "not a gigafab store: does/not/exist (no such directory)"
run gf --json --store plain list
expect_rc 1
expect_eq "$(json 'd["error"]["code"]')" error "json error code"

# A store whose state ref is missing or corrupt: a clear error, nothing written.
cp -r other/store broken
git --git-dir broken update-ref -d refs/gigafab/state
run gf --store broken list
expect_rc 1
expect_err "has no refs/gigafab/state"
run gf --store broken submit job.md
expect_rc 1
cp -r other/store corrupt
printf '%s\n' 0123456789012345678901234567890123456789 > corrupt/refs/gigafab/state
run gf --store corrupt list
expect_rc 1
expect_err "corrupt store"
run gf --store corrupt submit job.md
expect_rc 1
expect_eq "$(cat corrupt/refs/gigafab/state)" 0123456789012345678901234567890123456789 "corrupt ref untouched"

fsck_clean .gigafab
fsck_clean other/store
pass
