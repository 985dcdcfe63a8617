// Pack files written directly, without libgit2's pack builder: what every
// commit and every pack consolidation of a store needs, at a fraction of the
// cost. The builder searches for deltas and the indexer inflates everything
// again to index it; a commit's few new objects gain nothing from deltas, and
// merging packs needs no recompression at all. `gigafab gc` still repacks
// with the builder (deltas, smallest size).
//
// Format: git's pack v2 and pack index v2 (Documentation/gitformat-pack.txt).
// Both files are written to temporary names (tmp_gigafab_*), fsynced when
// durable, and renamed into objects/pack, the index first: git and libgit2
// ignore an index without its pack, so a pack becomes visible whole or not at
// all, and a writer killed half-way leaves only an unused index.
#pragma once

#include <git2.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace gigafab::gitstore::packfile {

struct Object {
  git_oid id;
  git_object_t type;
  std::string_view data;  // the object's content (no header)
};

// One pack holding `objects` whole (no deltas; blobs and commits at zlib level
// 1, trees stored uncompressed), and its index. When durable, the file
// `sync_alongside` (an open descriptor, -1 for none: a ref's lock file) is
// fsynced together with the two, before they are renamed into place.
core::Result<void> write(const std::string& pack_dir, const std::vector<Object>& objects, bool durable,
                         int sync_alongside = -1);

// One pack holding every object of the packs `bases` (paths without
// ".pack"/".idx"), their entries copied byte for byte (offset deltas stay
// valid: each pack's entries keep their order and distances), with a new
// index. The old packs are left for the caller to remove. An object in more
// than one of them is kept once (from the pack with deltas, a gc's, if one
// holds it, else from the largest pack), which needs the others' entries
// copied one by one; usage error (nothing written) when two packs with deltas
// share an object, or a pack to copy entry by entry is larger than 64 MiB.
core::Result<void> concatenate(const std::string& pack_dir, const std::vector<std::string>& bases, bool durable);

// Whether the pack `base` (path without ".pack"/".idx") holds a delta: a
// gc's does, ours never (one byte read per entry).
core::Result<bool> has_deltas(const std::string& base);

}  // namespace gigafab::gitstore::packfile
