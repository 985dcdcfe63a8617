// Unit tests for core/submit.hpp (and the job document it writes): submit a
// manifest against a MemorySnapshot and inspect the Change it returns.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/ids.hpp"
#include "core/job.hpp"
#include "core/layout.hpp"
#include "core/manifest.hpp"
#include "core/queries.hpp"
#include "core/queue_index.hpp"
#include "core/submit.hpp"

using namespace gigafab;
namespace layout = gigafab::core::layout;

namespace {

constexpr core::Millis k_now = 1700000000123;

core::Manifest manifest(std::string_view text) {
  auto r = core::parse_manifest(text, "test.md");
  if (!r) FAIL("manifest does not parse: " << r.error().message);
  return *r;
}

core::Profile profile(std::string_view text) {
  auto r = core::parse_profile(text, "profile.md");
  if (!r) FAIL("profile does not parse: " << r.error().message);
  return *r;
}

core::SubmitRequest request(std::string_view manifest_text, std::string product = "default") {
  core::SubmitRequest req;
  req.manifest = manifest(manifest_text);
  req.product = std::move(product);
  req.actor = "alice@laptop";
  return req;
}

core::SubmitResult submit_ok(core::MemorySnapshot& snap, const core::SubmitRequest& req, std::uint64_t bits,
                             core::Millis now = k_now) {
  auto r = core::submit(snap, req, now, bits);
  if (!r) FAIL("submit failed: " << r.error().message);
  snap.apply(r->change);
  return std::move(*r);
}

const std::string& written(const core::Change& change, const std::string& path) {
  auto it = change.writes.find(path);
  if (it == change.writes.end() || !it->second) FAIL("not written: " << path);
  return *it->second;
}

// The queue entry `change` writes for `job`, wherever its bucket is.
const std::string& queued_written(const core::Change& change, const core::Job& job) {
  std::string suffix = "/" + layout::queued_entry_name(job);
  for (const auto& [path, content] : change.writes) {
    if (path.starts_with("index/queued/") && path.ends_with(suffix) && content) return *content;
  }
  FAIL("no queue entry written for " << job.id);
  return change.summary;
}

// The queue entry of `job` in `snap`, or nullopt.
std::optional<std::string> queued_in(const core::Snapshot& snap, const core::Job& job) {
  auto path = core::queue_index::find(snap, job);
  REQUIRE(path.ok());
  if (!*path) return std::nullopt;
  return *snap.read(**path).value();
}

// The writes of a submit other than the job's event log (jobs/../<id>/events/),
// which is not part of what these tests pin down.
std::map<std::string, std::optional<std::string>> documents(const core::Change& change, const std::string& id) {
  std::string events = layout::job_dir(id) + "/events/";
  std::map<std::string, std::optional<std::string>> out;
  for (const auto& [path, content] : change.writes) {
    if (!path.starts_with(events)) out.emplace(path, content);
  }
  return out;
}

bool has_prefix(const core::Change& change, std::string_view prefix) {
  return std::any_of(change.writes.begin(), change.writes.end(),
                     [&](const auto& entry) { return entry.first.starts_with(prefix); });
}

std::string trailer(const core::Change& change, std::string_view key) {
  for (const auto& [k, v] : change.trailers) {
    if (k == key) return v;
  }
  return {};
}

core::Job job_in(const core::MemorySnapshot& snap, const std::string& id) {
  auto job = core::load_job(snap, id, "");
  if (!job) FAIL("cannot load " << id << ": " << job.error().message);
  return *job;
}

void set_stage(core::MemorySnapshot& snap, const std::string& id, core::Stage stage) {
  core::Job job = job_in(snap, id);
  job.stage = stage;
  core::Change change;
  change.put(layout::job_doc(id), core::job_to_toml(job));
  snap.apply(change);
}

constexpr std::string_view k_profile_doc = R"(+++
name = "backend-dev"
version = 2
capabilities = ["linux", "docker"]
review = true
[budget]
usd = 5.0
wall = "45m"
tokens = 1000
+++
# Backend developer
)";

}  // namespace

TEST_CASE("submit creates the job document, body, queued entry and idempotency entry") {
  core::MemorySnapshot snap;
  std::string body = "# Add retry\n\nRetry uploads.\n";
  auto req = request("+++\npriority = \"high\"\ncapabilities = [\"linux\"]\nidempotency_key = \"tracker:ISSUE-42\"\n"
                     "max_attempts = 4\n[repo]\nurl = \"https://x/y.git\"\nbase = \"main\"\n+++\n" + body);
  auto r = core::submit(snap, req, k_now, 42);
  REQUIRE(r.ok());
  const std::string id = r->job_id;
  CHECK(core::validate_job_id(id).ok());
  CHECK_FALSE(r->duplicate);

  const core::Change& change = r->change;
  CHECK(documents(change, id).size() == 4);

  auto job = core::job_from_toml(written(change, layout::job_doc(id)), "job.toml");
  REQUIRE(job.ok());
  CHECK(job->id == id);
  CHECK(job->product == "default");
  CHECK(job->title == "Add retry");
  CHECK(job->stage == core::Stage::queued);
  CHECK(job->priority == core::Priority::high);
  CHECK(job->capabilities == std::vector<std::string>{"linux"});
  CHECK(job->deps.empty());
  CHECK(job->profile.empty());
  CHECK(job->profile_version == 0);
  CHECK(job->idempotency_key == "tracker:ISSUE-42");
  CHECK(job->review == false);
  CHECK(job->budget == core::Budget{});
  CHECK(job->repo == core::RepoSpec{"https://x/y.git", "main"});
  CHECK(job->lease_epoch == 0);
  CHECK(job->rev == 1);
  CHECK(job->attempts == 0);
  CHECK(job->max_attempts == 4);
  CHECK(job->checkpoint.empty());
  CHECK(job->created_at == k_now);
  CHECK(job->updated_at == k_now);

  CHECK(written(change, layout::job_body(id)) == body);

  // The first entry of its rank in the capability set makes a new bucket, named after it.
  std::string queued = "index/queued/default/" + layout::capset_name(job->capabilities) + "/@1-1700000000123-" + id +
                       "/1-1700000000123-" + id;
  CHECK(written(change, queued) == layout::queued_entry_document(*job));
  CHECK(written(change, queued).find("id = \"" + id + "\"") != std::string::npos);

  std::string idem = layout::idempotency_entry("default", "tracker:ISSUE-42");
  CHECK(written(change, idem) == "job = \"" + id + "\"\nkey = \"tracker:ISSUE-42\"\n");
}

TEST_CASE("submit applies the defaults when the manifest sets nothing") {
  core::MemorySnapshot snap;
  auto r = submit_ok(snap, request("# Plain\n"), 1);
  core::Job job = job_in(snap, r.job_id);
  CHECK(job.priority == core::Priority::normal);
  CHECK(job.max_attempts == 3);
  CHECK(job.review == false);
  CHECK(job.stage == core::Stage::queued);
  CHECK(documents(r.change, r.job_id).size() == 3);  // job, body, queued entry: no idempotency entry
  CHECK_FALSE(has_prefix(r.change, "index/idem/"));
  CHECK(queued_in(snap, job).has_value());
}

TEST_CASE("the submit commit message has a summary and the audit trailers") {
  core::MemorySnapshot snap;
  auto r = submit_ok(snap, request("# Ship it\n", "acme"), 7);
  CHECK(r.change.summary == "submit " + r.job_id + ": Ship it");
  CHECK(trailer(r.change, "Gigafab-Op") == "submit");
  CHECK(trailer(r.change, "Gigafab-Job") == r.job_id);
  CHECK(trailer(r.change, "Gigafab-Product") == "acme");
  CHECK(trailer(r.change, "Gigafab-Stage") == "queued");
  CHECK(trailer(r.change, "Gigafab-Actor") == "alice@laptop");
  std::string msg = r.change.message();
  CHECK(msg.rfind(r.change.summary + "\n\n", 0) == 0);
  CHECK(msg.find("\nGigafab-Op: submit\n") != std::string::npos);
  CHECK(msg.find("\nGigafab-Job: " + r.job_id + "\n") != std::string::npos);
  CHECK(msg.find("\nGigafab-Product: acme\n") != std::string::npos);
  CHECK(msg.find("\nGigafab-Actor: alice@laptop\n") != std::string::npos);
}

TEST_CASE("a reused idempotency key returns the same job and writes nothing") {
  core::MemorySnapshot snap;
  auto first = submit_ok(snap, request("+++\nidempotency_key = \"k-1\"\n+++\n# First\n"), 100);
  auto files_before = snap.files();

  auto again = core::submit(snap, request("+++\nidempotency_key = \"k-1\"\n+++\n# Different body\n"), k_now + 5, 999);
  REQUIRE(again.ok());
  CHECK(again->duplicate);
  CHECK(again->job_id == first.job_id);
  CHECK(again->change.empty());
  CHECK(again->change.writes.empty());
  snap.apply(again->change);
  CHECK(snap.files() == files_before);

  // The same key in another product is another job.
  auto other = core::submit(snap, request("+++\nidempotency_key = \"k-1\"\n+++\n# First\n", "other"), k_now, 100);
  REQUIRE(other.ok());
  CHECK_FALSE(other->duplicate);
  CHECK_FALSE(other->change.empty());
}

TEST_CASE("idempotency keys with quotes, backslashes and control characters round trip") {
  core::MemorySnapshot snap;
  std::string key = "a \\\"quoted\\\" key\\\\ \\t end";  // TOML escapes in the manifest
  auto first = submit_ok(snap, request("+++\nidempotency_key = \"" + key + "\"\n+++\n# T\n"), 5);
  std::string raw = "a \"quoted\" key\\ \t end";
  CHECK(job_in(snap, first.job_id).idempotency_key == raw);
  auto again = core::submit(snap, request("+++\nidempotency_key = \"" + key + "\"\n+++\n# T\n"), k_now, 6);
  REQUIRE(again.ok());
  CHECK(again->duplicate);
  CHECK(again->job_id == first.job_id);
  std::string doc = **snap.read(layout::idempotency_entry("default", raw));
  CHECK(doc == "job = \"" + first.job_id + "\"\nkey = \"a \\\"quoted\\\" key\\\\ \\u0009 end\"\n");
}

TEST_CASE("an unknown dep is not_found and nothing is written") {
  core::MemorySnapshot snap;
  auto r = core::submit(snap, request("+++\ndeps = [\"j-aaaaaaaa\"]\n+++\n# T\n"), k_now, 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::not_found);
  CHECK(r.error().message.find("j-aaaaaaaa") != std::string::npos);
}

TEST_CASE("a dep of another product is not_found") {
  core::MemorySnapshot snap;
  auto dep = submit_ok(snap, request("# Dep\n", "other"), 11);
  auto r = core::submit(snap, request("+++\ndeps = [\"" + dep.job_id + "\"]\n+++\n# T\n", "default"), k_now, 12);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::not_found);
}

TEST_CASE("a job with an unshipped dep starts blocked and is indexed under the dep") {
  core::MemorySnapshot snap;
  auto dep = submit_ok(snap, request("# Dep\n"), 21);
  auto r = core::submit(snap, request("+++\ndeps = [\"" + dep.job_id + "\"]\n+++\n# Waits\n"), k_now + 1, 22);
  REQUIRE(r.ok());
  const std::string id = r->job_id;
  auto job = core::job_from_toml(written(r->change, layout::job_doc(id)), "job.toml");
  REQUIRE(job.ok());
  CHECK(job->stage == core::Stage::blocked);
  CHECK(job->deps == std::vector<std::string>{dep.job_id});
  CHECK(written(r->change, layout::dependents_dir(dep.job_id) + "/" + id) == "");
  CHECK(written(r->change, "index/dependents/" + dep.job_id.substr(2, 2) + "/" + dep.job_id + "/" + id) == "");
  CHECK_FALSE(has_prefix(r->change, "index/queued/"));
  CHECK(trailer(r->change, "Gigafab-Stage") == "blocked");

  snap.apply(r->change);
  auto dependents = snap.list(layout::dependents_dir(dep.job_id));
  REQUIRE(dependents.ok());
  CHECK(*dependents == std::vector<std::string>{id});
  auto queued = snap.list(layout::queued_dir("default"));
  REQUIRE(queued.ok());
  CHECK(queued->size() == 1);  // only the dep
}

TEST_CASE("a job whose deps are all shipped is queued") {
  core::MemorySnapshot snap;
  auto dep_a = submit_ok(snap, request("# Dep A\n"), 31);
  auto dep_b = submit_ok(snap, request("# Dep B\n"), 32);
  set_stage(snap, dep_a.job_id, core::Stage::shipped);
  set_stage(snap, dep_b.job_id, core::Stage::shipped);
  REQUIRE(job_in(snap, dep_a.job_id).stage == core::Stage::shipped);

  auto r = core::submit(snap, request("+++\ndeps = [\"" + dep_a.job_id + "\", \"" + dep_b.job_id + "\"]\n+++\n# Go\n"),
                        k_now + 2, 33);
  REQUIRE(r.ok());
  auto job = core::job_from_toml(written(r->change, layout::job_doc(r->job_id)), "job.toml");
  REQUIRE(job.ok());
  CHECK(job->stage == core::Stage::queued);
  CHECK(job->deps == std::vector<std::string>{dep_a.job_id, dep_b.job_id});
  CHECK(queued_written(r->change, *job) == layout::queued_entry_document(*job));
  CHECK_FALSE(has_prefix(r->change, "index/dependents/"));
}

TEST_CASE("one unshipped dep among shipped ones blocks the job") {
  core::MemorySnapshot snap;
  auto shipped = submit_ok(snap, request("# Shipped\n"), 41);
  auto pending = submit_ok(snap, request("# Pending\n"), 42);
  set_stage(snap, shipped.job_id, core::Stage::shipped);
  set_stage(snap, pending.job_id, core::Stage::testing);
  auto r = core::submit(
      snap, request("+++\ndeps = [\"" + shipped.job_id + "\", \"" + pending.job_id + "\"]\n+++\n# Wait\n"), k_now, 43);
  REQUIRE(r.ok());
  auto job = core::job_from_toml(written(r->change, layout::job_doc(r->job_id)), "job.toml");
  REQUIRE(job.ok());
  CHECK(job->stage == core::Stage::blocked);
  CHECK(r->change.writes.count(layout::dependents_dir(pending.job_id) + "/" + r->job_id) == 1);
  // It waits on the unshipped dep only.
  CHECK(r->change.writes.count(layout::dependents_dir(shipped.job_id) + "/" + r->job_id) == 0);
  CHECK_FALSE(has_prefix(r->change, "index/queued/"));
}

TEST_CASE("submit rejects an invalid product") {
  core::MemorySnapshot snap;
  for (const char* product : {"", "../x", "ac me", "a/b", "-x"}) {
    CAPTURE(product);
    auto r = core::submit(snap, request("# T\n", product), k_now, 1);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
  }
}

TEST_CASE("the profile is snapshotted once and versions are immutable") {
  core::MemorySnapshot snap;
  auto req = request("+++\nprofile = \"backend-dev\"\n+++\n# With profile\n");
  req.profile = profile(k_profile_doc);

  auto first = submit_ok(snap, req, 51);
  CHECK(written(first.change, "profiles/backend-dev/2.md") == k_profile_doc);
  core::Job job = job_in(snap, first.job_id);
  CHECK(job.profile == "backend-dev");
  CHECK(job.profile_version == 2);

  SUBCASE("the same document again is not rewritten") {
    auto again = core::submit(snap, req, k_now, 52);
    REQUIRE(again.ok());
    CHECK(again->change.writes.count("profiles/backend-dev/2.md") == 0);
    CHECK_FALSE(has_prefix(again->change, "profiles/"));
    CHECK(again->job_id != first.job_id);
  }
  SUBCASE("a different document under the same version is a conflict") {
    std::string edited(k_profile_doc);
    edited += "\nOne more line of persona.\n";
    req.profile = profile(edited);
    auto files_before = snap.files();
    auto r = core::submit(snap, req, k_now, 53);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::conflict);
    CHECK(r.error().message.find("backend-dev") != std::string::npos);
    CHECK(r.error().message.find("version 2") != std::string::npos);
    CHECK(snap.files() == files_before);
  }
  SUBCASE("a bumped version is snapshotted next to the old one") {
    std::string bumped(k_profile_doc);
    bumped.replace(bumped.find("version = 2"), 11, "version = 3");
    req.profile = profile(bumped);
    auto r = submit_ok(snap, req, 54);
    CHECK(written(r.change, "profiles/backend-dev/3.md") == bumped);
    CHECK(**snap.read("profiles/backend-dev/2.md") == k_profile_doc);
    CHECK(job_in(snap, r.job_id).profile_version == 3);
  }
}

TEST_CASE("capabilities are the sorted union of profile and manifest capabilities") {
  core::MemorySnapshot snap;
  auto req = request("+++\ncapabilities = [\"zig\", \"cpp\", \"linux\", \"cpp\"]\n+++\n# Caps\n");
  req.profile = profile(k_profile_doc);  // linux, docker
  auto r = submit_ok(snap, req, 61);
  CHECK(job_in(snap, r.job_id).capabilities == std::vector<std::string>{"cpp", "docker", "linux", "zig"});
  CHECK(queued_written(r.change, job_in(snap, r.job_id))
            .find("capabilities = [\"cpp\", \"docker\", \"linux\", \"zig\"]") != std::string::npos);

  // Without a profile: the manifest's, sorted and unique.
  auto plain = submit_ok(snap, request("+++\ncapabilities = [\"b\", \"a\", \"b\"]\n+++\n# Caps\n"), 62);
  CHECK(job_in(snap, plain.job_id).capabilities == std::vector<std::string>{"a", "b"});
}

TEST_CASE("the manifest's budget and review overlay the profile's") {
  core::MemorySnapshot snap;
  SUBCASE("profile only") {
    auto req = request("# B\n");
    req.profile = profile(k_profile_doc);
    core::Job job = job_in(snap, submit_ok(snap, req, 71).job_id);
    CHECK(job.budget == core::Budget{5.0, 2700, 1000});
    CHECK(job.review == true);
  }
  SUBCASE("manifest fields win one by one") {
    auto req = request("+++\nreview = false\n[budget]\nwall = \"2h\"\n+++\n# B\n");
    req.profile = profile(k_profile_doc);
    core::Job job = job_in(snap, submit_ok(snap, req, 72).job_id);
    CHECK(job.budget.usd == 5.0);
    CHECK(job.budget.wall_seconds == 7200);
    CHECK(job.budget.tokens == 1000);
    CHECK(job.review == false);
  }
  SUBCASE("manifest only") {
    core::Job job = job_in(snap, submit_ok(snap, request("+++\n[budget]\nusd = 1.5\n+++\n# B\n"), 73).job_id);
    CHECK(job.budget == core::Budget{1.5, std::nullopt, std::nullopt});
    CHECK(queued_in(snap, job).value().find("budget_usd = 1.5") != std::string::npos);
  }
}

TEST_CASE("a job id that collides with an existing job is retried") {
  core::MemorySnapshot snap;
  auto first = submit_ok(snap, request("# One\n"), 12345);
  auto second = core::submit(snap, request("# Two\n"), k_now, 12345);
  REQUIRE(second.ok());
  CHECK(second->job_id != first.job_id);
  CHECK(core::validate_job_id(second->job_id).ok());
  CHECK(second->change.writes.count(layout::job_doc(first.job_id)) == 0);  // the first job is untouched
  snap.apply(second->change);
  CHECK(job_in(snap, first.job_id).title == "One");
  CHECK(job_in(snap, second->job_id).title == "Two");

  // A third with the same seed skips both.
  auto third = submit_ok(snap, request("# Three\n"), 12345);
  CHECK(third.job_id != first.job_id);
  CHECK(third.job_id != second->job_id);
  CHECK(job_in(snap, first.job_id).title == "One");
}

TEST_CASE("the same seed on an empty store gives the same id") {
  core::MemorySnapshot a, b;
  CHECK(submit_ok(a, request("# X\n"), 999).job_id == submit_ok(b, request("# Y\n"), 999).job_id);
  core::MemorySnapshot c;
  CHECK(submit_ok(c, request("# X\n"), 998).job_id != submit_ok(a, request("# X\n"), 999).job_id);
}

TEST_CASE("job_to_toml and job_from_toml round trip") {
  core::Job job;
  job.id = "j-abcdefgh";
  job.product = "acme";
  job.title = "A \"quoted\" title with \\ backslash, unicode \xc3\xa9 and a\ttab";
  job.stage = core::Stage::review;
  job.priority = core::Priority::critical;
  job.capabilities = {"cpp", "linux"};
  job.deps = {"j-aaaaaaaa", "j-bbbbbbbb"};
  job.profile = "backend-dev";
  job.profile_version = 4;
  job.idempotency_key = "tracker:ISSUE-42";
  job.review = true;
  job.budget = core::Budget{5.25, 5400, 2000000};
  job.repo = core::RepoSpec{"https://example.com/acme/uploader.git", "main"};
  job.lease_epoch = 7;
  job.rev = 12;
  job.attempts = 2;
  job.max_attempts = 5;
  job.checkpoint = "refs/heads/wip/j-abcdefgh";
  job.created_at = 1700000000123;
  job.updated_at = 1700000999001;

  auto back = core::job_from_toml(core::job_to_toml(job), "job.toml");
  REQUIRE(back.ok());
  CHECK(*back == job);

  SUBCASE("every stage and priority") {
    for (core::Stage stage : core::k_all_stages) {
      for (core::Priority p : {core::Priority::low, core::Priority::normal, core::Priority::high,
                               core::Priority::critical}) {
        job.stage = stage;
        job.priority = p;
        auto again = core::job_from_toml(core::job_to_toml(job), "job.toml");
        REQUIRE(again.ok());
        CHECK(*again == job);
      }
    }
  }
  SUBCASE("an empty budget, empty lists and zero times") {
    job.budget = core::Budget{};
    job.capabilities.clear();
    job.deps.clear();
    job.profile.clear();
    job.created_at = job.updated_at = 0;
    auto again = core::job_from_toml(core::job_to_toml(job), "job.toml");
    REQUIRE(again.ok());
    CHECK(*again == job);
  }
  SUBCASE("a zero wall budget") {
    job.budget.wall_seconds = 0;
    auto again = core::job_from_toml(core::job_to_toml(job), "job.toml");
    REQUIRE(again.ok());
    CHECK(*again == job);
  }
}

TEST_CASE("job_to_toml keeps budget.usd exactly") {
  core::Job job;
  job.id = "j-abcdefgh";
  job.product = "default";
  for (double usd : {0.1, 1.0 / 3.0, 12345.678901234567, 1e-7, 2.5e10}) {
    CAPTURE(usd);
    job.budget.usd = usd;
    auto back = core::job_from_toml(core::job_to_toml(job), "job.toml");
    REQUIRE(back.ok());
    REQUIRE(back->budget.usd.has_value());
    CHECK(*back->budget.usd == usd);
  }
}

TEST_CASE("job_from_toml reports a corrupt document as ErrorCode::error naming it") {
  const char* bad[] = {
      "id = \"j-abcdefgh\"\nstage = \"queued\"\npriority = \"normal\"\ncreated_at = \"x\"\nupdated_at = \"x\"\n",
      "id = \"j-abcdefgh\"\nstage = \"lost\"\npriority = \"normal\"\n",
      "id = \"j-abcdefgh\"\nstage = \"queued\"\npriority = \"meh\"\n",
      "this is = = not toml",
      "stage = \"queued\"\npriority = \"normal\"\ncreated_at = \"2023-11-14T22:13:20.123Z\"\n"
      "updated_at = \"2023-11-14T22:13:20.123Z\"\n",  // no id
  };
  for (const char* text : bad) {
    CAPTURE(text);
    auto r = core::job_from_toml(text, "jobs/ab/j-abcdefgh/job.toml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::error);
    CHECK(r.error().message.find("jobs/ab/j-abcdefgh/job.toml") != std::string::npos);
  }
}
