// Job manifests (DESIGN.md section 6): markdown with TOML front matter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/job.hpp"

namespace gigafab::core {

// What a manifest asks for. Unset optionals fall back to the profile, then to
// the defaults (priority normal, max_attempts 3, no review).
struct Manifest {
  std::string title;  // from front matter, else the body's first heading
  std::optional<std::string> profile;
  std::vector<std::string> capabilities;
  std::optional<Priority> priority;
  std::vector<std::string> deps;
  std::optional<std::string> idempotency_key;
  std::optional<std::int64_t> max_attempts;
  std::optional<bool> review;
  Budget budget;
  RepoSpec repo;
  std::string body;  // verbatim
};

// Parses and validates a manifest. Every failure is a usage error of the form
// "<origin>:<line>: <what is wrong>", naming the key and suggesting the closest
// known one for typos. Nothing is partially accepted.
Result<Manifest> parse_manifest(std::string_view text, std::string_view origin);

}  // namespace gigafab::core
