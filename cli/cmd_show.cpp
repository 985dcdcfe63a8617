// gigafab show ID
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/wire.hpp"
#include "core/json.hpp"

namespace gigafab::cli {

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "-" : out;
}

std::string budget_text(const core::Budget& b) {
  std::string out;
  if (b.usd) out += "$" + std::to_string(*b.usd).substr(0, std::to_string(*b.usd).find('.') + 3);
  if (b.wall_seconds) out += (out.empty() ? "" : ", ") + core::format_duration(*b.wall_seconds) + " wall";
  if (b.tokens) out += (out.empty() ? "" : ", ") + std::to_string(*b.tokens) + " tokens";
  return out.empty() ? "-" : out;
}

}  // namespace

Runner define_show(CLI::App& app, Context&) {
  auto id = std::make_shared<std::string>();
  app.add_option("id", *id, "job id")->required();
  return [id](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto detail = (*fleet)->show(*id, ctx.globals.product);
    if (!detail) return detail.error();
    const core::Job& job = detail->job;
    if (ctx.globals.json) {
      print_json(core::detail_to_json(*detail));
      return {};
    }
    std::vector<std::vector<std::string>> rows = {
        {"id:", job.id},
        {"title:", job.title},
        {"product:", job.product},
        {"stage:", core::stage_name(job.stage)},
        {"priority:", core::priority_name(job.priority)},
        {"capabilities:", join(job.capabilities)},
        {"deps:", join(job.deps)},
        {"profile:", job.profile.empty() ? "-" : job.profile + " v" + std::to_string(job.profile_version)},
        {"review:", job.review ? "required" : "no"},
        {"budget:", budget_text(job.budget)},
        {"repo:", job.repo.url.empty() ? "-" : job.repo.url + (job.repo.base.empty() ? "" : " @ " + job.repo.base)},
        {"lease epoch:", std::to_string(job.lease_epoch)},
        {"attempts:", std::to_string(job.attempts) + " of " + std::to_string(job.max_attempts)},
        {"checkpoint:", job.checkpoint.empty() ? "-" : job.checkpoint},
        {"idempotency:", job.idempotency_key.empty() ? "-" : job.idempotency_key},
        {"rev:", std::to_string(job.rev)},
        {"created:", core::format_time(job.created_at)},
        {"updated:", core::format_time(job.updated_at)},
    };
    if (!job.reason.empty()) rows.push_back({"reason:", job.reason});
    if (job.spent_usd > 0 || job.spent_tokens > 0) {
      rows.push_back({"spent:", budget_text(core::Budget{job.spent_usd, std::nullopt, job.spent_tokens})});
    }
    if (detail->lease) {
      rows.push_back({"lease:", detail->lease->holder + " until " + core::format_time(detail->lease->expires_at)});
    }
    print_table(rows);
    if (!detail->runs.empty()) {
      std::printf("\nruns:\n");
      std::vector<std::vector<std::string>> runs = {{"  EPOCH", "FACTORY", "CLAIMED", "RESULT", "COST", "TOKENS", "SUMMARY"}};
      for (const auto& run : detail->runs) {
        std::string result = run.result.empty() ? "running" : run.result;
        if (!run.reason.empty()) result += " (" + run.reason + ")";
        runs.push_back({"  " + std::to_string(run.epoch), run.factory, core::format_time(run.claimed_at), result,
                        budget_text(core::Budget{run.cost_usd, std::nullopt, std::nullopt}),
                        std::to_string(run.tokens), run.summary});
      }
      print_table(runs);
    }
    std::printf("\n%s", detail->body.c_str());
    if (!detail->body.empty() && detail->body.back() != '\n') std::printf("\n");
    return {};
  };
}

}  // namespace gigafab::cli
