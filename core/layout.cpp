#include "core/layout.hpp"

#include <charconv>
#include <cstdio>

#include "core/hash.hpp"

namespace gigafab::core::layout {

std::string job_shard(std::string_view id) { return std::string(id.substr(2, 2)); }

std::string job_dir(std::string_view id) { return "jobs/" + job_shard(id) + "/" + std::string(id); }
std::string job_doc(std::string_view id) { return job_dir(id) + "/" + k_job_doc_name; }
std::string job_body(std::string_view id) { return job_dir(id) + "/body.md"; }

std::string job_lease(std::string_view id) { return job_dir(id) + "/lease.toml"; }
std::string job_runs_dir(std::string_view id) { return job_dir(id) + "/runs"; }
std::string job_events_dir(std::string_view id) { return job_dir(id) + "/events"; }

std::string job_run(std::string_view id, std::int64_t epoch) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "/%06lld.toml", static_cast<long long>(epoch));
  return job_runs_dir(id) + buf;
}

std::string job_event(std::string_view id, std::int64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "/%08lld.json", static_cast<long long>(seq));
  return job_events_dir(id) + buf;
}

std::string lease_entry_name(Millis expires_at, std::string_view id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%013lld-", static_cast<long long>(expires_at));
  return buf + std::string(id);
}

std::string profile_doc(std::string_view name, std::int64_t version) {
  return "profiles/" + std::string(name) + "/" + std::to_string(version) + ".md";
}

std::string queued_dir(std::string_view product) { return "index/queued/" + std::string(product); }

std::string queued_entry_name(const Job& job) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%d-%013lld-", 3 - static_cast<int>(job.priority),
                static_cast<long long>(job.created_at));
  std::string hints = std::string(job.engine.empty() ? "" : "e") + (job.last_factory.empty() ? "" : "f");
  return buf + job.id + (hints.empty() ? "" : "-" + hints);
}

std::optional<QueuedName> parse_queued_entry_name(std::string_view name) {
  if (name.size() < 17 || name[1] != '-' || name[15] != '-' || name[0] < '0' || name[0] > '3') return std::nullopt;
  QueuedName q;
  q.priority = static_cast<Priority>(3 - (name[0] - '0'));
  auto digits = name.substr(2, 13);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), q.created_at);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  std::string_view rest = name.substr(16);
  std::size_t dash = rest.size() > 2 ? rest.find('-', 2) : std::string_view::npos;  // ids start "j-"
  q.id = std::string(rest.substr(0, dash));
  if (dash != std::string_view::npos) {
    for (char hint : rest.substr(dash + 1)) {
      if (hint == 'e') {
        q.has_engine = true;
      } else if (hint == 'f') {
        q.has_last_factory = true;
      } else {
        return std::nullopt;
      }
    }
  }
  return q;
}

std::string capset_name(const std::vector<std::string>& capabilities) {
  if (capabilities.empty()) return "_any";
  std::string out;
  for (const auto& cap : capabilities) out += (out.empty() ? "" : "+") + cap;
  return out;
}

std::vector<std::string> capset_capabilities(std::string_view capset) {
  std::vector<std::string> out;
  if (capset == "_any") return out;
  std::size_t start = 0;
  while (start <= capset.size()) {
    std::size_t end = capset.find('+', start);
    if (end == std::string_view::npos) end = capset.size();
    out.emplace_back(capset.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string held_dir(std::string_view factory) { return "index/held/" + std::string(factory); }
std::string factory_doc(std::string_view factory) { return "factories/" + std::string(factory) + ".toml"; }
std::string router_settings(std::string_view product) { return "products/" + std::string(product) + "/router.toml"; }

std::string queued_entry_document(const Job& job) {
  std::string caps;
  for (const auto& cap : job.capabilities) caps += (caps.empty() ? "\"" : ", \"") + cap + "\"";
  std::string out = "id = \"" + job.id + "\"\npriority = \"" + priority_name(job.priority) + "\"\ncreated_at = \"" +
                    format_time(job.created_at) + "\"\ncapabilities = [" + caps + "]\n";
  if (job.budget.usd) out += "budget_usd = " + std::to_string(*job.budget.usd) + "\n";
  if (job.budget.wall_seconds) out += "wall_seconds = " + std::to_string(*job.budget.wall_seconds) + "\n";
  if (!job.engine.empty()) out += "engine = \"" + job.engine + "\"\n";
  if (!job.last_factory.empty()) out += "last_factory = \"" + job.last_factory + "\"\n";
  return out;
}

std::string dependents_dir(std::string_view dep_id) {
  return "index/dependents/" + job_shard(dep_id) + "/" + std::string(dep_id);
}

std::string idempotency_entry(std::string_view product, std::string_view key) {
  return "index/idem/" + std::string(product) + "/" + sha256_hex(key);
}

std::string token_doc(std::string_view id) { return std::string(k_tokens_dir) + "/" + std::string(id) + ".toml"; }
std::string factory_token_entry(std::string_view factory) { return "auth/factories/" + std::string(factory); }

}  // namespace gigafab::core::layout
