#include "gitstore/git_pack.hpp"
#include "gitstore/fd_io.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>
#include <string_view>

extern char** environ;

namespace gigafab::gitstore {

using core::ErrorCode;
using core::make_error;

namespace {

core::Error failure(const std::string& why) { return make_error(ErrorCode::error, "cannot repack with git: " + why); }

std::string read_all(int fd) {
  std::string out;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out;
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

// SIGPIPE blocked on this thread while feeding a child that may die early:
// the write fails with EPIPE instead, and a pending signal is dropped after.
class NoSigpipe {
 public:
  NoSigpipe() {
    sigemptyset(&m_pipe);
    sigaddset(&m_pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &m_pipe, &m_old);
  }
  ~NoSigpipe() {
    const struct timespec zero {};
    while (sigtimedwait(&m_pipe, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &m_old, nullptr);
  }

 private:
  sigset_t m_pipe{}, m_old{};
};

}  // namespace

std::optional<std::string> git_program() {
  if (const char* configured = std::getenv("GIGAFAB_GIT"); configured && *configured) {
    if (std::string(configured) == "none") return std::nullopt;
    return std::string(configured);
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/git";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

core::Result<std::string> git_pack_objects(const std::string& git, const std::string& git_dir,
                                           const std::string& pack_dir, const std::vector<NamedObject>& objects,
                                           unsigned threads, bool durable) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return failure(std::strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return failure(std::strerror(errno));
  }
  // What git says on stderr, kept in an unlinked file (no pipe to drain).
  std::string err_path = git_dir + "/gigafab-gc.err.XXXXXX";
  int err = ::mkostemp(err_path.data(), O_CLOEXEC);
  if (err >= 0) ::unlink(err_path.c_str());

  // --no-reuse-object: every object compressed and its delta searched
  // again. The packs a commit writes store trees uncompressed, and git
  // would otherwise copy those entries as they are (1,040 instead of 970
  // bytes per transition on the bench's store).
  std::vector<std::string> args = {git, "--git-dir=" + git_dir, "pack-objects", "-q", "--delta-base-offset",
                                   "--no-reuse-object"};
  if (threads) args.push_back("--threads=" + std::to_string(threads));
  args.push_back(pack_dir + "/pack");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // The store is named on the command line: a GIT_DIR or object directory
  // of the caller's environment (a hook, say) must not point git elsewhere.
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) {
    std::string_view var(*e);
    bool repository_var = false;
    for (std::string_view name : {"GIT_DIR=", "GIT_OBJECT_DIRECTORY=", "GIT_ALTERNATE_OBJECT_DIRECTORIES=",
                                  "GIT_WORK_TREE=", "GIT_INDEX_FILE=", "GIT_COMMON_DIR=", "GIT_NAMESPACE="}) {
      if (var.substr(0, name.size()) == name) repository_var = true;
    }
    if (!repository_var) env.push_back(*e);
  }
  env.push_back(nullptr);
  // fork + exec rather than posix_spawn: the child must die with the gc
  // (PR_SET_PDEATHSIG), or a gc killed half-way would leave a git writing
  // into the store behind it. What a killed git leaves (tmp_pack_*) is
  // removed by the next pack merge, like a killed writer's files.
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    if (err >= 0) ::dup2(err, 2);
    ::execve(git.c_str(), argv.data(), env.data());
    ::_exit(127);
  }
  const int rc = pid < 0 ? errno : 0;
  ::close(in[0]);
  ::close(out[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    if (err >= 0) ::close(err);
    return failure("cannot run " + git + ": " + std::strerror(rc));
  }

  bool fed = true;
  {
    NoSigpipe guard;
    std::string block;
    char hex[GIT_OID_HEXSZ + 1];
    for (const auto& object : objects) {
      git_oid_tostr(hex, sizeof hex, &object.id);
      block += hex;
      // A name runs to the end of its line: one holding a newline goes without.
      if (!object.name.empty() && object.name.find('\n') == std::string::npos) {
        block += ' ';
        block += object.name;
      }
      block += '\n';
      if (block.size() >= (1u << 16)) {
        if (!(fed = fd_io::write_all(in[1], block))) break;
        block.clear();
      }
    }
    if (fed) fed = fd_io::write_all(in[1], block);
    ::close(in[1]);
  }
  std::string name = read_all(out[0]);
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string said;
  if (err >= 0) {
    ::lseek(err, 0, SEEK_SET);
    said = read_all(err);
    ::close(err);
  }
  while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !fed) {
    return failure(git + " pack-objects " +
                   (WIFEXITED(status) && WEXITSTATUS(status) == 127 && said.empty() ? "could not be run (exit 127)" :
                    WIFEXITED(status) ? "exited with " + std::to_string(WEXITSTATUS(status))
                                      : std::string("was killed")) +
                   (said.empty() ? "" : ": " + said));
  }
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  if (name.size() != GIT_OID_HEXSZ || name.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return failure("git pack-objects printed '" + name + "' instead of a pack name");
  }
  std::string base = pack_dir + "/pack-" + name;
  if (durable && (!fd_io::fsync_path(base + ".pack") || !fd_io::fsync_path(base + ".idx") ||
                  !fd_io::fsync_path(pack_dir, true))) {
    return failure("cannot fsync " + base + ": " + std::strerror(errno));
  }
  return base;
}

}  // namespace gigafab::gitstore
