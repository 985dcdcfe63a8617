// One seat of `gigafab agent`: runs a claimed job from worktree to report.
//
// The job's life on a seat: clone the job's repository into
// <workdir>/<id>-e<epoch> (from the checkpoint branch when there is one),
// start, run the engine in its own process group with the lease renewed every
// ttl/3 and its output stored in the fleet every few seconds (`gigafab
// logs`), then commit and push the worktree to gigafab/<id>, checkpoint, and
// report pass/fail. A fenced renewal kills the engine and abandons the job
// (someone else holds it now); the wall budget kills it and reports
// budget_exceeded; a stop request kills it, pushes and releases the job.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "cli/agent/engines.hpp"
#include "core/fleet.hpp"

namespace gigafab::cli::agent {

struct AgentConfig {
  std::string factory;
  std::string product;
  std::string workdir;
  std::int64_t ttl_seconds = 60;
  std::optional<std::string> engine;          // --engine: overrides the job's
  std::optional<std::string> engine_command;  // --engine-command: the shell engine's command
  std::map<std::string, Engine> engines;      // from engines.toml
  int kill_grace_ms = 5000;                   // GIGAFAB_KILL_GRACE
  int output_every_ms = 2000;                 // how often the engine's output is stored
};

// The fleet, shared by the seats one call at a time.
class SharedFleet {
 public:
  explicit SharedFleet(core::Fleet& fleet) : m_fleet(fleet) {}
  template <typename F>
  auto with(F&& f) {
    std::lock_guard lock(m_mutex);
    return f(m_fleet);
  }

 private:
  core::Fleet& m_fleet;
  std::mutex m_mutex;
};

enum class Outcome { reported, released, abandoned };

// Runs the claimed job to its end and says how it ended; progress and
// problems go to stderr as "gigafab: agent: job ID: ...". Setting `stop`
// makes it stop the engine, push and release the job.
Outcome run_job(const AgentConfig& config, SharedFleet& fleet, const core::Claimed& claimed,
                const std::atomic<bool>& stop);

// What an engine printed about its spend: the last line of the form
// {"gigafab": {"tokens": N, "costUsd": X}}, or Claude Code's JSON result line
// (total_cost_usd, and the usage's input + output + cache tokens).
struct Spend {
  std::optional<std::int64_t> tokens;
  std::optional<double> cost_usd;
};
Spend parse_spend(const std::string& output);
// The last non-empty line of `output` that is not a spend line (of a Claude
// JSON result: the last line of its "result"), at most 1000 bytes.
std::string summary_line(const std::string& output);

}  // namespace gigafab::cli::agent
