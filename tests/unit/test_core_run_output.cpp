#include <doctest/doctest.h>

#include "core/run_output.hpp"

using namespace gigafab;

namespace {

const std::string k_job = "j-abcdefgh";

// Appends and applies; returns the end the append reported.
std::int64_t append(core::MemorySnapshot& logs, std::int64_t offset, std::string_view text, std::int64_t epoch = 1) {
  auto appended = core::append_run_output(logs, k_job, epoch, offset, text);
  REQUIRE(appended.ok());
  logs.apply(appended->change);
  return appended->end;
}

core::RunOutput read(const core::MemorySnapshot& logs, std::int64_t from, std::int64_t epoch = 1) {
  auto out = core::read_run_output(logs, k_job, epoch, from);
  REQUIRE(out.ok());
  return *out;
}

}  // namespace

TEST_CASE("run output: appends read back in order, from any byte") {
  core::MemorySnapshot logs;
  CHECK(append(logs, 0, "hello ") == 6);
  CHECK(append(logs, 6, "world\n") == 12);
  auto all = read(logs, 0);
  CHECK(all.text == "hello world\n");
  CHECK(all.start == 0);
  CHECK(all.end == 12);
  CHECK(all.from == 0);
  CHECK(all.job == k_job);
  auto rest = read(logs, 8);
  CHECK(rest.text == "rld\n");
  CHECK(rest.from == 8);
  auto none = read(logs, 12);
  CHECK(none.text.empty());
  CHECK(none.end == 12);
  // Past the end: nothing, and from is clamped to the end.
  CHECK(read(logs, 99).from == 12);
  // The chunks live under <shard>/<job>/<epoch>/<offset>.
  CHECK(logs.read("ab/j-abcdefgh/1/000000000006")->value() == "world\n");
  // Other runs are separate.
  CHECK(read(logs, 0, 2).text.empty());
}

TEST_CASE("run output: a retried append stores nothing twice") {
  core::MemorySnapshot logs;
  append(logs, 0, "abc");
  auto again = core::append_run_output(logs, k_job, 1, 0, "abc");
  REQUIRE(again.ok());
  CHECK(again->change.empty());
  CHECK(again->end == 3);
  // Overlapping: only the new part is stored.
  CHECK(append(logs, 1, "bcdef") == 6);
  CHECK(read(logs, 0).text == "abcdef");
  // An overlap never cuts a character in two: "é" is two bytes.
  core::MemorySnapshot utf;
  append(utf, 0, "a\xC3\xA9");  // a é: 3 bytes
  CHECK(append(utf, 2, "\xC3\xA9x") == 5);  // skips to the next character: the gap is one byte
  CHECK(core::is_utf8(read(utf, 0).text));
}

TEST_CASE("run output: a run keeps its last MiB and says where it starts") {
  core::MemorySnapshot logs;
  std::string piece(core::k_output_append_limit, 'x');
  std::int64_t at = 0;
  for (int i = 0; i < 6; ++i) at = append(logs, at, piece);
  CHECK(at == 6 * static_cast<std::int64_t>(core::k_output_append_limit));
  auto out = read(logs, 0);
  CHECK(out.end == at);
  CHECK(out.start > 0);
  CHECK(out.from == out.start);
  CHECK(out.end - out.start <= core::k_run_output_limit);
  CHECK(static_cast<std::int64_t>(out.text.size()) == out.end - out.start);
  auto kept = logs.list("ab/j-abcdefgh/1");
  REQUIRE(kept.ok());
  CHECK(kept->size() == 4);
}

TEST_CASE("run output: a gap left by the writer is skipped by readers") {
  core::MemorySnapshot logs;
  append(logs, 0, "head\n");
  CHECK(append(logs, 100, "tail\n") == 105);
  CHECK(read(logs, 0).text == "head\ntail\n");
  auto after_gap = read(logs, 50);
  CHECK(after_gap.from == 100);
  CHECK(after_gap.text == "tail\n");
}

TEST_CASE("run output: bad input is refused and writes nothing") {
  core::MemorySnapshot logs;
  auto check_usage = [&](const std::string& job, std::int64_t epoch, std::int64_t offset, std::string_view text) {
    auto r = core::append_run_output(logs, job, epoch, offset, text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
  };
  check_usage("j-../etc", 1, 0, "x");
  check_usage(k_job, 0, 0, "x");
  check_usage(k_job, 1, -1, "x");
  check_usage(k_job, 1, 0, "bad \xFF byte");
  check_usage(k_job, 1, 0, std::string(core::k_output_append_limit + 1, 'x'));
  CHECK(logs.files().empty());
  CHECK_FALSE(core::read_run_output(logs, k_job, 1, -1).ok());
}

TEST_CASE("utf-8: validation rejects overlongs, surrogates and stray bytes") {
  CHECK(core::is_utf8("plain \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  CHECK_FALSE(core::is_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(core::is_utf8("\xED\xA0\x80"));      // a surrogate
  CHECK_FALSE(core::is_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(core::is_utf8("\x80"));
  CHECK_FALSE(core::is_utf8("\xE2\x82"));          // cut short
}

TEST_CASE("utf-8 stream: holds back a character split across reads, replaces bad bytes") {
  core::Utf8Stream s;
  CHECK(s.feed("a\xE2\x82") == "a");  // the euro sign's first two bytes wait
  CHECK(s.feed("\xAC b") == "\xE2\x82\xAC b");
  CHECK(s.feed("x\xFFy") == "x\xEF\xBF\xBDy");
  CHECK(s.feed("\xC3") == "");
  CHECK(s.feed("z") == "\xEF\xBF\xBDz");  // not a continuation: the lead byte is replaced
  CHECK(s.feed("\xF0\x9F") == "");
  CHECK(s.finish() == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(s.finish().empty());
}
