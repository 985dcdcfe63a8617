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

}  // namespace

TEST_CASE("packs that share an object merge into one pack holding each object once") {
  git_libgit2_init();
  char pattern[] = "/tmp/gigafab-pack-XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  std::string repo = pattern;
  sh("git init -q --bare " + repo);
  std::string dir = repo + "/objects/pack";
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
  fs::remove_all(repo);
  git_libgit2_shutdown();
}

TEST_CASE("a pack stores small objects and compresses large blobs, and git reads both") {
  git_libgit2_init();
  char pattern[] = "/tmp/gigafab-pack-XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  std::string repo = pattern;
  sh("git init -q --bare " + repo);
  std::string dir = repo + "/objects/pack";
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
  fs::remove_all(repo);
  git_libgit2_shutdown();
}
