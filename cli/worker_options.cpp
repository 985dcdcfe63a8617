#include "cli/worker_options.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "core/json.hpp"

namespace gigafab::cli {

void add_worker_options(CLI::App& app, WorkerOptions& options) {
  app.add_option("id", options.id, "job id")->required();
  app.add_option("--epoch", options.epoch, "the lease epoch printed by claim")->required();
  app.add_option("--factory", options.factory, "the factory holding the lease")->required()->envname("GIGAFAB_FACTORY");
}

core::WorkerCall worker_call(const WorkerOptions& options, const Context& ctx) {
  return core::WorkerCall{options.id, options.factory, options.epoch, ctx.globals.product, ""};
}

void print_job_state(const core::Job& job, bool json) {
  if (json) {
    print_json(core::job_to_json(job));
  } else {
    std::printf("%s %s %lld\n", job.id.c_str(), core::stage_name(job.stage), static_cast<long long>(job.lease_epoch));
  }
}

}  // namespace gigafab::cli
