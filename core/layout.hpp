// Where every document lives in the state tree (DESIGN.md section 2). Paths are
// built only from validated ids and names.
//
//   meta/store.toml                                  format version
//   jobs/<shard>/<id>/job.toml                       the job document
//   jobs/<shard>/<id>/body.md                        the manifest body, verbatim
//   profiles/<name>/<version>.md                     immutable persona snapshots
//   index/queued/<product>/<capset>/@<bucket>/<rank>-<created>-<id>[-<hints>]
//                                                    claimable jobs by required capabilities
//                                                    (<capset> = "a+b", or "_any"), best first,
//                                                    in buckets of at most 256 (core/queue_index.hpp)
//   index/dependents/<shard>/<dep>/<id>              jobs waiting on <dep>
//   index/leases/<expires>-<id>                      live leases, soonest expiry first
//   index/held/<factory>/<id>                        the leases each factory holds (seats)
//   factories/<id>.toml                              factory registrations (caps, seats, engine)
//   products/<product>/router.toml                   router weights and thresholds
//   auth/tokens/<token-id>.toml                      API tokens: role, product, salted hash (never the secret)
//   auth/factories/<factory>                         the factory's live token id
// and, on refs/gigafab/liveness (a ref whose history is not kept):
//   factories/<id>.toml                              last heartbeat and load
//   index/idem/<product>/<sha256(key)>               idempotency key -> job id
//
// <shard> is the two characters after "j-", so a write rewrites one small tree
// per level instead of one tree listing every job.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/job.hpp"

namespace gigafab::core::layout {

inline constexpr std::string_view k_meta = "meta/store.toml";
inline constexpr std::string_view k_jobs = "jobs";
// 2: the queue index in buckets (1: entries directly under <capset>; a
// store of format 1 is upgraded when opened).
inline constexpr std::int64_t k_format_version = 2;

std::string job_shard(std::string_view id);
std::string job_dir(std::string_view id);
std::string job_doc(std::string_view id);
inline constexpr const char* k_job_doc_name = "job.toml";  // job_doc() is job_dir() + "/" + this
std::string job_body(std::string_view id);
std::string job_lease(std::string_view id);
std::string job_runs_dir(std::string_view id);
std::string job_run(std::string_view id, std::int64_t epoch);
std::string job_events_dir(std::string_view id);
std::string job_event(std::string_view id, std::int64_t seq);
inline constexpr std::string_view k_lease_index = "index/leases";
// "<expires_at, 13 digits>-<id>": sorts soonest-expiring first.
std::string lease_entry_name(Millis expires_at, std::string_view id);
std::string profile_doc(std::string_view name, std::int64_t version);
std::string queued_dir(std::string_view product);
// "_any" for no capabilities, else the sorted capabilities joined with '+'.
std::string capset_name(const std::vector<std::string>& capabilities);
std::vector<std::string> capset_capabilities(std::string_view capset);
// "<rank>-<created, 13 digits>-<id>[-<hints>]": sorts bytewise best first
// (higher priority, then older, then id). <hints> says what could give the
// job affinity to a factory, so a claim can bound a job's score from its name
// alone: "e" it names an engine, "f" a factory ran it before.
std::string queued_entry_name(const Job& job);
struct QueuedName {
  Priority priority = Priority::normal;
  Millis created_at = 0;
  std::string id;
  bool has_engine = false;
  bool has_last_factory = false;
};
std::optional<QueuedName> parse_queued_entry_name(std::string_view name);
// The entry's content: what the router needs without opening the job.
std::string queued_entry_document(const Job& job);
std::string dependents_dir(std::string_view dep_id);
std::string held_dir(std::string_view factory);
std::string factory_doc(std::string_view factory);
std::string router_settings(std::string_view product);
inline constexpr const char* k_liveness_ref = "refs/gigafab/liveness";
std::string idempotency_entry(std::string_view product, std::string_view key);
inline constexpr std::string_view k_auth_dir = "auth";  // all a token check reads is under it
inline constexpr std::string_view k_tokens_dir = "auth/tokens";
std::string token_doc(std::string_view id);
std::string factory_token_entry(std::string_view factory);

}  // namespace gigafab::core::layout
