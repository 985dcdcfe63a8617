// Unit tests for gitstore/packfile.hpp: packs written directly and merged
// byte for byte are valid for git itself (verify-pack, cat-file), also when
// the packs to merge share an object.
#include <doctest/doctest.h>

#include <git2.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "gitstore/packfile.hpp"
#include "shell.hpp"

using namespace gigafab;
using gigafab::test::sh;
namespace fs = std::filesystem;

namespace {

gitstore::packfile::Object blob(const std::string& content) {
  gitstore::packfile::Object o{};
  git_odb_hash(&o.id, content.data(), content.size(), GIT_OBJECT_BLOB);
  o.type = GIT_OBJECT_BLOB;
  o.data = content;
  return o;
}

std::vector<std::string> pack_bases(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".pack") out.push_back(e.path().string().substr(0, e.path().string().size() - 5));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Merges the packs `bases` and removes them, as a store's merge does; the
// merged pack's path (without ".pack"/".idx").
std::string merge_and_remove(const std::string& dir, const std::vector<std::string>& bases, bool durable,
                             gitstore::packfile::TreeVersions* carried = nullptr) {
  auto merged = gitstore::packfile::concatenate(dir, bases, durable, carried);
  REQUIRE_MESSAGE(merged.ok(), merged.error().message);
  for (const auto& base : bases) {
    if (base == *merged) continue;  // all its objects were the others' too: the same pack
    fs::remove(base + ".pack");
    fs::remove(base + ".idx");
  }
  return *merged;
}

// A bare repository in a temporary directory, with libgit2 initialised, for
// one test; removed when it goes.
struct ScratchRepo {
  std::string repo;
  std::string dir;  // its objects/pack
  ScratchRepo() {
    git_libgit2_init();
    char pattern[] = "/tmp/gigafab-pack-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    repo = pattern;
    sh("git init -q --bare " + repo);
    dir = repo + "/objects/pack";
  }
  ~ScratchRepo() {
    fs::remove_all(repo);
    git_libgit2_shutdown();
  }
  ScratchRepo(const ScratchRepo&) = delete;
  ScratchRepo& operator=(const ScratchRepo&) = delete;
};

}  // namespace

TEST_CASE("packs that share an object merge into one pack holding each object once") {
  ScratchRepo scratch;
  const std::string& repo = scratch.repo;
  const std::string& dir = scratch.dir;
  const std::string a = "alpha\n", b = "shared by both packs\n", c = "gamma\n";
  REQUIRE(gitstore::packfile::write(dir, {blob(a), blob(b)}, false).ok());
  REQUIRE(gitstore::packfile::write(dir, {blob(b), blob(c)}, false).ok());
  auto bases = pack_bases(dir);
  REQUIRE(bases.size() == 2);

  merge_and_remove(dir, bases, false);
  auto merged = pack_bases(dir);
  REQUIRE(merged.size() == 1);
  std::string verify = sh("git verify-pack -v " + merged.front() + ".idx");
  CHECK(verify.find("non delta: 3 objects") != std::string::npos);
  for (const std::string* content : {&a, &b, &c}) {
    char hex[GIT_OID_HEXSZ + 1];
    auto o = blob(*content);
    git_oid_tostr(hex, sizeof hex, &o.id);
    CHECK(sh("git --git-dir " + repo + " cat-file -p " + hex) + "\n" == *content);
  }
}

TEST_CASE("a pack stores small objects and compresses large blobs, and git reads both") {
  ScratchRepo scratch;
  const std::string& repo = scratch.repo;
  const std::string& dir = scratch.dir;
  const std::string small = "stage = \"queued\"\n";
  std::string large;
  for (int i = 0; i < 4000; ++i) large += "engine output line " + std::to_string(i % 17) + "\n";
  REQUIRE(gitstore::packfile::write(dir, {blob(small), blob(large)}, false).ok());
  auto bases = pack_bases(dir);
  REQUIRE(bases.size() == 1);
  // verify-pack -v: "<id> blob <size> <size-in-pack> <offset>".
  std::string verify = sh("git verify-pack -v " + bases.front() + ".idx");
  auto in_pack = [&](const std::string& content) -> long {
    char hex[GIT_OID_HEXSZ + 1];
    auto o = blob(content);
    git_oid_tostr(hex, sizeof hex, &o.id);
    CHECK(sh("git --git-dir " + repo + " cat-file -p " + hex) + "\n" == content);
    auto at = verify.find(hex);
    REQUIRE(at != std::string::npos);
    long size = 0, packed = 0;
    REQUIRE(std::sscanf(verify.c_str() + at + GIT_OID_HEXSZ, " blob %ld %ld", &size, &packed) == 2);
    CHECK(size == static_cast<long>(content.size()));
    return packed;
  };
  CHECK(in_pack(small) > static_cast<long>(small.size()));      // stored: zlib's framing on top
  CHECK(in_pack(large) < static_cast<long>(large.size()) / 4);  // compressed
}

TEST_CASE("packs larger than a merge's read buffer merge byte for byte, with small ones between them") {
  ScratchRepo scratch;
  const std::string& repo = scratch.repo;
  const std::string& dir = scratch.dir;
  // Blobs that do not compress (a pseudo-random byte stream), so that the
  // first and last packs are several times the merge's 256 KiB buffer, and
  // over the 1 MiB up to which a pack is rewritten entry by entry.
  auto noise = [](std::uint32_t seed, std::size_t size) {
    std::string out(size, '\0');
    for (char& c : out) {
      seed = seed * 1664525u + 1013904223u;
      c = static_cast<char>(seed >> 24);
    }
    return out;
  };
  std::vector<std::string> contents = {noise(1, 800'000), noise(2, 400'000), "a small record\n", noise(3, 1'100'000)};
  REQUIRE(gitstore::packfile::write(dir, {blob(contents[0]), blob(contents[1])}, false).ok());
  REQUIRE(gitstore::packfile::write(dir, {blob(contents[2])}, false).ok());
  REQUIRE(gitstore::packfile::write(dir, {blob(contents[3])}, false).ok());
  auto bases = pack_bases(dir);
  REQUIRE(bases.size() == 3);
  std::uintmax_t total = 0;
  for (const auto& base : bases) total += fs::file_size(base + ".pack") - 12 - 20;

  merge_and_remove(dir, bases, true);
  auto merged = pack_bases(dir);
  REQUIRE(merged.size() == 1);
  CHECK(fs::file_size(merged.front() + ".pack") == total + 12 + 20);
  std::string verify = sh("git verify-pack -v " + merged.front() + ".idx");
  CHECK(verify.find("non delta: 4 objects") != std::string::npos);
  // git verify-pack has checked every object against its id; libgit2 reads
  // them back through the new index.
  git_repository* r = nullptr;
  REQUIRE(git_repository_open_bare(&r, repo.c_str()) == 0);
  for (const auto& content : contents) {
    auto o = blob(content);
    git_blob* read = nullptr;
    REQUIRE(git_blob_lookup(&read, r, &o.id) == 0);
    CHECK(std::string(static_cast<const char*>(git_blob_rawcontent(read)), static_cast<std::size_t>(git_blob_rawsize(read))) == content);
    git_blob_free(read);
  }
  git_repository_free(r);
}

// A gc's pack has deltas (git pack-objects); our packs have none. An object
// in both (a commit published while the gc walked the history is in the
// gc's pack and in its own) is left out of ours, whichever pack is larger:
// refusing the merge left the packs to pile up until the next gc.
TEST_CASE("a pack with deltas and one of ours that share an object merge, the copy in ours left out") {
  for (const bool ours_first : {true, false}) {
    CAPTURE(ours_first);
    ScratchRepo scratch;
    const std::string& repo = scratch.repo;
    const std::string& dir = scratch.dir;
    std::string base_text, edited;
    for (int i = 0; i < 200; ++i) base_text += "line " + std::to_string(i) + " of a file long enough to delta\n";
    edited = base_text + "one more line\n";
    auto write_loose = [&](const std::string& text) {
      std::string path = repo + "/in.txt";
      FILE* f = std::fopen(path.c_str(), "w");
      REQUIRE(f != nullptr);
      std::fputs(text.c_str(), f);
      std::fclose(f);
      std::string id = sh("git --git-dir " + repo + " hash-object -w " + path);
      return id.substr(0, id.find('\n'));
    };
    const std::string base_id = write_loose(base_text), edited_id = write_loose(edited);
    sh("printf '%s\\n%s\\n' " + base_id + " " + edited_id + " | git --git-dir " + repo +
       " pack-objects -q " + dir + "/pack >/dev/null && git --git-dir " + repo + " prune-packed");
    auto gc_pack = pack_bases(dir);
    REQUIRE(gc_pack.size() == 1);
    REQUIRE(sh("git verify-pack -v " + gc_pack.front() + ".idx").find("chain length = 1: 1 object") != std::string::npos);

    // Ours: the edited text again and enough else to be larger or smaller.
    const int extra = ours_first ? 1 : 400;
    std::vector<std::string> texts;  // Object holds a view of its content
    for (int i = 0; i < extra; ++i) texts.push_back("object " + std::to_string(i) + " only in ours\n");
    std::vector<gitstore::packfile::Object> objects{blob(edited)};
    for (const auto& text : texts) objects.push_back(blob(text));
    REQUIRE(gitstore::packfile::write(dir, objects, false).ok());
    auto bases = pack_bases(dir);
    REQUIRE(bases.size() == 2);
    const std::string ours = bases.front() == gc_pack.front() ? bases.back() : bases.front();
    bases = ours_first ? std::vector<std::string>{ours, gc_pack.front()} : std::vector<std::string>{gc_pack.front(), ours};

    merge_and_remove(dir, bases, false);
    auto after = pack_bases(dir);
    REQUIRE(after.size() == 1);
    std::string verify = sh("git verify-pack -v " + after.front() + ".idx");
    CHECK(verify.find("chain length = 1: 1 object") != std::string::npos);
    CHECK(sh("git show-index <" + after.front() + ".idx | wc -l") == std::to_string(2 + extra));
    CHECK(sh("git --git-dir " + repo + " cat-file -p " + edited_id) + "\n" == edited);
    CHECK(sh("git --git-dir " + repo + " cat-file -p " + base_id) + "\n" == base_text);
  }
}

// Two gcs' packs (an older one kept: a write touched it while the newer
// one ran) share objects, one of them the base of a delta in the smaller:
// the copies in the larger are kept, and the delta whose base was left out
// uses the kept copy.
TEST_CASE("two packs with deltas that share objects merge, each object once, every delta still found") {
  ScratchRepo scratch;
  const std::string& repo = scratch.repo;
  const std::string& dir = scratch.dir;
  // git deltas the smaller against the larger: `a` against `b`.
  sh("seq 300 >" + repo + "/a.txt && (seq 300; echo more) >" + repo + "/b.txt && echo lone >" + repo +
     "/c.txt && seq 100000 200000 >" + repo + "/d.txt");
  auto id = [&](const char* file) { return sh("git --git-dir " + repo + " hash-object -w " + repo + "/" + file); };
  const std::string a = id("a.txt"), b = id("b.txt"), c = id("c.txt"), d = id("d.txt");
  sh("printf '%s\\n%s\\n%s\\n' " + b + " " + c + " " + d + " | git --git-dir " + repo + " pack-objects -q " + dir +
     "/pack >/dev/null");
  sh("printf '%s\\n%s\\n%s\\n' " + c + " " + a + " " + b + " | git --git-dir " + repo + " pack-objects -q " + dir +
     "/pack >/dev/null && git --git-dir " + repo + " prune-packed");
  auto bases = pack_bases(dir);
  REQUIRE(bases.size() == 2);
  const bool first_larger = fs::file_size(bases[0] + ".pack") > fs::file_size(bases[1] + ".pack");
  const std::string smaller = first_larger ? bases[1] : bases[0];
  REQUIRE(sh("git verify-pack -v " + smaller + ".idx").find("chain length = 1: 1 object") != std::string::npos);

  const std::string merged = merge_and_remove(dir, bases, false);
  auto after = pack_bases(dir);
  REQUIRE(after.size() == 1);
  CHECK(after.front() == merged);
  const std::string verify = sh("git verify-pack -v " + after.front() + ".idx");  // checks every object's id
  CHECK(verify.find("chain length = 1: 1 object") != std::string::npos);
  CHECK(sh("git show-index <" + after.front() + ".idx | wc -l") == "4");
  for (const char* file : {"a.txt", "b.txt", "c.txt", "d.txt"}) {
    const std::string object = sh("git --git-dir " + repo + " hash-object " + repo + "/" + file);
    CHECK(sh("git --git-dir " + repo + " cat-file -p " + object + " | cmp - " + repo + "/" + file + " && echo same") == "same");
  }
}

namespace {

gitstore::packfile::Object object(git_object_t type, const std::string& content) {
  gitstore::packfile::Object o{};
  git_odb_hash(&o.id, content.data(), content.size(), type);
  o.type = type;
  o.data = content;
  return o;
}

std::string hex_of(const git_oid& id) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, &id);
  return hex;
}

// A tree of blobs and subtrees (names given in git's order).
std::string tree_bytes(const std::vector<std::tuple<const char*, std::string, git_oid>>& entries) {
  std::string out;
  for (const auto& [mode, name, id] : entries) {
    out += std::string(mode) + " " + name + '\0';
    out.append(reinterpret_cast<const char*>(id.id), GIT_OID_RAWSZ);
  }
  return out;
}

// A history like a store's: a `jobs` tree of 300 files of which each commit
// changes one, under a root tree that also holds a file of its own. Each
// commit's new objects go to a pack of their own, as a commit writes them.
struct History {
  std::vector<std::string> texts;  // Object holds a view of its content
  std::vector<std::string> files, jobs_trees, roots, commits;
  std::vector<git_oid> file_ids;
  std::vector<std::string> tree_versions;  // every jobs tree's content, in order
  std::string tip;
  const std::string& keep(std::string text) { return texts.emplace_back(std::move(text)); }

  History() { texts.reserve(4096); }

  void commit(const std::string& dir, int n, bool first) {
    std::vector<gitstore::packfile::Object> objects;
    if (first) {
      for (int i = 0; i < 300; ++i) {
        auto o = object(GIT_OBJECT_BLOB, keep("job " + std::to_string(i) + " version 0\n"));
        file_ids.push_back(o.id);
        objects.push_back(o);
      }
    } else {
      auto o = object(GIT_OBJECT_BLOB, keep("job " + std::to_string(n % 300) + " version " + std::to_string(n) + "\n"));
      file_ids[static_cast<std::size_t>(n % 300)] = o.id;
      objects.push_back(o);
    }
    std::vector<std::tuple<const char*, std::string, git_oid>> entries;
    for (int i = 0; i < 300; ++i) {
      char name[16];
      std::snprintf(name, sizeof name, "j-%03d", i);
      entries.emplace_back("100644", name, file_ids[static_cast<std::size_t>(i)]);
    }
    auto jobs = object(GIT_OBJECT_TREE, keep(tree_bytes(entries)));
    tree_versions.push_back(std::string(jobs.data));
    auto meta = object(GIT_OBJECT_BLOB, keep("commits = " + std::to_string(n) + "\n"));
    auto root = object(GIT_OBJECT_TREE, keep(tree_bytes({{"40000", "jobs", jobs.id}, {"100644", "meta", meta.id}})));
    std::string text = "tree " + hex_of(root.id) + "\n";
    if (!tip.empty()) text += "parent " + tip + "\n";
    text += "author t <t@t> 1700000000 +0000\ncommitter t <t@t> 1700000000 +0000\n\ncommit " + std::to_string(n) + "\n";
    auto c = object(GIT_OBJECT_COMMIT, keep(text));
    for (const auto& o : {c, root, jobs, meta}) objects.push_back(o);
    REQUIRE(gitstore::packfile::write(dir, objects, false).ok());
    tip = hex_of(c.id);
  }
};

}  // namespace

TEST_CASE("a merge writes each version of a tree as a delta against the last one, and git and libgit2 read them") {
  ScratchRepo scratch;
  const std::string& repo = scratch.repo;
  const std::string& dir = scratch.dir;
  History history;
  history.commit(dir, 0, true);
  const auto first = pack_bases(dir);
  REQUIRE(first.size() == 1);
  for (int n = 1; n <= 40; ++n) history.commit(dir, n, false);
  auto bases = pack_bases(dir);
  REQUIRE(bases.size() == 41);
  std::uintmax_t before = 0;
  for (const auto& base : bases) before += fs::file_size(base + ".pack");

  merge_and_remove(dir, bases, false);
  auto merged = pack_bases(dir);
  REQUIRE(merged.size() == 1);
  // 41 versions of an 8 KB tree: one whole per 17 (16 deltas deep at most).
  const std::uintmax_t after = fs::file_size(merged.front() + ".pack");
  CHECK(after * 4 < before);
  const std::string verify = sh("git verify-pack -v " + merged.front() + ".idx");
  CHECK(verify.find("chain length = 1:") != std::string::npos);  // the pack has deltas
  CHECK(verify.find("chain length = 16:") != std::string::npos);
  CHECK(verify.find("chain length = 17:") == std::string::npos);
  sh("git --git-dir " + repo + " update-ref refs/heads/main " + history.tip + " && git --git-dir " + repo +
     " symbolic-ref HEAD refs/heads/main");
  CHECK(sh("git --git-dir " + repo + " fsck --full --strict 2>&1; echo rc=$?") == "rc=0");
  git_repository* r = nullptr;
  REQUIRE(git_repository_open_bare(&r, repo.c_str()) == 0);
  git_odb* odb = nullptr;
  REQUIRE(git_repository_odb(&odb, r) == 0);
  for (const auto& content : history.tree_versions) {
    auto o = object(GIT_OBJECT_TREE, content);
    git_odb_object* read = nullptr;
    REQUIRE(git_odb_read(&read, odb, &o.id) == 0);
    CHECK(std::string(static_cast<const char*>(git_odb_object_data(read)), git_odb_object_size(read)) == content);
    git_odb_object_free(read);
  }
  git_odb_free(odb);
  git_repository_free(r);

  // The merged pack (deltas) merges again with newer commits' packs: it is
  // copied whole, theirs get deltas of their own.
  for (int n = 41; n <= 45; ++n) history.commit(dir, n, false);
  bases = pack_bases(dir);
  REQUIRE(bases.size() == 6);
  merge_and_remove(dir, bases, false);
  REQUIRE(pack_bases(dir).size() == 1);
  sh("git --git-dir " + repo + " update-ref refs/heads/main " + history.tip);
  CHECK(sh("git --git-dir " + repo + " fsck --full --strict 2>&1; echo rc=$?") == "rc=0");
  CHECK(sh("git --git-dir " + repo + " rev-list --objects refs/heads/main | wc -l") ==
        std::to_string(304 + 45 * 5));  // the first commit's 304 objects, then 5 a commit
}

TEST_CASE("a tree delta is left out when it would save little, or a tree is not well formed") {
  git_oid a{}, b{};
  a.id[0] = 1;
  b.id[0] = 2;
  const std::string base = tree_bytes({{"100644", "one", a}, {"100644", "two", a}});
  const std::string other = tree_bytes({{"100644", "three", b}, {"100644", "four", b}});
  CHECK(gitstore::packfile::tree_delta(base, other).empty());
  CHECK(gitstore::packfile::tree_delta("not a tree", base).empty());
  CHECK(gitstore::packfile::tree_delta(base, base.substr(0, base.size() - 3)).empty());
  std::string big_base, big_target;
  for (int i = 0; i < 100; ++i) {
    big_base += tree_bytes({{"100644", "f" + std::to_string(1000 + i), a}});
    big_target += tree_bytes({{"100644", "f" + std::to_string(1000 + i), i == 50 ? b : a}});
  }
  const std::string delta = gitstore::packfile::tree_delta(big_base, big_target);
  CHECK_FALSE(delta.empty());
  CHECK(delta.size() < 64);  // two copies around one inserted entry
}

TEST_CASE("a merge's trees become deltas against the versions the merge before wrote, when its pack goes first") {
  std::uintmax_t grew[2] = {0, 0};
  for (const bool carry : {false, true}) {
    CAPTURE(carry);
    ScratchRepo scratch;
    const std::string& repo = scratch.repo;
    const std::string& dir = scratch.dir;
    History history;
    history.commit(dir, 0, true);
    for (int n = 1; n <= 5; ++n) history.commit(dir, n, false);
    gitstore::packfile::TreeVersions versions;
    const std::string merged = merge_and_remove(dir, pack_bases(dir), false, carry ? &versions : nullptr);
    CHECK(versions.pack == (carry ? merged : std::string()));
    const std::uintmax_t before = fs::file_size(merged + ".pack");
    for (int n = 6; n <= 10; ++n) history.commit(dir, n, false);
    const auto bases = pack_bases(dir);
    REQUIRE(bases.size() == 6);
    const std::string again = merge_and_remove(dir, bases, false, carry ? &versions : nullptr);
    grew[carry ? 1 : 0] = fs::file_size(again + ".pack") - before;
    sh("git --git-dir " + repo + " update-ref refs/heads/main " + history.tip + " && git --git-dir " + repo +
       " symbolic-ref HEAD refs/heads/main");
    CHECK(sh("git --git-dir " + repo + " fsck --full --strict 2>&1; echo rc=$?") == "rc=0");
  }
  // Without: the first of the five new jobs trees is whole (8 KB), the others deltas.
  CHECK(grew[1] * 2 < grew[0]);
}
