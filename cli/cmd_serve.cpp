// gigafab serve [--listen HOST:PORT] [--max-body BYTES] [--keepalive SECONDS] [--threads N] [--no-group-commit]
//               [--no-pipeline]
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/command.hpp"
#include "gitstore/local_fleet.hpp"
#include "gitstore/store.hpp"
#include "server/api.hpp"
#include "server/http.hpp"

namespace gigafab::cli {

Runner define_serve(CLI::App& app, Context&) {
  struct Options {
    std::string listen = "127.0.0.1:7070";
    server::ServeOptions serve;
    bool no_group_commit = false;
    bool no_pipeline = false;
  };
  auto opts = std::make_shared<Options>();
  app.add_option("--listen", opts->listen, "address to listen on, HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--max-body", opts->serve.max_body, "largest request body in bytes (larger: 413)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  app.add_option("--keepalive", opts->serve.keepalive_seconds, "seconds between SSE keep-alive comments")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  app.add_option("--threads", opts->serve.threads, "concurrent connections served (each SSE stream holds one)")
      ->capture_default_str()
      ->check(CLI::Range(4, 1024));
  app.add_flag("--no-group-commit", opts->no_group_commit,
               "one commit per request (default: requests that arrive together share one commit and one fsync)");
  app.add_flag("--no-pipeline", opts->no_pipeline,
               "one group commit at a time (default: the next one is built while the last one syncs)");
  return [opts](Context& ctx) -> Result<void> {
    if (auto ok = server::parse_listen(opts->listen, opts->serve); !ok) return ok.error();
    // A long-running reader of a large store: libgit2's object cache would
    // grow to 256 MiB and it would keep every pack it read mapped.
    gitstore::set_memory_limits(32u << 20, 64u << 20);
    auto fleet = ctx.local_fleet("serve");
    if (!fleet) return fleet.error();
    (*fleet)->keep_list_rows(false);  // rows of a list: read from the cache file each time, not kept
    server::Api api(**fleet);
    api.set_group_commit(!opts->no_group_commit);
    api.set_pipeline(!opts->no_pipeline);
    auto served = server::serve(api, opts->serve, [&](const std::string& url) {
      // Scripts wait for this line (it carries the port when --listen used 0).
      std::printf("gigafab: serving %s/api/fleet (store %s)\n", url.c_str(), (*fleet)->store().path().c_str());
      std::fflush(stdout);
    });
    if (!served) return served.error();
    std::fprintf(stderr, "gigafab: serve: stopped\n");
    return {};
  };
}

}  // namespace gigafab::cli
