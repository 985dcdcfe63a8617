#include <doctest/doctest.h>

#include "core/snapshot.hpp"

using namespace gigafab;

namespace {

core::MemorySnapshot base() {
  return core::MemorySnapshot({{"a/x.toml", "x"}, {"a/y.toml", "y"}, {"a/sub/z.toml", "z"}, {"b/w.toml", "w"}});
}

std::vector<std::string> names(const core::Snapshot& snap, std::string_view dir) {
  auto listed = snap.list(dir);
  REQUIRE(listed.ok());
  return *listed;
}

}  // namespace

TEST_CASE("an overlay reads its change before the base") {
  core::MemorySnapshot snap = base();
  core::Change change;
  change.put("a/x.toml", "x2");
  change.remove("a/y.toml");
  change.put("c/new.toml", "n");
  core::OverlaySnapshot overlay(snap, change);
  CHECK(overlay.read("a/x.toml")->value() == "x2");
  CHECK_FALSE(overlay.read("a/y.toml")->has_value());
  CHECK(overlay.read("c/new.toml")->value() == "n");
  CHECK(overlay.read("b/w.toml")->value() == "w");
  CHECK_FALSE(overlay.read("nope.toml")->has_value());
  // The base is untouched.
  CHECK(snap.read("a/y.toml")->value() == "y");
}

TEST_CASE("an overlay lists the union, minus deleted files, sorted") {
  core::MemorySnapshot snap = base();
  core::Change change;
  change.remove("a/y.toml");
  change.put("a/v.toml", "v");
  change.put("a/deep/er/q.toml", "q");
  core::OverlaySnapshot overlay(snap, change);
  CHECK(names(overlay, "a") == std::vector<std::string>{"deep", "sub", "v.toml", "x.toml"});
  CHECK(names(overlay, "a/deep") == std::vector<std::string>{"er"});
  CHECK(names(overlay, "b") == std::vector<std::string>{"w.toml"});
  CHECK(names(overlay, "zzz").empty());
}

TEST_CASE("overlays stack: operations computed one after another see each other") {
  core::MemorySnapshot snap = base();
  core::Change first;
  first.put("q/1", "one");
  core::OverlaySnapshot after_first(snap, first);
  core::Change second;
  second.put("q/2", "two");
  core::OverlaySnapshot after_second(after_first, second);
  CHECK(names(after_second, "q") == std::vector<std::string>{"1", "2"});
  CHECK(after_second.read("q/1")->value() == "one");
}

TEST_CASE("a change renders its message as summary, blank line, trailers") {
  core::Change change;
  change.summary = "claim j-abcdefgh: assigned to f1";
  change.trailers = {{"Gigafab-Op", "claim"}, {"Gigafab-Epoch", "2"}};
  CHECK(change.message() == "claim j-abcdefgh: assigned to f1\n\nGigafab-Op: claim\nGigafab-Epoch: 2\n");
  core::Change bare;
  bare.summary = "init";
  CHECK(bare.message() == "init\n");
}
