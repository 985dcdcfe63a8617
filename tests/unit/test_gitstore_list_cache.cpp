// Unit tests for `list --json` through the row cache (core::list_job_rows,
// gitstore/list_cache.hpp): the document is byte for byte the one built from
// every job.toml, cold or warm, after a transition, and with a damaged cache.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/json.hpp"
#include "core/layout.hpp"
#include "core/manifest.hpp"
#include "core/queries.hpp"
#include "core/submit.hpp"
#include "gitstore/list_cache.hpp"
#include "gitstore/local_fleet.hpp"
#include "gitstore/store.hpp"
#include "scratch_fleet.hpp"

using namespace gigafab;

namespace {

struct ScratchFleet : testing::ScratchFleet {
  ScratchFleet() : testing::ScratchFleet("list") {}
  void submit(const std::string& title, const std::string& product) {
    auto manifest = core::parse_manifest("---\ntitle: " + title + "\n---\nbody of " + title + "\n", "test");
    REQUIRE(manifest.ok());
    auto done = fleet->submit(core::SubmitInput{*manifest, product});
    REQUIRE(done.ok());
  }
  // What `list --json` printed before the cache: every job parsed.
  std::string parsed_document(const core::JobFilter& filter) {
    auto jobs = fleet->list(filter);
    REQUIRE(jobs.ok());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& job : *jobs) list.push_back(core::job_to_json(job));
    return nlohmann::json{{"jobs", std::move(list)}}.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string cached_document(const core::JobFilter& filter) {
    auto doc = fleet->list_document(filter);
    REQUIRE(doc.ok());
    return *doc;
  }
  std::string cache_file() { return gitstore::list_cache_path(fleet->store().path()); }
};

}  // namespace

TEST_CASE("list document: the same bytes as parsing every job, cold, warm, after a change and from a damaged cache") {
  ScratchFleet s;
  core::JobFilter all;
  CHECK(s.cached_document(all) == s.parsed_document(all));  // no jobs at all
  for (int i = 0; i < 12; ++i) s.submit("job \"" + std::to_string(i) + "\" \xc3\xa9", i % 3 ? "alpha" : "beta");
  const std::string cold = s.cached_document(all);
  CHECK(cold == s.parsed_document(all));
  REQUIRE(std::filesystem::exists(s.cache_file()));
  CHECK(gitstore::load_list_cache(s.cache_file()).size() == 12);

  // A new process (a new fleet) reads the rows from the file.
  std::string path = s.fleet->store().path();
  {
    auto reopened = gitstore::Store::open(path);
    REQUIRE(reopened.ok());
    gitstore::LocalFleet other(std::move(*reopened), "tester", std::nullopt);
    auto warm = other.list_document(all);
    REQUIRE(warm.ok());
    CHECK(*warm == cold);
  }

  // A claim changes one job: its row is read again, the others come from the cache.
  auto claimed = s.fleet->claim(core::ClaimInput{"alpha", "f1", std::vector<std::string>{}, 60, 0});
  REQUIRE(claimed.ok());
  CHECK(s.cached_document(all) == s.parsed_document(all));
  CHECK(s.cached_document(all) != cold);
  core::JobFilter assigned{"alpha", {core::Stage::assigned}};
  CHECK(s.cached_document(assigned) == s.parsed_document(assigned));
  CHECK(s.cached_document(assigned).find(claimed->job.id) != std::string::npos);
  core::JobFilter beta{"beta", {}};
  CHECK(s.cached_document(beta) == s.parsed_document(beta));

  // Damaged files are ignored: a flipped byte, a truncated file, garbage.
  std::string bytes;
  {
    std::ifstream in(s.cache_file(), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  REQUIRE(bytes.size() > 100);
  // Byte 30 is in the header's row shape: rows of another gigafab's shape.
  for (std::string damaged : {bytes.substr(0, bytes.size() / 2), std::string("not a cache"),
                              bytes.substr(0, 60) + char(bytes[60] ^ 1) + bytes.substr(61),
                              bytes.substr(0, 30) + char(bytes[30] == '0' ? '1' : '0') + bytes.substr(31)}) {
    CHECK(gitstore::load_list_cache(s.cache_file() + ".missing").size() == 0);
    {
      std::ofstream out(s.cache_file(), std::ios::binary | std::ios::trunc);
      out << damaged;
    }
    CHECK(gitstore::load_list_cache(s.cache_file()).size() == 0);
    auto reopened = gitstore::Store::open(path);
    REQUIRE(reopened.ok());
    gitstore::LocalFleet other(std::move(*reopened), "tester", std::nullopt);
    auto doc = other.list_document(all);
    REQUIRE(doc.ok());
    CHECK(*doc == s.parsed_document(all));
    CHECK(gitstore::load_list_cache(s.cache_file()).size() == 12);  // rewritten whole
  }
}

TEST_CASE("list cache: a save removes the temporary files of saves killed long ago, not a recent one") {
  ScratchFleet s;
  s.submit("one", "alpha");
  const std::string old_tmp = s.cache_file() + ".tmp-AbC123";
  const std::string recent_tmp = s.cache_file() + ".tmp-XyZ789";
  for (const auto& file : {old_tmp, recent_tmp}) std::ofstream(file) << "half a cache";
  std::filesystem::last_write_time(old_tmp, std::filesystem::file_time_type::clock::now() - std::chrono::hours(1));
  core::JobFilter all{"alpha", {}};
  CHECK(s.cached_document(all) == s.parsed_document(all));  // the first listing saves the cache
  CHECK_FALSE(std::filesystem::exists(old_tmp));
  CHECK(std::filesystem::exists(recent_tmp));  // maybe a save still being written
  CHECK(gitstore::load_list_cache(s.cache_file()).size() == 1);
}

TEST_CASE("list cache: loaded rows keep their JSON in the file; the document written a part at a time is the same") {
  ScratchFleet s;
  for (int i = 0; i < 30; ++i) s.submit("job " + std::to_string(i), "alpha");
  core::JobFilter all;
  const std::string whole = s.cached_document(all);  // saves the cache
  CHECK(whole == s.parsed_document(all));

  auto reopened = gitstore::Store::open(s.fleet->store().path());
  REQUIRE(reopened.ok());
  gitstore::LocalFleet other(std::move(*reopened), "tester", std::nullopt);
  auto listing = other.list_rows(all);
  REQUIRE(listing.ok());
  REQUIRE(listing->rows.size() == 30);
  for (const core::JobRow* row : listing->rows) {
    CHECK(row->json.empty());  // only the fields listing sorts and filters by are in memory
    CHECK(row->stored_size > 0);
    std::string buffer;
    auto text = listing->cache->text(*row, buffer);
    REQUIRE(text.ok());
    CHECK(nlohmann::json::parse(*text)["id"] == row->id);
  }
  // A budget of one byte: the opening, then a row per part, and the same bytes in the end.
  core::JobRowsWriter writer(*listing);
  std::string parts;
  int count = 0;
  for (;;) {
    auto more = writer.next(parts, 1);
    REQUIRE(more.ok());
    if (!*more) break;
    ++count;
  }
  CHECK(count == 31);
  CHECK(parts == whole);

  // The cache file replaced meanwhile (another process saved): the listing
  // still reads the file it was loaded from.
  const std::string replaced = s.cache_file() + ".other";
  {
    std::ofstream out(replaced, std::ios::binary);
    out << "not a cache";
  }
  std::filesystem::rename(replaced, s.cache_file());
  core::JobRowsWriter again(*listing);
  std::string after;
  for (;;) {
    auto more = again.next(after, 4096);
    REQUIRE(more.ok());
    if (!*more) break;
  }
  CHECK(after == whole);
}

TEST_CASE("list document: a cold listing of many jobs (parsed on two threads) is the same bytes; a corrupt job fails it") {
  ScratchFleet s;
  // Enough jobs to be parsed by two threads, in one commit.
  auto committed = s.fleet->store().transact(
      [&](const core::Snapshot& snap) -> core::Result<core::Change> {
        core::Change all;
        for (int i = 0; i < 700; ++i) {
          core::OverlaySnapshot view(snap, all);
          auto manifest = core::parse_manifest("---\ntitle: bulk " + std::to_string(i) + "\n---\nbody\n", "test");
          REQUIRE(manifest.ok());
          core::SubmitRequest request{*manifest, i % 2 ? "alpha" : "beta", std::nullopt, "tester"};
          auto result = core::submit(view, request, 1'764'000'000'000 + i, static_cast<std::uint64_t>(i) * 7919 + 1);
          REQUIRE(result.ok());
          for (auto& [path, content] : result->change.writes) all.writes[path] = std::move(content);
        }
        all.summary = "bulk";
        all.trailers = {{"Gigafab-Op", "bulk"}};
        return all;
      },
      "tester");
  REQUIRE(committed.ok());
  core::JobFilter all;
  const std::string parsed = s.parsed_document(all);
  CHECK(s.cached_document(all) == parsed);  // cold
  CHECK(gitstore::load_list_cache(s.cache_file()).size() == 700);
  CHECK(s.cached_document(all) == parsed);  // warm
  core::JobFilter alpha{"alpha", {}};
  std::filesystem::remove(s.cache_file());
  CHECK(s.cached_document(alpha) == s.parsed_document(alpha));

  // One job document that does not parse: the listing fails, naming it.
  auto jobs = s.fleet->list(all);
  REQUIRE(jobs.ok());
  const std::string broken = core::layout::job_doc((*jobs)[350].id);
  auto wrote = s.fleet->store().transact(
      [&](const core::Snapshot&) -> core::Result<core::Change> {
        core::Change change;
        change.put(broken, "not = [toml");
        change.summary = "break one job";
        change.trailers = {{"Gigafab-Op", "break"}};
        return change;
      },
      "tester");
  REQUIRE(wrote.ok());
  std::filesystem::remove(s.cache_file());
  auto listing = s.fleet->list_document(all);
  REQUIRE_FALSE(listing.ok());
  CHECK(listing.error().message.find(broken) != std::string::npos);
}
