// Pack files written directly, without libgit2's pack builder: what every
// commit and every pack consolidation of a store needs, at a fraction of the
// cost. The builder searches for deltas and the indexer inflates everything
// again to index it; a commit's few new objects gain nothing from deltas, and
// merging packs needs no recompression: only the trees a merge's commits
// wrote again get deltas, against their path's previous version.
// `gigafab gc` still repacks with git (deltas searched, smallest size).
//
// Format: git's pack v2 and pack index v2 (Documentation/gitformat-pack.txt).
// Both files are written to temporary names (tmp_gigafab_*), fsynced when
// durable, and renamed into objects/pack, the index first: git and libgit2
// ignore an index without its pack, so a pack becomes visible whole or not at
// all, and a writer killed half-way leaves only an unused index.
#pragma once

#include <git2.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
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
// ".pack"/".idx"), with a new index. The old packs are left for the caller
// to remove. The largest pack goes first, copied byte for byte (offset
// deltas stay valid: its entries keep their order and distances), and so
// does any pack over 1 MiB. The others (a commit's, about 55 KB) are
// rewritten entry by entry: each tree that a commit of the pack reaches
// becomes a delta against the version of the same path written before it in
// this merge, when that is much smaller (a commit rewrites trees of
// hundreds of entries to change a few; stored whole, every merge copied
// them again). An object in more than one pack is kept in the first that
// holds it and left out of the others, whose offset deltas are measured
// again; usage error (nothing written) when an object would be left out of
// a pack larger than 64 MiB. Returns the new pack's path without
// ".pack"/".idx": one of `bases` when its objects are all the others' too
// (the same objects in the same order make the same pack).
//
// `carried`: the versions of trees a merge of this process wrote last (kept
// by the caller from one merge to the next): when that merge's pack goes
// first (the largest), the commits' trees become deltas against them too,
// not only against each other; replaced with this merge's.
struct TreeVersion {
  std::string content;
  std::uint64_t offset = 0;  // in the pack
  int depth = 0;             // deltas to apply to read it
};
struct TreeVersions {
  std::string pack;  // the pack they are in (path without ".pack"/".idx")
  std::unordered_map<std::string, TreeVersion> versions;  // by the tree's path from its commit's root
};
core::Result<std::string> concatenate(const std::string& pack_dir, const std::vector<std::string>& bases, bool durable,
                                      TreeVersions* carried = nullptr);

// A git delta (Documentation/gitformat-pack.txt) that turns the tree `base`
// into the tree `target`: the target's entries found whole in the base are
// copied from it, the others inserted. Empty when the trees are not well
// formed or the delta would not be under half the target's size.
std::string tree_delta(std::string_view base, std::string_view target);

}  // namespace gigafab::gitstore::packfile
