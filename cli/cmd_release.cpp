// gigafab release ID --epoch N --factory F: back to the queue, checkpoint kept.
#include <CLI/CLI.hpp>

#include "cli/worker_options.hpp"

namespace gigafab::cli {

Runner define_release(CLI::App& app, Context&) {
  auto opts = std::make_shared<WorkerOptions>();
  add_worker_options(app, *opts);
  return [opts](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto job = (*fleet)->release(worker_call(*opts, ctx));
    if (!job) return job.error();
    print_job_state(*job, ctx.globals.json);
    return {};
  };
}

}  // namespace gigafab::cli
