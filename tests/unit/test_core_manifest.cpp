// Unit tests for core/manifest.hpp: the job manifest of DESIGN.md section 6,
// its fields, its title rules, its verbatim body and every error it reports.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "core/manifest.hpp"

using namespace gigafab;

namespace {

constexpr std::string_view k_origin = "jobs/uploader.md";

core::Manifest parse_ok(std::string_view text) {
  auto r = core::parse_manifest(text, k_origin);
  if (!r) FAIL_CHECK("unexpected error: " << r.error().message);
  REQUIRE(r.ok());
  return *r;
}

// Parses `text`, expects a usage error and returns its message.
std::string parse_error(std::string_view text) {
  auto r = core::parse_manifest(text, k_origin);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::usage);
  return r.error().message;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// The message starts with "<origin>:<line>: " and names `key` in quotes.
void check_names(const std::string& message, int line, std::string_view key) {
  CAPTURE(message);
  std::string prefix = std::string(k_origin) + ":" + std::to_string(line) + ": ";
  CHECK(message.rfind(prefix, 0) == 0);
  if (!key.empty()) CHECK(contains(message, "'" + std::string(key) + "'"));
}

constexpr std::string_view k_full = R"(+++
title = "Add retry to the uploader"
profile = "backend-dev"          # profiles/backend-dev.md: persona + capabilities
capabilities = ["linux", "cpp"]
priority = "high"
deps = ["j-7f3aaaaa", "j-bbbbcccc"]
idempotency_key = "tracker:ISSUE-42"
max_attempts = 5
review = true
[budget]
usd = 5.5
wall = "45m"
tokens = 200000
[repo]
url = "https://example.com/acme/uploader.git"
base = "main"
+++
# Add retry to the uploader

Retry failed uploads with exponential backoff.
)";

}  // namespace

TEST_CASE("a full manifest fills every field") {
  core::Manifest m = parse_ok(k_full);
  CHECK(m.title == "Add retry to the uploader");
  REQUIRE(m.profile.has_value());
  CHECK(*m.profile == "backend-dev");
  CHECK(m.capabilities == std::vector<std::string>{"linux", "cpp"});
  REQUIRE(m.priority.has_value());
  CHECK(*m.priority == core::Priority::high);
  CHECK(m.deps == std::vector<std::string>{"j-7f3aaaaa", "j-bbbbcccc"});
  REQUIRE(m.idempotency_key.has_value());
  CHECK(*m.idempotency_key == "tracker:ISSUE-42");
  REQUIRE(m.max_attempts.has_value());
  CHECK(*m.max_attempts == 5);
  REQUIRE(m.review.has_value());
  CHECK(*m.review == true);
  REQUIRE(m.budget.usd.has_value());
  CHECK(*m.budget.usd == doctest::Approx(5.5));
  REQUIRE(m.budget.wall_seconds.has_value());
  CHECK(*m.budget.wall_seconds == 45 * 60);
  REQUIRE(m.budget.tokens.has_value());
  CHECK(*m.budget.tokens == 200000);
  CHECK(m.repo.url == "https://example.com/acme/uploader.git");
  CHECK(m.repo.base == "main");
  CHECK(m.body == "# Add retry to the uploader\n\nRetry failed uploads with exponential backoff.\n");
}

TEST_CASE("unset keys stay unset") {
  core::Manifest m = parse_ok("+++\ntitle = \"Minimal\"\n+++\nDo the thing.\n");
  CHECK(m.title == "Minimal");
  CHECK_FALSE(m.profile.has_value());
  CHECK(m.capabilities.empty());
  CHECK_FALSE(m.priority.has_value());
  CHECK(m.deps.empty());
  CHECK_FALSE(m.idempotency_key.has_value());
  CHECK_FALSE(m.max_attempts.has_value());
  CHECK_FALSE(m.review.has_value());
  CHECK(m.budget == core::Budget{});
  CHECK(m.repo == core::RepoSpec{});
  CHECK(m.body == "Do the thing.\n");
}

TEST_CASE("every priority name parses") {
  for (auto [name, value] : {std::pair{"low", core::Priority::low}, std::pair{"normal", core::Priority::normal},
                             std::pair{"high", core::Priority::high},
                             std::pair{"critical", core::Priority::critical}}) {
    core::Manifest m = parse_ok(std::string("+++\npriority = \"") + name + "\"\n+++\n# T\n");
    REQUIRE(m.priority.has_value());
    CHECK(*m.priority == value);
  }
}

TEST_CASE("an integer budget.usd is accepted as a number") {
  core::Manifest m = parse_ok("+++\n[budget]\nusd = 5\n+++\n# T\n");
  REQUIRE(m.budget.usd.has_value());
  CHECK(*m.budget.usd == doctest::Approx(5.0));
}

TEST_CASE("inline and dotted tables are accepted for budget and repo") {
  core::Manifest m = parse_ok(
      "+++\nbudget = { usd = 1.25, wall = \"1h30m\" }\nrepo.url = \"git@host:x.git\"\nrepo.base = \"dev\"\n+++\n# T\n");
  CHECK(*m.budget.usd == doctest::Approx(1.25));
  CHECK(*m.budget.wall_seconds == 5400);
  CHECK(m.repo.url == "git@host:x.git");
  CHECK(m.repo.base == "dev");
}

TEST_CASE("max_attempts bounds 1 and 100 are accepted") {
  CHECK(*parse_ok("+++\nmax_attempts = 1\n+++\n# T\n").max_attempts == 1);
  CHECK(*parse_ok("+++\nmax_attempts = 100\n+++\n# T\n").max_attempts == 100);
}

TEST_CASE("the title comes from the first heading when absent") {
  SUBCASE("plain ATX heading") {
    CHECK(parse_ok("+++\npriority = \"low\"\n+++\n# Fix the build\n\ntext\n").title == "Fix the build");
  }
  SUBCASE("inline code and emphasis keep their text") {
    CHECK(parse_ok("+++\n+++\n# Fix `parse()` in the *fast* path\n").title == "Fix parse() in the fast path");
    CHECK(parse_ok("# Make **strong** _and_ `code` `work`\n").title == "Make strong and code work");
  }
  SUBCASE("links keep their text") {
    CHECK(parse_ok("# See [the docs](https://example.com) now\n").title == "See the docs now");
  }
  SUBCASE("the first heading wins, whatever its level") {
    CHECK(parse_ok("Intro paragraph.\n\n### Third level\n\n# First level\n").title == "Third level");
  }
  SUBCASE("setext headings, multi-line, collapse to one line") {
    CHECK(parse_ok("Line one\nline two\n========\n\nbody\n").title == "Line one line two");
  }
  SUBCASE("a heading inside a code block is not a heading") {
    CHECK(parse_ok("```\n# not a title\n```\n\n## Real title\n").title == "Real title");
  }
  SUBCASE("surrounding and repeated whitespace is collapsed") {
    CHECK(parse_ok("#    Spaced     out   title   \n").title == "Spaced out title");
  }
  SUBCASE("entities are decoded") {
    CHECK(parse_ok("# Tom &amp; Jerry\n").title == "Tom & Jerry");
  }
}

TEST_CASE("an explicit title wins over the heading and is whitespace-collapsed") {
  core::Manifest m = parse_ok("+++\ntitle = \"  Explicit\\n  title \"\n+++\n# Heading title\n");
  CHECK(m.title == "Explicit title");
}

TEST_CASE("a blank title falls back to the heading") {
  CHECK(parse_ok("+++\ntitle = \"   \"\n+++\n# From heading\n").title == "From heading");
}

TEST_CASE("a manifest without front matter is all body") {
  std::string text = "# Just a body\n\nNo front matter here.\n+++\nnot toml = [\n";
  core::Manifest m = parse_ok(text);
  CHECK(m.title == "Just a body");
  CHECK(m.body == text);
  CHECK_FALSE(m.priority.has_value());
  CHECK(m.capabilities.empty());
}

TEST_CASE("the body is kept verbatim, byte for byte") {
  SUBCASE("odd whitespace, CRLF, tabs, trailing spaces, unicode, no final newline") {
    std::string body = "\n\n# Title  \r\n\tindented\tcode  \n\n  trailing spaces   \n\xc3\xa9\xe2\x9c\x93 \"quotes\" \\ +++ end";
    core::Manifest m = parse_ok("+++\npriority = \"low\"\n+++\n" + body);
    CHECK(m.body == body);
  }
  SUBCASE("a second +++ block inside the body is body") {
    std::string body = "# T\n+++\ntitle = \"nope\"\n+++\nmore\n";
    core::Manifest m = parse_ok("+++\n+++\n" + body);
    CHECK(m.body == body);
    CHECK(m.title == "T");
  }
  SUBCASE("CRLF front matter delimiters") {
    std::string body = "# Windows\r\nline\r\n";
    core::Manifest m = parse_ok("+++\r\ntitle = \"crlf\"\r\n+++\r\n" + body);
    CHECK(m.title == "crlf");
    CHECK(m.body == body);
  }
  SUBCASE("a UTF-8 byte order mark before the front matter") {
    core::Manifest m = parse_ok("\xEF\xBB\xBF+++\ntitle = \"bom\"\n+++\nbody\n");
    CHECK(m.title == "bom");
    CHECK(m.body == "body\n");
  }
  SUBCASE("embedded NUL bytes survive") {
    std::string body("# T\n\0after\n", 11);
    core::Manifest m = parse_ok("+++\n+++\n" + body);
    CHECK(m.body == body);
  }
}

TEST_CASE("malformed TOML is an error naming the origin and line") {
  std::string msg = parse_error("+++\ntitle = \"ok\"\npriority = \"high\n+++\n# T\n");
  check_names(msg, 3, "");
  CHECK(contains(msg, "malformed TOML"));

  msg = parse_error("+++\ntitle = \"ok\"\n\n\nthis is not toml\n+++\n# T\n");
  check_names(msg, 5, "");
  CHECK(contains(msg, "malformed TOML"));

  msg = parse_error("+++\ntitle = \"a\"\ntitle = \"b\"\n+++\n# T\n");  // redefinition
  check_names(msg, 3, "");
}

TEST_CASE("unknown keys are errors with a did-you-mean suggestion") {
  SUBCASE("top-level typo") {
    std::string msg = parse_error("+++\ntitle = \"x\"\npriorty = \"high\"\n+++\n# T\n");
    check_names(msg, 3, "priorty");
    CHECK(contains(msg, "unknown key"));
    CHECK(contains(msg, "did you mean 'priority'?"));
  }
  SUBCASE("nested typo names the dotted key") {
    std::string msg = parse_error("+++\ntitle = \"x\"\n[budget]\nwall = \"1h\"\nusdd = 5.0\n+++\n# T\n");
    check_names(msg, 5, "budget.usdd");
    CHECK(contains(msg, "did you mean 'budget.usd'?"));
  }
  SUBCASE("table typo") {
    std::string msg = parse_error("+++\n[budgte]\nusd = 1.0\n+++\n# T\n");
    check_names(msg, 2, "budgte");
    CHECK(contains(msg, "did you mean 'budget'?"));
  }
  SUBCASE("more typos") {
    check_names(parse_error("+++\ncapabilites = [\"a\"]\n+++\n# T\n"), 2, "capabilites");
    CHECK(contains(parse_error("+++\ncapabilites = [\"a\"]\n+++\n# T\n"), "'capabilities'?"));
    CHECK(contains(parse_error("+++\ndep = [\"j-aaaaaaaa\"]\n+++\n# T\n"), "did you mean 'deps'?"));
    CHECK(contains(parse_error("+++\nidempotency-key = \"k\"\n+++\n# T\n"), "did you mean 'idempotency_key'?"));
    CHECK(contains(parse_error("+++\n[repo]\nbranch = \"main\"\nurl = \"u\"\n+++\n# T\n"), "'repo.branch'"));
  }
  SUBCASE("no suggestion for a key unlike any other") {
    std::string msg = parse_error("+++\ntitle = \"x\"\n\nzzzzzzzzzzzz = 1\n+++\n# T\n");
    check_names(msg, 4, "zzzzzzzzzzzz");
    CHECK_FALSE(contains(msg, "did you mean"));
  }
}

TEST_CASE("wrong types are errors naming the key, its line and the expected type") {
  SUBCASE("priority = 3") {
    std::string msg = parse_error("+++\ntitle = \"x\"\n\npriority = 3\n+++\n# T\n");
    check_names(msg, 4, "priority");
    CHECK(contains(msg, "must be a string"));
    CHECK(contains(msg, "not an integer"));
  }
  SUBCASE("capabilities = \"x\"") {
    std::string msg = parse_error("+++\ncapabilities = \"x\"\n+++\n# T\n");
    check_names(msg, 2, "capabilities");
    CHECK(contains(msg, "must be an array of strings"));
  }
  SUBCASE("capabilities with a non-string element") {
    std::string msg = parse_error("+++\ntitle = \"x\"\ncapabilities = [\"a\", 1]\n+++\n# T\n");
    check_names(msg, 3, "capabilities");
    CHECK(contains(msg, "must be an array of strings"));
  }
  SUBCASE("budget.usd = \"5\"") {
    std::string msg = parse_error("+++\ntitle = \"x\"\n[budget]\nusd = \"5\"\n+++\n# T\n");
    check_names(msg, 4, "budget.usd");
    CHECK(contains(msg, "must be a number"));
    CHECK(contains(msg, "not a string"));
  }
  SUBCASE("max_attempts = 2.5") {
    std::string msg = parse_error("+++\nmax_attempts = 2.5\n+++\n# T\n");
    check_names(msg, 2, "max_attempts");
    CHECK(contains(msg, "must be an integer"));
  }
  SUBCASE("review = \"yes\"") {
    std::string msg = parse_error("+++\n\nreview = \"yes\"\n+++\n# T\n");
    check_names(msg, 3, "review");
    CHECK(contains(msg, "must be a boolean"));
  }
  SUBCASE("budget = 5") {
    std::string msg = parse_error("+++\nbudget = 5\n+++\n# T\n");
    check_names(msg, 2, "budget");
    CHECK(contains(msg, "must be a table"));
  }
  SUBCASE("repo.url = 5") {
    std::string msg = parse_error("+++\n[repo]\nbase = \"main\"\nurl = 5\n+++\n# T\n");
    check_names(msg, 4, "repo.url");
  }
}

TEST_CASE("an empty or whitespace-only body is an error naming the origin") {
  for (std::string text : {"+++\ntitle = \"x\"\n+++\n", "+++\ntitle = \"x\"\n+++", "+++\ntitle = \"x\"\n+++\n \n\t\r\n\n",
                           "", "  \n\n"}) {
    CAPTURE(text);
    std::string msg = parse_error(text);
    CHECK(msg.rfind(std::string(k_origin) + ":", 0) == 0);
    CHECK(contains(msg, "body is empty"));
  }
}

TEST_CASE("an opening +++ without a closing one is an error naming line 1") {
  for (std::string text : {"+++\ntitle = \"x\"\n# T\nbody\n", "+++\n", "+++", "+++\ntitle = \"x\"\n++\n# T\n"}) {
    CAPTURE(text);
    std::string msg = parse_error(text);
    check_names(msg, 1, "+++");
    CHECK(contains(msg, "never closed"));
  }
}

TEST_CASE("an invalid dep id is an error naming deps, its line and the id") {
  std::string msg = parse_error("+++\ntitle = \"x\"\ndeps = [\"j-aaaaaaaa\", \"../evil\"]\n+++\n# T\n");
  check_names(msg, 3, "deps");
  CHECK(contains(msg, "'../evil'"));
  CHECK(contains(msg, "invalid job id"));

  msg = parse_error("+++\n\n\ndeps = [\"j-7f3a\"]\n+++\n# T\n");  // too short
  check_names(msg, 4, "deps");
  CHECK(contains(msg, "'j-7f3a'"));
}

TEST_CASE("an unknown priority value is an error listing the valid ones") {
  std::string msg = parse_error("+++\ntitle = \"x\"\npriority = \"urgent\"\n+++\n# T\n");
  check_names(msg, 3, "priority");
  CHECK(contains(msg, "'urgent'"));
  CHECK(contains(msg, "low, normal, high, critical"));
  check_names(parse_error("+++\npriority = \"High\"\n+++\n# T\n"), 2, "priority");
}

TEST_CASE("a bad budget.wall duration is an error naming the key and line") {
  std::string msg = parse_error("+++\ntitle = \"x\"\n[budget]\nusd = 1.0\nwall = \"45 minutes\"\n+++\n# T\n");
  check_names(msg, 5, "budget.wall");
  CHECK(contains(msg, "'45 minutes'"));

  msg = parse_error("+++\n[budget]\nwall = \"0s\"\n+++\n# T\n");
  check_names(msg, 3, "budget.wall");
  CHECK(contains(msg, "longer than zero"));

  check_names(parse_error("+++\n[budget]\nwall = \"-5m\"\n+++\n# T\n"), 3, "budget.wall");
}

TEST_CASE("max_attempts out of range is an error naming the key and line") {
  for (const char* value : {"0", "-1", "101", "1000000"}) {
    CAPTURE(value);
    std::string msg = parse_error(std::string("+++\ntitle = \"x\"\nmax_attempts = ") + value + "\n+++\n# T\n");
    check_names(msg, 3, "max_attempts");
    CHECK(contains(msg, "between 1 and 100"));
  }
}

TEST_CASE("negative budgets are errors naming the key and line") {
  check_names(parse_error("+++\n[budget]\nusd = -0.5\n+++\n# T\n"), 3, "budget.usd");
  check_names(parse_error("+++\n[budget]\n\ntokens = -1\n+++\n# T\n"), 4, "budget.tokens");
}

TEST_CASE("invalid profile names and capabilities are errors naming the key and line") {
  std::string msg = parse_error("+++\nprofile = \"../backend\"\n+++\n# T\n");
  check_names(msg, 2, "profile");
  msg = parse_error("+++\ntitle = \"x\"\ncapabilities = [\"linux\", \"C++\"]\n+++\n# T\n");
  check_names(msg, 3, "capabilities");
  CHECK(contains(msg, "'C++'"));
}

TEST_CASE("idempotency_key must be 1 to 256 characters") {
  check_names(parse_error("+++\nidempotency_key = \"\"\n+++\n# T\n"), 2, "idempotency_key");
  check_names(parse_error("+++\nidempotency_key = \"" + std::string(257, 'k') + "\"\n+++\n# T\n"), 2,
              "idempotency_key");
  CHECK(parse_ok("+++\nidempotency_key = \"" + std::string(256, 'k') + "\"\n+++\n# T\n").idempotency_key->size() ==
        256);
}

TEST_CASE("a manifest with no title anywhere is an error naming the origin") {
  for (std::string text : {"+++\npriority = \"high\"\n+++\nJust prose, no heading.\n", "no heading at all\n",
                           "+++\ntitle = \"\"\n+++\nprose\n", "+++\n+++\n#\n\ntext\n"}) {
    CAPTURE(text);
    std::string msg = parse_error(text);
    CHECK(msg.rfind(std::string(k_origin) + ":", 0) == 0);
    CHECK(contains(msg, "no title"));
    CHECK(contains(msg, "'title'"));
  }
}

// manifest.hpp promises that every failure reads "<origin>:<line>: ...";
// these two report "<origin>: ..." without a line.
TEST_CASE("empty-body and missing-title errors carry a line number") {
  auto has_line = [](const std::string& msg) {
    std::string prefix = std::string(k_origin) + ":";
    if (msg.rfind(prefix, 0) != 0) return false;
    std::size_t i = prefix.size();
    std::size_t digits = 0;
    while (i < msg.size() && msg[i] >= '0' && msg[i] <= '9') ++i, ++digits;
    return digits > 0 && msg.compare(i, 2, ": ") == 0;
  };
  CHECK(has_line(parse_error("+++\ntitle = \"x\"\n+++\n")));
  CHECK(has_line(parse_error("+++\npriority = \"high\"\n+++\nJust prose.\n")));
}

TEST_CASE("line numbers count the document's own lines, CRLF included") {
  std::string msg = parse_error("+++\r\ntitle = \"x\"\r\n\r\npriorty = \"low\"\r\n+++\r\n# T\r\n");
  check_names(msg, 4, "priorty");
}

TEST_CASE("the origin is used verbatim in messages") {
  auto r = core::parse_manifest("+++\nbogus = 1\n+++\n# T\n", "-");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.rfind("-:2: ", 0) == 0);
}
