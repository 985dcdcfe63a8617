#include "core/queries.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/json.hpp"
#include "core/layout.hpp"

namespace gigafab::core {

Result<std::optional<Job>> find_job(const Snapshot& snap, std::string_view id) {
  std::string path = layout::job_doc(id);
  auto text = snap.read(path);
  if (!text) return text.error();
  if (!*text) return std::optional<Job>{};
  auto job = job_from_toml(**text, path);
  if (!job) return job.error();
  return std::optional<Job>{std::move(*job)};
}

Result<Job> load_job(const Snapshot& snap, std::string_view id, std::string_view product) {
  auto job = find_job(snap, id);
  if (!job) return job.error();
  if (!*job || (!product.empty() && (*job)->product != product)) {
    return make_error(ErrorCode::not_found, "job " + std::string(id) + " not found");
  }
  return std::move(**job);
}

Result<std::string> load_body(const Snapshot& snap, std::string_view id) {
  auto text = snap.read(layout::job_body(id));
  if (!text) return text.error();
  return text->value_or(std::string{});
}

Result<std::vector<Job>> list_jobs(const Snapshot& snap, const JobFilter& filter) {
  std::vector<Job> out;
  auto shards = snap.list(layout::k_jobs);
  if (!shards) return shards.error();
  for (const auto& shard : *shards) {
    auto ids = snap.list(std::string(layout::k_jobs) + "/" + shard);
    if (!ids) return ids.error();
    for (const auto& id : *ids) {
      auto job = find_job(snap, id);
      if (!job) return job.error();
      if (!*job) continue;
      const Job& j = **job;
      if (!filter.product.empty() && j.product != filter.product) continue;
      if (!filter.stages.empty() &&
          std::find(filter.stages.begin(), filter.stages.end(), j.stage) == filter.stages.end()) {
        continue;
      }
      out.push_back(std::move(**job));
    }
  }
  std::sort(out.begin(), out.end(), [](const Job& a, const Job& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  return out;
}

const JobRow* JobRowCache::find(const std::string& key) {
  auto it = m_slots.find(key);
  if (it == m_slots.end()) return nullptr;
  it->second.used = true;
  return &it->second.row;
}

const JobRow* JobRowCache::put(std::string key, JobRow row) {
  m_added = true;
  Slot& slot = m_slots[std::move(key)];
  slot.row = std::move(row);
  slot.used = true;
  return &slot.row;
}

bool JobRowCache::stale() const {
  return m_added || std::any_of(m_slots.begin(), m_slots.end(), [](const auto& s) { return !s.second.used; });
}

void JobRowCache::begin() {
  m_added = false;
  for (auto& [_, slot] : m_slots) slot.used = false;
}

Result<std::string_view> JobRowCache::text(const JobRow& row, std::string& buffer) const {
  if (!row.json.empty() || row.stored_size == 0) return std::string_view(row.json);
  if (!m_stored) return make_error(ErrorCode::error, "the list cache lost the text of job " + row.id);
  if (auto ok = m_stored(row.stored_at, row.stored_size, buffer); !ok) return ok.error();
  return std::string_view(buffer);
}

std::vector<std::pair<const std::string*, const JobRow*>> JobRowCache::used() const {
  std::vector<std::pair<const std::string*, const JobRow*>> out;
  out.reserve(m_slots.size());
  for (const auto& [key, slot] : m_slots) {
    if (slot.used) out.emplace_back(&key, &slot.row);
  }
  return out;
}

JobRow job_row(const Job& job) {
  return {job.id, job.product, job.stage, job.created_at,
          job_json_text(job)};
}

Result<void> list_job_rows(const Snapshot& snap, const JobFilter& filter, JobListing& listing) {
  JobRowCache& cache = *listing.cache;
  std::deque<JobRow>& scratch = listing.scratch;
  std::vector<const JobRow*>& out = listing.rows;
  out.clear();
  auto shards = snap.list(layout::k_jobs);
  if (!shards) return shards.error();
  for (const auto& shard : *shards) {
    auto entries = snap.list_with_ids(std::string(layout::k_jobs) + "/" + shard);
    if (!entries) return entries.error();
    for (auto& [id, key] : *entries) {
      const JobRow* row = key.empty() ? nullptr : cache.find(key);
      if (!row) {
        auto job = find_job(snap, id);
        if (!job) return job.error();
        if (!*job) continue;
        if (key.empty()) {
          row = &scratch.emplace_back(job_row(**job));
        } else {
          row = cache.put(std::move(key), job_row(**job));
        }
      }
      if (!filter.product.empty() && row->product != filter.product) continue;
      if (!filter.stages.empty() &&
          std::find(filter.stages.begin(), filter.stages.end(), row->stage) == filter.stages.end()) {
        continue;
      }
      out.push_back(row);
    }
  }
  std::sort(out.begin(), out.end(), [](const JobRow* a, const JobRow* b) {
    return a->created_at != b->created_at ? a->created_at < b->created_at : a->id < b->id;
  });
  return {};
}

Result<bool> JobRowsWriter::next(std::string& out, std::size_t budget) {
  if (m_finished) return false;
  const auto& rows = m_listing->rows;
  const std::size_t start = out.size();
  if (!m_started) {
    m_started = true;
    out += rows.empty() ? "{\n  \"jobs\": []\n}" : "{\n  \"jobs\": [\n";
  }
  while (m_next < rows.size() && out.size() - start < budget) {
    auto text = m_listing->cache ? m_listing->cache->text(*rows[m_next], m_buffer)
                                 : Result<std::string_view>(std::string_view(rows[m_next]->json));
    if (!text) return text.error();
    if (m_next) out += ",\n";
    // Each row one level deeper: two indents more on every line.
    out += "    ";
    std::string_view rest = *text;
    for (std::size_t nl; (nl = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(nl + 1)) {
      out.append(rest.data(), nl + 1);
      out += "    ";
    }
    out.append(rest);
    ++m_next;
  }
  if (m_next == rows.size()) {
    if (!rows.empty()) out += "\n  ]\n}";
    m_finished = true;
  }
  return true;
}

Result<std::string> job_rows_document(const JobListing& listing) {
  std::string out;
  std::size_t size = 32;
  for (const JobRow* row : listing.rows) size += (row->json.empty() ? row->stored_size : row->json.size()) * 11 / 10 + 8;
  out.reserve(size);
  JobRowsWriter writer(listing);
  for (;;) {
    auto more = writer.next(out, std::size_t{1} << 20);
    if (!more) return more.error();
    if (!*more) return out;
  }
}

}  // namespace gigafab::core
