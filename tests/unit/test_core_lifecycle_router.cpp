// Claim-level tests of the router (core/lifecycle.hpp claim and preempt_one):
// seats, capability routing, aging, deferral to a better-fitting factory and
// preemption. Jobs are submitted with core::submit into a MemorySnapshot and
// every returned Change is applied to it.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/factories.hpp"
#include "core/job.hpp"
#include "core/layout.hpp"
#include "core/lifecycle.hpp"
#include "core/manifest.hpp"
#include "core/queries.hpp"
#include "core/queue_index.hpp"
#include "core/router.hpp"
#include "core/snapshot.hpp"
#include "core/submit.hpp"

using namespace gigafab;
namespace layout = gigafab::core::layout;

namespace {

constexpr core::Millis k_t0 = 1700000000000;
constexpr core::Millis k_second = 1000;
constexpr core::Millis k_minute = 60 * k_second;
const std::string k_product = "default";

std::string submit_job(core::MemorySnapshot& snap, std::vector<std::string> caps, core::Priority priority,
                       core::Millis now, std::uint64_t bits) {
  core::SubmitRequest req;
  req.manifest.title = "job " + std::to_string(bits);
  req.manifest.capabilities = std::move(caps);
  req.manifest.priority = priority;
  req.manifest.body = "# job\n";
  req.product = k_product;
  req.actor = "alice@laptop";
  auto r = core::submit(snap, req, now, bits);
  if (!r) FAIL("submit failed: " << r.error().message);
  snap.apply(r->change);
  return r->job_id;
}

void register_factory(core::MemorySnapshot& snap, const std::string& id, std::vector<std::string> caps,
                      std::int64_t seats, core::Millis now) {
  core::HeartbeatInput in;
  in.factory = id;
  in.product = k_product;
  in.capabilities = std::move(caps);
  in.seats = seats;
  in.actor = "ops";
  auto r = core::register_factory(snap, in, now);
  if (!r) FAIL("register_factory failed: " << r.error().message);
  snap.apply(*r);
}

core::ClaimRequest claim_request(const std::string& factory, std::map<std::string, core::Liveness> liveness) {
  core::ClaimRequest req;
  req.product = k_product;
  req.factory = factory;
  req.actor = factory + "-worker";
  req.liveness = std::move(liveness);
  return req;
}

// Claims and applies; returns the claimed job id.
std::string claim_ok(core::MemorySnapshot& snap, const core::ClaimRequest& req, core::Millis now) {
  auto r = core::claim(snap, req, now);
  if (!r) FAIL("claim by " << req.factory << " failed: " << r.error().message);
  snap.apply(r->change);
  return r->job.id;
}

core::Job job_in(const core::MemorySnapshot& snap, const std::string& id) {
  auto job = core::load_job(snap, id, "");
  if (!job) FAIL("cannot load " << id << ": " << job.error().message);
  return *job;
}

bool exists(const core::MemorySnapshot& snap, const std::string& path) { return snap.files().count(path) == 1; }

}  // namespace

TEST_CASE("claim: a registered factory never holds more leases than its seats") {
  core::MemorySnapshot snap;
  register_factory(snap, "f1", {"linux"}, 1, k_t0);
  std::string high = submit_job(snap, {"linux"}, core::Priority::high, k_t0, 1);
  std::string normal = submit_job(snap, {"linux"}, core::Priority::normal, k_t0, 2);
  std::map<std::string, core::Liveness> liveness{{"f1", {k_t0, 0}}};
  auto req = claim_request("f1", liveness);

  core::Millis now = k_t0 + k_second;
  auto first = core::claim(snap, req, now);
  REQUIRE(first.ok());
  CHECK(first->job.id == high);
  CHECK(first->job.stage == core::Stage::assigned);
  REQUIRE(first->lease.has_value());
  CHECK(first->lease->holder == "f1");
  CHECK(first->lease->epoch == 1);
  snap.apply(first->change);
  CHECK(exists(snap, layout::held_dir("f1") + "/" + high));
  CHECK(*core::seats_used(snap, "f1") == 1);

  auto second = core::claim(snap, req, now + k_second);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().code == core::ErrorCode::nothing_to_claim);
  CHECK(second.error().message.find("seats in use") != std::string::npos);

  // Releasing the first job frees the seat.
  core::WorkerCall call{high, "f1", 1, k_product, "f1-worker"};
  auto released = core::release(snap, call, now + 2 * k_second);
  REQUIRE(released.ok());
  snap.apply(released->change);
  CHECK(*core::seats_used(snap, "f1") == 0);
  CHECK(job_in(snap, high).stage == core::Stage::queued);

  auto third = core::claim(snap, req, now + 3 * k_second);
  REQUIRE(third.ok());
  CHECK(third->job.id == high);  // still the higher priority
  CHECK(third->lease->epoch == 2);
  snap.apply(third->change);
  CHECK(*core::seats_used(snap, "f1") == 1);
  CHECK(job_in(snap, normal).stage == core::Stage::queued);

  // With two seats the same factory takes the second job too.
  register_factory(snap, "f1", {"linux"}, 2, now + 4 * k_second);
  CHECK(claim_ok(snap, req, now + 5 * k_second) == normal);
  CHECK(*core::seats_used(snap, "f1") == 2);
}

TEST_CASE("claim: a job needing xcode is not claimed by a linux factory") {
  core::MemorySnapshot snap;
  register_factory(snap, "linux-1", {"linux"}, 4, k_t0);
  register_factory(snap, "mac-1", {"macos", "xcode"}, 4, k_t0);
  std::map<std::string, core::Liveness> liveness{{"linux-1", {k_t0, 0}}, {"mac-1", {k_t0, 0}}};
  std::string ios = submit_job(snap, {"xcode"}, core::Priority::critical, k_t0, 1);
  core::Millis now = k_t0 + k_second;

  auto r = core::claim(snap, claim_request("linux-1", liveness), now);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::nothing_to_claim);
  CHECK(r.error().message.find("1 queued") != std::string::npos);

  // An unregistered factory offering only linux does not get it either.
  auto adhoc = claim_request("laptop", liveness);
  adhoc.capabilities = std::vector<std::string>{"linux"};
  auto r2 = core::claim(snap, adhoc, now);
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().code == core::ErrorCode::nothing_to_claim);

  // A lower-priority linux job goes to the linux factory, the xcode job stays.
  std::string web = submit_job(snap, {"linux"}, core::Priority::low, k_t0, 2);
  CHECK(claim_ok(snap, claim_request("linux-1", liveness), now) == web);
  CHECK(job_in(snap, ios).stage == core::Stage::queued);
  CHECK(claim_ok(snap, claim_request("mac-1", liveness), now) == ios);
}

TEST_CASE("claim: an aged low-priority job is claimed before a younger critical one") {
  struct Row {
    const char* name;
    core::Millis wait;   // how long after the low job the critical one arrives (and the claim happens)
    bool low_first;
  };
  const Row rows[] = {
      {"31 min: aged to critical, and older", 31 * k_minute, true},
      {"29 min: only aged to high", 29 * k_minute, false},
      {"1 min: still low", k_minute, false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    core::MemorySnapshot snap;
    register_factory(snap, "f1", {"linux"}, 1, k_t0);
    std::string low = submit_job(snap, {"linux"}, core::Priority::low, k_t0, 1);
    std::string critical = submit_job(snap, {"linux"}, core::Priority::critical, k_t0 + row.wait, 2);
    core::Millis now = k_t0 + row.wait;
    std::map<std::string, core::Liveness> liveness{{"f1", {now, 0}}};
    auto r = core::claim(snap, claim_request("f1", liveness), now);
    REQUIRE(r.ok());
    CHECK(r->job.id == (row.low_first ? low : critical));
  }
}

TEST_CASE("claim: a fresh job is left for a clearly better-fitting factory until the defer window passes") {
  // A: exactly the job's capabilities, idle. B: extra capabilities, busy.
  auto setup = [](core::MemorySnapshot& snap) {
    register_factory(snap, "fab-a", {"linux"}, 1, k_t0);
    register_factory(snap, "fab-b", {"linux", "macos", "xcode"}, 1, k_t0);
    return submit_job(snap, {"linux"}, core::Priority::normal, k_t0, 7);
  };
  auto liveness_at = [](core::Millis now, core::Millis a_seen) {
    return std::map<std::string, core::Liveness>{{"fab-a", {a_seen, 0}}, {"fab-b", {now, 5}}};
  };
  REQUIRE(core::RouterSettings{}.defer_window == 120);

  SUBCASE("fresh: B defers, A takes it") {
    core::MemorySnapshot snap;
    std::string id = setup(snap);
    core::Millis now = k_t0 + k_second;
    auto r = core::claim(snap, claim_request("fab-b", liveness_at(now, now)), now);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::nothing_to_claim);
    CAPTURE(r.error().message);
    CHECK(r.error().message.find("better-fitting") != std::string::npos);
    CHECK(job_in(snap, id).stage == core::Stage::queued);
    CHECK(claim_ok(snap, claim_request("fab-a", liveness_at(now, now)), now) == id);
  }
  SUBCASE("older than the defer window: B takes it") {
    const core::Millis ages[] = {120 * k_second, 121 * k_second, 10 * k_minute};
    for (core::Millis age : ages) {
      CAPTURE(age);
      core::MemorySnapshot snap;
      std::string id = setup(snap);
      core::Millis now = k_t0 + age;
      auto r = core::claim(snap, claim_request("fab-b", liveness_at(now, now)), now);
      REQUIRE(r.ok());
      CHECK(r->job.id == id);
      CHECK(r->lease->holder == "fab-b");
    }
  }
  SUBCASE("just inside the defer window: still deferred") {
    core::MemorySnapshot snap;
    setup(snap);
    core::Millis now = k_t0 + 120 * k_second - 1;
    auto r = core::claim(snap, claim_request("fab-b", liveness_at(now, now)), now);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::nothing_to_claim);
  }
  SUBCASE("the better factory is not healthy: B takes it at once") {
    core::MemorySnapshot snap;
    std::string id = setup(snap);
    core::Millis now = k_t0 + k_second;
    const core::Millis a_ages[] = {45 * k_second /* degraded */, 10 * k_minute /* down */};
    for (core::Millis a_age : a_ages) {
      CAPTURE(a_age);
      auto r = core::claim(snap, claim_request("fab-b", liveness_at(now, now - a_age)), now);
      REQUIRE(r.ok());
      CHECK(r->job.id == id);
    }
  }
  SUBCASE("the better factory has no free seat: B takes it at once") {
    core::MemorySnapshot snap;
    std::string id = setup(snap);
    core::Change busy;
    busy.put(layout::held_dir("fab-a") + "/j-zzzzzzzz", "priority = \"normal\"\n");
    snap.apply(busy);
    core::Millis now = k_t0 + k_second;
    auto r = core::claim(snap, claim_request("fab-b", liveness_at(now, now)), now);
    REQUIRE(r.ok());
    CHECK(r->job.id == id);
  }
}

TEST_CASE("preempt_one evicts the lowest-priority running job for a critical job only a full factory fits") {
  core::MemorySnapshot snap;
  register_factory(snap, "linux-1", {"linux"}, 1, k_t0);
  register_factory(snap, "mac-1", {"macos"}, 1, k_t0);  // free, but does not fit
  std::string low = submit_job(snap, {"linux"}, core::Priority::low, k_t0, 1);
  auto liveness = [](core::Millis now) {
    return std::map<std::string, core::Liveness>{{"linux-1", {now, 0}}, {"mac-1", {now, 0}}};
  };
  core::Millis now = k_t0 + k_second;
  REQUIRE(claim_ok(snap, claim_request("linux-1", liveness(now)), now) == low);
  REQUIRE(job_in(snap, low).lease_epoch == 1);
  std::string critical = submit_job(snap, {"linux"}, core::Priority::critical, k_t0 + 2 * k_second, 2);
  now = k_t0 + 3 * k_second;

  // Nothing happens while preemption is off for the product and not forced.
  auto off = core::preempt_one(snap, k_product, liveness(now), false, "reaper", now);
  REQUIRE(off.ok());
  CHECK(off->change.empty());

  auto on = core::preempt_one(snap, k_product, liveness(now), true, "reaper", now);
  REQUIRE(on.ok());
  REQUIRE_FALSE(on->change.empty());
  CHECK(on->job.id == low);
  CHECK(on->job.stage == core::Stage::queued);
  CHECK(on->job.lease_epoch == 2);
  CHECK_FALSE(on->lease.has_value());
  snap.apply(on->change);

  core::Job victim = job_in(snap, low);
  CHECK(victim.stage == core::Stage::queued);
  CHECK(victim.lease_epoch == 2);
  CHECK(core::queue_index::find(snap, victim)->has_value());
  CHECK_FALSE(exists(snap, layout::held_dir("linux-1") + "/" + low));
  CHECK_FALSE(exists(snap, layout::job_lease(low)));
  CHECK(*core::seats_used(snap, "linux-1") == 0);
  auto runs = core::list_runs(snap, low);
  REQUIRE(runs.ok());
  REQUIRE(runs->size() == 1);
  CHECK(runs->front().result == "preempted");

  // The evicted holder is fenced.
  auto stale = core::start(snap, core::WorkerCall{low, "linux-1", 1, k_product, "linux-1-worker"}, now);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().code == core::ErrorCode::fenced);

  // The freed seat goes to the critical job; nothing further needs evicting.
  CHECK(claim_ok(snap, claim_request("linux-1", liveness(now)), now + k_second) == critical);
  auto again = core::preempt_one(snap, k_product, liveness(now), true, "reaper", now + 2 * k_second);
  REQUIRE(again.ok());
  CHECK(again->change.empty());
}

TEST_CASE("preempt_one follows the product setting and leaves placeable or equal-priority work alone") {
  auto liveness = [](core::Millis now) {
    return std::map<std::string, core::Liveness>{{"linux-1", {now, 0}}, {"linux-2", {now, 0}}};
  };
  auto setup = [&](core::MemorySnapshot& snap, core::Priority running_priority) {
    register_factory(snap, "linux-1", {"linux"}, 1, k_t0);
    std::string running = submit_job(snap, {"linux"}, running_priority, k_t0, 1);
    REQUIRE(claim_ok(snap, claim_request("linux-1", liveness(k_t0 + k_second)), k_t0 + k_second) == running);
    submit_job(snap, {"linux"}, core::Priority::critical, k_t0 + 2 * k_second, 2);
    return running;
  };
  const core::Millis now = k_t0 + 3 * k_second;

  SUBCASE("preemption = true in router.toml, not forced: evicts") {
    core::MemorySnapshot snap;
    std::string running = setup(snap, core::Priority::normal);
    core::RouterSettings settings;
    settings.preemption = true;
    core::Change change;
    change.put(layout::router_settings(k_product), core::settings_to_toml(settings));
    snap.apply(change);
    auto r = core::preempt_one(snap, k_product, liveness(now), false, "reaper", now);
    REQUIRE(r.ok());
    CHECK(r->job.id == running);
    CHECK_FALSE(r->change.empty());
  }
  SUBCASE("a fitting factory with a free seat: nothing to evict") {
    core::MemorySnapshot snap;
    setup(snap, core::Priority::low);
    register_factory(snap, "linux-2", {"linux"}, 1, now);
    auto r = core::preempt_one(snap, k_product, liveness(now), true, "reaper", now);
    REQUIRE(r.ok());
    CHECK(r->change.empty());
  }
  SUBCASE("with two full factories the victim is the lower-priority job, wherever it runs") {
    core::MemorySnapshot snap;
    register_factory(snap, "linux-1", {"linux"}, 1, k_t0);
    register_factory(snap, "linux-2", {"linux"}, 1, k_t0);
    std::string crit = submit_job(snap, {"linux"}, core::Priority::critical, k_t0, 1);
    std::string normal = submit_job(snap, {"linux"}, core::Priority::normal, k_t0, 2);
    std::string high = submit_job(snap, {"linux"}, core::Priority::high, k_t0, 3);
    REQUIRE(claim_ok(snap, claim_request("linux-1", liveness(now)), now) == crit);
    REQUIRE(claim_ok(snap, claim_request("linux-2", liveness(now)), now) == high);
    submit_job(snap, {"linux"}, core::Priority::critical, now, 4);
    auto r = core::preempt_one(snap, k_product, liveness(now), true, "reaper", now);
    REQUIRE(r.ok());
    CHECK(r->job.id == high);
    CHECK(job_in(snap, crit).stage == core::Stage::assigned);
    CHECK(job_in(snap, normal).stage == core::Stage::queued);
  }
  SUBCASE("critical never evicts critical") {
    core::MemorySnapshot snap;
    std::string running = setup(snap, core::Priority::critical);
    auto r = core::preempt_one(snap, k_product, liveness(now), true, "reaper", now);
    REQUIRE(r.ok());
    CHECK(r->change.empty());
    CHECK(job_in(snap, running).stage == core::Stage::assigned);
  }
}

TEST_CASE("claim: a younger job the factory ran before wins over hundreds of older plain ones") {
  // The claim stops reading plain entries after the first (their bound falls
  // with age), yet must still find a hinted entry further back in the queue.
  core::MemorySnapshot snap;
  std::vector<std::string> plain;
  for (std::uint64_t i = 0; i < 300; ++i) {
    plain.push_back(submit_job(snap, {}, core::Priority::normal, k_t0 + static_cast<core::Millis>(i), 100 + i));
  }
  std::string warm = submit_job(snap, {}, core::Priority::normal, k_t0 + 2 * k_second, 999);
  // As a release leaves it: queued again, remembering the factory that ran it.
  core::Job job = job_in(snap, warm);
  core::Change requeue;
  REQUIRE(core::queue_index::remove(snap, requeue, job).ok());
  job.last_factory = "f1";
  REQUIRE(core::queue_index::add(snap, requeue, job).ok());
  requeue.put(layout::job_doc(job.id), core::job_to_toml(job));
  snap.apply(requeue);
  REQUIRE(core::queue_index::find(snap, job)->value().ends_with("-f"));

  core::Millis now = k_t0 + k_minute;
  // Another factory gets the oldest job; f1 gets the one it ran (affinity).
  CHECK(claim_ok(snap, claim_request("f2", {}), now) == plain[0]);
  CHECK(claim_ok(snap, claim_request("f1", {}), now) == warm);
  CHECK(claim_ok(snap, claim_request("f1", {}), now) == plain[1]);
  CHECK_FALSE(core::queue_index::find(snap, job_in(snap, warm))->has_value());
}
