// Small POSIX helpers shared by the files gitstore writes itself (packs, the
// list cache, git pack-objects' input): whole reads and writes, fsync by
// path and several at once.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <span>
#include <string>
#include <string_view>

namespace gigafab::gitstore::fd_io {

// Writes all of `data` (retrying short writes and EINTR); false on error.
inline bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The whole file at `path` into `out`; false when it cannot be read.
bool read_all(const std::string& path, std::string& out);

// fsyncs the file or directory at `path`.
inline bool fsync_path(const std::string& path, bool directory = false) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// fsyncs every file of `fds` at once, so that the device's cache flushes
// overlap, where one after another each costs its own flush (a pack, its
// index and a ref's lock file: about 0.6 ms together here against 1.3 ms in
// a row). The first on the caller's thread, the others on long-lived helper
// threads. True when every fsync succeeded.
bool fsync_together(std::span<const int> fds);

// For the first line of a helper thread gitstore starts: blocks every
// signal in it, so that signals reach the process's own threads (serve
// waits for SIGTERM in one; a helper may start before it is blocked there).
void block_signals_in_helper();

// Closes `fd` soon, on a helper thread. For a file that is being replaced
// or deleted: open it first, and the last close (which frees its blocks,
// and on a filesystem mounted with `discard` waits for the device to
// discard them: about 0.17 ms for a ref here) happens off the caller's path.
// A negative fd is ignored.
void close_later(int fd);
// Returns once every fd handed to close_later so far is closed.
void close_now();

// Opens `path` to hand to close_later once it is renamed over or deleted;
// -1 when there is no such file.
inline int hold_for_close_later(const std::string& path) { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }

}  // namespace gigafab::gitstore::fd_io
