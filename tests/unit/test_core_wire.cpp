// Unit tests for core/wire.hpp: what the server renders, the --api client
// parses back to the very same values (so a command prints the same either
// way), and error documents keep their code and message.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/json.hpp"
#include "core/metrics.hpp"
#include "core/wire.hpp"

using namespace gigafab;
using nlohmann::json;

namespace {

constexpr core::Millis k_t0 = 1700000000123;

core::Job sample_job() {
  core::Job j;
  j.id = "j-abcdefgh";
  j.product = "default";
  j.title = "Add retry";
  j.stage = core::Stage::building;
  j.priority = core::Priority::high;
  j.capabilities = {"cpp", "linux"};
  j.deps = {"j-aaaaaaaa"};
  j.profile = "backend-dev";
  j.profile_version = 2;
  j.idempotency_key = "tracker:1";
  j.review = true;
  j.budget.usd = 5.5;
  j.budget.wall_seconds = 2700;
  j.budget.tokens = 100000;
  j.repo = {"https://example.com/x.git", "main"};
  j.lease_epoch = 3;
  j.rev = 7;
  j.attempts = 2;
  j.max_attempts = 4;
  j.engine = "claude";
  j.last_factory = "fa";
  j.checkpoint = "refs/heads/gigafab/j-abcdefgh";
  j.reason = "rejected";
  j.event_seq = 9;
  j.spent_usd = 0.1 + 0.2;  // not exactly representable: must survive the trip
  j.spent_tokens = 1234;
  j.created_at = k_t0;
  j.updated_at = k_t0 + 1500;
  return j;
}

}  // namespace

TEST_CASE("a job survives job_to_json -> job_from_json") {
  core::Job j = sample_job();
  auto back = core::job_from_json(json::parse(core::job_to_json(j).dump()));
  REQUIRE(back);
  CHECK(*back == j);
  core::Job bare;
  bare.id = "j-bbbbbbbb";
  auto bare_back = core::job_from_json(json::parse(core::job_to_json(bare).dump()));
  REQUIRE(bare_back);
  CHECK(*bare_back == bare);
}

TEST_CASE("a job detail survives detail_to_json -> detail_from_json") {
  core::JobDetail d;
  d.job = sample_job();
  d.body = "# Add retry\n\nbody\n";
  core::Profile p;
  p.name = "backend-dev";
  p.version = 2;
  p.description = "d";
  p.capabilities = {"cpp"};
  p.engine = "claude";
  p.review = true;
  p.budget.usd = 1;
  p.persona = "You are careful.";
  p.text = "+++\nname = \"backend-dev\"\n+++\nYou are careful.";
  d.profile = p;
  d.lease = core::Lease{"fa", 3, k_t0, k_t0 + 1, k_t0 + 300000};
  core::Run run;
  run.epoch = 3;
  run.factory = "fa";
  run.claimed_at = k_t0;
  run.started_at = k_t0 + 5;
  run.cost_usd = 0.25;
  run.tokens = 10;
  run.summary = "s";
  run.routing = {true, 1, 0.5, 0.25, 1, 1, 0.125, 3.375, 2, 1, 3};
  d.runs = {run};
  auto back = core::detail_from_json(json::parse(core::detail_to_json(d).dump()));
  REQUIRE(back);
  CHECK(back->job == d.job);
  CHECK(back->body == d.body);
  REQUIRE(back->profile);
  CHECK(back->profile->text == p.text);
  CHECK(core::profile_to_json(*back->profile) == core::profile_to_json(p));
  CHECK(back->lease == d.lease);
  CHECK(back->runs == d.runs);
}

TEST_CASE("metrics survive metrics_to_json -> metrics_from_json") {
  core::FleetMetrics m;
  m.product = "web";
  m.generated_at = k_t0;
  for (std::size_t i = 0; i < m.jobs.size(); ++i) m.jobs[i] = static_cast<std::int64_t>(i * 3 + 1);
  m.factories = 3;
  m.healthy = 1;
  m.degraded = 1;
  m.down = 1;
  m.seats = 9;
  m.seats_used = 2;
  m.live_seats = 5;
  m.live_seats_used = 1;
  m.utilization = 0.2;
  m.starvation_window = 1800;
  m.starving = 60;
  m.alerts = {{"j-aaaaaaaa", "Old", core::Priority::low, k_t0 - 3600000, 3600},
              {"j-bbbbbbbb", "Older", core::Priority::critical, k_t0 - 7200000, 7200}};
  m.oldest_queued_seconds = 7200;
  m.spent_usd = 1.5;
  m.spent_tokens = 300;
  json doc = core::metrics_to_json(m);
  auto back = core::metrics_from_json(json::parse(doc.dump()));
  REQUIRE(back);
  CHECK(core::metrics_to_json(*back) == doc);
  CHECK(back->jobs == m.jobs);
  CHECK(back->alerts.size() == 2);
  CHECK(back->alerts[1].priority == core::Priority::critical);

  CHECK_FALSE(core::metrics_from_json(json::array()));
  CHECK_FALSE(core::metrics_from_json(json{{"productId", "x"}, {"jobs", {{"queued", "many"}}}}));
}

TEST_CASE("factory statuses, explain rows, events, audit entries and reaped jobs round-trip") {
  core::FactoryStatus s;
  s.record = {"fa", "default", {"linux"}, 4, "claude", 2.5, k_t0, k_t0 + 10};
  s.health = core::Health::degraded;
  s.last_heartbeat_at = k_t0 + 20;
  s.load = 0.75;
  s.jobs = {{"j-aaaaaaaa", core::Priority::high, k_t0, "fa"}};
  json sdoc = core::factory_status_to_json(s);
  auto sback = core::factory_status_from_json(json::parse(sdoc.dump()));
  REQUIRE(sback);
  CHECK(core::factory_status_to_json(*sback) == sdoc);

  core::ExplainRow row;
  row.factory = {"fb", {"linux", "docker"}, 2, 1, "codex", 1.25, 0.5, core::Health::healthy};
  row.score.eligible = false;
  row.score.why_not = "missing capabilities [gpu]";
  row.score.capability_fit = 0.5;
  row.score.total = 1.75;
  row.score.effective_priority = 3;
  json rdoc = core::explain_row_to_json(row);
  auto rback = core::explain_row_from_json(json::parse(rdoc.dump()));
  REQUIRE(rback);
  CHECK(core::explain_row_to_json(*rback) == rdoc);

  core::Event e{4, k_t0, "report", "building", "review", "tester", "fa", 2, "pass"};
  auto eback = core::event_from_json(json::parse(core::event_to_json(e).dump()));
  REQUIRE(eback);
  CHECK(*eback == e);

  core::AuditEntry a{"0123abcd", k_t0, "claim j-aaaaaaaa", "claim", "j-aaaaaaaa", "default", "tester",
                     {{"Gigafab-Epoch", "1"}, {"Gigafab-Op", "claim"}}};
  json adoc = core::audit_entry_to_json(a);
  auto aback = core::audit_entry_from_json(json::parse(adoc.dump()));
  REQUIRE(aback);
  CHECK(core::audit_entry_to_json(*aback) == adoc);

  core::Reaped r{sample_job(), "fa", 3};
  json pdoc = core::reaped_to_json(r);
  auto pback = core::reaped_from_json(json::parse(pdoc.dump()));
  REQUIRE(pback);
  CHECK(pback->job == r.job);
  CHECK(core::reaped_to_json(*pback) == pdoc);
}

TEST_CASE("error documents keep code and message") {
  core::Error fenced = core::make_error(core::ErrorCode::fenced, "job j-aaaaaaaa is fenced (epoch 1 < 2)");
  auto back = core::error_from_json(json::parse(core::error_to_json(fenced).dump()));
  REQUIRE(back);
  CHECK(back->code == core::ErrorCode::fenced);
  CHECK(back->message == fenced.message);
  CHECK_FALSE(core::error_from_json(json{{"jobs", json::array()}}));
  auto unknown = core::error_from_json(json{{"error", {{"code", "teapot"}, {"message", "m"}}}});
  REQUIRE(unknown);
  CHECK(unknown->code == core::ErrorCode::error);
}
