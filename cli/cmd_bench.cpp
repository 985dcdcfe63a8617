// gigafab bench: measures this machine's store on scratch stores in a
// temporary directory (never a real store): submit throughput and worker
// claim -> start -> report cycles against a raw libgit2 baseline, and claim
// latency in a store of --small queued jobs against one of --jobs queued jobs,
// side by side in one run so the ratio means something.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <fcntl.h>
#include <chrono>
#include <filesystem>
#include <random>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

extern char** environ;

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/submit.hpp"
#include "gitstore/baseline.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t index = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

core::Manifest bench_manifest(std::mt19937_64& rng) {
  static const std::vector<std::vector<std::string>> k_capsets = {{}, {"linux"}, {"docker", "linux"}, {"macos", "xcode"}};
  core::Manifest m;
  m.title = "bench job";
  m.body = "# bench job\n\nbenchmark payload\n";
  m.priority = static_cast<core::Priority>(rng() % 4);
  m.capabilities = k_capsets[rng() % k_capsets.size()];
  return m;
}

// Loads `count` queued jobs, `batch` per commit (bulk load: not what is measured).
Result<void> bulk_load(gitstore::Store& store, std::size_t count, std::mt19937_64& rng) {
  constexpr std::size_t k_batch = 2000;
  core::Millis now = core::now_millis() - 60'000;
  for (std::size_t done = 0; done < count;) {
    std::size_t n = std::min(k_batch, count - done);
    auto committed = store.transact(
        [&](const core::Snapshot& snap) -> Result<core::Change> {
          core::Change all;
          for (std::size_t i = 0; i < n; ++i) {
            core::OverlaySnapshot view(snap, all);
            core::SubmitRequest request{bench_manifest(rng), "bench", std::nullopt, "bench"};
            auto result = core::submit(view, request, now + static_cast<core::Millis>(done + i), rng());
            if (!result) return result.error();
            for (auto& [path, content] : result->change.writes) all.writes[path] = std::move(content);
          }
          all.summary = "bench: load " + std::to_string(n) + " jobs";
          all.trailers = {{"Gigafab-Op", "bench-load"}, {"Gigafab-Actor", "bench"}};
          return all;
        },
        "bench");
    if (!committed) return committed.error();
    done += n;
  }
  return {};
}

struct ClaimFigures {
  std::size_t queued = 0;
  double p50 = 0, p99 = 0, per_second = 0;
};

Result<ClaimFigures> measure_claims(const fs::path& path, std::size_t queued, std::size_t claims, bool fsync,
                                    std::mt19937_64& rng) {
  auto store = gitstore::Store::init(path.string(), gitstore::InitOptions{fsync}, "bench");
  if (!store) return store.error();
  if (auto ok = bulk_load(*store, queued, rng); !ok) return ok.error();
  gitstore::LocalFleet fleet(std::move(*store), "bench", std::nullopt);
  std::vector<double> latencies;
  auto start = Clock::now();
  for (std::size_t i = 0; i < claims; ++i) {
    core::ClaimInput input;
    input.product = "bench";
    input.factory = "bench-" + std::to_string(i % 8);
    input.capabilities = std::vector<std::string>{"linux", "docker", "macos", "xcode"};
    auto t = Clock::now();
    auto claimed = fleet.claim(input);
    if (!claimed) return claimed.error();
    latencies.push_back(ms_since(t));
  }
  double total = ms_since(start);
  return ClaimFigures{queued, percentile(latencies, 0.5), percentile(latencies, 0.99),
                      static_cast<double>(claims) * 1000.0 / total};
}

struct ConcurrencyFigures {
  std::size_t claimers = 0;
  double p50 = 0, p99 = 0, per_second = 0;
};

// K processes running `gigafab claim` back to back (the real CLI path: process
// start, store open, reap, claim) until `total` claims have been made.
Result<ConcurrencyFigures> measure_cli_claimers(const fs::path& path, std::size_t claimers, std::size_t total,
                                                bool fsync, std::mt19937_64& rng) {
  auto store = gitstore::Store::init(path.string(), gitstore::InitOptions{fsync}, "bench");
  if (!store) return store.error();
  if (auto ok = bulk_load(*store, total, rng); !ok) return ok.error();
  std::string self = fs::read_symlink("/proc/self/exe").string();
  std::string store_path = path.string();
  std::vector<std::vector<double>> latencies(claimers);
  std::vector<std::thread> threads;
  std::atomic<bool> failed{false};
  auto start = Clock::now();
  for (std::size_t k = 0; k < claimers; ++k) {
    threads.emplace_back([&, k] {
      std::string factory = "claimer-" + std::to_string(k);
      const char* argv[] = {self.c_str(), "--store", store_path.c_str(), "--product", "bench", "claim", "--factory", factory.c_str(),
                            "--caps", "linux,docker,macos,xcode", nullptr};
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
      for (std::size_t i = 0; i < total; ++i) {
        auto t = Clock::now();
        pid_t pid = 0;
        if (posix_spawn(&pid, self.c_str(), &actions, nullptr, const_cast<char**>(argv), environ) != 0) {
          failed = true;
          break;
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 6) break;  // the queue is empty
        if (WEXITSTATUS(status) != 0) {
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
  if (failed) return core::make_error(core::ErrorCode::error, "a bench claimer failed");
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  return ConcurrencyFigures{claimers, percentile(all, 0.5), percentile(all, 0.99),
                            static_cast<double>(all.size()) * 1000.0 / wall};
}

}  // namespace

Runner define_bench(CLI::App& app, Context&) {
  struct Options {
    std::size_t jobs = 10000;
    std::size_t small = 1000;
    std::size_t claims = 200;
    std::size_t submits = 200;
    std::size_t cycles = 200;
    bool fsync = false;
    std::string dir;
    std::vector<std::size_t> claimers = {1, 2, 4, 8};
    std::size_t cli_claims = 80;
  };
  auto opts = std::make_shared<Options>();
  app.add_option("--jobs", opts->jobs, "queued jobs in the large store (default 10000)");
  app.add_option("--small", opts->small, "queued jobs in the small store (default 1000)");
  app.add_option("--claims", opts->claims, "claims measured per store (default 200)");
  app.add_option("--submits", opts->submits, "submits measured (default 200)");
  app.add_option("--cycles", opts->cycles, "claim -> start -> report cycles measured, at most --submits (default 200)");
  app.add_flag("--fsync", opts->fsync, "measure durable stores (fsync before acknowledging)");
  app.add_option("--claimers", opts->claimers, "concurrent CLI claimer processes to measure (default 1,2,4,8)")
      ->delimiter(',');
  app.add_option("--cli-claims", opts->cli_claims, "claims per concurrency level (default 80)");
  app.add_option("--dir", opts->dir, "where to create the scratch stores (default: a new temporary directory)");
  return [opts](Context& ctx) -> Result<void> {
    if (auto ok = ctx.require_local("bench"); !ok) return ok.error();
    if (opts->claims == 0 || opts->claims > opts->small || opts->claims > opts->jobs || opts->submits == 0 ||
        opts->cycles == 0 || opts->cycles > opts->submits || opts->cli_claims == 0) {
      return core::make_error(core::ErrorCode::usage, "--claims must be between 1 and the size of each store");
    }
    std::error_code ec;
    fs::path root = opts->dir.empty() ? fs::temp_directory_path() / ("gigafab-bench-" + std::to_string(getpid()))
                                      : fs::path(opts->dir) / ("gigafab-bench-" + std::to_string(getpid()));
    fs::create_directories(root, ec);
    if (ec) return core::make_error(core::ErrorCode::error, "cannot create " + root.string() + ": " + ec.message());
    struct Cleanup {
      fs::path path;
      ~Cleanup() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
      }
    } cleanup{root};
    std::mt19937_64 rng(42);

    // Single-writer submit throughput.
    auto store = gitstore::Store::init((root / "submit").string(), gitstore::InitOptions{opts->fsync}, "bench");
    if (!store) return store.error();
    gitstore::LocalFleet fleet(std::move(*store), "bench", std::nullopt);
    auto start = Clock::now();
    for (std::size_t i = 0; i < opts->submits; ++i) {
      auto submitted = fleet.submit(core::SubmitInput{bench_manifest(rng), "bench"});
      if (!submitted) return submitted.error();
    }
    double submit_rate = static_cast<double>(opts->submits) * 1000.0 / ms_since(start);

    // Single-writer worker cycles on the jobs just submitted: claim, start,
    // report pass (three transitions each), as one factory would make them.
    start = Clock::now();
    for (std::size_t i = 0; i < opts->cycles; ++i) {
      core::ClaimInput input;
      input.product = "bench";
      input.factory = "bench-worker";
      input.capabilities = std::vector<std::string>{"linux", "docker", "macos", "xcode"};
      auto claimed = fleet.claim(input);
      if (!claimed) return claimed.error();
      core::WorkerCall call{claimed->job.id, input.factory, claimed->lease.epoch, "bench", ""};
      if (auto started = fleet.start(call); !started) return started.error();
      if (auto reported = fleet.report(call, core::ReportInput{true, std::nullopt, std::nullopt, "bench"}); !reported) {
        return reported.error();
      }
    }
    double cycle_rate = static_cast<double>(opts->cycles) * 1000.0 / ms_since(start);

    auto baseline = gitstore::raw_commit_baseline((root / "baseline").string(), opts->submits, opts->fsync);
    if (!baseline) return baseline.error();
    std::vector<ConcurrencyFigures> concurrency;
    for (std::size_t k : opts->claimers) {
      if (k == 0 || k > 64) return core::make_error(core::ErrorCode::usage, "--claimers takes 1 to 64 processes");
      auto figures = measure_cli_claimers(root / ("claimers-" + std::to_string(k)), k, opts->cli_claims, opts->fsync, rng);
      if (!figures) return figures.error();
      concurrency.push_back(*figures);
    }

    auto small = measure_claims(root / "small", opts->small, opts->claims, opts->fsync, rng);
    if (!small) return small.error();
    auto large = measure_claims(root / "large", opts->jobs, opts->claims, opts->fsync, rng);
    if (!large) return large.error();
    double ratio = small->p50 > 0 ? large->p50 / small->p50 : 0;

    if (ctx.globals.json) {
      auto fig = [](const ClaimFigures& f) {
        return nlohmann::json{{"queued", f.queued}, {"p50Ms", f.p50}, {"p99Ms", f.p99}, {"claimsPerSecond", f.per_second}};
      };
      nlohmann::json levels = nlohmann::json::array();
      for (const auto& c : concurrency) {
        levels.push_back({{"claimers", c.claimers}, {"p50Ms", c.p50}, {"p99Ms", c.p99}, {"claimsPerSecond", c.per_second}});
      }
      print_json({{"fsync", opts->fsync},
                  {"baselineCommitsPerSecond", *baseline},
                  {"submitsPerSecond", submit_rate},
                  {"submitToBaseline", submit_rate / *baseline},
                  {"cyclesPerSecond", cycle_rate},
                  {"cycleTransitionsPerSecond", 3 * cycle_rate},
                  {"cycleTransitionsToBaseline", 3 * cycle_rate / *baseline},
                  {"cliClaimers", std::move(levels)},
                  {"claimSmall", fig(*small)},
                  {"claimLarge", fig(*large)},
                  {"claimP50Ratio", ratio}});
      return {};
    }
    std::printf("gigafab bench (%s, one in-process writer)\n", opts->fsync ? "fsync on" : "fsync off");
    std::printf("  baseline (raw libgit2 commit + CAS): %8.1f commits/s\n", *baseline);
    std::printf("  submit:                         %8.1f jobs/s (%.2f x baseline)\n", submit_rate, submit_rate / *baseline);
    std::printf("  claim -> start -> report:       %8.1f cycles/s = %.1f transitions/s (%.2f x baseline)\n", cycle_rate,
                3 * cycle_rate, 3 * cycle_rate / *baseline);
    for (const auto& c : concurrency) {
      std::printf("  %zu CLI claimer process(es):   p50 %7.2f ms  p99 %7.2f ms  %7.1f claims/s\n", c.claimers, c.p50, c.p99,
                  c.per_second);
    }
    std::printf("  claim, %6zu queued:  p50 %7.2f ms  p99 %7.2f ms  %7.1f claims/s\n", small->queued, small->p50,
                small->p99, small->per_second);
    std::printf("  claim, %6zu queued:  p50 %7.2f ms  p99 %7.2f ms  %7.1f claims/s\n", large->queued, large->p50,
                large->p99, large->per_second);
    std::printf("  claim p50 ratio (large/small): %.2f\n", ratio);
    return {};
  };
}

}  // namespace gigafab::cli
