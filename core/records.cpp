#include "core/records.hpp"

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/toml_schema.hpp"

namespace gigafab::core {

namespace {

Error corrupt(std::string_view origin, const std::string& why) {
  return make_error(ErrorCode::error, "corrupt document " + std::string(origin) + ": " + why);
}

std::string render(const toml::table& t) {
  std::ostringstream out;
  out << t << '\n';
  return out.str();
}

std::string time_or_empty(Millis t) { return t ? format_time(t) : std::string{}; }

Millis time_of(const toml::table& t, const char* key) {
  auto text = t[key].value_or(std::string{});
  if (text.empty()) return 0;
  return parse_time(text).value_or(0);
}

}  // namespace

std::string lease_to_toml(const Lease& lease) {
  toml::table t;
  t.insert("holder", lease.holder);
  t.insert("epoch", lease.epoch);
  t.insert("acquired_at", format_time(lease.acquired_at));
  t.insert("renewed_at", format_time(lease.renewed_at));
  t.insert("expires_at", format_time(lease.expires_at));
  return render(t);
}

Result<Lease> lease_from_toml(std::string_view text, std::string_view origin) {
  auto parsed = parse_toml(std::string(text), origin);
  if (!parsed) return corrupt(origin, parsed.error().message);
  const toml::table& t = *parsed;
  Lease lease;
  lease.holder = t["holder"].value_or(std::string{});
  lease.epoch = t["epoch"].value_or(std::int64_t{0});
  lease.acquired_at = time_of(t, "acquired_at");
  lease.renewed_at = time_of(t, "renewed_at");
  lease.expires_at = time_of(t, "expires_at");
  if (lease.holder.empty() || lease.expires_at == 0) return corrupt(origin, "missing holder or expires_at");
  return lease;
}

std::string run_to_toml(const Run& run) {
  toml::table t;
  t.insert("epoch", run.epoch);
  t.insert("factory", run.factory);
  t.insert("claimed_at", time_or_empty(run.claimed_at));
  t.insert("started_at", time_or_empty(run.started_at));
  t.insert("ended_at", time_or_empty(run.ended_at));
  t.insert("result", run.result);
  t.insert("reason", run.reason);
  t.insert("cost_usd", run.cost_usd);
  t.insert("tokens", run.tokens);
  t.insert("summary", run.summary);
  t.insert("checkpoint", run.checkpoint);
  if (run.routing.present) {
    const Routing& r = run.routing;
    t.insert("routing", toml::table{{"capability_fit", r.capability_fit}, {"affinity", r.affinity},
                                    {"load", r.load}, {"cost_fit", r.cost_fit}, {"health", r.health},
                                    {"starvation_penalty", r.starvation_penalty}, {"total", r.total},
                                    {"effective_priority", r.effective_priority}, {"rank", r.rank},
                                    {"candidates", r.candidates}});
  }
  return render(t);
}

Result<Run> run_from_toml(std::string_view text, std::string_view origin) {
  auto parsed = parse_toml(std::string(text), origin);
  if (!parsed) return corrupt(origin, parsed.error().message);
  const toml::table& t = *parsed;
  Run run;
  run.epoch = t["epoch"].value_or(std::int64_t{0});
  run.factory = t["factory"].value_or(std::string{});
  run.claimed_at = time_of(t, "claimed_at");
  run.started_at = time_of(t, "started_at");
  run.ended_at = time_of(t, "ended_at");
  run.result = t["result"].value_or(std::string{});
  run.reason = t["reason"].value_or(std::string{});
  run.cost_usd = t["cost_usd"].value_or(0.0);
  run.tokens = t["tokens"].value_or(std::int64_t{0});
  run.summary = t["summary"].value_or(std::string{});
  run.checkpoint = t["checkpoint"].value_or(std::string{});
  if (const toml::table* r = t["routing"].as_table()) {
    Routing& o = run.routing;
    o.present = true;
    o.capability_fit = (*r)["capability_fit"].value_or(0.0);
    o.affinity = (*r)["affinity"].value_or(0.0);
    o.load = (*r)["load"].value_or(0.0);
    o.cost_fit = (*r)["cost_fit"].value_or(0.0);
    o.health = (*r)["health"].value_or(0.0);
    o.starvation_penalty = (*r)["starvation_penalty"].value_or(0.0);
    o.total = (*r)["total"].value_or(0.0);
    o.effective_priority = (*r)["effective_priority"].value_or(std::int64_t{0});
    o.rank = (*r)["rank"].value_or(std::int64_t{0});
    o.candidates = (*r)["candidates"].value_or(std::int64_t{0});
  }
  return run;
}

std::string event_to_json_text(const Event& e) {
  nlohmann::json doc = {{"seq", e.seq},     {"at", format_time(e.at)}, {"type", e.type},
                        {"from", e.from},   {"to", e.to},              {"actor", e.actor},
                        {"factory", e.factory}, {"epoch", e.epoch},    {"detail", e.detail}};
  return doc.dump() + "\n";
}

Result<Event> event_from_json_text(std::string_view text, std::string_view origin) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return corrupt(origin, "not a JSON object");
  Event e;
  e.seq = doc.value("seq", std::int64_t{0});
  e.at = parse_time(doc.value("at", std::string{})).value_or(0);
  e.type = doc.value("type", std::string{});
  e.from = doc.value("from", std::string{});
  e.to = doc.value("to", std::string{});
  e.actor = doc.value("actor", std::string{});
  e.factory = doc.value("factory", std::string{});
  e.epoch = doc.value("epoch", std::int64_t{0});
  e.detail = doc.value("detail", std::string{});
  return e;
}

}  // namespace gigafab::core
