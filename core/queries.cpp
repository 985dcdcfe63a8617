#include "core/queries.hpp"

#include <algorithm>

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

}  // namespace gigafab::core
