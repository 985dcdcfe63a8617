// The git store: the only code that touches libgit2.
//
// All durable fleet state is the tree of one ref, refs/gigafab/state. A write
// reads the tip P, lets a core operation compute a Change against P's tree,
// writes the changed blobs and trees plus a commit C whose parent is P, and
// moves the ref to C only if it still points at P (compare-and-swap). When the
// ref moved, the operation is re-run on the new tip, so its preconditions are
// always checked against the state that wins. Local writers additionally
// serialize on an flock(2) of <store>/gigafab.lock, which the kernel releases
// when a holder dies, so contention costs waiting instead of wasted retries
// and a killed process never leaves the fleet locked.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/snapshot.hpp"

namespace gigafab::gitstore {

using core::Error;
using core::Result;

inline constexpr const char* k_state_ref = "refs/gigafab/state";

struct InitOptions {
  bool fsync = true;  // fsync objects and refs before acknowledging a write
};

// One commit of the state ref, newest first in history().
struct CommitInfo {
  std::string oid;
  core::Millis time = 0;
  std::string summary;
  std::vector<core::Trailer> trailers;

  // The first trailer named `key`, or "".
  std::string trailer(std::string_view key) const;
};

// How a store starts a gc in the background when it has about doubled since
// it was last packed (the CLI runs `gigafab --store PATH gc --background` as
// a detached process). Unset (the default, and in tests): no automatic gc;
// pack merges still keep the number of packs small.
using BackgroundGc = std::function<void(const std::string& store_path)>;
void set_background_gc(BackgroundGc launcher);

// Caps what libgit2 keeps in memory for every store of this process: the
// objects it has read (default 256 MiB) and the pack file windows it keeps
// mapped (default: up to 8 GiB, in windows of 1 GiB).
void set_memory_limits(std::size_t object_cache, std::size_t mapped_packs);

class Store {
 public:
  // Creates a bare repository at `path` with the state ref's first commit.
  // Fails if `path` already holds a git repository.
  static Result<Store> init(const std::string& path, const InitOptions& options, const std::string& actor);
  // Opens an existing store; "not a gigafab store" when `path` is not one.
  static Result<Store> open(const std::string& path);
  // `explicit_path` when given, else the nearest ".gigafab" walking up from
  // the working directory; "no store found (run 'gigafab init')" otherwise.
  static Result<std::string> locate(const std::optional<std::string>& explicit_path);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  const std::string& path() const;
  bool fsync() const;

  // A view of the current tip; with `tip`, the tip's commit id (hex) too
  // (empty inside a group commit, whose view is not one commit's).
  Result<std::unique_ptr<core::Snapshot>> snapshot(std::string* tip = nullptr) const;
  // The state ref's tip (hex): one read of the ref, no object read.
  Result<std::string> tip_id() const;

  using Operation = std::function<Result<core::Change>(const core::Snapshot&)>;
  // Runs `op` against the tip and publishes its change as one commit (see the
  // file comment). An empty change writes nothing. Returns the new commit id
  // (or the unchanged tip). The op's own error is returned unchanged.
  Result<std::string> transact(const Operation& op, const std::string& actor);

  // The same, on another ref. With keep_history false the commit has no
  // parent (the ref still moves by compare-and-swap), so nothing accumulates
  // in its history: used for liveness, which changes nothing but timestamps.
  Result<std::string> transact_on(const char* ref, const Operation& op, const std::string& actor,
                                  bool keep_history);
  // A view of another ref's tip; empty when the ref does not exist yet.
  Result<std::unique_ptr<core::Snapshot>> snapshot_of(const char* ref) const;

  struct GcStats {
    bool skipped = false;            // background: another gc was running
    std::size_t objects = 0;         // objects in the new pack
    std::uintmax_t pack_bytes = 0;   // its size
    std::size_t packs_removed = 0;
    std::size_t loose_removed = 0;
    std::size_t transitions = 0;     // commits on the state ref
    std::string packer;              // "git pack-objects" or "libgit2"
  };
  struct GcOptions {
    // A gc the store asked for itself: give up at once when another gc runs,
    // and search deltas on one thread so writers keep the other cores.
    bool background = false;
    // The CPU priority (nice value) the caller gave this gc, for the log line
    // of a background gc.
    int nice = 0;
  };
  // Repacks every object reachable from refs/gigafab/* into one pack with
  // deltas (by `git pack-objects` when a git is installed, else libgit2's
  // packbuilder: gitstore/git_pack.hpp) and deletes what it replaced (older packs, loose objects, the
  // liveness ref's old beats). Writers go on meanwhile: the pack is built
  // without the writer lock, which is taken only to delete the old files.
  // Objects written since the gc started are kept, and so is every object of
  // a pack written or touched (libgit2 "freshens" a pack when a write reuses
  // one of its objects) in the last 10 seconds, so a write that reuses an
  // object nothing referenced yet never loses it.
  Result<GcStats> gc(const GcOptions& options);
  Result<GcStats> gc() { return gc(GcOptions{}); }
  // Returns once no gc of this store runs (one a write started in the
  // background, say): for measurements that must not share the machine
  // with one.
  Result<void> wait_for_gc() const;

  // The operations of the state ref's history, newest first (a group commit
  // gives one entry per operation, all with its commit id); all when limit is 0.
  Result<std::vector<CommitInfo>> history(std::size_t limit = 0) const;

  // ---- group commit (gigafab serve) -----------------------------------------
  // Between begin_group() and commit_group(), transact() on the state ref runs
  // its operation against the group's view (the tip at begin_group, plus the
  // changes of the operations before it) and only records the change;
  // snapshot() is that view. commit_group() writes them all as one commit
  // (one audit block per operation) whose parent is the tip at begin_group,
  // moved there by compare-and-swap: one pack and one fsync serve the whole
  // group. When the ref moved meanwhile nothing is written and the error's
  // reason is "group_lost": run the group's operations again (a group that
  // changed nothing is lost when the ref is no longer its base). A store with a
  // git remote does not group (begin_group returns false); writes commit one
  // by one as always. Other refs (liveness, logs) are written at once.
  Result<bool> begin_group();
  Result<void> commit_group(const std::string& actor);

  // commit_group() in two halves, so that a server builds its next group
  // while this one syncs (a pipeline). prepare_group() closes the open group
  // and builds its commit (objects still in memory, copied for the
  // publisher); the next begin_group() builds on that commit although it is
  // not published yet. publish_group() writes and fsyncs its objects and
  // moves the ref by compare-and-swap from the group's base; it may run on
  // another thread while this handle is used (it touches none of its git
  // objects), and prepared groups publish in the order they were prepared,
  // each waiting for the one before. A group built on one that failed fails
  // too ("group_lost": the ref is not where it was built), and so does any
  // group when another writer moved the ref: run its operations again. Every
  // prepared group must be published (or dropped: its turn then passes).
  class Prepared {
   public:
    Prepared();
    Prepared(Prepared&&) noexcept;
    Prepared& operator=(Prepared&&) noexcept;
    ~Prepared();
    // The group changed nothing: publishing writes nothing, but still
    // waits for the groups before it and fails when they did (its answers
    // were read from them).
    bool empty() const;
    // How long its publish_group() took to write and sync (0 before).
    double publish_seconds() const;
    // The commit it publishes and the one it is built on (hex ids; empty
    // when it changed nothing).
    std::string commit_id() const;
    std::string base_id() const;
    // Whether it writes anything under the top-level directory `dir`.
    bool writes_under(std::string_view dir) const;
    struct State;

   private:
    friend class Store;
    std::shared_ptr<State> m_state;
  };
  Result<Prepared> prepare_group(const std::string& actor);
  Result<void> publish_group(Prepared& prepared);
  // Prepared groups not published yet (0: none; every write is on disk).
  std::size_t groups_in_flight() const;
  // Returns once at most `count` prepared groups are still unpublished.
  void wait_for_groups(std::size_t count) const;
  // Merges are due and the packs are more than they should be: maintain()
  // would merge.
  bool maintenance_needed() const;
  void abandon_group();
  bool in_group() const;
  // Operations that changed something in the open group (0 without one).
  std::size_t group_size() const;
  // With `deferred` on, commit_group() leaves the pack merges it would run
  // for maintain(), so a server can answer the group's requests first.
  void defer_maintenance(bool deferred);
  // For a long-lived writer: from now on, empty files are made ahead (on a
  // helper thread) for the next packs to be written into, so that a commit
  // does not wait for the file system to create them (spare_files.hpp).
  void keep_spare_files();
  // The pack merges the last commits left (a no-op when none are due).
  // Prepared groups publish once it is done.
  Result<void> maintain();
  // The same merges (whether due or not), for a thread of its own while
  // this handle goes on committing on another: the merged pack is written
  // (the slow part) beside the commits, and the writer lock is held only to
  // remove what a killed writer left, so publishes go on meanwhile. The
  // handle is touched once per merge, through `with_handle`, which must run
  // the function it is given while nothing else uses the handle (under the
  // lock its users share): it waits for the groups in flight to publish,
  // removes the merged packs and refreshes the object database. False, and
  // nothing done, while a gc runs: merges then need the writer lock
  // throughout, and the caller runs them on the handle (maintain(), under
  // that lock). One thread at a time.
  using WithHandle = std::function<void(const std::function<void()>&)>;
  Result<bool> merge_aside(const WithHandle& with_handle);

  // ---- the coordinating git remote (gitstore/remote.hpp) -------------------
  // With a remote (config gigafab.remote), every write fetches the remote's
  // tip, runs the operation on it and pushes with the tip as the expected old
  // value; a rejected push fetches and re-runs. Nothing is acknowledged that
  // was not pushed.
  //
  // Creates a store whose fleet lives on `url`: clones the remote's state when
  // it has one, else initializes it and pushes the first commit.
  static Result<Store> init_from_remote(const std::string& path, const std::string& url, const std::string& name,
                                        const InitOptions& options, const std::string& actor);
  // The coordinating remote's name ("" when none) and URL (redacted).
  std::string remote_name() const;
  std::string remote_url() const;
  // The coordinating remote's URL as configured, user-info and all: only to
  // make another local copy of the fleet (bench --remote), never to show.
  std::string remote_location() const;
  // Uses remote `name` for this process instead of gigafab.remote.
  Result<void> use_remote(const std::string& name);
  // Reads then use the local copy without fetching (see last_fetch()).
  void set_offline(bool offline);
  bool offline() const;
  // Fetches the remote's state (no-op without a remote or when offline).
  Result<void> refresh();
  // When the local copy was last fetched (0: never).
  core::Millis last_fetch() const;
  // Configures `name` as the coordinating remote: publishes this store's
  // state there when the remote has none; adopts the remote's when ours is
  // part of its history; a conflict when they are different fleets.
  // `adopt`: take the remote's state even when unrelated (a brand-new store).
  Result<void> add_remote(const std::string& name, const std::string& url, bool adopt = false);
  Result<void> remove_remote(const std::string& name);
  // (name, redacted url, coordinating?) of every configured remote.
  struct RemoteInfo {
    std::string name;
    std::string url;
    bool coordinating = false;
  };
  Result<std::vector<RemoteInfo>> remotes() const;
  // Fetches and returns the commits that arrived, oldest first.
  Result<std::vector<CommitInfo>> sync();

 private:
  Result<void> upgrade_from_format_1();
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace gigafab::gitstore
