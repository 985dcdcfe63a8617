#include "core/queries.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

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
    // Each job's directory found by its id, not kept (see Snapshot::read_in).
    auto entries = snap.list_with_ids(std::string(layout::k_jobs) + "/" + shard);
    if (!entries) return entries.error();
    for (const auto& [id, dir_id] : *entries) {
      auto text = snap.read_in(layout::job_dir(id), dir_id, layout::k_job_doc_name);
      if (!text) return text.error();
      if (!*text) continue;
      auto job = job_from_toml(**text, layout::job_doc(id));
      if (!job) return job.error();
      if (!filter.product.empty() && job->product != filter.product) continue;
      if (!filter.stages.empty() &&
          std::find(filter.stages.begin(), filter.stages.end(), job->stage) == filter.stages.end()) {
        continue;
      }
      out.push_back(std::move(*job));
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

namespace {

// Rows of the jobs a listing found no cached row for, made on up to two
// threads: each reads a job's document (one read at a time: a Snapshot is not
// safe to read from two threads at once) and parses and renders it while
// the other reads. The parse and the JSON are most of a cold listing.
struct Miss {
  std::string id;
  std::string key;
  std::optional<JobRow> row;  // empty when the directory holds no job document
};

Result<void> make_rows(const Snapshot& snap, std::vector<Miss>& misses) {
  std::mutex read_mutex;
  std::atomic<std::size_t> next{0};
  std::mutex error_mutex;
  std::optional<Error> failure;  // under error_mutex
  std::atomic<bool> failed{false};
  auto fail = [&](const Error& e) {
    std::lock_guard lock(error_mutex);
    if (!failure) failure = e;
    failed = true;
  };
  auto work = [&] {
    // A block of documents read under one lock, then parsed outside it.
    constexpr std::size_t k_block = 64;
    std::vector<std::optional<std::string>> texts;
    for (;;) {
      std::size_t begin = next.fetch_add(k_block);
      if (begin >= misses.size()) return;
      std::size_t end = std::min(begin + k_block, misses.size());
      texts.clear();
      {
        std::lock_guard lock(read_mutex);
        if (failed.load()) return;
        for (std::size_t i = begin; i < end; ++i) {
          auto text = snap.read_in(layout::job_dir(misses[i].id), misses[i].key, layout::k_job_doc_name);
          if (!text) return fail(text.error());
          texts.push_back(std::move(*text));
        }
      }
      for (std::size_t i = begin; i < end; ++i) {
        const auto& text = texts[i - begin];
        if (!text) continue;
        auto job = job_from_toml(*text, layout::job_doc(misses[i].id));
        if (!job) return fail(job.error());
        misses[i].row = job_row(*job);
      }
    }
  };
  // A second thread pays off only for a listing with many jobs to parse.
  constexpr std::size_t k_parallel_from = 256;
  if (misses.size() >= k_parallel_from && std::thread::hardware_concurrency() > 1) {
    std::thread helper(work);
    work();
    helper.join();
  } else {
    work();
  }
  if (failure) return *failure;
  return {};
}

}  // namespace

Result<void> list_job_rows(const Snapshot& snap, const JobFilter& filter, JobListing& listing) {
  JobRowCache& cache = *listing.cache;
  std::deque<JobRow>& scratch = listing.scratch;
  std::vector<const JobRow*>& out = listing.rows;
  out.clear();
  auto keep = [&](const JobRow* row) {
    if (!filter.product.empty() && row->product != filter.product) return;
    if (!filter.stages.empty() &&
        std::find(filter.stages.begin(), filter.stages.end(), row->stage) == filter.stages.end()) {
      return;
    }
    out.push_back(row);
  };
  auto shards = snap.list(layout::k_jobs);
  if (!shards) return shards.error();
  std::vector<Miss> misses;
  for (const auto& shard : *shards) {
    auto entries = snap.list_with_ids(std::string(layout::k_jobs) + "/" + shard);
    if (!entries) return entries.error();
    for (auto& [id, key] : *entries) {
      const JobRow* row = key.empty() ? nullptr : cache.find(key);
      if (row) {
        keep(row);
      } else {
        misses.push_back(Miss{std::move(id), std::move(key), std::nullopt});
      }
    }
  }
  if (auto ok = make_rows(snap, misses); !ok) return ok;
  for (Miss& miss : misses) {
    if (!miss.row) continue;
    keep(miss.key.empty() ? &scratch.emplace_back(std::move(*miss.row)) : cache.put(std::move(miss.key), std::move(*miss.row)));
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
