#include "cli/bench_fleet.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "cli/bench_stats.hpp"
#include "cli/remote_fleet.hpp"
#include "core/fleet.hpp"
#include "core/manifest.hpp"
#include "gitstore/local_fleet.hpp"
#include "gitstore/store.hpp"

extern char** environ;

namespace gigafab::cli {

namespace {

using bench::Clock;
using bench::ms_since;
using bench::percentile;
using core::ErrorCode;
using core::make_error;
using core::Result;

// A bench job's manifest: needs only the run's capability.
std::string bench_source(const std::string& capability, const std::string& title) {
  return "+++\ntitle = \"" + title + "\"\ncapabilities = [\"" + capability +
         "\"]\n+++\n# " + title + "\n\nsubmitted by gigafab bench, which ships it when done\n";
}

Result<core::SubmitInput> bench_submit(const BenchTag& tag) {
  std::string source = bench_source(tag.capability, "gigafab bench " + tag.capability);
  auto manifest = core::parse_manifest(source, "bench");
  if (!manifest) return manifest.error();
  return core::SubmitInput{std::move(*manifest), tag.product, std::move(source)};
}

// One step of a bench job towards shipped; true once it is there.
Result<bool> finish_step(core::Fleet& fleet, const BenchTag& tag, const std::string& factory, const std::string& id) {
  auto detail = fleet.show(id, tag.product);
  if (!detail) return detail.error();
  const core::Job& job = detail->job;
  auto as_holder = [&]() -> Result<core::WorkerCall> {
    if (!detail->lease) return make_error(ErrorCode::error, "bench job " + id + " is " + core::stage_name(job.stage) + " without a lease");
    return core::WorkerCall{id, detail->lease->holder, detail->lease->epoch, tag.product, ""};
  };
  switch (job.stage) {
    case core::Stage::shipped:
      return true;
    case core::Stage::queued: {
      // Any of the run's jobs may come back: each is walked on in its turn.
      core::ClaimInput input{tag.product, factory, job.capabilities, 600, 0};
      auto claimed = fleet.claim(input);
      if (!claimed && claimed.error().code != ErrorCode::nothing_to_claim) return claimed.error();
      return false;
    }
    case core::Stage::assigned: {
      auto call = as_holder();
      if (!call) return call.error();
      if (auto ok = fleet.start(*call); !ok && ok.error().code != ErrorCode::fenced) return ok.error();
      return false;
    }
    case core::Stage::building: {
      auto call = as_holder();
      if (!call) return call.error();
      core::ReportInput report;
      report.pass = true;
      report.summary = "gigafab bench";
      if (auto ok = fleet.report(*call, report); !ok && ok.error().code != ErrorCode::fenced) return ok.error();
      return false;
    }
    case core::Stage::review:
      if (auto ok = fleet.act(core::OperatorAction::approve, id, tag.product); !ok) return ok.error();
      return false;
    case core::Stage::testing:
      if (auto ok = fleet.act(core::OperatorAction::ship, id, tag.product); !ok) return ok.error();
      return true;
    case core::Stage::failed:
      if (auto ok = fleet.act(core::OperatorAction::requeue, id, tag.product); !ok) return ok.error();
      return false;
    default:
      return make_error(ErrorCode::error,
                        "bench job " + id + " is " + core::stage_name(job.stage) + "; the bench cannot finish it");
  }
}

}  // namespace

Result<ClaimerFigures> run_claimer_processes(const ClaimerRun& run, std::size_t claimers, std::size_t total) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<std::vector<double>> latencies(claimers);
  std::vector<std::thread> threads;
  std::atomic<std::size_t> left{total};
  std::atomic<bool> failed{false};
  auto start = Clock::now();
  for (std::size_t k = 0; k < claimers; ++k) {
    threads.emplace_back([&, k] {
      std::string factory = run.factory_prefix + std::to_string(k);
      const char* argv[] = {self.c_str(), "--store", run.store.c_str(), "--product", run.product.c_str(), "claim",
                            "--factory", factory.c_str(), "--caps", run.capabilities.c_str(), nullptr};
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
      while (!failed.load()) {
        // Takes one claim of the total; none left: done.
        std::size_t n = left.load();
        while (n > 0 && !left.compare_exchange_weak(n, n - 1)) {
        }
        if (n == 0) break;
        auto t = Clock::now();
        pid_t pid = 0;
        if (posix_spawn(&pid, self.c_str(), &actions, nullptr, const_cast<char**>(argv), environ) != 0) {
          failed = true;
          break;
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 6) break;  // the queue is empty
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          failed = true;
          break;
        }
        latencies[k].push_back(ms_since(t));
      }
      posix_spawn_file_actions_destroy(&actions);
    });
  }
  for (auto& t : threads) t.join();
  double wall = ms_since(start);
  if (failed) return make_error(ErrorCode::error, "a bench claimer failed (gigafab --store " + run.store + " claim)");
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  return ClaimerFigures{claimers, all.size(), percentile(all, 0.5), percentile(all, 0.99),
                        wall > 0 ? static_cast<double>(all.size()) * 1000.0 / wall : 0};
}

BenchTag new_bench_tag() {
  std::random_device device;
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(device()));
  BenchTag tag;
  tag.capability = std::string("bench-") + hex;
  return tag;
}

Result<std::size_t> finish_bench_jobs(core::Fleet& fleet, const BenchTag& tag, const std::string& factory,
                                      const std::vector<std::string>& ids) {
  std::size_t shipped = 0;
  for (const auto& id : ids) {
    // Queued, assigned, building, testing, shipped: four steps; a job that
    // another of the run's claims took on the way needs a few more.
    constexpr int k_steps = 12;
    bool done = false;
    for (int step = 0; step < k_steps && !done; ++step) {
      auto stepped = finish_step(fleet, tag, factory, id);
      if (!stepped) return stepped.error();
      done = *stepped;
    }
    if (!done) return make_error(ErrorCode::error, "bench job " + id + " did not reach shipped");
    ++shipped;
  }
  return shipped;
}

Result<void> probe_api_bench(const std::string& url, const std::string& token) {
  BenchTag tag;
  auto probe = RemoteFleet::create(url, token, tag.product, "bench");
  if (!probe) return probe.error();
  if (auto ok = (*probe)->list(core::JobFilter{tag.product, {core::Stage::queued}}); !ok) {
    return make_error(ok.error().code, "--api " + url + ": " + ok.error().message + " (the bench submits to product " +
                                           tag.product + ": it needs an operator token of that product or of all products)");
  }
  return {};
}

Result<ApiBench> run_api_bench(const std::string& url, const std::string& token, std::size_t clients, double seconds,
                               std::size_t jobs) {
  ApiBench out;
  out.url = url;
  out.tag = new_bench_tag();
  auto input = bench_submit(out.tag);
  if (!input) return input.error();
  if (auto ok = probe_api_bench(url, token); !ok) return ok.error();

  // Submits by every client at once.
  std::vector<std::string> ids;
  std::mutex ids_mutex;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::string failure;
  auto fail = [&](const core::Error& e) {
    std::lock_guard lock(ids_mutex);
    if (!failed.exchange(true)) failure = e.message;
  };
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < clients; ++k) {
    threads.emplace_back([&] {
      auto fleet = RemoteFleet::create(url, token, out.tag.product, "bench");
      if (!fleet) return fail(fleet.error());
      while (!failed.load() && next.fetch_add(1) < jobs) {
        auto submitted = (*fleet)->submit(*input);
        if (!submitted) return fail(submitted.error());
        std::lock_guard lock(ids_mutex);
        ids.push_back(submitted->job.id);
      }
    });
  }
  for (auto& t : threads) t.join();
  double submit_ms = ms_since(start);
  out.submitted = ids.size();
  out.submits_per_second = submit_ms > 0 ? static_cast<double>(ids.size()) * 1000.0 / submit_ms : 0;

  const std::string prefix = out.tag.capability + "-";
  Result<void> measured;
  if (failed) {
    measured = Result<void>(make_error(ErrorCode::error, "a bench client's submit failed: " + failure));
  } else {
    HttpTarget target{url, token, out.tag.product, {out.tag.capability}, prefix};
    auto cycles = measure_http_cycles(target, clients, seconds);
    if (!cycles) {
      measured = cycles.error();
    } else {
      out.cycles = *cycles;
      auto latency = measure_submit_to_claim(target, out.tag.capability + "-s2c", k_submit_to_claim_rounds, &ids);
      if (!latency) {
        measured = latency.error();
      } else {
        out.submit_to_claim_p50_ms = *latency;
      }
    }
  }

  // Whatever happened, what was submitted is finished (by every client at
  // once: each takes the next job of the list).
  std::fprintf(stderr, "gigafab: bench: shipping the %zu bench jobs on %s (product %s)\n", ids.size(), url.c_str(),
               out.tag.product.c_str());
  std::atomic<std::size_t> shipped{0};
  std::atomic<std::size_t> cursor{0};
  failed = false;
  threads.clear();
  for (std::size_t k = 0; k < clients; ++k) {
    threads.emplace_back([&, k] {
      auto fleet = RemoteFleet::create(url, token, out.tag.product, "bench");
      if (!fleet) return fail(fleet.error());
      std::string factory = prefix + "finish-" + std::to_string(k);
      while (!failed.load()) {
        std::size_t i = cursor.fetch_add(1);
        if (i >= ids.size()) break;
        auto done = finish_bench_jobs(**fleet, out.tag, factory, {ids[i]});
        if (!done) return fail(done.error());
        shipped += *done;
      }
    });
  }
  for (auto& t : threads) t.join();
  out.finished = shipped.load();
  if (!measured) return measured.error();
  if (failed) return make_error(ErrorCode::error, "cannot finish the bench's jobs: " + failure);
  return out;
}

Result<RemoteBench> run_remote_bench(const gitstore::Store& store, const std::string& root,
                                     const std::vector<std::size_t>& levels, std::size_t per_level, bool fsync,
                                     const std::string& actor) {
  RemoteBench out;
  out.name = store.remote_name();
  out.url = store.remote_url();
  if (out.name.empty()) {
    return make_error(ErrorCode::usage, "bench --remote: this store has no remote (gigafab remote add NAME URL)");
  }
  out.tag = new_bench_tag();
  const std::string copy = root + "/remote-copy";
  auto start = Clock::now();
  auto made = gitstore::Store::init_from_remote(copy, store.remote_location(), out.name, gitstore::InitOptions{fsync},
                                                actor);
  if (!made) return made.error();
  out.copy_seconds = ms_since(start) / 1000.0;
  gitstore::LocalFleet fleet(std::move(*made), actor, std::nullopt);

  auto input = bench_submit(out.tag);
  if (!input) return input.error();
  std::vector<std::string> ids;
  std::vector<double> latencies;
  Result<void> measured;
  for (std::size_t i = 0; i < per_level * levels.size(); ++i) {
    auto t = Clock::now();
    auto submitted = fleet.submit(*input);
    if (!submitted) {
      measured = submitted.error();
      break;
    }
    latencies.push_back(ms_since(t));
    ids.push_back(submitted->job.id);
  }
  out.submits = ids.size();
  out.submit_p50_ms = percentile(latencies, 0.5);
  out.submit_p99_ms = percentile(latencies, 0.99);
  const std::string prefix = out.tag.capability + "-";
  if (measured) {
    for (std::size_t k : levels) {
      ClaimerRun run{copy, out.tag.product, out.tag.capability, prefix + std::to_string(k) + "-"};
      auto figures = run_claimer_processes(run, k, per_level);
      if (!figures) {
        measured = figures.error();
        break;
      }
      out.levels.push_back(*figures);
    }
  }
  std::fprintf(stderr, "gigafab: bench: shipping the %zu bench jobs through remote '%s' (product %s)\n", ids.size(),
               out.name.c_str(), out.tag.product.c_str());
  auto finished = finish_bench_jobs(fleet, out.tag, prefix + "finish", ids);
  if (!measured) return measured.error();
  if (!finished) return make_error(ErrorCode::error, "cannot finish the bench's jobs: " + finished.error().message);
  out.finished = *finished;
  return out;
}

}  // namespace gigafab::cli
