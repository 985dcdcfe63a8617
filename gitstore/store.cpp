#include "gitstore/store.hpp"
#include "gitstore/fd_io.hpp"
#include "gitstore/git_pack.hpp"
#include "gitstore/packfile.hpp"
#include "gitstore/ref_lock.hpp"
#include "gitstore/remote.hpp"
#include "gitstore/spare_files.hpp"
#include "gitstore/tls_certificates.hpp"

#include <fcntl.h>
#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/repository.h>
#include <git2/sys/odb_backend.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_set>

#include "core/ids.hpp"
#include "core/layout.hpp"
#include "core/queue_index.hpp"

namespace gigafab::gitstore {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::make_error;

namespace {

void ensure_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] {
    tls::install();  // the CA bundle is parsed at the first https handshake, not here
    git_libgit2_init();
    // Like git itself, trust the object store's hashes on read (git fsck
    // verifies them); re-hashing every object read dominated claim latency.
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
    // libgit2 caches no tree over 4 KiB by default: the jobs tree (about
    // 25 KB) and the queue buckets (up to 256 entries, about 15 KB) would be
    // inflated and parsed again by every operation of a long-running
    // process. Blobs stay uncached (libgit2's default): a listing reads every
    // job document once, and caching them filled the cache, after which
    // every insert evicted (show at 100,000 jobs: 0.8 -> 2.2 ms in-process).
    git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, static_cast<std::size_t>(64 << 10));
  });
}

Error git_failure(const std::string& what) {
  const git_error* e = git_error_last();
  return make_error(ErrorCode::error, what + ": " + (e && e->message ? e->message : "unknown libgit2 error"));
}

// RAII for libgit2 handles.
template <typename T, void (*Free)(T*)>
struct Handle {
  T* ptr = nullptr;
  Handle() = default;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (ptr) Free(ptr);
  }
  T** out() { return &ptr; }
  T* get() const { return ptr; }
};
using TreeHandle = Handle<git_tree, git_tree_free>;
using EntryHandle = Handle<git_tree_entry, git_tree_entry_free>;
using BlobHandle = Handle<git_blob, git_blob_free>;
using CommitHandle = Handle<git_commit, git_commit_free>;
using RefHandle = Handle<git_reference, git_reference_free>;
using BuilderHandle = Handle<git_treebuilder, git_treebuilder_free>;
using SigHandle = Handle<git_signature, git_signature_free>;
using ConfigHandle = Handle<git_config, git_config_free>;
using WalkHandle = Handle<git_revwalk, git_revwalk_free>;

std::string oid_hex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

// A read-only view of one state tree. Subtrees are looked up once and kept,
// so the many reads an operation makes in one directory (the queue index, a
// job's files) parse each tree object once instead of once per read.
// A view owned by someone else (the open group's), for as long as it lives.
class BorrowedSnapshot final : public core::Snapshot {
 public:
  explicit BorrowedSnapshot(const core::Snapshot& view) : m_view(view) {}
  Result<std::optional<std::string>> read(std::string_view path) const override { return m_view.read(path); }
  Result<std::vector<std::string>> list(std::string_view dir) const override { return m_view.list(dir); }
  Result<void> visit(std::string_view dir, const Visitor& visitor) const override { return m_view.visit(dir, visitor); }

 private:
  const core::Snapshot& m_view;
};

// A group commit's message: a subject, one block per operation (its summary
// line, then its trailers), and the group's own trailers last, so plain
// `git log` reads it and git's trailer parser sees "Gigafab-Op: group".
std::string group_message(const std::vector<core::Change>& operations) {
  std::string out = "group: " + std::to_string(operations.size()) + " operations\n";
  auto flat = [](std::string text) {
    for (char& c : text) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return text;
  };
  for (const auto& op : operations) {
    out += "\n" + flat(op.summary) + "\n";
    for (const auto& [key, value] : op.trailers) out += key + ": " + flat(value) + "\n";
  }
  out += "\nGigafab-Op: group\nGigafab-Operations: " + std::to_string(operations.size());
  return out;
}

// The operations of a group commit's message, oldest first.
std::vector<CommitInfo> group_operations(const std::string& message, const CommitInfo& commit) {
  std::vector<std::string> paragraphs;
  std::size_t start = 0;
  while (start <= message.size()) {
    std::size_t end = message.find("\n\n", start);
    if (end == std::string::npos) end = message.size();
    paragraphs.push_back(message.substr(start, end - start));
    start = end + 2;
  }
  std::vector<CommitInfo> out;
  // The first paragraph is the subject, the last the group's trailers.
  for (std::size_t i = 1; i + 1 < paragraphs.size(); ++i) {
    CommitInfo op;
    op.oid = commit.oid;
    op.time = commit.time;
    std::size_t line_start = 0;
    bool first = true;
    const std::string& text = paragraphs[i];
    while (line_start < text.size()) {
      std::size_t nl = text.find('\n', line_start);
      if (nl == std::string::npos) nl = text.size();
      std::string line = text.substr(line_start, nl - line_start);
      line_start = nl + 1;
      if (first) {
        op.summary = line;
        first = false;
        continue;
      }
      std::size_t colon = line.find(": ");
      if (colon != std::string::npos) op.trailers.emplace_back(line.substr(0, colon), line.substr(colon + 2));
    }
    out.push_back(std::move(op));
  }
  return out;
}

// Looks an object up, looking at the pack directory again when it is not
// found. A reader that lists the directory while a writer merges packs (the
// merged pack published, then its sources deleted) can see neither; libgit2
// looks once more at once, git itself does the same (reprepare_packed_git),
// and so do we a little later.
template <typename Lookup>
int lookup_racing_merges(git_repository* repo, Lookup&& lookup) {
  int rc = lookup();
  for (int delay_ms : {1, 10, 50}) {
    if (rc != GIT_ENOTFOUND) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    git_odb* odb = nullptr;
    if (git_repository_odb(&odb, repo) == 0) {
      git_odb_refresh(odb);
      git_odb_free(odb);
    }
    rc = lookup();
  }
  return rc;
}

// Reads an object from the object database's backends, in the order
// git_odb_read tries them, without going through libgit2's object cache
// (which keeps every tree it reads). Like git_odb_read, a miss looks at the
// pack directory again once (another process may have written the pack).
// GIT_ENOTFOUND when no backend has it.
int read_uncached(git_repository* repo, const git_oid& oid, std::string& data, git_object_t& type) {
  git_odb* odb = nullptr;
  if (int rc = git_repository_odb(&odb, repo); rc < 0) return rc;
  auto read = [&]() -> int {
    const std::size_t backends = git_odb_num_backends(odb);
    for (std::size_t i = 0; i < backends; ++i) {
      git_odb_backend* backend = nullptr;
      if (git_odb_get_backend(&backend, odb, i) < 0 || !backend->read) continue;
      void* raw = nullptr;
      std::size_t size = 0;
      git_object_t got = GIT_OBJECT_INVALID;
      int rc = backend->read(&raw, &size, &got, backend, &oid);
      if (rc == GIT_ENOTFOUND || rc == GIT_PASSTHROUGH) continue;
      if (rc == 0) {
        data.assign(static_cast<const char*>(raw), size);
        type = got;
        git_odb_backend_data_free(backend, raw);
      }
      return rc;
    }
    return GIT_ENOTFOUND;
  };
  int result = read();
  if (result == GIT_ENOTFOUND && git_odb_refresh(odb) == 0) result = read();
  if (result == GIT_ENOTFOUND) git_error_set_str(GIT_ERROR_ODB, ("object not found - " + oid_hex(oid)).c_str());
  git_odb_free(odb);
  return result;
}

// The id of the file `name` in a tree object's content (entries of
// "<mode> <name>\0<20-byte id>"); nullopt when there is no such entry or it
// is a directory or a submodule.
Result<std::optional<git_oid>> file_in_tree(std::string_view tree, std::string_view name) {
  std::size_t at = 0;
  while (at < tree.size()) {
    const std::size_t space = tree.find(' ', at);
    const std::size_t end = space == std::string_view::npos ? space : tree.find('\0', space);
    if (end == std::string_view::npos || tree.size() - end - 1 < GIT_OID_RAWSZ) {
      return make_error(core::ErrorCode::error, "damaged tree entry at byte " + std::to_string(at));
    }
    const std::string_view mode = tree.substr(at, space - at);
    if (tree.substr(space + 1, end - space - 1) == name) {
      if (mode == "40000" || mode == "160000") return std::optional<git_oid>{};
      git_oid oid;
      std::memcpy(oid.id, tree.data() + end + 1, GIT_OID_RAWSZ);
      return std::optional<git_oid>{oid};
    }
    at = end + 1 + GIT_OID_RAWSZ;
  }
  return std::optional<git_oid>{};
}

class TreeSnapshot final : public core::Snapshot {
 public:
  TreeSnapshot(git_repository* repo, git_tree* root) : m_repo(repo), m_root(root) {}
  ~TreeSnapshot() override {
    for (auto& [_, tree] : m_trees) git_tree_free(tree);
    git_tree_free(m_root);
  }

  Result<std::optional<std::string>> read(std::string_view path) const override {
    std::size_t slash = path.rfind('/');
    auto dir = tree_for(slash == std::string_view::npos ? std::string_view{} : path.substr(0, slash));
    if (!dir) return dir.error();
    if (!*dir) return std::optional<std::string>{};
    std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
    const git_tree_entry* entry = git_tree_entry_byname(*dir, name.c_str());
    if (!entry || git_tree_entry_type(entry) != GIT_OBJECT_BLOB) return std::optional<std::string>{};
    BlobHandle blob;
    if (lookup_racing_merges(m_repo, [&] { return git_blob_lookup(blob.out(), m_repo, git_tree_entry_id(entry)); }) < 0) {
      return git_failure("cannot read " + std::string(path));
    }
    const char* data = static_cast<const char*>(git_blob_rawcontent(blob.get()));
    return std::optional<std::string>{std::string(data, static_cast<std::size_t>(git_blob_rawsize(blob.get())))};
  }

  Result<std::vector<std::string>> list(std::string_view dir) const override {
    std::vector<std::string> names;
    auto tree = tree_for(dir);
    if (!tree) return tree.error();
    if (!*tree) return names;
    std::size_t count = git_tree_entrycount(*tree);
    names.reserve(count);
    bool has_subtrees = false;
    for (std::size_t i = 0; i < count; ++i) {
      const git_tree_entry* entry = git_tree_entry_byindex(*tree, i);
      names.emplace_back(git_tree_entry_name(entry));
      has_subtrees = has_subtrees || git_tree_entry_type(entry) == GIT_OBJECT_TREE;
    }
    // Git orders a subtree as if its name ended in '/'; files alone are
    // already in bytewise order, which is what the contract promises.
    if (has_subtrees) std::sort(names.begin(), names.end());
    return names;
  }

  Result<void> visit(std::string_view dir, const Visitor& visitor) const override {
    auto tree = tree_for(dir);
    if (!tree) return tree.error();
    if (!*tree) return {};
    const std::size_t count = git_tree_entrycount(*tree);
    for (std::size_t i = 0; i < count; ++i) {
      // Git's order is bytewise only among files: list() sorts the others.
      if (git_tree_entry_type(git_tree_entry_byindex(*tree, i)) == GIT_OBJECT_TREE) return Snapshot::visit(dir, visitor);
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (!visitor(git_tree_entry_name(git_tree_entry_byindex(*tree, i)))) break;
    }
    return {};
  }

  Result<std::vector<Entry>> list_with_ids(std::string_view dir) const override {
    std::vector<Entry> out;
    auto tree = tree_for(dir);
    if (!tree) return tree.error();
    if (!*tree) return out;
    std::size_t count = git_tree_entrycount(*tree);
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      const git_tree_entry* entry = git_tree_entry_byindex(*tree, i);
      out.emplace_back(git_tree_entry_name(entry), oid_hex(*git_tree_entry_id(entry)));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::optional<std::string>> read_in(std::string_view dir, std::string_view dir_id,
                                             std::string_view name) const override {
    git_oid oid;
    if (dir_id.size() != GIT_OID_HEXSZ || git_oid_fromstrn(&oid, dir_id.data(), dir_id.size()) < 0) {
      return Snapshot::read_in(dir, dir_id, name);
    }
    // The directory is read once and not kept, by us or by libgit2's cache:
    // a cold listing of 100,000 jobs filled that cache with 89 MB of trees
    // nobody read again, and took a third longer (1.90 against 1.25 s).
    std::string tree;
    git_object_t type = GIT_OBJECT_INVALID;
    if (lookup_racing_merges(m_repo, [&] { return read_uncached(m_repo, oid, tree, type); }) < 0) {
      return git_failure("cannot read " + std::string(dir));
    }
    if (type != GIT_OBJECT_TREE) {
      return make_error(core::ErrorCode::error, "cannot read " + std::string(dir) + ": " + oid_hex(oid) + " is no tree");
    }
    auto file = file_in_tree(tree, name);
    if (!file) return make_error(core::ErrorCode::error, "cannot read " + std::string(dir) + ": " + file.error().message);
    if (!*file) return std::optional<std::string>{};
    BlobHandle blob;
    if (lookup_racing_merges(m_repo, [&] { return git_blob_lookup(blob.out(), m_repo, &**file); }) < 0) {
      return git_failure("cannot read " + std::string(dir) + "/" + std::string(name));
    }
    const char* data = static_cast<const char*>(git_blob_rawcontent(blob.get()));
    return std::optional<std::string>{std::string(data, static_cast<std::size_t>(git_blob_rawsize(blob.get())))};
  }

  // One entry looked up by name: no listing, one id formatted.
  Result<std::string> id_of(std::string_view dir, std::string_view name) const override {
    auto tree = tree_for(dir);
    if (!tree) return tree.error();
    if (!*tree) return std::string();
    const git_tree_entry* entry = git_tree_entry_byname(*tree, std::string(name).c_str());
    return entry ? oid_hex(*git_tree_entry_id(entry)) : std::string();
  }

 private:
  // The tree at `dir` ("" for the root), or nullptr when there is none.
  Result<const git_tree*> tree_for(std::string_view dir) const {
    if (dir.empty()) return static_cast<const git_tree*>(m_root);
    if (auto it = m_trees.find(dir); it != m_trees.end()) return static_cast<const git_tree*>(it->second);
    std::size_t slash = dir.rfind('/');
    auto parent = tree_for(slash == std::string_view::npos ? std::string_view{} : dir.substr(0, slash));
    if (!parent) return parent.error();
    git_tree* tree = nullptr;
    if (*parent) {
      std::string name(slash == std::string_view::npos ? dir : dir.substr(slash + 1));
      const git_tree_entry* entry = git_tree_entry_byname(*parent, name.c_str());
      if (entry && git_tree_entry_type(entry) == GIT_OBJECT_TREE &&
          lookup_racing_merges(m_repo, [&] { return git_tree_lookup(&tree, m_repo, git_tree_entry_id(entry)); }) < 0) {
        return git_failure("cannot read tree " + std::string(dir));
      }
    }
    m_trees.emplace(std::string(dir), tree);
    return static_cast<const git_tree*>(tree);
  }

  git_repository* m_repo;
  git_tree* m_root;
  mutable std::map<std::string, git_tree*, std::less<>> m_trees;  // nullptr: no such directory
};

// Puts a commit's new objects straight into the mempack. git_odb_write would
// first look each object up and, on a miss (every new object), reload the
// pack directory: a readdir per object, most of a commit's cost once the
// directory had seen thousands of packs come and go.
class ObjectWriter {
 public:
  ObjectWriter(git_odb* odb, git_odb_backend* mempack, std::vector<git_oid>& written)
      : m_odb(odb), m_mempack(mempack), m_written(written) {}

  // Asks the backends on disk themselves: git_odb_exists also answers yes
  // for what the odb has cached, and that includes objects read from the
  // mempack of a pipelined group that never published. The packs only: the
  // store writes no loose objects, and asking the loose backend cost an
  // access(2) per object (a dozen per request in serve). An object that is
  // only loose (a git command run in the store) goes into the pack too, a
  // harmless duplicate. The loose backend is the one that writes single
  // objects (libgit2's pack backend has no `write`).
  bool on_disk(const git_oid& oid) const {
    for (std::size_t i = 0, n = git_odb_num_backends(m_odb); i < n; ++i) {
      git_odb_backend* backend = nullptr;
      if (git_odb_get_backend(&backend, m_odb, i) < 0 || backend == m_mempack || !backend->exists) continue;
      if (backend->write) continue;  // loose
      if (backend->exists(backend, &oid) == 1) return true;
    }
    return false;
  }

  Result<git_oid> put(std::string_view data, git_object_t type) {
    git_oid oid;
    if (git_odb_hash(&oid, data.data(), data.size(), type) < 0) return git_failure("cannot hash an object");
    // Still only in memory (this commit's, or one a pipelined group wrote
    // and may never publish): it goes into this commit's pack too.
    if (m_mempack->exists(m_mempack, &oid) == 1) {
      m_written.push_back(oid);
      return oid;
    }
    // On disk already (the packs loaded): git_odb_write finds it without
    // reloading anything and "freshens" its pack (touches it), so a gc
    // running meanwhile keeps the pack if the object is unreachable so far.
    // An object only in a pack another process has just written is written
    // again; a duplicate in two packs is harmless and gc keeps one.
    if (on_disk(oid)) {
      git_oid same;
      if (git_odb_write(&same, m_odb, data.data(), data.size(), type) < 0) return git_failure("cannot write an object");
      return oid;
    }
    if (m_mempack->write(m_mempack, &oid, data.data(), data.size(), type) < 0) return git_failure("cannot write an object");
    m_written.push_back(oid);
    return oid;
  }

 private:
  git_odb* m_odb;
  git_odb_backend* m_mempack;
  std::vector<git_oid>& m_written;
};

struct TreeEntry {
  std::string_view name;
  git_oid id;
  std::uint32_t mode;  // as git writes it: 040000 for a tree, 0100644 for a blob
};

// git's order of tree entries: bytewise, a tree's name as if it ended in '/'.
bool git_tree_order(const TreeEntry& a, const TreeEntry& b) {
  std::size_t common = std::min(a.name.size(), b.name.size());
  if (int c = std::memcmp(a.name.data(), b.name.data(), common); c != 0) return c < 0;
  auto next = [&](const TreeEntry& e) -> unsigned char {
    if (e.name.size() > common) return static_cast<unsigned char>(e.name[common]);
    return e.mode == GIT_FILEMODE_TREE ? '/' : '\0';
  };
  return next(a) < next(b);
}

// Writes `writes` (paths relative to `base`) on top of `base` (may be null) and
// returns the new tree, or nullopt when it ends up empty.
Result<std::optional<git_oid>> build_tree(git_repository* repo, ObjectWriter& writer, const git_tree* base,
                                          const std::map<std::string, std::optional<std::string>>& writes) {
  std::map<std::string, std::map<std::string, std::optional<std::string>>> subdirs;
  std::map<std::string, std::optional<TreeEntry>, std::less<>> changed;  // nullopt: removed
  for (const auto& [path, content] : writes) {
    std::size_t slash = path.find('/');
    if (slash != std::string::npos) {
      subdirs[path.substr(0, slash)][path.substr(slash + 1)] = content;
      continue;
    }
    if (!content) {
      changed[path] = std::nullopt;
      continue;
    }
    auto blob = writer.put(*content, GIT_OBJECT_BLOB);
    if (!blob) return blob.error();
    changed[path] = TreeEntry{{}, *blob, GIT_FILEMODE_BLOB};
  }
  for (const auto& [name, sub_writes] : subdirs) {
    TreeHandle sub_base;
    const git_tree_entry* existing = base ? git_tree_entry_byname(base, name.c_str()) : nullptr;
    if (existing && git_tree_entry_type(existing) == GIT_OBJECT_TREE) {
      if (git_tree_lookup(sub_base.out(), repo, git_tree_entry_id(existing)) < 0) {
        return git_failure("cannot read tree " + name);
      }
    }
    auto sub = build_tree(repo, writer, sub_base.get(), sub_writes);
    if (!sub) return sub.error();
    if (*sub) {
      changed[name] = TreeEntry{{}, **sub, GIT_FILEMODE_TREE};
    } else {
      changed[name] = std::nullopt;
    }
  }
  std::vector<TreeEntry> entries;
  const std::size_t base_count = base ? git_tree_entrycount(base) : 0;
  entries.reserve(base_count + changed.size());
  for (std::size_t i = 0; i < base_count; ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(base, i);
    std::string_view name = git_tree_entry_name(e);
    if (changed.find(name) != changed.end()) continue;
    entries.push_back({name, *git_tree_entry_id(e), static_cast<std::uint32_t>(git_tree_entry_filemode_raw(e))});
  }
  for (auto& [name, entry] : changed) {
    if (!entry) continue;
    entry->name = name;
    entries.push_back(*entry);
  }
  if (entries.empty()) return std::optional<git_oid>{};
  std::sort(entries.begin(), entries.end(), git_tree_order);
  // The tree object: "<octal mode> <name>\0<20-byte id>" per entry.
  std::string body;
  body.reserve(entries.size() * 48);
  for (const TreeEntry& e : entries) {
    char mode[16];
    auto [end, ec] = std::to_chars(mode, mode + sizeof mode, e.mode, 8);
    (void)ec;
    body.append(mode, end);
    body.push_back(' ');
    body.append(e.name);
    body.push_back('\0');
    body.append(reinterpret_cast<const char*>(e.id.id), GIT_OID_RAWSZ);
  }
  auto tree = writer.put(body, GIT_OBJECT_TREE);
  if (!tree) return tree.error();
  return std::optional<git_oid>{*tree};
}

// Appends `line` to <store>/gigafab.log.
void log_line(const std::string& store_path, const std::string& line) {
  if (FILE* f = std::fopen((store_path + "/gigafab.log").c_str(), "a")) {
    std::fprintf(f, "%s pid %d: %s\n", core::format_time(core::now_millis()).c_str(), static_cast<int>(getpid()),
                 line.c_str());
    std::fclose(f);
  }
}

// A warning on stderr, kept in <store>/gigafab.log too.
void log_event(const std::string& store_path, const std::string& line) {
  std::fprintf(stderr, "gigafab: warning: %s\n", line.c_str());
  log_line(store_path, line);
}

// Holds flock(LOCK_EX) on a file for its lifetime. The kernel releases it
// when the holder closes the file or dies, so a crashed process can never
// leave it held.
class FileLock {
 public:
  // Blocks until the lock is free (the kernel queues waiters).
  static Result<FileLock> acquire(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return make_error(ErrorCode::error, "cannot open " + path + ": " + std::strerror(errno));
    while (::flock(fd, LOCK_EX) < 0) {
      if (errno != EINTR) {
        int err = errno;
        ::close(fd);
        return make_error(ErrorCode::error, "cannot lock " + path + ": " + std::strerror(err));
      }
    }
    return FileLock(fd);
  }
  // nullopt when someone holds it (or the file cannot be opened).
  static std::optional<FileLock> try_acquire(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return std::nullopt;
    if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
      ::close(fd);
      return std::nullopt;
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (m_fd >= 0) ::close(m_fd);  // releases the flock
  }
  int fd() const { return m_fd; }

 private:
  explicit FileLock(int fd) : m_fd(fd) {}
  int m_fd;
};

// <store>/gigafab.lock: local writers queue on it; it holds the pid of the
// last process that took it. Rewritten only when that changes: truncating it
// on every commit of a long-running writer waited for the kernel's writeback
// of the previous write (about 2 ms per commit of serve under load).
struct WriterLock {
  static Result<FileLock> acquire(const std::string& store_path) {
    auto lock = FileLock::acquire(store_path + "/gigafab.lock");
    if (!lock) return lock.error();
    std::string pid = std::to_string(getpid()) + "\n";
    char current[32];
    ssize_t n = ::pread(lock->fd(), current, sizeof current, 0);
    if (n != static_cast<ssize_t>(pid.size()) || pid.compare(0, pid.size(), current, pid.size()) != 0) {
      if (::ftruncate(lock->fd(), 0) == 0) {
        [[maybe_unused]] auto written = ::pwrite(lock->fd(), pid.data(), pid.size(), 0);
      }
    }
    return lock;
  }
};

// <store>/gigafab-gc.lock: one gc at a time, and while it runs no pack
// merge takes in a pack older than the lock's mtime (set when the gc took
// it). Nobody but the gc itself, or a merge aside (Store::merge_aside),
// waits for the writer lock while holding it, and nobody holding the writer
// lock waits for this one, so the two locks cannot deadlock.
struct GcLock {
  static Result<FileLock> acquire(const std::string& store_path) {
    return FileLock::acquire(store_path + "/gigafab-gc.lock");
  }
  static std::optional<FileLock> try_acquire(const std::string& store_path) {
    return FileLock::try_acquire(store_path + "/gigafab-gc.lock");
  }
};

BackgroundGc& background_gc_launcher() {
  static BackgroundGc launcher;
  return launcher;
}

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// The object ids listed in a version 2 pack index (.idx): magic, version,
// 256-entry fanout, then the sorted ids.
Result<std::vector<git_oid>> read_pack_index(const std::string& idx_path) {
  std::ifstream in(idx_path, std::ios::binary);
  std::vector<unsigned char> head(8 + 256 * 4);
  if (!in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size())) ||
      head[0] != 0xff || head[1] != 't' || head[2] != 'O' || head[3] != 'c' || head[7] != 2) {
    return make_error(ErrorCode::error, "cannot read pack index " + idx_path);
  }
  const unsigned char* last = head.data() + 8 + 255 * 4;
  std::uint32_t count = (std::uint32_t{last[0]} << 24) | (std::uint32_t{last[1]} << 16) |
                        (std::uint32_t{last[2]} << 8) | std::uint32_t{last[3]};
  std::vector<git_oid> ids(count);
  for (auto& id : ids) {
    if (!in.read(reinterpret_cast<char*>(id.id), GIT_OID_RAWSZ)) {
      return make_error(ErrorCode::error, "truncated pack index " + idx_path);
    }
  }
  return ids;
}

}  // namespace

std::string CommitInfo::trailer(std::string_view key) const {
  for (const auto& [k, v] : trailers) {
    if (k == key) return v;
  }
  return {};
}

struct Store::Impl {
  std::string path;
  git_repository* repo = nullptr;
  bool fsync = true;
  // New objects go to this in-memory backend and reach the disk as one pack
  // per commit (flush_objects): two files and a few fsyncs per transition
  // instead of one loose file, and its fsyncs, per object.
  git_odb_backend* mempack = nullptr;
  // The coordinating remote (gigafab.remote), and whether reads skip fetching.
  std::optional<remote::Endpoint> remote;
  bool offline = false;
  // When this process last fetched: a write starts from that copy if it is
  // fresh, since the push's compare-and-swap catches a stale one anyway.
  std::chrono::steady_clock::time_point fetched_at{};

  // The open group commit (Store::begin_group): its base, the merged change
  // and each operation's own change (for its audit block), and the view the
  // operations read.
  struct Group {
    git_oid base{};
    std::unique_ptr<core::Snapshot> base_snap;
    core::Change merged;
    std::vector<core::Change> operations;
    std::unique_ptr<core::OverlaySnapshot> view;
    std::uint64_t chain = 0;  // Pipeline::chains
  };
  std::unique_ptr<Group> group;
  // Store::defer_maintenance: merges wait for maintain(), and are due.
  bool defer_maintenance = false;
  std::atomic<bool> maintenance_due{false};
  // How many packs objects/pack held when last listed, plus those written
  // since (maintenance_needed asks before every batch; listing the
  // directory each time cost 2% of a server's CPU). k_unknown_packs: list.
  static constexpr std::size_t k_unknown_packs = static_cast<std::size_t>(-1);
  mutable std::atomic<std::size_t> pack_count{k_unknown_packs};

  // Pipelined group commits (Store::prepare_group): tickets in the order
  // groups were prepared, and the newest commit not known to have failed
  // (`speculative`), which the next group builds on. A chain is a run of
  // commits each built on the one before; when one fails, those built on it
  // are doomed and the next group starts again from the ref. While any
  // prepared group is unpublished its objects, and those of the commits it
  // builds on, live only in the mempack (and in the groups' copies, which
  // their publishers write): nothing resets the mempack until all are
  // published, and a new object database (forget_removed_packs) gets them
  // from the copies of the groups in flight.
  struct Pipeline {
    mutable std::mutex mutex;
    mutable std::condition_variable cv;
    std::uint64_t prepared = 0;
    std::uint64_t finished = 0;
    std::vector<const Store::Prepared::State*> flying;  // prepared, not finished
    std::optional<git_oid> speculative;
    std::uint64_t speculative_chain = 0;
    std::uint64_t chains = 0;
    std::size_t since_reset = 0;     // groups prepared since the mempack was last emptied
    git_repository* repo = nullptr;  // the publishers' own handle (one at a time), to read the ref
    ~Pipeline() {
      if (repo) git_repository_free(repo);
    }
  };
  Pipeline pipeline;

  bool busy() const {
    std::lock_guard lock(pipeline.mutex);
    return pipeline.finished < pipeline.prepared;
  }
  void wait_for_groups(std::size_t count) const {
    std::unique_lock lock(pipeline.mutex);
    pipeline.cv.wait(lock, [&] { return pipeline.prepared - pipeline.finished <= count; });
  }
  // Empties the mempack unless a prepared group still needs what it holds.
  void reset_mempack() {
    if (busy()) return;
    git_mempack_reset(mempack);
    pipeline.since_reset = 0;
  }

  ~Impl() {
    if (repo) git_repository_free(repo);  // frees the odb and its backends
  }

  // The packs this process's object database has seen (sorted bases), to
  // notice when some are gone (forget_removed_packs).
  std::vector<std::string> known_packs;
  struct timespec pack_dir_mtime {};

  Result<void> attach_mempack() {
    git_odb* odb = nullptr;
    if (git_repository_odb(&odb, repo) < 0) return git_failure("cannot open the object database");
    int rc = git_mempack_new(&mempack);
    if (rc == 0) rc = git_odb_add_backend(odb, mempack, 1000);
    git_odb_free(odb);
    if (rc < 0) return git_failure("cannot set up the in-memory object backend");
    for (const auto& pack : packs()) known_packs.push_back(pack.second);
    std::sort(known_packs.begin(), known_packs.end());
    return {};
  }

  // libgit2 (1.5) never drops a pack it has loaded, even once its files are
  // deleted: after a merge or a gc (this process's or another's) every lookup
  // of an object it does not hold went through each deleted pack again,
  // opening files that are gone. A long-running writer slowed down with every
  // commit (3 claims/s after 3,000 transitions). When packs have gone, a new
  // object database (same backends, a fresh mempack) replaces the old one.
  // Not at once: a new one reads every index again and starts with an empty
  // cache, and a busy server merges every few commits (its reader, checking
  // tokens, spent 4% of the server's CPU replacing it). The deleted packs
  // stay loaded until k_max_removed_held of them have gone or the first went
  // k_max_removed_age ago; meanwhile lookups skip them (a pack that cannot
  // be opened is passed over) and the disk space they held returns late.
  // Call between commits (no group open); groups in flight may be: their
  // objects go into the new mempack.
  static constexpr std::size_t k_max_removed_held = 24;
  static constexpr std::chrono::milliseconds k_max_removed_age{1000};
  std::size_t removed_held = 0;                        // deleted packs the object database still holds
  std::chrono::steady_clock::time_point removed_since;  // when the first of them was noticed gone

  bool removed_packs_due() const {
    return removed_held > 0 && (removed_held >= k_max_removed_held ||
                                std::chrono::steady_clock::now() - removed_since >= k_max_removed_age);
  }

  Result<void> forget_removed_packs(const std::vector<std::pair<std::uintmax_t, std::string>>& now) {
    std::vector<std::string> names;
    names.reserve(now.size());
    for (const auto& pack : now) names.push_back(pack.second);
    std::sort(names.begin(), names.end());
    std::vector<std::string> gone;
    std::set_difference(known_packs.begin(), known_packs.end(), names.begin(), names.end(), std::back_inserter(gone));
    known_packs = std::move(names);
    if (!gone.empty()) {
      if (removed_held == 0) removed_since = std::chrono::steady_clock::now();
      removed_held += gone.size();
    }
    if (!removed_packs_due()) return {};
    git_odb* odb = nullptr;
    if (git_odb_open(&odb, (path + "/objects").c_str()) < 0) return git_failure("cannot reopen the object database");
    git_odb_backend* fresh = nullptr;
    int rc = git_mempack_new(&fresh);
    if (rc == 0) rc = git_odb_add_backend(odb, fresh, 1000);
    // The groups in flight build on objects that are only in the old
    // mempack: the new one gets them from their copies.
    if (rc == 0) rc = carry_over_groups_in_flight(fresh);
    if (rc == 0) rc = git_repository_set_odb(repo, odb);
    git_odb_free(odb);  // the repository holds it now (or it is freed, with `fresh`)
    if (rc < 0) return git_failure("cannot reopen the object database");
    mempack = fresh;
    removed_held = 0;
    return {};
  }
  // Writes the objects of every prepared group not yet published into
  // `backend` (a mempack); libgit2's error code. Defined below
  // Prepared::State.
  int carry_over_groups_in_flight(git_odb_backend* backend);

  // Writes the objects of `written` that are new (still in the mempack) as one
  // pack (and index) under objects/pack, fsynced when the store is durable
  // (with the file `sync_alongside`, see packfile::write). Only these
  // objects: git_mempack_dump would pack the whole tree. True when a pack
  // was written (and `sync_alongside` synced with it).
  // The objects of `written` still only in the mempack, sorted, once each.
  std::vector<git_oid> in_mempack(const std::vector<git_oid>& written) const {
    std::vector<git_oid> fresh;
    for (const git_oid& oid : written) {
      if (mempack->exists(mempack, &oid)) fresh.push_back(oid);
    }
    std::sort(fresh.begin(), fresh.end(), [](const git_oid& a, const git_oid& b) { return git_oid_cmp(&a, &b) < 0; });
    fresh.erase(std::unique(fresh.begin(), fresh.end(), [](const git_oid& a, const git_oid& b) { return git_oid_equal(&a, &b); }),
                fresh.end());
    return fresh;
  }

  Result<bool> flush_objects(const std::vector<git_oid>& written, int sync_alongside = -1) {
    // The objects of this commit that are new (still only in the mempack),
    // once each, as one pack written directly (gitstore/packfile.hpp).
    std::vector<git_oid> fresh = in_mempack(written);
    if (fresh.empty()) {
      reset_mempack();
      return false;
    }
    git_odb* odb = nullptr;
    if (git_repository_odb(&odb, repo) < 0) {
      reset_mempack();
      return git_failure("cannot open the object database");
    }
    std::vector<git_odb_object*> read;
    std::vector<packfile::Object> objects;
    Result<void> written_ok{};
    for (const git_oid& oid : fresh) {
      git_odb_object* object = nullptr;
      if (git_odb_read(&object, odb, &oid) < 0) {
        written_ok = git_failure("cannot read a new object");
        break;
      }
      read.push_back(object);
      objects.push_back({oid, git_odb_object_type(object),
                         std::string_view(static_cast<const char*>(git_odb_object_data(object)), git_odb_object_size(object))});
    }
    if (written_ok) written_ok = packfile::write(pack_dir(), objects, fsync, sync_alongside);
    if (written_ok) noted_new_pack();
    for (git_odb_object* object : read) git_odb_object_free(object);
    if (written_ok) git_odb_refresh(odb);
    git_odb_free(odb);
    reset_mempack();
    if (!written_ok) return written_ok.error();
    return true;
  }

  std::string pack_dir() const { return path + "/objects/pack"; }

  // A file being written: ours (packfile.hpp), or git pack-objects' (gc).
  static bool is_temporary(const std::string& name) {
    if (spare_files::is_live_spare(name)) return false;  // a live serve's, ready for its next pack
    return name.rfind("tmp_gigafab_", 0) == 0 || name.rfind("tmp_pack_", 0) == 0 || name.rfind("tmp_idx_", 0) == 0 ||
           name.rfind("tmp_rev_", 0) == 0;
  }

  void noted_new_pack() {
    std::size_t n = pack_count.load();
    while (n != k_unknown_packs && !pack_count.compare_exchange_weak(n, n + 1)) {
    }
  }

  // Complete packs in objects/pack with their sizes, smallest first. A pack
  // is complete once its index is there: writers rename the index in last.
  // The size weighs both what a merge's work grows with: the bytes it
  // copies, and the objects (their ids sorted, an index written: about as
  // much as 100 bytes copied each, 28 bytes of index). A merged pack's trees
  // are deltas, a small share of the bytes a commit's pack wrote for them:
  // sized by its bytes alone, the merges took in the large merged packs
  // again every few commits; by its objects alone, the large packs written
  // before deltas.
  // With `garbage`: also the files a killed writer can leave (an index
  // without its pack, a pack without its index, a temporary file); only
  // garbage when no pack is being written.
  std::vector<std::pair<std::uintmax_t, std::string>> packs(std::vector<std::string>* garbage = nullptr) const {
    std::vector<std::pair<std::uintmax_t, std::string>> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(pack_dir(), ec)) {
      std::string file = entry.path().string();
      std::string ext = entry.path().extension().string();
      std::string base = file.substr(0, file.size() - ext.size());
      std::error_code other_ec;
      if (ext == ".idx") {
        const auto bytes = fs::file_size(base + ".pack", other_ec);
        const auto index = other_ec ? 0 : entry.file_size(other_ec);
        if (!other_ec) {
          out.emplace_back(bytes + 4 * index, base);
        } else if (garbage) {
          garbage->push_back(file);
        }
      } else if (garbage && ((ext == ".pack" && !fs::exists(base + ".idx", other_ec)) ||
                             is_temporary(entry.path().filename().string()))) {
        garbage->push_back(file);
      }
    }
    std::sort(out.begin(), out.end());
    pack_count = out.size();
    return out;
  }

  // The pack first: an index left without it (the process killed here) is
  // ignored by every reader, and removed by the next pack merge.
  // Its files are freed on a helper thread (fd_io::close_later), not by
  // the unlink or by libgit2 closing the pack.
  void remove_pack(const std::string& base) {
    for (const char* ext : {".pack", ".idx", ".rev", ".keep"}) {
      const std::string file = base + ext;
      const int held = fd_io::hold_for_close_later(file);
      std::error_code ec;
      fs::remove(file, ec);
      fd_io::close_later(held);
    }
  }

  // Once there are more than k_max_packs, merges the smallest packs, enough
  // of them to leave k_packs_after_merge, and more while the next one is no
  // larger than twice what is merged so far (a geometric progression, like
  // git repack --geometric). Leaving room for a few packs means a merge every
  // few commits rather than after each one: every merge creates two files and
  // deletes more, and on ext4 without a journal each file created within a
  // minute of many deletions costs about 0.35 ms instead of 0.02 ms (the
  // allocator skips recently deleted inodes). Entries are copied byte for
  // byte (no recompression; the trees of commits' packs become deltas, see
  // packfile::concatenate), so a merge costs about a copy of what it takes
  // in. A merge never takes in every pack: that would copy the whole store
  // inside one write; the background gc (request_background_gc) repacks it
  // with deltas instead, outside the writer lock. Skipped while a gc runs (it is about to
  // replace these packs). Caller holds the writer lock.
  //
  // While a gc runs (it holds gigafab-gc.lock for minutes on a big store)
  // only the packs written since it took the lock are merged: the others
  // are the ones its git may be reading and it deletes at its end. Without
  // that, every commit behind a long gc left one more pack (160 after a
  // 16-client HTTP bench), which each lookup of a new object walked.
  static constexpr std::size_t k_max_packs = 8;

  // Where a merge runs. Without `aside`: for this handle, whose caller
  // holds the writer lock; the handle's object database learns of the merge
  // at once. With it: on a thread of its own beside this handle's commits (a
  // server's merger, Store::merge_aside). Then it touches files only, takes
  // the writer lock only to remove what a killed writer left (and leaves the
  // merges behind a gc to the handle), and reaches the handle only through
  // `aside`, never holding the writer lock: there the packs merged are
  // removed and the handle's object database loads the merged pack (the
  // handle, not finding an object they held, would write it again, and
  // the next merge would refuse the duplicate), as a merge on the handle
  // does.
  using WithHandle = Store::WithHandle;
  std::mutex merge_mutex;
  // The trees the last merge wrote, for the next one's deltas (under
  // merge_mutex).
  packfile::TreeVersions merge_versions;

  // With groups in flight (pipelined group commit) a merge runs all the
  // same: the writer lock keeps their publishers out meanwhile (or, aside,
  // they write new packs beside it), and the object database forgets the
  // merged packs once none is in flight.
  Result<void> consolidate_packs(const WithHandle* aside = nullptr, bool* left_to_handle = nullptr) {
    // One merge of this process at a time; a commit's own merge leaves the
    // packs to a merge aside that is running (it may be waiting for the
    // writer lock that commit holds).
    std::unique_lock merging(merge_mutex, std::defer_lock);
    if (aside) {
      merging.lock();
    } else if (!merging.try_lock()) {
      return {};
    }
    std::vector<std::string> garbage;
    if (!aside) remember_pack_dir();
    auto all = packs(&garbage);
    if (!aside) {
      if (auto ok = forget_removed_packs(all); !ok) return ok;
    }
    if (all.size() <= k_max_packs && garbage.empty()) return {};
    auto gc_lock = GcLock::try_acquire(path);
    if (!gc_lock) {
      if (all.size() <= k_max_packs) return {};
      if (!aside) return merge_behind_gc(all);
      // Behind a gc a merge needs the writer lock throughout, and the
      // handle may be waiting for a publish that waits for that lock: the
      // handle's owner runs it (maintain()).
      if (left_to_handle) *left_to_handle = true;
      return {};
    }
    if (!garbage.empty()) {
      // With both locks held nobody is writing a pack: what a killed
      // process left half-written goes. Aside, the writer lock is taken for
      // this, and what is garbage is looked at again under it.
      std::optional<FileLock> writer;
      if (aside) {
        auto lock = WriterLock::acquire(path);
        if (!lock) return lock.error();
        writer.emplace(std::move(*lock));
        garbage.clear();
        all = packs(&garbage);
      }
      for (const auto& file : garbage) {
        std::error_code ec;
        if (fs::remove(file, ec)) log_line(path, "removed " + file + ", left by a process that died writing it");
      }
    }
    if (all.size() <= k_max_packs) return {};
    std::size_t count = packs_to_merge(all);
    // All of them: the store has about doubled since it was last packed.
    const bool doubled = count == all.size();
    if (doubled) --count;
    Result<bool> merged = count < 2 ? Result<bool>(true) : merge_packs(all, count, aside);
    gc_lock.reset();
    if (doubled || (merged && !*merged)) request_background_gc();
    if (!merged) return merged.error();
    return {};
  }

  // How many of `packs` (smallest first) to merge: enough to leave 4, and
  // more while the next one is no larger than twice what is merged so far.
  static std::size_t packs_to_merge(const std::vector<std::pair<std::uintmax_t, std::string>>& packs) {
    constexpr std::size_t k_packs_after_merge = 4;
    std::uintmax_t merged_size = 0;
    std::size_t count = 0;
    const std::size_t at_least = packs.size() < k_packs_after_merge ? 0 : packs.size() - k_packs_after_merge + 1;
    while (count < packs.size() && (count < at_least || packs[count].first <= 2 * merged_size)) {
      merged_size += packs[count].first;
      ++count;
    }
    return count;
  }

  // A gc holds its lock, which it touched when it took it (Store::gc): the
  // packs written since then, by the same rule but never the largest (the
  // gc's own pack once its git has written it). Caller holds the writer lock.
  Result<void> merge_behind_gc(const std::vector<std::pair<std::uintmax_t, std::string>>& all) {
    struct stat lock_st {};
    if (::stat((path + "/gigafab-gc.lock").c_str(), &lock_st) != 0) return {};
    auto after = [](const struct timespec& a, const struct timespec& b) {
      return a.tv_sec != b.tv_sec ? a.tv_sec > b.tv_sec : a.tv_nsec > b.tv_nsec;
    };
    std::vector<std::pair<std::uintmax_t, std::string>> fresh;
    for (const auto& pack : all) {
      struct stat st {};
      if (::stat((pack.second + ".pack").c_str(), &st) == 0 && after(st.st_mtim, lock_st.st_mtim)) fresh.push_back(pack);
    }
    // As many as a merge leaves on its own: merged once past four, the
    // newest commit's pack went with the smallest merged one after every
    // commit (a copy of a megabyte or more each time).
    if (fresh.size() <= k_max_packs) return {};
    std::size_t count = std::min(packs_to_merge(fresh), fresh.size() - 1);
    if (count < 2) return {};
    auto merged = merge_packs(fresh, count, nullptr);
    if (!merged) return merged.error();
    return {};
  }

  // Merges the `count` first of `all` into one pack; false when not all of
  // them: an object in two packs over 64 MiB (two gcs' packs), which the
  // merge cannot leave out of the second (see packfile::concatenate) and
  // only a gc sorts out. Then the others merge without the large ones:
  // behind a recent gc, when none may start, refusing them all let the
  // packs pile up (140 after 150 commits in a store test).
  Result<bool> merge_packs(const std::vector<std::pair<std::uintmax_t, std::string>>& all, std::size_t count,
                           const WithHandle* aside) {
    std::vector<std::string> bases;
    for (std::size_t i = 0; i < count; ++i) bases.push_back(all[i].second);
    auto merged = packfile::concatenate(pack_dir(), bases, fsync, &merge_versions);
    bool whole = true;
    if (!merged && merged.error().code == ErrorCode::usage) {
      whole = false;
      std::erase_if(bases, [](const std::string& base) {
        std::error_code ec;
        return fs::file_size(base + ".pack", ec) > (std::uintmax_t{64} << 20) || ec;
      });
      if (bases.size() < 2) return false;
      merged = packfile::concatenate(pack_dir(), bases, fsync, &merge_versions);
      if (!merged && merged.error().code == ErrorCode::usage) return false;
    }
    if (!merged) return merged.error();
    // The merged packs go and the object database loads the new one. Aside,
    // under the handle's lock, so that the handle never looks for an object
    // between the two (not finding it, it would write it again). Groups in
    // flight do not hold it up: a new object database gets their objects
    // (forget_removed_packs). Waiting for none to be in flight held every
    // request up for a publish (5 ms) every sixth commit under load.
    Result<void> refreshed{};
    auto swap = [&] {
      for (const auto& base : bases) {
        if (base != *merged) remove_pack(base);
      }
      refreshed = refresh_odb();
    };
    if (aside) {
      (*aside)(swap);
    } else {
      swap();
    }
    if (!refreshed) return refreshed.error();
    return whole;
  }

  // For a process that only reads (writers check after each commit): when
  // the pack directory changed since the last look, forgets the packs other
  // processes removed. A stat when nothing changed, and not even that within
  // k_pack_look_interval of the last look: under load every commit adds a
  // pack, so the directory changed between any two calls, and a server's
  // token checks listed it (a stat per pack) once per commit. Nothing
  // depends on noticing at once (see forget_removed_packs).
  static constexpr std::chrono::milliseconds k_pack_look_interval{200};
  std::optional<std::chrono::steady_clock::time_point> pack_dir_looked_at;
  void notice_removed_packs() {
    if (busy()) return;  // see forget_removed_packs
    const auto now = std::chrono::steady_clock::now();
    if (pack_dir_looked_at && now - *pack_dir_looked_at < k_pack_look_interval) return;
    pack_dir_looked_at = now;
    if (!remember_pack_dir() && !removed_packs_due()) return;
    if (auto ok = forget_removed_packs(packs()); !ok) {
      std::fprintf(stderr, "gigafab: warning: %s\n", ok.error().message.c_str());
    }
  }

  // Notes the pack directory's mtime before a listing of it, so that
  // notice_removed_packs() lists it again only once something changed it
  // since (a writer's own commits list it in consolidate_packs). True when
  // it changed since the last note.
  bool remember_pack_dir() {
    struct stat st {};
    if (::stat(pack_dir().c_str(), &st) != 0) return false;
    if (st.st_mtim.tv_sec == pack_dir_mtime.tv_sec && st.st_mtim.tv_nsec == pack_dir_mtime.tv_nsec) return false;
    pack_dir_mtime = st.st_mtim;
    return true;
  }

  // Loads new packs, and forgets the removed ones.
  Result<void> refresh_odb() {
    remember_pack_dir();
    if (auto ok = forget_removed_packs(packs()); !ok) return ok;
    git_odb* odb = nullptr;
    if (git_repository_odb(&odb, repo) == 0) {
      git_odb_refresh(odb);
      git_odb_free(odb);
    }
    return {};
  }

  // A gc takes at most about a tenth of the store's time: none starts
  // within ten times the last one's duration of its end (gc_stamp). Under a
  // steady load a busy store doubles every second or two, and a gc running
  // back to back with the next one took a fifth of serve's CPU and wrote to
  // the disk the commits' fsyncs wait on. Merges keep the packs few meanwhile.
  void request_background_gc() {
    if (!background_gc_launcher()) return;
    if (gc_ran_recently()) return;
    if (!GcLock::try_acquire(path)) return;  // one is running
    background_gc_launcher()(path);
  }

  std::string gc_stamp() const { return path + "/gigafab-gc.stamp"; }

  bool gc_ran_recently() const {
    struct stat st {};
    if (::stat(gc_stamp().c_str(), &st) != 0) return false;
    long long took_ms = 0;
    if (FILE* f = std::fopen(gc_stamp().c_str(), "r")) {
      if (std::fscanf(f, "%lld", &took_ms) != 1) took_ms = 0;
      std::fclose(f);
    }
    const long long ended_ms = static_cast<long long>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    const long long now_ms = core::now_millis();
    return now_ms >= ended_ms && now_ms - ended_ms < 10 * took_ms;
  }

  // Notes how long the gc that just ended took (its end is the file's mtime).
  void stamp_gc(core::Millis took_ms) const {
    const std::string tmp = gc_stamp() + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%lld\n", static_cast<long long>(took_ms));
      if (std::fclose(f) == 0 && std::rename(tmp.c_str(), gc_stamp().c_str()) == 0) return;
    }
    std::remove(tmp.c_str());
  }

  // `in`: through another handle on the same repository (a publisher's).
  Result<std::optional<git_oid>> tip(const char* ref = k_state_ref, git_repository* in = nullptr) const {
    git_oid oid;
    int rc = git_reference_name_to_id(&oid, in ? in : repo, ref);
    if (rc == GIT_ENOTFOUND && ref != std::string_view(k_state_ref)) return std::optional<git_oid>{};
    if (rc == GIT_ENOTFOUND) {
      return make_error(ErrorCode::error, "store " + path + " has no " + k_state_ref +
                                              " (corrupt store? restore the ref or re-create the store)");
    }
    if (rc < 0) return git_failure("cannot read " + std::string(ref) + " in " + path);
    return std::optional<git_oid>{oid};
  }

  Result<git_tree*> tree_of(const git_oid& commit_oid) const {
    CommitHandle commit;
    if (lookup_racing_merges(repo, [&] { return git_commit_lookup(commit.out(), repo, &commit_oid); }) < 0) {
      return git_failure("corrupt store " + path + ": cannot read commit " + oid_hex(commit_oid));
    }
    git_tree* tree = nullptr;
    if (lookup_racing_merges(repo, [&] { return git_commit_tree(&tree, commit.get()); }) < 0) {
      return git_failure("corrupt store " + path + ": cannot read tree of " + oid_hex(commit_oid));
    }
    return tree;
  }

  // First-parent history from `tip` (newest first), stopping at `hide`.
  Result<std::vector<CommitInfo>> commits(const git_oid& tip, const git_oid* hide, std::size_t limit) const {
    WalkHandle walk;
    if (git_revwalk_new(walk.out(), repo) < 0) return git_failure("cannot walk history");
    git_revwalk_simplify_first_parent(walk.get());
    if (git_revwalk_push(walk.get(), &tip) < 0) return git_failure("cannot walk history");
    if (hide && git_revwalk_hide(walk.get(), hide) < 0) return git_failure("cannot walk history");
    std::vector<CommitInfo> out;
    git_oid oid;
    while (git_revwalk_next(&oid, walk.get()) == 0) {
      CommitHandle commit;
      if (lookup_racing_merges(repo, [&] { return git_commit_lookup(commit.out(), repo, &oid); }) < 0) {
        return git_failure("cannot read commit");
      }
      CommitInfo info;
      info.oid = oid_hex(oid);
      info.time = static_cast<core::Millis>(git_commit_time(commit.get())) * 1000;
      const char* summary = git_commit_summary(commit.get());
      info.summary = summary ? summary : "";
      git_message_trailer_array trailers{};
      if (git_message_trailers(&trailers, git_commit_message(commit.get())) == 0) {
        for (std::size_t i = 0; i < trailers.count; ++i) {
          info.trailers.emplace_back(trailers.trailers[i].key, trailers.trailers[i].value);
        }
        git_message_trailer_array_free(&trailers);
      }
      if (info.trailer("Gigafab-Op") == "group") {
        auto ops = group_operations(git_commit_message(commit.get()), info);
        for (auto it = ops.rbegin(); it != ops.rend(); ++it) out.push_back(std::move(*it));
      } else {
        out.push_back(std::move(info));
      }
      if (limit && out.size() >= limit) {
        out.resize(limit);
        break;
      }
    }
    return out;
  }

  std::string fetch_stamp() const { return path + "/gigafab-fetched"; }

  bool fetched_recently() const {
    return fetched_at.time_since_epoch().count() != 0 &&
           std::chrono::steady_clock::now() - fetched_at < std::chrono::milliseconds(250);
  }

  Result<void> fetch_remote() {
    if (auto ok = remote::fetch(repo, *remote); !ok) return ok;
    fetched_at = std::chrono::steady_clock::now();
    // Fetched objects arrive as packs the odb has not seen yet.
    git_odb* odb = nullptr;
    if (git_repository_odb(&odb, repo) == 0) {
      git_odb_refresh(odb);
      git_odb_free(odb);
    }
    if (FILE* f = std::fopen(fetch_stamp().c_str(), "w")) {
      std::fprintf(f, "%lld\n", static_cast<long long>(core::now_millis()));
      std::fclose(f);
    }
    return {};
  }

  Result<void> set_ref(const char* ref, const git_oid& oid) {
    RefHandle handle;
    if (git_reference_create(handle.out(), repo, ref, &oid, 1, "gigafab") < 0) {
      return git_failure("cannot update " + std::string(ref));
    }
    return {};
  }

  // Removes a ref lock file that no live gigafab writer can own: we hold the
  // writer lock, so a ref lock older than a few seconds was left by a process
  // killed between creating and renaming it.
  bool recover_stale_ref_lock(const char* ref) const {
    std::string lock = path + "/" + ref + ".lock";
    struct stat st {};
    if (::stat(lock.c_str(), &st) != 0) return false;
    double age = std::difftime(std::time(nullptr), st.st_mtime);
    if (age < 2) return false;
    if (::unlink(lock.c_str()) != 0) return false;
    log_event(path, "removed stale lock " + lock + " left by a dead process (age " +
                        std::to_string(static_cast<long long>(age)) + "s)");
    return true;
  }

  // A commit whose new objects are still only in the mempack (build_commit):
  // publish() or flush_objects() writes them.
  struct BuiltCommit {
    git_oid id;
    std::vector<git_oid> written;
  };

  // Writes `change` on top of `base_commit`'s tree as a commit whose parent is
  // `parent` (both may be null), its objects on disk.
  Result<git_oid> write_commit(const git_oid* parent, const core::Change& change, const std::string& actor,
                               const git_oid* base_commit = nullptr) {
    auto built = build_commit(parent, change, actor, base_commit);
    if (!built) return built.error();
    if (auto ok = flush_objects(built->written); !ok) return ok.error();
    return built->id;
  }

  // Moves `ref` from `expected` (null: it must not exist yet) to the built
  // commit, writing its objects first (the ref's lock file fsynced together
  // with their pack); false, with nothing written, when the ref has moved.
  // Waits for a lock someone else holds on the ref (a git process), and
  // removes one a killed writer left behind. Caller holds the writer lock.
  Result<bool> publish(const char* ref, const BuiltCommit& commit, const git_oid* expected) {
    struct ResetMempack {
      Impl* impl;
      ~ResetMempack() { impl->reset_mempack(); }
    } reset{this};
    return move_ref(repo, ref, commit.id, expected, [&](int fd) { return flush_objects(commit.written, fd); });
  }

  // publish()'s compare-and-swap, the ref read through `ref_repo`:
  // `write_objects(fd)` writes the commit's objects while the ref is locked
  // (true: a pack was written and synced with the lock file `fd`).
  Result<bool> move_ref(git_repository* ref_repo, const char* ref, const git_oid& next, const git_oid* expected,
                        const std::function<Result<bool>(int)>& write_objects) const {
    const core::Millis lock_deadline = core::now_millis() + 10'000;
    for (;;) {
      auto lock = RefLock::take(ref_repo, path, ref, expected, next);
      if (!lock) return lock.error();
      if (lock->state() == RefLock::State::moved) return false;
      if (lock->state() == RefLock::State::held) {
        auto packed = write_objects(lock->fd());
        if (!packed) return packed.error();
        if (auto ok = lock->commit(fsync, *packed); !ok) return ok.error();
        return true;
      }
      if (recover_stale_ref_lock(ref)) continue;
      if (core::now_millis() > lock_deadline) {
        return make_error(ErrorCode::error, "cannot update " + std::string(ref) + ": " + path + "/" + ref +
                                                ".lock is held by another process");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // For Store::prepare_group and publish_group (defined with Prepared::State).
  Result<void> copy_new_objects(const std::vector<git_oid>& written, Store::Prepared::State& into);
  Result<void> publish_prepared(Store::Prepared::State& prepared);

  // build_commit's part of write_commit: the objects stay in the mempack.
  Result<BuiltCommit> build_commit(const git_oid* parent, const core::Change& change, const std::string& actor,
                                   const git_oid* base_commit = nullptr) {
    if (!base_commit) base_commit = parent;
    TreeHandle base;
    if (base_commit) {
      auto tree = tree_of(*base_commit);
      if (!tree) return tree.error();
      base.ptr = *tree;
    }
    // Whatever fails leaves nothing behind in the mempack.
    struct ResetMempack {
      Impl* impl;
      ~ResetMempack() {
        if (impl) impl->reset_mempack();
      }
    } reset{this};
    git_odb* odb = nullptr;
    if (git_repository_odb(&odb, repo) < 0) return git_failure("cannot open the object database");
    std::unique_ptr<git_odb, void (*)(git_odb*)> odb_handle(odb, git_odb_free);
    std::vector<git_oid> written;
    ObjectWriter writer(odb, mempack, written);
    auto root = build_tree(repo, writer, base.get(), change.writes);
    if (!root) return root.error();
    if (!*root) return make_error(ErrorCode::error, "refusing to write an empty state tree");
    TreeHandle tree;
    if (git_tree_lookup(tree.out(), repo, &**root) < 0) return git_failure("cannot read new tree");
    SigHandle sig;
    core::Millis now = core::now_millis();
    if (git_signature_new(sig.out(), actor.c_str(), ("gigafab@" + hostname()).c_str(), now / 1000, 0) < 0) {
      return git_failure("cannot create signature");
    }
    CommitHandle parent_commit;
    const git_commit* parents[1] = {nullptr};
    if (parent) {
      if (git_commit_lookup(parent_commit.out(), repo, parent) < 0) return git_failure("cannot read parent");
      parents[0] = parent_commit.get();
    }
    std::string message = change.message();  // UTF-8, git's default: no encoding header
    git_buf buffer = GIT_BUF_INIT;
    if (git_commit_create_buffer(&buffer, repo, sig.get(), sig.get(), nullptr, message.c_str(), tree.get(),
                                 parent ? 1 : 0, parents) < 0) {
      return git_failure("cannot write commit");
    }
    auto commit = writer.put(std::string_view(buffer.ptr, buffer.size), GIT_OBJECT_COMMIT);
    git_buf_dispose(&buffer);
    if (!commit) return commit.error();
    reset.impl = nullptr;
    return BuiltCommit{*commit, std::move(written)};
  }
};

Store::Store(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

const std::string& Store::path() const { return m_impl->path; }
bool Store::fsync() const { return m_impl->fsync; }

Result<std::string> Store::locate(const std::optional<std::string>& explicit_path) {
  if (explicit_path && !explicit_path->empty()) return *explicit_path;
  std::error_code ec;
  fs::path dir = fs::current_path(ec);
  if (ec) return make_error(ErrorCode::error, "cannot read the working directory: " + ec.message());
  for (;;) {
    fs::path candidate = dir / ".gigafab";
    if (fs::is_directory(candidate, ec)) return candidate.string();
    if (!dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return make_error(ErrorCode::error, "no store found (run 'gigafab init')");
}

Result<Store> Store::open(const std::string& path) {
  ensure_libgit2();
  auto not_store = [&](const std::string& why) {
    return make_error(ErrorCode::error, "not a gigafab store: " + path + " (" + why + ")");
  };
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return not_store("no such directory");
  auto impl = std::make_unique<Impl>();
  impl->path = fs::absolute(path, ec).lexically_normal().string();
  if (!impl->path.empty() && impl->path.back() == '/') impl->path.pop_back();
  if (git_repository_open_ext(&impl->repo, impl->path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) < 0) {
    return not_store("not a git repository");
  }
  if (auto ok = impl->attach_mempack(); !ok) return ok.error();
  ConfigHandle config;
  if (git_repository_config_snapshot(config.out(), impl->repo) < 0) return git_failure("cannot read config");
  int32_t version = 0;
  if (git_config_get_int32(&version, config.get(), "gigafab.version") < 0) {
    return not_store("no gigafab.version in its config; run 'gigafab init' to create a store");
  }
  if (version != core::layout::k_format_version && version != 1) {
    return not_store("store format " + std::to_string(version) + " is not supported by this gigafab");
  }
  int fsync_on = 1;
  if (git_config_get_bool(&fsync_on, config.get(), "gigafab.fsync") == 0) impl->fsync = fsync_on != 0;
  git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, impl->fsync ? 1 : 0);
  git_buf remote_name = GIT_BUF_INIT;
  if (git_config_get_string_buf(&remote_name, config.get(), "gigafab.remote") == 0 && remote_name.size > 0) {
    auto endpoint = remote::lookup(impl->repo, std::string(remote_name.ptr, remote_name.size));
    git_buf_dispose(&remote_name);
    if (!endpoint) return endpoint.error();
    impl->remote = std::move(*endpoint);
  } else {
    git_buf_dispose(&remote_name);
  }
  if (auto tip = impl->tip(); !tip) return tip.error();
  Store store(std::move(impl));
  if (version == 1) {
    if (auto ok = store.upgrade_from_format_1(); !ok) return ok.error();
  }
  return store;
}

// Format 1 kept every queue entry directly under <capset>; format 2 keeps
// them in buckets (core/queue_index.hpp). One commit moves them, then the
// config says 2. With a remote, the first host to open the store upgrades
// the shared state; the others find nothing to move.
Result<void> Store::upgrade_from_format_1() {
  auto committed = transact(
      [](const core::Snapshot& snap) -> Result<core::Change> {
        core::Change change;
        auto moved = core::queue_index::migrate_flat(snap, change);
        if (!moved) return moved.error();
        auto meta = snap.read(core::layout::k_meta);
        if (!meta) return meta.error();
        if (*meta && (*meta)->rfind("format = 1\n", 0) == 0) {
          change.put(std::string(core::layout::k_meta), "format = 2\n" + (*meta)->substr(11));
        }
        if (change.empty()) return change;
        change.summary = "upgrade: store format 1 -> 2 (queue index in buckets)";
        change.trailers = {{"Gigafab-Op", "upgrade"}, {"Gigafab-Actor", "gigafab"}};
        return change;
      },
      "gigafab");
  if (!committed) return committed.error();
  ConfigHandle config;
  if (git_repository_config(config.out(), m_impl->repo) < 0 ||
      git_config_set_int32(config.get(), "gigafab.version", core::layout::k_format_version) < 0) {
    return git_failure("cannot record the store format");
  }
  log_line(m_impl->path, "upgraded the store from format 1 to " + std::to_string(core::layout::k_format_version));
  return {};
}

Result<Store> Store::init(const std::string& path, const InitOptions& options, const std::string& actor) {
  ensure_libgit2();
  git_repository* probe = nullptr;
  if (git_repository_open_ext(&probe, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) == 0) {
    git_repository_free(probe);
    return make_error(ErrorCode::conflict, "a git repository already exists at " + path);
  }
  git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, options.fsync ? 1 : 0);
  auto impl = std::make_unique<Impl>();
  git_repository_init_options init_opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  init_opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
  init_opts.description = "gigafab store: fleet state lives on refs/gigafab/state";
  if (git_repository_init_ext(&impl->repo, path.c_str(), &init_opts) < 0) {
    return git_failure("cannot create store at " + path);
  }
  if (auto ok = impl->attach_mempack(); !ok) return ok.error();
  std::error_code ec;
  impl->path = fs::absolute(path, ec).lexically_normal().string();
  if (!impl->path.empty() && impl->path.back() == '/') impl->path.pop_back();
  impl->fsync = options.fsync;
  ConfigHandle config;
  if (git_repository_config(config.out(), impl->repo) < 0 ||
      git_config_set_int32(config.get(), "gigafab.version", core::layout::k_format_version) < 0 ||
      git_config_set_bool(config.get(), "gigafab.fsync", options.fsync) < 0 ||
      git_config_set_bool(config.get(), "core.logAllRefUpdates", false) < 0) {
    return git_failure("cannot configure store at " + path);
  }
  core::Change first;
  first.put(std::string(core::layout::k_meta),
            "format = " + std::to_string(core::layout::k_format_version) + "\ncreated_at = \"" +
                core::format_time(core::now_millis()) + "\"\n");
  first.summary = "init gigafab store";
  first.trailers = {{"Gigafab-Op", "init"}, {"Gigafab-Actor", actor}};
  auto commit = impl->write_commit(nullptr, first, actor);
  if (!commit) return commit.error();
  RefHandle ref;
  if (git_reference_create(ref.out(), impl->repo, k_state_ref, &*commit, 0, "gigafab init") < 0) {
    return git_failure("cannot create " + std::string(k_state_ref));
  }
  return Store(std::move(impl));
}

Result<std::unique_ptr<core::Snapshot>> Store::snapshot(std::string* tip_out) const {
  if (m_impl->group) {
    if (tip_out) tip_out->clear();
    return std::unique_ptr<core::Snapshot>(std::make_unique<BorrowedSnapshot>(*m_impl->group->view));
  }
  m_impl->notice_removed_packs();
  auto tip = m_impl->tip();
  if (!tip) return tip.error();
  auto tree = m_impl->tree_of(**tip);
  if (!tree) return tree.error();
  if (tip_out) *tip_out = oid_hex(**tip);
  return std::unique_ptr<core::Snapshot>(std::make_unique<TreeSnapshot>(m_impl->repo, *tree));
}

Result<std::string> Store::tip_id() const {
  auto tip = m_impl->tip();
  if (!tip) return tip.error();
  return oid_hex(**tip);
}

Result<std::string> Store::transact(const Operation& op, const std::string& actor) {
  if (auto& group = m_impl->group) {
    auto change = op(*group->view);
    if (!change) return change.error();
    if (!change->empty()) {
      for (auto& [path, content] : change->writes) group->merged.writes[path] = content;
      group->operations.push_back(std::move(*change));
    }
    return oid_hex(group->base);  // the commit comes with commit_group()
  }
  return transact_on(k_state_ref, op, actor, true);
}

Result<bool> Store::begin_group() {
  if (m_impl->group) return make_error(ErrorCode::error, "a group commit is already open");
  if (m_impl->remote) return false;
  Impl::Pipeline& pipe = m_impl->pipeline;
  // What the mempack holds for groups in flight grows with each: now and
  // then the pipeline empties, and so does the mempack.
  constexpr std::size_t k_groups_per_reset = 32;
  if (pipe.since_reset >= k_groups_per_reset) m_impl->wait_for_groups(0);
  m_impl->reset_mempack();
  m_impl->notice_removed_packs();  // as in transact_on
  std::optional<git_oid> base;
  std::uint64_t chain = 0;
  {
    std::lock_guard lock(pipe.mutex);
    if (pipe.speculative) {
      base = *pipe.speculative;
      chain = pipe.speculative_chain;
    } else {
      chain = ++pipe.chains;
    }
  }
  if (!base) {
    auto tip = m_impl->tip();
    if (!tip) return tip.error();
    if (!*tip) return make_error(ErrorCode::error, "the store has no state ref");
    base = **tip;
  }
  auto tree = m_impl->tree_of(*base);
  if (!tree) return tree.error();
  auto group = std::make_unique<Impl::Group>();
  group->base = *base;
  group->chain = chain;
  group->base_snap = std::make_unique<TreeSnapshot>(m_impl->repo, *tree);
  group->view = std::make_unique<core::OverlaySnapshot>(*group->base_snap, group->merged);
  m_impl->group = std::move(group);
  return true;
}

bool Store::in_group() const { return m_impl->group != nullptr; }

std::size_t Store::group_size() const { return m_impl->group ? m_impl->group->operations.size() : 0; }

void Store::abandon_group() { m_impl->group.reset(); }

namespace {

Error group_lost_error() {
  Error e = make_error(ErrorCode::conflict, "the state ref moved while a group commit was open");
  e.reason = "group_lost";
  return e;
}

}  // namespace

// A prepared group: its commit, the objects to write for it (copies: the
// publisher reads nothing of the handle's), and its place in the pipeline.
struct Store::Prepared::State {
  Store::Impl* impl = nullptr;
  std::uint64_t ticket = 0;
  std::uint64_t chain = 0;
  git_oid base{};
  git_oid id{};
  struct Object {
    git_oid id;
    git_object_t type;
    std::string data;
  };
  std::vector<Object> objects;
  bool changes = false;  // false: its operations changed nothing (no commit)
  std::set<std::string, std::less<>> top_dirs;  // the top-level directories it writes under
  bool finished = false;
  double publish_seconds = 0;

  // Its turn comes after every group prepared before it has finished.
  void wait_turn() const {
    std::unique_lock lock(impl->pipeline.mutex);
    impl->pipeline.cv.wait(lock, [&] { return impl->pipeline.finished == ticket; });
  }
  void finish(bool published) {
    Impl::Pipeline& pipe = impl->pipeline;
    {
      std::lock_guard lock(pipe.mutex);
      ++pipe.finished;
      finished = true;
      std::erase(pipe.flying, this);
      // The groups built on this one cannot publish: build on the ref again.
      if (!published && pipe.speculative_chain == chain) pipe.speculative.reset();
      if (pipe.finished == pipe.prepared) pipe.speculative.reset();
    }
    pipe.cv.notify_all();
  }
  // Dropped unpublished: its turn passes (as a failure) once it comes.
  ~State() {
    if (!impl || finished) return;
    wait_turn();
    finish(false);
  }
};

Store::Prepared::Prepared() = default;
Store::Prepared::Prepared(Prepared&&) noexcept = default;
Store::Prepared& Store::Prepared::operator=(Prepared&&) noexcept = default;
Store::Prepared::~Prepared() = default;
bool Store::Prepared::empty() const { return !m_state || !m_state->changes; }
double Store::Prepared::publish_seconds() const { return m_state ? m_state->publish_seconds : 0; }
std::string Store::Prepared::commit_id() const { return m_state && m_state->changes ? oid_hex(m_state->id) : ""; }
std::string Store::Prepared::base_id() const { return m_state && m_state->changes ? oid_hex(m_state->base) : ""; }
bool Store::Prepared::writes_under(std::string_view dir) const {
  return m_state && m_state->top_dirs.find(dir) != m_state->top_dirs.end();
}

namespace {

core::Change group_change(std::vector<core::Change>& operations, core::Change& merged) {
  core::Change all;
  all.writes = std::move(merged.writes);
  all.summary = operations.size() == 1 ? operations.front().message() : group_message(operations);
  while (!all.summary.empty() && all.summary.back() == '\n') all.summary.pop_back();
  return all;
}

}  // namespace

int Store::Impl::carry_over_groups_in_flight(git_odb_backend* backend) {
  // Under the pipeline's lock a group in `flying` is not finished, so not
  // gone; its objects are not changed once it is prepared.
  std::lock_guard lock(pipeline.mutex);
  for (const Store::Prepared::State* state : pipeline.flying) {
    for (const auto& object : state->objects) {
      if (int rc = backend->write(backend, &object.id, object.data.data(), object.data.size(), object.type); rc < 0) {
        return rc;
      }
    }
  }
  return 0;
}

// The objects of `written` still only in the mempack, once each, copied.
Result<void> Store::Impl::copy_new_objects(const std::vector<git_oid>& written, Store::Prepared::State& into) {
  std::vector<git_oid> fresh = in_mempack(written);
  // Read from the mempack itself, not through the odb, whose cache would
  // keep them (see ObjectWriter::on_disk).
  for (const git_oid& oid : fresh) {
    void* data = nullptr;
    std::size_t size = 0;
    git_object_t type = GIT_OBJECT_INVALID;
    if (mempack->read(&data, &size, &type, mempack, &oid) < 0) return git_failure("cannot read a new object");
    into.objects.push_back({oid, type, std::string(static_cast<const char*>(data), size)});
    git_odb_backend_data_free(mempack, data);
  }
  return {};
}

// publish() for a prepared group, touching nothing the handle's other
// calls use: the ref is read through the pipeline's own repository, the
// objects come from the copies. Runs in the group's turn.
Result<void> Store::Impl::publish_prepared(Store::Prepared::State& prepared) {
  if (!pipeline.repo && git_repository_open(&pipeline.repo, path.c_str()) < 0) {
    return git_failure("cannot open " + path);
  }
  if (!prepared.changes) {
    // Nothing to write, but its answers were read from the groups before
    // it: they hold once those are published, and the ref is still there.
    auto current = tip(k_state_ref, pipeline.repo);
    if (!current) return current.error();
    if (!*current || !git_oid_equal(&**current, &prepared.base)) return group_lost_error();
    return {};
  }
  auto lock = WriterLock::acquire(path);
  if (!lock) return lock.error();
  const auto started = std::chrono::steady_clock::now();
  auto moved = move_ref(pipeline.repo, k_state_ref, prepared.id, &prepared.base, [&](int fd) -> Result<bool> {
    if (prepared.objects.empty()) return false;
    std::vector<packfile::Object> objects;
    objects.reserve(prepared.objects.size());
    for (const auto& object : prepared.objects) objects.push_back({object.id, object.type, object.data});
    if (auto ok = packfile::write(pack_dir(), objects, fsync, fd); !ok) return ok.error();
    noted_new_pack();
    return true;
  });
  if (!moved) return moved.error();
  if (!*moved) return group_lost_error();
  prepared.publish_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  maintenance_due = true;
  return {};
}

Result<Store::Prepared> Store::prepare_group(const std::string& actor) {
  if (!m_impl->group) return make_error(ErrorCode::error, "no group commit is open");
  std::unique_ptr<Impl::Group> group = std::move(m_impl->group);
  Prepared out;
  auto state = std::make_shared<Prepared::State>();
  state->base = group->base;
  state->chain = group->chain;
  state->changes = !group->operations.empty();
  if (state->changes) {
    core::Change all = group_change(group->operations, group->merged);
    for (const auto& [file, content] : all.writes) state->top_dirs.emplace(file.substr(0, file.find('/')));
    auto commit = m_impl->build_commit(&group->base, all, actor);
    if (!commit) return commit.error();
    if (auto ok = m_impl->copy_new_objects(commit->written, *state); !ok) {
      m_impl->reset_mempack();
      return ok.error();
    }
    state->id = commit->id;
  }
  {
    Impl::Pipeline& pipe = m_impl->pipeline;
    std::lock_guard lock(pipe.mutex);
    state->ticket = pipe.prepared++;
    pipe.flying.push_back(state.get());
    if (state->changes) {
      pipe.speculative = state->id;
      pipe.speculative_chain = group->chain;
      ++pipe.since_reset;
    }
  }
  state->impl = m_impl.get();
  out.m_state = std::move(state);
  return out;
}

Result<void> Store::publish_group(Prepared& prepared) {
  std::shared_ptr<Prepared::State> state = prepared.m_state;
  if (!state) return {};
  if (state->finished) return make_error(ErrorCode::error, "this group was published already");
  state->wait_turn();
  auto published = m_impl->publish_prepared(*state);
  state->finish(static_cast<bool>(published));
  return published;
}

std::size_t Store::groups_in_flight() const {
  std::lock_guard lock(m_impl->pipeline.mutex);
  return m_impl->pipeline.prepared - m_impl->pipeline.finished;
}

void Store::wait_for_groups(std::size_t count) const { m_impl->wait_for_groups(count); }

bool Store::maintenance_needed() const {
  if (!m_impl->maintenance_due) return false;
  std::size_t count = m_impl->pack_count;
  if (count == Impl::k_unknown_packs) count = m_impl->packs().size();
  return count > Impl::k_max_packs;
}

Result<void> Store::commit_group(const std::string& actor) {
  auto prepared = prepare_group(actor);
  if (!prepared) return prepared.error();
  const bool changes = !prepared->empty();
  auto published = publish_group(*prepared);
  m_impl->reset_mempack();
  if (!published) return published;
  if (!changes) return {};
  if (m_impl->defer_maintenance) return {};
  auto lock = WriterLock::acquire(m_impl->path);
  if (!lock) return lock.error();
  m_impl->maintenance_due = false;
  if (auto ok = m_impl->consolidate_packs(); !ok) {
    std::fprintf(stderr, "gigafab: warning: %s\n", ok.error().message.c_str());
  }
  return {};
}


void Store::defer_maintenance(bool deferred) { m_impl->defer_maintenance = deferred; }

void Store::keep_spare_files() { spare_files::keep(m_impl->pack_dir(), 4); }

Result<bool> Store::merge_aside(const WithHandle& with_handle) {
  m_impl->maintenance_due = false;
  bool left_to_handle = false;
  if (auto ok = m_impl->consolidate_packs(&with_handle, &left_to_handle); !ok) return ok.error();
  if (left_to_handle) m_impl->maintenance_due = true;
  return !left_to_handle;
}

Result<void> Store::maintain() {
  if (!m_impl->maintenance_due) return {};
  m_impl->reset_mempack();
  auto lock = WriterLock::acquire(m_impl->path);
  if (!lock) return lock.error();
  m_impl->maintenance_due = false;
  return m_impl->consolidate_packs();
}

Result<std::unique_ptr<core::Snapshot>> Store::snapshot_of(const char* ref) const {
  auto tip = m_impl->tip(ref);
  if (!tip) return tip.error();
  if (!*tip) return std::unique_ptr<core::Snapshot>(std::make_unique<core::MemorySnapshot>());
  auto tree = m_impl->tree_of(**tip);
  if (!tree) return tree.error();
  return std::unique_ptr<core::Snapshot>(std::make_unique<TreeSnapshot>(m_impl->repo, *tree));
}

Result<std::string> Store::transact_on(const char* ref_name, const Operation& op, const std::string& actor,
                                       bool keep_history) {
  auto lock = WriterLock::acquire(m_impl->path);
  if (!lock) return lock.error();
  // A gc (or another writer's merge) may have deleted packs since our last
  // commit: libgit2 would otherwise try to open each one's index again for
  // every object this write looks up.
  m_impl->notice_removed_packs();
  std::minstd_rand jitter(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(core::now_millis()));
  constexpr int k_max_cas_losses = 64;
  int cas_losses = 0;
  for (;;) {
    if (m_impl->remote && (cas_losses > 0 || !m_impl->fetched_recently())) {
      if (auto fetched = m_impl->fetch_remote(); !fetched) return fetched.error();
    }
    auto tip = m_impl->tip(ref_name);
    if (!tip) return tip.error();
    std::optional<git_oid> parent = *tip;
    std::unique_ptr<core::Snapshot> snap;
    if (parent) {
      auto tree = m_impl->tree_of(*parent);
      if (!tree) return tree.error();
      snap = std::make_unique<TreeSnapshot>(m_impl->repo, *tree);
    } else {
      snap = std::make_unique<core::MemorySnapshot>();
    }
    auto change = op(*snap);
    if (!change) return change.error();
    if (change->empty()) return parent ? oid_hex(*parent) : std::string{};
    const git_oid* parent_ptr = parent ? &*parent : nullptr;
    auto built = m_impl->build_commit(keep_history ? parent_ptr : nullptr, *change, actor, parent_ptr);
    if (!built) return built.error();
    const git_oid* commit = &built->id;

    if (m_impl->remote) {
      if (auto flushed = m_impl->flush_objects(built->written); !flushed) return flushed.error();
      // The network CAS: the push is a fast-forward only from the tip we read.
      auto pushed = remote::push(m_impl->repo, *m_impl->remote, ref_name, *commit, parent_ptr, !keep_history);
      if (!pushed) return pushed.error();
      if (*pushed == remote::Pushed::ok) {
        // Acknowledged: the remote is the truth. A local copy that failed to
        // follow is fixed by the next fetch.
        if (auto ok = m_impl->set_ref(ref_name, *commit); !ok) {
          std::fprintf(stderr, "gigafab: warning: %s\n", ok.error().message.c_str());
        }
        if (auto ok = m_impl->consolidate_packs(); !ok) {
          std::fprintf(stderr, "gigafab: warning: %s\n", ok.error().message.c_str());
        }
        return oid_hex(*commit);
      }
      if (++cas_losses >= 4 * k_max_cas_losses) {
        return make_error(ErrorCode::conflict, "gave up after " + std::to_string(4 * k_max_cas_losses) +
                                                   " attempts: remote '" + m_impl->remote->name + "' kept moving");
      }
      int ceiling = std::min(250, 4 << std::min(cas_losses, 6));
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + static_cast<int>(jitter() % ceiling)));
      continue;
    }
    auto published = m_impl->publish(ref_name, *built, parent_ptr);
    if (!published) return published.error();
    if (*published) {
      // Keep reads fast: many small packs mean many index lookups per read.
      if (auto ok = m_impl->consolidate_packs(); !ok) {
        std::fprintf(stderr, "gigafab: warning: %s\n", ok.error().message.c_str());
      }
      return oid_hex(*commit);
    }
    // Lost the race to a writer outside our lock (another host, a push): back
    // off with jitter and re-run the operation on the new tip.
    if (++cas_losses >= k_max_cas_losses) {
      return make_error(ErrorCode::conflict, "gave up after " + std::to_string(k_max_cas_losses) +
                                                 " attempts: the state ref kept moving");
    }
    int ceiling = std::min(50, 1 << std::min(cas_losses, 5));
    std::this_thread::sleep_for(std::chrono::milliseconds(1 + static_cast<int>(jitter() % ceiling)));
  }
}

void set_background_gc(BackgroundGc launcher) { background_gc_launcher() = std::move(launcher); }

void set_memory_limits(std::size_t object_cache, std::size_t mapped_packs) {
  ensure_libgit2();
  git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, static_cast<ssize_t>(object_cache));
  git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, std::min<std::size_t>(mapped_packs / 4, std::size_t{1} << 30));
  git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, mapped_packs);
}

namespace {

struct TrackedFile {
  std::string path;  // a pack's base (no extension) or a loose object's file
  fs::file_time_type mtime;
};

std::optional<fs::file_time_type> mtime_of(const std::string& file) {
  std::error_code ec;
  auto t = fs::last_write_time(file, ec);
  if (ec) return std::nullopt;
  return t;
}

// Loose objects under objects/xx/ with their modification times and ids.
std::vector<std::pair<TrackedFile, git_oid>> loose_objects(const std::string& store_path) {
  std::vector<std::pair<TrackedFile, git_oid>> out;
  std::error_code ec;
  for (const auto& dir : fs::directory_iterator(store_path + "/objects", ec)) {
    std::string name = dir.path().filename().string();
    if (name.size() != 2 || !std::isxdigit(static_cast<unsigned char>(name[0])) ||
        !std::isxdigit(static_cast<unsigned char>(name[1]))) {
      continue;
    }
    std::error_code inner;
    for (const auto& file : fs::directory_iterator(dir.path(), inner)) {
      git_oid oid;
      std::string hex = name + file.path().filename().string();
      if (hex.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex.c_str()) < 0) continue;
      auto t = mtime_of(file.path().string());
      if (t) out.push_back({{file.path().string(), *t}, oid});
    }
  }
  return out;
}

}  // namespace

namespace {

struct OidHash {
  std::size_t operator()(const git_oid& oid) const {
    std::size_t h;
    std::memcpy(&h, oid.id, sizeof h);
    return h;
  }
};
struct OidEqual {
  bool operator()(const git_oid& a, const git_oid& b) const { return git_oid_equal(&a, &b); }
};
using OidSet = std::unordered_set<git_oid, OidHash, OidEqual>;

// Lists the tree `id` (at `path` in the state tree) and all it holds that
// `seen` has not, each tree and blob with its path, as `git rev-list
// --objects` names them. The delta search sorts by a hash of a name's last
// 16 characters, so a full path keeps the versions of one job's `events`
// tree together where the bare entry name mixed every job's: 1,003 against
// 969 bytes per transition.
int list_tree(std::vector<NamedObject>& out, git_repository* repo, const git_oid& id, const std::string& path,
              OidSet& seen) {
  if (!seen.insert(id).second) return 0;
  out.push_back({id, path});
  TreeHandle tree;
  if (git_tree_lookup(tree.out(), repo, &id) < 0) return -1;
  for (std::size_t i = 0, n = git_tree_entrycount(tree.get()); i < n; ++i) {
    const git_tree_entry* entry = git_tree_entry_byindex(tree.get(), i);
    const git_oid& entry_id = *git_tree_entry_id(entry);
    std::string entry_path = path.empty() ? git_tree_entry_name(entry) : path + "/" + git_tree_entry_name(entry);
    if (git_tree_entry_type(entry) == GIT_OBJECT_TREE) {
      if (list_tree(out, repo, entry_id, entry_path, seen) < 0) return -1;
    } else if (seen.insert(entry_id).second) {
      out.push_back({entry_id, std::move(entry_path)});
    }
  }
  return 0;
}

// Every commit `walk` yields and every tree and blob they reach, each named
// by its path. git_packbuilder_insert_walk inserts trees without a name, and
// the delta search (which compares objects of one name, then of similar
// size) then paired unrelated trees and stored most of them whole: 1,216
// bytes per transition where `git repack` got 981 from the same store.
int list_history(std::vector<NamedObject>& out, git_repository* repo, git_revwalk* walk) {
  OidSet seen;
  git_oid oid;
  int rc;
  while ((rc = git_revwalk_next(&oid, walk)) == 0) {
    out.push_back({oid, ""});
    CommitHandle commit;
    if (git_commit_lookup(commit.out(), repo, &oid) < 0) return -1;
    if (list_tree(out, repo, *git_commit_tree_id(commit.get()), "", seen) < 0) return -1;
  }
  return rc == GIT_ITEROVER ? 0 : rc;
}

// The same pack with libgit2's packbuilder, where there is no git to run.
Result<std::string> pack_with_libgit2(git_repository* repo, const std::string& pack_dir,
                                      const std::vector<NamedObject>& objects, unsigned threads) {
  Handle<git_packbuilder, git_packbuilder_free> builder;
  if (git_packbuilder_new(builder.out(), repo) < 0) return git_failure("cannot repack");
  git_packbuilder_set_threads(builder.get(), threads);
  for (const auto& object : objects) {
    if (git_packbuilder_insert(builder.get(), &object.id, object.name.empty() ? nullptr : object.name.c_str()) < 0) {
      return git_failure("cannot repack");
    }
  }
  if (git_packbuilder_write(builder.get(), pack_dir.c_str(), 0, nullptr, nullptr) < 0) {
    return git_failure("cannot write pack");
  }
  return pack_dir + "/pack-" + git_packbuilder_name(builder.get());
}

}  // namespace

Result<Store::GcStats> Store::gc(const GcOptions& options) {
  GcStats stats;
  const core::Millis started = core::now_millis();
  std::optional<FileLock> gc_lock;
  if (options.background) {
    auto lock = GcLock::try_acquire(m_impl->path);
    // One that ended since this one was asked for (writers that found the
    // store doubled at once each launch one) is enough.
    if (!lock || m_impl->gc_ran_recently()) {
      stats.skipped = true;
      return stats;
    }
    gc_lock.emplace(std::move(*lock));
  } else {
    auto lock = GcLock::acquire(m_impl->path);
    if (!lock) return lock.error();
    gc_lock.emplace(std::move(*lock));
  }
  // When this gc started, for the merges of the packs written meanwhile
  // (consolidate_packs): those the listing below may take are older.
  ::futimens(gc_lock->fd(), nullptr);
  // What exists now. Only these files are deleted at the end, and only when
  // nothing touched them meanwhile.
  const auto recent = fs::file_time_type::clock::now() - std::chrono::seconds(10);
  std::vector<TrackedFile> old_packs;
  for (const auto& [size, base] : m_impl->packs()) {
    if (auto t = mtime_of(base + ".pack")) old_packs.push_back({base, *t});
  }
  auto loose = loose_objects(m_impl->path);

  WalkHandle walk;
  if (git_revwalk_new(walk.out(), m_impl->repo) < 0 || git_revwalk_push_glob(walk.get(), "refs/gigafab/*") < 0) {
    return git_failure("cannot walk " + m_impl->path);
  }
  std::vector<NamedObject> objects;
  if (list_history(objects, m_impl->repo, walk.get()) < 0) return git_failure("cannot repack");
  // Recent files may hold objects a write in flight is about to reference.
  for (const auto& pack : old_packs) {
    if (pack.mtime < recent) continue;
    auto ids = read_pack_index(pack.path + ".idx");
    if (!ids) {
      // Gone since the listing: a writer merged it (merge_behind_gc takes
      // the packs written since this gc began) into a pack this gc leaves.
      if (!fs::exists(pack.path + ".idx")) continue;
      return ids.error();
    }
    for (const auto& oid : *ids) objects.push_back({oid, ""});
  }
  for (const auto& [file, oid] : loose) {
    if (file.mtime >= recent) objects.push_back({oid, ""});
  }
  // In the background, deltas are searched on one thread, so writers keep
  // the other cores.
  const unsigned threads = options.background ? 1 : 0;
  const auto git = git_program();
  auto written = git ? git_pack_objects(*git, m_impl->path, m_impl->pack_dir(), objects, threads, m_impl->fsync)
                     : pack_with_libgit2(m_impl->repo, m_impl->pack_dir(), objects, threads);
  if (!written) return written.error();
  stats.packer = git ? "git pack-objects" : "libgit2";
  const std::string kept = *written;
  if (auto ids = read_pack_index(kept + ".idx"); ids) stats.objects = ids->size();
  // Measured at once: writers merge the packs written since the gc began
  // (merge_behind_gc), and this one may be among them before the gc ends
  // (its size read at the end was once an error, logged as 2^64 - 1 bytes).
  {
    std::error_code ec;
    const auto size = fs::file_size(kept + ".pack", ec);
    if (!ec) stats.pack_bytes = size;
  }
  {
    // No write is between reading an object and publishing its commit while
    // the old files go.
    auto lock = WriterLock::acquire(m_impl->path);
    if (!lock) return lock.error();
    for (const auto& pack : old_packs) {
      if (pack.path == kept || mtime_of(pack.path + ".pack") != pack.mtime) continue;
      m_impl->remove_pack(pack.path);
      ++stats.packs_removed;
    }
    for (const auto& [file, oid] : loose) {
      if (mtime_of(file.path) != file.mtime) continue;
      std::error_code ec;
      if (fs::remove(file.path, ec)) ++stats.loose_removed;
      fs::remove(fs::path(file.path).parent_path(), ec);  // only when empty
    }
    if (auto ok = m_impl->refresh_odb(); !ok) return ok.error();
  }
  m_impl->stamp_gc(core::now_millis() - started);
  auto history = this->history();
  if (history) stats.transitions = history->size();
  if (options.background) {
    log_line(m_impl->path, "background gc (nice " + std::to_string(options.nice) + ", " + stats.packer + "): " + std::to_string(stats.objects) + " objects in " +
                                std::to_string(stats.pack_bytes) + " bytes; removed " +
                                std::to_string(stats.packs_removed) + " packs and " +
                                std::to_string(stats.loose_removed) + " loose objects");
  }
  return stats;
}

Result<void> Store::wait_for_gc() const {
  auto lock = GcLock::acquire(m_impl->path);
  if (!lock) return lock.error();
  return {};
}

Result<std::vector<CommitInfo>> Store::history(std::size_t limit) const {
  auto tip = m_impl->tip();
  if (!tip) return tip.error();
  return m_impl->commits(**tip, nullptr, limit);
}

// ---- the coordinating remote ----------------------------------------------

namespace {

constexpr const char* k_incoming = "refs/gigafab-incoming/";

void delete_refs_under(git_repository* repo, const char* prefix) {
  git_reference_iterator* it = nullptr;
  if (git_reference_iterator_glob_new(&it, repo, (std::string(prefix) + "*").c_str()) < 0) return;
  git_reference* ref = nullptr;
  while (git_reference_next(&ref, it) == 0) {
    git_reference_delete(ref);
    git_reference_free(ref);
  }
  git_reference_iterator_free(it);
}

Result<void> set_config(git_repository* repo, const char* key, const std::string& value) {
  ConfigHandle config;
  if (git_repository_config(config.out(), repo) < 0) return git_failure("cannot open config");
  int rc = value.empty() ? git_config_delete_entry(config.get(), key) : git_config_set_string(config.get(), key, value.c_str());
  if (rc < 0 && !(value.empty() && rc == GIT_ENOTFOUND)) return git_failure("cannot write config");
  return {};
}

// A path remote that does not exist yet is created (bare), so
// `gigafab init --remote /shared/fleet.git` needs no separate `git init`.
Result<void> create_path_remote(const std::string& url) {
  std::string path = url.rfind("file://", 0) == 0 ? url.substr(7) : url;
  if (url.find("://") != std::string::npos && url.rfind("file://", 0) != 0) return {};
  auto colon = path.find(':');
  auto slash = path.find('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon < slash)) return {};  // scp-style ssh
  std::error_code ec;
  if (fs::exists(path, ec)) return {};
  git_repository* repo = nullptr;
  if (git_repository_init(&repo, path.c_str(), 1) < 0) return git_failure("cannot create remote repository " + path);
  git_repository_free(repo);
  return {};
}

}  // namespace

Result<void> Store::add_remote(const std::string& name, const std::string& url, bool adopt) {
  if (auto ok = core::validate_name("remote", name); !ok) return ok.error();
  if (url.empty()) return make_error(ErrorCode::usage, "the remote URL is empty");
  if (m_impl->remote && m_impl->remote->name != name) {
    return make_error(ErrorCode::conflict, "this store is already coordinated by remote '" + m_impl->remote->name +
                                               "' (gigafab remote remove " + m_impl->remote->name + " first)");
  }
  auto lock = WriterLock::acquire(m_impl->path);
  if (!lock) return lock.error();
  if (auto ok = create_path_remote(url); !ok) return ok;
  git_remote* created = nullptr;
  if (git_remote_create(&created, m_impl->repo, name.c_str(), url.c_str()) < 0) {
    return make_error(ErrorCode::conflict, "cannot add remote '" + name + "': " + git_error_last()->message);
  }
  git_remote_free(created);
  remote::Endpoint endpoint{name, url};
  auto undo = [&](Error e) {
    git_remote_delete(m_impl->repo, name.c_str());
    delete_refs_under(m_impl->repo, k_incoming);
    return e;
  };
  if (auto ok = remote::fetch(m_impl->repo, endpoint, k_incoming); !ok) return undo(ok.error());
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, m_impl->repo) == 0) {
    git_odb_refresh(odb);
    git_odb_free(odb);
  }
  auto ours = m_impl->tip();
  if (!ours) return undo(ours.error());
  git_oid theirs;
  std::string incoming_state = std::string(k_incoming) + "state";
  if (git_reference_name_to_id(&theirs, m_impl->repo, incoming_state.c_str()) < 0) {
    // An empty remote: publish this fleet there.
    auto pushed = remote::push(m_impl->repo, endpoint, k_state_ref, **ours, nullptr, false);
    if (!pushed) return undo(pushed.error());
    if (*pushed != remote::Pushed::ok) {
      return undo(make_error(ErrorCode::conflict, "remote '" + name + "' got a fleet meanwhile; try again"));
    }
  } else if (!git_oid_equal(&theirs, &**ours)) {
    if (adopt || git_graph_descendant_of(m_impl->repo, &theirs, &**ours) == 1) {
      if (auto ok = m_impl->set_ref(k_state_ref, theirs); !ok) return undo(ok.error());  // ours is in their history
    } else if (git_graph_descendant_of(m_impl->repo, &**ours, &theirs) == 1) {
      auto pushed = remote::push(m_impl->repo, endpoint, k_state_ref, **ours, &theirs, false);
      if (!pushed) return undo(pushed.error());
      if (*pushed != remote::Pushed::ok) return undo(make_error(ErrorCode::conflict, "remote '" + name + "' moved meanwhile; try again"));
    } else {
      return undo(make_error(ErrorCode::conflict, "remote '" + name + "' holds a different fleet than this store (histories are unrelated); use 'gigafab init --remote' for a new local copy of it"));
    }
  }
  delete_refs_under(m_impl->repo, k_incoming);
  if (auto ok = set_config(m_impl->repo, "gigafab.remote", name); !ok) return undo(ok.error());
  m_impl->remote = endpoint;
  return m_impl->fetch_remote();
}

Result<void> Store::remove_remote(const std::string& name) {
  auto endpoint = remote::lookup(m_impl->repo, name);
  if (!endpoint) return endpoint.error();
  if (git_remote_delete(m_impl->repo, name.c_str()) < 0) return git_failure("cannot remove remote " + name);
  if (m_impl->remote && m_impl->remote->name == name) {
    if (auto ok = set_config(m_impl->repo, "gigafab.remote", ""); !ok) return ok;
    m_impl->remote.reset();
  }
  return {};
}

Result<std::vector<Store::RemoteInfo>> Store::remotes() const {
  git_strarray names{};
  if (git_remote_list(&names, m_impl->repo) < 0) return git_failure("cannot list remotes");
  std::vector<RemoteInfo> out;
  for (std::size_t i = 0; i < names.count; ++i) {
    auto endpoint = remote::lookup(m_impl->repo, names.strings[i]);
    if (!endpoint) continue;
    out.push_back({endpoint->name, remote::redact(endpoint->url), m_impl->remote && m_impl->remote->name == endpoint->name});
  }
  git_strarray_dispose(&names);
  return out;
}

Result<Store> Store::init_from_remote(const std::string& path, const std::string& url, const std::string& name,
                                      const InitOptions& options, const std::string& actor) {
  auto store = init(path, options, actor);
  if (!store) return store.error();
  if (auto ok = store->add_remote(name, url, true); !ok) {
    std::error_code ec;
    fs::remove_all(path, ec);  // nothing to keep: the local copy never existed
    return ok.error();
  }
  return std::move(*store);
}

std::string Store::remote_name() const { return m_impl->remote ? m_impl->remote->name : ""; }
std::string Store::remote_url() const { return m_impl->remote ? remote::redact(m_impl->remote->url) : ""; }
std::string Store::remote_location() const { return m_impl->remote ? m_impl->remote->url : ""; }

Result<void> Store::use_remote(const std::string& name) {
  auto endpoint = remote::lookup(m_impl->repo, name);
  if (!endpoint) return endpoint.error();
  m_impl->remote = std::move(*endpoint);
  return {};
}

void Store::set_offline(bool offline) { m_impl->offline = offline; }
bool Store::offline() const { return m_impl->offline; }

Result<void> Store::refresh() {
  if (!m_impl->remote || m_impl->offline) return {};
  // A fetch moves the local refs: not while this host's writers move them.
  auto lock = WriterLock::acquire(m_impl->path);
  if (!lock) return lock.error();
  return m_impl->fetch_remote();
}

core::Millis Store::last_fetch() const {
  FILE* f = std::fopen(m_impl->fetch_stamp().c_str(), "r");
  if (!f) return 0;
  long long t = 0;
  if (std::fscanf(f, "%lld", &t) != 1) t = 0;
  std::fclose(f);
  return t;
}

Result<std::vector<CommitInfo>> Store::sync() {
  if (!m_impl->remote) return make_error(ErrorCode::usage, "this store has no remote (gigafab remote add NAME URL)");
  auto lock = WriterLock::acquire(m_impl->path);
  if (!lock) return lock.error();
  auto before = m_impl->tip();
  if (!before) return before.error();
  if (auto ok = m_impl->fetch_remote(); !ok) return ok.error();
  auto after = m_impl->tip();
  if (!after) return after.error();
  if (git_oid_equal(&**before, &**after)) return std::vector<CommitInfo>{};
  auto arrived = m_impl->commits(**after, &**before, 0);
  if (!arrived) return arrived.error();
  std::reverse(arrived->begin(), arrived->end());
  return arrived;
}

}  // namespace gigafab::gitstore
