// gigafab checkpoint ID --epoch N --factory F --ref REF: records pushed work in
// progress, which a later claim resumes from.
#include <CLI/CLI.hpp>

#include "cli/worker_options.hpp"

namespace gigafab::cli {

Runner define_checkpoint(CLI::App& app, Context&) {
  auto opts = std::make_shared<WorkerOptions>();
  auto ref = std::make_shared<std::string>();
  add_worker_options(app, *opts);
  app.add_option("--ref", *ref, "the pushed branch or ref holding the work in progress")->required();
  return [opts, ref](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto job = (*fleet)->checkpoint(worker_call(*opts, ctx), *ref);
    if (!job) return job.error();
    print_job_state(*job, ctx.globals.json);
    return {};
  };
}

}  // namespace gigafab::cli
