// JSON views of the model, camelCase as in the seed's REST API. Shared by the
// CLI's --json output and the server.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "core/auth.hpp"
#include "core/job.hpp"
#include "core/profile.hpp"
#include "core/records.hpp"

namespace gigafab::core {

nlohmann::json job_to_json(const Job& job);
nlohmann::json profile_to_json(const Profile& profile);
nlohmann::json lease_to_json(const Lease& lease);
nlohmann::json run_to_json(const Run& run);
// A token without its secret: id, role, productId ("*" for all), factory, name, createdAt.
nlohmann::json token_to_json(const TokenRecord& record);

}  // namespace gigafab::core
