// The row cache of `list --json` on disk: <store>/gigafab-list.cache. Derived
// data only (rows keyed by the id of each job's directory, so a row can never
// describe another version of its job); a missing, unreadable or damaged file
// is an empty cache, and a failed save is ignored.
#pragma once

#include <string>

#include "core/queries.hpp"

namespace gigafab::gitstore {

std::string list_cache_path(const std::string& store_path);
// An empty cache unless `path` holds a whole, undamaged cache file.
core::JobRowCache load_list_cache(const std::string& path);
// Writes the rows the last listing used (a new file renamed over the old).
void save_list_cache(const std::string& path, const core::JobRowCache& cache);

}  // namespace gigafab::gitstore
