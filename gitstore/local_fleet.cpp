#include "gitstore/local_fleet.hpp"

#include "gitstore/list_cache.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <cstdlib>
#include <thread>

#include "core/auth.hpp"
#include "core/ids.hpp"
#include "core/factories.hpp"
#include "core/layout.hpp"
#include "core/metrics.hpp"
#include "core/submit.hpp"
#include "profiles/builtin.hpp"

namespace gigafab::gitstore {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::make_error;

Result<core::Catalog> load_catalog(const std::optional<std::string>& dir) {
  core::Catalog catalog;
  for (const auto& builtin : profiles::builtin()) {
    std::string file(builtin.file_name);
    auto added = catalog.add(builtin.text, "builtin:" + file, file.substr(0, file.size() - 3));
    if (!added) return added.error();
  }
  if (!dir || dir->empty()) return catalog;
  std::error_code ec;
  if (!fs::is_directory(*dir, ec)) {
    return make_error(ErrorCode::usage, "profile directory " + *dir + " does not exist");
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(*dir, ec)) {
    if (entry.path().extension() == ".md") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return make_error(ErrorCode::error, "cannot read " + file.string());
    auto added = catalog.add(text.str(), file.string(), file.stem().string());
    if (!added) return added.error();
  }
  return catalog;
}

LocalFleet::LocalFleet(Store store, std::string actor, std::optional<std::string> profiles_dir)
    : m_store(std::move(store)), m_actor(std::move(actor)), m_profiles_dir(std::move(profiles_dir)) {}

Result<const core::Catalog*> LocalFleet::catalog() {
  if (!m_catalog) {
    auto loaded = load_catalog(m_profiles_dir);
    if (!loaded) return loaded.error();
    m_catalog = std::move(*loaded);
  }
  return &*m_catalog;
}

Result<core::Submitted> LocalFleet::submit(const core::SubmitInput& input) {
  core::SubmitRequest request;
  request.manifest = input.manifest;
  request.product = input.product;
  request.actor = m_actor;
  if (input.manifest.profile) {
    auto cat = catalog();
    if (!cat) return cat.error();
    auto profile = (*cat)->find(*input.manifest.profile);
    if (!profile) return profile.error();
    request.profile = std::move(*profile);
  }
  std::random_device device;
  std::uint64_t seed = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  core::SubmitResult outcome;
  auto committed = m_store.transact(
      [&](const core::Snapshot& snap) -> Result<core::Change> {
        auto result = core::submit(snap, request, core::now_millis(), seed);
        if (!result) return result.error();
        outcome = std::move(*result);
        return outcome.change;
      },
      m_actor);
  if (!committed) return committed.error();
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  auto job = core::load_job(**snap, outcome.job_id, "");
  if (!job) return job.error();
  if (!outcome.duplicate && job->priority == core::Priority::critical && job->stage == core::Stage::queued) {
    if (auto ok = preempt(job->product); !ok) return ok.error();
  }
  return core::Submitted{std::move(*job), outcome.duplicate};
}

Result<std::vector<core::Job>> LocalFleet::list(const core::JobFilter& filter) {
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  return core::list_jobs(**snap, filter);
}

Result<core::JobListing> LocalFleet::list_rows(const core::JobFilter& filter) {
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  const std::string path = list_cache_path(m_store.path());
  if (!m_rows) m_rows = std::make_shared<core::JobRowCache>(load_list_cache(path));
  core::JobListing listing;
  listing.cache = m_rows;
  m_rows->begin();
  if (auto ok = core::list_job_rows(**snap, filter, listing); !ok) return ok.error();
  if (m_rows->stale()) save_list_cache(path, *m_rows);
  if (!m_keep_rows) m_rows.reset();
  return listing;
}

Result<std::string> LocalFleet::list_document(const core::JobFilter& filter) {
  auto listing = list_rows(filter);
  if (!listing) return listing.error();
  return core::job_rows_document(*listing);
}

Result<core::JobDetail> LocalFleet::show(const std::string& id, const std::string& product) {
  if (auto ok = core::validate_job_id(id); !ok) return ok.error();
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  auto job = core::load_job(**snap, id, product);
  if (!job) return job.error();
  auto body = core::load_body(**snap, id);
  if (!body) return body.error();
  core::JobDetail detail{std::move(*job), std::move(*body), std::nullopt, std::nullopt, {}};
  auto lease = core::find_lease(**snap, id);
  if (!lease) return lease.error();
  detail.lease = std::move(*lease);
  auto runs = core::list_runs(**snap, id);
  if (!runs) return runs.error();
  detail.runs = std::move(*runs);
  if (!detail.job.profile.empty()) {
    std::string path = core::layout::profile_doc(detail.job.profile, detail.job.profile_version);
    auto text = (*snap)->read(path);
    if (!text) return text.error();
    if (*text) {
      auto profile = core::parse_profile(**text, path);
      if (!profile) return make_error(ErrorCode::error, "corrupt profile snapshot: " + profile.error().message);
      detail.profile = std::move(*profile);
    }
  }
  return detail;
}

Result<std::vector<core::AuditEntry>> LocalFleet::log(const std::optional<std::string>& job,
                                                      const std::string& product) {
  if (job) {
    if (auto ok = core::validate_job_id(*job); !ok) return ok.error();
    auto snap = m_store.snapshot();
    if (!snap) return snap.error();
    if (auto found = core::load_job(**snap, *job, product); !found) return found.error();
  }
  auto history = m_store.history();
  if (!history) return history.error();
  std::vector<core::AuditEntry> out;
  for (auto& commit : *history) {
    core::AuditEntry entry;
    entry.commit = commit.oid;
    entry.time = commit.time;
    entry.summary = commit.summary;
    entry.op = commit.trailer("Gigafab-Op");
    entry.job = commit.trailer("Gigafab-Job");
    entry.product = commit.trailer("Gigafab-Product");
    entry.actor = commit.trailer("Gigafab-Actor");
    entry.trailers = std::move(commit.trailers);
    if (job ? entry.job != *job : (!entry.product.empty() && entry.product != product)) continue;
    out.push_back(std::move(entry));
  }
  return out;
}

Result<core::Transition> LocalFleet::apply(const TransitionOp& op) {
  core::Transition outcome;
  auto committed = m_store.transact(
      [&](const core::Snapshot& snap) -> Result<core::Change> {
        auto result = op(snap, core::now_millis());
        if (!result) return result.error();
        outcome = std::move(*result);
        return outcome.change;
      },
      m_actor);
  if (!committed) return committed.error();
  return outcome;
}

namespace {

// Random token material whose id is free in `snap` (a collision of 60 random
// bits is all but impossible; this makes it impossible to act on).
Result<core::TokenMaterial> fresh_material(const core::Snapshot& snap) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto material = core::random_token_material();
    if (!material) return material.error();
    auto taken = snap.read(core::layout::token_doc(material->id));
    if (!taken) return taken.error();
    if (!*taken) return material;
  }
  return make_error(ErrorCode::error, "cannot find a free token id");
}

}  // namespace

Result<core::IssuedToken> LocalFleet::apply_token(const TokenOp& op) {
  core::IssuedToken issued;
  auto committed = m_store.transact(
      [&](const core::Snapshot& snap) -> Result<core::Change> {
        auto result = op(snap, core::now_millis());
        if (!result) return result.error();
        issued = std::move(result->issued);
        return std::move(result->change);
      },
      m_actor);
  if (!committed) return committed.error();
  return issued;
}

Result<core::IssuedToken> LocalFleet::enroll(const core::EnrollInput& input) {
  core::EnrollInput in = input;
  in.actor = m_actor;
  return apply_token([&](const core::Snapshot& snap, core::Millis now) -> Result<core::TokenChange> {
    auto material = fresh_material(snap);
    if (!material) return material.error();
    return core::enroll_factory(snap, in, *material, now);
  });
}

Result<core::IssuedToken> LocalFleet::rotate_token(const std::string& factory, const std::string& product) {
  return apply_token([&](const core::Snapshot& snap, core::Millis now) -> Result<core::TokenChange> {
    auto material = fresh_material(snap);
    if (!material) return material.error();
    return core::rotate_factory_token(snap, factory, product, m_actor, *material, now);
  });
}

Result<core::TokenRecord> LocalFleet::revoke_token(const std::string& factory, const std::string& product) {
  auto revoked = apply_token([&](const core::Snapshot& snap, core::Millis) {
    return core::revoke_factory_token(snap, factory, product, m_actor);
  });
  if (!revoked) return revoked.error();
  return std::move(revoked->record);
}

Result<core::IssuedToken> LocalFleet::create_operator_token(const std::string& product, const std::string& name) {
  core::OperatorTokenInput in{product, name, m_actor};
  return apply_token([&](const core::Snapshot& snap, core::Millis now) -> Result<core::TokenChange> {
    auto material = fresh_material(snap);
    if (!material) return material.error();
    return core::create_operator_token(snap, in, *material, now);
  });
}

Result<std::vector<core::TokenRecord>> LocalFleet::tokens(const std::string& scope) {
  if (scope != core::k_all_products) {
    if (auto ok = core::validate_name("product", scope); !ok) return ok.error();
  }
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  return core::list_tokens(**snap, scope);
}

Result<core::TokenRecord> LocalFleet::revoke_token_id(const std::string& id, const std::string& scope) {
  auto revoked = apply_token([&](const core::Snapshot& snap, core::Millis) {
    return core::revoke_token_id(snap, id, scope, m_actor);
  });
  if (!revoked) return revoked.error();
  return std::move(revoked->record);
}

Result<core::Principal> LocalFleet::authenticate(std::string_view token) {
  // A principal depends on auth/ alone: while that tree is the same, a token
  // checked once speaks for the same principal (no record read, no hash).
  // While the tip is the one that tree was read at, not even the tree is
  // read (a server authenticates several requests per commit).
  // Nor while the tip descends from it through commits a writer vouched
  // for (note_same_auth).
  if (!m_store.in_group() && !m_principals_at.empty()) {
    auto tip = m_store.tip_id();
    if (!tip) return tip.error();
    std::string at = *tip;
    for (int hops = 0; at != m_principals_at && hops < 64; ++hops) {
      auto parent = m_same_auth.find(at);
      if (parent == m_same_auth.end()) break;
      at = parent->second;
    }
    if (at == m_principals_at) {
      m_principals_at = *tip;
      if (auto it = m_principals.find(token); it != m_principals.end()) return it->second;
    }
  }
  std::string tip;
  auto snap = m_store.snapshot(&tip);
  if (!snap) return snap.error();
  std::string auth_tree;
  if (auto id = (*snap)->id_of("", core::layout::k_auth_dir); id) auth_tree = std::move(*id);
  if (auth_tree.empty() || auth_tree != m_principals_of) {
    m_principals.clear();
    m_principals_of = auth_tree;
  }
  m_principals_at = auth_tree.empty() ? std::string() : tip;
  if (auto it = m_principals.find(token); it != m_principals.end()) return it->second;
  auto principal = core::authenticate(**snap, token);
  if (principal && !auth_tree.empty()) {
    constexpr std::size_t k_max_principals = 4096;  // live tokens, so this bounds nothing real
    if (m_principals.size() >= k_max_principals) m_principals.clear();
    m_principals.emplace(std::string(token), *principal);
  }
  return principal;
}

void LocalFleet::note_same_auth(const std::string& child, const std::string& parent) {
  constexpr std::size_t k_max_notes = 256;  // a few seconds of a busy server's commits
  if (m_same_auth.size() >= k_max_notes) m_same_auth.clear();
  m_same_auth[child] = parent;
}

Result<std::vector<core::Reaped>> LocalFleet::reap() {
  std::vector<core::Reaped> reaped;
  for (;;) {
    auto t = apply([&](const core::Snapshot& snap, core::Millis now) { return core::reap_one(snap, m_actor, now); });
    if (!t) return t.error();
    if (t->change.empty()) return reaped;
    if (t->job.id.empty()) continue;  // a repaired index entry
    core::Reaped r{t->job, "", 0};
    for (const auto& [key, value] : t->change.trailers) {
      if (key == "Gigafab-Factory") r.factory = value;
      if (key == "Gigafab-Epoch") r.epoch = std::stoll(value);
    }
    reaped.push_back(std::move(r));
  }
}

Result<core::Claimed> LocalFleet::claim(const core::ClaimInput& input) {
  core::ClaimRequest request{input.product, input.factory, input.capabilities, input.ttl_seconds, m_actor, {}};
  core::Millis deadline = core::now_millis() + input.wait_seconds * 1000;
  for (;;) {
    if (auto reaped = reap(); !reaped) return reaped.error();
    auto live = liveness();
    if (!live) return live.error();
    request.liveness = std::move(*live);
    if (auto ok = preempt(input.product, request.liveness); !ok) return ok.error();
    auto t = apply([&](const core::Snapshot& snap, core::Millis now) { return core::claim(snap, request, now); });
    if (t) return core::Claimed{std::move(t->job), std::move(*t->lease)};
    if (t.error().code != ErrorCode::nothing_to_claim || core::now_millis() >= deadline) return t.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<std::map<std::string, core::Liveness>> LocalFleet::liveness() {
  auto snap = m_store.snapshot_of(core::layout::k_liveness_ref);
  if (!snap) return snap.error();
  return core::load_liveness(**snap);
}

Result<void> LocalFleet::preempt(const std::string& product) {
  auto live = liveness();
  if (!live) return live.error();
  return preempt(product, *live);
}

// A claim passes the liveness it read already (one ref read fewer per claim).
Result<void> LocalFleet::preempt(const std::string& product, const std::map<std::string, core::Liveness>& live) {
  const char* flag = std::getenv("FLEET_PREEMPTION");
  bool enabled = flag && std::string_view(flag) == "1";
  for (;;) {
    auto t = apply([&](const core::Snapshot& snap, core::Millis now) {
      return core::preempt_one(snap, product, live, enabled, m_actor, now);
    });
    if (!t) return t.error();
    if (t->change.empty()) return {};
  }
}

Result<core::FactoryStatus> LocalFleet::heartbeat(const core::HeartbeatInput& input) {
  core::HeartbeatInput in = input;
  in.actor = m_actor;
  auto registered = m_store.transact(
      [&](const core::Snapshot& snap) { return core::register_factory(snap, in, core::now_millis()); }, m_actor);
  if (!registered) return registered.error();
  auto beat = m_store.transact_on(
      core::layout::k_liveness_ref,
      [&](const core::Snapshot& live) { return core::record_liveness(live, in, core::now_millis()); },
      m_actor, false);
  if (!beat) return beat.error();
  auto all = factories(in.product);
  if (!all) return all.error();
  for (auto& status : *all) {
    if (status.record.id == in.factory) return std::move(status);
  }
  return make_error(ErrorCode::error, "factory " + in.factory + " vanished after its heartbeat");
}

Result<std::vector<core::FactoryStatus>> LocalFleet::factories(const std::string& product) {
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  auto live = liveness();
  if (!live) return live.error();
  auto settings = core::load_settings(**snap, product);
  if (!settings) return settings.error();
  auto records = core::list_factories(**snap, product);
  if (!records) return records.error();
  core::Millis now = core::now_millis();
  std::vector<core::FactoryStatus> out;
  for (auto& record : *records) {
    core::FactoryStatus status;
    auto it = live->find(record.id);
    if (it != live->end()) {
      status.last_heartbeat_at = it->second.last_heartbeat_at;
      status.load = it->second.load;
      status.health = core::health_from_age(now - status.last_heartbeat_at, *settings);
    }
    auto held = core::held_jobs(**snap, record.id);
    if (!held) return held.error();
    status.jobs = std::move(*held);
    status.record = std::move(record);
    out.push_back(std::move(status));
  }
  return out;
}

Result<std::vector<core::ExplainRow>> LocalFleet::explain(const std::string& id, const std::string& product) {
  if (auto ok = core::validate_job_id(id); !ok) return ok.error();
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  auto job = core::load_job(**snap, id, product);
  if (!job) return job.error();
  auto live = liveness();
  if (!live) return live.error();
  return core::explain(**snap, *job, *live, std::nullopt, core::now_millis());
}

Result<core::RouterSettings> LocalFleet::settings(const std::string& product) {
  if (auto ok = core::validate_name("product", product); !ok) return ok.error();
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  return core::load_settings(**snap, product);
}

Result<core::RouterSettings> LocalFleet::update_settings(const std::string& product,
                                                         const std::vector<std::string>& assignments) {
  if (auto ok = core::validate_name("product", product); !ok) return ok.error();
  core::RouterSettings result;
  auto committed = m_store.transact(
      [&](const core::Snapshot& snap) -> Result<core::Change> {
        auto current = core::load_settings(snap, product);
        if (!current) return current.error();
        result = *current;
        for (const auto& a : assignments) {
          if (auto ok = core::apply_setting(result, a); !ok) return ok.error();
        }
        core::Change change;
        if (result == *current) return change;
        change.put(core::layout::router_settings(product), core::settings_to_toml(result));
        std::string what;
        for (const auto& a : assignments) what += (what.empty() ? "" : " ") + a;
        change.summary = "weights " + product + ": " + what;
        change.trailers = {{"Gigafab-Op", "weights"}, {"Gigafab-Product", product}, {"Gigafab-Actor", m_actor}};
        return change;
      },
      m_actor);
  if (!committed) return committed.error();
  return result;
}

Result<core::FleetMetrics> LocalFleet::metrics(const std::string& product) {
  if (auto ok = core::validate_name("product", product); !ok) return ok.error();
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  auto live = liveness();
  if (!live) return live.error();
  return core::compute_metrics(**snap, *live, product, core::now_millis());
}

Result<std::vector<core::FleetMetrics>> LocalFleet::metrics_all() {
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  auto live = liveness();
  if (!live) return live.error();
  return core::compute_all_metrics(**snap, *live, core::now_millis());
}

Result<std::vector<std::string>> LocalFleet::products() {
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  return core::list_products(**snap);
}

Result<core::Lease> LocalFleet::renew(core::WorkerCall call, std::int64_t ttl_seconds) {
  call.actor = m_actor;
  auto t = apply([&](const core::Snapshot& snap, core::Millis now) { return core::renew(snap, call, ttl_seconds, now); });
  if (!t) return t.error();
  return std::move(*t->lease);
}

Result<core::Job> LocalFleet::start(core::WorkerCall call) {
  call.actor = m_actor;
  auto t = apply([&](const core::Snapshot& snap, core::Millis now) { return core::start(snap, call, now); });
  if (!t) return t.error();
  return std::move(t->job);
}

Result<core::Job> LocalFleet::checkpoint(core::WorkerCall call, const std::string& ref) {
  call.actor = m_actor;
  auto t = apply([&](const core::Snapshot& snap, core::Millis now) { return core::checkpoint(snap, call, ref, now); });
  if (!t) return t.error();
  return std::move(t->job);
}

Result<core::Job> LocalFleet::report(core::WorkerCall call, const core::ReportInput& input) {
  call.actor = m_actor;
  auto t = apply([&](const core::Snapshot& snap, core::Millis now) { return core::report(snap, call, input, now); });
  if (!t) return t.error();
  return std::move(t->job);
}

Result<core::Job> LocalFleet::release(core::WorkerCall call) {
  call.actor = m_actor;
  auto t = apply([&](const core::Snapshot& snap, core::Millis now) { return core::release(snap, call, now); });
  if (!t) return t.error();
  return std::move(t->job);
}

Result<core::Job> LocalFleet::act(core::OperatorAction action, const std::string& id, const std::string& product) {
  auto t = apply([&](const core::Snapshot& snap, core::Millis now) {
    return core::act(snap, action, id, product, m_actor, now);
  });
  if (!t) return t.error();
  return std::move(t->job);
}

Result<std::vector<core::Event>> LocalFleet::events(const std::string& id, const std::string& product,
                                                    std::int64_t after) {
  if (auto ok = core::validate_job_id(id); !ok) return ok.error();
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  if (auto job = core::load_job(**snap, id, product); !job) return job.error();
  return core::list_events(**snap, id, after);
}

Result<std::int64_t> LocalFleet::append_output(core::WorkerCall call, std::int64_t offset, const std::string& text) {
  call.actor = m_actor;
  if (auto ok = core::validate_worker_call(call); !ok) return ok.error();
  std::int64_t end = 0;
  auto committed = m_store.transact_on(
      core::k_logs_ref,
      [&](const core::Snapshot& logs) -> Result<core::Change> {
        // The fence is checked against the state as it is now (fetched
        // just before, with a remote): output of a run whose lease is gone
        // is refused like any other call of a stale worker.
        auto state = m_store.snapshot();
        if (!state) return state.error();
        if (auto ok = core::check_output_append(**state, call, core::now_millis()); !ok) return ok.error();
        auto appended = core::append_run_output(logs, call.job_id, call.epoch, offset, text);
        if (!appended) return appended.error();
        end = appended->end;
        if (!appended->change.empty()) appended->change.trailers.emplace_back("Gigafab-Factory", call.factory);
        return std::move(appended->change);
      },
      m_actor, true);
  if (!committed) return committed.error();
  return end;
}

Result<core::RunOutput> LocalFleet::output(const std::string& id, const std::string& product,
                                           std::optional<std::int64_t> epoch, std::int64_t from) {
  if (auto ok = core::validate_job_id(id); !ok) return ok.error();
  if (epoch && *epoch < 1) return core::make_error(core::ErrorCode::usage, "--epoch must be a positive integer");
  auto snap = m_store.snapshot();
  if (!snap) return snap.error();
  if (auto job = core::load_job(**snap, id, product); !job) return job.error();
  auto runs = core::list_runs(**snap, id);
  if (!runs) return runs.error();
  const core::Run* run = nullptr;
  for (const auto& r : *runs) {
    if (!epoch || r.epoch == *epoch) run = &r;
  }
  if (!run) {
    return core::make_error(core::ErrorCode::not_found,
                            epoch ? "job " + id + " has no run with epoch " + std::to_string(*epoch)
                                  : "job " + id + " has not run yet");
  }
  auto logs = m_store.snapshot_of(core::k_logs_ref);
  if (!logs) return logs.error();
  auto out = core::read_run_output(**logs, id, run->epoch, from);
  if (!out) return out.error();
  out->live = run->ended_at == 0;
  return out;
}

}  // namespace gigafab::gitstore
