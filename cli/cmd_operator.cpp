// The operator gates: gigafab approve|reject|requeue|ship ID. One command
// each in the table; they differ only in the action, so they share this file.
#include <CLI/CLI.hpp>

#include "cli/worker_options.hpp"

namespace gigafab::cli {

namespace {

Runner define_action(CLI::App& app, core::OperatorAction action) {
  auto id = std::make_shared<std::string>();
  app.add_option("id", *id, "job id")->required();
  return [id, action](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto job = (*fleet)->act(action, *id, ctx.globals.product);
    if (!job) return job.error();
    print_job_state(*job, ctx.globals.json);
    return {};
  };
}

}  // namespace

Runner define_approve(CLI::App& app, Context&) { return define_action(app, core::OperatorAction::approve); }
Runner define_reject(CLI::App& app, Context&) { return define_action(app, core::OperatorAction::reject); }
Runner define_requeue(CLI::App& app, Context&) { return define_action(app, core::OperatorAction::requeue); }
Runner define_ship(CLI::App& app, Context&) { return define_action(app, core::OperatorAction::ship); }

}  // namespace gigafab::cli
