// The seam between the pure core and the git store. A Snapshot is a read-only
// view of one state tree; a Change is what an operation wants written on top
// of it, as one commit. gitstore implements Snapshot over a git tree and turns
// a Change into a commit; the unit tests use MemorySnapshot.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace gigafab::core {

class Snapshot {
 public:
  virtual ~Snapshot() = default;
  // The file at `path` ("jobs/ab/j-abcdefgh/job.toml"), or nullopt if absent.
  // Errors only when the store cannot be read (corruption, I/O).
  virtual Result<std::optional<std::string>> read(std::string_view path) const = 0;
  // Names of the entries (files and directories) directly under `dir`, sorted
  // bytewise; empty when `dir` does not exist.
  virtual Result<std::vector<std::string>> list(std::string_view dir) const = 0;
  // The names list(dir) gives, in its order, passed to `visitor` until it
  // returns false; a name is valid during its call only. Through list()
  // unless a snapshot does better: a git tree's are walked in place (a claim
  // looks at the first few names of a 256-entry queue bucket, and copying
  // every name was a fifth of its CPU).
  using Visitor = std::function<bool(std::string_view name)>;
  virtual Result<void> visit(std::string_view dir, const Visitor& visitor) const;
  // list(), each name with an id of the entry's content that changes whenever
  // the content does (git's object id, in hex). Ids are empty where the
  // snapshot has none (in memory, or changed by an overlay).
  using Entry = std::pair<std::string, std::string>;
  virtual Result<std::vector<Entry>> list_with_ids(std::string_view dir) const;
  // The id (as list_with_ids gives it) of the entry `name` directly under
  // `dir`; empty when there is none, or no id.
  virtual Result<std::string> id_of(std::string_view dir, std::string_view name) const;
  // The file `name` in directory `dir`, whose id list_with_ids gave as
  // `dir_id` (empty: none known): read(dir + "/" + name), found through the
  // id where the snapshot can, without walking the path or keeping the
  // directory (a cold listing reads one file in each of 100,000 of them).
  virtual Result<std::optional<std::string>> read_in(std::string_view dir, std::string_view dir_id,
                                                     std::string_view name) const;
};

// One audit trailer: "Gigafab-Op: submit".
using Trailer = std::pair<std::string, std::string>;

struct Change {
  // path -> new content; nullopt deletes the file (empty directories vanish).
  std::map<std::string, std::optional<std::string>> writes;
  std::string summary;  // first line of the commit message
  std::vector<Trailer> trailers;

  bool empty() const { return writes.empty(); }
  void put(std::string path, std::string content) { writes[std::move(path)] = std::move(content); }
  void remove(std::string path) { writes[std::move(path)] = std::nullopt; }
  // The full commit message: summary, blank line, trailers.
  std::string message() const;
};

// An in-memory snapshot for tests (and for applying a Change on top of a view).
class MemorySnapshot final : public Snapshot {
 public:
  MemorySnapshot() = default;
  explicit MemorySnapshot(std::map<std::string, std::string> files) : m_files(std::move(files)) {}
  Result<std::optional<std::string>> read(std::string_view path) const override;
  Result<std::vector<std::string>> list(std::string_view dir) const override;
  void apply(const Change& change);
  const std::map<std::string, std::string>& files() const { return m_files; }

 private:
  std::map<std::string, std::string> m_files;
};

// A snapshot with a pending change on top: reads see the change first. Lets
// several operations be computed against one base and committed as one
// (bulk loads, group commit). Directories the change empties are still listed.
class OverlaySnapshot final : public Snapshot {
 public:
  OverlaySnapshot(const Snapshot& base, const Change& change) : m_base(base), m_change(change) {}
  Result<std::optional<std::string>> read(std::string_view path) const override;
  Result<std::vector<std::string>> list(std::string_view dir) const override;
  Result<void> visit(std::string_view dir, const Visitor& visitor) const override;

 private:
  const Snapshot& m_base;
  const Change& m_change;
};

}  // namespace gigafab::core
