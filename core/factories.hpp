// Factories: durable registrations on the state ref (capabilities, seats,
// engine: a commit only when they change) and liveness (last heartbeat, load)
// on refs/gigafab/liveness, a ref whose history is not kept, so heartbeats
// never flood the audit trail.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/router.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core {

struct FactoryRecord {
  std::string id;
  std::string product;
  std::vector<std::string> capabilities;
  std::int64_t seats = 1;
  std::string engine;
  double usd_per_hour = 0;
  Millis registered_at = 0;
  Millis updated_at = 0;
};

struct Liveness {
  Millis last_heartbeat_at = 0;
  double load = 0;
};

struct HeartbeatInput {
  std::string factory;
  std::string product;
  std::optional<std::vector<std::string>> capabilities;  // unset: keep the registered ones
  std::optional<std::int64_t> seats;
  std::optional<std::string> engine;
  std::optional<double> usd_per_hour;
  std::optional<double> load;  // unset: keep the last reported load
  std::string actor;
};

// Registers the factory or updates its registration; an empty change when
// nothing but liveness changed. Usage errors for invalid input; conflict when
// the factory is registered to another product.
Result<Change> register_factory(const Snapshot& state, const HeartbeatInput& input, Millis now);
// The liveness document to write on refs/gigafab/liveness (`liveness` is that
// ref's current tree).
Result<Change> record_liveness(const Snapshot& liveness, const HeartbeatInput& input, Millis now);

Result<std::optional<FactoryRecord>> find_factory(const Snapshot& state, const std::string& id);
Result<std::vector<FactoryRecord>> list_factories(const Snapshot& state, const std::string& product);
Result<std::map<std::string, Liveness>> load_liveness(const Snapshot& liveness);
Result<std::int64_t> seats_used(const Snapshot& state, const std::string& factory);
// The held leases of a factory (for preemption and `factory list`).
Result<std::vector<RunningJob>> held_jobs(const Snapshot& state, const std::string& factory);
Result<RouterSettings> load_settings(const Snapshot& state, const std::string& product);

// The router's view of a registered factory.
Result<FactoryView> factory_view(const Snapshot& state, const FactoryRecord& record,
                                 const std::map<std::string, Liveness>& liveness, const RouterSettings& settings,
                                 Millis now);

}  // namespace gigafab::core
