// Options shared by the fenced worker commands (renew, start, checkpoint,
// report, release): ID --epoch N --factory F.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cli/command.hpp"
#include "core/job.hpp"
#include "core/lifecycle.hpp"

namespace gigafab::cli {

struct WorkerOptions {
  std::string id;
  std::int64_t epoch = 0;
  std::string factory;
};

// Adds ID, --epoch (required) and --factory (required, GIGAFAB_FACTORY).
void add_worker_options(CLI::App& app, WorkerOptions& options);
core::WorkerCall worker_call(const WorkerOptions& options, const Context& ctx);

// "ID STAGE EPOCH" for people, the job document with --json.
void print_job_state(const core::Job& job, bool json);

}  // namespace gigafab::cli
