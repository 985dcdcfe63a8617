// gigafab factory heartbeat|list|enroll|rotate|revoke: register factories,
// report liveness, see the fleet's health, seats and current jobs, and manage
// each factory's API token (printed once by enroll and rotate).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/token_output.hpp"
#include "core/wire.hpp"

namespace gigafab::cli {

Runner define_factory(CLI::App& app, Context&) {
  app.require_subcommand(1);
  CLI::App* beat = app.add_subcommand("heartbeat", "register or refresh a factory");
  CLI::App* list = app.add_subcommand("list", "every factory of the product: health, seats, jobs");
  CLI::App* enroll = app.add_subcommand("enroll", "register a factory if needed and issue its API token (printed once)");
  CLI::App* rotate = app.add_subcommand("rotate", "replace a factory's token: the old one stops working at once");
  CLI::App* revoke = app.add_subcommand("revoke", "remove a factory's token: it stops working at once");
  for (CLI::App* sub : {beat, list, enroll, rotate, revoke}) sub->fallthrough();
  struct Options {
    core::HeartbeatInput input;
    std::vector<std::string> caps;
    std::int64_t seats = 0;
    std::string engine;
    double usd_per_hour = 0;
    double load = 0;
  };
  auto opts = std::make_shared<Options>();
  beat->add_option("--factory", opts->input.factory, "factory id")->required()->envname("GIGAFAB_FACTORY");
  CLI::Option* caps = beat->add_option("--caps", opts->caps, "capabilities it offers (comma-separated)")->delimiter(',');
  CLI::Option* seats = beat->add_option("--seats", opts->seats, "how many jobs it runs at once (default 1)");
  CLI::Option* load = beat->add_option("--load", opts->load, "current load, e.g. the 1-minute load average (default: as last reported)");
  CLI::Option* engine = beat->add_option("--engine", opts->engine, "the engine it runs (claude, codex, devin, shell)");
  CLI::Option* cost = beat->add_option("--usd-per-hour", opts->usd_per_hour, "what an hour of it costs (for costFit)");
  auto token = std::make_shared<core::EnrollInput>();
  auto enroll_caps = std::make_shared<std::vector<std::string>>();
  auto enroll_seats = std::make_shared<std::int64_t>(0);
  for (CLI::App* sub : {enroll, rotate, revoke}) sub->add_option("factory", token->factory, "factory id")->required();
  CLI::Option* enroll_caps_opt =
      enroll->add_option("--caps", *enroll_caps, "capabilities it offers (comma-separated)")->delimiter(',');
  CLI::Option* enroll_seats_opt = enroll->add_option("--seats", *enroll_seats, "how many jobs it runs at once (default 1)");
  return [=](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    if (enroll->parsed() || rotate->parsed() || revoke->parsed()) {
      bool json = ctx.globals.json;
      if (revoke->parsed()) {
        auto revoked = (*fleet)->revoke_token(token->factory, ctx.globals.product);
        if (!revoked) return revoked.error();
        print_revoked_token(*revoked, json);
        return {};
      }
      core::EnrollInput in = *token;
      in.product = ctx.globals.product;
      if (enroll_caps_opt->count()) in.capabilities = *enroll_caps;
      if (enroll_seats_opt->count()) in.seats = *enroll_seats;
      auto issued = enroll->parsed() ? (*fleet)->enroll(in) : (*fleet)->rotate_token(in.factory, in.product);
      if (!issued) return issued.error();
      print_issued_token(*issued, json);
      return {};
    }
    if (beat->parsed()) {
      core::HeartbeatInput in = opts->input;
      in.product = ctx.globals.product;
      if (caps->count()) in.capabilities = opts->caps;
      if (seats->count()) in.seats = opts->seats;
      if (engine->count()) in.engine = opts->engine;
      if (cost->count()) in.usd_per_hour = opts->usd_per_hour;
      if (load->count()) in.load = opts->load;
      auto status = (*fleet)->heartbeat(in);
      if (!status) return status.error();
      if (ctx.globals.json) {
        print_json(core::factory_status_to_json(*status));
      } else {
        std::printf("%s %s %zu/%lld\n", status->record.id.c_str(), core::health_name(status->health),
                    status->jobs.size(), static_cast<long long>(status->record.seats));
      }
      return {};
    }
    auto all = (*fleet)->factories(ctx.globals.product);
    if (!all) return all.error();
    if (ctx.globals.json) {
      nlohmann::json list_json = nlohmann::json::array();
      for (const auto& s : *all) list_json.push_back(core::factory_status_to_json(s));
      print_json({{"factories", std::move(list_json)}});
      return {};
    }
    if (all->empty()) return {};
    std::vector<std::vector<std::string>> rows = {{"FACTORY", "HEALTH", "SEATS", "LOAD", "ENGINE", "CAPABILITIES", "LAST HEARTBEAT", "JOBS"}};
    for (const auto& s : *all) {
      std::string caps_text, jobs;
      for (const auto& c : s.record.capabilities) caps_text += (caps_text.empty() ? "" : ",") + c;
      for (const auto& j : s.jobs) jobs += (jobs.empty() ? "" : " ") + j.id;
      char load_text[32];
      std::snprintf(load_text, sizeof load_text, "%g", s.load);
      rows.push_back({s.record.id, core::health_name(s.health),
                      std::to_string(s.jobs.size()) + "/" + std::to_string(s.record.seats), load_text,
                      s.record.engine.empty() ? "-" : s.record.engine, caps_text.empty() ? "-" : caps_text,
                      s.last_heartbeat_at ? core::format_time(s.last_heartbeat_at) : "never", jobs.empty() ? "-" : jobs});
    }
    print_table(rows);
    return {};
  };
}

}  // namespace gigafab::cli
