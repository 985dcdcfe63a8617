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

  REQUIRE(gitstore::packfile::concatenate(dir, bases, false).ok());
  for (const auto& base : bases) {
    fs::remove(base + ".pack");
    fs::remove(base + ".idx");
  }
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
  // first and last packs are several times the merge's 256 KiB buffer.
  auto noise = [](std::uint32_t seed, std::size_t size) {
    std::string out(size, '\0');
    for (char& c : out) {
      seed = seed * 1664525u + 1013904223u;
      c = static_cast<char>(seed >> 24);
    }
    return out;
  };
  std::vector<std::string> contents = {noise(1, 700'000), noise(2, 300'000), "a small record\n", noise(3, 900'000)};
  REQUIRE(gitstore::packfile::write(dir, {blob(contents[0]), blob(contents[1])}, false).ok());
  REQUIRE(gitstore::packfile::write(dir, {blob(contents[2])}, false).ok());
  REQUIRE(gitstore::packfile::write(dir, {blob(contents[3])}, false).ok());
  auto bases = pack_bases(dir);
  REQUIRE(bases.size() == 3);
  std::uintmax_t total = 0;
  for (const auto& base : bases) total += fs::file_size(base + ".pack") - 12 - 20;

  REQUIRE(gitstore::packfile::concatenate(dir, bases, true).ok());
  for (const auto& base : bases) {
    fs::remove(base + ".pack");
    fs::remove(base + ".idx");
  }
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

    auto merged = gitstore::packfile::concatenate(dir, bases, false);
    REQUIRE_MESSAGE(merged.ok(), merged.error().message);
    for (const auto& base : bases) {
      fs::remove(base + ".pack");
      fs::remove(base + ".idx");
    }
    auto after = pack_bases(dir);
    REQUIRE(after.size() == 1);
    std::string verify = sh("git verify-pack -v " + after.front() + ".idx");
    CHECK(verify.find("chain length = 1: 1 object") != std::string::npos);
    CHECK(sh("git show-index <" + after.front() + ".idx | wc -l") == std::to_string(2 + extra));
    CHECK(sh("git --git-dir " + repo + " cat-file -p " + edited_id) + "\n" == edited);
    CHECK(sh("git --git-dir " + repo + " cat-file -p " + base_id) + "\n" == base_text);
  }
}

TEST_CASE("two packs with deltas that share an object do not merge, and nothing is written") {
  ScratchRepo scratch;
  const std::string& repo = scratch.repo;
  const std::string& dir = scratch.dir;
  sh("seq 300 >" + repo + "/a.txt && (seq 300; echo more) >" + repo + "/b.txt && echo other >" + repo + "/c.txt");
  auto id = [&](const char* file) { return sh("git --git-dir " + repo + " hash-object -w " + repo + "/" + file); };
  const std::string a = id("a.txt"), b = id("b.txt"), c = id("c.txt");
  sh("printf '%s\\n%s\\n' " + a + " " + b + " | git --git-dir " + repo + " pack-objects -q " + dir + "/pack >/dev/null");
  sh("printf '%s\\n%s\\n%s\\n' " + a + " " + b + " " + c + " | git --git-dir " + repo + " pack-objects -q " + dir +
     "/pack >/dev/null");
  auto bases = pack_bases(dir);
  REQUIRE(bases.size() == 2);
  for (const auto& base : bases) REQUIRE(sh("git verify-pack -v " + base + ".idx").find("chain length = 1") != std::string::npos);
  auto merged = gitstore::packfile::concatenate(dir, bases, false);
  REQUIRE_FALSE(merged.ok());
  CHECK(merged.error().code == core::ErrorCode::usage);
  CHECK(pack_bases(dir) == bases);
  CHECK(sh("ls " + dir + " | grep -c tmp_ || true") == "0");
}
