// gigafab list [--stage S]...
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/json.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

Runner define_list(CLI::App& app, Context&) {
  auto stages = std::make_shared<std::vector<std::string>>();
  app.add_option("--stage", *stages, "only jobs in this stage (repeatable, or comma-separated)")->delimiter(',');
  return [stages](Context& ctx) -> Result<void> {
    core::JobFilter filter;
    filter.product = ctx.globals.product;
    for (const auto& name : *stages) {
      auto stage = core::parse_stage(name);
      if (!stage) return stage.error();
      filter.stages.push_back(*stage);
    }
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    if (auto* local = dynamic_cast<gitstore::LocalFleet*>(*fleet); local && ctx.globals.json) {
      // Written as it is read, a MiB at a time: 100,000 jobs are about 80 MB.
      auto listing = local->list_rows(filter);
      if (!listing) return listing.error();
      core::JobRowsWriter writer(*listing);
      std::string part;
      for (;;) {
        part.clear();
        auto more = writer.next(part, std::size_t{1} << 20);
        if (!more) return more.error();
        std::fwrite(part.data(), 1, part.size(), stdout);
        if (!*more) break;
      }
      std::fputc('\n', stdout);
      return {};
    }
    auto jobs = (*fleet)->list(filter);
    if (!jobs) return jobs.error();
    if (ctx.globals.json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& job : *jobs) list.push_back(core::job_to_json(job));
      print_json({{"jobs", std::move(list)}});
      return {};
    }
    if (jobs->empty()) return {};
    std::vector<std::vector<std::string>> rows = {{"ID", "STAGE", "PRIORITY", "EPOCH", "CREATED", "TITLE"}};
    for (const auto& job : *jobs) {
      rows.push_back({job.id, core::stage_name(job.stage), core::priority_name(job.priority),
                      std::to_string(job.lease_epoch), core::format_time(job.created_at).substr(0, 19) + "Z",
                      job.title});
    }
    print_table(rows);
    return {};
  };
}

}  // namespace gigafab::cli
