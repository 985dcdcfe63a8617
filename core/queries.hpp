// Read-side helpers over a Snapshot: load one job, list jobs.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
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

// What `list --json` shows of a job, with what the listing filters and sorts by.
struct JobRow {
  std::string id;
  std::string product;
  Stage stage = Stage::queued;
  Millis created_at = 0;
  std::string json;  // job_to_json(job).dump(2)
};

// Rows of jobs by the id of their directory in the state tree: a row is
// derived from the directory's content alone, so a job whose directory is
// unchanged needs no read and no parse. Listing 100,000 jobs spent most of
// its time parsing job.toml files that had not changed since the last list.
class JobRowCache {
 public:
  // The row cached for the directory id `key`, and marks it used.
  const JobRow* find(const std::string& key);
  const JobRow* put(std::string key, JobRow row);
  // True when rows were added since load, or some were not used by the last
  // listing (the job changed or is gone): worth saving again.
  bool stale() const;
  // Starts a new listing: nothing is used yet.
  void begin();
  // The rows the last listing used, in no particular order.
  std::vector<std::pair<const std::string*, const JobRow*>> used() const;
  std::size_t size() const { return m_slots.size(); }

 private:
  struct Slot {
    JobRow row;
    bool used = false;
  };
  std::unordered_map<std::string, Slot> m_slots;
  bool m_added = false;
};

// The rows of the jobs matching `filter`, oldest first (like list_jobs),
// through `cache`. The pointers stay valid while `cache` and `scratch` live.
Result<std::vector<const JobRow*>> list_job_rows(const Snapshot& snap, const JobFilter& filter, JobRowCache& cache,
                                                 std::deque<JobRow>& scratch);
JobRow job_row(const Job& job);
// `rows` as `list --json` prints them: {"jobs": [...]} indented by 2.
std::string job_rows_document(const std::vector<const JobRow*>& rows);

}  // namespace gigafab::core
