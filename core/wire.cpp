#include "core/wire.hpp"

#include <nlohmann/json.hpp>

#include <set>

#include "core/ids.hpp"
#include "core/json.hpp"
#include "core/suggest.hpp"

namespace gigafab::core {

using nlohmann::json;

namespace {

Error field_error(std::string field, std::string message) {
  Error e = make_error(ErrorCode::usage, std::move(message));
  e.field = std::move(field);
  return e;
}

// Reads the fields of one JSON object, remembering the first problem. Strict
// readers (requests) also reject fields nobody asked for; lenient ones
// (responses) ignore them. Null counts as absent.
class Reader {
 public:
  Reader(const json& doc, std::string prefix, bool strict) : m_doc(doc), m_prefix(std::move(prefix)), m_strict(strict) {
    if (!doc.is_object()) fail("", m_prefix.empty() ? "expected a JSON object" : "expected an object");
  }

  template <typename T>
  std::optional<T> get(const std::string& key, bool required = false) {
    m_known.insert(key);
    if (!m_doc.is_object()) return std::nullopt;
    auto it = m_doc.find(key);
    if (it == m_doc.end() || it->is_null()) {
      if (required) fail(key, "is required");
      return std::nullopt;
    }
    const json& v = *it;
    if constexpr (std::is_same_v<T, std::string>) {
      if (v.is_string()) return v.get<std::string>();
      fail(key, "expected a string");
    } else if constexpr (std::is_same_v<T, bool>) {
      if (v.is_boolean()) return v.get<bool>();
      fail(key, "expected true or false");
    } else if constexpr (std::is_same_v<T, std::int64_t>) {
      if (v.is_number_integer()) return v.get<std::int64_t>();
      if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<std::int64_t>(v.get<double>()))) {
        return static_cast<std::int64_t>(v.get<double>());
      }
      fail(key, "expected an integer");
    } else if constexpr (std::is_same_v<T, double>) {
      if (v.is_number()) return v.get<double>();
      fail(key, "expected a number");
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      if (v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); })) {
        return v.get<std::vector<std::string>>();
      }
      fail(key, "expected an array of strings");
    } else if constexpr (std::is_same_v<T, json>) {
      return v;
    }
    return std::nullopt;
  }

  std::string str(const std::string& key, bool required = false) { return get<std::string>(key, required).value_or(""); }
  std::int64_t i64(const std::string& key, bool required = false) { return get<std::int64_t>(key, required).value_or(0); }
  double num(const std::string& key) { return get<double>(key).value_or(0); }
  bool flag(const std::string& key) { return get<bool>(key).value_or(false); }
  std::vector<std::string> strings(const std::string& key) { return get<std::vector<std::string>>(key).value_or(std::vector<std::string>{}); }
  Millis time(const std::string& key) {
    auto text = get<std::string>(key);
    if (!text) return 0;
    auto t = parse_time(*text);
    if (!t) fail(key, "expected an RFC 3339 time");
    return t.value_or(0);
  }

  // A nested object parsed by `parse`; nullopt when absent.
  template <typename T>
  std::optional<T> nested(const std::string& key, Result<T> (*parse)(const json&)) {
    auto v = get<json>(key);
    if (!v) return std::nullopt;
    auto parsed = parse(*v);
    if (!parsed) {
      if (!m_error) m_error = parsed.error();
      return std::nullopt;
    }
    return std::move(*parsed);
  }

  void fail(const std::string& key, const std::string& why) {
    if (m_error) return;
    std::string field = key.empty() ? m_prefix : (m_prefix.empty() ? key : m_prefix + "." + key);
    std::string message = field.empty() ? why : "field '" + field + "' " + why;
    m_error = field_error(field, message);
  }

  bool failed() const { return m_error.has_value(); }

  // The first problem, after checking for unknown fields when strict.
  std::optional<Error> finish() {
    if (m_strict && !m_error && m_doc.is_object()) {
      for (const auto& [key, value] : m_doc.items()) {
        if (m_known.count(key)) continue;
        std::string field = m_prefix.empty() ? key : m_prefix + "." + key;
        std::string message = "unknown field '" + field + "'";
        if (auto close = closest_match(key, std::vector<std::string>(m_known.begin(), m_known.end()))) {
          message += " (did you mean '" + *close + "'?)";
        }
        m_error = field_error(field, message);
        break;
      }
    }
    return m_error;
  }

 private:
  const json& m_doc;
  std::string m_prefix;
  bool m_strict;
  std::set<std::string> m_known;
  std::optional<Error> m_error;
};

// Responses that do not parse mean a server (or proxy) we do not understand.
Error bad_response(const Error& e) {
  return make_error(ErrorCode::error, "the server sent an unexpected response: " + e.message);
}

json or_null(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }
json time_or_null(Millis t) { return t ? json(format_time(t)) : json(nullptr); }

Result<Budget> budget_from_json(const json& doc) {
  Reader r(doc, "budget", false);
  Budget b;
  b.usd = r.get<double>("usd");
  b.wall_seconds = r.get<std::int64_t>("wallSeconds");
  b.tokens = r.get<std::int64_t>("tokens");
  if (auto e = r.finish()) return *e;
  return b;
}

template <typename Enum>
Enum parse_enum_or(Reader& r, const std::string& key, Result<Enum> (*parse)(std::string_view), Enum fallback) {
  auto text = r.get<std::string>(key);
  if (!text) return fallback;
  auto parsed = parse(*text);
  if (!parsed) {
    r.fail(key, parsed.error().message);
    return fallback;
  }
  return *parsed;
}

Result<Health> parse_health(std::string_view name) {
  for (Health h : {Health::healthy, Health::degraded, Health::down}) {
    if (name == health_name(h)) return h;
  }
  return make_error(ErrorCode::usage, "unknown health '" + std::string(name) + "'");
}

}  // namespace

// ---- results ---------------------------------------------------------------

Result<Job> job_from_json(const json& doc) {
  Reader r(doc, "job", false);
  Job j;
  j.id = r.str("id", true);
  j.product = r.str("productId");
  j.title = r.str("title");
  j.stage = parse_enum_or<Stage>(r, "stage", parse_stage, Stage::queued);
  j.priority = parse_enum_or<Priority>(r, "priority", parse_priority, Priority::normal);
  j.capabilities = r.strings("capabilities");
  j.deps = r.strings("deps");
  j.lease_epoch = r.i64("leaseEpoch");
  j.rev = r.i64("rev");
  j.created_at = r.time("createdAt");
  j.updated_at = r.time("updatedAt");
  j.profile = r.str("profile");
  j.profile_version = r.i64("profileVersion");
  if (auto b = r.nested<Budget>("budget", budget_from_json)) j.budget = *b;
  j.attempts = r.i64("attempts");
  j.max_attempts = r.i64("maxAttempts");
  j.idempotency_key = r.str("idempotencyKey");
  j.review = r.flag("review");
  j.engine = r.str("engine");
  j.last_factory = r.str("lastFactory");
  j.checkpoint = r.str("checkpoint");
  j.reason = r.str("reason");
  j.event_seq = r.i64("eventSeq");
  j.spent_usd = r.num("spentUsd");
  j.spent_tokens = r.i64("spentTokens");
  if (auto repo = r.get<json>("repo")) {
    Reader rr(*repo, "repo", false);
    j.repo.url = rr.str("url");
    j.repo.base = rr.str("base");
    if (auto e = rr.finish()) return bad_response(*e);
  }
  if (auto e = r.finish()) return bad_response(*e);
  return j;
}

Result<Lease> lease_from_json(const json& doc) {
  Reader r(doc, "lease", false);
  Lease l;
  l.holder = r.str("holder", true);
  l.epoch = r.i64("epoch", true);
  l.acquired_at = r.time("acquiredAt");
  l.renewed_at = r.time("renewedAt");
  l.expires_at = r.time("expiresAt");
  if (auto e = r.finish()) return bad_response(*e);
  return l;
}

Result<Run> run_from_json(const json& doc) {
  Reader r(doc, "run", false);
  Run run;
  run.epoch = r.i64("epoch", true);
  run.factory = r.str("factory");
  run.claimed_at = r.time("claimedAt");
  run.started_at = r.time("startedAt");
  run.ended_at = r.time("endedAt");
  run.result = r.str("result");
  run.reason = r.str("reason");
  run.cost_usd = r.num("costUsd");
  run.tokens = r.i64("tokens");
  run.summary = r.str("summary");
  run.checkpoint = r.str("checkpoint");
  if (auto routing = r.get<json>("routing")) {
    Reader rr(*routing, "routing", false);
    Routing& g = run.routing;
    g.present = true;
    g.capability_fit = rr.num("capabilityFit");
    g.affinity = rr.num("affinity");
    g.load = rr.num("load");
    g.cost_fit = rr.num("costFit");
    g.health = rr.num("health");
    g.starvation_penalty = rr.num("starvationPenalty");
    g.total = rr.num("total");
    g.effective_priority = rr.i64("effectivePriority");
    g.rank = rr.i64("rank");
    g.candidates = rr.i64("candidates");
    if (auto e = rr.finish()) return bad_response(*e);
  }
  if (auto e = r.finish()) return bad_response(*e);
  return run;
}

Result<Profile> profile_from_json(const json& doc) {
  Reader r(doc, "profile", false);
  Profile p;
  p.name = r.str("name", true);
  p.version = r.i64("version");
  p.description = r.str("description");
  p.capabilities = r.strings("capabilities");
  p.engine = r.str("engine");
  p.review = r.flag("review");
  if (auto b = r.nested<Budget>("budget", budget_from_json)) p.budget = *b;
  p.persona = r.str("persona");
  p.text = r.str("text");
  if (auto e = r.finish()) return bad_response(*e);
  return p;
}

json detail_to_json(const JobDetail& detail) {
  json doc = job_to_json(detail.job);
  doc["body"] = detail.body;
  if (detail.profile) {
    doc["profileSnapshot"] = profile_to_json(*detail.profile);
    doc["profileSnapshot"]["text"] = detail.profile->text;
  } else {
    doc["profileSnapshot"] = nullptr;
  }
  doc["lease"] = detail.lease ? lease_to_json(*detail.lease) : json(nullptr);
  json runs = json::array();
  for (const auto& run : detail.runs) runs.push_back(run_to_json(run));
  doc["runs"] = std::move(runs);
  return doc;
}

Result<JobDetail> detail_from_json(const json& doc) {
  JobDetail d;
  auto job = job_from_json(doc);
  if (!job) return job.error();
  d.job = std::move(*job);
  Reader r(doc, "", false);
  d.body = r.str("body");
  d.profile = r.nested<Profile>("profileSnapshot", profile_from_json);
  d.lease = r.nested<Lease>("lease", lease_from_json);
  if (auto e = r.finish()) return bad_response(*e);
  auto runs = list_from_json<Run>(doc, "runs", run_from_json);
  if (!runs) return runs.error();
  d.runs = std::move(*runs);
  return d;
}

json submitted_to_json(const Submitted& submitted) {
  json doc = job_to_json(submitted.job);
  doc["duplicate"] = submitted.duplicate;
  return doc;
}

Result<Submitted> submitted_from_json(const json& doc) {
  auto job = job_from_json(doc);
  if (!job) return job.error();
  Reader r(doc, "", false);
  bool duplicate = r.flag("duplicate");
  if (auto e = r.finish()) return bad_response(*e);
  return Submitted{std::move(*job), duplicate};
}

json claimed_to_json(const Claimed& claimed) {
  return {{"id", claimed.job.id},
          {"epoch", claimed.lease.epoch},
          {"factory", claimed.lease.holder},
          {"expiresAt", format_time(claimed.lease.expires_at)},
          {"lease", lease_to_json(claimed.lease)},
          {"job", job_to_json(claimed.job)}};
}

Result<Claimed> claimed_from_json(const json& doc) {
  Reader r(doc, "", false);
  auto job = r.nested<Job>("job", job_from_json);
  auto lease = r.nested<Lease>("lease", lease_from_json);
  if (!r.failed() && (!job || !lease)) r.fail("job", "and 'lease' are required");
  if (auto e = r.finish()) return bad_response(*e);
  return Claimed{std::move(*job), std::move(*lease)};
}

json event_to_json(const Event& e) {
  return {{"seq", e.seq},   {"at", format_time(e.at)}, {"type", e.type},       {"from", e.from},
          {"to", e.to},     {"actor", e.actor},        {"factory", e.factory}, {"epoch", e.epoch},
          {"detail", e.detail}};
}

json run_output_to_json(const RunOutput& o) {
  return {{"job", o.job}, {"epoch", o.epoch}, {"start", o.start}, {"end", o.end},
          {"from", o.from}, {"text", o.text}, {"live", o.live}};
}

Result<RunOutput> run_output_from_json(const json& doc) {
  Reader r(doc, "output", false);
  RunOutput o;
  o.job = r.str("job", true);
  o.epoch = r.i64("epoch", true);
  o.start = r.i64("start", true);
  o.end = r.i64("end", true);
  o.from = r.i64("from", true);
  o.text = r.str("text", true);
  o.live = r.get<bool>("live").value_or(false);
  if (auto err = r.finish()) return bad_response(*err);
  return o;
}

Result<Event> event_from_json(const json& doc) {
  Reader r(doc, "event", false);
  Event e;
  e.seq = r.i64("seq", true);
  e.at = r.time("at");
  e.type = r.str("type");
  e.from = r.str("from");
  e.to = r.str("to");
  e.actor = r.str("actor");
  e.factory = r.str("factory");
  e.epoch = r.i64("epoch");
  e.detail = r.str("detail");
  if (auto err = r.finish()) return bad_response(*err);
  return e;
}

json audit_entry_to_json(const AuditEntry& e) {
  json trailers = json::object();
  for (const auto& [key, value] : e.trailers) trailers[key] = value;
  return {{"commit", e.commit},
          {"time", format_time(e.time)},
          {"op", e.op},
          {"job", or_null(e.job)},
          {"productId", or_null(e.product)},
          {"actor", e.actor},
          {"summary", e.summary},
          {"trailers", std::move(trailers)}};
}

Result<AuditEntry> audit_entry_from_json(const json& doc) {
  Reader r(doc, "entry", false);
  AuditEntry e;
  e.commit = r.str("commit", true);
  e.time = r.time("time");
  e.op = r.str("op");
  e.job = r.str("job");
  e.product = r.str("productId");
  e.actor = r.str("actor");
  e.summary = r.str("summary");
  if (auto trailers = r.get<json>("trailers"); trailers && trailers->is_object()) {
    for (const auto& [key, value] : trailers->items()) {
      if (value.is_string()) e.trailers.emplace_back(key, value.get<std::string>());
    }
  }
  if (auto err = r.finish()) return bad_response(*err);
  return e;
}

json reaped_to_json(const Reaped& reaped) {
  return {{"id", reaped.job.id},       {"stage", stage_name(reaped.job.stage)},
          {"factory", reaped.factory}, {"epoch", reaped.epoch},
          {"leaseEpoch", reaped.job.lease_epoch}, {"job", job_to_json(reaped.job)}};
}

Result<Reaped> reaped_from_json(const json& doc) {
  Reader r(doc, "reaped", false);
  Reaped out;
  auto job = r.nested<Job>("job", job_from_json);
  if (!job) r.fail("job", "is required");
  out.factory = r.str("factory");
  out.epoch = r.i64("epoch");
  if (auto err = r.finish()) return bad_response(*err);
  out.job = std::move(*job);
  return out;
}

json factory_status_to_json(const FactoryStatus& s) {
  json jobs = json::array();
  for (const auto& j : s.jobs) {
    jobs.push_back({{"id", j.id}, {"priority", priority_name(j.priority)}, {"claimedAt", time_or_null(j.claimed_at)}});
  }
  return {{"id", s.record.id},
          {"productId", s.record.product},
          {"capabilities", s.record.capabilities},
          {"seats", s.record.seats},
          {"seatsUsed", s.jobs.size()},
          {"engine", or_null(s.record.engine)},
          {"usdPerHour", s.record.usd_per_hour},
          {"load", s.load},
          {"health", health_name(s.health)},
          {"lastHeartbeatAt", time_or_null(s.last_heartbeat_at)},
          {"registeredAt", format_time(s.record.registered_at)},
          {"updatedAt", time_or_null(s.record.updated_at)},
          {"jobs", std::move(jobs)}};
}

Result<FactoryStatus> factory_status_from_json(const json& doc) {
  Reader r(doc, "factory", false);
  FactoryStatus s;
  s.record.id = r.str("id", true);
  s.record.product = r.str("productId");
  s.record.capabilities = r.strings("capabilities");
  s.record.seats = r.i64("seats");
  s.record.engine = r.str("engine");
  s.record.usd_per_hour = r.num("usdPerHour");
  s.load = r.num("load");
  s.health = parse_enum_or<Health>(r, "health", parse_health, Health::down);
  s.last_heartbeat_at = r.time("lastHeartbeatAt");
  s.record.registered_at = r.time("registeredAt");
  s.record.updated_at = r.time("updatedAt");
  if (auto jobs = r.get<json>("jobs"); jobs && jobs->is_array()) {
    for (const auto& j : *jobs) {
      Reader jr(j, "jobs", false);
      RunningJob running;
      running.id = jr.str("id", true);
      running.priority = parse_enum_or<Priority>(jr, "priority", parse_priority, Priority::normal);
      running.claimed_at = jr.time("claimedAt");
      running.factory = s.record.id;
      if (auto err = jr.finish()) return bad_response(*err);
      s.jobs.push_back(std::move(running));
    }
  }
  if (auto err = r.finish()) return bad_response(*err);
  return s;
}

json explain_row_to_json(const ExplainRow& row) {
  const Score& s = row.score;
  const FactoryView& f = row.factory;
  return {{"factory", f.id},
          {"eligible", s.eligible},
          {"whyNot", s.eligible ? json(nullptr) : json(s.why_not)},
          {"rank", row.rank ? json(row.rank) : json(nullptr)},
          {"terms",
           {{"capabilityFit", s.capability_fit},
            {"affinity", s.affinity},
            {"load", s.load},
            {"costFit", s.cost_fit},
            {"health", s.health},
            {"starvationPenalty", s.starvation_penalty}}},
          {"effectivePriority", priority_name(static_cast<Priority>(s.effective_priority))},
          {"total", s.total},
          {"view",
           {{"capabilities", f.capabilities},
            {"seats", f.seats},
            {"seatsUsed", f.seats_used},
            {"engine", f.engine},
            {"usdPerHour", f.usd_per_hour},
            {"load", f.load},
            {"health", health_name(f.health)}}}};
}

Result<ExplainRow> explain_row_from_json(const json& doc) {
  Reader r(doc, "candidate", false);
  ExplainRow row;
  row.factory.id = r.str("factory", true);
  Score& s = row.score;
  s.eligible = r.flag("eligible");
  s.why_not = r.str("whyNot");
  row.rank = static_cast<int>(r.i64("rank"));
  if (auto terms = r.get<json>("terms")) {
    Reader t(*terms, "terms", false);
    s.capability_fit = t.num("capabilityFit");
    s.affinity = t.num("affinity");
    s.load = t.num("load");
    s.cost_fit = t.num("costFit");
    s.health = t.num("health");
    s.starvation_penalty = t.num("starvationPenalty");
    if (auto err = t.finish()) return bad_response(*err);
  }
  s.effective_priority =
      static_cast<int>(parse_enum_or<Priority>(r, "effectivePriority", parse_priority, Priority::normal));
  s.total = r.num("total");
  if (auto view = r.get<json>("view")) {
    Reader v(*view, "view", false);
    FactoryView& f = row.factory;
    f.capabilities = v.strings("capabilities");
    f.seats = v.i64("seats");
    f.seats_used = v.i64("seatsUsed");
    f.engine = v.str("engine");
    f.usd_per_hour = v.num("usdPerHour");
    f.load = v.num("load");
    f.health = parse_enum_or<Health>(v, "health", parse_health, Health::down);
    if (auto err = v.finish()) return bad_response(*err);
  }
  if (auto err = r.finish()) return bad_response(*err);
  return row;
}

json settings_to_json(const RouterSettings& settings) {
  json doc = json::object();
  for (const auto& [key, value] : settings_entries(settings)) doc[key] = value;
  return doc;
}

Result<RouterSettings> settings_from_json(const json& doc) {
  if (!doc.is_object()) return bad_response(make_error(ErrorCode::usage, "expected an object of settings"));
  RouterSettings settings;
  for (const auto& [key, value] : doc.items()) {
    if (!value.is_string()) continue;
    if (auto ok = apply_setting(settings, key + "=" + value.get<std::string>()); !ok) return bad_response(ok.error());
  }
  return settings;
}

Result<FleetMetrics> metrics_from_json(const json& doc) {
  Reader r(doc, "metrics", false);
  FleetMetrics m;
  m.product = r.str("productId", true);
  m.generated_at = r.time("generatedAt");
  if (auto jobs = r.get<json>("jobs")) {
    if (!jobs->is_object()) r.fail("jobs", "expected an object of counts per stage");
    Reader jr(*jobs, "jobs", false);
    for (Stage stage : k_all_stages) m.jobs[static_cast<std::size_t>(stage)] = jr.i64(stage_name(stage));
    if (auto e = jr.finish()) return bad_response(*e);
  }
  if (auto factories = r.get<json>("factories")) {
    Reader fr(*factories, "factories", false);
    m.factories = fr.i64("total");
    m.healthy = fr.i64("healthy");
    m.degraded = fr.i64("degraded");
    m.down = fr.i64("down");
    m.seats = fr.i64("seats");
    m.seats_used = fr.i64("seatsUsed");
    m.live_seats = fr.i64("liveSeats");
    m.live_seats_used = fr.i64("liveSeatsUsed");
    m.utilization = fr.num("utilization");
    if (auto e = fr.finish()) return bad_response(*e);
  }
  if (auto starvation = r.get<json>("starvation")) {
    Reader sr(*starvation, "starvation", false);
    m.starvation_window = sr.i64("windowSeconds");
    m.starving = sr.i64("count");
    if (auto alerts = sr.get<json>("alerts")) {
      if (!alerts->is_array()) sr.fail("alerts", "expected an array");
      for (const auto& item : alerts->is_array() ? *alerts : json::array()) {
        Reader ar(item, "starvation.alerts", false);
        StarvationAlert a;
        a.id = ar.str("id", true);
        a.title = ar.str("title");
        a.priority = parse_enum_or<Priority>(ar, "priority", parse_priority, Priority::normal);
        a.created_at = ar.time("createdAt");
        a.waiting_seconds = ar.i64("waitingSeconds");
        if (auto e = ar.finish()) return bad_response(*e);
        m.alerts.push_back(std::move(a));
      }
    }
    if (auto e = sr.finish()) return bad_response(*e);
  }
  m.oldest_queued_seconds = r.i64("oldestQueuedSeconds");
  m.spent_usd = r.num("spentUsd");
  m.spent_tokens = r.i64("spentTokens");
  if (auto e = r.finish()) return bad_response(*e);
  return m;
}

json issued_token_to_json(const IssuedToken& issued) {
  json doc = token_to_json(issued.record);
  doc["token"] = issued.token;
  return doc;
}

Result<TokenRecord> token_record_from_json(const json& doc) {
  Reader r(doc, "token", false);
  TokenRecord t;
  t.id = r.str("id", true);
  auto role = parse_role(r.str("role"));
  if (!role) r.fail("role", "must be operator or factory");
  t.role = role.value_or(Role::factory);
  t.product = r.str("productId");
  t.factory = r.str("factory");
  t.name = r.str("name");
  t.created_at = r.time("createdAt");
  if (auto e = r.finish()) return bad_response(*e);
  return t;
}

Result<IssuedToken> issued_token_from_json(const json& doc) {
  auto record = token_record_from_json(doc);
  if (!record) return record.error();
  Reader r(doc, "", false);
  std::string token = r.str("token", true);
  if (auto e = r.finish()) return bad_response(*e);
  return IssuedToken{std::move(token), std::move(*record)};
}

template <typename T>
Result<std::vector<T>> list_from_json(const json& doc, const char* key, FromJson<T> parse) {
  if (!doc.is_object() || !doc.contains(key) || !doc[key].is_array()) {
    return bad_response(make_error(ErrorCode::usage, std::string("expected an array '") + key + "'"));
  }
  std::vector<T> out;
  for (const auto& item : doc[key]) {
    auto parsed = parse(item);
    if (!parsed) return parsed.error();
    out.push_back(std::move(*parsed));
  }
  return out;
}

template Result<std::vector<Job>> list_from_json(const json&, const char*, FromJson<Job>);
template Result<std::vector<Run>> list_from_json(const json&, const char*, FromJson<Run>);
template Result<std::vector<Event>> list_from_json(const json&, const char*, FromJson<Event>);
template Result<std::vector<AuditEntry>> list_from_json(const json&, const char*, FromJson<AuditEntry>);
template Result<std::vector<Reaped>> list_from_json(const json&, const char*, FromJson<Reaped>);
template Result<std::vector<FactoryStatus>> list_from_json(const json&, const char*, FromJson<FactoryStatus>);
template Result<std::vector<ExplainRow>> list_from_json(const json&, const char*, FromJson<ExplainRow>);

json error_to_json(const Error& error) {
  json inner = {{"code", error_code_name(error.code)}, {"message", error.message}};
  if (!error.field.empty()) inner["field"] = error.field;
  return {{"error", std::move(inner)}};
}

std::optional<Error> error_from_json(const json& doc) {
  if (!doc.is_object() || !doc.contains("error") || !doc["error"].is_object()) return std::nullopt;
  const json& e = doc["error"];
  Error out;
  std::string code = e.value("code", "error");
  out.code = ErrorCode::error;
  for (int c = 1; c <= 7; ++c) {
    if (code == error_code_name(static_cast<ErrorCode>(c))) out.code = static_cast<ErrorCode>(c);
  }
  out.message = e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : code;
  if (e.contains("field") && e["field"].is_string()) out.field = e["field"].get<std::string>();
  return out;
}

// ---- requests --------------------------------------------------------------

json submit_request_to_json(const SubmitRequestBody& body) {
  json doc = {{"manifest", body.manifest}};
  if (body.priority) doc["priority"] = priority_name(*body.priority);
  if (body.deps) doc["deps"] = *body.deps;
  if (body.idempotency_key) doc["idempotencyKey"] = *body.idempotency_key;
  if (body.profile) doc["profile"] = *body.profile;
  return doc;
}

Result<SubmitRequestBody> submit_request_from_json(const json& doc) {
  Reader r(doc, "", true);
  SubmitRequestBody body;
  body.manifest = r.str("manifest", true);
  if (auto p = r.get<std::string>("priority")) {
    auto parsed = parse_priority(*p);
    if (!parsed) r.fail("priority", parsed.error().message);
    else body.priority = *parsed;
  }
  body.deps = r.get<std::vector<std::string>>("deps");
  body.idempotency_key = r.get<std::string>("idempotencyKey");
  body.profile = r.get<std::string>("profile");
  if (auto e = r.finish()) return *e;
  return body;
}

Result<SubmitInput> submit_input(const SubmitRequestBody& body, const std::string& product) {
  auto manifest = parse_manifest(body.manifest, "manifest");
  if (!manifest) {
    Error e = manifest.error();
    e.field = "manifest";
    return e;
  }
  auto bad = [](const char* field, const Error& e) { return field_error(field, e.message); };
  if (body.priority) manifest->priority = *body.priority;
  if (body.deps) {
    for (const auto& dep : *body.deps) {
      if (auto ok = validate_job_id(dep); !ok) return bad("deps", ok.error());
    }
    manifest->deps = *body.deps;
  }
  if (body.idempotency_key) {
    if (body.idempotency_key->empty() || body.idempotency_key->size() > 256) {
      return field_error("idempotencyKey", "idempotency key must be 1 to 256 characters");
    }
    manifest->idempotency_key = *body.idempotency_key;
  }
  if (body.profile) {
    if (auto ok = validate_name("profile", *body.profile); !ok) return bad("profile", ok.error());
    manifest->profile = *body.profile;
  }
  return SubmitInput{std::move(*manifest), product, body.manifest};
}

json claim_request_to_json(const ClaimInput& input) {
  json doc = {{"factory", input.factory}, {"ttl", input.ttl_seconds}, {"wait", input.wait_seconds}};
  if (input.capabilities) doc["capabilities"] = *input.capabilities;
  return doc;
}

Result<ClaimInput> claim_request_from_json(const json& doc) {
  Reader r(doc, "", true);
  ClaimInput input;
  input.factory = r.str("factory");
  input.capabilities = r.get<std::vector<std::string>>("capabilities");
  input.ttl_seconds = r.get<std::int64_t>("ttl").value_or(k_default_ttl_seconds);
  input.wait_seconds = r.get<std::int64_t>("wait").value_or(0);
  if (auto e = r.finish()) return *e;
  if (!input.factory.empty()) {
    if (auto ok = validate_name("factory", input.factory); !ok) return field_error("factory", ok.error().message);
  }
  if (input.capabilities) {
    for (const auto& cap : *input.capabilities) {
      if (auto ok = validate_name("capability", cap); !ok) {
        return field_error("capabilities", ok.error().message);
      }
    }
  }
  if (input.ttl_seconds < 1 || input.ttl_seconds > k_max_ttl_seconds) {
    return field_error("ttl", "ttl must be between 1 and " + std::to_string(k_max_ttl_seconds) + " seconds");
  }
  if (input.wait_seconds < 0 || input.wait_seconds > 3600) {
    return field_error("wait", "wait must be between 0 and 3600 seconds");
  }
  return input;
}

json worker_request_to_json(const WorkerRequest& request) {
  json doc = {{"factory", request.factory}, {"epoch", request.epoch}};
  switch (request.kind) {
    case WorkerRequest::Kind::renew: doc["ttl"] = request.ttl_seconds; break;
    case WorkerRequest::Kind::release: break;
    case WorkerRequest::Kind::output:
      doc["offset"] = request.offset;
      doc["text"] = request.text;
      break;
    case WorkerRequest::Kind::start: doc["stage"] = "building"; break;
    case WorkerRequest::Kind::checkpoint: doc["checkpoint"] = request.ref; break;
    case WorkerRequest::Kind::report:
      doc["result"] = request.report.pass ? "pass" : "fail";
      if (request.report.cost_usd) doc["costUsd"] = *request.report.cost_usd;
      if (request.report.tokens) doc["tokens"] = *request.report.tokens;
      if (!request.report.summary.empty()) doc["summary"] = request.report.summary;
      if (!request.report.reason.empty()) doc["reason"] = request.report.reason;
      break;
  }
  return doc;
}

Result<WorkerRequest> worker_request_from_json(const json& doc, std::optional<WorkerRequest::Kind> kind) {
  using Kind = WorkerRequest::Kind;
  Reader r(doc, "", true);
  WorkerRequest req;
  req.factory = r.str("factory");
  req.epoch = r.i64("epoch", true);
  if (kind) {
    req.kind = *kind;
    if (*kind == Kind::renew) req.ttl_seconds = r.get<std::int64_t>("ttl").value_or(k_default_ttl_seconds);
    if (*kind == Kind::output) {
      req.offset = r.i64("offset", true);
      req.text = r.str("text", true);
      if (req.offset < 0) r.fail("offset", "must not be negative");
    }
  } else {
    auto stage = r.get<std::string>("stage");
    auto ref = r.get<std::string>("checkpoint");
    auto result = r.get<std::string>("result");
    int given = (stage ? 1 : 0) + (ref ? 1 : 0) + (result ? 1 : 0);
    if (given != 1) {
      r.fail("", "the body must set exactly one of 'stage' (\"building\"), 'checkpoint' or 'result'");
    }
    if (stage) {
      req.kind = Kind::start;
      if (*stage != "building") r.fail("stage", "can only be set to \"building\" (the other stages follow from report and the operator actions)");
    } else if (ref) {
      req.kind = Kind::checkpoint;
      req.ref = *ref;
      if (auto ok = validate_ref(*ref); !ok) r.fail("checkpoint", ok.error().message);
    } else if (result) {
      req.kind = Kind::report;
      if (*result != "pass" && *result != "fail") r.fail("result", "must be \"pass\" or \"fail\"");
      req.report.pass = *result == "pass";
      req.report.cost_usd = r.get<double>("costUsd");
      req.report.tokens = r.get<std::int64_t>("tokens");
      req.report.summary = r.str("summary");
      req.report.reason = r.str("reason");
      if (req.report.cost_usd && *req.report.cost_usd < 0) r.fail("costUsd", "must not be negative");
      if (req.report.tokens && *req.report.tokens < 0) r.fail("tokens", "must not be negative");
    }
  }
  if (auto e = r.finish()) return *e;
  if (!req.factory.empty()) {
    if (auto ok = validate_name("factory", req.factory); !ok) return field_error("factory", ok.error().message);
  }
  if (req.epoch < 1) return field_error("epoch", "epoch must be a positive integer");
  if (req.kind == Kind::renew && (req.ttl_seconds < 1 || req.ttl_seconds > k_max_ttl_seconds)) {
    return field_error("ttl", "ttl must be between 1 and " + std::to_string(k_max_ttl_seconds) + " seconds");
  }
  return req;
}

json heartbeat_request_to_json(const HeartbeatInput& input) {
  json doc = {{"factory", input.factory}};
  if (input.capabilities) doc["capabilities"] = *input.capabilities;
  if (input.seats) doc["seats"] = *input.seats;
  if (input.engine) doc["engine"] = *input.engine;
  if (input.usd_per_hour) doc["usdPerHour"] = *input.usd_per_hour;
  if (input.load) doc["load"] = *input.load;
  return doc;
}

Result<HeartbeatInput> heartbeat_request_from_json(const json& doc) {
  Reader r(doc, "", true);
  HeartbeatInput input;
  input.factory = r.str("factory");
  input.capabilities = r.get<std::vector<std::string>>("capabilities");
  input.seats = r.get<std::int64_t>("seats");
  input.engine = r.get<std::string>("engine");
  input.usd_per_hour = r.get<double>("usdPerHour");
  input.load = r.get<double>("load");
  if (auto e = r.finish()) return *e;
  return input;  // the fleet validates names and ranges, as for the CLI
}

json enroll_request_to_json(const EnrollInput& input) {
  json doc = {{"factory", input.factory}};
  if (input.capabilities) doc["capabilities"] = *input.capabilities;
  if (input.seats) doc["seats"] = *input.seats;
  return doc;
}

Result<EnrollInput> enroll_request_from_json(const json& doc) {
  Reader r(doc, "", true);
  EnrollInput input;
  input.factory = r.str("factory", true);
  input.capabilities = r.get<std::vector<std::string>>("capabilities");
  input.seats = r.get<std::int64_t>("seats");
  if (auto e = r.finish()) return *e;
  if (auto ok = validate_name("factory", input.factory); !ok) return field_error("factory", ok.error().message);
  return input;
}

json settings_request_to_json(const std::vector<std::string>& assignments) { return {{"set", assignments}}; }

Result<std::vector<std::string>> settings_request_from_json(const json& doc) {
  Reader r(doc, "", true);
  auto set = r.get<std::vector<std::string>>("set", true);
  if (auto e = r.finish()) return *e;
  if (set->empty()) return field_error("set", "give at least one key=value assignment");
  return *set;
}

}  // namespace gigafab::core
