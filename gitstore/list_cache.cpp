#include "gitstore/list_cache.hpp"
#include "gitstore/fd_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <string_view>

namespace gigafab::gitstore {

namespace {

// Format: the header (magic line, row shape), then per row key, id, product, stage, created_at,
// json (strings as a 32-bit length and bytes, numbers little-endian), then a
// CRC-32 of everything before it.
constexpr std::string_view k_magic = "gigafab list cache 1\n";

// The header: the magic line, then a checksum of the row of an empty job, so
// rows written by a gigafab whose `list --json` printed jobs another way
// (a field added or renamed) are never shown by this one.
std::string header() {
  static const std::string line = [] {
    std::string shape = core::job_row(core::Job{}).json;
    char hex[16];
    std::snprintf(hex, sizeof hex, "%08lx",
                  crc32(0, reinterpret_cast<const Bytef*>(shape.data()), static_cast<uInt>(shape.size())));
    return std::string(k_magic) + "rows " + hex + "\n";
  }();
  return line;
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_string(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

// Reads a cache file front to back in blocks, keeping the CRC-32 of what it
// consumed and where it is in the file.
class Reader {
 public:
  Reader(int fd, std::uint64_t end) : m_fd(fd), m_end(end) {}
  bool u32(std::uint32_t& v) {
    unsigned char b[4];
    if (!take(b, 4)) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(b[i]) << (8 * i);
    return true;
  }
  bool u64(std::uint64_t& v) {
    std::uint32_t lo = 0, hi = 0;
    if (!u32(lo) || !u32(hi)) return false;
    v = lo | (static_cast<std::uint64_t>(hi) << 32);
    return true;
  }
  bool string(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n) || m_end - m_pos < n) return false;
    s.resize(n);
    return take(s.data(), n);
  }
  // A string left in the file: where it starts and how long it is.
  bool skip_string(std::uint64_t& at, std::uint32_t& size) {
    if (!u32(size) || m_end - m_pos < size) return false;
    at = m_pos;
    return take(nullptr, size);
  }
  bool take(void* to, std::size_t n) {
    if (m_end - m_pos < n) return false;
    auto* out = static_cast<unsigned char*>(to);
    while (n > 0) {
      if (m_have == m_used && !fill()) return false;
      std::size_t k = std::min(n, m_have - m_used);
      const unsigned char* from = reinterpret_cast<const unsigned char*>(m_block.data()) + m_used;
      m_crc = crc32(m_crc, from, static_cast<uInt>(k));
      if (out) {
        std::memcpy(out, from, k);
        out += k;
      }
      m_used += k;
      m_pos += k;
      n -= k;
    }
    return true;
  }
  bool done() const { return m_pos == m_end; }
  std::uint64_t position() const { return m_pos; }
  std::uint32_t crc() const { return static_cast<std::uint32_t>(m_crc); }

 private:
  bool fill() {
    m_block.resize(1 << 20);
    ssize_t n;
    do {
      n = ::read(m_fd, m_block.data(), m_block.size());
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return false;
    m_have = static_cast<std::size_t>(n);
    m_used = 0;
    return true;
  }
  int m_fd;
  std::uint64_t m_end;
  std::uint64_t m_pos = 0;
  std::string m_block;
  std::size_t m_have = 0, m_used = 0;
  uLong m_crc = crc32(0, nullptr, 0);
};

// An open cache file, shared by the rows whose text stays in it: it is
// replaced by rename, never rewritten, so what was checked at load stays.
struct OpenFile {
  int fd = -1;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

core::Result<void> read_at(int fd, std::uint64_t offset, std::uint32_t size, std::string& out) {
  out.resize(size);
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out.data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return core::make_error(core::ErrorCode::error, "cannot read the list cache: " +
                                                                     std::string(n < 0 ? std::strerror(errno) : "file ends early"));
    done += static_cast<std::size_t>(n);
  }
  return {};
}

// A process killed while saving leaves its temporary file: the next save
// removes those old enough that no live save can still be writing them.
void remove_abandoned_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path cache(path);
  const std::string prefix = cache.filename().string() + ".tmp-";
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::minutes(10);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(cache.parent_path(), ec)) {
    if (entry.path().filename().string().rfind(prefix, 0) != 0) continue;
    std::error_code stat_ec;
    auto mtime = entry.last_write_time(stat_ec);
    if (!stat_ec && mtime < cutoff) fs::remove(entry.path(), stat_ec);
  }
}

}  // namespace

std::string list_cache_path(const std::string& store_path) { return store_path + "/gigafab-list.cache"; }

core::JobRowCache load_list_cache(const std::string& path) {
  auto file = std::make_shared<OpenFile>();
  file->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (file->fd < 0 || ::fstat(file->fd, &st) != 0) return {};
  const std::string head = header();
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < head.size() + 4) return {};
  Reader in(file->fd, size - 4);
  std::string got(head.size(), '\0');
  if (!in.take(got.data(), got.size()) || got != head) return {};
  core::JobRowCache loaded;
  while (!in.done()) {
    std::string key;
    core::JobRow row;
    std::uint32_t stage = 0;
    std::uint64_t created = 0;
    if (!in.string(key) || !in.string(row.id) || !in.string(row.product) || !in.u32(stage) || !in.u64(created) ||
        !in.skip_string(row.stored_at, row.stored_size) || row.stored_size == 0 ||
        stage >= std::size(core::k_all_stages)) {
      return {};
    }
    row.stage = static_cast<core::Stage>(stage);
    row.created_at = static_cast<core::Millis>(created);
    loaded.put(std::move(key), std::move(row));
  }
  std::string trailer;
  if (!read_at(file->fd, size - 4, 4, trailer)) return {};
  std::uint32_t stored_crc = 0;
  for (int i = 0; i < 4; ++i) stored_crc |= static_cast<std::uint32_t>(static_cast<unsigned char>(trailer[i])) << (8 * i);
  if (stored_crc != in.crc()) return {};
  loaded.set_stored_text([file](std::uint64_t offset, std::uint32_t n, std::string& out) {
    return read_at(file->fd, offset, n, out);
  });
  loaded.begin();
  return loaded;
}

// Written in blocks of about 1 MiB, so a save never holds the whole file.
void save_list_cache(const std::string& path, const core::JobRowCache& cache) {
  remove_abandoned_temporaries(path);
  std::string tmp = path + ".tmp-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return;
  uLong crc = crc32(0, nullptr, 0);
  std::string out = header();
  auto flush = [&] {
    crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size()));
    bool written = fd_io::write_all(fd, out);
    out.clear();
    return written;
  };
  bool ok = true;
  std::string buffer;
  for (const auto& [key, row] : cache.used()) {
    auto text = cache.text(*row, buffer);
    // The old file unreadable: keep it, and list without saving.
    if (!text || (out.size() >= (std::size_t{1} << 20) && !flush())) {
      ok = false;
      break;
    }
    put_string(out, *key);
    put_string(out, row->id);
    put_string(out, row->product);
    put_u32(out, static_cast<std::uint32_t>(row->stage));
    put_u64(out, static_cast<std::uint64_t>(row->created_at));
    put_string(out, *text);
  }
  if (ok && flush()) {
    put_u32(out, static_cast<std::uint32_t>(crc));
    ok = fd_io::write_all(fd, out);
  } else {
    ok = false;
  }
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

}  // namespace gigafab::gitstore
