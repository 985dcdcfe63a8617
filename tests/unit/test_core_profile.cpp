// Unit tests for core/profile.hpp: persona profiles with TOML front matter.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "core/profile.hpp"

using namespace gigafab;

namespace {

constexpr std::string_view k_origin = "profiles/backend-dev.md";

constexpr std::string_view k_full = R"(+++
name = "backend-dev"
version = 3
description = "Server-side work"
capabilities = ["linux", "cpp"]
engine = "claude"
review = true
[budget]
usd = 5.0
wall = "45m"
tokens = 2000000
+++
# Backend developer

You write careful server code.
)";

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string parse_error(std::string_view text) {
  auto r = core::parse_profile(text, k_origin);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::usage);
  CHECK(r.error().message.rfind(std::string(k_origin) + ":", 0) == 0);
  return r.error().message;
}

}  // namespace

TEST_CASE("parse_profile fills every field") {
  auto r = core::parse_profile(k_full, k_origin);
  REQUIRE(r.ok());
  const core::Profile& p = *r;
  CHECK(p.name == "backend-dev");
  CHECK(p.version == 3);
  CHECK(p.description == "Server-side work");
  CHECK(p.capabilities == std::vector<std::string>{"linux", "cpp"});
  CHECK(p.engine == "claude");
  CHECK(p.review == true);
  REQUIRE(p.budget.usd.has_value());
  CHECK(*p.budget.usd == doctest::Approx(5.0));
  REQUIRE(p.budget.wall_seconds.has_value());
  CHECK(*p.budget.wall_seconds == 2700);
  REQUIRE(p.budget.tokens.has_value());
  CHECK(*p.budget.tokens == 2000000);
  CHECK(p.persona == "# Backend developer\n\nYou write careful server code.\n");
  CHECK(p.text == k_full);  // the whole document, for the snapshot
}

TEST_CASE("parse_profile defaults the optional fields") {
  auto r = core::parse_profile("+++\nname = \"min\"\nversion = 1\n+++\n", k_origin);
  REQUIRE(r.ok());
  CHECK(r->name == "min");
  CHECK(r->version == 1);
  CHECK(r->description.empty());
  CHECK(r->capabilities.empty());
  CHECK(r->engine.empty());
  CHECK(r->review == false);
  CHECK(r->budget == core::Budget{});
  CHECK(r->persona.empty());
}

TEST_CASE("parse_profile requires front matter") {
  std::string msg = parse_error("# Just a persona\n");
  CHECK(contains(msg, ":1: "));
  CHECK(contains(msg, "'+++'"));
}

TEST_CASE("parse_profile reports unclosed front matter and malformed TOML with the line") {
  CHECK(contains(parse_error("+++\nname = \"x\"\nversion = 1\n"), ":1: "));
  std::string msg = parse_error("+++\nname = \"x\"\nversion = = 1\n+++\n");
  CHECK(contains(msg, std::string(k_origin) + ":3: "));
  CHECK(contains(msg, "malformed TOML"));
}

TEST_CASE("parse_profile rejects unknown keys with a suggestion and wrong types with the line") {
  std::string msg = parse_error("+++\nname = \"x\"\nversion = 1\nengien = \"claude\"\n+++\n");
  CHECK(contains(msg, std::string(k_origin) + ":4: "));
  CHECK(contains(msg, "'engien'"));
  CHECK(contains(msg, "did you mean 'engine'?"));

  msg = parse_error("+++\nname = \"x\"\nversion = \"1\"\n+++\n");
  CHECK(contains(msg, std::string(k_origin) + ":3: "));
  CHECK(contains(msg, "'version' must be an integer"));

  msg = parse_error("+++\nname = \"x\"\nversion = 1\n[budget]\nusdd = 1.0\n+++\n");
  CHECK(contains(msg, ":5: "));
  CHECK(contains(msg, "did you mean 'budget.usd'?"));

  // Manifest-only keys are not profile keys.
  msg = parse_error("+++\nname = \"x\"\nversion = 1\npriority = \"high\"\n+++\n");
  CHECK(contains(msg, "unknown key 'priority'"));
}

TEST_CASE("parse_profile validates name, version, capabilities and budget.wall") {
  CHECK(contains(parse_error("+++\nversion = 1\n+++\n"), "invalid profile name ''"));
  CHECK(contains(parse_error("+++\nname = \"../etc\"\nversion = 1\n+++\n"), "invalid profile name '../etc'"));
  CHECK(contains(parse_error("+++\nname = \"back end\"\nversion = 1\n+++\n"), "invalid profile name 'back end'"));
  CHECK(contains(parse_error("+++\nname = \"x\"\n+++\n"), "'version'"));
  CHECK(contains(parse_error("+++\nname = \"x\"\nversion = 0\n+++\n"), "'version'"));
  CHECK(contains(parse_error("+++\nname = \"x\"\nversion = -2\n+++\n"), "'version'"));
  CHECK(contains(parse_error("+++\nname = \"x\"\nversion = 1\ncapabilities = [\"ok\", \"Not/OK\"]\n+++\n"),
                 "'Not/OK'"));
  CHECK(contains(parse_error("+++\nname = \"x\"\nversion = 1\n[budget]\nwall = \"forever\"\n+++\n"), "'forever'"));
}

// The header promises "Usage errors name origin, line and key, like manifests";
// these value checks report the origin only.
TEST_CASE("parse_profile value errors name the line like manifest errors do") {
  CHECK(contains(parse_error("+++\nname = \"x\"\nversion = 0\n+++\n"), std::string(k_origin) + ":3: "));
  CHECK(contains(parse_error("+++\nname = \"b@d\"\nversion = 1\n+++\n"), std::string(k_origin) + ":2: "));
  CHECK(contains(parse_error("+++\nname = \"x\"\nversion = 1\ncapabilities = [\"a b\"]\n+++\n"),
                 std::string(k_origin) + ":4: "));
  CHECK(contains(parse_error("+++\nname = \"x\"\nversion = 1\n[budget]\nwall = \"soon\"\n+++\n"),
                 std::string(k_origin) + ":5: "));
}
