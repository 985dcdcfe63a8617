// The wire format of the /api/fleet REST API (DESIGN.md section 7): every
// Fleet result as JSON and back, and every request body parsed and validated.
//
// The server renders results with the *_to_json functions; the --api client
// parses them back with the *_from_json ones, so a command prints the same
// whether its fleet is local or remote. The CLI's own --json output uses the
// same renderings. Field names are camelCase, as in the seed.
//
// Request parsing is strict: a missing field, a wrong type or an unknown field
// is a usage error whose Error::field names the field (the server answers 400
// with it). Response parsing is lenient about extra fields, so an older client
// keeps working against a newer server.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/auth.hpp"
#include "core/fleet.hpp"

namespace gigafab::core {

// Results (server -> client).
nlohmann::json detail_to_json(const JobDetail& detail);
Result<JobDetail> detail_from_json(const nlohmann::json& doc);
Result<Job> job_from_json(const nlohmann::json& doc);
Result<Lease> lease_from_json(const nlohmann::json& doc);
Result<Run> run_from_json(const nlohmann::json& doc);
Result<Profile> profile_from_json(const nlohmann::json& doc);
nlohmann::json submitted_to_json(const Submitted& submitted);
Result<Submitted> submitted_from_json(const nlohmann::json& doc);
nlohmann::json claimed_to_json(const Claimed& claimed);
Result<Claimed> claimed_from_json(const nlohmann::json& doc);
nlohmann::json event_to_json(const Event& event);
// GET /fleet/jobs/:id/output: {"job", "epoch", "start", "end", "from", "text", "live"}
nlohmann::json run_output_to_json(const RunOutput& output);
Result<RunOutput> run_output_from_json(const nlohmann::json& doc);
Result<Event> event_from_json(const nlohmann::json& doc);
nlohmann::json audit_entry_to_json(const AuditEntry& entry);
Result<AuditEntry> audit_entry_from_json(const nlohmann::json& doc);
nlohmann::json reaped_to_json(const Reaped& reaped);
Result<Reaped> reaped_from_json(const nlohmann::json& doc);
nlohmann::json factory_status_to_json(const FactoryStatus& status);
Result<FactoryStatus> factory_status_from_json(const nlohmann::json& doc);
nlohmann::json explain_row_to_json(const ExplainRow& row);
Result<ExplainRow> explain_row_from_json(const nlohmann::json& doc);
// {"key": "value", ...} as `weights show` prints them; parsed back through
// apply_setting, so every setting round-trips.
nlohmann::json settings_to_json(const RouterSettings& settings);
Result<RouterSettings> settings_from_json(const nlohmann::json& doc);
// GET /fleet/metrics: the document metrics_to_json (core/metrics.hpp) renders.
Result<FleetMetrics> metrics_from_json(const nlohmann::json& doc);
// The token record (token_to_json) plus "token", the only copy of the secret.
nlohmann::json issued_token_to_json(const IssuedToken& issued);
Result<IssuedToken> issued_token_from_json(const nlohmann::json& doc);
Result<TokenRecord> token_record_from_json(const nlohmann::json& doc);
// {"jobs": [...]}, {"events": [...]}, ...: a list under one key.
template <typename T>
using FromJson = Result<T> (*)(const nlohmann::json&);
template <typename T>
Result<std::vector<T>> list_from_json(const nlohmann::json& doc, const char* key, FromJson<T> parse);

// An error document: {"error": {"code", "message"[, "field"]}}.
nlohmann::json error_to_json(const Error& error);
// The error a response carried, or nullopt when `doc` is not an error document.
std::optional<Error> error_from_json(const nlohmann::json& doc);

// Requests (client -> server). The *_request_to_json functions build what
// the --api client sends; the *_from_json ones validate what the server got.
struct SubmitRequestBody {
  std::string manifest;  // the markdown manifest, verbatim
  std::optional<Priority> priority;
  std::optional<std::vector<std::string>> deps;
  std::optional<std::string> idempotency_key;
  std::optional<std::string> profile;
};
nlohmann::json submit_request_to_json(const SubmitRequestBody& body);
Result<SubmitRequestBody> submit_request_from_json(const nlohmann::json& doc);
// The manifest parsed, validated and overridden, ready for Fleet::submit.
Result<SubmitInput> submit_input(const SubmitRequestBody& body, const std::string& product);

// POST /fleet/claim. `factory` may be omitted when the token names it.
nlohmann::json claim_request_to_json(const ClaimInput& input);
Result<ClaimInput> claim_request_from_json(const nlohmann::json& doc);

// The fenced calls: lease renew/release (POST) and PATCH /fleet/jobs/:id,
// whose body carries exactly one of "stage": "building" (start),
// "checkpoint": REF, or "result": "pass"|"fail" (report).
struct WorkerRequest {
  enum class Kind { renew, release, start, checkpoint, report, output };
  Kind kind = Kind::start;
  std::string factory;  // may be empty when the token names it
  std::int64_t epoch = 0;
  std::int64_t ttl_seconds = k_default_ttl_seconds;  // renew
  std::string ref;                                   // checkpoint
  ReportInput report;                                // report
  std::int64_t offset = 0;                           // output: {"offset", "text"}
  std::string text;                                  // output
};
nlohmann::json worker_request_to_json(const WorkerRequest& request);
// `kind` is renew or release for the lease routes, output for POST
// /fleet/jobs/:id/output; unset for PATCH, where the body says which it is.
Result<WorkerRequest> worker_request_from_json(const nlohmann::json& doc,
                                               std::optional<WorkerRequest::Kind> kind);

nlohmann::json heartbeat_request_to_json(const HeartbeatInput& input);
Result<HeartbeatInput> heartbeat_request_from_json(const nlohmann::json& doc);

// POST /fleet/factories/enroll: {"factory", "capabilities"?, "seats"?}
nlohmann::json enroll_request_to_json(const EnrollInput& input);
Result<EnrollInput> enroll_request_from_json(const nlohmann::json& doc);

// {"set": ["key=value", ...]}
nlohmann::json settings_request_to_json(const std::vector<std::string>& assignments);
Result<std::vector<std::string>> settings_request_from_json(const nlohmann::json& doc);

}  // namespace gigafab::core
