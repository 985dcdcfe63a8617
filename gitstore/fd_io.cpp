#include "gitstore/fd_io.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>

namespace gigafab::gitstore::fd_io {

namespace {

// Threads that fsync files for fsync_together, started when none is idle and
// kept for the process's life: a commit used to start one (about 50 us) for
// its pack. Never destroyed (the threads are detached), so exit() does not
// wait for them and a forked child that exits has nothing to join.
class Syncer {
 public:
  static Syncer& instance() {
    static Syncer* syncer = new Syncer;
    return *syncer;
  }

  // Every fd of `fds` at once, under one lock, the threads woken after it
  // is released: posted one by one, the first thread woken took the lock
  // while the caller posted the next, and the caller waited for it (about
  // 0.3 ms before its own fsync began).
  void post(std::span<const int> fds, bool* ok, std::latch* done) {
    std::size_t wake = 0;
    {
      std::lock_guard lock(m_mutex);
      for (std::size_t i = 0; i < fds.size(); ++i) m_tasks.push_back({fds[i], &ok[i], done});
      const std::size_t idle = m_waiting > m_woken ? m_waiting - m_woken : 0;
      wake = std::min(idle, fds.size());
      m_woken += wake;
      for (std::size_t i = wake; i < fds.size(); ++i) std::thread([this] { loop(); }).detach();
    }
    for (std::size_t i = 0; i < wake; ++i) m_cv.notify_one();
  }

 private:
  struct Task {
    int fd;
    bool* ok;
    std::latch* done;
  };

  void loop() {
    block_signals_in_helper();
    std::unique_lock lock(m_mutex);
    for (;;) {
      if (m_tasks.empty()) {
        ++m_waiting;
        m_cv.wait(lock, [&] { return !m_tasks.empty(); });
        --m_waiting;
        if (m_woken > 0) --m_woken;
      }
      Task task = m_tasks.front();
      m_tasks.pop_front();
      lock.unlock();
      *task.ok = ::fsync(task.fd) == 0;
      task.done->count_down();
      lock.lock();
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Task> m_tasks;
  std::size_t m_waiting = 0;  // threads waiting for a task
  std::size_t m_woken = 0;    // of them, those notified and not yet running
};

// The thread behind close_later: one, started at the first file, never
// destroyed (as Syncer).
class Closer {
 public:
  static Closer& instance() {
    static Closer* closer = new Closer;
    return *closer;
  }

  // Returns once every fd posted so far is closed.
  void flush() {
    std::unique_lock lock(m_mutex);
    std::deque<int> fds;
    fds.swap(m_fds);
    for (int fd : fds) ::close(fd);
    m_cv.wait(lock, [&] { return !m_closing; });
  }

  void post(int fd) {
    std::lock_guard lock(m_mutex);
    m_fds.push_back(fd);
    if (!m_started) {
      m_started = true;
      std::thread([this] { loop(); }).detach();
    } else {
      m_cv.notify_one();
    }
  }

 private:
  void loop() {
    block_signals_in_helper();
    std::unique_lock lock(m_mutex);
    for (;;) {
      m_cv.wait(lock, [&] { return !m_fds.empty(); });
      std::deque<int> fds;
      fds.swap(m_fds);
      m_closing = true;
      lock.unlock();
      for (int fd : fds) ::close(fd);
      lock.lock();
      m_closing = false;
      m_cv.notify_all();
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<int> m_fds;
  bool m_started = false;
  bool m_closing = false;  // the thread is closing fds it took
};

}  // namespace

void block_signals_in_helper() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
}

void close_later(int fd) {
  if (fd >= 0) Closer::instance().post(fd);
}

void close_now() { Closer::instance().flush(); }

bool fsync_together(std::span<const int> fds) {
  if (fds.empty()) return true;
  if (fds.size() == 1) return ::fsync(fds[0]) == 0;
  std::unique_ptr<bool[]> ok(new bool[fds.size()]());
  std::latch done(static_cast<std::ptrdiff_t>(fds.size() - 1));
  Syncer::instance().post(fds.subspan(1), &ok[1], &done);
  ok[0] = ::fsync(fds[0]) == 0;
  done.wait();
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (!ok[i]) return false;
  }
  return true;
}

bool read_all(const std::string& path, std::string& out) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0;
  if (ok) out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  while (ok) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ok = false;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return ok;
}

}  // namespace gigafab::gitstore::fd_io
