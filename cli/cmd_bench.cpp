// gigafab bench: measures this machine's store on scratch stores in a
// temporary directory (never a real store): submit throughput and worker
// claim -> start -> report cycles against a raw libgit2 baseline, the bytes a
// transition takes after gc, concurrent CLI claimers, and claim latency plus
// `list` and `show` in a store of --small jobs against one of --jobs jobs (each
// 90% shipped, 10% queued), side by side in one run so the ratios mean
// something.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fcntl.h>
#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <spawn.h>
#include <sys/wait.h>

extern char** environ;

#include "cli/command.hpp"
#include "cli/bench_fleet.hpp"
#include "cli/bench_http.hpp"
#include "cli/bench_stats.hpp"
#include "cli/output.hpp"
#include "core/json.hpp"
#include "core/submit.hpp"
#include "core/wire.hpp"
#include "gitstore/baseline.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

namespace {

namespace fs = std::filesystem;
using bench::Clock;
using bench::ms_since;
using bench::percentile;

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

// Walks `count` jobs through submit, claim, start, report pass and ship with
// the core operations, computed against one base and committed `k_batch` per
// commit (a bulk load: not what is measured; large batches, since each commit
// rewrites every shard tree). A path written and deleted again
// within one batch (queue and lease entries) is dropped from the batch, so the
// overlay the next operation reads stays the size of what the batch keeps.
Result<void> bulk_load_finished(gitstore::Store& store, std::size_t count, std::mt19937_64& rng) {
  constexpr std::size_t k_batch = 10000;
  const std::string factory = "bench-loader";
  core::Millis now = core::now_millis() - 3'600'000;
  for (std::size_t done = 0; done < count;) {
    std::size_t n = std::min(k_batch, count - done);
    auto committed = store.transact(
        [&](const core::Snapshot& snap) -> Result<core::Change> {
          core::Change all;
          auto merge = [&](core::Change& change) -> Result<void> {
            for (auto& [path, content] : change.writes) {
              auto it = all.writes.find(path);
              if (!content && it != all.writes.end() && it->second) {
                auto in_base = snap.read(path);
                if (!in_base) return in_base.error();
                if (!*in_base) {
                  all.writes.erase(it);
                  continue;
                }
              }
              all.writes[path] = std::move(content);
            }
            return {};
          };
          for (std::size_t i = 0; i < n; ++i) {
            core::Millis t = now + static_cast<core::Millis>(done + i);
            core::OverlaySnapshot view(snap, all);
            core::SubmitRequest request{bench_manifest(rng), "bench", std::nullopt, "bench"};
            auto submitted = core::submit(view, request, t, rng());
            if (!submitted) return submitted.error();
            if (auto ok = merge(submitted->change); !ok) return ok.error();
            core::ClaimRequest claim{"bench", factory, std::vector<std::string>{"linux", "docker", "macos", "xcode"},
                                     7200, "bench", {}};
            auto claimed = core::claim(view, claim, t);
            if (!claimed) return claimed.error();
            if (auto ok = merge(claimed->change); !ok) return ok.error();
            core::WorkerCall call{claimed->job.id, factory, claimed->lease->epoch, "bench", "bench"};
            auto started = core::start(view, call, t);
            if (!started) return started.error();
            if (auto ok = merge(started->change); !ok) return ok.error();
            auto reported = core::report(view, call, core::ReportInput{true, 0.01, 1000, "bench"}, t);
            if (!reported) return reported.error();
            if (auto ok = merge(reported->change); !ok) return ok.error();
            auto shipped = core::act(view, core::OperatorAction::ship, claimed->job.id, "bench", "bench", t);
            if (!shipped) return shipped.error();
            if (auto ok = merge(shipped->change); !ok) return ok.error();
          }
          all.summary = "bench: load " + std::to_string(n) + " shipped jobs";
          all.trailers = {{"Gigafab-Op", "bench-load"}, {"Gigafab-Actor", "bench"}};
          return all;
        },
        "bench");
    if (!committed) return committed.error();
    done += n;
  }
  return {};
}

// The number of queued jobs in a store of `jobs`: 10%, the rest shipped.
std::size_t queued_share(std::size_t jobs) { return jobs - jobs * 9 / 10; }

// Runs this binary with `args`, output discarded; its exit status (or -1).
int run_self(const std::vector<std::string>& args) {
  static const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<char*> argv{const_cast<char*>(self.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct ClaimFigures {
  std::size_t jobs = 0, queued = 0;
  double load_seconds = 0;
  double gc_wait_seconds = 0;  // for a background gc the load started, if any
  double p50 = 0, p99 = 0, per_second = 0;
  // Reads of the loaded store: the CLI's `list --json` and `show --json` as
  // processes (wall time), and the same calls in-process.
  // list_cold_cli_ms: the first `list --json`, which reads every job and
  // writes the row cache the later ones use (list_cli_ms); list_ms parses
  // every job in-process, as the cache's fallback does.
  double list_cold_cli_ms = 0, list_cli_ms = 0, list_ms = 0, show_cli_p50 = 0, show_p50 = 0;
  std::size_t list_bytes = 0;
};

// A loaded store, its fleet open for the claims, and its figures so far.
struct MeasuredStore {
  ClaimFigures figures;
  std::unique_ptr<gitstore::LocalFleet> fleet;
};

// A store of `jobs` jobs, 90% shipped and 10% queued: times loading it and
// the reads; its claims are measured by measure_claims.
Result<MeasuredStore> load_store(const fs::path& path, std::size_t jobs, bool fsync, std::mt19937_64& rng) {
  ClaimFigures figures;
  figures.jobs = jobs;
  figures.queued = queued_share(jobs);
  auto store = gitstore::Store::init(path.string(), gitstore::InitOptions{fsync}, "bench");
  if (!store) return store.error();
  auto load_start = Clock::now();
  if (auto ok = bulk_load_finished(*store, jobs - figures.queued, rng); !ok) return ok.error();
  if (auto ok = bulk_load(*store, figures.queued, rng); !ok) return ok.error();
  figures.load_seconds = ms_since(load_start) / 1000.0;
  // Loading may have started a background gc (nice 19) once the store
  // doubled: a store that size doubles rarely, so its figures are measured
  // without one (the HTTP figures are too, bench_http.cpp).
  auto gc_start = Clock::now();
  if (auto ok = store->wait_for_gc(); !ok) return ok.error();
  figures.gc_wait_seconds = ms_since(gc_start) / 1000.0;
  auto opened = std::make_unique<gitstore::LocalFleet>(std::move(*store), "bench", std::nullopt);
  gitstore::LocalFleet& fleet = *opened;

  const int k_list_runs = jobs <= 10000 ? 3 : 1, k_show_runs = 20;
  std::vector<double> list_cli, list_in, show_cli, show_in;
  std::string some_id;
  auto list_process = [&]() -> Result<double> {
    auto t = Clock::now();
    if (run_self({"--store", path.string(), "--product", "bench", "--json", "list"}) != 0) {
      return core::make_error(core::ErrorCode::error, "bench: gigafab list failed");
    }
    return ms_since(t);
  };
  auto cold = list_process();
  if (!cold) return cold.error();
  figures.list_cold_cli_ms = *cold;
  for (int r = 0; r < k_list_runs; ++r) {
    auto warm = list_process();
    if (!warm) return warm.error();
    list_cli.push_back(*warm);
    auto t = Clock::now();
    auto listed = fleet.list(core::JobFilter{"bench", {}});
    if (!listed) return listed.error();
    nlohmann::json array = nlohmann::json::array();
    for (const auto& job : *listed) array.push_back(core::job_to_json(job));
    nlohmann::json doc{{"jobs", std::move(array)}};
    figures.list_bytes = doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).size();
    list_in.push_back(ms_since(t));
    if (listed->size() != jobs) {
      return core::make_error(core::ErrorCode::error, "bench: list found " + std::to_string(listed->size()) + " jobs, not " +
                                                          std::to_string(jobs));
    }
    some_id = (*listed)[listed->size() / 2].id;
  }
  for (int r = 0; r < k_show_runs; ++r) {
    auto t = Clock::now();
    if (run_self({"--store", path.string(), "--product", "bench", "--json", "show", some_id}) != 0) {
      return core::make_error(core::ErrorCode::error, "bench: gigafab show failed");
    }
    show_cli.push_back(ms_since(t));
    t = Clock::now();
    auto detail = fleet.show(some_id, "bench");
    if (!detail) return detail.error();
    auto text = core::detail_to_json(*detail).dump(2);
    show_in.push_back(ms_since(t));
  }
  figures.list_cli_ms = percentile(list_cli, 0.5);
  figures.list_ms = percentile(list_in, 0.5);
  figures.show_cli_p50 = percentile(show_cli, 0.5);
  figures.show_p50 = percentile(show_in, 0.5);
  return MeasuredStore{figures, std::move(opened)};
}

// `claims` claims in each store, one store's and the other's in turn, so that
// both see the same disk: its fsync latency drifts by half within a minute
// here, and the claims of one store measured after the other's (as they were
// until 2026-12-06) made their ratio follow the drift (1.97 in one run, 1.06
// in the next, of one binary). claims/s counts each store's own claims' time.
Result<void> measure_claims(std::vector<MeasuredStore*> stores, std::size_t claims) {
  std::vector<std::vector<double>> latencies(stores.size());
  for (std::size_t i = 0; i < claims; ++i) {
    for (std::size_t s = 0; s < stores.size(); ++s) {
      core::ClaimInput input;
      input.product = "bench";
      input.factory = "bench-" + std::to_string(i % 8);
      input.capabilities = std::vector<std::string>{"linux", "docker", "macos", "xcode"};
      auto t = Clock::now();
      auto claimed = stores[s]->fleet->claim(input);
      if (!claimed) return claimed.error();
      latencies[s].push_back(ms_since(t));
    }
  }
  for (std::size_t s = 0; s < stores.size(); ++s) {
    ClaimFigures& figures = stores[s]->figures;
    double total = 0;
    for (double l : latencies[s]) total += l;
    figures.p50 = percentile(latencies[s], 0.5);
    figures.p99 = percentile(latencies[s], 0.99);
    figures.per_second = total > 0 ? static_cast<double>(claims) * 1000.0 / total : 0;
  }
  return {};
}

// K `gigafab claim` processes on a store of `total` queued jobs until it is empty.
Result<ClaimerFigures> measure_cli_claimers(const fs::path& path, std::size_t claimers, std::size_t total, bool fsync,
                                            std::mt19937_64& rng) {
  auto store = gitstore::Store::init(path.string(), gitstore::InitOptions{fsync}, "bench");
  if (!store) return store.error();
  if (auto ok = bulk_load(*store, total, rng); !ok) return ok.error();
  return run_claimer_processes(ClaimerRun{path.string(), "bench", "linux,docker,macos,xcode", "claimer-"}, claimers,
                               total);
}

}  // namespace

nlohmann::json cycles_json(const HttpCycles& c) {
  return {{"cyclesPerSecond", c.per_second}, {"p50Ms", c.p50_ms}, {"p99Ms", c.p99_ms},
          {"cycles", c.cycles}, {"commits", c.commits}, {"seconds", c.seconds}};
}

nlohmann::json claimers_json(const std::vector<ClaimerFigures>& levels) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : levels) {
    out.push_back({{"claimers", c.claimers}, {"claims", c.claims}, {"p50Ms", c.p50}, {"p99Ms", c.p99},
                   {"claimsPerSecond", c.per_second}});
  }
  return out;
}

nlohmann::json api_json(const ApiBench& a) {
  return {{"url", a.url},
          {"product", a.tag.product},
          {"capability", a.tag.capability},
          {"clients", a.cycles.clients},
          {"submitted", a.submitted},
          {"submitsPerSecond", a.submits_per_second},
          {"cycles", cycles_json(a.cycles)},
          {"claimsPerSecond", a.cycles.per_second},
          {"submitToClaimP50Ms", a.submit_to_claim_p50_ms},
          {"shipped", a.finished}};
}

nlohmann::json remote_json(const RemoteBench& r) {
  return {{"remote", r.name},
          {"url", r.url},
          {"product", r.tag.product},
          {"capability", r.tag.capability},
          {"copySeconds", r.copy_seconds},
          {"submits", r.submits},
          {"submitP50Ms", r.submit_p50_ms},
          {"submitP99Ms", r.submit_p99_ms},
          {"cliClaimers", claimers_json(r.levels)},
          {"shipped", r.finished}};
}

void print_api(const ApiBench& a) {
  std::printf("  the server at %s (product %s, capability %s):\n", a.url.c_str(), a.tag.product.c_str(),
              a.tag.capability.c_str());
  std::printf("    submit by %zu HTTP clients:  %8.1f jobs/s (%zu jobs)\n", a.cycles.clients, a.submits_per_second,
              a.submitted);
  std::printf("    %zu HTTP clients: %7.1f claims/s (claim->start->report cycles)  p50 %7.1f ms  p99 %7.1f ms  (%zu cycles)\n",
              a.cycles.clients, a.cycles.per_second, a.cycles.p50_ms, a.cycles.p99_ms, a.cycles.cycles);
  std::printf("    submit -> waiting claim: p50 %.2f ms\n", a.submit_to_claim_p50_ms);
  std::printf("    shipped the %zu bench jobs\n", a.finished);
}

void print_remote(const RemoteBench& r) {
  std::printf("  remote '%s' (%s; product %s, capability %s), from a new local copy (made in %.2f s):\n",
              r.name.c_str(), r.url.c_str(), r.tag.product.c_str(), r.tag.capability.c_str(), r.copy_seconds);
  std::printf("    submit, one writer:         p50 %7.2f ms  p99 %7.2f ms  (%zu jobs, each a fetch and a push)\n",
              r.submit_p50_ms, r.submit_p99_ms, r.submits);
  for (const auto& c : r.levels) {
    std::printf("    %zu CLI claimer process(es):  p50 %7.2f ms  p99 %7.2f ms  %7.1f claims/s\n", c.claimers, c.p50,
                c.p99, c.per_second);
  }
  std::printf("    shipped the %zu bench jobs\n", r.finished);
}

Runner define_bench(CLI::App& app, Context&) {
  struct Options {
    std::size_t jobs = 100000;
    std::size_t small = 1000;
    std::size_t claims = 100;
    std::size_t submits = 200;
    std::size_t cycles = 200;
    bool fsync = true;  // as `gigafab init` makes stores
    std::string dir;
    bool keep = false;
    std::vector<std::size_t> claimers = {1, 2, 4, 8};
    std::size_t cli_claims = 80;
    std::size_t http_clients = 16;
    double http_seconds = 5;
    std::size_t http_jobs = 2000;
  };
  auto opts = std::make_shared<Options>();
  app.add_option("--jobs", opts->jobs, "jobs in the large store, 90% shipped and 10% queued (default 100000)");
  app.add_option("--small", opts->small, "jobs in the small store, 90% shipped and 10% queued (default 1000)");
  app.add_option("--claims", opts->claims, "claims measured per store, at most a tenth of --small (default 100)");
  app.add_option("--submits", opts->submits, "submits measured (default 200)");
  app.add_option("--cycles", opts->cycles, "claim -> start -> report cycles measured, at most --submits (default 200)");
  app.add_flag("--fsync,!--no-fsync", opts->fsync,
               "--no-fsync: measure stores like `gigafab init --no-fsync` makes (default: durable, fsync before "
               "acknowledging; --fsync is accepted and changes nothing)");
  app.add_option("--claimers", opts->claimers, "concurrent CLI claimer processes to measure (default 1,2,4,8)")
      ->delimiter(',');
  app.add_option("--cli-claims", opts->cli_claims, "claims per concurrency level (default 80)");
  app.add_option("--dir", opts->dir, "where to create the scratch stores (default: a new temporary directory)");
  app.add_option("--http-clients", opts->http_clients,
                 "HTTP clients against a scratch gigafab serve, with and without group commit (default 16; 0: skip)");
  app.add_option("--http-seconds", opts->http_seconds, "seconds each HTTP measurement runs (default 5)");
  app.add_option("--http-jobs", opts->http_jobs, "queued jobs in each HTTP store (default 2000)");
  app.footer(
      "With the global --api URL (and --token T), bench also measures that gigafab serve: --http-clients clients "
      "submit --http-jobs jobs, then run claim->start->report cycles for --http-seconds, then the submit-to-waiting-"
      "claim latency. With --remote NAME (of --store's store), it measures the fleet on that git remote from a new "
      "local copy: submits, then --cli-claims claims per --claimers level by CLI processes. Either way the jobs go "
      "to product gigafab-bench, need a capability made up for the run, and are shipped when done.");
  app.add_flag("--keep", opts->keep, "leave the scratch stores there (to profile or inspect them) and print where");
  return [opts](Context& ctx) -> Result<void> {
    const std::string api = ctx.globals.api;
    const bool remote = !ctx.globals.remote.empty();
    if (!api.empty() && remote) {
      return core::make_error(core::ErrorCode::usage, "bench measures one real fleet at a time: give --api or --remote, not both");
    }
    if (!api.empty() && opts->http_clients == 0) {
      return core::make_error(core::ErrorCode::usage, "bench --api needs --http-clients of 1 or more");
    }
    if (!api.empty()) {
      if (auto ok = probe_api_bench(api, ctx.globals.token); !ok) return ok.error();
    }
    // --remote: the store whose coordinating remote is measured (opened, and
    // the remote fetched, before anything is measured).
    gitstore::LocalFleet* home = nullptr;
    if (remote) {
      auto local = ctx.local_fleet("bench");
      if (!local) return local.error();
      home = *local;
    }
    // The in-process scratch stores are loaded in bulk and thrown away: a
    // background gc of them would only take CPU from what is measured.
    gitstore::set_background_gc(nullptr);
    if (opts->claims == 0 || opts->claims > queued_share(opts->small) || opts->claims > queued_share(opts->jobs) ||
        opts->submits == 0 ||
        opts->cycles == 0 || opts->cycles > opts->submits || opts->cli_claims == 0) {
      return core::make_error(core::ErrorCode::usage,
                              "--claims must be between 1 and the queued jobs of each store (10%), "
                              "--cycles between 1 and --submits");
    }
    std::error_code ec;
    fs::path root = opts->dir.empty() ? fs::temp_directory_path() / ("gigafab-bench-" + std::to_string(getpid()))
                                      : fs::path(opts->dir) / ("gigafab-bench-" + std::to_string(getpid()));
    fs::create_directories(root, ec);
    if (ec) return core::make_error(core::ErrorCode::error, "cannot create " + root.string() + ": " + ec.message());
    struct Cleanup {
      fs::path path;
      bool keep;
      ~Cleanup() {
        std::error_code ignored;
        if (keep) {
          std::fprintf(stderr, "gigafab: bench: kept the scratch stores in %s\n", path.c_str());
        } else {
          fs::remove_all(path, ignored);
        }
      }
    } cleanup{root, opts->keep};
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

    // What a transition costs on disk once packed: that store, after gc.
    auto gc = fleet.store().gc();
    if (!gc) return gc.error();
    double bytes_per_transition =
        gc->transitions ? static_cast<double>(gc->pack_bytes) / static_cast<double>(gc->transitions) : 0;

    auto baseline = gitstore::raw_commit_baseline((root / "baseline").string(), opts->submits, opts->fsync);
    if (!baseline) return baseline.error();
    auto fdatasync_us = gitstore::fdatasync_p50_us(root.string(), 200);
    if (!fdatasync_us) return fdatasync_us.error();
    auto commit_files_ms = gitstore::durable_commit_files_p50_ms(root.string(), 100);
    if (!commit_files_ms) return commit_files_ms.error();
    // serve's ceiling on this disk: one request per client in a commit, three
    // operations a cycle, commits published one at a time.
    auto disk_ceiling = [&](std::size_t clients) {
      return static_cast<double>(clients) / 3.0 * 1000.0 / *commit_files_ms;
    };
    std::vector<ClaimerFigures> concurrency;
    for (std::size_t k : opts->claimers) {
      if (k == 0 || k > 64) return core::make_error(core::ErrorCode::usage, "--claimers takes 1 to 64 processes");
      auto figures = measure_cli_claimers(root / ("claimers-" + std::to_string(k)), k, opts->cli_claims, opts->fsync, rng);
      if (!figures) return figures.error();
      concurrency.push_back(*figures);
    }

    auto small_store = load_store(root / "small", opts->small, opts->fsync, rng);
    if (!small_store) return small_store.error();
    auto large_store = load_store(root / "large", opts->jobs, opts->fsync, rng);
    if (!large_store) return large_store.error();
    if (auto ok = measure_claims({&*small_store, &*large_store}, opts->claims); !ok) return ok.error();
    // Both stores closed before serve opens the large one.
    const ClaimFigures* small = &small_store->figures;
    const ClaimFigures* large = &large_store->figures;
    small_store->fleet.reset();
    large_store->fleet.reset();
    double ratio = small->p50 > 0 ? large->p50 / small->p50 : 0;
    auto serve_memory = measure_serve_memory((root / "large").string());
    if (!serve_memory) return serve_memory.error();

    std::optional<HttpBench> http;
    if (opts->http_clients > 0) {
      auto measured = run_http_bench(root.string(), opts->fsync, opts->http_jobs, opts->http_clients, opts->http_seconds,
                                     [&](gitstore::Store& s, std::size_t n) { return bulk_load(s, n, rng); });
      if (!measured) return measured.error();
      http = *measured;
    }

    // The real fleets, when asked for.
    std::optional<ApiBench> api_bench;
    if (!api.empty()) {
      auto measured = run_api_bench(api, ctx.globals.token, opts->http_clients, opts->http_seconds, opts->http_jobs);
      if (!measured) return measured.error();
      api_bench = *measured;
    }
    std::optional<RemoteBench> remote_bench;
    if (home) {
      auto measured = run_remote_bench(home->store(), root.string(), opts->claimers, opts->cli_claims, opts->fsync,
                                       Context::actor());
      if (!measured) return measured.error();
      remote_bench = *measured;
    }

    if (ctx.globals.json) {
      auto fig = [](const ClaimFigures& f) {
        return nlohmann::json{{"jobs", f.jobs},
                              {"queued", f.queued},
                              {"shipped", f.jobs - f.queued},
                              {"loadSeconds", f.load_seconds}, {"gcWaitSeconds", f.gc_wait_seconds},
                              {"p50Ms", f.p50},
                              {"p99Ms", f.p99},
                              {"claimsPerSecond", f.per_second},
                              {"listCliMs", f.list_cli_ms},
                              {"listFirstCliMs", f.list_cold_cli_ms},
                              {"listInProcessMs", f.list_ms},
                              {"listJsonBytes", f.list_bytes},
                              {"showCliP50Ms", f.show_cli_p50},
                              {"showInProcessP50Ms", f.show_p50}};
      };
      nlohmann::json levels = claimers_json(concurrency);
      print_json({{"fsync", opts->fsync},
                  {"fdatasyncP50Us", *fdatasync_us},
                  {"durableCommitFilesP50Ms", *commit_files_ms},
                  {"baselineCommitsPerSecond", *baseline},
                  {"submitsPerSecond", submit_rate},
                  {"submitToBaseline", submit_rate / *baseline},
                  {"cyclesPerSecond", cycle_rate},
                  {"cycleTransitionsPerSecond", 3 * cycle_rate},
                  {"cycleTransitionsToBaseline", 3 * cycle_rate / *baseline},
                  {"gc", {{"transitions", gc->transitions},
                          {"objects", gc->objects},
                          {"packBytes", gc->pack_bytes},
                          {"bytesPerTransition", bytes_per_transition}}},
                  {"cliClaimers", std::move(levels)},
                  {"smallStore", fig(*small)},
                  {"largeStore", fig(*large)},
                  {"claimP50Ratio", ratio},
                  {"serveResidentBytesLargeStore", serve_memory->resident},
                  {"servePeakBytesLargeStore", serve_memory->peak},
                  {"http", http ? nlohmann::json{{"clients", opts->http_clients},
                                                 {"groupCommit", cycles_json(http->grouped)},
                                                 {"commitPerRequest", cycles_json(http->single)},
                                                 {"groupToSingle", http->single.per_second > 0
                                                                       ? http->grouped.per_second / http->single.per_second
                                                                       : 0},
                                                 {"submitToClaimP50Ms", http->submit_to_claim_p50_ms},
                                                 {"diskCeilingCyclesPerSecond",
                                                  opts->fsync ? nlohmann::json(disk_ceiling(opts->http_clients))
                                                              : nlohmann::json(nullptr)}}
                                : nlohmann::json(nullptr)},
                  {"api", api_bench ? api_json(*api_bench) : nlohmann::json(nullptr)},
                  {"remote", remote_bench ? remote_json(*remote_bench) : nlohmann::json(nullptr)}});
      return {};
    }
    std::printf("gigafab bench (%s, one in-process writer)\n", opts->fsync ? "fsync on" : "fsync off");
    std::printf("  disk: one fdatasync of an 8 KiB write, p50 %.0f us (a durable commit waits for 3 in a row: pack, index and ref lock together, the pack directory, the refs directory)\n",
                *fdatasync_us);
    std::printf("  disk: a durable commit's files alone (those 3 waits, nothing else), p50 %.2f ms: at most %.0f commits/s to one ref\n",
                *commit_files_ms, 1000.0 / *commit_files_ms);
    std::printf("  baseline (raw libgit2 commit + CAS): %8.1f commits/s\n", *baseline);
    std::printf("  submit:                         %8.1f jobs/s (%.2f x baseline)\n", submit_rate, submit_rate / *baseline);
    std::printf("  claim -> start -> report:       %8.1f cycles/s = %.1f transitions/s (%.2f x baseline)\n", cycle_rate,
                3 * cycle_rate, 3 * cycle_rate / *baseline);
    std::printf("  after gc: %zu transitions (%zu submits, %zu cycles) in a %ju-byte pack: %.0f bytes/transition\n",
                gc->transitions, opts->submits, opts->cycles, gc->pack_bytes, bytes_per_transition);
    for (const auto& c : concurrency) {
      std::printf("  %zu CLI claimer process(es):   p50 %7.2f ms  p99 %7.2f ms  %7.1f claims/s\n", c.claimers, c.p50, c.p99,
                  c.per_second);
    }
    for (const ClaimFigures* f : {&*small, &*large}) {
      std::printf("  store of %zu jobs (%zu shipped, %zu queued; loaded in %.1f s, then %.1f s waiting for a background gc):\n",
                  f->jobs, f->jobs - f->queued, f->queued, f->load_seconds, f->gc_wait_seconds);
      std::printf("    claim:          p50 %7.2f ms  p99 %7.2f ms  %7.1f claims/s\n", f->p50, f->p99, f->per_second);
      std::printf("    list --json:    %8.1f ms as a process (%.1f ms the first time, writing its row cache), "
                  "%8.1f ms in-process parsing every job (%zu bytes)\n",
                  f->list_cli_ms, f->list_cold_cli_ms, f->list_ms, f->list_bytes);
      std::printf("    show --json:    p50 %7.2f ms as a process, p50 %7.2f ms in-process\n", f->show_cli_p50,
                  f->show_p50);
    }
    std::printf("  claim p50 ratio (large/small): %.2f\n", ratio);
    std::printf("  gigafab serve on the large store, after listing every job: %.1f MB resident (peak %.1f MB)\n",
                static_cast<double>(serve_memory->resident) / (1024.0 * 1024.0),
                static_cast<double>(serve_memory->peak) / (1024.0 * 1024.0));
    if (http) {
      for (const HttpCycles* c : {&http->grouped, &http->single}) {
        std::printf("  serve, %zu HTTP clients, %-21s %7.1f claim->start->report cycles/s  p50 %7.1f ms  p99 %7.1f ms"
                    "  (%zu cycles in %zu commits)\n",
                    c->clients, c->group_commit ? "group commit:" : "one commit per request:", c->per_second, c->p50_ms,
                    c->p99_ms, c->cycles, c->commits);
      }
      std::printf("  group commit / one commit per request: %.2f x\n",
                  http->single.per_second > 0 ? http->grouped.per_second / http->single.per_second : 0);
      std::printf("  submit -> waiting claim via serve: p50 %.2f ms\n", http->submit_to_claim_p50_ms);
      if (opts->fsync) {
        std::printf("  disk's ceiling for serve: %zu operations a commit (one request a client) at most %.0f commits/s: %.0f cycles/s\n",
                    opts->http_clients, 1000.0 / *commit_files_ms, disk_ceiling(opts->http_clients));
      }
    }
    if (api_bench) print_api(*api_bench);
    if (remote_bench) print_remote(*remote_bench);
    return {};
  };
}

}  // namespace gigafab::cli
