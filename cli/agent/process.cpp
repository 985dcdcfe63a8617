#include "cli/agent/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

extern char** environ;

namespace gigafab::cli::agent {

namespace {

// argv and envp as C arrays, built before fork.
struct Exec {
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string error_prefix;

  explicit Exec(const Command& command) {
    for (const auto& a : command.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (char** e = environ; *e; ++e) {
      std::string entry = *e;
      auto eq = entry.find('=');
      if (eq != std::string::npos && command.env.count(entry.substr(0, eq))) continue;
      env_storage.push_back(std::move(entry));
    }
    for (const auto& [k, v] : command.env) env_storage.push_back(k + "=" + v);
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);
    error_prefix = "gigafab: agent: cannot run '" + (command.argv.empty() ? std::string() : command.argv[0]) + "': ";
  }
};

void write_all(int fd, const char* text, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<size_t>(w);
  }
}

// In the child, after fork: only async-signal-safe calls.
[[noreturn]] void exec_child(const Command& command, Exec& exec, int in_fd, int out_fd, bool new_group, pid_t parent) {
  if (new_group) {
    ::setpgid(0, 0);
    // An engine does not outlive an agent killed with SIGKILL (the forking
    // thread, which lives as long as the engine runs).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);
  }
  ::signal(SIGPIPE, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::dup2(in_fd, 0);
  ::dup2(out_fd, 1);
  ::dup2(out_fd, 2);
  if (!command.cwd.empty() && ::chdir(command.cwd.c_str()) != 0) {
    const char* why = strerror(errno);
    write_all(2, "gigafab: agent: cannot enter the worktree: ", 43);
    write_all(2, why, strlen(why));
    write_all(2, "\n", 1);
    _exit(127);
  }
  if (!exec.argv.empty() && exec.argv[0]) ::execvpe(exec.argv[0], exec.argv.data(), exec.envp.data());
  const char* why = strerror(errno);
  write_all(2, exec.error_prefix.data(), exec.error_prefix.size());
  write_all(2, why, strlen(why));
  write_all(2, "\n", 1);
  _exit(127);
}

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

Captured run_captured(const Command& command) {
  Captured result;
  Exec exec(command);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    result.output = std::string("cannot create a pipe: ") + strerror(errno);
    return result;
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) exec_child(command, exec, null_fd, fds[1], false, parent);
  ::close(fds[1]);
  ::close(null_fd);
  if (pid < 0) {
    ::close(fds[0]);
    result.output = std::string("cannot fork: ") + strerror(errno);
    return result;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      if (result.output.size() < (1u << 20)) result.output.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = decode(status);
  return result;
}

Spawned spawn_group(const Command& command, const std::string& stdin_path) {
  Spawned spawned;
  Exec exec(command);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return spawned;
  int in_fd = ::open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) exec_child(command, exec, in_fd, fds[1], true, parent);
  ::close(fds[1]);
  ::close(in_fd);
  if (pid < 0) {
    ::close(fds[0]);
    return spawned;
  }
  ::setpgid(pid, pid);  // also from the parent, so a kill right away reaches the group
  ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  spawned.pid = pid;
  spawned.output_fd = fds[0];
  return spawned;
}

int poll_exit(pid_t pid) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) return decode(status);
  if (r < 0 && errno == ECHILD) return 1;
  return -1;
}

int stop_group(pid_t pid, int grace_ms) {
  ::kill(-pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  int status = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    status = poll_exit(pid);
    if (status >= 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(-pid, SIGKILL);  // the leader's children too, even when it left in time
  if (status < 0) {
    int raw = 0;
    while (::waitpid(pid, &raw, 0) < 0 && errno == EINTR) {
    }
    status = decode(raw);
  }
  return status;
}

}  // namespace gigafab::cli::agent
