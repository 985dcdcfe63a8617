// The HTTP part of `gigafab bench`: a scratch `gigafab serve` (this very
// binary, in a child process) on a store the bench prepared, driven over
// loopback by concurrent clients, with group commit on or off.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>
#include <sys/types.h>

#include "core/error.hpp"

namespace gigafab::gitstore {
class Store;
}

namespace gigafab::cli {

// A `gigafab serve` child on `store`, listening on a free loopback port;
// stopped (SIGTERM, then waited for) when destroyed.
class ScratchServer {
 public:
  static core::Result<ScratchServer> start(const std::string& store, bool group_commit);
  ScratchServer(ScratchServer&& other) noexcept;
  ScratchServer& operator=(ScratchServer&&) = delete;
  ~ScratchServer();
  const std::string& url() const { return m_url; }
  pid_t pid() const { return m_pid; }
  // The server's resident memory (VmRSS), and its peak so far (VmHWM), in bytes.
  std::size_t resident_bytes() const { return status_bytes("VmRSS:"); }
  std::size_t peak_bytes() const { return status_bytes("VmHWM:"); }

 private:
  ScratchServer(pid_t pid, std::string url) : m_pid(pid), m_url(std::move(url)) {}
  std::size_t status_bytes(const char* field) const;
  pid_t m_pid = -1;
  std::string m_url;
};

struct HttpCycles {
  bool group_commit = true;
  std::size_t clients = 0;
  std::size_t cycles = 0;  // claim -> start -> report, each three requests
  double seconds = 0;
  double per_second = 0;
  double p50_ms = 0, p99_ms = 0;  // one whole cycle
  std::size_t commits = 0;        // written to the state ref meanwhile
};

// Where HTTP bench clients work: a server, a token that may act as any
// factory of `product` (an operator token), and the capabilities the clients
// claim with (only jobs needing no more than these fit).
struct HttpTarget {
  std::string url;
  std::string token;
  std::string product;
  std::vector<std::string> capabilities;
  std::string factory_prefix;  // clients act as factory <prefix><k>
};

// `clients` threads, each its own HTTP client acting as factory
// <factory_prefix><k>, run claim -> start -> report pass cycles against the
// target for `seconds` (or until nothing is left to claim). `commits` is
// left 0 (the caller counts them in a store it can open).
core::Result<HttpCycles> measure_http_cycles(const HttpTarget& target, std::size_t clients, double seconds);

// Submit-to-claim latency: a claimer is already waiting (claim with wait)
// when a job is submitted; the time from the submit's start to the claim's
// answer, p50 over `rounds` rounds, in ms. The jobs need capability
// `capability`, which nothing else queued in the product may fit; their ids
// are appended to `ids` when given (each is left assigned to
// <factory_prefix>s2c).
core::Result<double> measure_submit_to_claim(const HttpTarget& target, const std::string& capability,
                                             std::size_t rounds, std::vector<std::string>* ids = nullptr);

// Rounds of the bench's submit-to-claim measurements: with 30 its p50 moved
// by 10-20% from one run to the next on the same binary.
inline constexpr std::size_t k_submit_to_claim_rounds = 100;

// The whole HTTP section of the bench, on scratch stores under `root`:
// `jobs` queued jobs, a server with group commit and one without (each
// measured for `seconds` with `clients` clients), then submit-to-claim
// latency with group commit.
struct HttpBench {
  HttpCycles grouped;
  HttpCycles single;
  double submit_to_claim_p50_ms = 0;
};
// `gigafab serve`'s resident memory on an existing store (product "bench")
// after it answered a list of every job, and its peak, in bytes.
struct ServeMemory {
  std::size_t resident = 0;
  std::size_t peak = 0;
};
core::Result<ServeMemory> measure_serve_memory(const std::string& store);

// `load` fills a new store with that many queued jobs of product "bench"
// (cmd_bench's bulk loader).
using JobLoader = std::function<core::Result<void>(gitstore::Store&, std::size_t)>;
core::Result<HttpBench> run_http_bench(const std::string& root, bool fsync, std::size_t jobs, std::size_t clients,
                                       double seconds, const JobLoader& load);

}  // namespace gigafab::cli
