// Unit tests for gitstore/ref_lock.hpp and fd_io::fsync_together: a ref's
// compare-and-swap under git's lock protocol, checked with git itself.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <git2.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gitstore/fd_io.hpp"
#include "gitstore/ref_lock.hpp"
#include "shell.hpp"

using namespace gigafab;
using gigafab::test::sh;
using gitstore::RefLock;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A bare repository with two commits, `first` and `second`, and the ref
// refs/gigafab/state at `first`.
struct Repo {
  std::string dir;
  git_repository* repo = nullptr;
  std::string first, second;
  git_oid first_id{}, second_id{};

  Repo() {
    git_libgit2_init();
    char pattern[] = "/tmp/gigafab-reflock-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    dir = pattern;
    sh("git init -q --bare " + dir);
    const std::string git = "git -C " + dir + " -c user.name=t -c user.email=t@t ";
    const std::string tree = sh(git + "mktree </dev/null");
    first = sh(git + "commit-tree -m first " + tree);
    second = sh(git + "commit-tree -m second -p " + first + " " + tree);
    sh(git + "update-ref refs/gigafab/state " + first);
    REQUIRE(git_oid_fromstr(&first_id, first.c_str()) == 0);
    REQUIRE(git_oid_fromstr(&second_id, second.c_str()) == 0);
    REQUIRE(git_repository_open_bare(&repo, dir.c_str()) == 0);
  }
  ~Repo() {
    git_repository_free(repo);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string rev(const std::string& ref) { return sh("git -C " + dir + " rev-parse " + ref); }
  std::string lock_path() const { return dir + "/refs/gigafab/state.lock"; }
};

}  // namespace

TEST_CASE("a ref lock moves the ref from the expected commit, and git sees the new one") {
  Repo r;
  for (bool durable : {true, false}) {
    CAPTURE(durable);
    const git_oid& from = durable ? r.first_id : r.second_id;
    const git_oid& to = durable ? r.second_id : r.first_id;
    auto lock = RefLock::take(r.repo, r.dir, "refs/gigafab/state", &from, to);
    REQUIRE(lock.ok());
    REQUIRE(lock->state() == RefLock::State::held);
    CHECK(lock->fd() >= 0);
    CHECK(fs::exists(r.lock_path()));
    // While it is held, git cannot move the ref either.
    CHECK(std::system(("git -C " + r.dir + " update-ref refs/gigafab/state " + r.first + " 2>/dev/null").c_str()) != 0);
    REQUIRE(lock->commit(durable, false).ok());
    CHECK_FALSE(fs::exists(r.lock_path()));
    CHECK(r.rev("refs/gigafab/state") == (durable ? r.second : r.first));
    CHECK(slurp(r.dir + "/refs/gigafab/state") == (durable ? r.second : r.first) + "\n");
  }
}

TEST_CASE("a ref lock finds a ref that moved, and a lock someone else holds, and changes nothing") {
  Repo r;
  SUBCASE("moved") {
    auto lock = RefLock::take(r.repo, r.dir, "refs/gigafab/state", &r.second_id, r.first_id);
    REQUIRE(lock.ok());
    CHECK(lock->state() == RefLock::State::moved);
    CHECK(lock->fd() < 0);
    CHECK_FALSE(fs::exists(r.lock_path()));
    CHECK_FALSE(lock->commit(true, false).ok());
  }
  SUBCASE("busy") {
    std::ofstream(r.lock_path()) << "held by git\n";
    auto lock = RefLock::take(r.repo, r.dir, "refs/gigafab/state", &r.first_id, r.second_id);
    REQUIRE(lock.ok());
    CHECK(lock->state() == RefLock::State::busy);
    CHECK_FALSE(lock->commit(true, false).ok());
    CHECK(slurp(r.lock_path()) == "held by git\n");  // not ours to remove
  }
  SUBCASE("a new ref that exists already") {
    auto lock = RefLock::take(r.repo, r.dir, "refs/gigafab/state", nullptr, r.second_id);
    REQUIRE(lock.ok());
    CHECK(lock->state() == RefLock::State::moved);
  }
  CHECK(r.rev("refs/gigafab/state") == r.first);
}

TEST_CASE("a ref lock given up is removed and leaves the ref as it was") {
  Repo r;
  {
    auto lock = RefLock::take(r.repo, r.dir, "refs/gigafab/state", &r.first_id, r.second_id);
    REQUIRE(lock.ok());
    REQUIRE(lock->state() == RefLock::State::held);
    RefLock moved_to = std::move(*lock);
    CHECK(fs::exists(r.lock_path()));
  }
  CHECK_FALSE(fs::exists(r.lock_path()));
  CHECK(r.rev("refs/gigafab/state") == r.first);
}

TEST_CASE("a ref lock creates a new ref in a new directory, and moves one only in packed-refs") {
  Repo r;
  auto created = RefLock::take(r.repo, r.dir, "refs/gigafab/new/one", nullptr, r.second_id);
  REQUIRE(created.ok());
  REQUIRE(created->state() == RefLock::State::held);
  REQUIRE(created->commit(true, false).ok());
  CHECK(r.rev("refs/gigafab/new/one") == r.second);

  sh("git -C " + r.dir + " pack-refs --all");
  REQUIRE_FALSE(fs::exists(r.dir + "/refs/gigafab/state"));
  auto stale = RefLock::take(r.repo, r.dir, "refs/gigafab/state", &r.second_id, r.first_id);
  REQUIRE(stale.ok());
  CHECK(stale->state() == RefLock::State::moved);
  auto lock = RefLock::take(r.repo, r.dir, "refs/gigafab/state", &r.first_id, r.second_id);
  REQUIRE(lock.ok());
  REQUIRE(lock->state() == RefLock::State::held);
  REQUIRE(lock->commit(true, false).ok());
  CHECK(r.rev("refs/gigafab/state") == r.second);
  git_oid seen;
  REQUIRE(git_reference_name_to_id(&seen, r.repo, "refs/gigafab/state") == 0);
  CHECK(git_oid_equal(&seen, &r.second_id));
}

TEST_CASE("fsync_together syncs every file, and fails when one of them cannot be") {
  char pattern[] = "/tmp/gigafab-fsync-XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  const std::string dir = pattern;
  int fds[4];
  for (int i = 0; i < 4; ++i) {
    fds[i] = ::open((dir + "/f" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    REQUIRE(fds[i] >= 0);
    REQUIRE(gitstore::fd_io::write_all(fds[i], "data\n"));
  }
  CHECK(gitstore::fd_io::fsync_together({}));
  for (int round = 0; round < 50; ++round) {  // the helper threads are reused
    CHECK(gitstore::fd_io::fsync_together(std::span<const int>(fds, 1 + round % 4)));
  }
  // Callers on several threads at once share the helpers: every call returns.
  std::atomic<int> synced{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 6; ++t) {
    callers.emplace_back([&, t] {
      for (int round = 0; round < 30; ++round) {
        if (gitstore::fd_io::fsync_together(std::span<const int>(fds, 2 + (round + t) % 3))) ++synced;
      }
    });
  }
  for (auto& caller : callers) caller.join();
  CHECK(synced.load() == 6 * 30);
  const int with_bad[] = {fds[0], -1, fds[2]};
  CHECK_FALSE(gitstore::fd_io::fsync_together(with_bad));
  const int bad_first[] = {-1, fds[1]};
  CHECK_FALSE(gitstore::fd_io::fsync_together(bad_first));
  for (int fd : fds) ::close(fd);
  fs::remove_all(dir);
}

namespace {

// Open files of this process whose path is under `dir` and which are deleted.
std::size_t open_deleted_under(const std::string& dir) {
  std::size_t count = 0;
  for (const auto& fd : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::string target = fs::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind(dir + "/", 0) == 0 && target.find("(deleted)") != std::string::npos) ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("close_later frees a replaced ref's file off the caller's path, and close_now waits for it") {
  Repo r;
  // The commit holds the old ref's file open across the rename and hands it
  // to the helper thread: once that has closed it, nothing of it is left open.
  auto lock = RefLock::take(r.repo, r.dir, "refs/gigafab/state", &r.first_id, r.second_id);
  REQUIRE(lock.ok());
  REQUIRE(lock->state() == RefLock::State::held);
  REQUIRE(lock->commit(true, false).ok());
  CHECK(r.rev("refs/gigafab/state") == r.second);
  gitstore::fd_io::close_now();
  CHECK(open_deleted_under(r.dir) == 0);

  // Files deleted while held stay readable until closed, then are gone.
  for (int i = 0; i < 20; ++i) {
    const std::string file = r.dir + "/doomed" + std::to_string(i);
    { std::ofstream(file) << "bytes\n"; }
    const int held = gitstore::fd_io::hold_for_close_later(file);
    REQUIRE(held >= 0);
    REQUIRE(::unlink(file.c_str()) == 0);
    gitstore::fd_io::close_later(held);
  }
  gitstore::fd_io::close_now();
  CHECK(open_deleted_under(r.dir) == 0);
  CHECK(gitstore::fd_io::hold_for_close_later(r.dir + "/no-such-file") == -1);
  gitstore::fd_io::close_later(-1);  // ignored
  gitstore::fd_io::close_now();
}
