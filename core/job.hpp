// The job model: stages, priorities, budgets, and the job document as it is
// stored in the state tree (jobs/<shard>/<id>/job.toml).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"

namespace gigafab::core {

// DESIGN.md section 4 (fixed names).
enum class Stage { queued, blocked, assigned, building, review, testing, shipped, failed, dead_letter };
inline constexpr Stage k_all_stages[] = {Stage::queued,  Stage::blocked, Stage::assigned,
                                         Stage::building, Stage::review, Stage::testing,
                                         Stage::shipped, Stage::failed,  Stage::dead_letter};
const char* stage_name(Stage stage);
// Usage error listing the valid names when `name` is not a stage.
Result<Stage> parse_stage(std::string_view name);

enum class Priority { low = 0, normal = 1, high = 2, critical = 3 };
const char* priority_name(Priority priority);
Result<Priority> parse_priority(std::string_view name);

struct Budget {
  std::optional<double> usd;
  std::optional<std::int64_t> wall_seconds;
  std::optional<std::int64_t> tokens;

  // Fields set in `over` replace ours.
  Budget overlaid_with(const Budget& over) const;
  bool operator==(const Budget&) const = default;
};

struct RepoSpec {
  std::string url;
  std::string base;
  bool operator==(const RepoSpec&) const = default;
};

struct Job {
  std::string id;
  std::string product;
  std::string title;
  Stage stage = Stage::queued;
  Priority priority = Priority::normal;
  std::vector<std::string> capabilities;  // sorted, unique
  std::vector<std::string> deps;          // job ids, in submission order
  std::string profile;                    // empty when none
  std::int64_t profile_version = 0;
  std::string idempotency_key;
  bool review = false;  // a passing report goes to review instead of testing
  Budget budget;
  RepoSpec repo;
  std::int64_t lease_epoch = 0;  // bumped by every claim and every requeue
  std::int64_t rev = 0;          // bumped by every write of this document
  std::int64_t attempts = 0;
  std::int64_t max_attempts = 3;
  std::string engine;        // the profile's default engine ("" when none)
  std::string last_factory;  // who ran the last attempt (affinity for the router)
  std::string checkpoint;  // last pushed work-in-progress ref, kept across requeues
  std::string reason;      // why the job is failed / dead_letter ("budget_exceeded", ...)
  std::int64_t event_seq = 0;  // sequence number of the job's last event
  double spent_usd = 0;        // reported cost, summed over runs
  std::int64_t spent_tokens = 0;
  Millis created_at = 0;
  Millis updated_at = 0;

  bool operator==(const Job&) const = default;
};

// job.toml <-> Job. Parsing fails with ErrorCode::error naming the document:
// a malformed job document means a corrupt store, not bad user input.
std::string job_to_toml(const Job& job);
// What job_to_toml writes is read by a strict line reader without a TOML DOM
// (a cold `list` parses every job); any other document goes to toml++, which
// decides what is valid and words every error.
Result<Job> job_from_toml(std::string_view text, std::string_view origin);
// The two paths alone (the tests compare them): the line reader (nullopt for
// a document it leaves to toml++) and toml++.
std::optional<Job> job_from_plain_toml(std::string_view text);
Result<Job> job_from_toml_generic(std::string_view text, std::string_view origin);

}  // namespace gigafab::core
