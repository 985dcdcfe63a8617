// JSON views of the model, camelCase as in the seed's REST API. Shared by the
// CLI's --json output and the server.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "core/job.hpp"
#include "core/profile.hpp"

namespace gigafab::core {

nlohmann::json job_to_json(const Job& job);
nlohmann::json profile_to_json(const Profile& profile);

}  // namespace gigafab::core
