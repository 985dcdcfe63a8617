// The ceiling `gigafab bench` compares against: a raw libgit2 loop that does,
// per iteration, exactly one blob + nested tree update + commit + compare-and-
// swap ref update, with libgit2's default object storage (loose objects).
#pragma once

#include <cstddef>
#include <string>

#include "core/error.hpp"

namespace gigafab::gitstore {

// Commits per second over `iterations` on a new bare repository at `path`,
// fsyncing objects and the ref when `fsync` is set.
core::Result<double> raw_commit_baseline(const std::string& path, std::size_t iterations, bool fsync);

// The disk under `dir`: the median time, in microseconds, of writing 8 KiB to
// a file and fdatasync-ing it, over `rounds` rounds (the file is removed): a
// sync that changes no metadata, what an append to a preallocated log costs.
core::Result<double> fdatasync_p50_us(const std::string& dir, std::size_t rounds);

// The file-system work alone of one durable commit in git's layout, done as
// a gigafab commit does it: a new 8 KiB pack, its 2 KiB index and the ref's
// lock file written and fsynced together, the index and the pack renamed
// into place, their directory fsynced, the lock renamed over the ref, the
// refs directory fsynced: three waits in a row, two of them for new files'
// metadata. The median over `rounds`, in milliseconds, under a scratch
// directory in `dir` (removed). Commits to one ref publish one at a time, so
// this bounds a durable store's commits per second on this disk.
core::Result<double> durable_commit_files_p50_ms(const std::string& dir, std::size_t rounds);

}  // namespace gigafab::gitstore
