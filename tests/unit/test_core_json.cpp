// core/json: the directly written job text is byte for byte what the DOM
// dumps, for every kind of field (list rows, the API and `list --json` must
// not change with the writer).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <random>

#include "core/json.hpp"

using namespace gigafab::core;

namespace {

std::string dom_text(const Job& job) {
  return job_to_json(job).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string any_text(std::mt19937_64& rng) {
  static const std::vector<std::string> pieces = {
      "",  "a", "Build the uploader", " ", "\"", "\\", "\n", "\t", "\r", "\b", "\f", std::string(1, '\x01'),
      std::string(1, '\x1f'), "\x7f", "caf\xc3\xa9", "\xe6\xbc\xa2\xe5\xad\x97", "\xf0\x9f\x9a\x80", "\xff",
      "\xc3", "\xe6\xbc", "/", "{}", "[x]", "j-abcdefgh", "0"};
  std::string out;
  for (std::size_t n = rng() % 4; n > 0; --n) out += pieces[rng() % pieces.size()];
  return out;
}

Job any_job(std::mt19937_64& rng) {
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

}  // namespace

TEST_CASE("job_json_text writes what job_to_json dumps, for a plain job and an empty one") {
  Job plain;
  plain.id = "j-abcdefgh";
  plain.product = "default";
  plain.title = "Build the uploader";
  plain.capabilities = {"docker", "linux"};
  plain.created_at = 1'764'000'000'000;
  plain.updated_at = 1'764'000'000'500;
  CHECK(job_json_text(plain) == dom_text(plain));
  CHECK(job_json_text(Job{}) == dom_text(Job{}));
  CHECK(job_json_text(plain).find("\"capabilities\": [\n    \"docker\",\n    \"linux\"\n  ],") != std::string::npos);
}

TEST_CASE("job_json_text matches the DOM on 5,000 random jobs: escapes, bad UTF-8, numbers, empty and nested parts") {
  std::mt19937_64 rng(20261201);
  for (int i = 0; i < 5000; ++i) {
    Job job = any_job(rng);
    std::string direct = job_json_text(job);
    std::string dom = dom_text(job);
    REQUIRE_MESSAGE(direct == dom, "job " << i << ":\n" << direct << "\n---\n" << dom);
  }
}
