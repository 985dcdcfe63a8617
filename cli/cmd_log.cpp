// gigafab log [ID] [--limit N]: the audit trail, read from the history of
// refs/gigafab/state, oldest first.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/wire.hpp"

namespace gigafab::cli {

Runner define_log(CLI::App& app, Context&) {
  struct Options {
    std::string job;
    std::size_t limit = 0;
    bool all = false;
  };
  auto opts = std::make_shared<Options>();
  app.add_option("id", opts->job, "only this job's transitions");
  app.add_option("--limit", opts->limit, "only the last N entries");
  app.add_flag("--all", opts->all, "include lease renewals (hidden by default)");
  return [opts](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    std::optional<std::string> job;
    if (!opts->job.empty()) job = opts->job;
    auto entries = (*fleet)->log(job, ctx.globals.product);
    if (!entries) return entries.error();
    if (!opts->all) {
      std::erase_if(*entries, [](const core::AuditEntry& e) { return e.op == "renew"; });
    }
    if (opts->limit && entries->size() > opts->limit) entries->resize(opts->limit);
    std::reverse(entries->begin(), entries->end());
    if (ctx.globals.json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& e : *entries) list.push_back(core::audit_entry_to_json(e));
      print_json({{"entries", std::move(list)}});
      return {};
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : *entries) {
      rows.push_back({core::format_time(e.time).substr(0, 19) + "Z", e.commit.substr(0, 10), e.op.empty() ? "-" : e.op,
                      e.job.empty() ? "-" : e.job, e.actor.empty() ? "-" : e.actor, e.summary});
    }
    print_table(rows);
    return {};
  };
}

}  // namespace gigafab::cli
