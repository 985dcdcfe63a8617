// The queue index: one entry per claimable job, so a claim never reads every
// job. Entries live in buckets of at most k_bucket_max, so a claim reads and
// rewrites one small tree however long the queue is:
//
//   index/queued/<product>/<capset>/@<first entry>/<rank>-<created>-<id>
//
// An entry name sorts best first (layout::queued_entry_name): rank (3 minus
// the priority), then age, then id, and may end in affinity hints. Entries
// form one sequence per rank and hintedness. A bucket is named "@" plus the
// name of an entry it held when it was made and holds one sequence; a
// sequence's buckets, taken in name order, list its entries in order: an
// entry goes to the last bucket of its sequence whose name is not after it
// (the sequence's first bucket when every bucket is after it; a new bucket
// when the sequence has none). A bucket that
// outgrows k_bucket_max is split in two halves, the upper half going to a new
// bucket named after its first entry. A claim takes entries from the front,
// so the first buckets empty and vanish, and new jobs fill the last ones.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/job.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core::queue_index {

inline constexpr std::size_t k_bucket_max = 256;

// index/queued/<product>/<capset>
std::string capset_dir(std::string_view product, std::string_view capset);

// Adds `job`'s entry (layout::queued_entry_document) to `change`, reading the
// index as `snap` with `change` on top; splits a bucket it overfills.
Result<void> add(const Snapshot& snap, Change& change, const Job& job);
// Removes `job`'s entry (it must be indexed; a no-op otherwise).
Result<void> remove(const Snapshot& snap, Change& change, const Job& job);

// Where `job`'s entry is, or nullopt when the job is not indexed.
Result<std::optional<std::string>> find(const Snapshot& snap, const Job& job);

// One bucket of a capset, in order.
struct Bucket {
  std::string name;  // "@<entry>"
  char rank = '0';
  bool hinted = false;  // holds entries with affinity hints (layout::queued_entry_name)
  std::string path;  // <capset dir>/<name>
};
Result<std::vector<Bucket>> buckets(const Snapshot& snap, const std::string& capset_dir);
// Every entry name of a capset, best first.
Result<std::vector<std::string>> entries(const Snapshot& snap, const std::string& capset_dir);
// How many entries a capset holds.
Result<std::size_t> count(const Snapshot& snap, const std::string& capset_dir);

// Rewrites a format-1 index (entries directly under <capset>) into buckets.
// Returns false (and changes nothing) when `snap` has no format-1 entries.
Result<bool> migrate_flat(const Snapshot& snap, Change& change);

}  // namespace gigafab::core::queue_index
