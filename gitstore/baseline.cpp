#include "gitstore/baseline.hpp"

#include <git2.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <vector>

#include "gitstore/fd_io.hpp"

namespace gigafab::gitstore {

namespace {

core::Error failure(const char* what) {
  const git_error* e = git_error_last();
  return core::make_error(core::ErrorCode::error, std::string(what) + ": " + (e && e->message ? e->message : "?"));
}

// Returns the oid of `base` with `name` (under dirs[0]/dirs[1]/...) set to `blob`.
int put_path(git_repository* repo, const git_tree* base, const char* const* dirs, std::size_t depth,
             const char* name, const git_oid* blob, git_oid* out) {
  git_treebuilder* builder = nullptr;
  if (git_treebuilder_new(&builder, repo, base) < 0) return -1;
  int rc = 0;
  if (depth == 0) {
    rc = git_treebuilder_insert(nullptr, builder, name, blob, GIT_FILEMODE_BLOB);
  } else {
    git_tree* sub = nullptr;
    const git_tree_entry* entry = git_treebuilder_get(builder, dirs[0]);
    if (entry) rc = git_tree_lookup(&sub, repo, git_tree_entry_id(entry));
    git_oid sub_oid;
    if (rc == 0) rc = put_path(repo, sub, dirs + 1, depth - 1, name, blob, &sub_oid);
    if (rc == 0) rc = git_treebuilder_insert(nullptr, builder, dirs[0], &sub_oid, GIT_FILEMODE_TREE);
    git_tree_free(sub);
  }
  if (rc == 0) rc = git_treebuilder_write(out, builder);
  git_treebuilder_free(builder);
  return rc;
}

}  // namespace

core::Result<double> raw_commit_baseline(const std::string& path, std::size_t iterations, bool fsync) {
  git_libgit2_init();
  git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, fsync ? 1 : 0);
  git_repository* repo = nullptr;
  if (git_repository_init(&repo, path.c_str(), 1) < 0) return failure("baseline: cannot create repository");
  git_signature* sig = nullptr;
  git_signature_now(&sig, "bench", "bench@localhost");
  const char* ref = "refs/gigafab/state";
  const char* dirs[] = {"jobs", "ab", "j-abcdefgh"};
  git_oid parent{};
  bool have_parent = false;
  auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < iterations; ++i) {
    std::string content = "stage = 'queued'\nrev = " + std::to_string(i) + "\n";
    git_oid blob, tree_oid, commit_oid;
    git_tree* base = nullptr;
    git_commit* parent_commit = nullptr;
    if (have_parent) {
      git_commit_lookup(&parent_commit, repo, &parent);
      git_commit_tree(&base, parent_commit);
    }
    int rc = git_blob_create_from_buffer(&blob, repo, content.data(), content.size());
    if (rc == 0) rc = put_path(repo, base, dirs, 3, "job.toml", &blob, &tree_oid);
    git_tree* tree = nullptr;
    if (rc == 0) rc = git_tree_lookup(&tree, repo, &tree_oid);
    const git_commit* parents[1] = {parent_commit};
    if (rc == 0) {
      rc = git_commit_create(&commit_oid, repo, nullptr, sig, sig, "UTF-8", "baseline\n", tree, have_parent ? 1 : 0,
                             parents);
    }
    git_reference* out = nullptr;
    if (rc == 0) {
      rc = have_parent ? git_reference_create_matching(&out, repo, ref, &commit_oid, 1, &parent, "baseline")
                       : git_reference_create(&out, repo, ref, &commit_oid, 0, "baseline");
    }
    git_reference_free(out);
    git_tree_free(tree);
    git_tree_free(base);
    git_commit_free(parent_commit);
    if (rc < 0) {
      git_signature_free(sig);
      git_repository_free(repo);
      return failure("baseline: commit failed");
    }
    parent = commit_oid;
    have_parent = true;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  git_signature_free(sig);
  git_repository_free(repo);
  return static_cast<double>(iterations) / seconds;
}

core::Result<double> fdatasync_p50_us(const std::string& dir, std::size_t rounds) {
  const std::string path = dir + "/fdatasync-probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return core::make_error(core::ErrorCode::error, "cannot create " + path);
  const std::vector<char> block(8192, 'x');
  std::vector<double> times;
  bool ok = true;
  for (std::size_t i = 0; i < rounds && ok; ++i) {
    auto start = std::chrono::steady_clock::now();
    ok = ::pwrite(fd, block.data(), block.size(), 0) == static_cast<ssize_t>(block.size()) && ::fdatasync(fd) == 0;
    times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  ::close(fd);
  ::unlink(path.c_str());
  if (!ok || times.empty()) return core::make_error(core::ErrorCode::error, "cannot write and sync " + path);
  std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2), times.end());
  return times[times.size() / 2];
}

core::Result<double> durable_commit_files_p50_ms(const std::string& dir, std::size_t rounds) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(dir) / "commit-files-probe";
  const fs::path packs = root / "pack", refs = root / "refs";
  std::error_code ec;
  fs::create_directories(packs, ec);
  fs::create_directories(refs, ec);
  auto fail = [&](const std::string& what) {
    fs::remove_all(root, ec);
    return core::make_error(core::ErrorCode::error, "cannot " + what + " under " + root.string());
  };
  const int pack_dir = ::open(packs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int refs_dir = ::open(refs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  auto close_dirs = [&] {
    if (pack_dir >= 0) ::close(pack_dir);
    if (refs_dir >= 0) ::close(refs_dir);
  };
  if (pack_dir < 0 || refs_dir < 0) {
    close_dirs();
    return fail("open directories");
  }
  const std::string pack(8192, 'p'), index(2048, 'i'), ref(41, 'r');
  auto create = [](const fs::path& path, const std::string& data) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
    if (fd >= 0 && !fd_io::write_all(fd, data)) {
      ::close(fd);
      return -1;
    }
    return fd;
  };
  std::vector<double> times;
  bool ok = true;
  for (std::size_t i = 0; i < rounds && ok; ++i) {
    const std::string name = "pack-" + std::to_string(i);
    const auto start = std::chrono::steady_clock::now();
    int fds[3] = {create(packs / ("tmp_" + name + ".pack"), pack), create(packs / ("tmp_" + name + ".idx"), index),
                  create(refs / "state.lock", ref)};
    ok = fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0 && fd_io::fsync_together(std::span<const int>(fds, 3));
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
    ok = ok && ::rename((packs / ("tmp_" + name + ".idx")).c_str(), (packs / (name + ".idx")).c_str()) == 0 &&
         ::rename((packs / ("tmp_" + name + ".pack")).c_str(), (packs / (name + ".pack")).c_str()) == 0 &&
         ::fsync(pack_dir) == 0;
    // The old ref is closed off the path, as a commit does (fd_io::close_later).
    const int old_ref = fd_io::hold_for_close_later((refs / "state").string());
    ok = ok && ::rename((refs / "state.lock").c_str(), (refs / "state").c_str()) == 0 && ::fsync(refs_dir) == 0;
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    fd_io::close_later(old_ref);
  }
  close_dirs();
  if (!ok || times.empty()) return fail("write and sync a commit's files");
  fs::remove_all(root, ec);
  std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2), times.end());
  return times[times.size() / 2];
}

}  // namespace gigafab::gitstore
