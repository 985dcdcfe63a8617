// gigafab reap: requeue every job whose lease has expired.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/wire.hpp"

namespace gigafab::cli {

Runner define_reap(CLI::App&, Context&) {
  return [](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto reaped = (*fleet)->reap();
    if (!reaped) return reaped.error();
    if (ctx.globals.json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& r : *reaped) list.push_back(core::reaped_to_json(r));
      print_json({{"reaped", std::move(list)}});
      return {};
    }
    for (const auto& r : *reaped) {
      std::printf("%s %s (lease of %s at epoch %lld expired)\n", r.job.id.c_str(), core::stage_name(r.job.stage),
                  r.factory.c_str(), static_cast<long long>(r.epoch));
    }
    return {};
  };
}

}  // namespace gigafab::cli
