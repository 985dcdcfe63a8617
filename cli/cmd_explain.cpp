// gigafab explain ID [--factory F]: why a job would go (or went) where it did.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/wire.hpp"

namespace gigafab::cli {

namespace {

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

Runner define_explain(CLI::App& app, Context&) {
  struct Options {
    std::string id;
    std::string factory;
  };
  auto opts = std::make_shared<Options>();
  app.add_option("id", opts->id, "job id")->required();
  app.add_option("--factory", opts->factory, "only this factory's row");
  return [opts](Context& ctx) -> Result<void> {
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto rows = (*fleet)->explain(opts->id, ctx.globals.product);
    if (!rows) return rows.error();
    if (!opts->factory.empty()) {
      std::erase_if(*rows, [&](const core::ExplainRow& r) { return r.factory.id != opts->factory; });
      if (rows->empty()) {
        return core::make_error(core::ErrorCode::not_found, "factory " + opts->factory + " is not registered in product " +
                                                                ctx.globals.product);
      }
    }
    if (ctx.globals.json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& r : *rows) list.push_back(core::explain_row_to_json(r));
      print_json({{"id", opts->id}, {"candidates", std::move(list)}});
      return {};
    }
    if (rows->empty()) {
      std::printf("no factories registered in product %s (gigafab factory heartbeat registers one)\n",
                  ctx.globals.product.c_str());
      return {};
    }
    std::vector<std::vector<std::string>> table = {
        {"RANK", "FACTORY", "CAPFIT", "AFFINITY", "LOAD", "COSTFIT", "HEALTH", "STARVE", "TOTAL", "NOTE"}};
    for (const auto& r : *rows) {
      const core::Score& s = r.score;
      table.push_back({r.rank ? std::to_string(r.rank) : "-", r.factory.id, fixed(s.capability_fit), fixed(s.affinity),
                       fixed(s.load), fixed(s.cost_fit), fixed(s.health), fixed(-s.starvation_penalty), fixed(s.total),
                       s.eligible ? "" : "filtered: " + s.why_not});
    }
    print_table(table);
    return {};
  };
}

}  // namespace gigafab::cli
