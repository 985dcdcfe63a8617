// Unit tests for gitstore/store.hpp against real repositories in temporary
// directories: init/open, commits through transact (one commit per change,
// parent = previous tip), snapshots, history with trailers, the CAS retry when
// an outside writer moves the ref, and recovery from a stale ref lock. The
// `git` command line plays the outside writer and inspects the result.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/layout.hpp"
#include "core/lifecycle.hpp"
#include "core/queue_index.hpp"
#include "core/snapshot.hpp"
#include "core/submit.hpp"
#include "gitstore/fd_io.hpp"
#include "gitstore/spare_files.hpp"
#include "gitstore/store.hpp"
#include "shell.hpp"

using namespace gigafab;
namespace fs = std::filesystem;

namespace {

// A fresh directory under /tmp, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/gigafab-unit-XXXXXX";
    char* made = ::mkdtemp(pattern);
    REQUIRE(made != nullptr);
    m_path = made;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(m_path, ec);
  }
  const std::string& path() const { return m_path; }
  std::string operator/(const std::string& name) const { return m_path + "/" + name; }

 private:
  std::string m_path;
};

using gigafab::test::run;
using gigafab::test::RunResult;

// The `git` command line, isolated from the user's configuration.
const std::string k_git = "env GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git ";

// `git` against a store, committing as "outsider".
std::string git(const std::string& store) {
  return "env GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=outsider "
         "GIT_AUTHOR_EMAIL=outsider@example.com GIT_COMMITTER_NAME=outsider "
         "GIT_COMMITTER_EMAIL=outsider@example.com git --git-dir='" +
         store + "' ";
}

std::string git_out(const std::string& store, const std::string& args) {
  RunResult r = run(git(store) + args);
  CAPTURE(args);
  REQUIRE(r.status == 0);
  return r.out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Silences stderr (the store's warnings) for its lifetime.
class QuietStderr {
 public:
  QuietStderr() {
    std::fflush(stderr);
    m_saved = ::dup(2);
    int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 2);
    ::close(null_fd);
  }
  QuietStderr(const QuietStderr&) = delete;
  QuietStderr& operator=(const QuietStderr&) = delete;
  ~QuietStderr() {
    std::fflush(stderr);
    ::dup2(m_saved, 2);
    ::close(m_saved);
  }

 private:
  int m_saved = -1;
};

gitstore::Store init_store(const std::string& path) {
  auto r = gitstore::Store::init(path, gitstore::InitOptions{false}, "tester");
  if (!r) FAIL("init failed: " << r.error().message);
  return std::move(*r);
}

gitstore::Store::Operation put(std::string path, std::string content, std::string summary = "write") {
  return [=](const core::Snapshot&) -> core::Result<core::Change> {
    core::Change change;
    change.put(path, content);
    change.summary = summary;
    change.trailers = {{"Gigafab-Op", "test"}};
    return change;
  };
}

gitstore::Store::Operation remove_op(std::string path) {
  return [=](const core::Snapshot&) -> core::Result<core::Change> {
    core::Change change;
    change.remove(path);
    change.summary = "remove " + path;
    return change;
  };
}

std::string commit_ok(gitstore::Store& store, const gitstore::Store::Operation& op) {
  auto r = store.transact(op, "tester");
  if (!r) FAIL("transact failed: " << r.error().message);
  return *r;
}

std::optional<std::string> read_at_tip(const gitstore::Store& store, const std::string& path) {
  auto snap = store.snapshot();
  REQUIRE(snap.ok());
  auto content = (*snap)->read(path);
  REQUIRE(content.ok());
  return *content;
}

std::vector<std::string> list_at_tip(const gitstore::Store& store, const std::string& dir) {
  auto snap = store.snapshot();
  REQUIRE(snap.ok());
  auto names = (*snap)->list(dir);
  REQUIRE(names.ok());
  return *names;
}

std::size_t history_size(const gitstore::Store& store) {
  auto h = store.history();
  REQUIRE(h.ok());
  return h->size();
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Forty commits of a 400-byte file each: a store of some size to pack.
void commit_bulk(gitstore::Store& store) {
  for (int i = 0; i < 40; ++i) {
    commit_ok(store, put("bulk/" + std::to_string(i) + ".txt", std::string(400, static_cast<char>('a' + i % 26)) +
                                                                std::to_string(i) + "\n", "bulk"));
  }
}

// Deleted files of the store's objects/pack this process still holds open.
std::size_t open_deleted_packs(const std::string& store_path) {
  gitstore::fd_io::close_now();  // the store's own hold on what it deleted (fd_io::close_later)
  std::size_t count = 0;
  for (const auto& fd : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::string target = fs::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind(store_path + "/objects/pack/", 0) == 0 && contains(target, "(deleted)")) ++count;
  }
  return count;
}

std::size_t count_packs(const std::string& store_path) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(store_path + "/objects/pack")) n += e.path().extension() == ".pack";
  return n;
}

// `count` group commits, each writing g/<prefix><i>.txt: a pack each, none
// merged while the store's maintenance is deferred.
void commit_groups(gitstore::Store& store, int count, const std::string& prefix = "") {
  for (int i = 0; i < count; ++i) {
    const std::string name = prefix + std::to_string(i);
    REQUIRE(store.begin_group().ok());
    REQUIRE(store.transact(put("g/" + name + ".txt", name + "\n"), "tester").ok());
    REQUIRE(store.commit_group("tester").ok());
  }
}

}  // namespace

TEST_CASE("init creates a bare store whose state ref holds the first commit") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  CHECK(store.path() == path);
  CHECK_FALSE(store.fsync());
  CHECK(fs::is_regular_file(path + "/HEAD"));
  CHECK(git_out(path, "rev-parse --is-bare-repository") == "true");
  CHECK(git_out(path, "config gigafab.version") == "2");
  std::string tip = git_out(path, std::string("rev-parse ") + gitstore::k_state_ref);
  CHECK(tip.size() == 40);
  CHECK(git_out(path, "rev-list --count " + tip) == "1");

  auto meta = read_at_tip(store, "meta/store.toml");
  REQUIRE(meta.has_value());
  CHECK(meta->rfind("format = 2\n", 0) == 0);
  CHECK(contains(*meta, "created_at = \""));

  auto history = store.history();
  REQUIRE(history.ok());
  REQUIRE(history->size() == 1);
  CHECK((*history)[0].oid == tip);
  CHECK((*history)[0].summary == "init gigafab store");
  CHECK((*history)[0].trailer("Gigafab-Op") == "init");
  CHECK((*history)[0].trailer("Gigafab-Actor") == "tester");
  CHECK(git_out(path, "log -1 --format=%an " + tip) == "tester");
}

TEST_CASE("open works on a store made by init, also with a trailing slash") {
  TempDir tmp;
  std::string path = tmp / "store";
  { init_store(path); }
  auto opened = gitstore::Store::open(path);
  REQUIRE(opened.ok());
  CHECK(opened->path() == path);
  CHECK_FALSE(opened->fsync());  // read back from the store's config
  CHECK(history_size(*opened) == 1);

  auto with_slash = gitstore::Store::open(path + "/");
  REQUIRE(with_slash.ok());
  CHECK(with_slash->path() == path);
}

TEST_CASE("open refuses anything that is not a gigafab store") {
  TempDir tmp;
  auto expect_not_store = [](const std::string& path) {
    CAPTURE(path);
    auto r = gitstore::Store::open(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::error);
    CHECK(contains(r.error().message, "not a gigafab store"));
    CHECK(contains(r.error().message, path));
  };
  SUBCASE("a missing directory") { expect_not_store(tmp / "missing"); }
  SUBCASE("a plain directory") {
    fs::create_directory(tmp / "plain");
    std::ofstream(tmp / "plain/file.txt") << "hello\n";
    expect_not_store(tmp / "plain");
  }
  SUBCASE("a plain file") {
    std::ofstream(tmp / "file") << "x";
    expect_not_store(tmp / "file");
  }
  SUBCASE("a bare git repository that is not a store") {
    REQUIRE(run(k_git + "init -q --bare '" + (tmp / "bare.git") + "'").status == 0);
    expect_not_store(tmp / "bare.git");
  }
  SUBCASE("a git work tree") {
    REQUIRE(run(k_git + "init -q '" + (tmp / "work") + "'").status == 0);
    expect_not_store(tmp / "work");
  }
  SUBCASE("a store of an unsupported format") {
    std::string path = tmp / "future";
    { init_store(path); }
    REQUIRE(run(git(path) + "config gigafab.version 3").status == 0);
    expect_not_store(path);
    CHECK(contains(gitstore::Store::open(path).error().message, "format 3"));
  }
}

TEST_CASE("init refuses to overwrite an existing repository") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  std::string tip = git_out(path, "rev-parse refs/gigafab/state");

  auto again = gitstore::Store::init(path, gitstore::InitOptions{false}, "tester");
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == core::ErrorCode::conflict);
  CHECK(contains(again.error().message, "already exists"));
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == tip);  // untouched

  REQUIRE(run(k_git + "init -q --bare '" + (tmp / "bare.git") + "'").status == 0);
  auto over_git = gitstore::Store::init(tmp / "bare.git", gitstore::InitOptions{false}, "tester");
  REQUIRE_FALSE(over_git.ok());
  CHECK(over_git.error().code == core::ErrorCode::conflict);
}

TEST_CASE("transact writes one commit whose parent is the previous tip") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  std::string tip0 = git_out(path, "rev-parse refs/gigafab/state");

  std::string c1 = commit_ok(store, put("jobs/ab/j-abcdefgh/job.toml", "id = \"j-abcdefgh\"\n", "first write"));
  CHECK(c1 != tip0);
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == c1);
  CHECK(git_out(path, "rev-parse " + c1 + "^") == tip0);
  CHECK(git_out(path, "rev-list --parents -n 1 " + c1) == c1 + " " + tip0);

  std::string c2 = commit_ok(store, put("other.txt", "two", "second write"));
  CHECK(git_out(path, "rev-parse " + c2 + "^") == c1);
  CHECK(git_out(path, "rev-list --count refs/gigafab/state") == "3");
  CHECK(history_size(store) == 3);

  // The snapshot sees both writes and the untouched meta document.
  CHECK(read_at_tip(store, "jobs/ab/j-abcdefgh/job.toml") == std::optional<std::string>("id = \"j-abcdefgh\"\n"));
  CHECK(read_at_tip(store, "other.txt") == std::optional<std::string>("two"));
  CHECK(read_at_tip(store, "meta/store.toml").has_value());
  CHECK_FALSE(read_at_tip(store, "missing.txt").has_value());
  CHECK_FALSE(read_at_tip(store, "jobs/ab").has_value());  // a directory is not a file

  // Plain git sees the same content and the message with its trailers.
  CHECK(git_out(path, "show refs/gigafab/state:other.txt") == "two");
  CHECK(git_out(path, "log -1 --format=%B refs/gigafab/state") == "second write\n\nGigafab-Op: test");
  CHECK(git_out(path, "log -1 --format=%an refs/gigafab/state") == "tester");

  // Another Store object opened afterwards sees the same tip.
  auto reopened = gitstore::Store::open(path);
  REQUIRE(reopened.ok());
  CHECK(read_at_tip(*reopened, "other.txt") == std::optional<std::string>("two"));
}

TEST_CASE("the writer lock holds the writer's pid, rewritten only when another process took it") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  const std::string lock = path + "/gigafab.lock";
  {
    std::ofstream other(lock, std::ios::trunc);
    other << "1\n";  // as left by another process
  }
  commit_ok(store, put("a.txt", "1"));
  auto content = [&] {
    std::ifstream in(lock);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(content() == std::to_string(getpid()) + "\n");
  struct stat before {};
  REQUIRE(::stat(lock.c_str(), &before) == 0);
  usleep(20'000);
  commit_ok(store, put("a.txt", "2"));
  commit_ok(store, put("a.txt", "3"));
  struct stat after {};
  REQUIRE(::stat(lock.c_str(), &after) == 0);
  // Not written again: a truncate per commit waited for the writeback of the last.
  CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  CHECK(content() == std::to_string(getpid()) + "\n");
}

TEST_CASE("transact writes binary content and overwrites files") {
  TempDir tmp;
  gitstore::Store store = init_store(tmp / "store");
  std::string binary("a\0b\xff\n", 5);
  commit_ok(store, put("bin/data", binary));
  CHECK(read_at_tip(store, "bin/data") == std::optional<std::string>(binary));
  commit_ok(store, put("bin/data", ""));
  CHECK(read_at_tip(store, "bin/data") == std::optional<std::string>(""));
}

TEST_CASE("a snapshot keeps showing the tree it was taken from") {
  TempDir tmp;
  gitstore::Store store = init_store(tmp / "store");
  commit_ok(store, put("f.txt", "old"));
  auto before = store.snapshot();
  REQUIRE(before.ok());
  commit_ok(store, put("f.txt", "new"));
  auto old_content = (*before)->read("f.txt");
  REQUIRE(old_content.ok());
  CHECK(*old_content == std::optional<std::string>("old"));
  CHECK(read_at_tip(store, "f.txt") == std::optional<std::string>("new"));
}

TEST_CASE("list returns the entries directly under a directory") {
  TempDir tmp;
  gitstore::Store store = init_store(tmp / "store");
  commit_ok(store, [](const core::Snapshot&) -> core::Result<core::Change> {
    core::Change change;
    change.put("zeta", "z");
    change.put("alpha/two", "2");
    change.put("alpha/one", "1");
    change.put("alpha/three/deep", "3");
    change.put("mid/x/y", "y");
    change.summary = "several";
    return change;
  });
  CHECK(list_at_tip(store, "") == std::vector<std::string>{"alpha", "meta", "mid", "zeta"});
  CHECK(list_at_tip(store, "alpha") == std::vector<std::string>{"one", "three", "two"});
  CHECK(list_at_tip(store, "alpha/three") == std::vector<std::string>{"deep"});
  CHECK(list_at_tip(store, "mid") == std::vector<std::string>{"x"});
  CHECK(list_at_tip(store, "missing").empty());
  CHECK(list_at_tip(store, "missing/deeper").empty());
  CHECK(list_at_tip(store, "zeta").empty());  // a file is not a directory
}

// Snapshot::list promises bytewise order. Git orders a tree entry as if a
// directory's name ended in '/', so a directory sorts after a sibling that
// extends its name with a byte below '/' ('-', '.').
TEST_CASE("list is sorted bytewise when a directory name prefixes a sibling") {
  TempDir tmp;
  gitstore::Store store = init_store(tmp / "store");
  commit_ok(store, [](const core::Snapshot&) -> core::Result<core::Change> {
    core::Change change;
    change.put("profiles/backend/1.md", "a");
    change.put("profiles/backend-dev/1.md", "b");
    change.put("profiles/backend.md", "c");
    change.summary = "prefixes";
    return change;
  });
  std::vector<std::string> names = list_at_tip(store, "profiles");
  std::string joined;
  for (const auto& name : names) joined += (joined.empty() ? "" : ", ") + name;
  INFO("list(\"profiles\") = [" << joined << "]");
  CHECK(names == std::vector<std::string>{"backend", "backend-dev", "backend.md"});
  CHECK(std::is_sorted(names.begin(), names.end()));
}

TEST_CASE("trees are written in git's order, byte for byte what git writes") {
  // The store writes tree objects itself: a tree's name sorts as if it ended
  // in '/', so "a.b" < "a" (a tree) < "a0", and blobs follow plain bytes.
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_ok(store, [](const core::Snapshot&) -> core::Result<core::Change> {
    core::Change change;
    for (const char* name : {"t/a.b", "t/a/c", "t/a-", "t/a0", "t/ab", "t/b", "t/a/b/c", "t/A", "t/\xc3\xa9"}) {
      change.put(name, std::string("content of ") + name + "\n");
    }
    change.summary = "order";
    return change;
  });
  commit_ok(store, remove_op("t/a-"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
  // git mktree re-sorts what ls-tree prints and writes the tree its own way.
  for (const char* tree : {"refs/gigafab/state:t", "refs/gigafab/state:t/a", "refs/gigafab/state^{tree}"}) {
    std::string ours = git_out(path, std::string("rev-parse ") + tree);
    std::string theirs = git_out(path, std::string("ls-tree ") + tree + " | " + git(path) + "mktree");
    CAPTURE(tree);
    CHECK(ours == theirs);
  }
  CHECK(git_out(path, "-c core.quotePath=false ls-tree --name-only refs/gigafab/state:t") == "A\na.b\na\na0\nab\nb\n\xc3\xa9");
}

TEST_CASE("deleting the only file of a directory makes the directory vanish") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_ok(store, put("index/queued/default/2-0000000000001-j-aaaaaaaa", "q"));
  commit_ok(store, put("keep/a", "a"));
  commit_ok(store, put("keep/b", "b"));
  REQUIRE(list_at_tip(store, "") == std::vector<std::string>{"index", "keep", "meta"});

  commit_ok(store, remove_op("index/queued/default/2-0000000000001-j-aaaaaaaa"));
  CHECK(list_at_tip(store, "") == std::vector<std::string>{"keep", "meta"});
  CHECK(list_at_tip(store, "index").empty());
  CHECK(git_out(path, "ls-tree --name-only refs/gigafab/state") == "keep\nmeta");

  // Removing one of two files keeps the directory.
  commit_ok(store, remove_op("keep/a"));
  CHECK(list_at_tip(store, "keep") == std::vector<std::string>{"b"});
  CHECK_FALSE(read_at_tip(store, "keep/a").has_value());

  // Removing a file that does not exist still commits, and changes nothing else.
  std::string tree_before = git_out(path, "rev-parse refs/gigafab/state^{tree}");
  commit_ok(store, remove_op("never/was/here"));
  CHECK(git_out(path, "rev-parse refs/gigafab/state^{tree}") == tree_before);
}

TEST_CASE("an op that fails leaves the tip unchanged and its error is returned as is") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_ok(store, put("a", "1"));
  std::string tip = git_out(path, "rev-parse refs/gigafab/state");
  std::string objects_before = git_out(path, "count-objects");

  int calls = 0;
  auto r = store.transact(
      [&](const core::Snapshot&) -> core::Result<core::Change> {
        ++calls;
        return core::make_error(core::ErrorCode::fenced, "claim: job j-aaaaaaaa is fenced (epoch 2 < 3)");
      },
      "tester");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::fenced);
  CHECK(r.error().message == "claim: job j-aaaaaaaa is fenced (epoch 2 < 3)");
  CHECK(calls == 1);
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == tip);
  CHECK(git_out(path, "count-objects") == objects_before);  // not even dangling objects
  CHECK(history_size(store) == 2);
}

TEST_CASE("an empty change writes nothing and returns the current tip") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  std::string tip = git_out(path, "rev-parse refs/gigafab/state");
  int calls = 0;
  auto r = store.transact(
      [&](const core::Snapshot& snap) -> core::Result<core::Change> {
        ++calls;
        auto meta = snap.read("meta/store.toml");
        REQUIRE(meta.ok());
        CHECK(meta->has_value());
        core::Change change;
        change.summary = "nothing to do";
        return change;
      },
      "tester");
  REQUIRE(r.ok());
  CHECK(*r == tip);
  CHECK(calls == 1);
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == tip);
  CHECK(history_size(store) == 1);
}

TEST_CASE("history is newest first with summaries and trailers parsed") {
  TempDir tmp;
  gitstore::Store store = init_store(tmp / "store");
  core::Millis before = core::now_millis();
  for (int i = 1; i <= 3; ++i) {
    commit_ok(store, [i](const core::Snapshot&) -> core::Result<core::Change> {
      core::Change change;
      change.put("n.txt", std::to_string(i));
      change.summary = "submit j-aaaaaaa" + std::string(1, static_cast<char>('a' + i)) + ": job " + std::to_string(i);
      change.trailers = {{"Gigafab-Op", "submit"},
                         {"Gigafab-Job", "j-aaaaaaa" + std::string(1, static_cast<char>('a' + i))},
                         {"Gigafab-Epoch", std::to_string(i)},
                         {"Gigafab-Actor", "alice"}};
      return change;
    });
  }
  auto history = store.history();
  REQUIRE(history.ok());
  REQUIRE(history->size() == 4);
  CHECK((*history)[0].summary == "submit j-aaaaaaad: job 3");
  CHECK((*history)[1].summary == "submit j-aaaaaaac: job 2");
  CHECK((*history)[2].summary == "submit j-aaaaaaab: job 1");
  CHECK((*history)[3].summary == "init gigafab store");
  const gitstore::CommitInfo& newest = (*history)[0];
  CHECK(newest.trailer("Gigafab-Op") == "submit");
  CHECK(newest.trailer("Gigafab-Job") == "j-aaaaaaad");
  CHECK(newest.trailer("Gigafab-Epoch") == "3");
  CHECK(newest.trailer("Gigafab-Actor") == "alice");
  CHECK(newest.trailer("Gigafab-Factory") == "");
  CHECK(newest.trailers.size() == 4);
  CHECK(newest.trailers[0] == core::Trailer{"Gigafab-Op", "submit"});
  CHECK(newest.oid == git_out(store.path(), "rev-parse refs/gigafab/state"));
  CHECK((*history)[1].oid == git_out(store.path(), "rev-parse refs/gigafab/state~1"));
  // Commit times have one-second resolution.
  CHECK(newest.time >= before / 1000 * 1000);
  CHECK(newest.time <= core::now_millis());
  CHECK(newest.time % 1000 == 0);

  auto limited = store.history(2);
  REQUIRE(limited.ok());
  REQUIRE(limited->size() == 2);
  CHECK((*limited)[0].oid == newest.oid);
  CHECK((*limited)[1].oid == (*history)[1].oid);
}

TEST_CASE("a ref moved by an outside writer makes transact re-run the op on the new tip") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  std::string tip0 = git_out(path, "rev-parse refs/gigafab/state");
  std::string outside_commit;

  int calls = 0;
  std::vector<bool> saw_outside;
  auto op = [&](const core::Snapshot& snap) -> core::Result<core::Change> {
    ++calls;
    if (calls == 1) {
      // An outside writer (another host, a push) commits on top of the tip
      // we were given and moves the ref, CAS-style, with plain git.
      RunResult blob = run("printf 'outside\\n' | " + git(path) + "hash-object -w --stdin");
      REQUIRE(blob.status == 0);
      RunResult tree = run("{ " + git(path) + "ls-tree " + tip0 + "; printf '100644 blob %s\\toutside.txt\\n' " +
                           blob.out + "; } | " + git(path) + "mktree");
      REQUIRE(tree.status == 0);
      outside_commit = git_out(path, "commit-tree --no-gpg-sign " + tree.out + " -p " + tip0 +
                                         " -m 'outside write' -m 'Gigafab-Op: outside'");
      REQUIRE(run(git(path) + "update-ref refs/gigafab/state " + outside_commit + " " + tip0).status == 0);
    }
    auto seen = snap.read("outside.txt");
    REQUIRE(seen.ok());
    saw_outside.push_back(seen->has_value());
    core::Change change;
    change.put("mine.txt", "mine\n");
    change.summary = "my write";
    change.trailers = {{"Gigafab-Op", "mine"}};
    return change;
  };
  auto r = store.transact(op, "tester");
  REQUIRE(r.ok());
  CHECK(calls == 2);
  CHECK(saw_outside == std::vector<bool>{false, true});

  std::string mine = *r;
  REQUIRE(outside_commit.size() == 40);
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == mine);
  // One linear chain: mine -> outside -> init, no merges, nothing lost.
  CHECK(git_out(path, "rev-list --parents refs/gigafab/state") ==
        mine + " " + outside_commit + "\n" + outside_commit + " " + tip0 + "\n" + tip0);
  CHECK(git_out(path, "rev-list --merges refs/gigafab/state").empty());
  CHECK(read_at_tip(store, "outside.txt") == std::optional<std::string>("outside\n"));
  CHECK(read_at_tip(store, "mine.txt") == std::optional<std::string>("mine\n"));

  auto history = store.history();
  REQUIRE(history.ok());
  REQUIRE(history->size() == 3);
  CHECK((*history)[0].oid == mine);
  CHECK((*history)[0].trailer("Gigafab-Op") == "mine");
  CHECK((*history)[1].oid == outside_commit);
  CHECK((*history)[1].summary == "outside write");
  CHECK((*history)[1].trailer("Gigafab-Op") == "outside");
  CHECK((*history)[2].oid == tip0);
}

TEST_CASE("a stale ref lock left by a dead process is removed by the next transact") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  std::string tip = git_out(path, "rev-parse refs/gigafab/state");
  std::string lock = path + "/refs/gigafab/state.lock";
  std::ofstream(lock) << "0000000000000000000000000000000000000000\n";
  REQUIRE(fs::exists(lock));
  struct timeval old_times[2];
  ::gettimeofday(&old_times[0], nullptr);
  old_times[0].tv_sec -= 60;
  old_times[1] = old_times[0];
  REQUIRE(::utimes(lock.c_str(), old_times) == 0);

  std::string commit;
  {
    QuietStderr quiet;
    auto r = store.transact(put("after-crash.txt", "ok"), "tester");
    REQUIRE(r.ok());
    commit = *r;
  }
  CHECK_FALSE(fs::exists(lock));
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == commit);
  CHECK(git_out(path, "rev-parse " + commit + "^") == tip);
  CHECK(read_at_tip(store, "after-crash.txt") == std::optional<std::string>("ok"));
  std::string log = read_file(path + "/gigafab.log");
  CHECK(contains(log, "removed stale lock"));
  CHECK(contains(log, lock));
}

TEST_CASE("locate returns an explicit path and otherwise finds .gigafab walking up") {
  auto explicit_path = gitstore::Store::locate(std::string("/some/where"));
  REQUIRE(explicit_path.ok());
  CHECK(*explicit_path == "/some/where");

  TempDir tmp;
  fs::create_directories(tmp / ".gigafab");
  fs::create_directories(tmp / "a/b/c");
  std::error_code ec;
  fs::path saved = fs::current_path();
  fs::current_path(tmp / "a/b/c");
  auto found = gitstore::Store::locate(std::nullopt);
  auto found_empty = gitstore::Store::locate(std::string());
  fs::current_path(saved, ec);
  REQUIRE(found.ok());
  CHECK(fs::equivalent(*found, tmp / ".gigafab"));
  REQUIRE(found_empty.ok());
  CHECK(fs::equivalent(*found_empty, tmp / ".gigafab"));
}

TEST_CASE("group commit: operations see each other, land as one commit, and history lists each") {
  TempDir dir;
  auto store = init_store(dir / "s");
  std::string before = git_out(dir / "s", "rev-parse refs/gigafab/state");
  auto opened = store.begin_group();
  REQUIRE(opened.ok());
  REQUIRE(*opened);
  CHECK(store.in_group());
  REQUIRE(store.transact(put("a.toml", "1", "first"), "tester").ok());
  // The second operation reads what the first wrote.
  auto second = store.transact(
      [](const core::Snapshot& snap) -> core::Result<core::Change> {
        auto a = snap.read("a.toml");
        REQUIRE(a.ok());
        REQUIRE(a->has_value());
        core::Change change;
        change.put("b.toml", **a + "+2");
        change.summary = "second";
        change.trailers = {{"Gigafab-Op", "test"}, {"Gigafab-Job", "j-b"}};
        return change;
      },
      "tester");
  REQUIRE(second.ok());
  // A failing operation leaves no trace.
  auto failing = store.transact(
      [](const core::Snapshot&) -> core::Result<core::Change> { return core::make_error(core::ErrorCode::conflict, "no"); },
      "tester");
  CHECK_FALSE(failing.ok());
  // Nothing is written before commit_group; the group's view has both.
  CHECK(git_out(dir / "s", "rev-parse refs/gigafab/state") == before);
  auto view = store.snapshot();
  REQUIRE(view.ok());
  CHECK((*view)->read("b.toml")->value() == "1+2");
  REQUIRE(store.commit_group("tester").ok());
  CHECK_FALSE(store.in_group());
  CHECK(git_out(dir / "s", "rev-list --count " + before + "..refs/gigafab/state") == "1");
  CHECK(git_out(dir / "s", "show refs/gigafab/state:b.toml") == "1+2");
  CHECK(git_out(dir / "s", "log -1 --format=%s refs/gigafab/state") == "group: 2 operations");
  CHECK(git_out(dir / "s", "log -1 --format='%(trailers:key=Gigafab-Op,valueonly)' refs/gigafab/state") == "group");
  auto history = store.history();
  REQUIRE(history.ok());
  REQUIRE(history->size() >= 3);
  CHECK((*history)[0].summary == "second");
  CHECK((*history)[0].trailer("Gigafab-Job") == "j-b");
  CHECK((*history)[1].summary == "first");
  CHECK((*history)[1].trailer("Gigafab-Op") == "test");
  CHECK((*history)[0].oid == (*history)[1].oid);
  auto limited = store.history(1);
  REQUIRE(limited.ok());
  CHECK(limited->size() == 1);
  CHECK(run(k_git + "--git-dir '" + (dir / "s") + "' fsck --strict").status == 0);
}

TEST_CASE("group commit: one operation is an ordinary commit; an empty group writes nothing") {
  TempDir dir;
  auto store = init_store(dir / "s");
  std::string before = git_out(dir / "s", "rev-parse refs/gigafab/state");
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.commit_group("tester").ok());
  CHECK(git_out(dir / "s", "rev-parse refs/gigafab/state") == before);
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("a.toml", "1", "only"), "tester").ok());
  REQUIRE(store.commit_group("tester").ok());
  CHECK(git_out(dir / "s", "log -1 --format=%B refs/gigafab/state") == "only\n\nGigafab-Op: test");
}

TEST_CASE("group commit: a ref moved by another writer loses the group, which writes nothing") {
  TempDir dir;
  auto store = init_store(dir / "s");
  auto other = gitstore::Store::open(dir / "s");
  REQUIRE(other.ok());
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("mine.toml", "1"), "tester").ok());
  REQUIRE(other->transact(put("theirs.toml", "2"), "other").ok());
  std::string theirs = git_out(dir / "s", "rev-parse refs/gigafab/state");
  auto committed = store.commit_group("tester");
  REQUIRE_FALSE(committed.ok());
  CHECK(committed.error().reason == "group_lost");
  CHECK_FALSE(store.in_group());
  CHECK(git_out(dir / "s", "rev-parse refs/gigafab/state") == theirs);
  CHECK(run(git(dir / "s") + "cat-file -e refs/gigafab/state:mine.toml").status != 0);
  // The group runs again on the new tip and wins.
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("mine.toml", "1"), "tester").ok());
  REQUIRE(store.commit_group("tester").ok());
  CHECK(git_out(dir / "s", "show refs/gigafab/state:theirs.toml") == "2");
  CHECK(git_out(dir / "s", "show refs/gigafab/state:mine.toml") == "1");
}

TEST_CASE("pack merges never take in the gc'd pack: the store asks for a background gc instead") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  // A packed store of some size, then small commits until it has about doubled.
  commit_bulk(store);
  REQUIRE(store.gc().ok());
  auto pack_files = [&] {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path + "/objects/pack")) {
      if (e.path().extension() == ".pack") out.push_back(e.path().string());
    }
    return out;
  };
  REQUIRE(pack_files().size() == 1);
  std::string packed = pack_files().front();
  // The gc ran long ago: nothing holds the next one back (see the next test).
  const std::string stamp = path + "/gigafab-gc.stamp";
  REQUIRE(fs::exists(stamp));
  fs::last_write_time(stamp, fs::file_time_type::clock::now() - std::chrono::hours(1));

  int requests = 0;
  gitstore::set_background_gc([&](const std::string& store_path) {
    CHECK(store_path == path);
    ++requests;
  });
  std::size_t most_packs = 0;
  for (int i = 0; i < 200 && requests == 0; ++i) {
    commit_ok(store, put("more/" + std::to_string(i) + ".txt", "x" + std::to_string(i * 7919) + "\n", "more"));
    most_packs = std::max(most_packs, pack_files().size());
    CHECK(fs::exists(packed));  // never merged inside a write
  }
  gitstore::set_background_gc(nullptr);
  CHECK(requests == 1);
  CHECK(most_packs <= 9);
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);

  // The gc the store asked for leaves one pack with everything.
  auto stats = store.gc(gitstore::Store::GcOptions{true});
  REQUIRE(stats.ok());
  CHECK_FALSE(stats->skipped);
  CHECK(pack_files().size() == 1);
  CHECK(read_at_tip(store, "bulk/3.txt").has_value());
}

TEST_CASE("a long-running store lets go of the packs its merges and gcs delete") {
  // libgit2 keeps every pack it has loaded; without the store replacing its
  // object database, each deleted pack stays open (its disk space never
  // returns) and every lookup of a new object walks all of them again.
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  std::size_t worst = 0;
  for (int i = 0; i < 120; ++i) {
    commit_ok(store, put("jobs/" + std::to_string(i % 7) + ".txt", "rev " + std::to_string(i) + "\n"));
    // Reads open every pack the lookups go through.
    for (int j = 0; j <= i % 7; ++j) CHECK(read_at_tip(store, "jobs/" + std::to_string(j) + ".txt").has_value());
    worst = std::max(worst, open_deleted_packs(path));
    if (i == 60) REQUIRE(store.gc().ok());
  }
  // It lets go of them a few merges, or a second, after they went (a new
  // object database every merge cost a busy server 4% of its CPU).
  CHECK(worst > 0);
  CHECK(worst <= 30);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  commit_ok(store, put("jobs/late.txt", "late\n"));
  CHECK(read_at_tip(store, "jobs/3.txt") == "rev 115\n");
  CHECK(open_deleted_packs(path) == 0);
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("a store of format 1 (flat queue index) is upgraded when opened, in one commit") {
  TempDir tmp;
  std::string path = tmp / "store";
  std::vector<std::string> ids;
  {
    gitstore::Store store = init_store(path);
    // Jobs of two priorities, then the index rewritten as format 1 kept it.
    commit_ok(store, [&](const core::Snapshot& snap) -> core::Result<core::Change> {
      core::Change all;
      for (int i = 0; i < 6; ++i) {
        core::OverlaySnapshot view(snap, all);
        core::SubmitRequest request;
        request.manifest.title = "job " + std::to_string(i);
        request.manifest.body = "# job\n";
        request.manifest.priority = i == 4 ? core::Priority::high : core::Priority::normal;
        request.product = "default";
        request.actor = "tester";
        auto r = core::submit(view, request, 1700000000000 + i, 1000 + static_cast<std::uint64_t>(i));
        if (!r) return r.error();
        ids.push_back(r->job_id);
        for (auto& [p, c] : r->change.writes) all.writes[p] = std::move(c);
      }
      all.summary = "load";
      return all;
    });
    commit_ok(store, [](const core::Snapshot& snap) -> core::Result<core::Change> {
      core::Change flat;
      std::string dir = core::queue_index::capset_dir("default", "_any");
      auto buckets = core::queue_index::buckets(snap, dir);
      if (!buckets) return buckets.error();
      for (const auto& bucket : *buckets) {
        auto names = snap.list(bucket.path);
        if (!names) return names.error();
        for (const auto& name : *names) {
          flat.remove(bucket.path + "/" + name);
          flat.put(dir + "/" + name, *snap.read(bucket.path + "/" + name).value());
        }
      }
      std::string meta = *snap.read(core::layout::k_meta).value();
      flat.put(std::string(core::layout::k_meta), "format = 1\n" + meta.substr(meta.find('\n') + 1));
      flat.summary = "as format 1 wrote it";
      return flat;
    });
  }
  REQUIRE(run(git(path) + "config gigafab.version 1").status == 0);
  CHECK(git_out(path, "ls-tree --name-only refs/gigafab/state:index/queued/default/_any").find('@') == std::string::npos);
  std::string before = git_out(path, "rev-parse refs/gigafab/state");

  auto upgraded = gitstore::Store::open(path);
  REQUIRE(upgraded.ok());
  CHECK(git_out(path, "config gigafab.version") == "2");
  CHECK(git_out(path, "rev-parse refs/gigafab/state^") == before);
  CHECK(git_out(path, "log -1 --format=%s refs/gigafab/state") == "upgrade: store format 1 -> 2 (queue index in buckets)");
  CHECK(read_at_tip(*upgraded, "meta/store.toml")->rfind("format = 2\n", 0) == 0);
  auto snap = upgraded->snapshot();
  REQUIRE(snap.ok());
  auto entries = core::queue_index::entries(**snap, core::queue_index::capset_dir("default", "_any"));
  REQUIRE(entries.ok());
  CHECK(entries->size() == 6);
  CHECK(std::is_sorted(entries->begin(), entries->end()));
  // The claim order survives: the high-priority job first, then the oldest.
  for (const std::string& expected : {ids[4], ids[0], ids[1]}) {
    std::string claimed;
    commit_ok(*upgraded, [&](const core::Snapshot& s) -> core::Result<core::Change> {
      core::ClaimRequest request{"default", "f1", std::vector<std::string>{}, 600, "tester", {}};
      auto t = core::claim(s, request, 1700000001000);
      if (!t) return t.error();
      claimed = t->job.id;
      return std::move(t->change);
    });
    CHECK(claimed == expected);
  }
  // Opening it again changes nothing.
  std::string tip = git_out(path, "rev-parse refs/gigafab/state");
  REQUIRE(gitstore::Store::open(path).ok());
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == tip);
}

TEST_CASE("files a killed writer or a killed gc's git left in objects/pack go with the next write, and it is logged") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_ok(store, put("a.txt", "a\n"));
  const std::string pack_dir = path + "/objects/pack";
  // Half-written files: ours, and git pack-objects' (a gc killed while git wrote).
  const std::vector<std::string> left = {"tmp_gigafab_AbC123", "tmp_pack_XyZ789", "tmp_idx_Qw3rty",
                                         "pack-0123456789012345678901234567890123456789.pack"};
  for (const auto& name : left) std::ofstream(pack_dir + "/" + name) << "half a pack";
  commit_ok(store, put("b.txt", "b\n"));
  for (const auto& name : left) {
    CAPTURE(name);
    CHECK_FALSE(fs::exists(pack_dir + "/" + name));
    CHECK(contains(read_file(path + "/gigafab.log"), name + ", left by a process that died writing it"));
  }
  CHECK(read_at_tip(store, "a.txt") == std::optional<std::string>("a\n"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("a store keeping spare files writes its packs into them; a live process's spares are not garbage, a dead one's are") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  const std::string pack_dir = path + "/objects/pack";
  const std::string mine = "tmp_gigafab_spare_" + std::to_string(::getpid()) + "_";
  auto spares = [&] {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(pack_dir)) {
      std::string name = e.path().filename().string();
      if (name.rfind(mine, 0) == 0) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  auto wait_for_spares = [&](std::size_t n) {
    for (int i = 0; i < 500 && spares().size() < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return spares();
  };
  CHECK(spares().empty());  // only a writer that asks for them has spares
  store.keep_spare_files();
  const auto ready = wait_for_spares(4);
  REQUIRE(ready.size() == 4);
  CHECK(gitstore::spare_files::is_live_spare(ready.front()));

  // A commit's pack and index are two of them, renamed into place (the
  // second perhaps one made just after the first was taken); new ones are
  // made meanwhile.
  commit_ok(store, put("a.txt", "a\n"));
  std::size_t gone = 0;
  for (const auto& name : ready) gone += fs::exists(pack_dir + "/" + name) ? 0 : 1;
  CHECK(gone >= 1);
  CHECK(gone <= 2);
  CHECK(wait_for_spares(4).size() == 4);
  CHECK(read_at_tip(store, "a.txt") == std::optional<std::string>("a\n"));

  // A spare whose process is gone is garbage like any half-written file.
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = "tmp_gigafab_spare_" + std::to_string(child) + "_Zz9Yy8";
  std::ofstream(pack_dir + "/" + dead) << "half a pack";
  CHECK_FALSE(gitstore::spare_files::is_live_spare(dead));
  CHECK_FALSE(gitstore::spare_files::is_live_spare("tmp_gigafab_AbC123"));
  CHECK_FALSE(gitstore::spare_files::is_live_spare("tmp_gigafab_spare_x_AbC123"));
  const auto live = wait_for_spares(4);
  commit_ok(store, put("b.txt", "b\n"));
  CHECK_FALSE(fs::exists(pack_dir + "/" + dead));
  CHECK(contains(read_file(path + "/gigafab.log"), dead + ", left by a process that died writing it"));
  std::size_t kept = 0;
  for (const auto& name : live) kept += fs::exists(pack_dir + "/" + name) ? 1 : 0;
  CHECK(kept >= 2);  // all but the (one or two) this commit wrote into
  CHECK_FALSE(contains(read_file(path + "/gigafab.log"), mine));  // none taken for garbage
  CHECK(read_at_tip(store, "b.txt") == std::optional<std::string>("b\n"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("gc packs with git pack-objects when there is a git, and with libgit2 when GIGAFAB_GIT is none") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  for (int i = 0; i < 20; ++i) commit_ok(store, put("jobs/" + std::to_string(i % 4) + "/doc.txt", "version " + std::to_string(i) + "\n"));
  auto with_git = store.gc();
  REQUIRE(with_git.ok());
  CHECK(with_git->packer == "git pack-objects");
  CHECK(with_git->transitions == 21);
  CHECK(git_out(path, "count-objects -v | grep '^packs:'") == "packs: 1");
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);

  ::setenv("GIGAFAB_GIT", "none", 1);
  auto without = store.gc();
  ::unsetenv("GIGAFAB_GIT");
  REQUIRE(without.ok());
  CHECK(without->packer == "libgit2");
  CHECK(without->objects == with_git->objects);
  CHECK(read_at_tip(store, "jobs/3/doc.txt") == std::optional<std::string>("version 19\n"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("a background gc waits ten times the last gc's duration after it; merges keep the packs few meanwhile") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_bulk(store);
  REQUIRE(store.gc().ok());
  const std::string stamp = path + "/gigafab-gc.stamp";
  REQUIRE(fs::exists(stamp));
  // The gc that just ended took 100 s (so say): none for the next 1,000 s.
  std::ofstream(stamp) << "100000\n";
  int requests = 0;
  gitstore::set_background_gc([&](const std::string&) { ++requests; });
  std::size_t most_packs = 0;
  for (int i = 0; i < 200; ++i) {
    commit_ok(store, put("more/" + std::to_string(i) + ".txt", "x" + std::to_string(i * 7919) + "\n", "more"));
    most_packs = std::max(most_packs, count_packs(path));
  }
  CHECK(requests == 0);
  CHECK(most_packs <= 9);
  // A background gc started meanwhile (two writers asked before either's gc
  // took the lock) finds the last one recent and does nothing.
  const std::size_t packs_before = count_packs(path);
  REQUIRE(packs_before > 1);
  auto late = store.gc(gitstore::Store::GcOptions{true});
  REQUIRE(late.ok());
  CHECK(late->skipped);
  CHECK(count_packs(path) == packs_before);
  // 1,001 s later: the next write that finds the store doubled asks for one.
  fs::last_write_time(stamp, fs::file_time_type::clock::now() - std::chrono::seconds(1001));
  for (int i = 0; i < 200 && requests == 0; ++i) {
    commit_ok(store, put("late/" + std::to_string(i) + ".txt", "y" + std::to_string(i * 7919) + "\n", "late"));
  }
  gitstore::set_background_gc(nullptr);
  CHECK(requests == 1);
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

namespace {

// `n` commits of a 300-byte file each under first/, 26 contents in turn.
void commit_first_files(gitstore::Store& store, int n) {
  for (int i = 0; i < n; ++i) {
    commit_ok(store, put("first/" + std::to_string(i) + ".txt", std::string(300, static_cast<char>('a' + i % 26)) + "\n"));
  }
}

// Behind a gc that ended just now and took 100 s (so say), when none may
// start: `n` commits under next/, and the most packs the store had meanwhile.
std::size_t most_packs_behind_recent_gc(gitstore::Store& store, const std::string& path, int n) {
  std::ofstream(path + "/gigafab-gc.stamp") << "100000\n";
  int requests = 0;
  gitstore::set_background_gc([&](const std::string&) { ++requests; });
  std::size_t most_packs = 0;
  for (int i = 0; i < n; ++i) {
    commit_ok(store, put("next/" + std::to_string(i) + ".txt", "n" + std::to_string(i * 7919) + "\n", "next"));
    most_packs = std::max(most_packs, count_packs(path));
  }
  gitstore::set_background_gc(nullptr);
  CHECK(requests == 0);
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
  CHECK(read_at_tip(store, "first/7.txt").has_value());
  CHECK(read_at_tip(store, "next/" + std::to_string(n - 1) + ".txt").has_value());
  return most_packs;
}

}  // namespace

TEST_CASE("objects both in a gc's pack and in ours do not stop the merges while no gc may run") {
  // A gc packs the commits published while it walked the history, which
  // keep their own packs: merges that met such an object beside a pack with
  // deltas refused, and behind a recent gc nothing took their place (30
  // packs in serve's e2e test under CI).
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_first_files(store, 60);
  // Everything once more in a pack with deltas, beside ours (what a gc
  // leaves when all it packs was published during its walk).
  git_out(path, "-c repack.writeBitmaps=false repack -a -q");
  std::string all_ids;
  for (const auto& e : fs::directory_iterator(path + "/objects/pack")) {
    if (e.path().extension() == ".idx") all_ids += run("git show-index <" + e.path().string()).out + "\n";
  }
  const std::string dups = run("printf '%s' '" + all_ids + "' | awk 'NF {print $2}' | sort | uniq -d | wc -l").out;
  REQUIRE(std::stoi(dups) > 100);
  CHECK(most_packs_behind_recent_gc(store, path, 150) <= 9);  // 141 before
}

TEST_CASE("packs with deltas that share objects are left to a gc, and ours merge around them") {
  // Packs of gcs (older ones kept: a write touched them while a newer one
  // ran) cannot merge with each other; the merges that would take in two of
  // them merge ours alone.
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_first_files(store, 30);
  git_out(path, "-c repack.writeBitmaps=false repack -a -d -q");
  for (int i = 0; i < 2; ++i) {  // two more packs with deltas, the ones before kept
    commit_ok(store, put("between/" + std::to_string(i) + ".txt", "between\n"));
    git_out(path, "-c repack.writeBitmaps=false repack -a -q");
  }
  REQUIRE(count_packs(path) == 5);
  CHECK(most_packs_behind_recent_gc(store, path, 150) <= 10);  // 140 before
}

TEST_CASE("while a gc runs, merges take in only the packs written since it started, so the packs stay few") {
  // A gc can take minutes on a big store (nice 19); packs piled up behind it
  // meanwhile (160 after a 16-client HTTP bench), and every lookup of a new
  // object and the first merge after it walked them all.
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  for (int i = 0; i < 6; ++i) commit_ok(store, put("old/" + std::to_string(i) + ".txt", "old " + std::to_string(i) + "\n"));
  std::vector<std::string> before;
  for (const auto& e : fs::directory_iterator(path + "/objects/pack")) {
    if (e.path().extension() == ".pack") before.push_back(e.path().string());
  }
  REQUIRE(before.size() >= 2);
  // A gc starts: it holds gigafab-gc.lock, touched when it took it; the
  // packs above are the ones it may be reading.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  int gc_fd = ::open((path + "/gigafab-gc.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(gc_fd >= 0);
  REQUIRE(::flock(gc_fd, LOCK_EX) == 0);
  REQUIRE(::futimens(gc_fd, nullptr) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  gitstore::set_background_gc([&](const std::string&) { FAIL("a gc is running"); });
  auto pack_names = [&] {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(path + "/objects/pack")) {
      if (e.path().extension() == ".pack") names.insert(e.path().filename().string());
    }
    return names;
  };
  std::size_t most_packs = 0, merges = 0;
  std::set<std::string> packs = pack_names();
  for (int i = 0; i < 120; ++i) {
    commit_ok(store, put("new/" + std::to_string(i) + ".txt", "new " + std::to_string(i * 7919) + "\n"));
    const std::set<std::string> now = pack_names();
    if (!std::includes(now.begin(), now.end(), packs.begin(), packs.end())) ++merges;  // a pack went
    packs = now;
    most_packs = std::max(most_packs, now.size());
    for (const auto& pack : before) REQUIRE(fs::exists(pack));  // never under the gc's feet
  }
  gitstore::set_background_gc(nullptr);
  CHECK(most_packs <= before.size() + 9);
  // A merge every few commits, not after each one (each took in a merged pack again).
  CHECK(merges <= 120 / 4);
  // A temporary file of the gc's git is not garbage while it runs.
  std::ofstream(path + "/objects/pack/tmp_pack_abcdef") << "being written";
  commit_ok(store, put("new/last.txt", "last\n"));
  CHECK(fs::exists(path + "/objects/pack/tmp_pack_abcdef"));
  ::close(gc_fd);
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
  CHECK(read_at_tip(store, "new/7.txt") == "new " + std::to_string(7 * 7919) + "\n");
}

TEST_CASE("wait_for_gc returns once the gc holding the store's gc lock ends") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  REQUIRE(store.wait_for_gc().ok());  // none runs
  int gc_fd = ::open((path + "/gigafab-gc.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(gc_fd >= 0);
  REQUIRE(::flock(gc_fd, LOCK_EX) == 0);
  std::atomic<bool> returned{false};
  std::thread waiter([&] {
    CHECK(store.wait_for_gc().ok());
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK_FALSE(returned.load());
  ::close(gc_fd);  // the gc ends
  waiter.join();
  CHECK(returned.load());
}

TEST_CASE("a snapshot names an entry's git id without listing its directory; nothing for what is not there") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_ok(store, put("auth/tokens/t1.toml", "secret = 1\n"));
  auto snap = store.snapshot();
  REQUIRE(snap.ok());
  auto id = (*snap)->id_of("", "auth");
  REQUIRE(id.ok());
  CHECK(*id == git_out(path, "rev-parse refs/gigafab/state:auth"));
  auto file = (*snap)->id_of("auth/tokens", "t1.toml");
  REQUIRE(file.ok());
  CHECK(*file == git_out(path, "rev-parse refs/gigafab/state:auth/tokens/t1.toml"));
  for (auto [dir, name] : {std::pair{"", "nope"}, std::pair{"auth/missing", "t1.toml"}, std::pair{"auth", "tokens/t1.toml"}}) {
    auto none = (*snap)->id_of(dir, name);
    REQUIRE(none.ok());
    CHECK(none->empty());
  }
  // A snapshot without ids (in memory) gives none.
  core::MemorySnapshot memory;
  auto no_id = memory.id_of("", "auth");
  REQUIRE(no_id.ok());
  CHECK(no_id->empty());
}

TEST_CASE("a snapshot reads a file in a directory found by its id, as read() of the path does") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_ok(store, put("jobs/ab/j-1/job.toml", "stage = \"queued\"\n"));
  commit_ok(store, put("jobs/ab/j-1/lease.toml", "epoch = 1\n"));
  auto snap = store.snapshot();
  REQUIRE(snap.ok());
  auto dir_id = (*snap)->id_of("jobs/ab", "j-1");
  REQUIRE(dir_id.ok());
  REQUIRE(dir_id->size() == 40);
  for (const char* name : {"job.toml", "lease.toml", "missing.toml"}) {
    auto by_id = (*snap)->read_in("jobs/ab/j-1", *dir_id, name);
    auto by_path = (*snap)->read(std::string("jobs/ab/j-1/") + name);
    REQUIRE(by_id.ok());
    REQUIRE(by_path.ok());
    CHECK(*by_id == *by_path);
  }
  CHECK((*snap)->read_in("jobs/ab/j-1", *dir_id, "job.toml")->value() == "stage = \"queued\"\n");
  // No id (an overlay, memory): the path is read.
  auto no_id = (*snap)->read_in("jobs/ab/j-1", "", "lease.toml");
  REQUIRE(no_id.ok());
  CHECK(no_id->value() == "epoch = 1\n");
  // An id of nothing in the store: an error, not an empty read.
  CHECK_FALSE((*snap)->read_in("jobs/ab/j-1", std::string(40, 'e'), "job.toml").ok());
  core::MemorySnapshot memory(std::map<std::string, std::string>{{"a/b.txt", "x"}});
  CHECK(memory.read_in("a", "", "b.txt")->value() == "x");
}

TEST_CASE("reading a file by its directory's id keeps no directory in libgit2's object cache") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  commit_ok(store, [](const core::Snapshot&) -> core::Result<core::Change> {
    core::Change change;
    for (int i = 0; i < 300; ++i) {
      std::string dir = "jobs/ab/j-" + std::to_string(i);
      change.put(dir + "/job.toml", "n = " + std::to_string(i) + "\n");
      change.put(dir + "/body.md", "# job " + std::to_string(i) + "\n");
      change.put(dir + "/events/1.toml", "e = 1\n");
    }
    change.summary = "300 jobs";
    return change;
  });
  // Read by another handle, as `gigafab list` reads what other processes
  // wrote (the writer's own handle saw the objects as it wrote them).
  auto reader = gitstore::Store::open(path);
  REQUIRE(reader.ok());
  auto snap = reader->snapshot();
  REQUIRE(snap.ok());
  auto entries = (*snap)->list_with_ids("jobs/ab");
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 300);
  ssize_t cached_before = 0, allowed = 0;
  REQUIRE(git_libgit2_opts(GIT_OPT_GET_CACHED_MEMORY, &cached_before, &allowed) == 0);
  for (const auto& [name, id] : *entries) {
    const std::string dir = "jobs/ab/" + name;
    auto doc = (*snap)->read_in(dir, id, "job.toml");
    REQUIRE(doc.ok());
    CHECK(doc->value() == "n = " + name.substr(2) + "\n");
    // A subdirectory, a prefix of a name and a name past the last are no files.
    for (const char* none : {"events", "job", "job.toml.bak", "zzz"}) {
      auto missing = (*snap)->read_in(dir, id, none);
      REQUIRE(missing.ok());
      CHECK_FALSE(missing->has_value());
    }
    CHECK((*snap)->read_in(dir, id, "body.md")->value() == "# job " + name.substr(2) + "\n");
  }
  // A listing reads each of 100,000 directories once: caching them filled
  // the cache with 89 MB nobody read again.
  ssize_t cached_after = 0;
  REQUIRE(git_libgit2_opts(GIT_OPT_GET_CACHED_MEMORY, &cached_after, &allowed) == 0);
  CHECK(cached_after == cached_before);
  // A directory a group wrote, its objects still only in the handle's memory
  // (prepared, not published): the next group's view gives it no id (an
  // overlay), and read_in reads it by its path.
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("jobs/cd/j-new/job.toml", "fresh = true\n"), "tester").ok());
  auto prepared = store.prepare_group("tester");
  REQUIRE(prepared.ok());
  REQUIRE(store.begin_group().ok());
  {
    auto view = store.snapshot();
    REQUIRE(view.ok());
    auto fresh = (*view)->list_with_ids("jobs/cd");
    REQUIRE(fresh.ok());
    REQUIRE(fresh->size() == 1);
    CHECK(fresh->front().second.empty());
    auto read = (*view)->read_in("jobs/cd/j-new", fresh->front().second, "job.toml");
    REQUIRE(read.ok());
    CHECK(read->value() == "fresh = true\n");
  }
  store.abandon_group();
  REQUIRE(store.publish_group(*prepared).ok());
  CHECK(git_out(path, "show refs/gigafab/state:jobs/cd/j-new/job.toml") == "fresh = true");
}

TEST_CASE("a snapshot's visit gives list()'s names in list()'s order, and stops when told") {
  TempDir tmp;
  gitstore::Store store = init_store(tmp / "store");
  // Files only (git's order is bytewise), and a directory whose subtree "a"
  // git sorts after the file "a-b" ("a/" > "a-b") where list() puts it first.
  for (const char* path : {"q/3-x", "q/1-z", "q/2-y", "q/10", "mixed/a-b", "mixed/a/c", "mixed/b"}) {
    commit_ok(store, put(path, "x\n"));
  }
  auto snap = store.snapshot();
  REQUIRE(snap.ok());
  auto visited = [](const core::Snapshot& s, std::string_view dir, std::size_t stop_after) {
    std::vector<std::string> names;
    auto ok = s.visit(dir, [&](std::string_view name) {
      names.emplace_back(name);
      return names.size() < stop_after;
    });
    REQUIRE(ok.ok());
    return names;
  };
  for (const char* dir : {"q", "mixed", "missing"}) {
    CAPTURE(dir);
    CHECK(visited(**snap, dir, 100) == (*snap)->list(dir).value());
  }
  CHECK(visited(**snap, "mixed", 100) == std::vector<std::string>{"a", "a-b", "b"});
  CHECK(visited(**snap, "q", 2) == std::vector<std::string>{"1-z", "10"});
  // Through an overlay: untouched directories walk the base, edited ones the merged listing.
  core::Change change;
  change.put("q/0-new", "y\n");
  change.remove("q/2-y");
  core::OverlaySnapshot overlay(**snap, change);
  CHECK(visited(overlay, "q", 100) == std::vector<std::string>{"0-new", "1-z", "10", "3-x"});
  CHECK(visited(overlay, "mixed", 100) == std::vector<std::string>{"a", "a-b", "b"});
  CHECK(visited(overlay, "q", 1) == std::vector<std::string>{"0-new"});
}

TEST_CASE("group commit with deferred maintenance: packs pile up until maintain() merges them") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  store.defer_maintenance(true);
  commit_groups(store, 12);
  CHECK(count_packs(path) >= 12);  // no merge inside a commit
  REQUIRE(store.maintain().ok());
  CHECK(count_packs(path) <= 8);
  CHECK(store.maintain().ok());  // nothing due: a no-op
  store.defer_maintenance(false);
  for (int i = 0; i < 12; ++i) commit_ok(store, put("h/" + std::to_string(i) + ".txt", std::to_string(i) + "\n"));
  CHECK(count_packs(path) <= 8);
  CHECK(read_at_tip(store, "g/11.txt") == std::optional<std::string>("11\n"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

namespace {

// Object ids that are in more than one pack of the store: a handle that
// loaded a merge's pack finds the objects it holds and writes no copies.
std::string duplicated_objects(const std::string& path) {
  RunResult r = run("cd '" + path + "' && for f in objects/pack/*.idx; do git show-index < \"$f\" || exit 1; done | " +
                    "awk '{print $2}' | sort | uniq -d | wc -l");
  REQUIRE(r.status == 0);
  return r.out;
}

}  // namespace

TEST_CASE("a merge aside runs beside the handle's commits, touches the handle only through with_handle, "
          "and leaves no object in two packs") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  store.defer_maintenance(true);
  std::mutex handle_mutex;  // what a server's fleet_mutex is
  int handed = 0;
  bool writer_lock_free = true;
  bool removed_outside = false;
  auto with_handle = [&](const std::function<void()>& fn) {
    std::lock_guard lock(handle_mutex);
    ++handed;
    // The merge aside never holds the writer lock when it reaches the
    // handle: a publish in flight may be waiting for that lock.
    int fd = ::open((path + "/gigafab.lock").c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) writer_lock_free = false;
    if (fd >= 0) ::close(fd);
    // The merged packs go while the handle is held: the handle loads the
    // merged pack with no moment in which it knows neither.
    const std::size_t before = count_packs(path);
    fn();
    if (count_packs(path) >= before) removed_outside = true;
  };
  commit_groups(store, 12, "a");
  CHECK(count_packs(path) >= 12);
  CHECK(store.maintenance_needed());
  auto merged = store.merge_aside(with_handle);
  REQUIRE(merged.ok());
  CHECK(*merged);
  CHECK(handed == 1);
  CHECK(writer_lock_free);
  CHECK_FALSE(removed_outside);
  CHECK(count_packs(path) <= 8);
  CHECK_FALSE(store.maintenance_needed());
  // The objects of the merged packs, written again: the handle finds them
  // in the merged pack and does not write second copies.
  {
    std::lock_guard lock(handle_mutex);
    REQUIRE(store.begin_group().ok());
    for (int i = 0; i < 12; ++i) {
      const std::string name = "a" + std::to_string(i);
      REQUIRE(store.transact(put("copy/" + name + ".txt", name + "\n"), "tester").ok());
    }
    REQUIRE(store.commit_group("tester").ok());
  }
  CHECK(duplicated_objects(path) == "0");

  // Now with a merger thread merging while the handle commits.
  std::atomic<bool> stop{false};
  std::atomic<int> merges{0};
  std::string failure;
  std::thread merger([&] {
    while (!stop) {
      if (!store.maintenance_needed()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      auto ok = store.merge_aside(with_handle);
      if (!ok || !*ok) {
        failure = ok ? "left to the handle without a gc" : ok.error().message;
        return;
      }
      ++merges;
    }
  });
  constexpr int k_groups = 120;
  for (int i = 0; i < k_groups; ++i) {
    const std::string name = "b" + std::to_string(i);
    std::lock_guard lock(handle_mutex);
    REQUIRE(store.begin_group().ok());
    // Each group rewrites a shared file to a value an earlier group wrote:
    // the object exists on disk, in a pack a merge may have just removed.
    REQUIRE(store.transact(put("shared.txt", std::to_string(i % 3) + "\n"), "tester").ok());
    REQUIRE(store.transact(put("g/" + name + ".txt", name + "\n"), "tester").ok());
    REQUIRE(store.commit_group("tester").ok());
  }
  stop = true;
  merger.join();
  CHECK(failure == "");
  CHECK(merges > 0);
  CHECK(writer_lock_free);
  CHECK_FALSE(removed_outside);
  // Every merge took its packs: none held an object another held too.
  CHECK(duplicated_objects(path) == "0");
  REQUIRE(store.merge_aside(with_handle).ok());
  CHECK(count_packs(path) <= 8);
  CHECK(read_at_tip(store, "g/a0.txt") == std::optional<std::string>("a0\n"));
  CHECK(read_at_tip(store, "g/b119.txt") == std::optional<std::string>("b119\n"));
  CHECK(git_out(path, "ls-tree --name-only refs/gigafab/state g/ | wc -l") == std::to_string(12 + k_groups));
  CHECK(read_at_tip(store, "copy/a0.txt") == std::optional<std::string>("a0\n"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("a merge aside does not wait for the groups in flight: the new object database gets their objects") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  store.defer_maintenance(true);
  std::mutex handle_mutex;  // what a server's fleet_mutex is
  auto with_handle = [&](const std::function<void()>& fn) {
    std::lock_guard lock(handle_mutex);
    fn();
  };
  // A merge removes packs the object database has loaded; the next merge
  // a second later replaces it (forget_removed_packs): that one runs while
  // a group is in flight.
  commit_groups(store, 12, "a");
  for (int i = 0; i < 12; ++i) CHECK(read_at_tip(store, "g/a" + std::to_string(i) + ".txt").has_value());
  REQUIRE(store.maintain().ok());
  CHECK(open_deleted_packs(path) > 0);
  commit_groups(store, 12, "b");

  // A group prepared, not published: its objects are only in memory.
  gitstore::Store::Prepared first;
  {
    std::lock_guard lock(handle_mutex);
    REQUIRE(store.begin_group().ok());
    REQUIRE(store.transact(put("in/flight.txt", "first\n", "first"), "tester").ok());
    auto prepared = store.prepare_group("tester");
    REQUIRE(prepared.ok());
    first = std::move(*prepared);
  }
  REQUIRE(store.groups_in_flight() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));

  // The merge ends while that group is still in flight.
  std::atomic<bool> merged{false};
  core::Result<bool> outcome = core::make_error(core::ErrorCode::error, "not run");
  std::thread merger([&] {
    outcome = store.merge_aside(with_handle);
    merged = true;
  });
  for (int i = 0; i < 500 && !merged; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(merged.load());
  CHECK(store.groups_in_flight() == 1);
  if (!merged) REQUIRE(store.publish_group(first).ok());  // let the merge end, the test has failed
  merger.join();
  REQUIRE(outcome.ok());
  CHECK(*outcome);
  CHECK(count_packs(path) <= 8);

  // The next group builds on the one in flight, reading its objects from
  // the new object database, and both publish.
  gitstore::Store::Prepared second;
  {
    std::lock_guard lock(handle_mutex);
    REQUIRE(store.begin_group().ok());
    {
      auto view = store.snapshot();
      REQUIRE(view.ok());
      auto read = (*view)->read("in/flight.txt");
      REQUIRE(read.ok());
      CHECK(read->value_or("") == "first\n");
    }
    REQUIRE(store.transact(put("in/next.txt", "second\n", "second"), "tester").ok());
    auto prepared = store.prepare_group("tester");
    REQUIRE(prepared.ok());
    second = std::move(*prepared);
  }
  if (merged) REQUIRE(store.publish_group(first).ok());
  REQUIRE(store.publish_group(second).ok());
  CHECK(git_out(path, "log -2 --format=%s refs/gigafab/state") == "second\nfirst");
  auto reopened = gitstore::Store::open(path);
  REQUIRE(reopened.ok());
  CHECK(read_at_tip(*reopened, "in/flight.txt") == std::optional<std::string>("first\n"));
  CHECK(read_at_tip(*reopened, "in/next.txt") == std::optional<std::string>("second\n"));
  CHECK(read_at_tip(*reopened, "g/a0.txt") == std::optional<std::string>("a0\n"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("a merge aside leaves the merges behind a running gc to the handle") {
  TempDir tmp;
  std::string path = tmp / "store";
  gitstore::Store store = init_store(path);
  store.defer_maintenance(true);
  commit_groups(store, 12);
  const std::size_t before = count_packs(path);
  // A gc holds its lock (from now: the packs written since are the ones a
  // merge behind it may take).
  int gc_fd = ::open((path + "/gigafab-gc.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(gc_fd >= 0);
  REQUIRE(::flock(gc_fd, LOCK_EX) == 0);
  int handed = 0;
  auto merged = store.merge_aside([&](const std::function<void()>& fn) {
    ++handed;
    fn();
  });
  REQUIRE(merged.ok());
  CHECK_FALSE(*merged);
  CHECK(handed == 0);
  CHECK(count_packs(path) == before);
  CHECK(store.maintenance_needed());  // still due: maintain() runs it
  ::close(gc_fd);
  REQUIRE(store.maintain().ok());
  CHECK(count_packs(path) <= 8);
}

TEST_CASE("pipelined group commit: the next group builds on a prepared one, and both publish in order") {
  TempDir dir;
  std::string path = dir / "s";
  auto store = init_store(path);
  std::string before = git_out(path, "rev-parse refs/gigafab/state");
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("a.txt", "1", "first"), "tester").ok());
  auto first = store.prepare_group("tester");
  REQUIRE(first.ok());
  REQUIRE_FALSE(first->empty());
  CHECK(store.groups_in_flight() == 1);
  // Not published: the ref has not moved, yet the next group sees a.txt.
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == before);
  REQUIRE(store.begin_group().ok());
  {
    auto view = store.snapshot();
    REQUIRE(view.ok());
    CHECK((*view)->read("a.txt")->value() == "1");
  }
  REQUIRE(store.transact(put("b.txt", "2", "second"), "tester").ok());
  auto second = store.prepare_group("tester");
  REQUIRE(second.ok());
  CHECK(store.groups_in_flight() == 2);
  // The second publishes on another thread: it waits for the first.
  core::Result<void> second_published = core::make_error(core::ErrorCode::error, "not run");
  std::thread publisher([&] { second_published = store.publish_group(*second); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == before);
  REQUIRE(store.publish_group(*first).ok());
  publisher.join();
  REQUIRE(second_published.ok());
  CHECK(store.groups_in_flight() == 0);
  CHECK(git_out(path, "log --format=%s " + before + "..refs/gigafab/state") == "second\nfirst");
  // Both durable in packs: a new handle, and git, read them.
  auto reopened = gitstore::Store::open(path);
  REQUIRE(reopened.ok());
  CHECK(read_at_tip(*reopened, "a.txt") == std::optional<std::string>("1"));
  CHECK(read_at_tip(*reopened, "b.txt") == std::optional<std::string>("2"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
  // The next group starts from the ref again, and the handle still reads.
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("c.txt", "3", "third"), "tester").ok());
  REQUIRE(store.commit_group("tester").ok());
  CHECK(read_at_tip(store, "b.txt") == std::optional<std::string>("2"));
  CHECK(git_out(path, "log -1 --format=%s refs/gigafab/state") == "third");
}

TEST_CASE("pipelined group commit: when a group is lost, those built on it are lost too, and the next starts from the ref") {
  TempDir dir;
  std::string path = dir / "s";
  auto store = init_store(path);
  auto other = gitstore::Store::open(path);
  REQUIRE(other.ok());
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("a.txt", "1", "first"), "tester").ok());
  auto first = store.prepare_group("tester");
  REQUIRE(first.ok());
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("b.txt", "2", "second"), "tester").ok());
  auto second = store.prepare_group("tester");
  REQUIRE(second.ok());
  // A group that changes nothing, its answers read from the two.
  REQUIRE(store.begin_group().ok());
  auto unchanged = store.prepare_group("tester");
  REQUIRE(unchanged.ok());
  CHECK(unchanged->empty());
  // Another writer moves the ref meanwhile.
  REQUIRE(other->transact(put("theirs.txt", "x", "theirs"), "other").ok());
  std::string theirs = git_out(path, "rev-parse refs/gigafab/state");
  auto lost_first = store.publish_group(*first);
  REQUIRE_FALSE(lost_first.ok());
  CHECK(lost_first.error().reason == "group_lost");
  auto lost_second = store.publish_group(*second);
  REQUIRE_FALSE(lost_second.ok());
  CHECK(lost_second.error().reason == "group_lost");
  auto lost_unchanged = store.publish_group(*unchanged);
  REQUIRE_FALSE(lost_unchanged.ok());
  CHECK(lost_unchanged.error().reason == "group_lost");
  CHECK(git_out(path, "rev-parse refs/gigafab/state") == theirs);
  // Run again: on their commit, without the lost groups' files.
  REQUIRE(store.begin_group().ok());
  {
    auto view = store.snapshot();
    REQUIRE(view.ok());
    CHECK((*view)->read("theirs.txt")->value() == "x");
    CHECK_FALSE((*view)->read("a.txt")->has_value());
  }
  REQUIRE(store.transact(put("b.txt", "2", "second again"), "tester").ok());
  REQUIRE(store.commit_group("tester").ok());
  CHECK(git_out(path, "log --format=%s -2 refs/gigafab/state") == "second again\ntheirs");
  CHECK(run(git(path) + "cat-file -e refs/gigafab/state:a.txt").status != 0);
  CHECK(git_out(path, "show refs/gigafab/state:b.txt") == "2");
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("pipelined group commit: groups prepared while others publish on a second thread all land, in order") {
  TempDir dir;
  std::string path = dir / "s";
  auto store = init_store(path);
  std::string before = git_out(path, "rev-parse refs/gigafab/state");
  store.defer_maintenance(true);
  constexpr int k_groups = 60;
  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::vector<gitstore::Store::Prepared> queue;
  bool done = false;
  int published = 0;
  std::string failure;
  std::thread publisher([&] {
    for (;;) {
      gitstore::Store::Prepared next;
      {
        std::unique_lock lock(queue_mutex);
        queue_cv.wait(lock, [&] { return done || !queue.empty(); });
        if (queue.empty()) return;
        next = std::move(queue.front());
        queue.erase(queue.begin());
      }
      if (auto ok = store.publish_group(next); !ok) {
        failure = ok.error().message;
      } else {
        ++published;
      }
    }
  });
  for (int i = 0; i < k_groups; ++i) {
    store.wait_for_groups(2);
    if (store.maintenance_needed()) REQUIRE(store.maintain().ok());
    REQUIRE(store.begin_group().ok());
    // Each group rewrites one shared file and adds its own: a build reads
    // the trees of the groups before it, published or not.
    std::string count = std::to_string(i);
    REQUIRE(store.transact(put("count.txt", count, "group " + count), "tester").ok());
    REQUIRE(store.transact(put("g/" + count + ".txt", count), "tester").ok());
    auto prepared = store.prepare_group("tester");
    REQUIRE(prepared.ok());
    std::lock_guard lock(queue_mutex);
    queue.push_back(std::move(*prepared));
    queue_cv.notify_one();
  }
  {
    std::lock_guard lock(queue_mutex);
    done = true;
  }
  queue_cv.notify_one();
  publisher.join();
  CHECK(failure == "");
  CHECK(published == k_groups);
  REQUIRE(store.maintain().ok());
  CHECK(count_packs(path) <= 8);
  CHECK(git_out(path, "show refs/gigafab/state:count.txt") == std::to_string(k_groups - 1));
  CHECK(git_out(path, "ls-tree --name-only refs/gigafab/state g/ | wc -l") == std::to_string(k_groups));
  CHECK(git_out(path, "rev-list --count " + before + "..refs/gigafab/state") == std::to_string(k_groups));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("pipelined group commit: a prepared group dropped unpublished passes its turn") {
  TempDir dir;
  std::string path = dir / "s";
  auto store = init_store(path);
  std::string before = git_out(path, "rev-parse refs/gigafab/state");
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("a.txt", "1", "dropped"), "tester").ok());
  {
    auto dropped = store.prepare_group("tester");
    REQUIRE(dropped.ok());
  }
  CHECK(store.groups_in_flight() == 0);
  REQUIRE(store.begin_group().ok());
  REQUIRE(store.transact(put("b.txt", "2", "kept"), "tester").ok());
  REQUIRE(store.commit_group("tester").ok());
  CHECK(git_out(path, "log --format=%s " + before + "..refs/gigafab/state") == "kept");
  CHECK(run(git(path) + "cat-file -e refs/gigafab/state:a.txt").status != 0);
}

TEST_CASE("pipelined group commit: groups lost to another writer run again, and every object lands") {
  TempDir dir;
  std::string path = dir / "s";
  auto store = init_store(path);
  auto other = gitstore::Store::open(path);
  REQUIRE(other.ok());
  store.defer_maintenance(true);
  constexpr int k_groups = 40;
  std::atomic<int> lost{0};
  std::mutex fleet;  // the server's fleet_mutex: one builder at a time
  auto one = [&](int i) {
    for (;;) {
      gitstore::Store::Prepared prepared;
      {
        std::lock_guard lock(fleet);
        store.wait_for_groups(1);
        if (store.maintenance_needed()) REQUIRE(store.maintain().ok());
        REQUIRE(store.begin_group().ok());
        std::string n = std::to_string(i);
        REQUIRE(store.transact(put("d" + std::to_string(i % 3) + "/e" + std::to_string(i % 5) + "/" + n + ".txt", n), "t").ok());
        REQUIRE(store.transact(put("count/" + std::to_string(i % 4) + ".txt", n), "t").ok());
        auto ready = store.prepare_group("tester");
        REQUIRE(ready.ok());
        prepared = std::move(*ready);
      }
      auto published = store.publish_group(prepared);
      if (published) return;
      REQUIRE(published.error().reason == "group_lost");
      ++lost;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < k_groups; i += 4) one(i);
    });
  }
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(other->transact(put("other/" + std::to_string(i) + ".txt", "x"), "other").ok());
  }
  for (auto& t : threads) t.join();
  MESSAGE("groups lost: " << lost.load());
  for (int i = 0; i < k_groups; ++i) {
    std::string file = "d" + std::to_string(i % 3) + "/e" + std::to_string(i % 5) + "/" + std::to_string(i) + ".txt";
    CHECK(git_out(path, "show refs/gigafab/state:" + file) == std::to_string(i));
  }
  CHECK(git_out(path, "ls-tree --name-only refs/gigafab/state other/ | wc -l") == "10");
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("pipelined group commit: maintenance_needed counts the packs written, so merges keep them few") {
  // serve merges only when maintenance_needed() says so (Api::run_batch);
  // it counts the packs this handle writes and lists the directory after a
  // merge, so another writer's packs are seen too.
  TempDir dir;
  std::string path = dir / "s";
  auto store = init_store(path);
  store.defer_maintenance(true);
  auto other = gitstore::Store::open(path);
  REQUIRE(other.ok());
  std::size_t most_packs = 0;
  std::size_t merges = 0;
  for (int i = 0; i < 60; ++i) {
    if (store.maintenance_needed()) {
      ++merges;
      REQUIRE(store.maintain().ok());
    }
    most_packs = std::max(most_packs, count_packs(path));
    REQUIRE(store.begin_group().ok());
    REQUIRE(store.transact(put("g/" + std::to_string(i) + ".txt", std::to_string(i), "group"), "tester").ok());
    auto prepared = store.prepare_group("tester");
    REQUIRE(prepared.ok());
    REQUIRE(store.publish_group(*prepared).ok());
    if (i % 10 == 5) {
      other->defer_maintenance(true);  // its packs stay for this handle to merge
      commit_ok(*other, put("o/" + std::to_string(i) + ".txt", "x", "other"));
    }
  }
  CHECK(merges >= 5);
  CHECK(most_packs <= 10);
  CHECK(read_at_tip(store, "g/59.txt") == std::optional<std::string>("59"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("an object a git command left loose goes into the commit's pack too; reads, fsck and gc are fine") {
  TempDir dir;
  std::string path = dir / "s";
  auto store = init_store(path);
  // Written loose by git, outside the store: the store does not look for it.
  { std::ofstream(dir / "content") << "shared content\n"; }
  std::string loose = git_out(path, "hash-object -w " + (dir / "content"));
  REQUIRE(fs::exists(path + "/objects/" + loose.substr(0, 2) + "/" + loose.substr(2)));
  commit_ok(store, put("a.txt", "shared content\n", "uses it"));
  CHECK(git_out(path, "rev-parse refs/gigafab/state:a.txt") == loose);
  auto reopened = gitstore::Store::open(path);
  REQUIRE(reopened.ok());
  CHECK(read_at_tip(*reopened, "a.txt") == std::optional<std::string>("shared content\n"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
  REQUIRE(store.gc().ok());
  CHECK(read_at_tip(store, "a.txt") == std::optional<std::string>("shared content\n"));
  CHECK(git_out(path, "fsck --strict --no-dangling 2>&1; echo rc=$?").find("rc=0") != std::string::npos);
}

TEST_CASE("a reader lets go of the packs another process's gc deleted, a second or so later") {
  TempDir tmp;
  std::string path = tmp / "store";
  auto reader = init_store(path);
  {
    auto writer = gitstore::Store::open(path);
    REQUIRE(writer.ok());
    for (int i = 0; i < 6; ++i) {
      commit_ok(*writer, put("jobs/" + std::to_string(i) + ".txt", "rev " + std::to_string(i) + "\n"));
      // The reader opens each new pack.
      for (int j = 0; j <= i; ++j) CHECK(read_at_tip(reader, "jobs/" + std::to_string(j) + ".txt").has_value());
    }
    REQUIRE(writer->gc().ok());
  }
  // It reads on from the packs it holds; it notices them gone at its next
  // look at the directory (at most every 200 ms), and lets go of them a
  // second after that.
  CHECK(read_at_tip(reader, "jobs/5.txt") == std::optional<std::string>("rev 5\n"));
  CHECK(open_deleted_packs(path) > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  CHECK(read_at_tip(reader, "jobs/4.txt") == std::optional<std::string>("rev 4\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1050));
  CHECK(read_at_tip(reader, "jobs/3.txt") == std::optional<std::string>("rev 3\n"));
  CHECK(open_deleted_packs(path) == 0);
}
