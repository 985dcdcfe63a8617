#include "core/factories.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "core/ids.hpp"
#include "core/layout.hpp"
#include "core/toml_schema.hpp"

namespace gigafab::core {

namespace {

std::string record_to_toml(const FactoryRecord& r) {
  toml::table t;
  t.insert("id", r.id);
  t.insert("product", r.product);
  toml::array caps;
  for (const auto& c : r.capabilities) caps.push_back(c);
  t.insert("capabilities", std::move(caps));
  t.insert("seats", r.seats);
  t.insert("engine", r.engine);
  t.insert("usd_per_hour", r.usd_per_hour);
  t.insert("registered_at", format_time(r.registered_at));
  t.insert("updated_at", format_time(r.updated_at));
  std::ostringstream out;
  out << t << '\n';
  return out.str();
}

Result<FactoryRecord> record_from_toml(std::string_view text, std::string_view origin) {
  auto parsed = parse_toml(std::string(text), origin);
  if (!parsed) return make_error(ErrorCode::error, "corrupt factory document " + std::string(origin));
  const toml::table& t = *parsed;
  FactoryRecord r;
  r.id = t["id"].value_or(std::string{});
  r.product = t["product"].value_or(std::string{});
  if (const toml::array* caps = t["capabilities"].as_array()) {
    for (const auto& c : *caps) r.capabilities.push_back(c.value_or(std::string{}));
  }
  r.seats = t["seats"].value_or(std::int64_t{1});
  r.engine = t["engine"].value_or(std::string{});
  r.usd_per_hour = t["usd_per_hour"].value_or(0.0);
  r.registered_at = parse_time(t["registered_at"].value_or(std::string{})).value_or(0);
  r.updated_at = parse_time(t["updated_at"].value_or(std::string{})).value_or(0);
  return r;
}

}  // namespace

Result<std::optional<FactoryRecord>> find_factory(const Snapshot& state, const std::string& id) {
  std::string path = layout::factory_doc(id);
  auto text = state.read(path);
  if (!text) return text.error();
  if (!*text) return std::optional<FactoryRecord>{};
  auto record = record_from_toml(**text, path);
  if (!record) return record.error();
  return std::optional<FactoryRecord>{std::move(*record)};
}

Result<Change> register_factory(const Snapshot& state, const HeartbeatInput& in, Millis now) {
  if (auto ok = validate_name("factory", in.factory); !ok) return ok.error();
  if (auto ok = validate_name("product", in.product); !ok) return ok.error();
  if (in.capabilities) {
    for (const auto& c : *in.capabilities) {
      if (auto ok = validate_name("capability", c); !ok) return ok.error();
    }
  }
  if (in.seats && (*in.seats < 1 || *in.seats > 10000)) {
    return make_error(ErrorCode::usage, "--seats must be between 1 and 10000");
  }
  if (in.engine && !in.engine->empty()) {
    if (auto ok = validate_name("engine", *in.engine); !ok) return ok.error();
  }
  if (in.usd_per_hour && (!std::isfinite(*in.usd_per_hour) || *in.usd_per_hour < 0)) {
    return make_error(ErrorCode::usage, "--usd-per-hour must be a finite number >= 0");
  }
  if (in.load && (!std::isfinite(*in.load) || *in.load < 0)) return make_error(ErrorCode::usage, "--load must be a finite number >= 0");

  auto existing = find_factory(state, in.factory);
  if (!existing) return existing.error();
  FactoryRecord r;
  if (*existing) {
    r = **existing;
    if (r.product != in.product) {
      return make_error(ErrorCode::conflict, "factory " + in.factory + " is registered to product " + r.product);
    }
  } else {
    r.id = in.factory;
    r.product = in.product;
    r.registered_at = now;
  }
  FactoryRecord before = r;
  if (in.capabilities) {
    std::set<std::string> caps(in.capabilities->begin(), in.capabilities->end());
    r.capabilities.assign(caps.begin(), caps.end());
  }
  if (in.seats) r.seats = *in.seats;
  if (in.engine) r.engine = *in.engine;
  if (in.usd_per_hour) r.usd_per_hour = *in.usd_per_hour;
  Change change;
  bool changed = !*existing || r.capabilities != before.capabilities || r.seats != before.seats ||
                 r.engine != before.engine || r.usd_per_hour != before.usd_per_hour;
  if (!changed) return change;
  r.updated_at = now;
  change.put(layout::factory_doc(r.id), record_to_toml(r));
  change.summary = std::string(*existing ? "update" : "register") + " factory " + r.id;
  change.trailers = {{"Gigafab-Op", "factory"}, {"Gigafab-Factory", r.id}, {"Gigafab-Product", r.product},
                     {"Gigafab-Actor", in.actor}};
  return change;
}

Result<Change> record_liveness(const Snapshot& liveness, const HeartbeatInput& in, Millis now) {
  Change change;
  double value = 0;
  if (in.load) {
    value = *in.load;
  } else {
    auto previous = load_liveness(liveness);
    if (!previous) return previous.error();
    if (auto it = previous->find(in.factory); it != previous->end()) value = it->second.load;
  }
  char load[32];
  std::snprintf(load, sizeof load, "%g", value);
  change.put(layout::factory_doc(in.factory),
             "last_heartbeat_at = \"" + format_time(now) + "\"\nload = " + load + "\n");
  change.summary = "heartbeat " + in.factory;
  return change;
}

Result<std::vector<FactoryRecord>> list_factories(const Snapshot& state, const std::string& product) {
  auto names = state.list("factories");
  if (!names) return names.error();
  std::vector<FactoryRecord> out;
  for (const auto& name : *names) {
    if (!name.ends_with(".toml")) continue;
    auto record = find_factory(state, name.substr(0, name.size() - 5));
    if (!record) return record.error();
    if (*record && (product.empty() || (*record)->product == product)) out.push_back(std::move(**record));
  }
  return out;
}

Result<std::map<std::string, Liveness>> load_liveness(const Snapshot& liveness) {
  std::map<std::string, Liveness> out;
  auto names = liveness.list("factories");
  if (!names) return names.error();
  for (const auto& name : *names) {
    auto text = liveness.read("factories/" + name);
    if (!text) return text.error();
    if (!*text) continue;
    auto parsed = parse_toml(**text, name);
    if (!parsed) continue;  // liveness is advisory: a bad document means "never seen"
    Liveness l;
    l.last_heartbeat_at = parse_time((*parsed)["last_heartbeat_at"].value_or(std::string{})).value_or(0);
    l.load = (*parsed)["load"].value_or(0.0);
    out[name.substr(0, name.size() - 5)] = l;
  }
  return out;
}

Result<std::int64_t> seats_used(const Snapshot& state, const std::string& factory) {
  auto held = state.list(layout::held_dir(factory));
  if (!held) return held.error();
  return static_cast<std::int64_t>(held->size());
}

Result<std::vector<RunningJob>> held_jobs(const Snapshot& state, const std::string& factory) {
  std::string dir = layout::held_dir(factory);
  auto names = state.list(dir);
  if (!names) return names.error();
  std::vector<RunningJob> out;
  for (const auto& id : *names) {
    auto text = state.read(dir + "/" + id);
    if (!text) return text.error();
    if (!*text) continue;
    auto parsed = parse_toml(**text, dir + "/" + id);
    if (!parsed) return make_error(ErrorCode::error, "corrupt held-lease entry " + dir + "/" + id);
    RunningJob r;
    r.id = id;
    r.factory = factory;
    auto priority = parse_priority((*parsed)["priority"].value_or(std::string{"normal"}));
    r.priority = priority ? *priority : Priority::normal;
    r.claimed_at = parse_time((*parsed)["claimed_at"].value_or(std::string{})).value_or(0);
    out.push_back(std::move(r));
  }
  return out;
}

Result<RouterSettings> load_settings(const Snapshot& state, const std::string& product) {
  std::string path = layout::router_settings(product);
  auto text = state.read(path);
  if (!text) return text.error();
  if (!*text) return RouterSettings{};
  return settings_from_toml(**text, path);
}

Result<FactoryView> factory_view(const Snapshot& state, const FactoryRecord& record,
                                 const std::map<std::string, Liveness>& liveness, const RouterSettings& settings,
                                 Millis now) {
  FactoryView v;
  v.id = record.id;
  v.capabilities = record.capabilities;
  v.seats = record.seats;
  v.engine = record.engine;
  v.usd_per_hour = record.usd_per_hour;
  auto used = seats_used(state, record.id);
  if (!used) return used.error();
  v.seats_used = *used;
  auto it = liveness.find(record.id);
  Millis last = it == liveness.end() ? 0 : it->second.last_heartbeat_at;
  v.load = it == liveness.end() ? 0 : it->second.load;
  v.health = last == 0 ? Health::down : health_from_age(now - last, settings);
  return v;
}

}  // namespace gigafab::core
