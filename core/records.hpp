// The documents that live beside job.toml while a job moves through its
// lifecycle: the lease (one holder at a time), one run per attempt, and the
// append-only event log.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "core/error.hpp"

namespace gigafab::core {

// jobs/<shard>/<id>/lease.toml; exists only while the job is assigned or building.
struct Lease {
  std::string holder;  // factory id
  std::int64_t epoch = 0;
  Millis acquired_at = 0;
  Millis renewed_at = 0;
  Millis expires_at = 0;
  bool operator==(const Lease&) const = default;
};

// Why a run went to its factory: the router's terms at claim time.
struct Routing {
  bool present = false;
  double capability_fit = 0, affinity = 0, load = 0, cost_fit = 0, health = 0, starvation_penalty = 0;
  double total = 0;
  std::int64_t effective_priority = 0;
  std::int64_t rank = 0;        // the factory's rank among eligible factories (1 = best)
  std::int64_t candidates = 0;  // how many factories were eligible
  bool operator==(const Routing&) const = default;
};

// jobs/<shard>/<id>/runs/<epoch>.toml: one attempt, from claim to its end.
struct Run {
  std::int64_t epoch = 0;
  std::string factory;
  Millis claimed_at = 0;
  Millis started_at = 0;  // 0 until `start`
  Millis ended_at = 0;    // 0 while running
  std::string result;     // "" while running; pass, fail, expired, released
  std::string reason;     // e.g. budget_exceeded
  double cost_usd = 0;
  std::int64_t tokens = 0;
  std::string summary;
  std::string checkpoint;
  Routing routing;
  bool operator==(const Run&) const = default;
};

// jobs/<shard>/<id>/events/<seq>.json: never rewritten once written.
struct Event {
  std::int64_t seq = 0;
  Millis at = 0;
  std::string type;  // submit, claim, start, checkpoint, report, release, reap, approve, ...
  std::string from;  // stage before ("" for submit)
  std::string to;    // stage after
  std::string actor;
  std::string factory;
  std::int64_t epoch = 0;
  std::string detail;  // human-readable specifics (result, reason, ref, ...)
  bool operator==(const Event&) const = default;
};

std::string lease_to_toml(const Lease& lease);
Result<Lease> lease_from_toml(std::string_view text, std::string_view origin);
std::string run_to_toml(const Run& run);
Result<Run> run_from_toml(std::string_view text, std::string_view origin);
std::string event_to_json_text(const Event& event);
Result<Event> event_from_json_text(std::string_view text, std::string_view origin);

}  // namespace gigafab::core
