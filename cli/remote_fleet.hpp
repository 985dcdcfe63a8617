// The remote Fleet: every operation as one HTTP request to `gigafab serve`
// (the /api/fleet routes of server/api.cpp), results parsed back with the
// wire format (core/wire.hpp). Used by every command when --api / GIGAFAB_API
// is set, so a command prints the same and exits with the same code whether
// its fleet is local or remote.
//
// Requests carry `Authorization: Bearer <token>` and `x-product-id`. Input is
// checked here with the core's own checks before anything is sent, so bad
// input gets the local usage error, word for word. Server errors come back as
// error documents (their code is the exit code); a status without one is
// mapped (400 usage, 401/403 unauthorized, 404 not_found, 409 fenced, 422
// conflict, else error). A server that cannot be reached is an error naming
// the URL. The token never appears in any message.
//
// libcurl stays inside remote_fleet.cpp.
#pragma once

#include <memory>
#include <string>

#include "core/fleet.hpp"

namespace gigafab::cli {

class RemoteFleet final : public core::Fleet {
 public:
  // `url` is the server (http://HOST:PORT, optionally ending in /api/fleet as
  // `gigafab serve` prints it); `product` is sent when a call names none.
  // Usage error for a URL that is not http(s) or a missing token. Nothing is
  // sent until the first call.
  static core::Result<std::unique_ptr<RemoteFleet>> create(const std::string& url, const std::string& token,
                                                     const std::string& product, const std::string& actor);
  ~RemoteFleet() override;
  RemoteFleet(const RemoteFleet&) = delete;
  RemoteFleet& operator=(const RemoteFleet&) = delete;

  core::Result<core::Submitted> submit(const core::SubmitInput& input) override;
  core::Result<std::vector<core::Job>> list(const core::JobFilter& filter) override;
  core::Result<core::JobDetail> show(const std::string& id, const std::string& product) override;
  core::Result<std::vector<core::AuditEntry>> log(const std::optional<std::string>& job,
                                            const std::string& product) override;

  core::Result<core::Claimed> claim(const core::ClaimInput& input) override;
  core::Result<core::Lease> renew(core::WorkerCall call, std::int64_t ttl_seconds) override;
  core::Result<core::Job> start(core::WorkerCall call) override;
  core::Result<core::Job> checkpoint(core::WorkerCall call, const std::string& ref) override;
  core::Result<core::Job> report(core::WorkerCall call, const core::ReportInput& input) override;
  core::Result<core::Job> release(core::WorkerCall call) override;
  core::Result<core::Job> act(core::OperatorAction action, const std::string& id, const std::string& product) override;
  core::Result<std::vector<core::Reaped>> reap() override;
  core::Result<std::vector<core::Event>> events(const std::string& id, const std::string& product,
                                          std::int64_t after) override;

  core::Result<core::FactoryStatus> heartbeat(const core::HeartbeatInput& input) override;
  core::Result<std::vector<core::FactoryStatus>> factories(const std::string& product) override;
  core::Result<std::vector<core::ExplainRow>> explain(const std::string& id, const std::string& product) override;
  core::Result<core::RouterSettings> settings(const std::string& product) override;
  core::Result<core::RouterSettings> update_settings(const std::string& product,
                                               const std::vector<std::string>& assignments) override;

  core::Result<core::IssuedToken> enroll(const core::EnrollInput& input) override;
  core::Result<core::IssuedToken> rotate_token(const std::string& factory, const std::string& product) override;
  core::Result<core::TokenRecord> revoke_token(const std::string& factory, const std::string& product) override;

  core::Result<std::int64_t> append_output(core::WorkerCall call, std::int64_t offset,
                                          const std::string& text) override;
  core::Result<core::RunOutput> output(const std::string& id, const std::string& product,
                                       std::optional<std::int64_t> epoch, std::int64_t from) override;
  core::Result<core::FleetMetrics> metrics(const std::string& product) override;

 private:
  struct Impl;
  explicit RemoteFleet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m;
};

}  // namespace gigafab::cli
