// How a command is defined. Every command lives in its own cmd_<name>.cpp,
// exposes one `define_<name>` function, and is listed once in commands.cpp;
// `gigafab --help` and the shell completions are generated from that table.
//
// To add a command: write cli/cmd_<name>.cpp with
//   Runner define_<name>(CLI::App& app, Context& ctx)
// which adds the command's options to `app` (its own subcommand) and returns
// the function that runs it; declare it below; add a row to k_commands in
// commands.cpp; add an end-to-end test under tests/e2e/.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/error.hpp"
#include "core/fleet.hpp"

namespace CLI {
class App;
}

namespace gigafab::gitstore {
class LocalFleet;
}

namespace gigafab::cli {

using core::Error;
using core::Result;

// Options every command accepts (DESIGN.md section 5).
struct Globals {
  std::optional<std::string> store;  // --store / GIGAFAB_STORE
  std::string product = "default";   // --product / GIGAFAB_PRODUCT
  std::string api;                   // --api / GIGAFAB_API
  std::string token;                 // --token / GIGAFAB_TOKEN
  std::string remote;                // --remote: the coordinating git remote (a URL for init)
  bool offline = false;              // --offline: read the local copy without fetching
  bool json = false;                 // --json: one JSON document on stdout
};

// What a command runs with: the global options and, on demand, the fleet.
class Context {
 public:
  Globals globals;
  // Whether opening a store with a remote fetches it first (commands that
  // fetch on their own, like sync, turn it off).
  bool fetch_on_open = true;

  // The fleet named by the globals: a RemoteFleet talking to `gigafab serve`
  // when --api / GIGAFAB_API is set (with --token / GIGAFAB_TOKEN; --store is
  // then ignored), else the local store found by --store / GIGAFAB_STORE /
  // walking up from the working directory. Opened once.
  Result<core::Fleet*> fleet();
  // The same fleet when it is a local store; a usage error naming `command`
  // otherwise (operations only the store's owner may run, like `token`).
  Result<gitstore::LocalFleet*> local_fleet(std::string_view command);
  // A usage error naming `command` when --api is set: for commands that work
  // on a store directly (init, gc, token, serve).
  Result<void> require_local(std::string_view command) const;
  // The identity recorded in audit trailers: GIGAFAB_ACTOR, else user@host.
  static std::string actor();
  // GIGAFAB_PROFILES: a directory of *.md profiles overlaying the builtin ones.
  static std::optional<std::string> profiles_dir();

  // True when the error being reported came from locating or opening the
  // store (it is printed without the command's name, like git's "not a git
  // repository").
  bool store_failed() const { return m_store_failed; }

 private:
  std::unique_ptr<core::Fleet> m_fleet;
  bool m_store_failed = false;
};

using Runner = std::function<Result<void>(Context&)>;

enum class Needs { nothing, store };

struct Command {
  const char* name;
  const char* summary;
  Needs needs;
  Runner (*define)(CLI::App& app, Context& ctx);
};

// The command table, in the order `gigafab --help` lists them.
std::span<const Command> commands();

// Builds the whole parser (globals + every command); shared by the entry point
// and the completion generator.
void define_app(CLI::App& app, Context& ctx, std::vector<std::pair<CLI::App*, Runner>>& runners);

Runner define_init(CLI::App& app, Context& ctx);
Runner define_submit(CLI::App& app, Context& ctx);
Runner define_list(CLI::App& app, Context& ctx);
Runner define_show(CLI::App& app, Context& ctx);
Runner define_log(CLI::App& app, Context& ctx);
Runner define_claim(CLI::App& app, Context& ctx);
Runner define_renew(CLI::App& app, Context& ctx);
Runner define_start(CLI::App& app, Context& ctx);
Runner define_checkpoint(CLI::App& app, Context& ctx);
Runner define_report(CLI::App& app, Context& ctx);
Runner define_release(CLI::App& app, Context& ctx);
Runner define_approve(CLI::App& app, Context& ctx);
Runner define_reject(CLI::App& app, Context& ctx);
Runner define_requeue(CLI::App& app, Context& ctx);
Runner define_ship(CLI::App& app, Context& ctx);
Runner define_reap(CLI::App& app, Context& ctx);
Runner define_events(CLI::App& app, Context& ctx);
Runner define_logs(CLI::App& app, Context& ctx);
Runner define_profile(CLI::App& app, Context& ctx);
Runner define_factory(CLI::App& app, Context& ctx);
Runner define_explain(CLI::App& app, Context& ctx);
Runner define_weights(CLI::App& app, Context& ctx);
Runner define_metrics(CLI::App& app, Context& ctx);
Runner define_bench(CLI::App& app, Context& ctx);
Runner define_gc(CLI::App& app, Context& ctx);
Runner define_token(CLI::App& app, Context& ctx);
Runner define_serve(CLI::App& app, Context& ctx);
Runner define_remote(CLI::App& app, Context& ctx);
Runner define_sync(CLI::App& app, Context& ctx);
Runner define_completion(CLI::App& app, Context& ctx);
Runner define_agent(CLI::App& app, Context& ctx);

// The top-level entry point: parse, run, print errors, return the exit code.
int run(int argc, char** argv);

}  // namespace gigafab::cli
