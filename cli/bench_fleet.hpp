// The parts of `gigafab bench` that measure a real fleet, only when asked:
// `--api URL` (a running `gigafab serve`) and `--remote NAME` (the git remote
// that coordinates the store's fleet), plus the CLI claimer processes they
// share with the scratch stores.
//
// A real fleet is never measured with its own jobs. The bench submits its own
// to product "gigafab-bench", each needing a capability made up for the run
// ("bench-<8 hex digits>"), so no factory of another product, and no other
// bench run, can take them, and the bench's clients take nothing else (they
// claim with that capability only, in that product only). When it is done,
// every job it submitted is walked to `shipped` (start, report pass, ship),
// so none is left queued or holding a lease; the audit trail keeps them all.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cli/bench_http.hpp"
#include "core/error.hpp"

namespace gigafab::core {
class Fleet;
}
namespace gigafab::gitstore {
class Store;
}

namespace gigafab::cli {

// K processes running `gigafab claim` back to back (the real CLI path:
// process start, store open, reap, claim, and with a remote the fetch and
// push) until `total` claims have been made between them or nothing is left.
struct ClaimerFigures {
  std::size_t claimers = 0;
  std::size_t claims = 0;
  double p50 = 0, p99 = 0, per_second = 0;
};
struct ClaimerRun {
  std::string store;
  std::string product;
  std::string capabilities;    // as --caps takes them: a,b
  std::string factory_prefix;  // process k claims as <prefix><k>
};
core::Result<ClaimerFigures> run_claimer_processes(const ClaimerRun& run, std::size_t claimers, std::size_t total);

// The product and the run's capability the bench's jobs in a real fleet carry.
struct BenchTag {
  std::string product = "gigafab-bench";
  std::string capability;  // bench-<8 hex digits>, new for every run
};
BenchTag new_bench_tag();

// Walks each of `ids` (jobs the bench submitted to `tag.product`) on to
// shipped: claims it if queued (as `factory`), starts and reports pass as the
// lease's holder, approves it if in review, ships it. Returns how many it
// shipped; an error when one cannot get there (a stage the bench never makes).
core::Result<std::size_t> finish_bench_jobs(core::Fleet& fleet, const BenchTag& tag, const std::string& factory,
                                            const std::vector<std::string>& ids);

// --api: `jobs` bench jobs submitted by `clients` HTTP clients at once, then
// the same clients' claim -> start -> report cycles for `seconds`, then the
// submit-to-waiting-claim latency, then every job finished.
struct ApiBench {
  std::string url;
  BenchTag tag;
  std::size_t submitted = 0;
  double submits_per_second = 0;
  HttpCycles cycles;
  double submit_to_claim_p50_ms = 0;
  std::size_t finished = 0;
};
// Whether the server takes `token` for the bench's product (a read): its
// error, with what the bench needs, when not. run_api_bench checks it first,
// the bench before it measures anything else.
core::Result<void> probe_api_bench(const std::string& url, const std::string& token);
core::Result<ApiBench> run_api_bench(const std::string& url, const std::string& token, std::size_t clients,
                                     double seconds, std::size_t jobs);

// --remote: a scratch local copy of the fleet on `store`'s coordinating
// remote (made under `root`, like a new host's `gigafab init --remote`),
// `per_level` bench jobs per claimer level submitted through it one by one
// (each a fetch and a push), then for each level that many CLI claimer
// processes on the copy, then every job finished.
struct RemoteBench {
  std::string name;
  std::string url;  // redacted
  BenchTag tag;
  double copy_seconds = 0;
  std::size_t submits = 0;
  double submit_p50_ms = 0, submit_p99_ms = 0;
  std::vector<ClaimerFigures> levels;
  std::size_t finished = 0;
};
core::Result<RemoteBench> run_remote_bench(const gitstore::Store& store, const std::string& root,
                                           const std::vector<std::size_t>& levels, std::size_t per_level, bool fsync,
                                           const std::string& actor);

}  // namespace gigafab::cli
