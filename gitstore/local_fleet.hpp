// The in-process Fleet: core operations run against a git store on this
// machine. Used by the CLI without --api, and by `gigafab serve`.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/catalog.hpp"
#include "core/fleet.hpp"
#include "gitstore/store.hpp"

namespace gigafab::gitstore {

// The catalog a fleet resolves profile names against: the builtin profiles,
// overlaid by the *.md files of `dir` (GIGAFAB_PROFILES) when given.
Result<core::Catalog> load_catalog(const std::optional<std::string>& dir);

class LocalFleet final : public core::Fleet {
 public:
  // `actor` is recorded in every commit this fleet writes.
  LocalFleet(Store store, std::string actor, std::optional<std::string> profiles_dir);

  Result<core::Submitted> submit(const core::SubmitInput& input) override;
  Result<std::vector<core::Job>> list(const core::JobFilter& filter) override;
  // Local only: what `list --json` prints for `filter` (core::job_rows_document),
  // through the row cache kept beside the store (gitstore/list_cache.hpp):
  // only jobs whose directory changed since the last listing are read.
  Result<std::string> list_document(const core::JobFilter& filter);
  // The same rows, to write the document a part at a time
  // (core::JobRowsWriter). A listing holds its rows while it lives; the
  // texts of cached rows stay in the cache file until written. Rows keep
  // being valid while the fleet changes, but a later list_rows() of a fleet
  // that keeps its rows marks them again: finish one listing first.
  Result<core::JobListing> list_rows(const core::JobFilter& filter);
  // Whether list_rows keeps the rows in memory between calls (the default)
  // or reads the cache file each time (serve: ~230 bytes per job less
  // resident, and listings that never share a cache).
  void keep_list_rows(bool keep) { m_keep_rows = keep; }
  Result<core::JobDetail> show(const std::string& id, const std::string& product) override;
  Result<std::vector<core::AuditEntry>> log(const std::optional<std::string>& job,
                                            const std::string& product) override;

  Result<core::Claimed> claim(const core::ClaimInput& input) override;
  Result<core::Lease> renew(core::WorkerCall call, std::int64_t ttl_seconds) override;
  Result<core::Job> start(core::WorkerCall call) override;
  Result<core::Job> checkpoint(core::WorkerCall call, const std::string& ref) override;
  Result<core::Job> report(core::WorkerCall call, const core::ReportInput& input) override;
  Result<core::Job> release(core::WorkerCall call) override;
  Result<core::Job> act(core::OperatorAction action, const std::string& id, const std::string& product) override;
  Result<std::vector<core::Reaped>> reap() override;
  Result<std::vector<core::Event>> events(const std::string& id, const std::string& product,
                                          std::int64_t after) override;

  Result<core::FactoryStatus> heartbeat(const core::HeartbeatInput& input) override;
  Result<std::vector<core::FactoryStatus>> factories(const std::string& product) override;
  Result<std::vector<core::ExplainRow>> explain(const std::string& id, const std::string& product) override;
  Result<core::RouterSettings> settings(const std::string& product) override;
  Result<core::RouterSettings> update_settings(const std::string& product,
                                               const std::vector<std::string>& assignments) override;

  // --- API tokens (core/auth.hpp)
  Result<core::IssuedToken> enroll(const core::EnrollInput& input) override;
  Result<core::IssuedToken> rotate_token(const std::string& factory, const std::string& product) override;
  Result<core::TokenRecord> revoke_token(const std::string& factory, const std::string& product) override;
  // Local only (the server owns a LocalFleet; remote clients never manage
  // operator tokens). A new operator token for `product`, or for every
  // product when it is "*"; `name` is an optional label.
  Result<core::IssuedToken> create_operator_token(const std::string& product, const std::string& name);
  // Every token in `scope` (a product, or "*" for all), oldest first; never secrets.
  Result<std::vector<core::TokenRecord>> tokens(const std::string& scope);
  // Removes any token by id; not_found unless it exists and is in `scope`.
  Result<core::TokenRecord> revoke_token_id(const std::string& id, const std::string& scope);
  // The principal a bearer token speaks for; unauthorized ("invalid token")
  // for anything but a live token. Reads one document of the current tip,
  // once per token while the tip's auth/ tree stays the same.
  Result<core::Principal> authenticate(std::string_view token);
  // A writer's word that commit `child` (hex) has the same auth/ tree as
  // `parent`: it wrote nothing there. authenticate() then trusts what it
  // checked at `parent` at `child` too, without reading `child`'s trees (a
  // server's token checks read every new commit otherwise). A commit
  // nobody vouched for (another process's) is read as before.
  void note_same_auth(const std::string& child, const std::string& parent);
  // --- end of API tokens
  Result<std::int64_t> append_output(core::WorkerCall call, std::int64_t offset, const std::string& text) override;
  Result<core::RunOutput> output(const std::string& id, const std::string& product,
                                 std::optional<std::int64_t> epoch, std::int64_t from) override;
  Result<core::FleetMetrics> metrics(const std::string& product) override;
  // Local only (for the Prometheus endpoint, which reports every product):
  // the metrics of every product in the store, from one read of its job
  // documents, sorted by product.
  Result<std::vector<core::FleetMetrics>> metrics_all();
  // Every product the store knows (core::list_products); reads every job
  // document, so prefer metrics_all() to products() + metrics() per product.
  Result<std::vector<std::string>> products();

  Store& store() { return m_store; }
  // The identity recorded from now on (the server sets it per request).
  void set_actor(std::string actor) { m_actor = std::move(actor); }

 private:
  using TransitionOp = std::function<Result<core::Transition>(const core::Snapshot&, core::Millis now)>;
  // Commits what `op` returns (re-run on the new tip when the CAS loses) and
  // returns the winning transition.
  Result<core::Transition> apply(const TransitionOp& op);
  using TokenOp = std::function<Result<core::TokenChange>(const core::Snapshot&, core::Millis now)>;
  // Commits what a token operation returns (re-run on the new tip when the CAS loses).
  Result<core::IssuedToken> apply_token(const TokenOp& op);

  Result<const core::Catalog*> catalog();
  Result<std::map<std::string, core::Liveness>> liveness();
  // Evicts for waiting critical jobs while preemption is on (FLEET_PREEMPTION=1 or the product setting).
  Result<void> preempt(const std::string& product);
  Result<void> preempt(const std::string& product, const std::map<std::string, core::Liveness>& live);

  Store m_store;
  std::string m_actor;
  std::optional<std::string> m_profiles_dir;
  std::optional<core::Catalog> m_catalog;
  std::shared_ptr<core::JobRowCache> m_rows;  // loaded by the first list_rows
  bool m_keep_rows = true;
  // authenticate(): the principals of tokens checked against auth/ tree `m_principals_of`.
  std::map<std::string, core::Principal, std::less<>> m_principals;
  std::string m_principals_of;
  std::string m_principals_at;  // the tip whose auth/ tree that is
  std::map<std::string, std::string> m_same_auth;  // note_same_auth: child -> parent
};

}  // namespace gigafab::gitstore
