#include "core/submit.hpp"

#include <algorithm>
#include <set>

#include "core/ids.hpp"
#include "core/layout.hpp"
#include "core/queue_index.hpp"
#include "core/queries.hpp"
#include "core/records.hpp"

namespace gigafab::core {

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string idempotency_document(const std::string& key, const std::string& job_id) {
  // Written by hand so that any key (quotes, backslashes, unicode) round-trips.
  std::string escaped;
  for (char c : key) {
    if (c == '"' || c == '\\') {
      escaped += '\\';
      escaped += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      escaped += buf;
    } else {
      escaped += c;
    }
  }
  return "job = \"" + job_id + "\"\nkey = \"" + escaped + "\"\n";
}

}  // namespace

Result<SubmitResult> submit(const Snapshot& snap, const SubmitRequest& request, Millis now,
                            std::uint64_t random_bits) {
  const Manifest& m = request.manifest;
  if (auto ok = validate_name("product", request.product); !ok) return ok.error();

  SubmitResult result;
  std::string idem_path;
  if (m.idempotency_key) {
    idem_path = layout::idempotency_entry(request.product, *m.idempotency_key);
    auto existing = snap.read(idem_path);
    if (!existing) return existing.error();
    if (*existing) {
      std::string_view text = **existing;
      std::size_t start = text.find('"') + 1;
      result.job_id = std::string(text.substr(start, text.find('"', start) - start));
      result.duplicate = true;
      return result;
    }
  }

  bool blocked = false;
  std::vector<std::string> unmet;
  for (const auto& dep : m.deps) {
    if (auto ok = validate_job_id(dep); !ok) return ok.error();
    auto dep_job = load_job(snap, dep, request.product);
    if (!dep_job) {
      if (dep_job.error().code == ErrorCode::not_found) {
        return make_error(ErrorCode::not_found, "dependency " + dep + " not found");
      }
      return dep_job.error();
    }
    if (dep_job->stage != Stage::shipped) {
      blocked = true;
      unmet.push_back(dep);
    }
  }

  Job job;
  job.product = request.product;
  job.title = m.title;
  job.stage = blocked ? Stage::blocked : Stage::queued;
  job.priority = m.priority.value_or(Priority::normal);
  job.deps = m.deps;
  job.idempotency_key = m.idempotency_key.value_or("");
  job.max_attempts = m.max_attempts.value_or(3);
  job.repo = m.repo;
  job.rev = 1;
  job.created_at = job.updated_at = now;
  std::set<std::string> caps(m.capabilities.begin(), m.capabilities.end());
  Budget budget;
  bool review = false;
  if (request.profile) {
    const Profile& p = *request.profile;
    job.profile = p.name;
    job.profile_version = p.version;
    job.engine = p.engine;
    caps.insert(p.capabilities.begin(), p.capabilities.end());
    budget = p.budget;
    review = p.review;
    std::string path = layout::profile_doc(p.name, p.version);
    auto stored = snap.read(path);
    if (!stored) return stored.error();
    if (*stored && **stored != p.text) {
      return make_error(ErrorCode::conflict, "profile " + p.name + " version " + std::to_string(p.version) +
                                                 " is already stored with different content; profile versions "
                                                 "are immutable, so bump 'version' after editing it");
    }
    if (!*stored) result.change.put(path, p.text);
  }
  job.capabilities.assign(caps.begin(), caps.end());
  job.budget = budget.overlaid_with(m.budget);
  job.review = m.review.value_or(review);

  std::uint64_t state = random_bits;
  for (int attempt = 0;; ++attempt) {
    job.id = new_job_id(splitmix64(state));
    auto taken = snap.read(layout::job_doc(job.id));
    if (!taken) return taken.error();
    if (!*taken) break;
    if (attempt == 16) return make_error(ErrorCode::error, "could not allocate a unique job id");
  }

  result.job_id = job.id;
  Event submitted;
  submitted.seq = job.event_seq = 1;
  submitted.at = now;
  submitted.type = "submit";
  submitted.to = stage_name(job.stage);
  submitted.actor = request.actor;
  if (blocked) {
    submitted.detail = "waiting for";
    for (const auto& dep : unmet) submitted.detail += " " + dep;
  }
  result.change.put(layout::job_event(job.id, 1), event_to_json_text(submitted));
  result.change.put(layout::job_doc(job.id), job_to_toml(job));
  result.change.put(layout::job_body(job.id), m.body);
  if (blocked) {
    for (const auto& dep : unmet) result.change.put(layout::dependents_dir(dep) + "/" + job.id, "");
  } else {
    if (auto ok = queue_index::add(snap, result.change, job); !ok) return ok.error();
  }
  if (m.idempotency_key) result.change.put(idem_path, idempotency_document(*m.idempotency_key, job.id));

  result.change.summary = "submit " + job.id + ": " + job.title;
  result.change.trailers = {{"Gigafab-Op", "submit"},
                            {"Gigafab-Job", job.id},
                            {"Gigafab-Product", job.product},
                            {"Gigafab-Stage", stage_name(job.stage)},
                            {"Gigafab-Actor", request.actor}};
  return result;
}

}  // namespace gigafab::core
