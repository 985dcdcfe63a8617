// Read-side helpers over a Snapshot: load one job, list jobs.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
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
  std::string json;  // job_to_json(job).dump(2); empty when the text is stored
  // Where the text is when `json` is empty: a range of the file the cache
  // was loaded from (JobRowCache::text reads it back).
  std::uint64_t stored_at = 0;
  std::uint32_t stored_size = 0;
};

// Rows of jobs by the id of their directory in the state tree: a row is
// derived from the directory's content alone, so a job whose directory is
// unchanged needs no read and no parse. Listing 100,000 jobs spent most of
// its time parsing job.toml files that had not changed since the last list.
// Rows loaded from a file keep their JSON there (about 760 bytes a job, 76 MB
// at 100,000 jobs): only the fields the listing filters and sorts by are in
// memory, and the text is read back while the document is written.
class JobRowCache {
 public:
  // Reads `size` bytes at `offset` of the file the rows were loaded from.
  using StoredText = std::function<Result<void>(std::uint64_t offset, std::uint32_t size, std::string& out)>;

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

  void set_stored_text(StoredText reader) { m_stored = std::move(reader); }
  // The JSON of `row`: its own, or read from the file into `buffer`.
  Result<std::string_view> text(const JobRow& row, std::string& buffer) const;

 private:
  struct Slot {
    JobRow row;
    bool used = false;
  };
  std::unordered_map<std::string, Slot> m_slots;
  bool m_added = false;
  StoredText m_stored;
};

JobRow job_row(const Job& job);

// The rows of one listing, and what keeps them valid: a listing can outlive
// the call that made it (serve sends it while other requests run).
struct JobListing {
  std::shared_ptr<JobRowCache> cache;
  std::deque<JobRow> scratch;  // rows of jobs the cache cannot key
  std::vector<const JobRow*> rows;
};

// `rows` as `list --json` prints them, {"jobs": [...]} indented by 2, written
// a part at a time so that the whole document never has to be in memory.
class JobRowsWriter {
 public:
  explicit JobRowsWriter(const JobListing& listing) : m_listing(&listing) {}
  // Appends the next part (whole rows, at least `budget` bytes unless the
  // document ends first) to `out`; false once the document is complete.
  Result<bool> next(std::string& out, std::size_t budget);

 private:
  const JobListing* m_listing;
  std::size_t m_next = 0;
  bool m_started = false;
  bool m_finished = false;
  std::string m_buffer;
};

// Fills `listing.rows` with the rows of the jobs matching `filter`, oldest
// first (like list_jobs), through `listing.cache` (which must be set). The
// pointers stay valid while the listing lives.
Result<void> list_job_rows(const Snapshot& snap, const JobFilter& filter, JobListing& listing);

// The whole document at once.
Result<std::string> job_rows_document(const JobListing& listing);

}  // namespace gigafab::core
