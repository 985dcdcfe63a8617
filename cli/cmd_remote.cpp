// gigafab remote add NAME URL | remove NAME | list: the git remote that
// coordinates this store's fleet across hosts (gitstore/remote.hpp).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

Runner define_remote(CLI::App& app, Context&) {
  app.require_subcommand(1);
  struct Options {
    std::string name, url;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* add = app.add_subcommand("add", "coordinate this store through a git remote (publishes or adopts its state)");
  add->add_option("name", opts->name, "remote name, e.g. origin")->required();
  add->add_option("url", opts->url, "a path, file://, git://, ssh:// or scp-style, or https:// URL")->required();
  CLI::App* remove = app.add_subcommand("remove", "stop using a remote (the local copy stays a store of its own)");
  remove->add_option("name", opts->name, "remote name")->required();
  CLI::App* list = app.add_subcommand("list", "the configured remotes; * marks the coordinating one");
  return [opts, add, remove, list](Context& ctx) -> Result<void> {
    ctx.fetch_on_open = false;  // fetches on its own
    auto fleet = ctx.local_fleet("remote");
    if (!fleet) return fleet.error();
    gitstore::Store& store = (*fleet)->store();
    if (add->parsed()) {
      if (auto ok = store.add_remote(opts->name, opts->url); !ok) return ok;
      if (ctx.globals.json) {
        print_json({{"name", opts->name}, {"url", store.remote_url()}, {"coordinating", true}});
      } else {
        std::printf("remote '%s' (%s) now coordinates this fleet\n", opts->name.c_str(), store.remote_url().c_str());
      }
      return {};
    }
    if (remove->parsed()) {
      if (auto ok = store.remove_remote(opts->name); !ok) return ok;
      if (ctx.globals.json) {
        print_json({{"name", opts->name}, {"removed", true}});
      } else {
        std::printf("removed remote '%s'\n", opts->name.c_str());
      }
      return {};
    }
    (void)list;
    auto remotes = store.remotes();
    if (!remotes) return remotes.error();
    if (ctx.globals.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& r : *remotes) out.push_back({{"name", r.name}, {"url", r.url}, {"coordinating", r.coordinating}});
      print_json({{"remotes", std::move(out)}});
      return {};
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : *remotes) rows.push_back({r.coordinating ? "*" : " ", r.name, r.url});
    print_table(rows);
    return {};
  };
}

}  // namespace gigafab::cli
