// The submit operation: a manifest becomes a queued (or blocked) job.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/manifest.hpp"
#include "core/profile.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core {

struct SubmitRequest {
  Manifest manifest;             // with CLI overrides already applied
  std::string product;
  std::optional<Profile> profile;  // resolved from the catalog when the manifest names one
  std::string actor;
};

struct SubmitResult {
  std::string job_id;
  bool duplicate = false;  // the idempotency key was already used: nothing to write
  Change change;
};

// Validates against `snap` and returns the change that creates the job:
// - an idempotency key already used in the product returns that job, no change;
// - every dep must exist in the product (not_found otherwise); the job starts
//   blocked while any dep is not shipped, else queued (and enters the index);
// - the profile is snapshotted at profiles/<name>/<version>.md; a different
//   document already stored under that version is a conflict (versions are
//   immutable: bump it).
// `random_bits` seeds the job id (collisions with existing ids are retried).
Result<SubmitResult> submit(const Snapshot& snap, const SubmitRequest& request, Millis now,
                            std::uint64_t random_bits);

}  // namespace gigafab::core
