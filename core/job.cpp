#include "core/job.hpp"

#include <sstream>
#include "core/toml_schema.hpp"

namespace gigafab::core {

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::queued: return "queued";
    case Stage::blocked: return "blocked";
    case Stage::assigned: return "assigned";
    case Stage::building: return "building";
    case Stage::review: return "review";
    case Stage::testing: return "testing";
    case Stage::shipped: return "shipped";
    case Stage::failed: return "failed";
    case Stage::dead_letter: return "dead_letter";
  }
  return "?";
}

Result<Stage> parse_stage(std::string_view name) {
  std::string names;
  for (Stage s : k_all_stages) {
    if (name == stage_name(s)) return s;
    names += names.empty() ? "" : ", ";
    names += stage_name(s);
  }
  return make_error(ErrorCode::usage, "unknown stage '" + std::string(name) + "' (one of: " + names + ")");
}

const char* priority_name(Priority priority) {
  switch (priority) {
    case Priority::low: return "low";
    case Priority::normal: return "normal";
    case Priority::high: return "high";
    case Priority::critical: return "critical";
  }
  return "?";
}

Result<Priority> parse_priority(std::string_view name) {
  for (Priority p : {Priority::low, Priority::normal, Priority::high, Priority::critical}) {
    if (name == priority_name(p)) return p;
  }
  return make_error(ErrorCode::usage,
                    "unknown priority '" + std::string(name) + "' (one of: low, normal, high, critical)");
}

Budget Budget::overlaid_with(const Budget& over) const {
  Budget out = *this;
  if (over.usd) out.usd = over.usd;
  if (over.wall_seconds) out.wall_seconds = over.wall_seconds;
  if (over.tokens) out.tokens = over.tokens;
  return out;
}

namespace {

toml::array to_array(const std::vector<std::string>& items) {
  toml::array out;
  for (const auto& item : items) out.push_back(item);
  return out;
}

}  // namespace

std::string job_to_toml(const Job& job) {
  toml::table t;
  t.insert("id", job.id);
  t.insert("product", job.product);
  t.insert("title", job.title);
  t.insert("stage", stage_name(job.stage));
  t.insert("priority", priority_name(job.priority));
  t.insert("capabilities", to_array(job.capabilities));
  t.insert("deps", to_array(job.deps));
  t.insert("profile", job.profile);
  t.insert("profile_version", job.profile_version);
  t.insert("idempotency_key", job.idempotency_key);
  t.insert("review", job.review);
  t.insert("lease_epoch", job.lease_epoch);
  t.insert("rev", job.rev);
  t.insert("attempts", job.attempts);
  t.insert("max_attempts", job.max_attempts);
  t.insert("engine", job.engine);
  t.insert("last_factory", job.last_factory);
  t.insert("checkpoint", job.checkpoint);
  t.insert("reason", job.reason);
  t.insert("event_seq", job.event_seq);
  t.insert("spent_usd", job.spent_usd);
  t.insert("spent_tokens", job.spent_tokens);
  t.insert("created_at", format_time(job.created_at));
  t.insert("updated_at", format_time(job.updated_at));
  toml::table budget;
  if (job.budget.usd) budget.insert("usd", *job.budget.usd);
  if (job.budget.wall_seconds) budget.insert("wall", format_duration(*job.budget.wall_seconds));
  if (job.budget.tokens) budget.insert("tokens", *job.budget.tokens);
  t.insert("budget", std::move(budget));
  toml::table repo;
  repo.insert("url", job.repo.url);
  repo.insert("base", job.repo.base);
  t.insert("repo", std::move(repo));
  std::ostringstream out;
  out << t << '\n';
  return out.str();
}

Result<Job> job_from_toml(std::string_view text, std::string_view origin) {
  auto corrupt = [&](std::string why) {
    return make_error(ErrorCode::error, "corrupt job document " + std::string(origin) + ": " + why);
  };
  auto parsed = parse_toml(std::string(text), origin);
  if (!parsed) return corrupt(parsed.error().message);
  const toml::table& t = *parsed;
  Job job;
  auto str = [&](const char* key) { return t[key].value_or(std::string{}); };
  auto num = [&](const char* key) { return t[key].value_or(std::int64_t{0}); };
  job.id = str("id");
  job.product = str("product");
  job.title = str("title");
  auto stage = parse_stage(str("stage"));
  if (!stage) return corrupt(stage.error().message);
  job.stage = *stage;
  auto priority = parse_priority(str("priority"));
  if (!priority) return corrupt(priority.error().message);
  job.priority = *priority;
  for (const char* key : {"capabilities", "deps"}) {
    auto& list = std::string_view(key) == "deps" ? job.deps : job.capabilities;
    if (const toml::array* arr = t[key].as_array()) {
      for (const auto& item : *arr) list.push_back(item.value_or(std::string{}));
    }
  }
  job.profile = str("profile");
  job.profile_version = num("profile_version");
  job.idempotency_key = str("idempotency_key");
  job.review = t["review"].value_or(false);
  job.lease_epoch = num("lease_epoch");
  job.rev = num("rev");
  job.attempts = num("attempts");
  job.max_attempts = num("max_attempts");
  job.engine = str("engine");
  job.last_factory = str("last_factory");
  job.checkpoint = str("checkpoint");
  job.reason = str("reason");
  job.event_seq = num("event_seq");
  job.spent_usd = t["spent_usd"].value_or(0.0);
  job.spent_tokens = num("spent_tokens");
  auto created = parse_time(str("created_at"));
  auto updated = parse_time(str("updated_at"));
  if (!created || !updated) return corrupt("bad created_at/updated_at");
  job.created_at = *created;
  job.updated_at = *updated;
  if (auto usd = t["budget"]["usd"].value<double>()) job.budget.usd = *usd;
  if (auto wall = t["budget"]["wall"].value<std::string>()) {
    auto seconds = parse_duration(*wall);
    if (!seconds) return corrupt(seconds.error().message);
    job.budget.wall_seconds = *seconds;
  }
  if (auto tokens = t["budget"]["tokens"].value<std::int64_t>()) job.budget.tokens = *tokens;
  job.repo.url = t["repo"]["url"].value_or(std::string{});
  job.repo.base = t["repo"]["base"].value_or(std::string{});
  if (job.id.empty()) return corrupt("missing id");
  return job;
}

}  // namespace gigafab::core
