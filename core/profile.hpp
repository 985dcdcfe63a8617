// Persona profiles (profiles/<name>.md): who the agent should be for a job,
// what factory capabilities it needs, its default engine and budget. A job
// snapshots its profile into the store on submit (profiles/<name>/<version>.md),
// so later catalog edits never change the persona of a submitted job.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/job.hpp"

namespace gigafab::core {

struct Profile {
  std::string name;
  std::int64_t version = 0;
  std::string description;
  std::vector<std::string> capabilities;
  std::string engine;
  bool review = false;
  Budget budget;
  std::string persona;  // the markdown body
  std::string text;     // the whole document, as snapshotted
};

// Usage errors name origin, line and key, like manifests.
Result<Profile> parse_profile(std::string_view text, std::string_view origin);

}  // namespace gigafab::core
