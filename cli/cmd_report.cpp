// gigafab report ID --epoch N --factory F --result pass|fail [--cost USD] [--tokens N] [--summary TEXT] [--reason NAME]
#include <CLI/CLI.hpp>

#include "cli/worker_options.hpp"

namespace gigafab::cli {

Runner define_report(CLI::App& app, Context&) {
  struct Options {
    WorkerOptions worker;
    std::string result;
    std::optional<double> cost;
    std::optional<std::int64_t> tokens;
    std::string summary;
    std::string reason;
  };
  auto opts = std::make_shared<Options>();
  add_worker_options(app, opts->worker);
  app.add_option("--result", opts->result, "pass or fail")->required()->check(CLI::IsMember({"pass", "fail"}));
  app.add_option("--cost", opts->cost, "what the run cost, in USD");
  app.add_option("--tokens", opts->tokens, "tokens the run used");
  app.add_option("--summary", opts->summary, "what was done");
  app.add_option("--reason", opts->reason, "why a failing run failed (e.g. budget_exceeded; default reported_fail)");
  return [opts](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    core::ReportInput input{opts->result == "pass", opts->cost, opts->tokens, opts->summary, opts->reason};
    auto job = (*fleet)->report(worker_call(opts->worker, ctx), input);
    if (!job) return job.error();
    print_job_state(*job, ctx.globals.json);
    return {};
  };
}

}  // namespace gigafab::cli
