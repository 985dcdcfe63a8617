// The entry point: builds the parser from the command table, runs the chosen
// command, and turns its Result into the fixed exit codes (DESIGN.md section 5).
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/remote_fleet.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

namespace {

// Starts `gigafab --store PATH gc --background` detached (its own session,
// reparented to init, no terminal), so the command that asked returns at once
// and a long-running serve collects no zombie.
void launch_background_gc(const std::string& store_path) {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return;
  self[n] = '\0';
  std::string store = store_path;
  char* argv[] = {self, const_cast<char*>("--store"), store.data(), const_cast<char*>("gc"),
                  const_cast<char*>("--background"), nullptr};
  pid_t child = ::fork();
  if (child < 0) return;
  if (child == 0) {
    // Only async-signal-safe calls from here on (the parent may have threads).
    ::setsid();
    if (::fork() == 0) {
      int null = ::open("/dev/null", O_RDWR);
      if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      ::execv(self, argv);
    }
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::string Context::actor() {
  if (const char* actor = std::getenv("GIGAFAB_ACTOR"); actor && *actor) return actor;
  std::string user;
  if (const char* env_user = std::getenv("USER"); env_user && *env_user) {
    user = env_user;
  } else if (const passwd* pw = getpwuid(getuid())) {
    user = pw->pw_name;
  } else {
    user = "uid" + std::to_string(getuid());
  }
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  return user + "@" + host;
}

std::optional<std::string> Context::profiles_dir() {
  if (const char* dir = std::getenv("GIGAFAB_PROFILES"); dir && *dir) return std::string(dir);
  return std::nullopt;
}

Result<core::Fleet*> Context::fleet() {
  if (m_fleet) return m_fleet.get();
  if (!globals.api.empty()) {
    auto remote = RemoteFleet::create(globals.api, globals.token, globals.product, actor());
    if (!remote) return remote.error();
    m_fleet = std::move(*remote);
    return m_fleet.get();
  }
  auto path = gitstore::Store::locate(globals.store);
  if (!path) {
    m_store_failed = true;
    return path.error();
  }
  auto store = gitstore::Store::open(*path);
  if (!store) {
    m_store_failed = true;
    return store.error();
  }
  if (!globals.remote.empty()) {
    if (auto ok = store->use_remote(globals.remote); !ok) return ok.error();
  }
  store->set_offline(globals.offline);
  if (!store->remote_name().empty() && fetch_on_open) {
    // A remote fleet: see its current state (writes fetch again anyway).
    if (globals.offline) {
      core::Millis fetched = store->last_fetch();
      std::string age = fetched ? core::format_duration(std::max<core::Millis>(0, core::now_millis() - fetched) / 1000) + " ago"
                                : "never";
      std::fprintf(stderr, "gigafab: offline: the state of remote '%s' as fetched %s\n", store->remote_name().c_str(),
                   age.c_str());
    } else if (auto ok = store->refresh(); !ok) {
      return ok.error();
    }
  }
  m_fleet = std::make_unique<gitstore::LocalFleet>(std::move(*store), actor(), profiles_dir());
  return m_fleet.get();
}

Result<void> Context::require_local(std::string_view command) const {
  if (globals.api.empty()) return {};
  return core::make_error(core::ErrorCode::usage,
                          "'" + std::string(command) + "' works only on a local store (not with --api)");
}

Result<gitstore::LocalFleet*> Context::local_fleet(std::string_view command) {
  if (auto ok = require_local(command); !ok) return ok.error();
  auto fleet = this->fleet();
  if (!fleet) return fleet.error();
  auto* local = dynamic_cast<gitstore::LocalFleet*>(*fleet);
  if (!local) return require_local(command).error();
  return local;
}

void define_app(CLI::App& app, Context& ctx, std::vector<std::pair<CLI::App*, Runner>>& runners) {
  app.description("gigafab: a fleet of coding-agent factories whose shared state is a git repository");
  app.name("gigafab");
  app.set_version_flag("--version", std::string("gigafab ") + GIGAFAB_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  Globals& g = ctx.globals;
  app.add_option("--store", g.store, "path of the store (default: nearest .gigafab)")->envname("GIGAFAB_STORE");
  app.add_option("--product", g.product, "product the command acts on")->envname("GIGAFAB_PRODUCT");
  app.add_option("--api", g.api, "URL of a gigafab server")->envname("GIGAFAB_API");
  app.add_option("--token", g.token, "bearer token for --api")->envname("GIGAFAB_TOKEN");
  app.add_option("--remote", g.remote, "git remote that coordinates the fleet (a URL for init)");
  app.add_flag("--offline", g.offline, "read the local copy of a remote fleet without fetching");
  app.add_flag("--json", g.json, "print one JSON document on stdout");
  for (const Command& command : commands()) {
    CLI::App* sub = app.add_subcommand(command.name, command.summary);
    sub->group(command.needs == Needs::store ? "Fleet commands (act on a store)" : "Other commands");
    sub->fallthrough();
    runners.emplace_back(sub, command.define(*sub, ctx));
  }
}

int run(int argc, char** argv) {
  CLI::App app;
  Context ctx;
  std::vector<std::pair<CLI::App*, Runner>> runners;
  gitstore::set_background_gc(launch_background_gc);
  try {
    define_app(app, ctx, runners);
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
      return app.exit(e);
    } catch (const CLI::ParseError& e) {
      std::string scope;
      for (const auto& [sub, _] : runners) {
        if (sub->parsed()) scope = sub->get_name();
      }
      print_error(scope, core::make_error(core::ErrorCode::usage, e.what()), ctx.globals.json);
      std::fprintf(stderr, "Run 'gigafab %s--help' for usage.\n", scope.empty() ? "" : (scope + " ").c_str());
      return static_cast<int>(core::ErrorCode::usage);
    }
    for (const auto& [sub, runner] : runners) {
      if (!sub->parsed()) continue;
      auto result = runner(ctx);
      if (result) return 0;
      print_error(ctx.store_failed() ? "" : sub->get_name(), result.error(), ctx.globals.json);
      return static_cast<int>(result.error().code);
    }
    return static_cast<int>(core::ErrorCode::usage);
  } catch (const std::exception& e) {
    print_error("", core::make_error(core::ErrorCode::error, std::string("internal error: ") + e.what()),
                ctx.globals.json);
    return static_cast<int>(core::ErrorCode::error);
  }
}

}  // namespace gigafab::cli
