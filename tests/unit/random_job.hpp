// Random jobs for property tests of the job's text forms (JSON, TOML): every
// field varied, strings with quotes, escapes, control bytes, UTF-8 and bad
// UTF-8, numbers at their edges.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/job.hpp"

namespace gigafab::testing {

using core::Job;
using core::Millis;
using core::Priority;
using core::k_all_stages;

inline std::string any_text(std::mt19937_64& rng) {
  static const std::vector<std::string> pieces = {
      "",  "a", "Build the uploader", " ", "\"", "\\", "\n", "\t", "\r", "\b", "\f", std::string(1, '\x01'),
      std::string(1, '\x1f'), "\x7f", "caf\xc3\xa9", "\xe6\xbc\xa2\xe5\xad\x97", "\xf0\x9f\x9a\x80", "\xff",
      "\xc3", "\xe6\xbc", "/", "{}", "[x]", "j-abcdefgh", "0"};
  std::string out;
  for (std::size_t n = rng() % 4; n > 0; --n) out += pieces[rng() % pieces.size()];
  return out;
}

inline Job any_job(std::mt19937_64& rng) {
  static const std::vector<double> doubles = {0.0, 0.1, 1.5, 1e-7, 123456789.125, 1e21, -2.5, 0.01, 3.0, 1e300};
  static const std::vector<std::int64_t> ints = {0, 1, -1, 42, 1'000'000'007, INT64_MAX, INT64_MIN, 86'400};
  Job job;
  job.id = rng() % 8 ? "j-" + std::to_string(rng() % 100000) : any_text(rng);
  job.product = rng() % 2 ? "default" : any_text(rng);
  job.title = any_text(rng);
  job.stage = k_all_stages[rng() % std::size(k_all_stages)];
  job.priority = static_cast<Priority>(rng() % 4);
  for (std::size_t n = rng() % 4; n > 0; --n) job.capabilities.push_back(any_text(rng));
  for (std::size_t n = rng() % 3; n > 0; --n) job.deps.push_back(any_text(rng));
  job.profile = rng() % 2 ? "" : any_text(rng);
  job.profile_version = ints[rng() % ints.size()];
  job.idempotency_key = any_text(rng);
  job.review = rng() % 2;
  if (rng() % 2) job.budget.usd = doubles[rng() % doubles.size()];
  if (rng() % 2) job.budget.wall_seconds = static_cast<std::int64_t>(rng() % 200000);
  if (rng() % 2) job.budget.tokens = ints[rng() % ints.size()];
  job.repo.url = any_text(rng);
  job.repo.base = any_text(rng);
  job.lease_epoch = ints[rng() % ints.size()];
  job.rev = ints[rng() % ints.size()];
  job.attempts = ints[rng() % ints.size()];
  job.max_attempts = ints[rng() % ints.size()];
  job.engine = any_text(rng);
  job.last_factory = any_text(rng);
  job.checkpoint = any_text(rng);
  job.reason = any_text(rng);
  job.event_seq = ints[rng() % ints.size()];
  job.spent_usd = doubles[rng() % doubles.size()];
  job.spent_tokens = ints[rng() % ints.size()];
  job.created_at = static_cast<Millis>(rng() % 4'000'000'000'000ULL);
  job.updated_at = static_cast<Millis>(rng() % 4'000'000'000'000ULL);
  return job;
}


}  // namespace gigafab::testing
