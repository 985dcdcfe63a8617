// gigafab weights show | set KEY=VALUE...: the router's weights and
// thresholds for a product, stored (and audited) on the state ref.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/wire.hpp"

namespace gigafab::cli {

Runner define_weights(CLI::App& app, Context&) {
  app.require_subcommand(1);
  CLI::App* show = app.add_subcommand("show", "print the product's router settings");
  CLI::App* set = app.add_subcommand("set", "change settings: weights.load=0.5 starvation_window=20m preemption=true");
  show->fallthrough();
  set->fallthrough();
  auto assignments = std::make_shared<std::vector<std::string>>();
  set->add_option("assignments", *assignments, "KEY=VALUE")->required();
  return [set, assignments](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto settings = set->parsed() ? (*fleet)->update_settings(ctx.globals.product, *assignments)
                                  : (*fleet)->settings(ctx.globals.product);
    if (!settings) return settings.error();
    auto entries = core::settings_entries(*settings);
    if (ctx.globals.json) {
      print_json(core::settings_to_json(*settings));
      return {};
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& [key, value] : entries) rows.push_back({key, value});
    print_table(rows);
    return {};
  };
}

}  // namespace gigafab::cli
