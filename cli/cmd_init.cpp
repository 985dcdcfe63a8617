// gigafab init [PATH] [--no-fsync] [--remote URL [--remote-name NAME]]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "gitstore/store.hpp"

namespace gigafab::cli {

Runner define_init(CLI::App& app, Context&) {
  struct Options {
    std::string path;
    bool no_fsync = false;
    std::string remote_name = "origin";
  };
  auto opts = std::make_shared<Options>();
  app.add_option("path", opts->path, "where to create the store (default: ./.gigafab)");
  app.add_flag("--no-fsync", opts->no_fsync,
               "do not fsync before acknowledging writes (scratch stores only: a power cut may lose them)");
  app.add_option("--remote-name", opts->remote_name, "name of the remote given with --remote URL")
      ->capture_default_str();
  return [opts](Context& ctx) -> Result<void> {
    if (auto ok = ctx.require_local("init"); !ok) return ok.error();
    std::string path = !opts->path.empty() ? opts->path : ctx.globals.store.value_or(".gigafab");
    gitstore::InitOptions options{!opts->no_fsync};
    const std::string& url = ctx.globals.remote;  // with init, --remote is the remote's URL
    auto store = url.empty() ? gitstore::Store::init(path, options, Context::actor())
                             : gitstore::Store::init_from_remote(path, url, opts->remote_name, options, Context::actor());
    if (!store) return store.error();
    if (ctx.globals.json) {
      print_json({{"store", store->path()},
                  {"fsync", store->fsync()},
                  {"remote", store->remote_name().empty() ? nlohmann::json(nullptr) : nlohmann::json(store->remote_name())},
                  {"remoteUrl", store->remote_url().empty() ? nlohmann::json(nullptr) : nlohmann::json(store->remote_url())}});
    } else if (!url.empty()) {
      std::printf("Initialized gigafab store in %s, coordinated by remote '%s' (%s)\n", store->path().c_str(),
                  store->remote_name().c_str(), store->remote_url().c_str());
    } else {
      std::printf("Initialized gigafab store in %s\n", store->path().c_str());
    }
    return {};
  };
}

}  // namespace gigafab::cli
