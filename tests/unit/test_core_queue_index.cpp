// Unit tests for core/queue_index.hpp: the bucketed queue index keeps every
// entry findable, in order, in buckets of one rank and at most k_bucket_max,
// through any sequence of adds and removes (checked against a plain set).
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/ids.hpp"
#include "core/layout.hpp"
#include "core/queue_index.hpp"
#include "core/snapshot.hpp"

using namespace gigafab;
namespace qi = core::queue_index;
namespace layout = core::layout;

namespace {

core::Job make_job(std::uint64_t bits, core::Priority priority, core::Millis created) {
  core::Job job;
  job.id = core::new_job_id(bits);
  job.product = "default";
  job.priority = priority;
  job.created_at = created;
  job.capabilities = {"linux"};
  return job;
}

void apply(core::MemorySnapshot& snap, const core::Change& change) { snap.apply(change); }

// Checks every invariant of the index against the jobs that should be in it.
void check_index(const core::MemorySnapshot& snap, const std::map<std::string, core::Job>& present) {
  std::string dir = qi::capset_dir("default", "linux");
  auto buckets = qi::buckets(snap, dir);
  REQUIRE(buckets.ok());
  // Each sequence (rank, hinted), its buckets taken in name order, is in order.
  std::map<std::pair<char, bool>, std::vector<std::string>> sequences;
  for (const auto& bucket : *buckets) {
    auto names = snap.list(bucket.path);
    REQUIRE(names.ok());
    CHECK_FALSE(names->empty());
    CHECK(names->size() <= qi::k_bucket_max);
    for (const auto& name : *names) {
      auto parsed = layout::parse_queued_entry_name(name);
      REQUIRE(parsed.has_value());
      CHECK(name[0] == bucket.rank);
      CHECK((parsed->has_engine || parsed->has_last_factory) == bucket.hinted);
      sequences[{bucket.rank, bucket.hinted}].push_back(name);
    }
  }
  std::vector<std::string> all;
  for (const auto& [key, names] : sequences) {
    CHECK(std::is_sorted(names.begin(), names.end()));
    all.insert(all.end(), names.begin(), names.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<std::string> expected;
  for (const auto& [name, job] : present) expected.push_back(name);  // a std::map: sorted
  CHECK(all == expected);
  auto listed = qi::entries(snap, dir);
  REQUIRE(listed.ok());
  std::sort(listed->begin(), listed->end());
  CHECK(*listed == expected);
  for (const auto& [name, job] : present) {
    auto path = qi::find(snap, job);
    REQUIRE(path.ok());
    REQUIRE(path->has_value());
    CHECK(snap.read(**path).value() == std::optional<std::string>(layout::queued_entry_document(job)));
  }
}

}  // namespace

TEST_CASE("the first entry of a rank makes a bucket named after it; later ones join it") {
  core::MemorySnapshot snap;
  core::Job a = make_job(1, core::Priority::normal, 1000);
  core::Job b = make_job(2, core::Priority::normal, 2000);
  core::Job early = make_job(3, core::Priority::normal, 500);
  core::Job urgent = make_job(4, core::Priority::critical, 3000);
  for (const core::Job* job : {&a, &b, &early, &urgent}) {
    core::Change change;
    REQUIRE(qi::add(snap, change, *job).ok());
    apply(snap, change);
  }
  std::string dir = "index/queued/default/linux/";
  std::string bucket = "@" + layout::queued_entry_name(a);
  CHECK(snap.read(dir + bucket + "/" + layout::queued_entry_name(a))->has_value());
  CHECK(snap.read(dir + bucket + "/" + layout::queued_entry_name(b))->has_value());
  // Older than every bucket of its rank: the rank's first bucket takes it.
  CHECK(snap.read(dir + bucket + "/" + layout::queued_entry_name(early))->has_value());
  // Another rank, another bucket.
  std::string critical = "@" + layout::queued_entry_name(urgent);
  CHECK(snap.read(dir + critical + "/" + layout::queued_entry_name(urgent))->has_value());

  core::Change removal;
  REQUIRE(qi::remove(snap, removal, urgent).ok());
  apply(snap, removal);
  CHECK(snap.list(dir + critical)->empty());  // an emptied bucket vanishes
  CHECK(qi::buckets(snap, "index/queued/default/linux")->size() == 1);
}

TEST_CASE("a full bucket splits in two ordered halves, also when it holds entries before its name") {
  core::MemorySnapshot snap;
  std::map<std::string, core::Job> present;
  // Newest first, so every later entry sorts before the bucket's name.
  for (std::size_t i = 0; i <= qi::k_bucket_max; ++i) {
    core::Job job = make_job(100 + i, core::Priority::low, 1'000'000 - static_cast<core::Millis>(i));
    core::Change change;
    REQUIRE(qi::add(snap, change, job).ok());
    apply(snap, change);
    present[layout::queued_entry_name(job)] = job;
  }
  auto buckets = qi::buckets(snap, "index/queued/default/linux");
  REQUIRE(buckets.ok());
  CHECK(buckets->size() == 2);
  check_index(snap, present);
}

TEST_CASE("any sequence of adds and removes keeps the index ordered, bounded and findable") {
  std::mt19937_64 rng(20261128);
  core::MemorySnapshot snap;
  std::map<std::string, core::Job> present;
  std::uint64_t next_id = 1;
  for (int step = 0; step < 3000; ++step) {
    core::Change change;
    // Several operations per change, as a group commit or an unblock makes them.
    int ops = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < ops; ++k) {
      bool add = present.empty() || rng() % 100 < 66;
      if (add) {
        auto priority = static_cast<core::Priority>(rng() % 4);
        core::Job job = make_job(next_id++, priority, static_cast<core::Millis>(rng() % 100000));
        if (rng() % 5 == 0) job.engine = "claude";
        if (rng() % 7 == 0) job.last_factory = "f1";
        if (present.count(layout::queued_entry_name(job))) continue;
        REQUIRE(qi::add(snap, change, job).ok());
        present[layout::queued_entry_name(job)] = job;
      } else {
        // Mostly the front (claims), sometimes anywhere (cancel, preempt).
        auto it = present.begin();
        if (rng() % 4 == 0) std::advance(it, static_cast<long>(rng() % present.size()));
        REQUIRE(qi::remove(snap, change, it->second).ok());
        present.erase(it);
      }
    }
    apply(snap, change);
    if (step % 200 == 0 || step == 2999) check_index(snap, present);
  }
  CHECK(qi::buckets(snap, "index/queued/default/linux")->size() > 8);  // buckets have split
}

TEST_CASE("migrate_flat moves format-1 entries into buckets of one rank, half full") {
  std::map<std::string, std::string> files;
  std::map<std::string, core::Job> present;
  for (std::uint64_t i = 0; i < 300; ++i) {
    core::Job job = make_job(500 + i, i % 2 ? core::Priority::high : core::Priority::low, static_cast<core::Millis>(i));
    std::string format_1_name = layout::queued_entry_name(job);  // no hints then
    if (i % 10 == 0) job.engine = "codex";                     // format 2 names it "...-e"
    files["index/queued/default/linux/" + format_1_name] = layout::queued_entry_document(job);
    present[layout::queued_entry_name(job)] = job;
  }
  core::MemorySnapshot snap(files);
  core::Change change;
  auto moved = qi::migrate_flat(snap, change);
  REQUIRE(moved.ok());
  CHECK(*moved);
  apply(snap, change);
  check_index(snap, present);
  // High: 150 plain entries (2 buckets of at most 128); low: 120 plain and 30 hinted (a bucket each).
  CHECK(qi::buckets(snap, "index/queued/default/linux")->size() == 4);
  core::Change again;
  CHECK_FALSE(*qi::migrate_flat(snap, again));
  CHECK(again.empty());
}
