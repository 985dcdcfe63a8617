// gigafab claim --factory F [--caps a,b] [--ttl SECONDS] [--wait SECONDS]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/wire.hpp"
#include "core/json.hpp"

namespace gigafab::cli {

Runner define_claim(CLI::App& app, Context&) {
  auto input = std::make_shared<core::ClaimInput>();
  auto caps = std::make_shared<std::vector<std::string>>();
  app.add_option("--factory", input->factory, "the claiming factory")->required()->envname("GIGAFAB_FACTORY");
  CLI::Option* caps_option =
      app.add_option("--caps", *caps, "capabilities the factory offers, comma-separated (default: as registered)")
          ->delimiter(',');
  app.add_option("--ttl", input->ttl_seconds, "lease length in seconds (default 300)");
  app.add_option("--wait", input->wait_seconds, "wait up to this many seconds for a job (default 0)");
  return [input, caps, caps_option](Context& ctx) -> Result<void> {
    if (caps_option->count() > 0) input->capabilities = *caps;
    if (input->wait_seconds < 0) return core::make_error(core::ErrorCode::usage, "--wait must not be negative");
    input->product = ctx.globals.product;
    auto fleet = ctx.fleet();
    if (!fleet) return fleet.error();
    auto claimed = (*fleet)->claim(*input);
    if (!claimed) return claimed.error();
    if (ctx.globals.json) {
      print_json(core::claimed_to_json(*claimed));
    } else {
      std::printf("%s %lld\n", claimed->job.id.c_str(), static_cast<long long>(claimed->lease.epoch));
    }
    return {};
  };
}

}  // namespace gigafab::cli
