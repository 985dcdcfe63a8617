#include "gitstore/spare_files.hpp"
#include "gitstore/fd_io.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace gigafab::gitstore::spare_files {

namespace {

constexpr std::string_view k_prefix = "tmp_gigafab_spare_";

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
  struct Dir {
    std::size_t count = 0;
    std::vector<Spare> ready;
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
      lock.unlock();
      std::optional<Spare> made = make(dir);
      lock.lock();
      Dir& d = m_dirs[dir];
      if (made) {
        d.ready.push_back(std::move(*made));
      } else {
        d.failed = true;
      }
    }
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
      d.count = 0;
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::map<std::string, Dir> m_dirs;
  bool m_started = false;
  pid_t m_owner = 0;
};

}  // namespace

void keep(const std::string& dir, std::size_t count) { Registry::instance().keep(dir, count); }

std::optional<Spare> take(const std::string& dir) { return Registry::instance().take(dir); }

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
