// gigafab metrics [--prometheus]: the product's job counts, factory health,
// utilization, starvation alerts and spend (core/metrics.hpp); --json prints
// the document GET /api/fleet/metrics serves, --prometheus every product in
// the text format GET /metrics serves.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/metrics.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

namespace {

void print_human(const core::FleetMetrics& m) {
  std::string jobs;
  for (core::Stage stage : core::k_all_stages) {
    jobs += (jobs.empty() ? "" : ", ") + std::string(core::stage_name(stage)) + " " + std::to_string(m.jobs_in(stage));
  }
  char seats[160], spent[96];
  std::snprintf(seats, sizeof seats, "%lld/%lld used; live factories %lld/%lld, utilization %.0f%%",
                static_cast<long long>(m.seats_used), static_cast<long long>(m.seats),
                static_cast<long long>(m.live_seats_used), static_cast<long long>(m.live_seats), m.utilization * 100);
  std::snprintf(spent, sizeof spent, "$%.2f, %lld tokens", m.spent_usd, static_cast<long long>(m.spent_tokens));
  std::string starving = std::to_string(m.starving) + " queued longer than " + core::format_duration(m.starvation_window);
  if (m.starving > static_cast<std::int64_t>(m.alerts.size())) {
    starving += " (the oldest " + std::to_string(m.alerts.size()) + " below)";
  }
  print_table({{"product", m.product},
               {"generated", core::format_time(m.generated_at)},
               {"jobs", jobs},
               {"factories", std::to_string(m.factories) + ": " + std::to_string(m.healthy) + " healthy, " +
                                 std::to_string(m.degraded) + " degraded, " + std::to_string(m.down) + " down"},
               {"seats", seats},
               {"oldest queued", m.jobs_in(core::Stage::queued) ? core::format_duration(m.oldest_queued_seconds) : "-"},
               {"spent", spent},
               {"starving", starving}});
  if (m.alerts.empty()) return;
  std::vector<std::vector<std::string>> rows = {{"ID", "PRIORITY", "WAITING", "CREATED", "TITLE"}};
  for (const auto& a : m.alerts) {
    rows.push_back({a.id, core::priority_name(a.priority), core::format_duration(a.waiting_seconds),
                    core::format_time(a.created_at), a.title});
  }
  std::printf("\n");
  print_table(rows);
}

}  // namespace

Runner define_metrics(CLI::App& app, Context&) {
  auto prometheus = std::make_shared<bool>(false);
  app.add_flag("--prometheus", *prometheus, "every product, in the Prometheus text exposition format");
  return [prometheus](Context& ctx) -> Result<void> {
    if (*prometheus && ctx.globals.json) {
      return core::make_error(core::ErrorCode::usage, "--prometheus and --json cannot be combined");
    }
    if (*prometheus) {
      if (auto ok = ctx.require_local("metrics --prometheus"); !ok) return ok.error();
    }
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    if (*prometheus) {
      auto* local = dynamic_cast<gitstore::LocalFleet*>(*fleet);
      if (!local) return core::make_error(core::ErrorCode::usage, "--prometheus needs a local store");
      auto all = local->metrics_all();
      if (!all) return all.error();
      std::fputs(core::metrics_to_prometheus(*all).c_str(), stdout);
      return {};
    }
    auto m = (*fleet)->metrics(ctx.globals.product);
    if (!m) return m.error();
    if (ctx.globals.json) {
      print_json(core::metrics_to_json(*m));
    } else {
      print_human(*m);
    }
    return {};
  };
}

}  // namespace gigafab::cli
