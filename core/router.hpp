// The scoring router (the seed's scheduler, section 7). Pure and
// deterministic: filter, score, rank.
//
//   score = w1·capabilityFit + w2·affinity + w3·1/(1+load) + w4·costFit
//         + w5·health − w6·starvationPenalty(age)
//
// Filter: a factory must offer every capability the job requires, must not be
// down, and must have a free seat. Terms, each in [0, 1]:
//   capabilityFit  (1+|required|)/(1+max(|offered|,|required|)): 1 for an exact fit, lower for
//                  a factory whose extra capabilities other jobs may need
//   affinity       0.5 if the factory runs the job's engine, + 0.5 if it ran
//                  the job's previous attempt (its worktree is warm)
//   load           1/(1+load), load as reported by the factory's heartbeat
//   costFit        1 when the factory's expected cost (usd/hour x wall budget)
//                  fits the job's usd budget, else budget/expected
//   health         1 healthy, 0.5 degraded
//   starvation     penalty 1 - age/starvation_window, 0 once the job has
//                  waited a full window (default 30 min)
// Ranking among jobs for one factory: effective priority first (a job's
// priority rises one level per aging window waited, default 10 min, so a low
// job competes as critical after 30 min), then score, then age, then id.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/job.hpp"
#include "core/records.hpp"

namespace gigafab::core {

struct Weights {
  double capability_fit = 1.0;
  double affinity = 0.5;
  double load = 1.0;
  double cost_fit = 0.75;
  double health = 1.0;
  double starvation = 1.5;
  bool operator==(const Weights&) const = default;
};

// Per product (products/<product>/router.toml); every field has a default.
struct RouterSettings {
  Weights weights;
  std::int64_t degraded_after = 30;       // seconds since the last heartbeat
  std::int64_t down_after = 120;
  std::int64_t aging_window = 600;        // +1 effective priority level per window waited
  std::int64_t starvation_window = 1800;  // starvation penalty gone after this long
  std::int64_t defer_window = 120;        // how long a job waits for a better-fitting factory
  bool preemption = false;
  bool operator==(const RouterSettings&) const = default;
};

std::string settings_to_toml(const RouterSettings& settings);
Result<RouterSettings> settings_from_toml(std::string_view text, std::string_view origin);
// `key=value` for one setting ("starvation=2", "weights.load=0.5", "down_after=5m",
// "preemption=true"); usage error naming the key (with a suggestion) or value.
Result<void> apply_setting(RouterSettings& settings, std::string_view assignment);
std::vector<std::pair<std::string, std::string>> settings_entries(const RouterSettings& settings);

enum class Health { healthy, degraded, down };
const char* health_name(Health health);

// A factory as the router sees it.
struct FactoryView {
  std::string id;
  std::vector<std::string> capabilities;
  std::int64_t seats = 0;  // 0: unlimited (a factory that never registered)
  std::int64_t seats_used = 0;
  std::string engine;
  double usd_per_hour = 0;
  double load = 0;
  Health health = Health::healthy;
};

// A queued job as the router sees it (what the queue index carries).
struct Candidate {
  std::string id;
  Priority priority = Priority::normal;
  Millis created_at = 0;
  std::vector<std::string> capabilities;
  std::optional<double> budget_usd;
  std::optional<std::int64_t> wall_seconds;
  std::string engine;
  std::string last_factory;
  // What score_upper_bound may assume of a job known only by its queue entry
  // name (layout::QueuedName): whether it names an engine, whether a factory
  // ran it before. Either can give it affinity; without them it has none.
  bool may_name_engine = true;
  bool may_have_run = true;
};

struct Score {
  bool eligible = true;
  std::string why_not;  // when not eligible
  double capability_fit = 0, affinity = 0, load = 0, cost_fit = 0, health = 0, starvation_penalty = 0;
  double total = 0;
  int effective_priority = 0;  // 0 low .. 3 critical
};

Health health_from_age(Millis since_heartbeat, const RouterSettings& settings);
int effective_priority(Priority priority, Millis age, const RouterSettings& settings);
double starvation_penalty(Millis age, const RouterSettings& settings);

// The filter and every term for one (job, factory) pair.
Score score(const Candidate& job, const FactoryView& factory, const RouterSettings& settings, Millis now);
// The best `score` any job of this shape and age could reach on `factory`
// (affinity as far as the shape allows it, costFit at its maximum): lets a
// claim skip reading entries.
Score score_upper_bound(const Candidate& job_shape, const FactoryView& factory, const RouterSettings& settings,
                        Millis now);

// True when job a (scored sa) should be claimed before job b (scored sb).
bool ranks_before(const Candidate& a, const Score& sa, const Candidate& b, const Score& sb);

// One running job, for preemption.
struct RunningJob {
  std::string id;
  Priority priority = Priority::normal;
  Millis claimed_at = 0;
  std::string factory;
};

// The job a job of priority `incoming` may evict: the lowest priority strictly
// below it, then the most recently claimed (least work lost), then the
// highest id. nullopt when nothing may be evicted.
std::optional<RunningJob> select_victim(const std::vector<RunningJob>& running, Priority incoming);

}  // namespace gigafab::core
