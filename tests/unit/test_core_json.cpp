// core/json: the directly written job text is byte for byte what the DOM
// dumps, for every kind of field (list rows, the API and `list --json` must
// not change with the writer).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <random>

#include "core/json.hpp"
#include "random_job.hpp"

using namespace gigafab::core;
using gigafab::testing::any_job;

namespace {

std::string dom_text(const Job& job) {
  return job_to_json(job).dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
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
