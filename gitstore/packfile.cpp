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
#include <optional>
#include <string_view>
#include <unordered_map>

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

// The header of the pack entry at `p` (`avail` bytes on): its type, its
// size once inflated, and the header's length. False when it runs past.
bool entry_header(const unsigned char* p, std::size_t avail, int& type, std::uint64_t& size, std::size_t& length) {
  if (avail == 0) return false;
  type = (p[0] >> 4) & 7;
  size = p[0] & 15;
  std::size_t n = 1;
  for (unsigned shift = 4; p[n - 1] & 0x80; shift += 7) {
    if (n >= avail || shift > 57) return false;
    size |= std::uint64_t{p[n] & 0x7fu} << shift;
    ++n;
  }
  length = n;
  return true;
}

// An entry header (type and size, 4 bits then 7 bits per byte) into `head`;
// returns its length.
std::size_t put_entry_header(unsigned char* head, int type, std::uint64_t size) {
  std::size_t n = 0;
  unsigned char c = static_cast<unsigned char>((static_cast<unsigned>(type) << 4) | (size & 15));
  size >>= 4;
  while (size) {
    head[n++] = c | 0x80;
    c = size & 0x7f;
    size >>= 7;
  }
  head[n++] = c;
  return n;
}

// The zlib stream of `n` bytes at `data`, inflated to `size` bytes.
bool inflate_to(const unsigned char* data, std::size_t n, std::uint64_t size, std::string& out) {
  out.resize(static_cast<std::size_t>(size));
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return false;
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = static_cast<uInt>(n);
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  const bool ok = rc == Z_STREAM_END && z.total_out == size;
  inflateEnd(&z);
  return ok;
}

// A tree's entries ("<mode> <name>\0<20-byte id>"), as views into it; empty
// when it is not well formed.
std::vector<std::string_view> tree_entries(std::string_view tree) {
  std::vector<std::string_view> out;
  for (std::size_t at = 0; at < tree.size();) {
    const std::size_t nul = tree.find('\0', at);
    if (nul == std::string_view::npos || nul + 1 + k_oid > tree.size()) return {};
    out.push_back(tree.substr(at, nul + 1 + k_oid - at));
    at = nul + 1 + k_oid;
  }
  return out;
}

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

}  // namespace

std::string tree_delta(std::string_view base, std::string_view target) {
  const auto base_entries = tree_entries(base);
  const auto target_entries = tree_entries(target);
  if (base_entries.empty() || target_entries.empty()) return {};
  std::unordered_map<std::string_view, std::size_t> at;
  at.reserve(base_entries.size());
  for (std::string_view e : base_entries) at.emplace(e, static_cast<std::size_t>(e.data() - base.data()));
  std::string delta;
  put_varint(delta, base.size());
  put_varint(delta, target.size());
  std::size_t copy_from = 0, copy_size = 0;
  std::string_view pending{};  // target bytes to insert, contiguous
  auto flush_copy = [&] {
    while (copy_size > 0) {
      // A copy of at most 64 KiB (a size of 0 means 0x10000), offset and
      // size in the bytes their flags name, low byte first.
      const std::size_t n = std::min<std::size_t>(copy_size, 0x10000);
      unsigned char op = 0x80;
      std::string args;
      for (int i = 0; i < 4; ++i) {
        if (const unsigned char b = static_cast<unsigned char>(copy_from >> (8 * i))) {
          op |= static_cast<unsigned char>(1u << i);
          args += static_cast<char>(b);
        }
      }
      for (int i = 0; i < 3 && n != 0x10000; ++i) {
        if (const unsigned char b = static_cast<unsigned char>(n >> (8 * i))) {
          op |= static_cast<unsigned char>(0x10u << i);
          args += static_cast<char>(b);
        }
      }
      delta += static_cast<char>(op);
      delta += args;
      copy_from += n;
      copy_size -= n;
    }
  };
  auto flush_insert = [&] {
    while (!pending.empty()) {
      const std::size_t n = std::min<std::size_t>(pending.size(), 127);
      delta += static_cast<char>(n);
      delta.append(pending.data(), n);
      pending.remove_prefix(n);
    }
  };
  for (std::string_view e : target_entries) {
    auto found = at.find(e);
    if (found == at.end()) {
      flush_copy();
      pending = pending.empty() ? e : std::string_view(pending.data(), pending.size() + e.size());
      continue;
    }
    flush_insert();
    if (copy_size > 0 && copy_from + copy_size == found->second) {
      copy_size += e.size();
    } else {
      flush_copy();
      copy_from = found->second;
      copy_size = e.size();
    }
  }
  flush_copy();
  flush_insert();
  if (delta.size() * 2 > target.size()) return {};
  return delta;
}

namespace {

// Writes the index and moves both files into place, the index first: git and
// libgit2 skip an index whose pack is missing, so a reader never sees half a
// pack, and a writer killed in between leaves only an index nobody reads.
Result<std::string> publish(const std::string& pack_dir, TempFile& pack, const std::string& pack_sum,
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
  return base;
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
    unsigned char head[16];
    const std::size_t n = put_entry_header(head, object.type, object.data.size());
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
  auto published = publish(pack_dir, pack, pack_sum, entries, durable, sync_alongside);
  if (!published) return published.error();
  return {};
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

// A pack's entries are rewritten one by one (rather than copied whole) when
// it is no larger than this and has no deltas: a commit's pack, about 55
// KB, most of it trees that the next commits write again with a few
// entries changed. Or when some of its objects are left out (duplicates),
// up to k_max_rewritten.
constexpr std::uint64_t k_max_rewritten_small = 1u << 20;
constexpr std::uint64_t k_max_rewritten = 64u << 20;
// A tree is written as a delta against the version of the same path
// written before it in the merge, at most this many deltas deep: reading
// one applies every delta of its chain to the chain's whole tree.
constexpr int k_max_delta_depth = 16;

// Where the copy kept of an object left out of a pack is: which pack, and
// which entry of its index.
struct Kept {
  std::size_t source, index;
};
// Per pack merged, per entry of its index: its offset in the merged pack
// (a left-out entry's, its kept copy's).
using NewOffsets = std::vector<std::vector<std::uint64_t>>;

// The merged pack being written: its checksum, where the next entry goes,
// and the index entries so far.
struct Output {
  explicit Output(TempFile& file) : pack(file) {}
  TempFile& pack;
  Sha1 sum;
  std::uint64_t at = 0;
  std::vector<Entry> entries;
  // One buffer per thread for every merge (serve merges every few
  // commits): a fresh one per merge was a fresh mapping, faulted in page by
  // page.
  std::vector<char>& buf = buffer();
  std::size_t filled = 0;
  // The deltas' deflate stream, set up at the first and reset for each.
  z_stream stored{};
  std::unique_ptr<z_stream, int (*)(z_stream*)> stored_end{nullptr, deflateEnd};
  std::vector<unsigned char> deflated;

  static std::vector<char>& buffer() {
    thread_local std::vector<char> b(std::size_t{256} << 10);
    return b;
  }
  bool flush() {
    const bool written = pack.write(buf.data(), filled);
    filled = 0;
    return written;
  }
  // Bytes of the pack, through the buffer (small entries share it).
  bool emit(const void* data, std::size_t size) {
    sum.update(data, size);
    at += size;
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      const std::size_t n = std::min(size, buf.size() - filled);
      std::memcpy(buf.data() + filled, p, n);
      filled += n;
      p += n;
      size -= n;
      if (filled == buf.size() && !flush()) return false;
    }
    return true;
  }

  // `body` bytes of the pack `in` after its header, byte for byte: every
  // entry keeps its distance to the others (offset deltas stay valid).
  // `moved`: where each entry of `source` is now.
  Result<void> copy_whole(int in, std::uint64_t body, const std::vector<Entry>& source, const std::string& pack_path,
                          std::vector<std::uint64_t>& moved) {
    const std::uint64_t first = at;
    for (std::uint64_t left = body, from = 12; left > 0;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size() - filled));
      if (!read_at(in, buf.data() + filled, n, from)) return make_error(ErrorCode::error, "cannot read pack " + pack_path);
      sum.update(buf.data() + filled, n);
      filled += n;
      at += n;
      if (filled == buf.size() && !flush()) return make_error(ErrorCode::error, "cannot write a pack");
      left -= n;
      from += n;
    }
    moved.resize(source.size());
    for (std::size_t i = 0; i < source.size(); ++i) {
      Entry e = source[i];
      e.offset = first + (e.offset - 12);
      moved[i] = e.offset;
      entries.push_back(e);
    }
    return {};
  }

  // The pack `in` (the `s`th source) entry by entry, leaving out those
  // `left_out` names (their copies kept in earlier sources, whose entries'
  // new places are in `moved`). With deltas, an offset delta's distance is
  // measured again (its base moved, or is a copy kept in an earlier
  // source). Without (a commit's pack), each tree that a commit of the pack
  // reaches (a path to tell its versions apart) becomes a delta against the
  // last version of its path in `versions`, when that is much smaller.
  Result<void> rewrite(int in, std::uint64_t body, const std::vector<Entry>& source,
                       const std::vector<std::optional<Kept>>& left_out, NewOffsets& moved, std::size_t s,
                       TreeVersions& versions, const std::string& pack_path) {
    std::string data(static_cast<std::size_t>(body), '\0');
    if (!read_at(in, data.data(), data.size(), 12)) return make_error(ErrorCode::error, "cannot read pack " + pack_path);
    const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
    struct Item {
      std::size_t index;         // in `source`
      std::uint64_t begin, end;  // in `data`
      int type;
      std::uint64_t size;
      std::size_t header;
    };
    std::vector<Item> items(source.size());
    for (std::size_t i = 0; i < items.size(); ++i) items[i] = {i, source[i].offset - 12, 0, 0, 0, 0};
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.begin < b.begin; });
    bool deltas = false;
    for (std::size_t k = 0; k < items.size(); ++k) {
      Item& item = items[k];
      item.end = k + 1 < items.size() ? items[k + 1].begin : body;
      if (!entry_header(bytes + item.begin, item.end - item.begin, item.type, item.size, item.header)) {
        return make_error(ErrorCode::error, "corrupt pack " + pack_path);
      }
      deltas = deltas || item.type == 6 || item.type == 7;
    }
    std::vector<std::uint64_t>& here = moved[s];
    here.assign(source.size(), 0);
    // Where a left-out entry's copy is; set in offset order, so before any
    // delta of this pack reaches it.
    auto leave_out = [&](const Item& item) {
      const Kept& kept = *left_out[item.index];
      here[item.index] = moved[kept.source][kept.index];
    };
    auto copy = [&](const Item& item) -> Result<void> {
      Entry entry = source[item.index];
      entry.offset = here[item.index] = at;
      if (!emit(data.data() + item.begin, static_cast<std::size_t>(item.end - item.begin))) {
        return make_error(ErrorCode::error, "cannot write a pack");
      }
      entries.push_back(entry);
      return {};
    };
    if (deltas) {
      for (const Item& item : items) {
        if (left_out[item.index]) {
          leave_out(item);
          continue;
        }
        if (item.type != 6) {
          if (auto ok = copy(item); !ok) return ok;
          continue;
        }
        // An offset delta: the distance back to its base, then the data.
        std::uint64_t p = item.begin + item.header;
        if (p >= item.end) return make_error(ErrorCode::error, "corrupt pack " + pack_path);
        unsigned char c = bytes[p++];
        std::uint64_t distance = c & 127;
        while (c & 128) {
          if (p >= item.end || distance >= (std::uint64_t{1} << 56)) return make_error(ErrorCode::error, "corrupt pack " + pack_path);
          c = bytes[p++];
          distance = ((distance + 1) << 7) | (c & 127);
        }
        if (distance == 0 || distance > item.begin) return make_error(ErrorCode::error, "corrupt pack " + pack_path);
        const std::uint64_t base_begin = item.begin - distance;
        auto base = std::lower_bound(items.begin(), items.end(), base_begin,
                                     [](const Item& a, std::uint64_t b) { return a.begin < b; });
        if (base == items.end() || base->begin != base_begin) return make_error(ErrorCode::error, "corrupt pack " + pack_path);
        Entry entry = source[item.index];
        entry.offset = here[item.index] = at;
        auto ok = emit_entry(bytes + item.begin, item.header, entry, here[base->index], bytes + p,
                             static_cast<std::size_t>(item.end - p));
        if (!ok) return ok;
      }
      return {};
    }
    // The trees' contents and paths: from each commit's root tree, through
    // the trees of this pack (the others are in older packs, unchanged).
    std::unordered_map<std::string, std::size_t> tree_at;  // raw id -> item
    std::vector<std::string> contents(items.size());
    std::vector<std::optional<std::string>> paths(items.size());
    std::vector<std::string> roots;
    for (std::size_t k = 0; k < items.size(); ++k) {
      const Item& item = items[k];
      if (item.type != GIT_OBJECT_TREE && item.type != GIT_OBJECT_COMMIT) continue;
      if (!inflate_to(bytes + item.begin + item.header, item.end - item.begin - item.header, item.size, contents[k])) {
        return make_error(ErrorCode::error, "corrupt pack " + pack_path + ": cannot inflate an object");
      }
      if (item.type == GIT_OBJECT_TREE) {
        tree_at.emplace(std::string(reinterpret_cast<const char*>(source[item.index].id.id), k_oid), k);
      } else if (contents[k].rfind("tree ", 0) == 0 && contents[k].size() >= 5 + 2 * k_oid) {
        git_oid root;
        if (git_oid_fromstrn(&root, contents[k].data() + 5, 2 * k_oid) == 0) {
          roots.emplace_back(reinterpret_cast<const char*>(root.id), k_oid);
        }
      }
    }
    std::vector<std::pair<std::size_t, std::string>> walk;
    for (const auto& root : roots) {
      if (auto it = tree_at.find(root); it != tree_at.end() && !paths[it->second]) {
        paths[it->second] = "";
        walk.emplace_back(it->second, "");
      }
    }
    while (!walk.empty()) {
      auto [k, path] = std::move(walk.back());
      walk.pop_back();
      for (std::string_view e : tree_entries(contents[k])) {
        if (e.rfind("40000 ", 0) != 0) continue;
        const std::size_t nul = e.find('\0');
        auto it = tree_at.find(std::string(e.substr(nul + 1)));
        if (it == tree_at.end() || paths[it->second]) continue;
        std::string child = path + "/" + std::string(e.substr(6, nul - 6));
        paths[it->second] = child;
        walk.emplace_back(it->second, std::move(child));
      }
    }
    for (std::size_t k = 0; k < items.size(); ++k) {
      const Item& item = items[k];
      if (left_out[item.index]) {
        leave_out(item);
        continue;
      }
      if (!paths[k]) {
        if (auto ok = copy(item); !ok) return ok;
        continue;
      }
      std::string delta;
      auto last = versions.versions.find(*paths[k]);
      if (last != versions.versions.end() && last->second.depth < k_max_delta_depth) {
        delta = tree_delta(last->second.content, contents[k]);
      }
      const int depth = delta.empty() ? 0 : last->second.depth + 1;
      if (delta.empty()) {
        if (auto ok = copy(item); !ok) return ok;
      } else {
        Entry entry = source[item.index];
        entry.offset = here[item.index] = at;
        auto ok = emit_delta(delta, entry, last->second.offset);
        if (!ok) return ok;
      }
      TreeVersion& version = versions.versions[*paths[k]];
      version.content = std::move(contents[k]);
      version.offset = here[item.index];
      version.depth = depth;
    }
    return {};
  }

  // An offset delta entry at `entry.offset` for `delta` against the entry
  // at `base_offset`, the delta stored (deltas are small, and mostly object
  // ids).
  Result<void> emit_delta(const std::string& delta, Entry& entry, std::uint64_t base_offset) {
    unsigned char head[16];
    const std::size_t n = put_entry_header(head, 6, delta.size());
    if (!stored_end) {
      if (deflateInit(&stored, Z_NO_COMPRESSION) != Z_OK) return make_error(ErrorCode::error, "cannot compress a delta");
      stored_end.reset(&stored);
    }
    deflated.resize(deflateBound(&stored, static_cast<uLong>(delta.size())));
    stored.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(delta.data()));
    stored.avail_in = static_cast<uInt>(delta.size());
    stored.next_out = deflated.data();
    stored.avail_out = static_cast<uInt>(deflated.size());
    if (deflate(&stored, Z_FINISH) != Z_STREAM_END) return make_error(ErrorCode::error, "cannot compress a delta");
    const uLong size = stored.total_out;
    if (deflateReset(&stored) != Z_OK) return make_error(ErrorCode::error, "cannot compress a delta");
    return emit_entry(head, n, entry, base_offset, deflated.data(), size);
  }

  // An offset delta entry at `entry.offset`: the entry header `head`, the
  // distance back to `base_offset`, then the delta's zlib stream `data`;
  // sets the entry's CRC and adds it to the index.
  Result<void> emit_entry(const unsigned char* head, std::size_t head_size, Entry& entry, std::uint64_t base_offset,
                          const unsigned char* data, std::size_t size) {
    if (base_offset >= entry.offset) return make_error(ErrorCode::error, "a delta's base is not before it");
    std::uint64_t distance = entry.offset - base_offset;
    unsigned char ofs[16];
    std::size_t pos = sizeof ofs - 1;
    ofs[pos] = distance & 127;
    while (distance >>= 7) ofs[--pos] = static_cast<unsigned char>(128 | (--distance & 127));
    uLong crc = crc32(0, head, static_cast<uInt>(head_size));
    crc = crc32(crc, ofs + pos, static_cast<uInt>(sizeof ofs - pos));
    entry.crc = static_cast<std::uint32_t>(crc32(crc, data, static_cast<uInt>(size)));
    if (!emit(head, head_size) || !emit(ofs + pos, sizeof ofs - pos) || !emit(data, size)) {
      return make_error(ErrorCode::error, "cannot write a pack");
    }
    entries.push_back(entry);
    return {};
  }

  // Reads `n` bytes at `position` of `in` into `out`.
  static bool read_at(int in, char* out, std::size_t n, std::uint64_t position) {
    while (n > 0) {
      ssize_t got = ::pread(in, out, n, static_cast<off_t>(position));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      out += got;
      n -= static_cast<std::size_t>(got);
      position += static_cast<std::uint64_t>(got);
    }
    return true;
  }
};

struct Source {
  std::string base;
  std::vector<Entry> entries;
  std::uint64_t bytes = 0;  // the pack's size
};

// The objects in more than one of `sources` (pipelined group commits write
// an object the group ahead wrote too while it is not yet on disk; a
// long-lived process may write again an object whose pack another process
// merged away; a gc packs the commits published while it walked the
// history, which are in packs of their own too): each is kept in the first
// source that holds it and left out of the others. An entry whose base is
// left out finds it in an earlier source, and an earlier source never
// points into a later one: no delta chain can loop.
struct Duplicates {
  std::vector<std::vector<std::optional<Kept>>> left_out;  // per source, per entry: where the copy kept is
  std::uint64_t kept = 0;                                  // entries not left out
};

Duplicates find_duplicates(const std::vector<Source>& sources) {
  Duplicates out;
  out.left_out.resize(sources.size());
  struct Seen {
    git_oid id;
    std::size_t source, index;
  };
  // Each index lists its ids in order: the runs merge, no sort needed.
  std::vector<Seen> all;
  std::vector<std::size_t> runs{0};
  for (std::size_t s = 0; s < sources.size(); ++s) {
    out.left_out[s].resize(sources[s].entries.size());
    for (std::size_t i = 0; i < sources[s].entries.size(); ++i) all.push_back({sources[s].entries[i].id, s, i});
    runs.push_back(all.size());
  }
  out.kept = all.size();
  auto before = [](const Seen& a, const Seen& b) {
    const int c = std::memcmp(a.id.id, b.id.id, k_oid);
    return c != 0 ? c < 0 : a.source < b.source;
  };
  for (std::size_t width = 1; width < runs.size() - 1; width *= 2) {
    for (std::size_t r = 0; r + width < runs.size() - 1; r += 2 * width) {
      const std::size_t last = std::min(r + 2 * width, runs.size() - 1);
      std::inplace_merge(all.begin() + static_cast<std::ptrdiff_t>(runs[r]),
                         all.begin() + static_cast<std::ptrdiff_t>(runs[r + width]),
                         all.begin() + static_cast<std::ptrdiff_t>(runs[last]), before);
    }
  }
  for (std::size_t i = 1; i < all.size(); ++i) {
    if (std::memcmp(all[i - 1].id.id, all[i].id.id, k_oid) != 0) continue;
    std::size_t first = i - 1;
    while (first > 0 && std::memcmp(all[first - 1].id.id, all[i].id.id, k_oid) == 0) --first;
    out.left_out[all[i].source][all[i].index] = Kept{all[first].source, all[first].index};
    --out.kept;
  }
  return out;
}

// The versions `carried` from the merge that wrote `first`, when its
// entries are where they were (copied whole, first): the later packs' trees
// become deltas against them too.
void take_carried(const Source& first, const std::vector<std::uint64_t>& moved, TreeVersions& carried,
                  TreeVersions& versions) {
  for (std::size_t i = 0; i < first.entries.size(); ++i) {
    if (moved[i] != first.entries[i].offset) return;
  }
  for (auto& [path, version] : carried.versions) versions.versions.try_emplace(path, std::move(version));
}

// What the next merge may take: the versions of the larger trees (a small
// tree gains little from a delta), and none when they are many.
void keep_for_next(TreeVersions&& versions, TreeVersions& carried) {
  constexpr std::size_t k_min_tree = 1024;
  constexpr std::size_t k_max_bytes = 16u << 20;
  carried.versions.clear();
  std::size_t bytes = 0;
  for (auto& [path, version] : versions.versions) {
    if (version.content.size() < k_min_tree) continue;
    bytes += version.content.size() + path.size();
    if (bytes > k_max_bytes) {
      carried.versions.clear();
      return;
    }
    carried.versions.emplace(path, std::move(version));
  }
}

}  // namespace

Result<std::string> concatenate(const std::string& pack_dir, const std::vector<std::string>& bases, bool durable,
                                TreeVersions* carried) {
  // Every index (ids, CRCs and offsets), the largest pack first: it keeps
  // every object it shares with the others, and goes out byte for byte.
  std::vector<Source> sources;
  for (const auto& base : bases) {
    auto entries = read_index(base);
    if (!entries) return entries.error();
    struct stat st {};
    if (::stat((base + ".pack").c_str(), &st) != 0) return make_error(ErrorCode::error, "cannot read pack " + base + ".pack");
    sources.push_back({base, std::move(*entries), static_cast<std::uint64_t>(st.st_size)});
  }
  std::stable_sort(sources.begin(), sources.end(), [](const Source& a, const Source& b) { return a.bytes > b.bytes; });
  const Duplicates duplicates = find_duplicates(sources);
  const std::uint64_t total = duplicates.kept;
  if (total > 0xffffffffu) return make_error(ErrorCode::error, "too many objects to merge into one pack");
  TempFile pack(pack_dir);
  if (!pack.ok()) return make_error(ErrorCode::error, "cannot create a pack in " + pack_dir);
  Output out{pack};
  out.entries.reserve(total);
  std::string header("PACK", 4);
  put32(header, 2);
  put32(header, static_cast<std::uint32_t>(total));
  if (!out.emit(header.data(), header.size())) return make_error(ErrorCode::error, "cannot write a pack");
  // The versions a merge before left, when the pack it wrote goes first and
  // whole (its entries where they were): the commits' trees become deltas
  // against the versions in it, not only against each other.
  TreeVersions versions;
  const bool carry = carried && !sources.empty() && carried->pack == sources.front().base;
  NewOffsets moved(sources.size());
  for (std::size_t s = 0; s < sources.size(); ++s) {
    Source& source = sources[s];
    const std::string pack_path = source.base + ".pack";
    Fd in(::open(pack_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() < 0 || source.bytes < 32) return make_error(ErrorCode::error, "cannot read pack " + pack_path);
    const std::uint64_t body = source.bytes - 12 - 20;  // between the header and the checksum
    for (const Entry& e : source.entries) {
      if (e.offset < 12 || e.offset >= 12 + body) return make_error(ErrorCode::error, "corrupt pack index " + source.base + ".idx");
    }
    const auto& left_out = duplicates.left_out[s];
    const bool drops = std::any_of(left_out.begin(), left_out.end(), [](const auto& kept) { return kept.has_value(); });
    if (drops && body > k_max_rewritten) return make_error(ErrorCode::usage, "an object is in two packs, one of them large");
    auto ok = !drops && body > k_max_rewritten_small
                  ? out.copy_whole(in.get(), body, source.entries, pack_path, moved[s])
                  : out.rewrite(in.get(), body, source.entries, left_out, moved, s, versions, pack_path);
    if (!ok) return ok.error();
    if (s == 0 && carry) take_carried(sources.front(), moved.front(), *carried, versions);
  }
  if (!out.flush()) return make_error(ErrorCode::error, "cannot write a pack");
  std::string pack_sum = out.sum.finish();
  if (!pack.write(pack_sum.data(), pack_sum.size())) return make_error(ErrorCode::error, "cannot write a pack");
  auto published = publish(pack_dir, pack, pack_sum, out.entries, durable, -1);
  if (carried) {
    keep_for_next(std::move(versions), *carried);
    carried->pack = published ? *published : std::string();
  }
  return published;
}

}  // namespace gigafab::gitstore::packfile
