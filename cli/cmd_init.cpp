// gigafab init [PATH] [--no-fsync]
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
  };
  auto opts = std::make_shared<Options>();
  app.add_option("path", opts->path, "where to create the store (default: ./.gigafab)");
  app.add_flag("--no-fsync", opts->no_fsync,
               "do not fsync before acknowledging writes (scratch stores only: a power cut may lose them)");
  return [opts](Context& ctx) -> Result<void> {
    if (auto ok = ctx.require_local("init"); !ok) return ok.error();
    std::string path = !opts->path.empty() ? opts->path : ctx.globals.store.value_or(".gigafab");
    auto store = gitstore::Store::init(path, gitstore::InitOptions{!opts->no_fsync}, Context::actor());
    if (!store) return store.error();
    if (ctx.globals.json) {
      print_json({{"store", store->path()}, {"fsync", store->fsync()}});
    } else {
      std::printf("Initialized gigafab store in %s\n", store->path().c_str());
    }
    return {};
  };
}

}  // namespace gigafab::cli
