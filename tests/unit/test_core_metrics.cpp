// Unit tests for core/metrics.hpp: stage counts, the factories' health rollup
// and utilization, starvation alerts, the JSON document and the Prometheus
// text format. Jobs are submitted and moved with the core operations into a
// MemorySnapshot, at fixed times.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/factories.hpp"
#include "core/job.hpp"
#include "core/layout.hpp"
#include "core/lifecycle.hpp"
#include "core/metrics.hpp"
#include "core/router.hpp"
#include "core/snapshot.hpp"
#include "core/submit.hpp"

using namespace gigafab;
namespace layout = gigafab::core::layout;

namespace {

constexpr core::Millis k_t0 = 1700000000000;
constexpr core::Millis k_second = 1000;
constexpr core::Millis k_minute = 60 * k_second;

std::string submit_job(core::MemorySnapshot& snap, const std::string& title, core::Millis now, std::uint64_t bits,
                       const std::string& product = "default", core::Priority priority = core::Priority::normal,
                       std::vector<std::string> deps = {}) {
  core::SubmitRequest req;
  req.manifest.title = title;
  req.manifest.priority = priority;
  req.manifest.deps = std::move(deps);
  req.manifest.body = "# " + title + "\n";
  req.product = product;
  req.actor = "alice@laptop";
  auto r = core::submit(snap, req, now, bits);
  if (!r) FAIL("submit failed: " << r.error().message);
  snap.apply(r->change);
  return r->job_id;
}

void register_factory(core::MemorySnapshot& snap, const std::string& id, std::int64_t seats, core::Millis now,
                      const std::string& product = "default") {
  core::HeartbeatInput in;
  in.factory = id;
  in.product = product;
  in.capabilities = std::vector<std::string>{};
  in.seats = seats;
  in.actor = "ops";
  auto r = core::register_factory(snap, in, now);
  if (!r) FAIL("register_factory failed: " << r.error().message);
  snap.apply(*r);
}

core::Transition claim_ok(core::MemorySnapshot& snap, const std::string& factory,
                          const std::map<std::string, core::Liveness>& liveness, core::Millis now,
                          const std::string& product = "default") {
  core::ClaimRequest req;
  req.product = product;
  req.factory = factory;
  req.actor = factory;
  req.liveness = liveness;
  auto r = core::claim(snap, req, now);
  if (!r) FAIL("claim by " << factory << " failed: " << r.error().message);
  snap.apply(r->change);
  return *r;
}

template <typename T>
T ok(core::Result<T> r) {
  if (!r) FAIL("unexpected error: " << r.error().message);
  return std::move(*r);
}

void apply_ok(core::MemorySnapshot& snap, core::Result<core::Transition> t) { snap.apply(ok(std::move(t)).change); }

}  // namespace

TEST_CASE("metrics: jobs are counted per stage, every stage present, other products apart") {
  core::MemorySnapshot snap;
  std::string a = submit_job(snap, "a", k_t0, 1);
  submit_job(snap, "b", k_t0 + 1, 2);
  submit_job(snap, "c", k_t0 + 2, 3);
  submit_job(snap, "blocked on a", k_t0 + 3, 4, "default", core::Priority::normal, {a});
  submit_job(snap, "elsewhere", k_t0 + 4, 5, "other");
  std::map<std::string, core::Liveness> live;
  core::Millis now = k_t0 + k_minute;
  // a: claimed, started, reported (testing), shipped; b: claimed, started, failed.
  CHECK(claim_ok(snap, "w", live, now).job.id == a);
  apply_ok(snap, core::start(snap, {a, "w", 1, "default", "w"}, now));
  core::ReportInput pass{true, 1.25, 1000, ""};
  apply_ok(snap, core::report(snap, {a, "w", 1, "default", "w"}, pass, now));
  apply_ok(snap, core::act(snap, core::OperatorAction::ship, a, "default", "op", now));
  CHECK(claim_ok(snap, "w", live, now).job.id != a);
  submit_job(snap, "running", now, 6);
  core::Job taken = claim_ok(snap, "w", live, now).job;
  apply_ok(snap, core::start(snap, {taken.id, "w", taken.lease_epoch, "default", "w"}, now));
  core::ReportInput fail{false, 0.5, 200, ""};
  apply_ok(snap, core::report(snap, {taken.id, "w", taken.lease_epoch, "default", "w"}, fail, now));

  auto m = ok(core::compute_metrics(snap, live, "default", now));
  CHECK(m.product == "default");
  CHECK(m.generated_at == now);
  // b and c were claimed in turn (one assigned, one failed), the blocked one
  // was unblocked when a shipped; "running" stays queued.
  CHECK(m.jobs_in(core::Stage::shipped) == 1);
  CHECK(m.jobs_in(core::Stage::failed) == 1);
  CHECK(m.jobs_in(core::Stage::assigned) == 1);
  CHECK(m.jobs_in(core::Stage::queued) == 2);
  CHECK(m.jobs_in(core::Stage::blocked) == 0);
  std::int64_t total = 0;
  for (auto n : m.jobs) total += n;
  CHECK(total == 5);
  CHECK(m.spent_usd == doctest::Approx(1.75));
  CHECK(m.spent_tokens == 1200);

  auto other = ok(core::compute_metrics(snap, live, "other", now));
  CHECK(other.jobs_in(core::Stage::queued) == 1);
  CHECK(other.spent_usd == 0);

  auto json = core::metrics_to_json(m);
  REQUIRE(json["jobs"].size() == 9);
  for (core::Stage stage : core::k_all_stages) CHECK(json["jobs"].contains(core::stage_name(stage)));
  CHECK(json["jobs"]["dead_letter"] == 0);
  CHECK(json["jobs"]["queued"] == 2);
}

TEST_CASE("metrics: a blocked job is counted as blocked") {
  core::MemorySnapshot snap;
  std::string dep = submit_job(snap, "dep", k_t0, 1);
  submit_job(snap, "waits", k_t0, 2, "default", core::Priority::normal, {dep});
  auto m = ok(core::compute_metrics(snap, {}, "default", k_t0));
  CHECK(m.jobs_in(core::Stage::blocked) == 1);
  CHECK(m.jobs_in(core::Stage::queued) == 1);
}

TEST_CASE("metrics: health from the heartbeat age, seats, utilization of live factories") {
  core::MemorySnapshot snap;
  register_factory(snap, "fresh", 2, k_t0);
  register_factory(snap, "slow", 3, k_t0);
  register_factory(snap, "gone", 4, k_t0);
  register_factory(snap, "never", 1, k_t0);
  register_factory(snap, "theirs", 8, k_t0, "other");
  for (int i = 0; i < 4; ++i) submit_job(snap, "j" + std::to_string(i), k_t0, 10 + i);
  core::Millis t = k_t0 + 10 * k_minute;  // past the defer window: anyone may claim
  std::map<std::string, core::Liveness> live{{"fresh", {t, 0}}, {"slow", {t, 0}}, {"gone", {t, 0}}};
  claim_ok(snap, "fresh", live, t);
  claim_ok(snap, "slow", live, t);
  claim_ok(snap, "slow", live, t);
  claim_ok(snap, "gone", live, t);

  // Defaults: degraded after 30 s, down after 120 s.
  core::Millis now = t + 10 * k_second;
  live = {{"fresh", {now - 5 * k_second, 0}}, {"slow", {now - 45 * k_second, 0}}, {"gone", {now - 121 * k_second, 0}}};
  auto m = ok(core::compute_metrics(snap, live, "default", now));
  CHECK(m.factories == 4);
  CHECK(m.healthy == 1);
  CHECK(m.degraded == 1);
  CHECK(m.down == 2);  // gone, and never (no liveness at all)
  CHECK(m.seats == 10);
  CHECK(m.seats_used == 4);
  CHECK(m.live_seats == 5);
  CHECK(m.live_seats_used == 3);
  CHECK(m.utilization == doctest::Approx(0.6));

  // The product's settings decide: with down_after=40s "slow" is down too.
  core::RouterSettings settings;
  settings.down_after = 40;
  snap.apply([&] {
    core::Change c;
    c.put(layout::router_settings("default"), core::settings_to_toml(settings));
    return c;
  }());
  m = ok(core::compute_metrics(snap, live, "default", now));
  CHECK(m.healthy == 1);
  CHECK(m.degraded == 0);
  CHECK(m.down == 3);
  CHECK(m.live_seats == 2);
  CHECK(m.live_seats_used == 1);
  CHECK(m.utilization == doctest::Approx(0.5));

  // Nothing live: utilization 0, not NaN.
  m = ok(core::compute_metrics(snap, {}, "default", now));
  CHECK(m.down == 4);
  CHECK(m.live_seats == 0);
  CHECK(m.utilization == 0);
  CHECK(m.seats_used == 4);

  auto theirs = ok(core::compute_metrics(snap, {}, "other", now));
  CHECK(theirs.factories == 1);
  CHECK(theirs.seats == 8);
}

TEST_CASE("metrics: starvation alerts are the queued jobs past the window, oldest first") {
  core::MemorySnapshot snap;
  // Neither a claimed job nor a blocked one is queued.
  std::string dep = submit_job(snap, "claimed", k_t0 - k_minute, 5);
  submit_job(snap, "blocked", k_t0 - k_minute, 6, "default", core::Priority::normal, {dep});
  CHECK(claim_ok(snap, "w", {}, k_t0 - k_minute).job.id == dep);
  // The default window is 30 minutes.
  std::string old_low = submit_job(snap, "old low", k_t0, 1, "default", core::Priority::low);
  std::string old_high = submit_job(snap, "old high", k_t0 + k_minute, 2, "default", core::Priority::high);
  submit_job(snap, "exactly the window", k_t0 + 5 * k_minute, 3);
  submit_job(snap, "fresh", k_t0 + 30 * k_minute, 4);

  core::Millis now = k_t0 + 35 * k_minute;
  auto m = ok(core::compute_metrics(snap, {}, "default", now));
  CHECK(m.starvation_window == 1800);
  CHECK(m.starving == 2);  // "exactly the window" has waited 30 min, not longer
  REQUIRE(m.alerts.size() == 2);
  CHECK(m.alerts[0].id == old_low);
  CHECK(m.alerts[0].title == "old low");
  CHECK(m.alerts[0].priority == core::Priority::low);
  CHECK(m.alerts[0].waiting_seconds == 35 * 60);
  CHECK(m.alerts[0].created_at == k_t0);
  CHECK(m.alerts[1].id == old_high);
  CHECK(m.alerts[1].waiting_seconds == 34 * 60);
  CHECK(m.oldest_queued_seconds == 35 * 60);

  auto json = core::metrics_to_json(m);
  CHECK(json["starvation"]["count"] == 2);
  CHECK(json["starvation"]["windowSeconds"] == 1800);
  CHECK(json["starvation"]["alerts"][0]["id"] == old_low);
  CHECK(json["starvation"]["alerts"][0]["priority"] == "low");
  CHECK(json["starvation"]["alerts"][0]["waitingSeconds"] == 2100);
  CHECK(json["starvation"]["alerts"][0]["title"] == "old low");
  CHECK(json["oldestQueuedSeconds"] == 2100);

  // A shorter window makes more jobs starve.
  core::RouterSettings settings;
  settings.starvation_window = 60;
  core::Change c;
  c.put(layout::router_settings("default"), core::settings_to_toml(settings));
  snap.apply(c);
  m = ok(core::compute_metrics(snap, {}, "default", now));
  CHECK(m.starving == 4);
  CHECK(m.alerts.back().title == "fresh");
}

TEST_CASE("metrics: alerts are capped, the count is not") {
  core::MemorySnapshot snap;
  const std::size_t n = core::k_max_starvation_alerts + 7;
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < n; ++i) ids.push_back(submit_job(snap, "job", k_t0 + static_cast<core::Millis>(i), 100 + i));
  auto m = ok(core::compute_metrics(snap, {}, "default", k_t0 + 60 * k_minute));
  CHECK(m.starving == static_cast<std::int64_t>(n));
  REQUIRE(m.alerts.size() == core::k_max_starvation_alerts);
  for (std::size_t i = 0; i < m.alerts.size(); ++i) CHECK(m.alerts[i].id == ids[i]);
}

TEST_CASE("metrics: nothing queued, an unused product, a bad product name") {
  core::MemorySnapshot snap;
  auto m = ok(core::compute_metrics(snap, {}, "default", k_t0));
  CHECK(m.oldest_queued_seconds == 0);
  CHECK(m.starving == 0);
  CHECK(m.factories == 0);
  CHECK(m.utilization == 0);
  auto bad = core::compute_metrics(snap, {}, "../x", k_t0);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == core::ErrorCode::usage);
}

TEST_CASE("metrics: every product of the store, in one pass") {
  core::MemorySnapshot snap;
  submit_job(snap, "a", k_t0, 1, "beta");
  submit_job(snap, "b", k_t0, 2, "alpha");
  register_factory(snap, "f", 1, k_t0, "gamma");
  core::Change c;
  c.put(layout::router_settings("delta"), core::settings_to_toml(core::RouterSettings{}));
  snap.apply(c);
  CHECK(ok(core::list_products(snap)) == std::vector<std::string>{"alpha", "beta", "delta", "gamma"});
  auto all = ok(core::compute_all_metrics(snap, {}, k_t0 + k_minute));
  REQUIRE(all.size() == 4);
  CHECK(all[0].product == "alpha");
  CHECK(all[0].jobs_in(core::Stage::queued) == 1);
  CHECK(all[1].product == "beta");
  CHECK(all[1].oldest_queued_seconds == 60);
  CHECK(all[3].product == "gamma");
  CHECK(all[3].factories == 1);
  CHECK(all[3].down == 1);
  CHECK(ok(core::list_products(core::MemorySnapshot{})).empty());
}

TEST_CASE("metrics: the JSON document") {
  core::FleetMetrics m;
  m.product = "default";
  m.generated_at = k_t0;
  m.factories = 3;
  m.healthy = 1;
  m.degraded = 1;
  m.down = 1;
  m.seats = 6;
  m.seats_used = 3;
  m.live_seats = 4;
  m.live_seats_used = 2;
  m.utilization = 0.5;
  m.spent_usd = 2.5;
  m.spent_tokens = 42;
  auto j = core::metrics_to_json(m);
  CHECK(j["productId"] == "default");
  CHECK(j["generatedAt"] == "2023-11-14T22:13:20.000Z");
  CHECK(j["factories"] == nlohmann::json{{"total", 3}, {"healthy", 1}, {"degraded", 1}, {"down", 1}, {"seats", 6},
                                          {"seatsUsed", 3}, {"liveSeats", 4}, {"liveSeatsUsed", 2}, {"utilization", 0.5}});
  CHECK(j["starvation"]["alerts"].is_array());
  CHECK(j["spentUsd"] == 2.5);
  CHECK(j["spentTokens"] == 42);
  CHECK(j["oldestQueuedSeconds"] == 0);
}

TEST_CASE("metrics: the Prometheus text format") {
  core::FleetMetrics m;
  m.product = "default";
  m.jobs[static_cast<std::size_t>(core::Stage::queued)] = 3;
  m.jobs[static_cast<std::size_t>(core::Stage::dead_letter)] = 1;
  m.factories = 2;
  m.healthy = 1;
  m.down = 1;
  m.seats = 3;
  m.seats_used = 1;
  m.live_seats = 2;
  m.live_seats_used = 1;
  m.utilization = 0.5;
  m.starving = 2;
  m.oldest_queued_seconds = 2100;
  m.spent_usd = 1.75;
  m.spent_tokens = 1200;
  CHECK(core::metrics_to_prometheus({m}) ==
        "# HELP gigafab_jobs Jobs by stage.\n"
        "# TYPE gigafab_jobs gauge\n"
        "gigafab_jobs{product=\"default\",stage=\"queued\"} 3\n"
        "gigafab_jobs{product=\"default\",stage=\"blocked\"} 0\n"
        "gigafab_jobs{product=\"default\",stage=\"assigned\"} 0\n"
        "gigafab_jobs{product=\"default\",stage=\"building\"} 0\n"
        "gigafab_jobs{product=\"default\",stage=\"review\"} 0\n"
        "gigafab_jobs{product=\"default\",stage=\"testing\"} 0\n"
        "gigafab_jobs{product=\"default\",stage=\"shipped\"} 0\n"
        "gigafab_jobs{product=\"default\",stage=\"failed\"} 0\n"
        "gigafab_jobs{product=\"default\",stage=\"dead_letter\"} 1\n"
        "# HELP gigafab_factories Registered factories by health (from the age of their last heartbeat).\n"
        "# TYPE gigafab_factories gauge\n"
        "gigafab_factories{product=\"default\",health=\"healthy\"} 1\n"
        "gigafab_factories{product=\"default\",health=\"degraded\"} 0\n"
        "gigafab_factories{product=\"default\",health=\"down\"} 1\n"
        "# HELP gigafab_seats Seats of the registered factories.\n"
        "# TYPE gigafab_seats gauge\n"
        "gigafab_seats{product=\"default\"} 3\n"
        "# HELP gigafab_seats_used Leases held by the registered factories.\n"
        "# TYPE gigafab_seats_used gauge\n"
        "gigafab_seats_used{product=\"default\"} 1\n"
        "# HELP gigafab_utilization_ratio Seats used over seats of the factories that are not down (0 when none is).\n"
        "# TYPE gigafab_utilization_ratio gauge\n"
        "gigafab_utilization_ratio{product=\"default\"} 0.5\n"
        "# HELP gigafab_starving_jobs Queued jobs waiting longer than the product's starvation window.\n"
        "# TYPE gigafab_starving_jobs gauge\n"
        "gigafab_starving_jobs{product=\"default\"} 2\n"
        "# HELP gigafab_oldest_queued_seconds Age of the oldest queued job (0 when none is queued).\n"
        "# TYPE gigafab_oldest_queued_seconds gauge\n"
        "gigafab_oldest_queued_seconds{product=\"default\"} 2100\n"
        "# HELP gigafab_spent_usd_total Cost reported by the runs of the product's jobs, in USD.\n"
        "# TYPE gigafab_spent_usd_total counter\n"
        "gigafab_spent_usd_total{product=\"default\"} 1.75\n"
        "# HELP gigafab_spent_tokens_total Tokens reported by the runs of the product's jobs.\n"
        "# TYPE gigafab_spent_tokens_total counter\n"
        "gigafab_spent_tokens_total{product=\"default\"} 1200\n");
}

TEST_CASE("metrics: Prometheus groups each family across products and escapes label values") {
  core::FleetMetrics a, b;
  a.product = "a";
  a.seats = 1;
  b.product = "we\"ird\\na\nme";
  b.seats = 2;
  b.utilization = 1.0 / 3.0;
  std::string text = core::metrics_to_prometheus({a, b});
  CHECK(text.find("gigafab_seats{product=\"a\"} 1\ngigafab_seats{product=\"we\\\"ird\\\\na\\nme\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("gigafab_utilization_ratio{product=\"we\\\"ird\\\\na\\nme\"} 0.3333333333333333\n") !=
        std::string::npos);
  // One # TYPE line per family, whatever the number of products.
  std::size_t types = 0;
  for (std::size_t at = text.find("# TYPE"); at != std::string::npos; at = text.find("# TYPE", at + 1)) ++types;
  CHECK(types == 9);
  // Empty input: the families are described, no samples.
  std::string empty = core::metrics_to_prometheus({});
  CHECK(empty.find("{") == std::string::npos);
  CHECK(empty.find("# TYPE gigafab_jobs gauge\n") != std::string::npos);
}
