// gigafab start ID --epoch N --factory F: assigned -> building.
#include <CLI/CLI.hpp>

#include "cli/worker_options.hpp"

namespace gigafab::cli {

Runner define_start(CLI::App& app, Context&) {
  auto opts = std::make_shared<WorkerOptions>();
  add_worker_options(app, *opts);
  return [opts](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto job = (*fleet)->start(worker_call(*opts, ctx));
    if (!job) return job.error();
    print_job_state(*job, ctx.globals.json);
    return {};
  };
}

}  // namespace gigafab::cli
