// gigafab events ID [--after SEQ] [--follow]: the job's append-only event log.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/wire.hpp"

namespace gigafab::cli {

namespace {

void print_event(const core::Event& e, bool json) {
  if (json) {
    std::printf("%s\n", core::event_to_json(e).dump().c_str());
    return;
  }
  std::string stages = e.from.empty() ? e.to : (e.from == e.to ? e.to : e.from + " -> " + e.to);
  std::printf("%4lld  %s  %-10s  %-22s  %s%s%s\n", static_cast<long long>(e.seq), core::format_time(e.at).c_str(),
              e.type.c_str(), stages.c_str(), e.factory.empty() ? "" : (e.factory + "@" + std::to_string(e.epoch) + "  ").c_str(),
              e.detail.c_str(), "");
}

}  // namespace

Runner define_events(CLI::App& app, Context&) {
  struct Options {
    std::string id;
    std::int64_t after = 0;
    bool follow = false;
  };
  auto opts = std::make_shared<Options>();
  app.add_option("id", opts->id, "job id")->required();
  app.add_option("--after", opts->after, "only events with a higher sequence number");
  app.add_flag("--follow", opts->follow,
               "keep printing new events until the job ships or is dead-lettered (with --json: one event per line)");
  return [opts](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    std::int64_t after = opts->after;
    if (!opts->follow) {
      auto events = (*fleet)->events(opts->id, ctx.globals.product, after);
      if (!events) return events.error();
      if (ctx.globals.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& e : *events) list.push_back(core::event_to_json(e));
        print_json({{"events", std::move(list)}});
      } else {
        for (const auto& e : *events) print_event(e, false);
      }
      return {};
    }
    for (;;) {
      auto events = (*fleet)->events(opts->id, ctx.globals.product, after);
      if (!events) return events.error();
      for (const auto& e : *events) {
        print_event(e, ctx.globals.json);
        after = e.seq;
        if (e.to == "shipped" || e.to == "dead_letter") {
          std::fflush(stdout);
          return {};
        }
      }
      std::fflush(stdout);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  };
}

}  // namespace gigafab::cli
