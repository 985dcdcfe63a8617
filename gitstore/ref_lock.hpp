// A loose ref's compare-and-swap under git's own lock protocol, for the
// store's commits: <ref>.lock is created exclusively (git and libgit2 take
// the same file, so every writer excludes the others), the ref is checked
// against the value the commit was built on while the lock is held, and the
// new value is written to the lock file, fsynced, renamed over the ref and
// its directory fsynced.
//
// Done here rather than by git_reference_create_matching so that a durable
// commit syncs the lock file together with its pack (packfile::write's
// sync_alongside): one device flush in a row less per commit. And a commit
// that lost the race is found out before its pack is written, not after.
#pragma once

#include <git2.h>

#include <string>

#include "core/error.hpp"

namespace gigafab::gitstore {

class RefLock {
 public:
  enum class State {
    held,   // ours, holding the new value: commit() publishes it
    busy,   // someone else holds <ref>.lock (nothing was done)
    moved,  // the ref no longer points at the expected value (nothing was done)
  };

  // Locks `ref` of the repository at `git_dir` to move it from `expected`
  // (null: the ref must not exist yet) to `next`.
  static core::Result<RefLock> take(git_repository* repo, const std::string& git_dir, const char* ref,
                                    const git_oid* expected, const git_oid& next);

  RefLock(RefLock&& other) noexcept;
  RefLock& operator=(RefLock&&) = delete;
  RefLock(const RefLock&) = delete;
  ~RefLock();  // a lock never committed is removed

  State state() const { return m_state; }
  // The lock file (while held), for its fsync to go with others'.
  int fd() const { return m_fd; }
  // Moves the lock file over the ref. When durable: fsyncs it first unless
  // `synced` (it was, with the pack), and the ref's directory after.
  core::Result<void> commit(bool durable, bool synced);

 private:
  RefLock(State state, std::string ref_path, int fd) : m_state(state), m_ref_path(std::move(ref_path)), m_fd(fd) {}
  State m_state;
  std::string m_ref_path;
  int m_fd = -1;
};

}  // namespace gigafab::gitstore
