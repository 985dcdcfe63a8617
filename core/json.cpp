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

}  // namespace

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
