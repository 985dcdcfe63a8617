// gigafab logs ID [--epoch N] [--from BYTE] [--follow]: what the engine of a
// run printed, as the agent stored it (core/run_output.hpp), readable from
// any host that reads the fleet.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/wire.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

namespace {

void write_text(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void note_dropped(const core::RunOutput& out, std::int64_t asked) {
  if (out.from > asked) {
    std::fprintf(stderr, "gigafab: logs: bytes %lld-%lld of run %lld were dropped (a run keeps its last %lld bytes)\n",
                 static_cast<long long>(asked), static_cast<long long>(out.from), static_cast<long long>(out.epoch),
                 static_cast<long long>(core::k_run_output_limit));
  }
}

}  // namespace

Runner define_logs(CLI::App& app, Context&) {
  struct Options {
    std::string id;
    std::optional<std::int64_t> epoch;
    std::int64_t from = 0;
    bool follow = false;
    double poll = 0.5;
  };
  auto opts = std::make_shared<Options>();
  app.add_option("id", opts->id, "job id")->required();
  app.add_option("--epoch", opts->epoch, "the run with this lease epoch (default: the latest run)");
  app.add_option("--from", opts->from, "start at this byte of the run's output");
  app.add_flag("--follow,-f", opts->follow,
               "keep printing as the engine writes, until the run ends (with --json: one object per piece)");
  app.add_option("--poll", opts->poll, "with --follow: seconds between reads (default 0.5)");
  return [opts](Context& ctx) -> Result<void> {
    if (opts->from < 0) return core::make_error(core::ErrorCode::usage, "--from must not be negative");
    if (opts->poll <= 0 || opts->poll > 60) return core::make_error(core::ErrorCode::usage, "--poll must be in (0, 60] seconds");
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    if (!opts->follow) {
      auto out = (*fleet)->output(opts->id, ctx.globals.product, opts->epoch, opts->from);
      if (!out) return out.error();
      if (ctx.globals.json) {
        print_json(core::run_output_to_json(*out));
      } else {
        note_dropped(*out, opts->from);
        write_text(out->text);
      }
      return {};
    }
    // Following: with a git remote, each read fetches first; the run is
    // pinned once found, so a later run does not take over the stream.
    gitstore::LocalFleet* local = nullptr;
    if (ctx.globals.api.empty()) {
      auto l = ctx.local_fleet("logs");
      if (l) local = *l;
    }
    std::optional<std::int64_t> epoch = opts->epoch;
    std::int64_t from = opts->from;
    auto pause = std::chrono::milliseconds(static_cast<std::int64_t>(opts->poll * 1000));
    for (bool first = true;; first = false) {
      if (local && !first) {
        if (auto ok = local->store().refresh(); !ok) return ok.error();
      }
      auto out = (*fleet)->output(opts->id, ctx.globals.product, epoch, from);
      if (!out) {
        // Not run yet: wait for the first run, as `tail -F` waits for a file.
        if (out.error().code == core::ErrorCode::not_found && !epoch && out.error().message.ends_with("has not run yet")) {
          std::this_thread::sleep_for(pause);
          continue;
        }
        return out.error();
      }
      epoch = out->epoch;
      if (ctx.globals.json) {
        if (!out->text.empty() || !out->live) {
          std::printf("%s\n", core::run_output_to_json(*out).dump().c_str());
          std::fflush(stdout);
        }
      } else {
        note_dropped(*out, from);
        write_text(out->text);
      }
      from = out->from + static_cast<std::int64_t>(out->text.size());
      if (!out->live) return {};
      std::this_thread::sleep_for(pause);
    }
  };
}

}  // namespace gigafab::cli
