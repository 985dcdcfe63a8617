// gigafab sync: fetch the coordinating remote and say what changed since the
// last fetch (one line per transition that arrived).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

Runner define_sync(CLI::App&, Context&) {
  return [](Context& ctx) -> Result<void> {
    ctx.fetch_on_open = false;  // fetches on its own
    auto fleet = ctx.local_fleet("sync");
    if (!fleet) return fleet.error();
    gitstore::Store& store = (*fleet)->store();
    if (ctx.globals.offline) return core::make_error(core::ErrorCode::usage, "sync fetches; it cannot run --offline");
    auto arrived = store.sync();
    if (!arrived) return arrived.error();
    if (ctx.globals.json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& c : *arrived) {
        list.push_back({{"commit", c.oid}, {"time", core::format_time(c.time)}, {"summary", c.summary},
                        {"op", c.trailer("Gigafab-Op")}, {"job", c.trailer("Gigafab-Job")}});
      }
      print_json({{"remote", store.remote_name()}, {"arrived", std::move(list)}});
      return {};
    }
    if (arrived->empty()) {
      std::printf("up to date with remote '%s'\n", store.remote_name().c_str());
      return {};
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : *arrived) {
      rows.push_back({core::format_time(c.time).substr(0, 19) + "Z", c.oid.substr(0, 10), c.summary});
    }
    print_table(rows);
    std::printf("%zu transition%s from remote '%s'\n", arrived->size(), arrived->size() == 1 ? "" : "s",
                store.remote_name().c_str());
    return {};
  };
}

}  // namespace gigafab::cli
