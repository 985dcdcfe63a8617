#include "gitstore/packfile.hpp"
#include "gitstore/fd_io.hpp"
#include "gitstore/spare_files.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

namespace gigafab::gitstore::packfile {

namespace {

using core::ErrorCode;
using core::make_error;
using core::Result;

constexpr std::size_t k_oid = 20;

// SHA-1 of a byte stream (pack and index checksums).
class Sha1 {
 public:
  Sha1() : m_ctx(EVP_MD_CTX_new()) { EVP_DigestInit_ex(m_ctx, EVP_sha1(), nullptr); }
  ~Sha1() { EVP_MD_CTX_free(m_ctx); }
  Sha1(const Sha1&) = delete;
  Sha1& operator=(const Sha1&) = delete;
  void update(const void* data, std::size_t size) { EVP_DigestUpdate(m_ctx, data, size); }
  std::string finish() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(m_ctx, out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
  }

 private:
  EVP_MD_CTX* m_ctx;
};

void put32(std::string& out, std::uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

void put64(std::string& out, std::uint64_t v) {
  put32(out, static_cast<std::uint32_t>(v >> 32));
  put32(out, static_cast<std::uint32_t>(v));
}

std::uint32_t get32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// A file written under a temporary name in `dir` (a spare made ahead, when
// the directory has some: spare_files.hpp), then renamed. Writes are
// buffered: a commit's pack used to cost two write(2) calls per object.
class TempFile {
 public:
  explicit TempFile(const std::string& dir) {
    if (auto spare = spare_files::take(dir)) {
      m_fd = spare->fd;
      m_path = std::move(spare->path);
      return;
    }
    m_path = dir + "/tmp_gigafab_XXXXXX";
    m_fd = ::mkostemp(m_path.data(), O_CLOEXEC);
  }
  ~TempFile() {
    if (m_fd >= 0) ::close(m_fd);
    if (!m_renamed) ::unlink(m_path.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  bool ok() const { return m_fd >= 0; }
  bool write(const void* data, std::size_t size) {
    // A merge's chunks go straight out: copied into the buffer, each grew
    // it to a fresh 1 MiB allocation that the kernel mapped page by page.
    if (size >= k_direct) return flush() && fd_io::write_all(m_fd, {static_cast<const char*>(data), size});
    m_buffer.append(static_cast<const char*>(data), size);
    return m_buffer.size() < k_buffer || flush();
  }
  // Writes what is buffered, and fsyncs when durable.
  bool sync(bool durable) { return flush() && (!durable || ::fsync(m_fd) == 0); }
  int fd() const { return m_fd; }
  // Makes it read-only like git's packs, and renames it (after sync()).
  bool rename(const std::string& final_path) {
    ::fchmod(m_fd, 0444);
    ::close(m_fd);
    m_fd = -1;
    if (::rename(m_path.c_str(), final_path.c_str()) != 0) return false;
    m_renamed = true;
    return true;
  }

 private:
  static constexpr std::size_t k_buffer = std::size_t{1} << 20;
  static constexpr std::size_t k_direct = std::size_t{64} << 10;
  bool flush() {
    if (m_buffer.empty()) return true;
    bool written = fd_io::write_all(m_fd, m_buffer);
    m_buffer.clear();
    return written;
  }
  std::string m_path;
  int m_fd = -1;
  bool m_renamed = false;
  std::string m_buffer;
};

// An open file descriptor, closed when it goes.
class Fd {
 public:
  explicit Fd(int fd) : m_fd(fd) {}
  ~Fd() {
    if (m_fd >= 0) ::close(m_fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return m_fd; }

 private:
  int m_fd;
};

struct Entry {
  git_oid id;
  std::uint32_t crc = 0;
  std::uint64_t offset = 0;
};

// The v2 index of `entries` (sorted here) for a pack with checksum `pack_sum`.
std::string index_of(std::vector<Entry>& entries, const std::string& pack_sum) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::memcmp(a.id.id, b.id.id, k_oid) < 0; });
  std::string out("\xfftOc", 4);
  put32(out, 2);
  std::uint32_t fanout[256] = {};
  for (const auto& e : entries) ++fanout[e.id.id[0]];
  std::uint32_t total = 0;
  for (std::uint32_t& f : fanout) {
    total += f;
    f = total;
  }
  for (std::uint32_t f : fanout) put32(out, f);
  for (const auto& e : entries) out.append(reinterpret_cast<const char*>(e.id.id), k_oid);
  for (const auto& e : entries) put32(out, e.crc);
  std::vector<std::uint64_t> large;
  for (const auto& e : entries) {
    if (e.offset < 0x80000000u) {
      put32(out, static_cast<std::uint32_t>(e.offset));
    } else {
      put32(out, 0x80000000u | static_cast<std::uint32_t>(large.size()));
      large.push_back(e.offset);
    }
  }
  for (std::uint64_t l : large) put64(out, l);
  out += pack_sum;
  Sha1 sum;
  sum.update(out.data(), out.size());
  out += sum.finish();
  return out;
}

// Writes the index and moves both files into place, the index first: git and
// libgit2 skip an index whose pack is missing, so a reader never sees half a
// pack, and a writer killed in between leaves only an index nobody reads.
Result<void> publish(const std::string& pack_dir, TempFile& pack, const std::string& pack_sum,
                     std::vector<Entry>& entries, bool durable, int sync_alongside) {
  git_oid name;
  std::memcpy(name.id, pack_sum.data(), k_oid);
  std::string base = pack_dir + "/pack-" + git_oid_tostr_s(&name);
  std::string index = index_of(entries, pack_sum);
  TempFile idx(pack_dir);
  if (!idx.ok() || !idx.write(index.data(), index.size())) {
    return make_error(ErrorCode::error, "cannot write a pack index in " + pack_dir);
  }
  // Every fsync in flight at once (and the caller's file's): the device's
  // cache flushes overlap, where one after the other each costs a flush.
  bool synced = pack.sync(false) && idx.sync(false);
  if (synced && durable) {
    const int fds[] = {pack.fd(), idx.fd(), sync_alongside};
    synced = fd_io::fsync_together(std::span<const int>(fds, sync_alongside >= 0 ? 3 : 2));
  }
  if (!synced || !idx.rename(base + ".idx") || !pack.rename(base + ".pack") ||
      (durable && !fd_io::fsync_path(pack_dir, true))) {
    return make_error(ErrorCode::error, "cannot store a pack in " + pack_dir);
  }
  return {};
}

}  // namespace

Result<void> write(const std::string& pack_dir, const std::vector<Object>& objects, bool durable, int sync_alongside) {
  if (objects.empty()) return {};
  TempFile pack(pack_dir);
  if (!pack.ok()) return make_error(ErrorCode::error, "cannot create a pack in " + pack_dir);
  Sha1 sum;
  std::uint64_t offset = 0;
  auto emit = [&](const void* data, std::size_t size) {
    sum.update(data, size);
    offset += size;
    return pack.write(data, size);
  };
  std::string header("PACK", 4);
  put32(header, 2);
  put32(header, static_cast<std::uint32_t>(objects.size()));
  if (!emit(header.data(), header.size())) return make_error(ErrorCode::error, "cannot write a pack");
  std::vector<Entry> entries;
  entries.reserve(objects.size());
  std::vector<unsigned char> deflated;
  // One deflate stream per level for the pack, reset per object: compress2
  // would set up (allocate and clear) a fresh 256 KiB state for every object.
  // Trees and small blobs are stored, not compressed; gc compresses them.
  // Trees are mostly object ids, so level 1 saves under a fifth of their
  // size, and a store's top trees (the job shards, about 25 KB) are
  // rewritten by every commit (level 1 cost 0.55 ms per commit for that tree
  // alone; storing it, 16 us). A commit's records (a job, a run, an event:
  // a few hundred bytes each, a dozen per group commit) cost 11-15 us each
  // at level 1 and 1.6 us stored. Larger blobs (an engine's output) are
  // compressed at level 1, its stream set up only for them.
  constexpr std::size_t k_stored_blob_bytes = 4096;
  z_stream fast{};
  std::unique_ptr<z_stream, int (*)(z_stream*)> fast_end(nullptr, deflateEnd);
  z_stream stored{};
  if (deflateInit(&stored, Z_NO_COMPRESSION) != Z_OK) return make_error(ErrorCode::error, "cannot compress an object");
  std::unique_ptr<z_stream, int (*)(z_stream*)> stored_end(&stored, deflateEnd);
  for (const Object& object : objects) {
    const bool compress = object.type != GIT_OBJECT_TREE && object.data.size() > k_stored_blob_bytes;
    if (compress && !fast_end) {
      if (deflateInit(&fast, 1) != Z_OK) return make_error(ErrorCode::error, "cannot compress an object");
      fast_end.reset(&fast);
    }
    z_stream& z = compress ? fast : stored;
    // Entry header: type and size, 4 bits then 7 bits per byte.
    unsigned char head[16];
    std::size_t n = 0;
    std::uint64_t size = object.data.size();
    unsigned char c = static_cast<unsigned char>((static_cast<unsigned>(object.type) << 4) | (size & 15));
    size >>= 4;
    while (size) {
      head[n++] = c | 0x80;
      c = size & 0x7f;
      size >>= 7;
    }
    head[n++] = c;
    deflated.resize(deflateBound(&z, static_cast<uLong>(object.data.size())));
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(object.data.data()));
    z.avail_in = static_cast<uInt>(object.data.size());
    z.next_out = deflated.data();
    z.avail_out = static_cast<uInt>(deflated.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) return make_error(ErrorCode::error, "cannot compress an object");
    uLong bound = z.total_out;
    if (deflateReset(&z) != Z_OK) return make_error(ErrorCode::error, "cannot compress an object");
    Entry entry{object.id, 0, offset};
    uLong crc = crc32(0, head, static_cast<uInt>(n));
    entry.crc = static_cast<std::uint32_t>(crc32(crc, deflated.data(), static_cast<uInt>(bound)));
    if (!emit(head, n) || !emit(deflated.data(), bound)) return make_error(ErrorCode::error, "cannot write a pack");
    entries.push_back(entry);
  }
  std::string pack_sum = sum.finish();
  if (!pack.write(pack_sum.data(), pack_sum.size())) return make_error(ErrorCode::error, "cannot write a pack");
  return publish(pack_dir, pack, pack_sum, entries, durable, sync_alongside);
}

namespace {

// The entries of the pack index `base`.idx (v2): ids, CRCs and offsets.
Result<std::vector<Entry>> read_index(const std::string& base) {
  std::string idx;
  if (!fd_io::read_all(base + ".idx", idx)) return make_error(ErrorCode::error, "cannot read pack index " + base + ".idx");
  const auto* p = reinterpret_cast<const unsigned char*>(idx.data());
  if (idx.size() < 8 + 1024 + 40 || std::memcmp(p, "\xfftOc", 4) != 0 || get32(p + 4) != 2) {
    return make_error(ErrorCode::error, "cannot read pack index " + base + ".idx");
  }
  std::uint32_t count = get32(p + 8 + 255 * 4);
  std::size_t ids = 8 + 1024, crcs = ids + count * k_oid, offsets = crcs + count * 4, large = offsets + count * 4;
  if (idx.size() < large + 40) return make_error(ErrorCode::error, "truncated pack index " + base + ".idx");
  std::vector<Entry> entries(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    Entry& e = entries[i];
    std::memcpy(e.id.id, p + ids + i * k_oid, k_oid);
    e.crc = get32(p + crcs + i * 4);
    std::uint32_t off = get32(p + offsets + i * 4);
    if (off & 0x80000000u) {
      std::size_t at = large + (off & 0x7fffffffu) * 8;
      if (idx.size() < at + 8 + 40) return make_error(ErrorCode::error, "truncated pack index " + base + ".idx");
      e.offset = (std::uint64_t{get32(p + at)} << 32) | get32(p + at + 4);
    } else {
      e.offset = off;
    }
  }
  return entries;
}

// Whether any of `entries` (a pack's, from its index) is a delta: one byte
// read at each, its type.
Result<bool> has_deltas(const std::string& pack_path, const std::vector<Entry>& entries) {
  Fd in(::open(pack_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return make_error(ErrorCode::error, "cannot read pack " + pack_path);
  for (const Entry& e : entries) {
    unsigned char first = 0;
    if (::pread(in.get(), &first, 1, static_cast<off_t>(e.offset)) != 1) {
      return make_error(ErrorCode::error, "cannot read pack " + pack_path);
    }
    const int type = (first >> 4) & 7;
    if (type == 6 || type == 7) return true;  // offset or reference delta
  }
  return false;
}

}  // namespace

Result<bool> has_deltas(const std::string& base) {
  auto entries = read_index(base);
  if (!entries) return entries.error();
  return has_deltas(base + ".pack", *entries);
}

Result<void> concatenate(const std::string& pack_dir, const std::vector<std::string>& bases, bool durable) {
  // Read every index: ids, CRCs and offsets.
  struct Source {
    std::string base;
    std::vector<Entry> entries;
  };
  std::vector<Source> sources;
  std::uint64_t total = 0;
  for (const auto& base : bases) {
    auto entries = read_index(base);
    if (!entries) return entries.error();
    total += entries->size();
    sources.push_back({base, std::move(*entries)});
  }
  // An object in two packs (a long-lived process may write again an object
  // whose pack another process merged away; a gc packs the commits published
  // while it walked the history, which are in packs of their own too): one
  // copy is kept and the others are left out. Leaving out an entry moves the
  // ones after it, so an offset delta would no longer find its base: only a
  // pack without deltas (ours have none) can lose one. The copy kept is the
  // one in a pack with deltas (a gc's), else the one in the later, larger
  // pack; two packs with deltas that share an object cannot merge.
  std::vector<std::vector<bool>> skip(sources.size());
  {
    struct Seen {
      git_oid id;
      std::size_t source, index;
    };
    std::vector<Seen> all;
    all.reserve(total);
    for (std::size_t s = 0; s < sources.size(); ++s) {
      skip[s].assign(sources[s].entries.size(), false);
      for (std::size_t i = 0; i < sources[s].entries.size(); ++i) all.push_back({sources[s].entries[i].id, s, i});
    }
    std::sort(all.begin(), all.end(), [](const Seen& a, const Seen& b) {
      int c = std::memcmp(a.id.id, b.id.id, k_oid);
      return c != 0 ? c < 0 : a.source > b.source;  // the later pack's copy first
    });
    auto same = [&](std::size_t i, std::size_t j) { return std::memcmp(all[i].id.id, all[j].id.id, k_oid) == 0; };
    // Which of the packs that hold a duplicate have deltas: read only then.
    std::vector<int> deltas(sources.size(), -1);
    for (std::size_t i = 1; i < all.size(); ++i) {
      if (!same(i - 1, i)) continue;
      for (std::size_t s : {all[i - 1].source, all[i].source}) {
        if (deltas[s] >= 0) continue;
        auto has = has_deltas(sources[s].base + ".pack", sources[s].entries);
        if (!has) return has.error();
        deltas[s] = *has ? 1 : 0;
      }
    }
    for (std::size_t first = 0, last = 0; first < all.size(); first = last) {
      last = first + 1;
      while (last < all.size() && same(first, last)) ++last;
      if (last - first == 1) continue;
      std::size_t keep = first;
      std::size_t with_deltas = 0;
      for (std::size_t i = first; i < last; ++i) {
        if (deltas[all[i].source] == 1 && with_deltas++ == 0) keep = i;
      }
      if (with_deltas > 1) return make_error(ErrorCode::usage, "an object is in two packs with deltas");
      for (std::size_t i = first; i < last; ++i) {
        if (i != keep) {
          skip[all[i].source][all[i].index] = true;
          --total;
        }
      }
    }
  }
  if (total > 0xffffffffu) return make_error(ErrorCode::error, "too many objects to merge into one pack");

  TempFile pack(pack_dir);
  if (!pack.ok()) return make_error(ErrorCode::error, "cannot create a pack in " + pack_dir);
  Sha1 sum;
  std::string header("PACK", 4);
  put32(header, 2);
  put32(header, static_cast<std::uint32_t>(total));
  sum.update(header.data(), header.size());
  if (!pack.write(header.data(), header.size())) return make_error(ErrorCode::error, "cannot write a pack");
  std::uint64_t at = 12;
  std::vector<Entry> entries;
  entries.reserve(total);
  // One buffer per thread for every merge (serve merges every few commits):
  // a fresh one per merge was a fresh mapping, faulted in page by page.
  thread_local std::vector<char> buf(std::size_t{256} << 10);
  std::size_t filled = 0;
  auto flush_buf = [&] {
    const bool written = pack.write(buf.data(), filled);
    filled = 0;
    return written;
  };
  for (std::size_t s = 0; s < sources.size(); ++s) {
    Source& source = sources[s];
    const std::string pack_path = source.base + ".pack";
    Fd in(::open(pack_path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (in.get() < 0 || ::fstat(in.get(), &st) != 0 || st.st_size < 32) {
      return make_error(ErrorCode::error, "cannot read pack " + pack_path);
    }
    const std::uint64_t body = static_cast<std::uint64_t>(st.st_size) - 12 - 20;  // between the header and the checksum
    for (const Entry& e : source.entries) {
      if (e.offset < 12 || e.offset >= 12 + body) return make_error(ErrorCode::error, "corrupt pack index " + source.base + ".idx");
    }
    // Reads `n` bytes at `position` of the pack into `out`.
    auto read_at = [&](char* out, std::size_t n, std::uint64_t position) {
      while (n > 0) {
        ssize_t got = ::pread(in.get(), out, n, static_cast<off_t>(position));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        out += got;
        n -= static_cast<std::size_t>(got);
        position += static_cast<std::uint64_t>(got);
      }
      return true;
    };
    if (std::find(skip[s].begin(), skip[s].end(), true) == skip[s].end()) {
      // Byte for byte: every entry keeps its distance to the others. Small
      // packs (a commit's) share the buffer until it is full.
      for (std::uint64_t left = body, from = 12; left > 0;) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size() - filled));
        if (!read_at(buf.data() + filled, n, from)) return make_error(ErrorCode::error, "cannot read pack " + pack_path);
        sum.update(buf.data() + filled, n);
        filled += n;
        if (filled == buf.size() && !flush_buf()) return make_error(ErrorCode::error, "cannot write a pack");
        left -= n;
        from += n;
      }
      for (Entry e : source.entries) {
        e.offset = at + (e.offset - 12);
        entries.push_back(e);
      }
      at += body;
      continue;
    }
    // Entry by entry, leaving out the duplicates: only without deltas.
    if (!flush_buf()) return make_error(ErrorCode::error, "cannot write a pack");
    constexpr std::uint64_t k_max_rewritten = 64u << 20;
    if (body > k_max_rewritten) return make_error(ErrorCode::usage, "an object is in two packs, one of them large");
    std::string data(static_cast<std::size_t>(body), '\0');
    if (!read_at(data.data(), data.size(), 12)) return make_error(ErrorCode::error, "cannot read pack " + pack_path);
    std::vector<std::size_t> order(source.entries.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return source.entries[a].offset < source.entries[b].offset; });
    for (std::size_t k = 0; k < order.size(); ++k) {
      const Entry& e = source.entries[order[k]];
      std::uint64_t begin = e.offset - 12;
      std::uint64_t end = k + 1 < order.size() ? source.entries[order[k + 1]].offset - 12 : body;
      int type = (static_cast<unsigned char>(data[begin]) >> 4) & 7;
      if (type == 6 || type == 7) return make_error(ErrorCode::usage, "an object is in two packs, one with deltas");
      if (skip[s][order[k]]) continue;
      std::size_t n = static_cast<std::size_t>(end - begin);
      sum.update(data.data() + begin, n);
      if (!pack.write(data.data() + begin, n)) return make_error(ErrorCode::error, "cannot write a pack");
      Entry out = e;
      out.offset = at;
      entries.push_back(out);
      at += n;
    }
  }
  if (!flush_buf()) return make_error(ErrorCode::error, "cannot write a pack");
  std::string pack_sum = sum.finish();
  if (!pack.write(pack_sum.data(), pack_sum.size())) return make_error(ErrorCode::error, "cannot write a pack");
  return publish(pack_dir, pack, pack_sum, entries, durable, -1);
}

}  // namespace gigafab::gitstore::packfile
