// Read-side helpers over a Snapshot: load one job, list jobs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/job.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core {

// nullopt when the job does not exist. `id` must already be validated.
Result<std::optional<Job>> find_job(const Snapshot& snap, std::string_view id);
// Like find_job, but a missing job (or one of another product) is a
// not_found error: "job j-abcdefgh not found".
Result<Job> load_job(const Snapshot& snap, std::string_view id, std::string_view product);
Result<std::string> load_body(const Snapshot& snap, std::string_view id);

struct JobFilter {
  std::string product;        // empty: every product
  std::vector<Stage> stages;  // empty: every stage
};

// Jobs matching `filter`, oldest first.
Result<std::vector<Job>> list_jobs(const Snapshot& snap, const JobFilter& filter);

}  // namespace gigafab::core
