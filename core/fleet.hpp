// The Fleet: every operation a command can ask for, independent of where the
// fleet lives. The local implementation (gitstore/local_fleet) runs core
// operations on a git store in-process; a remote one talks to `gigafab serve`.
// Commands print what a Fleet returns, so output and exit codes are the same
// against either.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/job.hpp"
#include "core/manifest.hpp"
#include "core/profile.hpp"
#include "core/queries.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core {

struct SubmitInput {
  Manifest manifest;  // CLI overrides already applied
  std::string product;
};

struct Submitted {
  Job job;
  bool duplicate = false;  // an earlier submit with the same idempotency key
};

struct JobDetail {
  Job job;
  std::string body;
  std::optional<Profile> profile;  // the snapshot the job was submitted with
};

// One transition as recorded in the state ref's history.
struct AuditEntry {
  std::string commit;
  Millis time = 0;
  std::string summary;
  std::string op;
  std::string job;  // "" for store-wide operations
  std::string product;
  std::string actor;
  std::vector<Trailer> trailers;
};

class Fleet {
 public:
  virtual ~Fleet() = default;
  virtual Result<Submitted> submit(const SubmitInput& input) = 0;
  virtual Result<std::vector<Job>> list(const JobFilter& filter) = 0;
  virtual Result<JobDetail> show(const std::string& id, const std::string& product) = 0;
  // Newest first; only the job's entries when `job` is set, only the
  // product's (and store-wide ones) otherwise.
  virtual Result<std::vector<AuditEntry>> log(const std::optional<std::string>& job, const std::string& product) = 0;
};

}  // namespace gigafab::core
