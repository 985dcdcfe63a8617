// Unit tests for core/clock.hpp: RFC 3339 timestamps with milliseconds and
// the "1h30m" duration syntax.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <random>
#include <string>

#include "core/clock.hpp"

using namespace gigafab;

TEST_CASE("format_time renders RFC 3339 UTC with milliseconds") {
  CHECK(core::format_time(0) == "1970-01-01T00:00:00.000Z");
  CHECK(core::format_time(1) == "1970-01-01T00:00:00.001Z");
  CHECK(core::format_time(999) == "1970-01-01T00:00:00.999Z");
  CHECK(core::format_time(1000) == "1970-01-01T00:00:01.000Z");
  CHECK(core::format_time(1700000000123) == "2023-11-14T22:13:20.123Z");
  CHECK(core::format_time(951782400000) == "2000-02-29T00:00:00.000Z");  // leap day
  CHECK(core::format_time(-1) == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("parse_time reads what format_time writes") {
  CHECK(core::parse_time("1970-01-01T00:00:00.000Z") == core::Millis{0});
  CHECK(core::parse_time("2023-11-14T22:13:20.123Z") == core::Millis{1700000000123});
  CHECK(core::parse_time("2023-11-14T22:13:20Z") == core::Millis{1700000000000});
  // Fractions shorter than milliseconds are scaled, longer ones truncated.
  CHECK(core::parse_time("2023-11-14T22:13:20.1Z") == core::Millis{1700000000100});
  CHECK(core::parse_time("2023-11-14T22:13:20.12Z") == core::Millis{1700000000120});
  CHECK(core::parse_time("2023-11-14T22:13:20.123456Z") == core::Millis{1700000000123});
}

TEST_CASE("format_time and parse_time round trip, milliseconds included") {
  const core::Millis samples[] = {0,   1,   7,   10,  99,  100, 999, 1000, 1001, 59999, 60000,
                                  951782400000, 1700000000123, 1700000000999, 4102444799999, -1, -1000};
  for (core::Millis t : samples) {
    CAPTURE(t);
    auto parsed = core::parse_time(core::format_time(t));
    REQUIRE(parsed.has_value());
    CHECK(*parsed == t);
  }
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<core::Millis> dist(0, 4102444800000);  // up to 2100
  int failures = 0;
  for (int i = 0; i < 2000 && failures < 5; ++i) {
    core::Millis t = dist(rng);
    auto parsed = core::parse_time(core::format_time(t));
    if (!parsed || *parsed != t) {
      ++failures;
      FAIL_CHECK("no round trip for " << t << " (" << core::format_time(t) << ")");
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("format_time and parse_time agree with gmtime_r and timegm from 1900 to 2200") {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<core::Millis> dist(-2208988800000, 7258118400000);
  for (int i = 0; i < 5000; ++i) {
    core::Millis t = dist(rng);
    std::time_t secs = static_cast<std::time_t>(t >= 0 ? t / 1000 : (t - 999) / 1000);
    int ms = static_cast<int>(t - static_cast<core::Millis>(secs) * 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char expected[64];
    std::snprintf(expected, sizeof expected, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    CAPTURE(t);
    REQUIRE(core::format_time(t) == expected);
    REQUIRE(core::parse_time(expected) == t);
  }
  // Dates that do not exist, in the exact shape format_time writes, beside
  // leap days that do.
  for (const char* real : {"2024-02-29T00:00:00.000Z", "2000-02-29T00:00:00.000Z"}) {
    CAPTURE(real);
    CHECK(core::parse_time(real));
  }
  for (const char* bad : {"2023-02-29T00:00:00.000Z", "1900-02-29T00:00:00.000Z", "2023-04-31T00:00:00.000Z",
                          "2023-13-01T00:00:00.000Z", "2023-00-01T00:00:00.000Z", "2023-01-00T00:00:00.000Z",
                          "2023-01-01T24:00:00.000Z", "2023-01-01T23:60:00.000Z", "2023-01-01T23:59:60.000Z",
                          "2023-01-01T23:59:59.0a0Z", "+023-01-01T23:59:59.000Z"}) {
    CAPTURE(bad);
    CHECK_FALSE(core::parse_time(bad));
  }
}

TEST_CASE("parse_time rejects text that is not a UTC timestamp") {
  const char* bad[] = {
      "",
      "yesterday",
      "2023-11-14",
      "2023-11-14T22:13",
      "2023-11-14T22:13:20",          // no Z
      "2023-11-14T22:13:20.123",      // no Z
      "2023-11-14T22:13:20+01:00",    // offsets are not written by us
      "2023-11-14T22:13:20.123Zjunk",
      "2023-11-14 22:13:20Z",
  };
  for (const char* text : bad) {
    CAPTURE(text);
    CHECK_FALSE(core::parse_time(text).has_value());
  }
}

TEST_CASE("parse_time rejects out-of-range fields") {
  // Accepting these silently normalizes them (month 13 becomes January of the
  // next year), so a corrupt document reads as a plausible but wrong time.
  CHECK_FALSE(core::parse_time("2023-13-01T00:00:00.000Z").has_value());
  CHECK_FALSE(core::parse_time("2023-02-30T00:00:00.000Z").has_value());
  CHECK_FALSE(core::parse_time("2023-11-14T25:00:00.000Z").has_value());
  CHECK_FALSE(core::parse_time("2023-11-14T22:61:00.000Z").has_value());
}

TEST_CASE("now_millis honours GIGAFAB_NOW in milliseconds or RFC 3339") {
  const char* previous = std::getenv("GIGAFAB_NOW");
  std::string saved = previous ? previous : "";
  ::setenv("GIGAFAB_NOW", "1700000000123", 1);
  CHECK(core::now_millis() == 1700000000123);
  ::setenv("GIGAFAB_NOW", "2023-11-14T22:13:20.500Z", 1);
  CHECK(core::now_millis() == 1700000000500);
  ::unsetenv("GIGAFAB_NOW");
  core::Millis now = core::now_millis();
  CHECK(now > 1700000000000);  // after 2023
  if (previous) ::setenv("GIGAFAB_NOW", saved.c_str(), 1);
}

TEST_CASE("parse_duration reads seconds, minutes, hours and combinations") {
  auto seconds = [](const char* text) {
    auto r = core::parse_duration(text);
    REQUIRE_MESSAGE(r.ok(), text);
    return *r;
  };
  CHECK(seconds("90s") == 90);
  CHECK(seconds("45m") == 45 * 60);
  CHECK(seconds("2h") == 2 * 3600);
  CHECK(seconds("1h30m") == 5400);
  CHECK(seconds("1h30m15s") == 5415);
  CHECK(seconds("0s") == 0);
  CHECK(seconds("1s") == 1);
  CHECK(seconds("100h") == 360000);
}

TEST_CASE("parse_duration rejects malformed durations with a usage error naming the text") {
  const char* bad[] = {"", "5", "m", "5x", "-5m", "h1", "1h30", "1.5h", " 5m", "5m ", "5 m", "5M", "+5m", "1d"};
  for (const char* text : bad) {
    CAPTURE(text);
    auto r = core::parse_duration(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
    CHECK(r.error().message.find("'" + std::string(text) + "'") != std::string::npos);
  }
}

TEST_CASE("parse_duration rejects absurdly large numbers instead of overflowing") {
  auto r = core::parse_duration("99999999999999999999999s");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::usage);
}

TEST_CASE("format_duration renders the largest units first") {
  CHECK(core::format_duration(0) == "0s");
  CHECK(core::format_duration(1) == "1s");
  CHECK(core::format_duration(59) == "59s");
  CHECK(core::format_duration(60) == "1m");
  CHECK(core::format_duration(90) == "1m30s");
  CHECK(core::format_duration(2700) == "45m");
  CHECK(core::format_duration(3600) == "1h");
  CHECK(core::format_duration(3601) == "1h1s");
  CHECK(core::format_duration(5400) == "1h30m");
  CHECK(core::format_duration(7200) == "2h");
  CHECK(core::format_duration(90061) == "25h1m1s");
}

TEST_CASE("format_duration and parse_duration round trip") {
  for (std::int64_t s : {0, 1, 59, 60, 61, 3599, 3600, 3661, 86400, 1000000}) {
    CAPTURE(s);
    auto back = core::parse_duration(core::format_duration(s));
    REQUIRE(back.ok());
    CHECK(*back == s);
  }
}
