#include "gitstore/spare_files.hpp"
#include "gitstore/fd_io.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace gigafab::gitstore::spare_files {

namespace {

constexpr std::string_view k_prefix = "tmp_gigafab_spare_";
// Files kept to recycle, at most, per directory: a second or two of a busy
// server's deletions; more are deleted.
constexpr std::size_t k_max_recycled = 512;
// How long a kept file may stay open (or mapped) somewhere before it is
// deleted instead.
constexpr std::chrono::seconds k_max_wait{10};

// The spares of every kept directory, and the helper thread that makes them.
// Never destroyed (the thread is detached); what is left is removed at exit
// by the process that made it (not by a forked child).
class Registry {
 public:
  static Registry& instance() {
    static Registry* registry = new Registry;
    return *registry;
  }

  void keep(const std::string& dir, std::size_t count) {
    std::lock_guard lock(m_mutex);
    Dir& d = m_dirs[dir];
    d.count = std::max(d.count, count);
    d.failed = false;
    if (!m_started) {
      m_started = true;
      m_owner = ::getpid();
      std::atexit([] { instance().remove_all(); });
      std::thread([this] { loop(); }).detach();
    }
    m_cv.notify_one();
  }

  bool recycle(const std::string& dir, const std::string& path) {
    std::string name;
    {
      std::lock_guard lock(m_mutex);
      auto it = m_dirs.find(dir);
      if (it == m_dirs.end() || it->second.count == 0 || it->second.no_leases || ::getpid() != m_owner ||
          it->second.recycled.size() + it->second.renaming >= k_max_recycled) {
        return false;
      }
      ++it->second.renaming;
      name = dir + "/" + std::string(k_prefix) + std::to_string(m_owner) + "_r" + std::to_string(++m_recycled_names);
    }
    const bool renamed = ::rename(path.c_str(), name.c_str()) == 0;
    std::lock_guard lock(m_mutex);
    Dir& d = m_dirs[dir];
    --d.renaming;
    if (renamed) d.recycled.push_back(Recycled{std::move(name), std::chrono::steady_clock::now()});
    return renamed;
  }

  std::optional<Spare> take(const std::string& dir) {
    std::lock_guard lock(m_mutex);
    auto it = m_dirs.find(dir);
    if (it == m_dirs.end() || ::getpid() != m_owner) return std::nullopt;
    auto& ready = it->second.ready;
    while (!ready.empty()) {
      Spare spare = std::move(ready.back());
      ready.pop_back();
      m_cv.notify_one();
      // Removed meanwhile (by a process that could not tell ours is alive:
      // another pid namespace)? Its writes would go nowhere.
      struct stat st {};
      if (::fstat(spare.fd, &st) == 0 && st.st_nlink > 0) return spare;
      ::close(spare.fd);
    }
    return std::nullopt;
  }

 private:
  struct Recycled {
    std::string path;
    std::chrono::steady_clock::time_point since;  // recycled then
  };

  struct Dir {
    std::size_t count = 0;
    std::vector<Spare> ready;
    std::deque<Recycled> recycled;  // oldest first
    std::size_t renaming = 0;       // recycle() calls between their two locks
    bool no_leases = false;         // the filesystem grants none: nothing is recycled
    bool failed = false;  // the last attempt to make one failed: wait for the next keep()
  };

  void loop() {
    fd_io::block_signals_in_helper();
    std::unique_lock lock(m_mutex);
    for (;;) {
      auto short_of = std::find_if(m_dirs.begin(), m_dirs.end(), [](const auto& entry) {
        return !entry.second.failed && entry.second.ready.size() < entry.second.count;
      });
      if (short_of == m_dirs.end()) {
        m_cv.wait(lock);
        continue;
      }
      const std::string dir = short_of->first;
      std::optional<Spare> made = reuse(short_of->second, lock);
      if (!made) {
        lock.unlock();
        made = make(dir);
        lock.lock();
      }
      Dir& d = m_dirs[dir];
      if (made) {
        d.ready.push_back(std::move(*made));
      } else {
        d.failed = true;
      }
    }
  }

  // A spare from the oldest file kept to recycle, or nothing: none is kept,
  // or the oldest is still open somewhere (the newer ones then are too,
  // mostly: a busy server's libgit2 lets go of the packs a merge took in
  // about a second later). Called and returns with `lock` held; releases it
  // meanwhile.
  std::optional<Spare> reuse(Dir& d, std::unique_lock<std::mutex>& lock) {
    while (!d.recycled.empty()) {
      Recycled file = std::move(d.recycled.front());
      d.recycled.pop_front();
      lock.unlock();
      std::optional<Spare> spare = reopen(file.path);
      const int err = spare ? 0 : errno;
      const bool wait = err == EAGAIN && std::chrono::steady_clock::now() - file.since < k_max_wait;
      if (!spare && !wait && err != ENOENT) ::unlink(file.path.c_str());
      lock.lock();
      if (spare) return spare;
      if (wait) {
        d.recycled.push_front(std::move(file));
        return std::nullopt;
      }
      // Without leases (not Linux's local filesystems) nobody can tell
      // whether a reader still maps it: deleted from now on.
      if (err == EINVAL || err == ENOSYS) d.no_leases = true;
    }
    return std::nullopt;
  }

  // `path` emptied and open for writing, unless anyone else has it open or
  // mapped (errno EAGAIN), it is gone (ENOENT: removed as another process's
  // leftover) or it cannot be (another errno). A write lease is granted
  // only to a file's sole opener (its mappings count), and is given back at
  // once: nobody opens the file by this name, so nothing breaks it, and if
  // something did, the signal sent to this process would be SIGURG, which
  // is ignored unless handled, not SIGIO, which ends it.
  static std::optional<Spare> reopen(const std::string& path) {
    ::chmod(path.c_str(), 0600);  // packs are read-only
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return std::nullopt;
    ::fcntl(fd, F_SETSIG, SIGURG);
    if (::fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
      const int err = errno == EBUSY ? EAGAIN : errno;
      ::close(fd);
      errno = err;
      return std::nullopt;
    }
    ::fcntl(fd, F_SETLEASE, F_UNLCK);
    if (::ftruncate(fd, 0) != 0) {
      ::close(fd);
      ::unlink(path.c_str());
      errno = EIO;
      return std::nullopt;
    }
    return Spare{fd, path};
  }

  static std::optional<Spare> make(const std::string& dir) {
    std::string path = dir + "/" + std::string(k_prefix) + std::to_string(::getpid()) + "_XXXXXX";
    int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    return Spare{fd, std::move(path)};
  }

  void remove_all() {
    std::lock_guard lock(m_mutex);
    if (::getpid() != m_owner) return;
    for (auto& [dir, d] : m_dirs) {
      for (const Spare& spare : d.ready) {
        ::close(spare.fd);
        ::unlink(spare.path.c_str());
      }
      d.ready.clear();
      for (const Recycled& file : d.recycled) ::unlink(file.path.c_str());
      d.recycled.clear();
      d.count = 0;
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::map<std::string, Dir> m_dirs;
  bool m_started = false;
  pid_t m_owner = 0;
  std::uint64_t m_recycled_names = 0;
};

}  // namespace

void keep(const std::string& dir, std::size_t count) { Registry::instance().keep(dir, count); }

std::optional<Spare> take(const std::string& dir) { return Registry::instance().take(dir); }

bool recycle(const std::string& dir, const std::string& path) { return Registry::instance().recycle(dir, path); }

bool is_live_spare(std::string_view name) {
  if (name.substr(0, k_prefix.size()) != k_prefix) return false;
  name.remove_prefix(k_prefix.size());
  long long pid = 0;
  std::size_t digits = 0;
  while (digits < name.size() && digits < 10 && name[digits] >= '0' && name[digits] <= '9') {
    pid = pid * 10 + (name[digits] - '0');
    ++digits;
  }
  if (digits == 0 || digits >= name.size() || name[digits] != '_' || pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace gigafab::gitstore::spare_files
