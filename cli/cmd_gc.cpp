// gigafab gc: repack the store into one pack and drop what nothing references.
// Writers go on meanwhile (gitstore::Store::gc). --background is how a store
// runs it on its own: silent, one thread, gone at once if a gc is running.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "gitstore/store.hpp"

#include <cerrno>

namespace gigafab::cli {

namespace {

// The store's own gc yields the CPU and the disk to the writers that started
// it: lowest CPU priority, and the lowest best-effort I/O priority (not the
// idle class, which a busy disk could starve while the gc holds its lock).
// Returns the nice value now in effect.
int lower_priority() {
  ::setpriority(PRIO_PROCESS, 0, 19);
  constexpr int k_ioprio_class_be = 2;
  constexpr int k_ioprio_who_process = 1;
  ::syscall(SYS_ioprio_set, k_ioprio_who_process, 0, (k_ioprio_class_be << 13) | 7);
  errno = 0;
  int nice = ::getpriority(PRIO_PROCESS, 0);
  return errno == 0 ? nice : 0;
}

}  // namespace

Runner define_gc(CLI::App& app, Context&) {
  auto background = std::make_shared<bool>(false);
  app.add_flag("--background", *background,
               "run as the store's own automatic gc: on one thread, and exit at once if a gc is already running");
  return [background](Context& ctx) -> Result<void> {
    if (auto ok = ctx.require_local("gc"); !ok) return ok.error();
    gitstore::Store::GcOptions options;
    options.background = *background;
    if (*background) options.nice = lower_priority();
    auto path = gitstore::Store::locate(ctx.globals.store);
    if (!path) return path.error();
    auto store = gitstore::Store::open(*path);
    if (!store) return store.error();
    auto stats = store->gc(options);
    if (!stats) return stats.error();
    if (stats->skipped) {
      if (ctx.globals.json) print_json({{"skipped", true}});
      return {};
    }
    double per_transition = stats->transitions ? static_cast<double>(stats->pack_bytes) / static_cast<double>(stats->transitions) : 0;
    if (ctx.globals.json) {
      print_json({{"objects", stats->objects},
                  {"packBytes", stats->pack_bytes},
                  {"packsRemoved", stats->packs_removed},
                  {"looseRemoved", stats->loose_removed},
                  {"transitions", stats->transitions},
                  {"packer", stats->packer},
                  {"bytesPerTransition", per_transition}});
    } else {
      std::printf("packed %zu objects into %ju bytes (%zu transitions, %.0f bytes each) with %s; removed %zu packs and %zu loose objects\n",
                  stats->objects, stats->pack_bytes, stats->transitions, per_transition, stats->packer.c_str(),
                  stats->packs_removed, stats->loose_removed);
    }
    return {};
  };
}

}  // namespace gigafab::cli
