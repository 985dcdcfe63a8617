// gigafab renew ID --epoch N --factory F [--ttl SECONDS]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "cli/worker_options.hpp"

namespace gigafab::cli {

Runner define_renew(CLI::App& app, Context&) {
  auto opts = std::make_shared<WorkerOptions>();
  auto ttl = std::make_shared<std::int64_t>(core::k_default_ttl_seconds);
  add_worker_options(app, *opts);
  app.add_option("--ttl", *ttl, "extend the lease to this many seconds from now (default 300)");
  return [opts, ttl](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto lease = (*fleet)->renew(worker_call(*opts, ctx), *ttl);
    if (!lease) return lease.error();
    if (ctx.globals.json) {
      print_json({{"id", opts->id}, {"epoch", lease->epoch}, {"factory", lease->holder},
                  {"expiresAt", core::format_time(lease->expires_at)}});
    } else {
      std::printf("%s %lld %s\n", opts->id.c_str(), static_cast<long long>(lease->epoch),
                  core::format_time(lease->expires_at).c_str());
    }
    return {};
  };
}

}  // namespace gigafab::cli
