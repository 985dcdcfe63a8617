#include "cli/bench_http.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "cli/bench_stats.hpp"
#include "cli/remote_fleet.hpp"
#include "core/manifest.hpp"
#include "gitstore/local_fleet.hpp"
#include "gitstore/store.hpp"

extern char** environ;

namespace gigafab::cli {

namespace {

using bench::Clock;
using bench::ms_between;
using bench::percentile;
using core::ErrorCode;
using core::make_error;
using core::Result;

Result<void> wait_for_gc(const std::string& store) {
  auto opened = gitstore::Store::open(store);
  if (!opened) return opened.error();
  return opened->wait_for_gc();
}

// Commits on the state ref (a group commit is one, however many operations).
Result<std::size_t> count_commits(const std::string& store) {
  auto opened = gitstore::Store::open(store);
  if (!opened) return opened.error();
  auto history = opened->history();
  if (!history) return history.error();
  std::set<std::string> commits;
  for (const auto& op : *history) commits.insert(op.oid);
  return commits.size();
}

}  // namespace

Result<ScratchServer> ScratchServer::start(const std::string& store, bool group_commit) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return make_error(ErrorCode::error, "cannot create a pipe");
  std::vector<std::string> args = {self, "--store", store, "serve", "--listen", "127.0.0.1:0", "--threads", "64"};
  if (!group_commit) args.push_back("--no-group-commit");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return make_error(ErrorCode::error, "cannot start gigafab serve for the bench");
  }
  // "gigafab: serving http://127.0.0.1:PORT/api/fleet (store ...)"
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  const std::string prefix = "gigafab: serving ";
  auto end = line.find("/api/fleet");
  if (line.rfind(prefix, 0) != 0 || end == std::string::npos) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return make_error(ErrorCode::error, "gigafab serve did not start for the bench");
  }
  return ScratchServer(pid, line.substr(prefix.size(), end - prefix.size()));
}

ScratchServer::ScratchServer(ScratchServer&& other) noexcept : m_pid(other.m_pid), m_url(std::move(other.m_url)) {
  other.m_pid = -1;
}

ScratchServer::~ScratchServer() {
  if (m_pid <= 0) return;
  ::kill(m_pid, SIGTERM);
  int status = 0;
  ::waitpid(m_pid, &status, 0);
}

std::size_t ScratchServer::status_bytes(const char* field) const {
  std::ifstream status("/proc/" + std::to_string(m_pid) + "/status");
  const std::string key(field);
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(key, 0) == 0) return static_cast<std::size_t>(std::stoull(line.substr(key.size()))) * 1024;
  }
  return 0;
}

Result<HttpCycles> measure_http_cycles(const HttpTarget& target, std::size_t clients, double seconds) {
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_mutex;
  std::vector<std::vector<double>> latencies(clients);
  std::vector<std::thread> threads;
  auto start = Clock::now();
  auto deadline = start + std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
  for (std::size_t k = 0; k < clients; ++k) {
    threads.emplace_back([&, k] {
      auto fleet = RemoteFleet::create(target.url, target.token, target.product, "bench");
      auto fail = [&](const core::Error& e) {
        std::lock_guard lock(failure_mutex);
        if (!failed.exchange(true)) failure = e.message;
      };
      if (!fleet) return fail(fleet.error());
      std::string factory = target.factory_prefix + std::to_string(k);
      while (Clock::now() < deadline && !failed.load()) {
        auto t = Clock::now();
        core::ClaimInput input{target.product, factory, target.capabilities, 600, 0};
        auto claimed = (*fleet)->claim(input);
        if (!claimed) {
          if (claimed.error().code == ErrorCode::nothing_to_claim) return;  // drained
          return fail(claimed.error());
        }
        core::WorkerCall call{claimed->job.id, factory, claimed->lease.epoch, target.product, ""};
        if (auto s = (*fleet)->start(call); !s) return fail(s.error());
        core::ReportInput report;
        report.pass = true;
        report.summary = "bench";
        if (auto r = (*fleet)->report(call, report); !r) return fail(r.error());
        latencies[k].push_back(ms_between(t, Clock::now()));
      }
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = ms_between(start, Clock::now()) / 1000.0;
  if (failed) return make_error(ErrorCode::error, "an HTTP bench client failed: " + failure);
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  HttpCycles out;
  out.clients = clients;
  out.cycles = all.size();
  out.seconds = elapsed;
  out.per_second = elapsed > 0 ? static_cast<double>(all.size()) / elapsed : 0;
  out.p50_ms = percentile(all, 0.5);
  out.p99_ms = percentile(all, 0.99);
  return out;
}

Result<double> measure_submit_to_claim(const HttpTarget& target, const std::string& capability, std::size_t rounds,
                                       std::vector<std::string>* ids) {
  const std::string source =
      "+++\ntitle = \"submit to claim\"\ncapabilities = [\"" + capability + "\"]\n+++\n# submit to claim\n";
  auto manifest = core::parse_manifest(source, "bench");
  if (!manifest) return manifest.error();
  auto submitter = RemoteFleet::create(target.url, target.token, target.product, "bench");
  if (!submitter) return submitter.error();
  auto claimer = RemoteFleet::create(target.url, target.token, target.product, "bench");
  if (!claimer) return claimer.error();
  const std::string factory = target.factory_prefix + "s2c";
  std::vector<double> latencies;
  for (std::size_t i = 0; i < rounds; ++i) {
    std::atomic<bool> waiting{false};
    Result<core::Claimed> claimed = make_error(ErrorCode::error, "no claim");
    Clock::time_point answered;
    std::thread t([&] {
      waiting = true;
      core::ClaimInput input{target.product, factory, std::vector<std::string>{capability}, 600, 10};
      claimed = (*claimer)->claim(input);
      answered = Clock::now();
    });
    while (!waiting.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the claim is waiting in the server
    auto submitted_at = Clock::now();
    auto submitted = (*submitter)->submit(core::SubmitInput{*manifest, target.product, source});
    t.join();
    if (!submitted) return submitted.error();
    if (ids) ids->push_back(submitted->job.id);
    if (!claimed) return claimed.error();
    latencies.push_back(ms_between(submitted_at, answered));
  }
  return percentile(latencies, 0.5);
}

namespace {

// A scratch store with `jobs` queued jobs and an operator token for every
// product; returns the token.
Result<std::string> prepare_store(const std::string& path, bool fsync, std::size_t jobs, const JobLoader& load) {
  auto store = gitstore::Store::init(path, gitstore::InitOptions{fsync}, "bench");
  if (!store) return store.error();
  if (auto ok = load(*store, jobs); !ok) return ok.error();
  gitstore::LocalFleet fleet(std::move(*store), "bench", std::nullopt);
  auto token = fleet.create_operator_token("*", "bench");
  if (!token) return token.error();
  return token->token;
}

}  // namespace

Result<ServeMemory> measure_serve_memory(const std::string& store) {
  std::string token;
  {
    auto opened = gitstore::Store::open(store);
    if (!opened) return opened.error();
    gitstore::LocalFleet fleet(std::move(*opened), "bench", std::nullopt);
    auto issued = fleet.create_operator_token("*", "bench");
    if (!issued) return issued.error();
    token = issued->token;
  }
  auto server = ScratchServer::start(store, true);
  if (!server) return server.error();
  auto client = RemoteFleet::create(server->url(), token, "bench", "bench");
  if (!client) return client.error();
  core::JobFilter all;
  all.product = "bench";
  auto jobs = (*client)->list(all);
  if (!jobs) return jobs.error();
  return ServeMemory{server->resident_bytes(), server->peak_bytes()};
}

Result<HttpBench> run_http_bench(const std::string& root, bool fsync, std::size_t jobs, std::size_t clients,
                                 double seconds, const JobLoader& load) {
  HttpBench out;
  for (bool grouped : {true, false}) {
    std::string path = root + (grouped ? "/http-grouped" : "/http-single");
    auto token = prepare_store(path, fsync, jobs, load);
    if (!token) return token.error();
    auto server = ScratchServer::start(path, grouped);
    if (!server) return server.error();
    HttpTarget target{server->url(), *token, "bench", {"linux", "docker", "macos", "xcode"}, "bench-http-"};
    // Loading the jobs may have started a background gc (the store doubled):
    // both runs are measured without one sharing the cores.
    if (auto ok = wait_for_gc(path); !ok) return ok.error();
    auto before = count_commits(path);
    if (!before) return before.error();
    auto figures = measure_http_cycles(target, clients, seconds);
    if (!figures) return figures.error();
    auto after = count_commits(path);
    if (!after) return after.error();
    figures->group_commit = grouped;
    figures->commits = *after - *before;
    (grouped ? out.grouped : out.single) = *figures;
    if (grouped) {
      // Nor this one with the gc the cycles started.
      if (auto ok = wait_for_gc(path); !ok) return ok.error();
      HttpTarget s2c{server->url(), *token, "bench-s2c", {}, "bench-"};
      auto latency = measure_submit_to_claim(s2c, "s2c", k_submit_to_claim_rounds);
      if (!latency) return latency.error();
      out.submit_to_claim_p50_ms = *latency;
    }
  }
  return out;
}

}  // namespace gigafab::cli
