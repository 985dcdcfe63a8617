// gigafab profile list | show NAME: this machine's persona catalog (builtin
// profiles overlaid by GIGAFAB_PROFILES).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "core/ids.hpp"
#include "core/json.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

Runner define_profile(CLI::App& app, Context&) {
  app.require_subcommand(1);
  CLI::App* list = app.add_subcommand("list", "list the catalog");
  CLI::App* show = app.add_subcommand("show", "print one profile");
  list->fallthrough();
  show->fallthrough();
  auto name = std::make_shared<std::string>();
  show->add_option("name", *name, "profile name")->required();
  return [list, name](Context& ctx) -> Result<void> {
    auto catalog = gitstore::load_catalog(Context::profiles_dir());
    if (!catalog) return catalog.error();
    if (list->parsed()) {
      auto all = catalog->all();
      if (ctx.globals.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& p : all) {
          auto doc = core::profile_to_json(p);
          doc.erase("persona");
          doc["source"] = catalog->origin_of(p.name);
          out.push_back(std::move(doc));
        }
        print_json({{"profiles", std::move(out)}});
        return {};
      }
      std::vector<std::vector<std::string>> rows = {{"NAME", "VERSION", "ENGINE", "REVIEW", "CAPABILITIES", "DESCRIPTION"}};
      for (const auto& p : all) {
        std::string caps;
        for (const auto& c : p.capabilities) caps += (caps.empty() ? "" : ",") + c;
        rows.push_back({p.name, std::to_string(p.version), p.engine.empty() ? "-" : p.engine,
                        p.review ? "yes" : "no", caps.empty() ? "-" : caps, p.description});
      }
      print_table(rows);
      return {};
    }
    if (auto ok = core::validate_name("profile", *name); !ok) return ok.error();
    auto profile = catalog->find(*name);
    if (!profile) return profile.error();
    if (ctx.globals.json) {
      auto doc = core::profile_to_json(*profile);
      doc["source"] = catalog->origin_of(profile->name);
      print_json(doc);
    } else {
      std::fwrite(profile->text.data(), 1, profile->text.size(), stdout);
    }
    return {};
  };
}

}  // namespace gigafab::cli
