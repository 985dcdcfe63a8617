// The Fleet: every operation a command can ask for, independent of where the
// fleet lives. The local implementation (gitstore/local_fleet) runs core
// operations on a git store in-process; a remote one talks to `gigafab serve`.
// Commands print what a Fleet returns, so output and exit codes are the same
// against either.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/auth.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/job.hpp"
#include "core/lifecycle.hpp"
#include "core/manifest.hpp"
#include "core/metrics.hpp"
#include "core/profile.hpp"
#include "core/queries.hpp"
#include "core/run_output.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core {

struct SubmitInput {
  Manifest manifest;  // CLI overrides already applied
  std::string product;
  // The manifest text as read, verbatim: what a remote fleet sends (the server
  // parses it again; the overrides travel beside it). Empty when the manifest
  // was built in memory.
  std::string source = {};
};

struct Submitted {
  Job job;
  bool duplicate = false;  // an earlier submit with the same idempotency key
};

struct JobDetail {
  Job job;
  std::string body;
  std::optional<Profile> profile;  // the snapshot the job was submitted with
  std::optional<Lease> lease;
  std::vector<Run> runs;           // one per attempt, oldest first
};

struct ClaimInput {
  std::string product;
  std::string factory;
  std::optional<std::vector<std::string>> capabilities;  // unset: the registered ones
  std::int64_t ttl_seconds = k_default_ttl_seconds;
  std::int64_t wait_seconds = 0;  // keep trying this long while nothing fits
};

struct Claimed {
  Job job;
  Lease lease;
};

struct Reaped {
  Job job;              // after the reap: queued or dead_letter
  std::string factory;  // whose lease expired
  std::int64_t epoch = 0;
};

// One transition as recorded in the state ref's history.
struct AuditEntry {
  std::string commit;
  Millis time = 0;
  std::string summary;
  std::string op;
  std::string job;  // "" for store-wide operations
  std::string product;
  std::string actor;
  std::vector<Trailer> trailers;
};

struct FactoryStatus {
  FactoryRecord record;
  Health health = Health::down;
  Millis last_heartbeat_at = 0;  // 0: never
  double load = 0;
  std::vector<RunningJob> jobs;  // the leases it holds
};

class Fleet {
 public:
  virtual ~Fleet() = default;
  virtual Result<Submitted> submit(const SubmitInput& input) = 0;
  virtual Result<std::vector<Job>> list(const JobFilter& filter) = 0;
  virtual Result<JobDetail> show(const std::string& id, const std::string& product) = 0;
  // Newest first; only the job's entries when `job` is set, only the
  // product's (and store-wide ones) otherwise.
  virtual Result<std::vector<AuditEntry>> log(const std::optional<std::string>& job, const std::string& product) = 0;

  // Reaps expired leases first, then claims (see core::claim); waits up to
  // wait_seconds for a fitting job before failing with nothing_to_claim.
  virtual Result<Claimed> claim(const ClaimInput& input) = 0;
  // Fenced worker mutations (see core/lifecycle.hpp); `call.actor` is filled in.
  virtual Result<Lease> renew(WorkerCall call, std::int64_t ttl_seconds) = 0;
  virtual Result<Job> start(WorkerCall call) = 0;
  virtual Result<Job> checkpoint(WorkerCall call, const std::string& ref) = 0;
  virtual Result<Job> report(WorkerCall call, const ReportInput& input) = 0;
  virtual Result<Job> release(WorkerCall call) = 0;
  virtual Result<Job> act(OperatorAction action, const std::string& id, const std::string& product) = 0;
  // Requeues (or dead-letters) every job whose lease has expired.
  virtual Result<std::vector<Reaped>> reap() = 0;
  virtual Result<std::vector<Event>> events(const std::string& id, const std::string& product,
                                            std::int64_t after) = 0;

  // Registers or refreshes a factory (see core/factories.hpp).
  virtual Result<FactoryStatus> heartbeat(const HeartbeatInput& input) = 0;
  virtual Result<std::vector<FactoryStatus>> factories(const std::string& product) = 0;
  // Every registered factory of the job's product, filtered, scored, ranked.
  virtual Result<std::vector<ExplainRow>> explain(const std::string& id, const std::string& product) = 0;
  virtual Result<RouterSettings> settings(const std::string& product) = 0;
  // Applies KEY=VALUE assignments (all or nothing) and returns the result.
  virtual Result<RouterSettings> update_settings(const std::string& product,
                                                 const std::vector<std::string>& assignments) = 0;

  // --- API tokens of factories (core/auth.hpp). Each change is one audited commit.
  // Registers the factory if needed and issues its token (shown once).
  // Conflict when it already has a live token; usage errors for bad input.
  virtual Result<IssuedToken> enroll(const EnrollInput& input) = 0;
  // A new token for the factory; the old one stops working with this commit.
  // not_found when the factory is not registered to `product` or has no token.
  virtual Result<IssuedToken> rotate_token(const std::string& factory, const std::string& product) = 0;
  // Removes the factory's token (returned, without secret); not_found as for rotate.
  virtual Result<TokenRecord> revoke_token(const std::string& factory, const std::string& product) = 0;
  // --- end of API tokens

  // --- run output (core/run_output.hpp)
  // Adds the caller's run's output from byte `offset` on (fenced like a
  // checkpoint; a retried append stores nothing twice) and returns the
  // output's end after it.
  virtual Result<std::int64_t> append_output(WorkerCall call, std::int64_t offset, const std::string& text) = 0;
  // One run's output from byte `from` on; the job's latest run when `epoch`
  // is unset. not_found when the job has no such run.
  virtual Result<RunOutput> output(const std::string& id, const std::string& product,
                                   std::optional<std::int64_t> epoch, std::int64_t from) = 0;

  // Metrics (core/metrics.hpp): job counts per stage, factory health and
  // seat utilization, starvation alerts and spend of one product, read-only
  // (nothing is reaped). A product nobody used gets zeros; usage error for an
  // invalid product name.
  virtual Result<FleetMetrics> metrics(const std::string& product) = 0;
};

}  // namespace gigafab::core
