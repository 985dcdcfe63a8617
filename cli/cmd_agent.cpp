// gigafab agent --factory F --caps a,b [--engine NAME] [--engines FILE] [--seats N] [--poll SECONDS]
//               [--drain] [--max-jobs N] [--workdir DIR] [--ttl SECONDS] [--engine-command CMD]
//
// The factory loop: heartbeat, then claim jobs and run each on a seat (a
// thread; see cli/agent/runner.hpp) until stopped. SIGTERM/SIGINT stop the
// claiming; every running job is stopped, pushed and released before exit 0.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <list>
#include <thread>

#include "cli/agent/runner.hpp"
#include "cli/command.hpp"
#include "gitstore/store.hpp"

namespace gigafab::cli {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

struct Seat {
  std::thread thread;
  std::atomic<bool> done{false};
  std::string job_id;
};

}  // namespace

Runner define_agent(CLI::App& app, Context&) {
  struct Options {
    std::string factory;
    std::vector<std::string> caps;
    std::optional<std::string> engine;
    std::optional<std::string> engines_file;
    std::optional<std::string> engine_command;
    std::int64_t seats = 1;
    double poll = 5;
    bool drain = false;
    std::int64_t max_jobs = 0;
    std::string workdir = "gigafab-work";
    std::int64_t ttl = 60;
    double output_every = 2;
  };
  auto o = std::make_shared<Options>();
  app.add_option("--factory", o->factory, "this factory's id")->required()->envname("GIGAFAB_FACTORY");
  CLI::Option* caps_option =
      app.add_option("--caps", o->caps, "capabilities offered, comma-separated (default: as registered)")->delimiter(',');
  app.add_option("--engine", o->engine, "the engine for every job (default: the job's, else shell)");
  app.add_option("--engines", o->engines_file,
                 "engines.toml (default: $GIGAFAB_ENGINES, <store>/engines.toml, ~/.config/gigafab/engines.toml)");
  app.add_option("--engine-command", o->engine_command, "the command of the shell engine (split on spaces)");
  app.add_option("--seats", o->seats, "jobs run in parallel (default 1)");
  app.add_option("--poll", o->poll, "seconds between claims while nothing fits (default 5)");
  app.add_flag("--drain", o->drain, "exit once nothing fits and no job of ours is running");
  app.add_option("--max-jobs", o->max_jobs, "stop claiming after this many jobs (default: no limit)");
  app.add_option("--workdir", o->workdir, "where worktrees and run logs go (default ./gigafab-work)");
  app.add_option("--ttl", o->ttl, "lease length in seconds, renewed every ttl/3 (default 60)");
  app.add_option("--output-every", o->output_every,
                 "seconds between stores of the engine's output, read with 'gigafab logs' (default 2)");
  return [o, caps_option](Context& ctx) -> Result<void> {
    using core::ErrorCode;
    if (o->seats < 1 || o->seats > 256) return core::make_error(ErrorCode::usage, "--seats must be 1 to 256");
    if (o->poll < 0) return core::make_error(ErrorCode::usage, "--poll must not be negative");
    if (o->max_jobs < 0) return core::make_error(ErrorCode::usage, "--max-jobs must not be negative");
    if (auto ok = core::validate_ttl(o->ttl); !ok) return ok.error();
    if (o->output_every < 0.1 || o->output_every > 3600) {
      return core::make_error(ErrorCode::usage, "--output-every must be 0.1 to 3600 seconds");
    }

    agent::AgentConfig config;
    config.factory = o->factory;
    config.product = ctx.globals.product;
    std::error_code ec;
    std::filesystem::create_directories(o->workdir, ec);
    if (ec) return core::make_error(ErrorCode::error, "cannot create workdir '" + o->workdir + "': " + ec.message());
    config.workdir = std::filesystem::absolute(o->workdir).lexically_normal().string();
    config.ttl_seconds = o->ttl;
    config.output_every_ms = static_cast<int>(o->output_every * 1000);
    config.engine = o->engine;
    config.engine_command = o->engine_command;
    if (const char* grace = std::getenv("GIGAFAB_KILL_GRACE"); grace && *grace) {
      auto seconds = core::parse_duration(grace);
      if (!seconds) return core::make_error(ErrorCode::usage, "GIGAFAB_KILL_GRACE: " + seconds.error().message);
      config.kill_grace_ms = static_cast<int>(*seconds * 1000);
    }
    std::optional<std::string> store_engines;
    if (ctx.globals.api.empty()) {
      if (auto store = gitstore::Store::locate(ctx.globals.store)) store_engines = *store + "/engines.toml";
    }
    auto engines = agent::load_engines(o->engines_file, store_engines);
    if (!engines) return engines.error();
    config.engines = std::move(*engines);
    if (o->engine) {
      if (auto e = agent::resolve_engine(*o->engine, config.engines, o->engine_command); !e) return e.error();
    }

    auto opened = ctx.fleet();
    if (!opened) return opened.error();
    agent::SharedFleet fleet(**opened);

    std::optional<std::vector<std::string>> caps;
    if (caps_option->count() > 0) caps = o->caps;
    auto heartbeat = [&](double load) {
      core::HeartbeatInput beat{o->factory, config.product, caps, o->seats, o->engine, std::nullopt, load, Context::actor()};
      return fleet.with([&](core::Fleet& f) { return f.heartbeat(beat); });
    };
    if (auto beat = heartbeat(0); !beat) return beat.error();

    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    struct sigaction old_term {}, old_int {};
    sigaction(SIGTERM, &action, &old_term);
    sigaction(SIGINT, &action, &old_int);
    std::signal(SIGPIPE, SIG_IGN);

    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::condition_variable seat_freed;
    std::list<Seat> seats;
    std::int64_t claimed_count = 0;
    bool said_deferred = false;
    auto last_beat = std::chrono::steady_clock::now();
    std::optional<core::Error> fatal;

    // Waits up to `seconds` for a seat to finish or a stop signal.
    auto pause = [&](double seconds) {
      auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
      std::unique_lock lock(mutex);
      while (!g_stop_signal && std::chrono::steady_clock::now() < until) {
        bool any_done = false;
        for (auto& s : seats) any_done = any_done || s.done.load();
        if (any_done) return;
        seat_freed.wait_for(lock, std::chrono::milliseconds(100));
      }
    };
    auto reap_seats = [&] {
      for (auto it = seats.begin(); it != seats.end();) {
        if (it->done.load()) {
          it->thread.join();
          it = seats.erase(it);
        } else {
          ++it;
        }
      }
    };

    for (;;) {
      reap_seats();
      if (g_stop_signal) break;
      auto now = std::chrono::steady_clock::now();
      if (now - last_beat >= std::chrono::seconds(30)) {
        if (auto beat = heartbeat(static_cast<double>(seats.size()) / static_cast<double>(o->seats)); !beat)
          std::fprintf(stderr, "gigafab: agent: heartbeat: %s\n", beat.error().message.c_str());
        last_beat = now;
      }
      bool limit_reached = o->max_jobs > 0 && claimed_count >= o->max_jobs;
      if (limit_reached) {
        if (seats.empty()) break;
        pause(1);
        continue;
      }
      if (static_cast<std::int64_t>(seats.size()) >= o->seats) {
        pause(1);
        continue;
      }
      core::ClaimInput input{config.product, o->factory, caps, o->ttl, 0};
      auto claimed = fleet.with([&](core::Fleet& f) { return f.claim(input); });
      if (!claimed) {
        ErrorCode code = claimed.error().code;
        if (code == ErrorCode::nothing_to_claim) {
          // Jobs left for a better-fitting factory return to all after the
          // defer window: draining waits for them.
          bool deferred = claimed.error().reason == "deferred";
          if (o->drain && seats.empty() && !deferred) break;
          if (deferred && !said_deferred) {
            std::fprintf(stderr, "gigafab: agent: %s; waiting\n", claimed.error().message.c_str());
            said_deferred = true;
          }
        } else if (code == ErrorCode::usage || code == ErrorCode::unauthorized) {
          fatal = claimed.error();
          break;
        } else {
          std::fprintf(stderr, "gigafab: agent: claim: %s\n", claimed.error().message.c_str());
        }
        pause(o->poll);
        continue;
      }
      ++claimed_count;
      std::fprintf(stderr, "gigafab: agent: claimed %s (epoch %lld)\n", claimed->job.id.c_str(),
                   static_cast<long long>(claimed->lease.epoch));
      Seat& seat = seats.emplace_back();
      seat.job_id = claimed->job.id;
      seat.thread = std::thread([&config, &fleet, &stop, &seat, &seat_freed, &mutex, job = *claimed] {
        agent::run_job(config, fleet, job, stop);
        std::lock_guard lock(mutex);
        seat.done = true;
        seat_freed.notify_all();
      });
    }
    if (g_stop_signal) {
      std::fprintf(stderr, "gigafab: agent: stopping: releasing %zu job(s)\n", seats.size());
    }
    stop = true;
    for (auto& s : seats) s.thread.join();
    seats.clear();
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGINT, &old_int, nullptr);
    if (fatal) return *fatal;
    return {};
  };
}

}  // namespace gigafab::cli
