#include "gitstore/list_cache.hpp"

#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
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

class Reader {
 public:
  explicit Reader(std::string_view data) : m_data(data) {}
  bool u32(std::uint32_t& v) {
    if (m_data.size() - m_pos < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(m_data[m_pos + i])) << (8 * i);
    m_pos += 4;
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
    if (!u32(n) || m_data.size() - m_pos < n) return false;
    s.assign(m_data.substr(m_pos, n));
    m_pos += n;
    return true;
  }
  bool done() const { return m_pos == m_data.size(); }

 private:
  std::string_view m_data;
  std::size_t m_pos = 0;
};

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
  core::JobRowCache cache;
  std::ifstream in(path, std::ios::binary);
  if (!in) return cache;
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string head = header();
  if (data.size() < head.size() + 4 || std::string_view(data).substr(0, head.size()) != head) return cache;
  std::string_view body = std::string_view(data).substr(0, data.size() - 4);
  Reader trailer(std::string_view(data).substr(data.size() - 4));
  std::uint32_t crc = 0;
  trailer.u32(crc);
  if (crc != static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())))) {
    return cache;
  }
  core::JobRowCache loaded;
  Reader in_rows(body.substr(head.size()));
  while (!in_rows.done()) {
    std::string key;
    core::JobRow row;
    std::uint32_t stage = 0;
    std::uint64_t created = 0;
    if (!in_rows.string(key) || !in_rows.string(row.id) || !in_rows.string(row.product) || !in_rows.u32(stage) ||
        !in_rows.u64(created) || !in_rows.string(row.json) || stage >= std::size(core::k_all_stages)) {
      return cache;
    }
    row.stage = static_cast<core::Stage>(stage);
    row.created_at = static_cast<core::Millis>(created);
    loaded.put(std::move(key), std::move(row));
  }
  loaded.begin();
  return loaded;
}

void save_list_cache(const std::string& path, const core::JobRowCache& cache) {
  std::string out = header();
  for (const auto& [key, row] : cache.used()) {
    put_string(out, *key);
    put_string(out, row->id);
    put_string(out, row->product);
    put_u32(out, static_cast<std::uint32_t>(row->stage));
    put_u64(out, static_cast<std::uint64_t>(row->created_at));
    put_string(out, row->json);
  }
  put_u32(out, static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size()))));
  remove_abandoned_temporaries(path);
  std::string tmp = path + ".tmp-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return;
  std::size_t written = 0;
  while (written < out.size()) {
    ssize_t n = ::write(fd, out.data() + written, out.size() - written);
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (written != out.size() || std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

}  // namespace gigafab::gitstore
