#include "core/lifecycle.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "core/ids.hpp"
#include "core/layout.hpp"
#include "core/queries.hpp"
#include "core/queue_index.hpp"
#include "core/toml_schema.hpp"

namespace gigafab::core {

namespace {

// Accumulates one operation's writes to one job: the job document (rev and
// updated_at bumped once), its events, its lease and the indexes.
class JobWrite {
 public:
  JobWrite(Transition& t, Millis now, std::string actor) : m_t(t), m_now(now), m_actor(std::move(actor)) {}

  Job& job() { return m_t.job; }

  // The queue index as `snap` shows it (with this change on top).
  Result<void> leave_queue(const Snapshot& snap) { return queue_index::remove(snap, m_t.change, m_t.job); }
  Result<void> enter_queue(const Snapshot& snap) { return queue_index::add(snap, m_t.change, m_t.job); }

  void put_lease(const Lease& lease, const std::optional<Lease>& old) {
    const std::string& id = m_t.job.id;
    m_t.change.put(layout::held_dir(lease.holder) + "/" + id,
                   "priority = \"" + std::string(priority_name(m_t.job.priority)) + "\"\nclaimed_at = \"" +
                       format_time(lease.acquired_at) + "\"\nepoch = " + std::to_string(lease.epoch) + "\n");
    if (old) m_t.change.remove(std::string(layout::k_lease_index) + "/" + layout::lease_entry_name(old->expires_at, id));
    m_t.change.put(std::string(layout::k_lease_index) + "/" + layout::lease_entry_name(lease.expires_at, id),
                   lease.holder + " " + std::to_string(lease.epoch) + "\n");
    m_t.change.put(layout::job_lease(id), lease_to_toml(lease));
    m_t.lease = lease;
  }

  void drop_lease(const Lease& old) {
    const std::string& id = m_t.job.id;
    m_t.change.remove(layout::held_dir(old.holder) + "/" + id);
    m_t.change.remove(std::string(layout::k_lease_index) + "/" + layout::lease_entry_name(old.expires_at, id));
    m_t.change.remove(layout::job_lease(id));
    m_t.lease.reset();
  }

  void put_run(const Run& run) { m_t.change.put(layout::job_run(m_t.job.id, run.epoch), run_to_toml(run)); }

  // Moves the job to `to`, recording an event of `type`.
  void move(Stage to, const std::string& type, const std::string& factory, const std::string& detail) {
    Event e;
    e.from = stage_name(m_t.job.stage);
    e.to = stage_name(to);
    m_t.job.stage = to;
    e.seq = ++m_t.job.event_seq;
    e.at = m_now;
    e.type = type;
    e.actor = m_actor;
    e.factory = factory;
    e.epoch = m_t.job.lease_epoch;
    e.detail = detail;
    m_t.change.put(layout::job_event(m_t.job.id, e.seq), event_to_json_text(e));
    m_dirty = true;
  }

  void touch() { m_dirty = true; }

  // Writes job.toml (if changed) and the commit message.
  void finish(const std::string& op, const std::string& summary, const std::string& factory = "",
              std::optional<std::int64_t> epoch = std::nullopt) {
    Job& job = m_t.job;
    if (m_dirty) {
      job.rev += 1;
      job.updated_at = m_now;
      m_t.change.put(layout::job_doc(job.id), job_to_toml(job));
    }
    m_t.change.summary = op + " " + job.id + ": " + summary;
    m_t.change.trailers.push_back({"Gigafab-Op", op});
    m_t.change.trailers.push_back({"Gigafab-Job", job.id});
    m_t.change.trailers.push_back({"Gigafab-Product", job.product});
    if (!factory.empty()) m_t.change.trailers.push_back({"Gigafab-Factory", factory});
    if (epoch) m_t.change.trailers.push_back({"Gigafab-Epoch", std::to_string(*epoch)});
    m_t.change.trailers.push_back({"Gigafab-Stage", stage_name(job.stage)});
    m_t.change.trailers.push_back({"Gigafab-Actor", m_actor});
  }

 private:
  Transition& m_t;
  Millis m_now;
  std::string m_actor;
  bool m_dirty = false;
};

std::string stages_text(std::initializer_list<Stage> stages) {
  std::string out;
  std::size_t i = 0;
  for (Stage s : stages) {
    if (i++) out += i == stages.size() ? " or " : ", ";
    out += stage_name(s);
  }
  return out;
}

Error illegal(const Job& job, std::string_view op, std::initializer_list<Stage> allowed) {
  Error e = make_error(ErrorCode::conflict, "cannot " + std::string(op) + " job " + job.id + ": it is " +
                                                stage_name(job.stage) + " (" + std::string(op) + " needs " +
                                                stages_text(allowed) + ")");
  e.reason = "illegal_transition";
  return e;
}

Result<Run> load_run(const Snapshot& snap, const Job& job, std::int64_t epoch) {
  std::string path = layout::job_run(job.id, epoch);
  auto text = snap.read(path);
  if (!text) return text.error();
  if (!*text) {
    Run empty;
    empty.epoch = epoch;
    return empty;
  }
  return run_from_toml(**text, path);
}

struct Held {
  Job job;
  Lease lease;
};

// The fencing check shared by every worker mutation.
Result<Held> check_worker(const Snapshot& snap, const WorkerCall& call, std::string_view op,
                          std::initializer_list<Stage> allowed, Millis now) {
  if (auto ok = validate_worker_call(call); !ok) return ok.error();
  auto job = load_job(snap, call.job_id, call.product);
  if (!job) return job.error();
  if (call.epoch < job->lease_epoch) {
    return make_error(ErrorCode::fenced, "job " + job->id + " is fenced (epoch " + std::to_string(call.epoch) +
                                             " < " + std::to_string(job->lease_epoch) + ")");
  }
  if (call.epoch > job->lease_epoch) {
    return make_error(ErrorCode::fenced, "job " + job->id + " is fenced (epoch " + std::to_string(call.epoch) +
                                             " was never granted; the current epoch is " +
                                             std::to_string(job->lease_epoch) + ")");
  }
  auto lease = find_lease(snap, job->id);
  if (!lease) return lease.error();
  if (*lease && (*lease)->holder != call.factory) {
    return make_error(ErrorCode::fenced,
                      "job " + job->id + " is leased to " + (*lease)->holder + ", not " + call.factory);
  }
  if (std::find(allowed.begin(), allowed.end(), job->stage) == allowed.end()) return illegal(*job, op, allowed);
  if (!*lease) return make_error(ErrorCode::fenced, "job " + job->id + " holds no lease");
  if ((*lease)->expires_at <= now) {
    return make_error(ErrorCode::fenced, "job " + job->id + "'s lease expired at " +
                                             format_time((*lease)->expires_at) + " (renew before it expires)");
  }
  return Held{std::move(*job), std::move(**lease)};
}

bool offers(const std::vector<std::string>& factory_caps, const std::vector<std::string>& required) {
  return std::all_of(required.begin(), required.end(), [&](const std::string& cap) {
    return std::find(factory_caps.begin(), factory_caps.end(), cap) != factory_caps.end();
  });
}

// Moves jobs blocked on `shipped_id` whose deps have now all shipped to the queue.
Result<void> unblock_dependents(const Snapshot& snap, Transition& t, const std::string& shipped_id,
                                const std::string& actor, Millis now) {
  std::string dir = layout::dependents_dir(shipped_id);
  auto waiting = snap.list(dir);
  if (!waiting) return waiting.error();
  for (const auto& id : *waiting) {
    t.change.remove(dir + "/" + id);
    auto dependent = find_job(snap, id);
    if (!dependent) return dependent.error();
    if (!*dependent || (*dependent)->stage != Stage::blocked) continue;
    bool ready = true;
    for (const auto& dep : (*dependent)->deps) {
      if (dep == shipped_id) continue;
      auto dep_job = find_job(snap, dep);
      if (!dep_job) return dep_job.error();
      if (!*dep_job || (*dep_job)->stage != Stage::shipped) ready = false;
    }
    if (!ready) continue;
    Transition sub{{}, std::move(**dependent), std::nullopt};
    JobWrite w(sub, now, actor);
    w.move(Stage::queued, "unblock", "", "deps satisfied (" + shipped_id + " shipped)");
    OverlaySnapshot so_far(snap, t.change);  // earlier dependents may share its bucket
    if (auto ok = w.enter_queue(so_far); !ok) return ok.error();
    w.finish("unblock", "");
    for (auto& [path, content] : sub.change.writes) t.change.writes[path] = std::move(content);
  }
  return {};
}

}  // namespace

const char* operator_action_name(OperatorAction action) {
  switch (action) {
    case OperatorAction::approve: return "approve";
    case OperatorAction::reject: return "reject";
    case OperatorAction::ship: return "ship";
    case OperatorAction::requeue: return "requeue";
  }
  return "?";
}

Result<void> validate_claim(const ClaimRequest& request) {
  if (auto ok = validate_name("product", request.product); !ok) return ok.error();
  if (auto ok = validate_name("factory", request.factory); !ok) return ok.error();
  if (request.capabilities) {
    for (const auto& cap : *request.capabilities) {
      if (auto ok = validate_name("capability", cap); !ok) return ok.error();
    }
  }
  return validate_ttl(request.ttl_seconds);
}

Result<void> validate_worker_call(const WorkerCall& call) {
  if (auto ok = validate_job_id(call.job_id); !ok) return ok.error();
  if (auto ok = validate_name("factory", call.factory); !ok) return ok.error();
  if (call.epoch < 1) return make_error(ErrorCode::usage, "--epoch must be a positive integer");
  return {};
}

Result<void> validate_ttl(std::int64_t ttl) {
  if (ttl < 1 || ttl > k_max_ttl_seconds) {
    return make_error(ErrorCode::usage, "--ttl must be between 1 and " + std::to_string(k_max_ttl_seconds) +
                                            " seconds, not " + std::to_string(ttl));
  }
  return {};
}

Result<void> validate_report(const ReportInput& input) {
  if (input.cost_usd && *input.cost_usd < 0) return make_error(ErrorCode::usage, "--cost must not be negative");
  if (input.tokens && *input.tokens < 0) return make_error(ErrorCode::usage, "--tokens must not be negative");
  if (input.summary.size() > 16 * 1024) return make_error(ErrorCode::usage, "--summary is longer than 16 KiB");
  if (!input.reason.empty()) {
    if (input.pass) return make_error(ErrorCode::usage, "a reason goes with a failing report only");
    bool name = input.reason.size() <= 64;
    for (char c : input.reason) name = name && ((c >= 'a' && c <= 'z') || c == '_');
    if (!name) return make_error(ErrorCode::usage, "invalid reason '" + escape_for_message(input.reason) + "': use lowercase letters and '_'");
  }
  return {};
}

Result<void> validate_ref(std::string_view ref) {
  auto bad = [&](const char* why) {
    return make_error(ErrorCode::usage, "invalid ref '" + escape_for_message(ref) + "': " + why);
  };
  if (ref.empty()) return bad("empty");
  if (ref.size() > 255) return bad("longer than 255 characters");
  if (ref.front() == '/' || ref.front() == '-' || ref.back() == '/' || ref.back() == '.') {
    return bad("must not start with '/' or '-' or end with '/' or '.'");
  }
  if (ref.find("..") != std::string_view::npos || ref.find("//") != std::string_view::npos ||
      ref.find("@{") != std::string_view::npos || ref.ends_with(".lock")) {
    return bad("not a valid git ref name");
  }
  for (char c : ref) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
              c == '.' || c == '_' || c == '-' || c == '+' || c == '=' || c == '@';
    if (!ok) return bad("only letters, digits and / . _ - + = @ are allowed");
  }
  return {};
}

Result<std::optional<Lease>> find_lease(const Snapshot& snap, const std::string& job_id) {
  std::string path = layout::job_lease(job_id);
  auto text = snap.read(path);
  if (!text) return text.error();
  if (!*text) return std::optional<Lease>{};
  auto lease = lease_from_toml(**text, path);
  if (!lease) return lease.error();
  return std::optional<Lease>{std::move(*lease)};
}

namespace {

// A queue entry name (layout::queued_entry_name) as a candidate shape.
std::optional<Candidate> shape_of(std::string_view name, const std::vector<std::string>& caps) {
  auto parsed = layout::parse_queued_entry_name(name);
  if (!parsed) return std::nullopt;
  Candidate c;
  c.priority = parsed->priority;
  c.created_at = parsed->created_at;
  c.id = std::move(parsed->id);
  c.capabilities = caps;
  c.may_name_engine = parsed->has_engine;
  c.may_have_run = parsed->has_last_factory;
  return c;
}

Result<Candidate> read_candidate(const Snapshot& snap, const std::string& path, Candidate shape) {
  auto text = snap.read(path);
  if (!text) return text.error();
  if (!*text) return make_error(ErrorCode::error, "queue entry vanished: " + path);
  auto doc = parse_toml(**text, path);
  if (!doc) return make_error(ErrorCode::error, "corrupt queue entry " + path + ": " + doc.error().message);
  if (auto usd = (*doc)["budget_usd"].value<double>()) shape.budget_usd = *usd;
  if (auto wall = (*doc)["wall_seconds"].value<std::int64_t>()) shape.wall_seconds = *wall;
  shape.engine = (*doc)["engine"].value_or(std::string{});
  shape.last_factory = (*doc)["last_factory"].value_or(std::string{});
  return shape;
}

struct RouterFleet {
  RouterSettings settings;
  std::vector<FactoryView> registered;  // every registered factory of the product
};

Result<RouterFleet> load_fleet(const Snapshot& snap, const std::string& product,
                         const std::map<std::string, Liveness>& liveness, Millis now) {
  RouterFleet fleet;
  auto settings = load_settings(snap, product);
  if (!settings) return settings.error();
  fleet.settings = *settings;
  auto records = list_factories(snap, product);
  if (!records) return records.error();
  for (const auto& record : *records) {
    auto view = factory_view(snap, record, liveness, fleet.settings, now);
    if (!view) return view.error();
    fleet.registered.push_back(std::move(*view));
  }
  return fleet;
}

// Ranks `views` for `job`: eligible first, by total, then id.
std::vector<ExplainRow> rank_factories(const Candidate& job, const std::vector<FactoryView>& views,
                                       const RouterSettings& settings, Millis now) {
  std::vector<ExplainRow> rows;
  for (const auto& v : views) rows.push_back({v, score(job, v, settings, now), 0});
  std::sort(rows.begin(), rows.end(), [](const ExplainRow& a, const ExplainRow& b) {
    if (a.score.eligible != b.score.eligible) return a.score.eligible;
    if (std::abs(a.score.total - b.score.total) > 1e-9) return a.score.total > b.score.total;
    return a.factory.id < b.factory.id;
  });
  int rank = 0;
  for (auto& row : rows) row.rank = row.score.eligible ? ++rank : 0;
  return rows;
}

}  // namespace

Candidate candidate_of(const Job& job) {
  Candidate c;
  c.id = job.id;
  c.priority = job.priority;
  c.created_at = job.created_at;
  c.capabilities = job.capabilities;
  c.budget_usd = job.budget.usd;
  c.wall_seconds = job.budget.wall_seconds;
  c.engine = job.engine;
  c.last_factory = job.last_factory;
  return c;
}

Result<std::vector<ExplainRow>> explain(const Snapshot& snap, const Job& job,
                                        const std::map<std::string, Liveness>& liveness,
                                        const std::optional<FactoryView>& extra, Millis now) {
  auto fleet = load_fleet(snap, job.product, liveness, now);
  if (!fleet) return fleet.error();
  std::vector<FactoryView> views = fleet->registered;
  if (extra && std::none_of(views.begin(), views.end(), [&](const FactoryView& v) { return v.id == extra->id; })) {
    views.push_back(*extra);
  }
  return rank_factories(candidate_of(job), views, fleet->settings, now);
}

Result<Transition> claim(const Snapshot& snap, const ClaimRequest& request, Millis now) {
  if (auto ok = validate_claim(request); !ok) return ok.error();
  auto fleet = load_fleet(snap, request.product, request.liveness, now);
  if (!fleet) return fleet.error();
  const RouterSettings& settings = fleet->settings;

  // The claimer's own view: its registration if any; claiming proves it is up.
  FactoryView self;
  self.id = request.factory;
  std::vector<FactoryView> others;
  for (const auto& v : fleet->registered) {
    if (v.id == request.factory) {
      self = v;
    } else {
      others.push_back(v);
    }
  }
  auto registration = find_factory(snap, request.factory);
  if (!registration) return registration.error();
  if (*registration && (*registration)->product != request.product) {
    return make_error(ErrorCode::conflict, "factory " + request.factory + " is registered to product " +
                                               (*registration)->product);
  }
  if (!*registration) {
    auto used = seats_used(snap, request.factory);
    if (!used) return used.error();
    self.seats_used = *used;
  }
  self.health = Health::healthy;
  if (request.capabilities) {
    std::set<std::string> caps(request.capabilities->begin(), request.capabilities->end());
    self.capabilities.assign(caps.begin(), caps.end());
  }
  if (self.seats > 0 && self.seats_used >= self.seats) {
    return make_error(ErrorCode::nothing_to_claim, "nothing to claim for " + request.factory + ": all " +
                                                       std::to_string(self.seats) + " seats in use");
  }

  std::string dir = layout::queued_dir(request.product);
  auto capsets = snap.list(dir);
  if (!capsets) return capsets.error();
  std::optional<Candidate> best;
  Score best_score;
  std::size_t deferred = 0;
  for (const auto& capset : *capsets) {
    std::vector<std::string> caps = layout::capset_capabilities(capset);
    if (!offers(self.capabilities, caps)) continue;
    auto buckets = queue_index::buckets(snap, dir + "/" + capset);
    if (!buckets) return buckets.error();
    // A sequence (rank, hinted) whose loosest bound already lost: the rest
    // of it is younger, so it loses too, and its buckets are not even read.
    bool done[4][2] = {};
    for (const auto& bucket : *buckets) {
      int rank = bucket.rank - '0';
      if (rank < 0 || rank > 3 || done[rank][bucket.hinted]) continue;
      // The bucket's names walked in place, most of them never looked at.
      std::optional<Error> failed;
      auto walked = snap.visit(bucket.path, [&](std::string_view name) {
        auto shape = shape_of(name, caps);
        if (!shape) return true;
        if (best) {
          // Within a sequence the bound falls with age when every entry is
          // bounded alike: no affinity for plain entries, all of it for hinted ones.
          Candidate loosest = *shape;
          loosest.may_name_engine = loosest.may_have_run = bucket.hinted;
          if (!ranks_before(loosest, score_upper_bound(loosest, self, settings, now), *best, best_score)) {
            done[rank][bucket.hinted] = true;
            return false;
          }
          if (!ranks_before(*shape, score_upper_bound(*shape, self, settings, now), *best, best_score)) return true;
        }
        auto candidate = read_candidate(snap, bucket.path + "/" + std::string(name), *shape);
        if (!candidate) {
          failed = candidate.error();
          return false;
        }
        Score s = score(*candidate, self, settings, now);
        if (best && !ranks_before(*candidate, s, *best, best_score)) return true;
        // Best fit across the fleet: leave a young job to a clearly better factory that can take it now.
        if (now - candidate->created_at < settings.defer_window * 1000) {
          bool better_elsewhere = std::any_of(others.begin(), others.end(), [&](const FactoryView& other) {
            Score o = score(*candidate, other, settings, now);
            return o.eligible && o.health == 1.0 && o.total > s.total + 0.05;
          });
          if (better_elsewhere) {
            ++deferred;
            return true;
          }
        }
        best = std::move(*candidate);
        best_score = s;
        return true;
      });
      if (!walked) return walked.error();
      if (failed) return *failed;
    }
  }
  if (!best) {
    // The slow path only: how long the queue is, for the message.
    std::size_t queued = 0;
    for (const auto& capset : *capsets) {
      auto n = queue_index::count(snap, dir + "/" + capset);
      if (!n) return n.error();
      queued += *n;
    }
    std::string why = queued == 0 ? "the queue of product " + request.product + " is empty"
                                  : std::to_string(queued) + " queued, none within capabilities [";
    if (queued) {
      for (std::size_t i = 0; i < self.capabilities.size(); ++i) why += (i ? "," : "") + self.capabilities[i];
      why += "]";
      if (deferred) why += " or " + std::to_string(deferred) + " left for better-fitting factories";
    }
    Error error = make_error(ErrorCode::nothing_to_claim, "nothing to claim for " + request.factory + ": " + why);
    // Deferred jobs come back to everyone once the defer window passes:
    // a draining agent waits for them rather than leaving them behind.
    if (deferred) error.reason = "deferred";
    return error;
  }

  auto job = load_job(snap, best->id, request.product);
  if (!job) return job.error();
  if (job->stage != Stage::queued) {
    return make_error(ErrorCode::error, "corrupt store: job " + job->id + " is indexed as queued but is " +
                                            stage_name(job->stage));
  }
  std::vector<FactoryView> everyone = others;
  everyone.push_back(self);
  auto ranking = rank_factories(*best, everyone, settings, now);

  Transition t{{}, std::move(*job), std::nullopt};
  JobWrite w(t, now, request.actor);
  if (auto ok = w.leave_queue(snap); !ok) return ok.error();
  Job& j = w.job();
  j.lease_epoch = std::max<std::int64_t>(1, j.lease_epoch);
  j.attempts += 1;
  j.reason.clear();
  j.last_factory = request.factory;
  Lease lease{request.factory, j.lease_epoch, now, now, now + request.ttl_seconds * 1000};
  w.put_lease(lease, std::nullopt);
  Run run;
  run.epoch = j.lease_epoch;
  run.factory = request.factory;
  run.claimed_at = now;
  run.checkpoint = j.checkpoint;
  Routing& r = run.routing;
  r.present = true;
  r.capability_fit = best_score.capability_fit;
  r.affinity = best_score.affinity;
  r.load = best_score.load;
  r.cost_fit = best_score.cost_fit;
  r.health = best_score.health;
  r.starvation_penalty = best_score.starvation_penalty;
  r.total = best_score.total;
  r.effective_priority = best_score.effective_priority;
  for (const auto& row : ranking) {
    if (row.score.eligible) ++r.candidates;
    if (row.factory.id == request.factory) r.rank = row.rank;
  }
  w.put_run(run);
  char score_text[32];
  std::snprintf(score_text, sizeof score_text, "%.3f", best_score.total);
  w.move(Stage::assigned, "claim", request.factory,
         "attempt " + std::to_string(j.attempts) + " of " + std::to_string(j.max_attempts) + ", score " + score_text +
             (j.checkpoint.empty() ? "" : ", resume from " + j.checkpoint));
  w.finish("claim", "assigned to " + request.factory, request.factory, j.lease_epoch);
  return t;
}

Result<Transition> preempt_one(const Snapshot& snap, const std::string& product,
                               const std::map<std::string, Liveness>& liveness, bool enabled,
                               const std::string& actor, Millis now) {
  if (!enabled) {
    auto settings = load_settings(snap, product);
    if (!settings) return settings.error();
    if (!settings->preemption) return Transition{};
  }
  auto fleet = load_fleet(snap, product, liveness, now);
  if (!fleet) return fleet.error();
  std::string dir = layout::queued_dir(product);
  auto capsets = snap.list(dir);
  if (!capsets) return capsets.error();
  // The oldest critical jobs first (entry names of rank 0 sort by age).
  std::vector<Candidate> critical;
  for (const auto& capset : *capsets) {
    auto buckets = queue_index::buckets(snap, dir + "/" + capset);
    if (!buckets) return buckets.error();
    for (const auto& bucket : *buckets) {
      if (bucket.rank != '0') break;
      auto entries = snap.list(bucket.path);
      if (!entries) return entries.error();
      for (const auto& name : *entries) {
        if (auto shape = shape_of(name, layout::capset_capabilities(capset))) critical.push_back(*shape);
      }
    }
  }
  std::sort(critical.begin(), critical.end(),
            [](const Candidate& a, const Candidate& b) { return a.created_at < b.created_at || (a.created_at == b.created_at && a.id < b.id); });
  for (const auto& job : critical) {
    std::vector<RunningJob> running;
    bool placeable = false;
    for (const auto& v : fleet->registered) {
      if (v.health == Health::down || !offers(v.capabilities, job.capabilities)) continue;
      if (v.seats_used < v.seats) {
        placeable = true;
        break;
      }
      auto held = held_jobs(snap, v.id);
      if (!held) return held.error();
      running.insert(running.end(), held->begin(), held->end());
    }
    if (placeable) continue;
    auto victim = select_victim(running, job.priority);
    if (!victim) continue;
    auto victim_job = load_job(snap, victim->id, "");
    if (!victim_job) return victim_job.error();
    auto lease = find_lease(snap, victim->id);
    if (!lease) return lease.error();
    if (!*lease) continue;
    Transition t{{}, std::move(*victim_job), std::nullopt};
    JobWrite w(t, now, actor);
    auto run = load_run(snap, t.job, (*lease)->epoch);
    if (!run) return run.error();
    run->ended_at = now;
    run->result = "preempted";
    run->reason = "preempted by " + job.id;
    w.put_run(*run);
    w.drop_lease(**lease);
    std::int64_t old_epoch = t.job.lease_epoch;
    t.job.lease_epoch += 1;
    t.job.attempts = std::max<std::int64_t>(0, t.job.attempts - 1);  // not the job's fault: refund the attempt
    w.move(Stage::queued, "preempt", (*lease)->holder, "evicted from " + (*lease)->holder + " for critical " + job.id);
    if (auto ok = w.enter_queue(snap); !ok) return ok.error();
    w.finish("preempt", "evicted from " + (*lease)->holder + " for " + job.id, (*lease)->holder, old_epoch);
    return t;
  }
  return Transition{};
}

Result<Transition> renew(const Snapshot& snap, const WorkerCall& call, std::int64_t ttl_seconds, Millis now) {
  if (auto ok = validate_ttl(ttl_seconds); !ok) return ok.error();
  auto held = check_worker(snap, call, "renew", {Stage::assigned, Stage::building}, now);
  if (!held) return held.error();
  Transition t{{}, std::move(held->job), std::nullopt};
  JobWrite w(t, now, call.actor);
  Lease lease = held->lease;
  lease.renewed_at = now;
  lease.expires_at = std::max(lease.expires_at, now + ttl_seconds * 1000);
  w.put_lease(lease, held->lease);
  w.finish("renew", "lease until " + format_time(lease.expires_at), call.factory, call.epoch);
  return t;
}

Result<Transition> start(const Snapshot& snap, const WorkerCall& call, Millis now) {
  auto held = check_worker(snap, call, "start", {Stage::assigned}, now);
  if (!held) return held.error();
  Transition t{{}, std::move(held->job), held->lease};
  JobWrite w(t, now, call.actor);
  auto run = load_run(snap, t.job, call.epoch);
  if (!run) return run.error();
  run->started_at = now;
  w.put_run(*run);
  w.move(Stage::building, "start", call.factory, "");
  w.finish("start", "building on " + call.factory, call.factory, call.epoch);
  return t;
}

Result<Transition> checkpoint(const Snapshot& snap, const WorkerCall& call, const std::string& ref, Millis now) {
  if (auto ok = validate_ref(ref); !ok) return ok.error();
  auto held = check_worker(snap, call, "checkpoint", {Stage::assigned, Stage::building}, now);
  if (!held) return held.error();
  Transition t{{}, std::move(held->job), held->lease};
  JobWrite w(t, now, call.actor);
  auto run = load_run(snap, t.job, call.epoch);
  if (!run) return run.error();
  run->checkpoint = ref;
  w.put_run(*run);
  t.job.checkpoint = ref;
  w.move(t.job.stage, "checkpoint", call.factory, ref);
  w.finish("checkpoint", ref, call.factory, call.epoch);
  return t;
}

Result<void> check_output_append(const Snapshot& snap, const WorkerCall& call, Millis now) {
  auto held = check_worker(snap, call, "output", {Stage::assigned, Stage::building}, now);
  if (!held) return held.error();
  return {};
}

Result<Transition> report(const Snapshot& snap, const WorkerCall& call, const ReportInput& input, Millis now) {
  if (auto ok = validate_report(input); !ok) return ok.error();
  auto held = check_worker(snap, call, "report", {Stage::building}, now);
  if (!held) return held.error();
  Transition t{{}, std::move(held->job), held->lease};
  JobWrite w(t, now, call.actor);
  Job& j = t.job;
  auto run = load_run(snap, j, call.epoch);
  if (!run) return run.error();
  run->ended_at = now;
  run->cost_usd = input.cost_usd.value_or(0);
  run->tokens = input.tokens.value_or(0);
  run->summary = input.summary;
  j.spent_usd += run->cost_usd;
  j.spent_tokens += run->tokens;
  bool over_budget = (j.budget.usd && j.spent_usd > *j.budget.usd + 1e-9) ||
                     (j.budget.tokens && j.spent_tokens > *j.budget.tokens);
  Stage to;
  std::string detail;
  if (!input.pass || over_budget) {
    to = Stage::failed;
    run->result = "fail";
    run->reason = over_budget ? "budget_exceeded" : !input.reason.empty() ? input.reason : "reported_fail";
    j.reason = run->reason;
    detail = "fail (" + run->reason + ")";
  } else {
    to = j.review ? Stage::review : Stage::testing;
    run->result = "pass";
    detail = "pass";
  }
  w.put_run(*run);
  w.drop_lease(held->lease);
  w.move(to, "report", call.factory, detail);
  w.finish("report", detail + " -> " + stage_name(to), call.factory, call.epoch);
  return t;
}

Result<Transition> release(const Snapshot& snap, const WorkerCall& call, Millis now) {
  auto held = check_worker(snap, call, "release", {Stage::assigned, Stage::building}, now);
  if (!held) return held.error();
  Transition t{{}, std::move(held->job), std::nullopt};
  JobWrite w(t, now, call.actor);
  auto run = load_run(snap, t.job, call.epoch);
  if (!run) return run.error();
  run->ended_at = now;
  run->result = "released";
  w.put_run(*run);
  w.drop_lease(held->lease);
  t.job.lease_epoch += 1;
  w.move(Stage::queued, "release", call.factory, t.job.checkpoint.empty() ? "" : "checkpoint " + t.job.checkpoint);
  if (auto ok = w.enter_queue(snap); !ok) return ok.error();
  w.finish("release", "back to the queue", call.factory, call.epoch);
  return t;
}

Result<Transition> act(const Snapshot& snap, OperatorAction action, const std::string& job_id,
                       const std::string& product, const std::string& actor, Millis now) {
  if (auto ok = validate_job_id(job_id); !ok) return ok.error();
  auto job = load_job(snap, job_id, product);
  if (!job) return job.error();
  const char* op = operator_action_name(action);
  Transition t{{}, std::move(*job), std::nullopt};
  JobWrite w(t, now, actor);
  Job& j = t.job;
  switch (action) {
    case OperatorAction::approve:
      if (j.stage != Stage::review) return illegal(j, op, {Stage::review});
      w.move(Stage::testing, op, "", "");
      break;
    case OperatorAction::reject:
      if (j.stage != Stage::review) return illegal(j, op, {Stage::review});
      j.reason = "rejected";
      w.move(Stage::failed, op, "", "rejected in review");
      break;
    case OperatorAction::ship:
      if (j.stage != Stage::testing) return illegal(j, op, {Stage::testing});
      w.move(Stage::shipped, op, "", "");
      if (auto ok = unblock_dependents(snap, t, j.id, actor, now); !ok) return ok.error();
      break;
    case OperatorAction::requeue:
      if (j.stage != Stage::failed) return illegal(j, op, {Stage::failed});
      j.lease_epoch += 1;
      if (j.attempts >= j.max_attempts) {
        j.reason = "attempts_exhausted";
        w.move(Stage::dead_letter, op,
               "", "attempts exhausted (" + std::to_string(j.attempts) + " of " + std::to_string(j.max_attempts) + ")");
      } else {
        j.reason.clear();
        w.move(Stage::queued, op, "", "");
        if (auto ok = w.enter_queue(snap); !ok) return ok.error();
      }
      break;
  }
  w.finish(op, std::string("-> ") + stage_name(j.stage));
  return t;
}

Result<Transition> reap_one(const Snapshot& snap, const std::string& actor, Millis now) {
  // Soonest expiry first: the first entry tells whether any lease is due
  // (the index is walked in place, not copied: it holds every live lease).
  std::string name;
  auto walked = snap.visit(layout::k_lease_index, [&](std::string_view entry) {
    std::size_t dash = entry.find('-');
    if (dash == std::string_view::npos) return true;
    if (std::stoll(std::string(entry.substr(0, dash))) <= now) name = entry;
    return false;
  });
  if (!walked) return walked.error();
  if (!name.empty()) {
    std::size_t dash = name.find('-');
    std::string id = name.substr(dash + 1);
    auto job = find_job(snap, id);
    if (!job) return job.error();
    auto lease = find_lease(snap, id);
    if (!lease) return lease.error();
    // Conditional on what we read: the same lease, still expired, still held.
    if (!*job || !*lease || (*lease)->expires_at > now ||
        ((*job)->stage != Stage::assigned && (*job)->stage != Stage::building)) {
      // An index entry without its lease cannot be produced by these
      // operations; should one appear (a hand edit), drop it rather than let
      // it stall the reaper.
      Transition repair;
      repair.change.remove(std::string(layout::k_lease_index) + "/" + name);
      repair.change.summary = "reap: drop stale lease index entry " + name;
      repair.change.trailers = {{"Gigafab-Op", "repair"}, {"Gigafab-Actor", actor}};
      return repair;
    }
    Transition t{{}, std::move(**job), std::nullopt};
    JobWrite w(t, now, actor);
    Job& j = t.job;
    auto run = load_run(snap, j, (*lease)->epoch);
    if (!run) return run.error();
    run->ended_at = now;
    run->result = "expired";
    w.put_run(*run);
    w.drop_lease(**lease);
    std::int64_t old_epoch = j.lease_epoch;
    j.lease_epoch += 1;
    std::string detail = "lease of " + (*lease)->holder + " expired at " + format_time((*lease)->expires_at);
    if (j.attempts >= j.max_attempts) {
      j.reason = "attempts_exhausted";
      w.move(Stage::dead_letter, "reap", (*lease)->holder, detail + "; attempts exhausted");
    } else {
      w.move(Stage::queued, "reap", (*lease)->holder, detail);
      if (auto ok = w.enter_queue(snap); !ok) return ok.error();
    }
    w.finish("reap", std::string("-> ") + stage_name(j.stage) + " (" + detail + ")", (*lease)->holder, old_epoch);
    return t;
  }
  return Transition{};
}

Result<std::vector<Event>> list_events(const Snapshot& snap, const std::string& job_id, std::int64_t after) {
  std::string dir = layout::job_events_dir(job_id);
  auto names = snap.list(dir);
  if (!names) return names.error();
  std::vector<Event> out;
  for (const auto& name : *names) {
    if (std::stoll(name) <= after) continue;
    std::string path = dir + "/" + name;
    auto text = snap.read(path);
    if (!text) return text.error();
    if (!*text) continue;
    auto event = event_from_json_text(**text, path);
    if (!event) return event.error();
    out.push_back(std::move(*event));
  }
  return out;
}

Result<std::vector<Run>> list_runs(const Snapshot& snap, const std::string& job_id) {
  std::string dir = layout::job_runs_dir(job_id);
  auto names = snap.list(dir);
  if (!names) return names.error();
  std::vector<Run> out;
  for (const auto& name : *names) {
    std::string path = dir + "/" + name;
    auto text = snap.read(path);
    if (!text) return text.error();
    if (!*text) continue;
    auto run = run_from_toml(**text, path);
    if (!run) return run.error();
    out.push_back(std::move(*run));
  }
  return out;
}

}  // namespace gigafab::core
