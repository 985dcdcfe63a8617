#include "core/json.hpp"

#include <nlohmann/json.hpp>

namespace gigafab::core {

namespace {

nlohmann::json budget_to_json(const Budget& budget) {
  nlohmann::json out = nlohmann::json::object();
  if (budget.usd) out["usd"] = *budget.usd;
  if (budget.wall_seconds) {
    out["wall"] = format_duration(*budget.wall_seconds);
    out["wallSeconds"] = *budget.wall_seconds;
  }
  if (budget.tokens) out["tokens"] = *budget.tokens;
  return out;
}

nlohmann::json or_null(const std::string& text) { return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text); }

// Appends JSON text the way nlohmann's dump(2, ' ', false, replace) writes
// it: members one per line, indented two spaces a level, in the order the
// caller gives (which must be nlohmann's: bytewise by key).
class TextWriter {
 public:
  explicit TextWriter(std::string& out) : m_out(out) {}

  void open_object() {
    m_out += '{';
    m_depth += 1;
    m_first = true;
  }
  void close_object() {
    m_depth -= 1;
    if (!m_first) newline();
    m_out += '}';
    m_first = false;
  }
  // A member's key; its value follows.
  void key(std::string_view name) {
    if (!m_first) m_out += ',';
    newline();
    m_first = false;
    m_out += '"';
    m_out += name;  // our own keys: nothing to escape
    m_out += "\": ";
  }
  void string(const std::string& text) {
    bool plain = true;
    for (unsigned char c : text) plain = plain && c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    if (plain) {
      m_out += '"';
      m_out += text;
      m_out += '"';
    } else {
      m_out += nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  void string_or_null(const std::string& text) {
    if (text.empty()) {
      m_out += "null";
    } else {
      string(text);
    }
  }
  void integer(std::int64_t value) { m_out += std::to_string(value); }
  void number(double value) { m_out += nlohmann::json(value).dump(); }
  void boolean(bool value) { m_out += value ? "true" : "false"; }
  void strings(const std::vector<std::string>& items) {
    if (items.empty()) {
      m_out += "[]";
      return;
    }
    m_out += '[';
    m_depth += 1;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i) m_out += ',';
      newline();
      string(items[i]);
    }
    m_depth -= 1;
    newline();
    m_out += ']';
  }

 private:
  void newline() {
    m_out += '\n';
    m_out.append(static_cast<std::size_t>(2 * m_depth), ' ');
  }

  std::string& m_out;
  int m_depth = 0;
  bool m_first = true;
};

}  // namespace

std::string job_json_text(const Job& job) {
  std::string out;
  out.reserve(1024);
  TextWriter w(out);
  w.open_object();
  w.key("attempts");
  w.integer(job.attempts);
  w.key("budget");
  w.open_object();
  if (job.budget.tokens) {
    w.key("tokens");
    w.integer(*job.budget.tokens);
  }
  if (job.budget.usd) {
    w.key("usd");
    w.number(*job.budget.usd);
  }
  if (job.budget.wall_seconds) {
    w.key("wall");
    w.string(format_duration(*job.budget.wall_seconds));
    w.key("wallSeconds");
    w.integer(*job.budget.wall_seconds);
  }
  w.close_object();
  w.key("capabilities");
  w.strings(job.capabilities);
  w.key("checkpoint");
  w.string_or_null(job.checkpoint);
  w.key("createdAt");
  w.string(format_time(job.created_at));
  w.key("deps");
  w.strings(job.deps);
  w.key("engine");
  w.string_or_null(job.engine);
  w.key("eventSeq");
  w.integer(job.event_seq);
  w.key("id");
  w.string(job.id);
  w.key("idempotencyKey");
  w.string_or_null(job.idempotency_key);
  w.key("lastFactory");
  w.string_or_null(job.last_factory);
  w.key("leaseEpoch");
  w.integer(job.lease_epoch);
  w.key("maxAttempts");
  w.integer(job.max_attempts);
  w.key("priority");
  w.string(priority_name(job.priority));
  w.key("productId");
  w.string(job.product);
  w.key("profile");
  w.string_or_null(job.profile);
  w.key("profileVersion");
  if (job.profile.empty()) {
    w.string_or_null({});
  } else {
    w.integer(job.profile_version);
  }
  w.key("reason");
  w.string_or_null(job.reason);
  w.key("repo");
  w.open_object();
  w.key("base");
  w.string_or_null(job.repo.base);
  w.key("url");
  w.string_or_null(job.repo.url);
  w.close_object();
  w.key("rev");
  w.integer(job.rev);
  w.key("review");
  w.boolean(job.review);
  w.key("spentTokens");
  w.integer(job.spent_tokens);
  w.key("spentUsd");
  w.number(job.spent_usd);
  w.key("stage");
  w.string(stage_name(job.stage));
  w.key("title");
  w.string(job.title);
  w.key("updatedAt");
  w.string(format_time(job.updated_at));
  w.close_object();
  return out;
}

nlohmann::json job_to_json(const Job& job) {
  return {
      {"id", job.id},
      {"productId", job.product},
      {"title", job.title},
      {"stage", stage_name(job.stage)},
      {"priority", priority_name(job.priority)},
      {"capabilities", job.capabilities},
      {"deps", job.deps},
      {"leaseEpoch", job.lease_epoch},
      {"rev", job.rev},
      {"createdAt", format_time(job.created_at)},
      {"updatedAt", format_time(job.updated_at)},
      {"profile", or_null(job.profile)},
      {"profileVersion", job.profile.empty() ? nlohmann::json(nullptr) : nlohmann::json(job.profile_version)},
      {"budget", budget_to_json(job.budget)},
      {"attempts", job.attempts},
      {"maxAttempts", job.max_attempts},
      {"idempotencyKey", or_null(job.idempotency_key)},
      {"review", job.review},
      {"engine", or_null(job.engine)},
      {"lastFactory", or_null(job.last_factory)},
      {"checkpoint", or_null(job.checkpoint)},
      {"reason", or_null(job.reason)},
      {"eventSeq", job.event_seq},
      {"spentUsd", job.spent_usd},
      {"spentTokens", job.spent_tokens},
      {"repo", {{"url", or_null(job.repo.url)}, {"base", or_null(job.repo.base)}}},
  };
}

nlohmann::json profile_to_json(const Profile& profile) {
  return {
      {"name", profile.name},
      {"version", profile.version},
      {"description", profile.description},
      {"capabilities", profile.capabilities},
      {"engine", profile.engine},
      {"review", profile.review},
      {"budget", budget_to_json(profile.budget)},
      {"persona", profile.persona},
  };
}

nlohmann::json lease_to_json(const Lease& lease) {
  return {{"holder", lease.holder},
          {"epoch", lease.epoch},
          {"acquiredAt", format_time(lease.acquired_at)},
          {"renewedAt", format_time(lease.renewed_at)},
          {"expiresAt", format_time(lease.expires_at)}};
}

nlohmann::json run_to_json(const Run& run) {
  auto time_or_null = [](Millis t) { return t ? nlohmann::json(format_time(t)) : nlohmann::json(nullptr); };
  return {{"epoch", run.epoch},
          {"factory", run.factory},
          {"claimedAt", time_or_null(run.claimed_at)},
          {"startedAt", time_or_null(run.started_at)},
          {"endedAt", time_or_null(run.ended_at)},
          {"result", or_null(run.result)},
          {"reason", or_null(run.reason)},
          {"costUsd", run.cost_usd},
          {"tokens", run.tokens},
          {"summary", run.summary},
          {"checkpoint", or_null(run.checkpoint)},
          {"routing", run.routing.present ? nlohmann::json{{"capabilityFit", run.routing.capability_fit},
                                                           {"affinity", run.routing.affinity},
                                                           {"load", run.routing.load},
                                                           {"costFit", run.routing.cost_fit},
                                                           {"health", run.routing.health},
                                                           {"starvationPenalty", run.routing.starvation_penalty},
                                                           {"total", run.routing.total},
                                                           {"effectivePriority", run.routing.effective_priority},
                                                           {"rank", run.routing.rank},
                                                           {"candidates", run.routing.candidates}}
                                          : nlohmann::json(nullptr)}};
}

nlohmann::json token_to_json(const TokenRecord& record) {
  return {{"id", record.id},
          {"role", role_name(record.role)},
          {"productId", record.product},
          {"factory", or_null(record.factory)},
          {"name", or_null(record.name)},
          {"createdAt", format_time(record.created_at)}};
}

}  // namespace gigafab::core
