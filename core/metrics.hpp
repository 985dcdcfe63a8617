// Fleet metrics (the seed's fleetMetrics): per product, the jobs in each
// stage, the factories' health rollup and seat utilization, starvation alerts
// for queued jobs that have waited longer than the product's starvation
// window, the oldest queued job's age and the spend so far. Rendered as the
// JSON document of `GET /api/fleet/metrics` and `gigafab metrics --json`, and
// in the Prometheus text exposition format 0.0.4 for `GET /metrics`.
//
// What computing them reads:
//   - every job document of the store (all products: nothing indexes jobs by
//     product), for the stage counts and the spend: one blob read and TOML
//     parse per job, so the cost grows with every job ever submitted. A
//     per-product counter document kept by each transition would make this
//     O(1); until then compute_all_metrics shares one scan between products.
//   - the product's queue index (index/queued/<product>/<capset>/<entry>),
//     entry names only, for the oldest queued age and the starvation alerts,
//     plus the job document of each reported alert (at most
//     k_max_starvation_alerts) for its title.
//   - factories/*.toml, the product's router.toml and index/held/<factory>
//     (names only) for seats used; liveness is passed in.
// A job's wait is measured from its creation, as the router ages it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/factories.hpp"
#include "core/job.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core {

inline constexpr std::size_t k_max_starvation_alerts = 50;

// A queued job that has waited longer than the starvation window.
struct StarvationAlert {
  std::string id;
  std::string title;
  Priority priority = Priority::normal;
  Millis created_at = 0;
  std::int64_t waiting_seconds = 0;  // since created_at, rounded down
};

struct FleetMetrics {
  std::string product;
  Millis generated_at = 0;
  // Jobs of the product per stage, indexed by static_cast<std::size_t>(Stage).
  std::array<std::int64_t, std::size(k_all_stages)> jobs{};
  // Factories registered to the product, by health (as `factory list` says:
  // from the age of the last heartbeat; never seen is down).
  std::int64_t factories = 0;
  std::int64_t healthy = 0;
  std::int64_t degraded = 0;
  std::int64_t down = 0;
  std::int64_t seats = 0;       // of every registered factory
  std::int64_t seats_used = 0;  // leases they hold
  std::int64_t live_seats = 0;  // of the registered factories that are not down
  std::int64_t live_seats_used = 0;
  double utilization = 0;  // live_seats_used / live_seats; 0 when no factory is live
  std::int64_t starvation_window = 0;     // seconds (the product's router setting)
  std::int64_t starving = 0;              // every queued job waiting longer than the window
  std::vector<StarvationAlert> alerts;    // the oldest first, at most k_max_starvation_alerts
  std::int64_t oldest_queued_seconds = 0;  // 0 when nothing is queued
  double spent_usd = 0;                    // reported by every run of the product's jobs
  std::int64_t spent_tokens = 0;

  std::int64_t jobs_in(Stage stage) const { return jobs[static_cast<std::size_t>(stage)]; }
};

// The metrics of one product at `now` (`liveness` is refs/gigafab/liveness
// as load_liveness reads it). A product without jobs or factories gets zeros.
// Usage error for an invalid product name; error when the store is corrupt.
Result<FleetMetrics> compute_metrics(const Snapshot& state, const std::map<std::string, Liveness>& liveness,
                                     const std::string& product, Millis now);
// The metrics of every product in list_products order, reading each job
// document once for all of them.
Result<std::vector<FleetMetrics>> compute_all_metrics(const Snapshot& state,
                                                      const std::map<std::string, Liveness>& liveness, Millis now);
// Every product the store knows, sorted: those of its jobs, factories, router
// settings and queue index. Reads every job document (see the cost above).
Result<std::vector<std::string>> list_products(const Snapshot& state);

// {"productId", "generatedAt", "jobs": {<stage>: n, ...}, "factories": {...},
//  "starvation": {...}, "oldestQueuedSeconds", "spentUsd", "spentTokens"}
nlohmann::json metrics_to_json(const FleetMetrics& metrics);
// The Prometheus text exposition format 0.0.4: each family's # HELP and
// # TYPE lines, then one sample per product (and stage or health), names
// prefixed gigafab_, label values escaped. Newline-terminated.
std::string metrics_to_prometheus(const std::vector<FleetMetrics>& all);

}  // namespace gigafab::core
