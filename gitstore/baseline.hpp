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
// a file and fdatasync-ing it, over `rounds` rounds (the file is removed). A
// durable gigafab commit waits for five syncs in a row (pack, index, pack
// directory, ref, refs directory), so this bounds what fsync on can reach.
core::Result<double> fdatasync_p50_us(const std::string& dir, std::size_t rounds);

}  // namespace gigafab::gitstore
