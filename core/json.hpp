// JSON views of the model, camelCase as in the seed's REST API. Shared by the
// CLI's --json output and the server.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>

#include "core/auth.hpp"
#include "core/job.hpp"
#include "core/profile.hpp"
#include "core/records.hpp"

namespace gigafab::core {

nlohmann::json job_to_json(const Job& job);
// job_to_json(job).dump(2, ' ', false, replace), the same bytes, written
// directly instead of through a DOM (a list of 100,000 jobs renders every
// one: the DOM's allocations were two fifths of a cold `list --json`).
std::string job_json_text(const Job& job);
nlohmann::json profile_to_json(const Profile& profile);
nlohmann::json lease_to_json(const Lease& lease);
nlohmann::json run_to_json(const Run& run);
// A token without its secret: id, role, productId ("*" for all), factory, name, createdAt.
nlohmann::json token_to_json(const TokenRecord& record);

}  // namespace gigafab::core
