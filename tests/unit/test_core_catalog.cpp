// Unit tests for core/catalog.hpp: the persona catalog, including the
// profiles shipped inside the binary.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "core/catalog.hpp"
#include "profiles/builtin.hpp"

using namespace gigafab;

namespace {

std::string profile_text(std::string_view name, int version, std::string_view extra = "") {
  return "+++\nname = \"" + std::string(name) + "\"\nversion = " + std::to_string(version) + "\n" +
         std::string(extra) + "+++\n# " + std::string(name) + " persona\n";
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("an empty catalog finds nothing") {
  core::Catalog catalog;
  CHECK(catalog.all().empty());
  auto r = catalog.find("backend-dev");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::not_found);
  CHECK(r.error().message == "unknown profile 'backend-dev'");
  CHECK(catalog.origin_of("backend-dev").empty());
}

TEST_CASE("add then find, all and origin_of") {
  core::Catalog catalog;
  REQUIRE(catalog.add(profile_text("reviewer", 1), "/home/u/profiles/reviewer.md", "reviewer").ok());
  REQUIRE(catalog.add(profile_text("backend-dev", 2, "capabilities = [\"linux\"]\n"), "builtin:backend-dev.md").ok());
  REQUIRE(catalog.add(profile_text("docs-writer", 1), "builtin:docs-writer.md", "docs-writer").ok());

  auto found = catalog.find("backend-dev");
  REQUIRE(found.ok());
  CHECK(found->name == "backend-dev");
  CHECK(found->version == 2);
  CHECK(found->capabilities == std::vector<std::string>{"linux"});
  CHECK(found->text == profile_text("backend-dev", 2, "capabilities = [\"linux\"]\n"));

  auto all = catalog.all();
  REQUIRE(all.size() == 3);
  CHECK(all[0].name == "backend-dev");  // sorted by name
  CHECK(all[1].name == "docs-writer");
  CHECK(all[2].name == "reviewer");

  CHECK(catalog.origin_of("reviewer") == "/home/u/profiles/reviewer.md");
  CHECK(catalog.origin_of("backend-dev") == "builtin:backend-dev.md");
  CHECK(catalog.origin_of("nobody").empty());
}

TEST_CASE("an unknown profile suggests the closest known name") {
  core::Catalog catalog;
  REQUIRE(catalog.add(profile_text("backend-dev", 1), "a.md").ok());
  REQUIRE(catalog.add(profile_text("frontend-dev", 1), "b.md").ok());
  auto r = catalog.find("backend-dve");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::not_found);
  CHECK(r.error().message == "unknown profile 'backend-dve' (did you mean 'backend-dev'?)");

  r = catalog.find("frontnd-dev");
  REQUIRE_FALSE(r.ok());
  CHECK(contains(r.error().message, "did you mean 'frontend-dev'?"));

  r = catalog.find("qa");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "unknown profile 'qa'");
}

TEST_CASE("a profile whose name differs from its file name is rejected and not added") {
  core::Catalog catalog;
  auto r = catalog.add(profile_text("backend", 1), "/p/backend-dev.md", "backend-dev");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::usage);
  CHECK(contains(r.error().message, "/p/backend-dev.md: "));
  CHECK(contains(r.error().message, "'backend'"));
  CHECK(contains(r.error().message, "'backend-dev.md'"));
  CHECK(catalog.all().empty());
  CHECK_FALSE(catalog.find("backend").ok());
}

TEST_CASE("a profile that does not parse is rejected with origin and line, and not added") {
  core::Catalog catalog;
  auto r = catalog.add("+++\nname = \"x\"\nversion = 1\nbogus = true\n+++\n", "/p/x.md", "x");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::usage);
  CHECK(r.error().message.rfind("/p/x.md:4: ", 0) == 0);
  CHECK(catalog.all().empty());
}

TEST_CASE("a later add replaces the profile of the same name, origin included") {
  core::Catalog catalog;
  REQUIRE(catalog.add(profile_text("backend-dev", 1), "builtin:backend-dev.md", "backend-dev").ok());
  REQUIRE(catalog.add(profile_text("backend-dev", 7, "engine = \"codex\"\n"), "/mine/backend-dev.md", "backend-dev")
              .ok());
  auto all = catalog.all();
  REQUIRE(all.size() == 1);
  CHECK(all[0].version == 7);
  CHECK(all[0].engine == "codex");
  CHECK(catalog.find("backend-dev")->version == 7);
  CHECK(catalog.origin_of("backend-dev") == "/mine/backend-dev.md");
}

TEST_CASE("a failed add keeps the previous profile of that name") {
  core::Catalog catalog;
  REQUIRE(catalog.add(profile_text("backend-dev", 1), "first.md").ok());
  CHECK_FALSE(catalog.add(profile_text("backend-dev", 0), "second.md").ok());
  CHECK(catalog.find("backend-dev")->version == 1);
  CHECK(catalog.origin_of("backend-dev") == "first.md");
}

TEST_CASE("every shipped profile parses and matches its file name") {
  const auto& shipped = profiles::builtin();
  REQUIRE_FALSE(shipped.empty());
  core::Catalog catalog;
  for (const auto& builtin : shipped) {
    std::string file(builtin.file_name);
    CAPTURE(file);
    REQUIRE(file.size() > 3);
    REQUIRE(file.substr(file.size() - 3) == ".md");
    std::string name = file.substr(0, file.size() - 3);
    auto added = catalog.add(builtin.text, "builtin:" + file, name);
    if (!added) FAIL_CHECK(added.error().message);
    auto p = catalog.find(name);
    REQUIRE(p.ok());
    CHECK(p->version >= 1);
    CHECK_FALSE(p->persona.empty());
    CHECK(p->text == builtin.text);
    CHECK(catalog.origin_of(name) == "builtin:" + file);
  }
  CHECK(catalog.all().size() == shipped.size());
  CHECK(catalog.find("backend-dev").ok());
}
