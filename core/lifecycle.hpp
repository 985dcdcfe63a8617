// The job lifecycle (DESIGN.md section 4): claim, the fenced worker
// mutations, operator actions and the reaper. Each operation is a pure
// function of a snapshot and a request that returns the Change to commit;
// gitstore re-runs it on the new tip if the ref moved, so every check below
// holds against the state that wins.
//
// Lease epochs. A claim grants the job's current epoch (at least 1). Every way
// back to the queue without the holder finishing (reap, release, requeue)
// bumps the epoch, so a queued job's epoch has never been granted and any
// call still carrying an older one is fenced. A worker mutation is accepted
// only when its epoch equals the job's, the job is in a stage the mutation
// applies to, and the caller holds the unexpired lease.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/job.hpp"
#include "core/factories.hpp"
#include "core/records.hpp"
#include "core/router.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core {

inline constexpr std::int64_t k_default_ttl_seconds = 300;
inline constexpr std::int64_t k_max_ttl_seconds = 7 * 24 * 3600;

// Who is calling, for the fenced worker mutations.
struct WorkerCall {
  std::string job_id;
  std::string factory;
  std::int64_t epoch = 0;
  std::string product;
  std::string actor;
};

// The outcome of a write: the change to commit and the job as it will be.
struct Transition {
  Change change;
  Job job;
  std::optional<Lease> lease;  // the lease after the operation, if any
};

struct ClaimRequest {
  std::string product;
  std::string factory;
  // What the factory offers; unset: its registered capabilities (none if it
  // never registered).
  std::optional<std::vector<std::string>> capabilities;
  std::int64_t ttl_seconds = k_default_ttl_seconds;
  std::string actor;
  std::map<std::string, Liveness> liveness;  // from refs/gigafab/liveness
};

// The job the router ranks first for this factory (see core/router.hpp),
// moved to assigned under a new lease, with the routing breakdown kept in the
// run. A registered factory never holds more leases than its seats. A job
// that another healthy factory with a free seat fits clearly better is left
// for it while younger than the defer window. nothing_to_claim when no queued
// job fits. Reads the queue index, reading an entry only when its bound could
// beat the best so far, and the one job it takes.
Result<Transition> claim(const Snapshot& snap, const ClaimRequest& request, Millis now);

// With preemption on: when the oldest queued critical job fits no registered
// factory with a free seat, evicts select_victim()'s job from one that fits
// (back to queued with its checkpoint and a bumped epoch, so its holder is
// fenced). An empty change when nothing needs evicting.
Result<Transition> preempt_one(const Snapshot& snap, const std::string& product,
                               const std::map<std::string, Liveness>& liveness, bool enabled,
                               const std::string& actor, Millis now);

// The router's view of one job: every registered factory of the product (and
// `extra`, if given and unregistered), filtered, scored and ranked.
struct ExplainRow {
  FactoryView factory;
  Score score;
  int rank = 0;  // among eligible factories, 1 = best; 0 when filtered out
};
Result<std::vector<ExplainRow>> explain(const Snapshot& snap, const Job& job,
                                        const std::map<std::string, Liveness>& liveness,
                                        const std::optional<FactoryView>& extra, Millis now);
Candidate candidate_of(const Job& job);

Result<Transition> renew(const Snapshot& snap, const WorkerCall& call, std::int64_t ttl_seconds, Millis now);
Result<Transition> start(const Snapshot& snap, const WorkerCall& call, Millis now);
Result<Transition> checkpoint(const Snapshot& snap, const WorkerCall& call, const std::string& ref, Millis now);

struct ReportInput {
  bool pass = false;
  std::optional<double> cost_usd;
  std::optional<std::int64_t> tokens;
  std::string summary;
  // Why a failing run failed, recorded as the job's reason (a lowercase name
  // such as "budget_exceeded"); "" means "reported_fail". Only with a fail.
  std::string reason = {};
};
// building -> review (the job requires review) / testing on pass; -> failed on
// fail, or when the reported spend exceeds the job's budget (budget_exceeded).
Result<Transition> report(const Snapshot& snap, const WorkerCall& call, const ReportInput& input, Millis now);
// Whether the caller may add to its run's output (core/run_output.hpp): the
// same fencing as a checkpoint, and nothing is written on the state ref.
Result<void> check_output_append(const Snapshot& snap, const WorkerCall& call, Millis now);
// assigned/building -> queued, keeping the checkpoint.
Result<Transition> release(const Snapshot& snap, const WorkerCall& call, Millis now);

enum class OperatorAction { approve, reject, ship, requeue };
const char* operator_action_name(OperatorAction action);
// approve: review -> testing; reject: review -> failed; ship: testing ->
// shipped (and unblocks dependents whose deps have all shipped); requeue:
// failed -> queued, or -> dead_letter when its attempts are used up.
Result<Transition> act(const Snapshot& snap, OperatorAction action, const std::string& job_id,
                       const std::string& product, const std::string& actor, Millis now);

// Requeues the job whose lease expired first (or dead-letters it when its
// attempts are used up); an empty change when no lease has expired. One job
// per call, so every reap is its own audited commit.
Result<Transition> reap_one(const Snapshot& snap, const std::string& actor, Millis now);

// The job's events with seq > after, in order.
Result<std::vector<Event>> list_events(const Snapshot& snap, const std::string& job_id, std::int64_t after = 0);
Result<std::vector<Run>> list_runs(const Snapshot& snap, const std::string& job_id);
Result<std::optional<Lease>> find_lease(const Snapshot& snap, const std::string& job_id);

// A checkpoint ref: a git ref or branch name ("refs/heads/gigafab/j-x",
// "gigafab/j-x"); usage error otherwise.
Result<void> validate_ref(std::string_view ref);

// The input checks the operations above make before reading any document,
// exported so that a fleet that does not run them in-process (the --api
// client) rejects bad input with the very same usage errors, in the same order.
// claim: product, factory, capabilities, ttl.
Result<void> validate_claim(const ClaimRequest& request);
// The fenced worker calls: job id, factory, epoch.
Result<void> validate_worker_call(const WorkerCall& call);
// renew --ttl and claim --ttl: 1 second to k_max_ttl_seconds.
Result<void> validate_ttl(std::int64_t ttl_seconds);
// report: cost and tokens not negative, summary at most 16 KiB.
Result<void> validate_report(const ReportInput& input);

}  // namespace gigafab::core
