// Unit tests for core/wire.hpp's request side (bodies validated strictly,
// naming the field at fault), claims and settings round-trips, and error
// documents. test_core_wire.cpp covers the other results.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "core/json.hpp"
#include "core/wire.hpp"

using namespace gigafab;
using nlohmann::json;

namespace {

core::Job small_job() {
  core::Job j;
  j.id = "j-abcdefgh";
  j.product = "default";
  j.title = "Add retry";
  j.stage = core::Stage::assigned;
  j.lease_epoch = 3;
  j.created_at = 1'780'000'000'000;
  j.updated_at = 1'780'000'000'000;
  return j;
}

}  // namespace

TEST_CASE("wire: claims, events, factories, explain rows and settings round-trip") {
  core::Claimed c{small_job(), core::Lease{"mac-1", 3, 1, 2, 3}};
  auto claimed = core::claimed_from_json(core::claimed_to_json(c));
  REQUIRE(claimed.ok());
  CHECK(claimed->job == c.job);
  CHECK(claimed->lease == c.lease);

  core::Event e{4, 1'780'000'000'000, "report", "building", "testing", "factory:f1", "f1", 3, "pass"};
  auto event = core::event_from_json(core::event_to_json(e));
  REQUIRE(event.ok());
  CHECK(*event == e);

  core::FactoryStatus s;
  s.record = {"mac-1", "default", {"macos"}, 2, "claude", 1.5, 1'780'000'000'000, 1'780'000'001'000};
  s.health = core::Health::degraded;
  s.last_heartbeat_at = 1'780'000'002'000;
  s.load = 0.4;
  s.jobs = {{"j-abcdefgh", core::Priority::high, 1'780'000'003'000, "mac-1"}};
  auto status = core::factory_status_from_json(core::factory_status_to_json(s));
  REQUIRE(status.ok());
  CHECK(status->record.id == "mac-1");
  CHECK(status->record.usd_per_hour == 1.5);
  CHECK(status->record.updated_at == s.record.updated_at);
  CHECK(status->health == core::Health::degraded);
  REQUIRE(status->jobs.size() == 1);
  CHECK(status->jobs[0].claimed_at == s.jobs[0].claimed_at);

  core::ExplainRow row;
  row.factory = {"gpu-1", {"gpu"}, 2, 1, "codex", 3.0, 0.5, core::Health::healthy};
  row.score.eligible = false;
  row.score.why_not = "missing capabilities [linux]";
  row.score.total = 1.75;
  row.score.effective_priority = 2;
  auto explained = core::explain_row_from_json(core::explain_row_to_json(row));
  REQUIRE(explained.ok());
  CHECK(explained->factory.capabilities == row.factory.capabilities);
  CHECK(explained->factory.seats_used == 1);
  CHECK(explained->score.why_not == row.score.why_not);
  CHECK(explained->score.effective_priority == 2);
  CHECK(explained->rank == 0);

  core::RouterSettings settings;
  settings.weights.load = 0.25;
  settings.down_after = 300;
  settings.preemption = true;
  auto parsed = core::settings_from_json(core::settings_to_json(settings));
  REQUIRE(parsed.ok());
  CHECK(*parsed == settings);
}

TEST_CASE("wire: errors keep their code, message, field and reason class") {
  core::Error e = core::make_error(core::ErrorCode::fenced, "epoch 1 < 2");
  e.field = "epoch";
  auto back = core::error_from_json(core::error_to_json(e));
  REQUIRE(back);
  CHECK(back->code == core::ErrorCode::fenced);
  CHECK(back->message == "epoch 1 < 2");
  CHECK(back->field == "epoch");
  CHECK_FALSE(core::error_from_json(json{{"id", "x"}}));
}

TEST_CASE("wire: request bodies are validated strictly, naming the field") {
  auto field_of = [](const auto& r) { return r ? std::string("<ok>") : r.error().field; };
  CHECK(field_of(core::claim_request_from_json(json{{"ttl", "60"}})) == "ttl");
  auto unknown = core::claim_request_from_json(json{{"tll", 60}});
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().field == "tll");
  CHECK(unknown.error().message.find("did you mean 'ttl'") != std::string::npos);
  CHECK(field_of(core::claim_request_from_json(json::array())) == "");
  CHECK(field_of(core::claim_request_from_json(json{{"ttl", 0}})) == "ttl");
  CHECK(field_of(core::claim_request_from_json(json{{"capabilities", {"ok", "not ok"}}})) == "capabilities");
  CHECK(field_of(core::claim_request_from_json(json{{"capabilities", {"linux"}}, {"wait", 5}})) == "<ok>");

  using Kind = core::WorkerRequest::Kind;
  CHECK(field_of(core::worker_request_from_json(json{{"stage", "building"}}, std::nullopt)) == "epoch");
  CHECK(field_of(core::worker_request_from_json(json{{"epoch", 1}}, std::nullopt)) == "");
  CHECK(field_of(core::worker_request_from_json(json{{"epoch", 1}, {"stage", "shipped"}}, std::nullopt)) == "stage");
  CHECK(field_of(core::worker_request_from_json(json{{"epoch", 1}, {"result", "maybe"}}, std::nullopt)) == "result");
  CHECK(field_of(core::worker_request_from_json(json{{"epoch", 1}, {"stage", "building"}, {"result", "pass"}},
                                                std::nullopt)) == "");
  CHECK(field_of(core::worker_request_from_json(json{{"epoch", 1}, {"ttl", 60}}, Kind::release)) == "ttl");
  auto report = core::worker_request_from_json(
      json{{"epoch", 2}, {"result", "fail"}, {"costUsd", 0.5}, {"tokens", 10}, {"summary", "s"}}, std::nullopt);
  REQUIRE(report.ok());
  CHECK(report->kind == Kind::report);
  CHECK_FALSE(report->report.pass);
  CHECK(report->report.cost_usd == 0.5);
  CHECK(report->report.reason.empty());
  // A failing report's reason round-trips (the agent's budget_exceeded over --api).
  core::WorkerRequest timed_out;
  timed_out.kind = Kind::report;
  timed_out.factory = "f1";
  timed_out.epoch = 3;
  timed_out.report.reason = "budget_exceeded";
  auto reason = core::worker_request_from_json(core::worker_request_to_json(timed_out), std::nullopt);
  REQUIRE(reason.ok());
  CHECK(reason->report.reason == "budget_exceeded");

  // What the client builds, the server accepts, for every kind.
  for (Kind kind : {Kind::renew, Kind::release, Kind::start, Kind::checkpoint, Kind::report}) {
    core::WorkerRequest req;
    req.kind = kind;
    req.factory = "f1";
    req.epoch = 4;
    req.ref = "gigafab/j-abcdefgh";
    req.report.pass = true;
    bool lease_route = kind == Kind::renew || kind == Kind::release;
    auto back = core::worker_request_from_json(core::worker_request_to_json(req),
                                               lease_route ? std::optional<Kind>(kind) : std::nullopt);
    REQUIRE(back.ok());
    CHECK(back->kind == kind);
    CHECK(back->epoch == 4);
  }

  auto submit = core::submit_request_from_json(json{{"manifest", "# Title\n\nbody\n"}, {"priority", "urgent"}});
  REQUIRE_FALSE(submit);
  CHECK(submit.error().field == "priority");
  auto body = core::submit_request_from_json(json{{"manifest", "+++\npriorty = \"high\"\n+++\n# T\nbody\n"}});
  REQUIRE(body.ok());
  auto input = core::submit_input(*body, "default");
  REQUIRE_FALSE(input);
  CHECK(input.error().field == "manifest");
  CHECK(input.error().message.find("priority") != std::string::npos);
}
