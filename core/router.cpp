#include "core/router.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/suggest.hpp"
#include "core/toml_schema.hpp"

namespace gigafab::core {

namespace {

struct WeightField {
  const char* name;
  double Weights::*member;
};
constexpr WeightField k_weight_fields[] = {
    {"capability_fit", &Weights::capability_fit}, {"affinity", &Weights::affinity},
    {"load", &Weights::load},                     {"cost_fit", &Weights::cost_fit},
    {"health", &Weights::health},                 {"starvation", &Weights::starvation},
};

struct DurationField {
  const char* name;
  std::int64_t RouterSettings::*member;
};
constexpr DurationField k_duration_fields[] = {
    {"degraded_after", &RouterSettings::degraded_after}, {"down_after", &RouterSettings::down_after},
    {"aging_window", &RouterSettings::aging_window},     {"starvation_window", &RouterSettings::starvation_window},
    {"defer_window", &RouterSettings::defer_window},
};

std::string number_text(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

bool offers_all(const std::vector<std::string>& offered, const std::vector<std::string>& required,
                std::string* missing) {
  for (const auto& cap : required) {
    if (std::find(offered.begin(), offered.end(), cap) == offered.end()) {
      if (missing) *missing += (missing->empty() ? "" : ",") + cap;
    }
  }
  return !missing || missing->empty();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> settings_entries(const RouterSettings& s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : k_weight_fields) out.emplace_back(std::string("weights.") + f.name, number_text(s.weights.*f.member));
  for (const auto& f : k_duration_fields) out.emplace_back(f.name, format_duration(s.*f.member));
  out.emplace_back("preemption", s.preemption ? "true" : "false");
  return out;
}

std::string settings_to_toml(const RouterSettings& s) {
  toml::table t;
  toml::table weights;
  for (const auto& f : k_weight_fields) weights.insert(f.name, s.weights.*f.member);
  for (const auto& f : k_duration_fields) t.insert(f.name, format_duration(s.*f.member));
  t.insert("preemption", s.preemption);
  t.insert("weights", std::move(weights));
  std::ostringstream out;
  out << t << '\n';
  return out.str();
}

Result<RouterSettings> settings_from_toml(std::string_view text, std::string_view origin) {
  auto parsed = parse_toml(std::string(text), origin);
  if (!parsed) return parsed.error();
  RouterSettings s;
  // Documents are written by apply_setting; re-validate anyway (a hand edit).
  auto corrupt = [&](const std::string& why) {
    return make_error(ErrorCode::error, "invalid router settings " + std::string(origin) + ": " + why);
  };
  for (const auto& f : k_weight_fields) {
    if (auto v = (*parsed)["weights"][f.name].value<double>()) {
      if (!std::isfinite(*v) || *v < 0 || *v > 100) return corrupt(std::string("weights.") + f.name + " out of range");
      s.weights.*f.member = *v;
    }
  }
  for (const auto& f : k_duration_fields) {
    if (auto v = (*parsed)[f.name].value<std::string>()) {
      auto seconds = parse_duration(*v);
      if (!seconds) return corrupt(seconds.error().message);
      if (*seconds <= 0) return corrupt(std::string(f.name) + " must be longer than zero");
      s.*f.member = *seconds;
    }
  }
  s.preemption = (*parsed)["preemption"].value_or(false);
  return s;
}

Result<void> apply_setting(RouterSettings& s, std::string_view assignment) {
  std::size_t eq = assignment.find('=');
  if (eq == std::string_view::npos) {
    return make_error(ErrorCode::usage, "expected KEY=VALUE, not '" + std::string(assignment) + "'");
  }
  std::string key(assignment.substr(0, eq));
  std::string value(assignment.substr(eq + 1));
  std::string short_key = key.starts_with("weights.") ? key.substr(8) : key;
  for (const auto& f : k_weight_fields) {
    if (short_key != f.name) continue;
    char* end = nullptr;
    double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !std::isfinite(v) || v < 0 || v > 100) {
      return make_error(ErrorCode::usage, "weight '" + key + "' must be a number between 0 and 100, not '" + value + "'");
    }
    s.weights.*f.member = v;
    return {};
  }
  for (const auto& f : k_duration_fields) {
    if (key != f.name) continue;
    auto seconds = parse_duration(value);
    if (!seconds) return make_error(ErrorCode::usage, "'" + key + "': " + seconds.error().message);
    if (*seconds <= 0) return make_error(ErrorCode::usage, "'" + key + "' must be longer than zero");
    s.*f.member = *seconds;
    return {};
  }
  if (key == "preemption") {
    if (value != "true" && value != "false") {
      return make_error(ErrorCode::usage, "'preemption' must be true or false, not '" + value + "'");
    }
    s.preemption = value == "true";
    return {};
  }
  std::vector<std::string> known;
  for (const auto& [name, _] : settings_entries(s)) known.push_back(name);
  for (const auto& f : k_weight_fields) known.emplace_back(f.name);
  std::string msg = "unknown setting '" + key + "'";
  if (auto guess = closest_match(key, known)) msg += " (did you mean '" + *guess + "'?)";
  return make_error(ErrorCode::usage, msg);
}

const char* health_name(Health health) {
  switch (health) {
    case Health::healthy: return "healthy";
    case Health::degraded: return "degraded";
    case Health::down: return "down";
  }
  return "?";
}

Health health_from_age(Millis since_heartbeat, const RouterSettings& settings) {
  if (since_heartbeat >= settings.down_after * 1000) return Health::down;
  if (since_heartbeat >= settings.degraded_after * 1000) return Health::degraded;
  return Health::healthy;
}

int effective_priority(Priority priority, Millis age, const RouterSettings& settings) {
  std::int64_t levels = settings.aging_window > 0 ? std::max<Millis>(0, age) / (settings.aging_window * 1000) : 0;
  return static_cast<int>(std::min<std::int64_t>(3, static_cast<int>(priority) + levels));
}

double starvation_penalty(Millis age, const RouterSettings& settings) {
  if (settings.starvation_window <= 0) return 0;
  double waited = static_cast<double>(std::max<Millis>(0, age)) / (static_cast<double>(settings.starvation_window) * 1000);
  return std::max(0.0, 1.0 - waited);
}

namespace {

Score score_impl(const Candidate& job, const FactoryView& factory, const RouterSettings& settings, Millis now,
                 bool upper_bound) {
  Score s;
  std::string missing;
  if (!offers_all(factory.capabilities, job.capabilities, &missing)) {
    s.eligible = false;
    s.why_not = "missing capabilities [" + missing + "]";
  } else if (factory.health == Health::down) {
    s.eligible = false;
    s.why_not = "down (no heartbeat for " + format_duration(settings.down_after) + " or more)";
  } else if (factory.seats > 0 && factory.seats_used >= factory.seats) {
    s.eligible = false;
    s.why_not = "all seats in use (" + std::to_string(factory.seats_used) + "/" + std::to_string(factory.seats) + ")";
  }
  const Weights& w = settings.weights;
  s.capability_fit = static_cast<double>(1 + job.capabilities.size()) /
                     static_cast<double>(1 + std::max(factory.capabilities.size(), job.capabilities.size()));
  if (upper_bound) {
    s.affinity = (job.may_name_engine && !factory.engine.empty() ? 0.5 : 0.0) + (job.may_have_run ? 0.5 : 0.0);
    s.cost_fit = 1.0;
  } else {
    s.affinity = (!job.engine.empty() && job.engine == factory.engine ? 0.5 : 0.0) +
                 (!job.last_factory.empty() && job.last_factory == factory.id ? 0.5 : 0.0);
    s.cost_fit = 1.0;
    if (factory.usd_per_hour > 0 && job.budget_usd && job.wall_seconds) {
      double expected = factory.usd_per_hour * static_cast<double>(*job.wall_seconds) / 3600.0;
      if (expected > *job.budget_usd) s.cost_fit = *job.budget_usd / expected;
    }
  }
  s.load = 1.0 / (1.0 + std::max(0.0, factory.load));
  s.health = factory.health == Health::healthy ? 1.0 : factory.health == Health::degraded ? 0.5 : 0.0;
  Millis age = now - job.created_at;
  s.starvation_penalty = starvation_penalty(age, settings);
  s.effective_priority = effective_priority(job.priority, age, settings);
  s.total = w.capability_fit * s.capability_fit + w.affinity * s.affinity + w.load * s.load +
            w.cost_fit * s.cost_fit + w.health * s.health - w.starvation * s.starvation_penalty;
  return s;
}

}  // namespace

Score score(const Candidate& job, const FactoryView& factory, const RouterSettings& settings, Millis now) {
  return score_impl(job, factory, settings, now, false);
}

Score score_upper_bound(const Candidate& job_shape, const FactoryView& factory, const RouterSettings& settings,
                        Millis now) {
  return score_impl(job_shape, factory, settings, now, true);
}

bool ranks_before(const Candidate& a, const Score& sa, const Candidate& b, const Score& sb) {
  if (sa.effective_priority != sb.effective_priority) return sa.effective_priority > sb.effective_priority;
  if (std::abs(sa.total - sb.total) > 1e-9) return sa.total > sb.total;
  if (a.created_at != b.created_at) return a.created_at < b.created_at;
  return a.id < b.id;
}

std::optional<RunningJob> select_victim(const std::vector<RunningJob>& running, Priority incoming) {
  const RunningJob* best = nullptr;
  for (const auto& r : running) {
    if (r.priority >= incoming) continue;
    if (!best || r.priority < best->priority ||
        (r.priority == best->priority &&
         (r.claimed_at > best->claimed_at || (r.claimed_at == best->claimed_at && r.id > best->id)))) {
      best = &r;
    }
  }
  if (!best) return std::nullopt;
  return *best;
}

}  // namespace gigafab::core
