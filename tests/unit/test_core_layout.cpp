// Unit tests for core/layout.hpp: where documents live in the state tree and
// how the queued index sorts.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/hash.hpp"
#include "core/layout.hpp"

using namespace gigafab;
namespace layout = gigafab::core::layout;

namespace {

core::Job make_job(std::string id, core::Priority priority, core::Millis created, std::string product = "default") {
  core::Job job;
  job.id = std::move(id);
  job.product = std::move(product);
  job.priority = priority;
  job.created_at = created;
  return job;
}

}  // namespace

TEST_CASE("job documents are sharded by the two characters after j-") {
  CHECK(layout::job_shard("j-abcdefgh") == "ab");
  CHECK(layout::job_shard("j-7zaaaaaa") == "7z");
  CHECK(layout::job_dir("j-abcdefgh") == "jobs/ab/j-abcdefgh");
  CHECK(layout::job_doc("j-abcdefgh") == "jobs/ab/j-abcdefgh/job.toml");
  CHECK(layout::job_body("j-abcdefgh") == "jobs/ab/j-abcdefgh/body.md");
  CHECK(layout::job_doc("j-zz234567") == "jobs/zz/j-zz234567/job.toml");
  CHECK(layout::job_dir("j-abcdefgh").rfind(std::string(layout::k_jobs) + "/", 0) == 0);
}

TEST_CASE("other document paths") {
  CHECK(layout::k_meta == "meta/store.toml");
  CHECK(layout::profile_doc("backend-dev", 3) == "profiles/backend-dev/3.md");
  CHECK(layout::profile_doc("x", 12) == "profiles/x/12.md");
  CHECK(layout::queued_dir("default") == "index/queued/default");
  CHECK(layout::dependents_dir("j-abcdefgh") == "index/dependents/ab/j-abcdefgh");
}

TEST_CASE("queued entries are named <rank>-<created>-<id> under the product and capability set") {
  core::Job job = make_job("j-abcdefgh", core::Priority::high, 1700000000123, "acme");
  CHECK(layout::queued_entry_name(job) == "1-1700000000123-j-abcdefgh");
  CHECK(layout::capset_name(job.capabilities) == "_any");
  job.capabilities = {"linux", "xcode"};
  CHECK(layout::capset_name(job.capabilities) == "linux+xcode");
  CHECK(layout::capset_capabilities("linux+xcode") == std::vector<std::string>{"linux", "xcode"});
  CHECK(layout::capset_capabilities("_any").empty());
  CHECK(layout::capset_capabilities(layout::capset_name({"gpu"})) == std::vector<std::string>{"gpu"});
  CHECK(layout::queued_entry_name(make_job("j-aaaaaaaa", core::Priority::critical, 5)) ==
        "0-0000000000005-j-aaaaaaaa");
  CHECK(layout::queued_entry_name(make_job("j-aaaaaaaa", core::Priority::normal, 0)) == "2-0000000000000-j-aaaaaaaa");
  CHECK(layout::queued_entry_name(make_job("j-aaaaaaaa", core::Priority::low, 0)) == "3-0000000000000-j-aaaaaaaa");
}

TEST_CASE("queued entry names sort best first: priority, then age, then id") {
  std::vector<core::Job> jobs = {
      make_job("j-llllllll", core::Priority::low, 1000000000000),
      make_job("j-nnnnnnnn", core::Priority::normal, 1700000000500),
      make_job("j-cccccccc", core::Priority::critical, 1700000009999),
      make_job("j-hhhhhhhh", core::Priority::high, 1700000000001),
      make_job("j-nnnnaaaa", core::Priority::normal, 1700000000500),  // same age: id decides
      make_job("j-hhhhaaaa", core::Priority::high, 999999999999),     // 12 digits: padding matters
      make_job("j-ccccaaaa", core::Priority::critical, 1700000010000),
      make_job("j-nnnnzzzz", core::Priority::normal, 1600000000000),
      make_job("j-llllaaaa", core::Priority::low, 1700000000000),
  };
  const std::vector<std::string> expected = {"j-cccccccc", "j-ccccaaaa", "j-hhhhaaaa", "j-hhhhhhhh", "j-nnnnzzzz",
                                             "j-nnnnaaaa", "j-nnnnnnnn", "j-llllllll", "j-llllaaaa"};

  // Sort by the entry name, bytewise, as the index tree lists them.
  std::vector<std::string> names;
  for (const auto& job : jobs) names.push_back(layout::queued_entry_name(job));
  std::sort(names.begin(), names.end());
  std::vector<std::string> ids;
  for (const auto& name : names) ids.push_back(name.substr(name.size() - 10));
  CHECK(ids == expected);

  // The same order as an explicit comparator over the fields.
  std::sort(jobs.begin(), jobs.end(), [](const core::Job& a, const core::Job& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    if (a.created_at != b.created_at) return a.created_at < b.created_at;
    return a.id < b.id;
  });
  for (std::size_t i = 0; i < jobs.size(); ++i) CHECK(jobs[i].id == expected[i]);

  // And for every pair: name order agrees with the field order.
  for (const auto& a : jobs) {
    for (const auto& b : jobs) {
      bool better = a.priority != b.priority     ? a.priority > b.priority
                    : a.created_at != b.created_at ? a.created_at < b.created_at
                                                   : a.id < b.id;
      CHECK((layout::queued_entry_name(a) < layout::queued_entry_name(b)) == better);
    }
  }
}

TEST_CASE("the queued entry document carries what the router needs") {
  core::Job job = make_job("j-abcdefgh", core::Priority::critical, 1700000000123);
  job.capabilities = {"cpp", "linux"};
  std::string doc = layout::queued_entry_document(job);
  CHECK(doc.find("id = \"j-abcdefgh\"\n") != std::string::npos);
  CHECK(doc.find("priority = \"critical\"\n") != std::string::npos);
  CHECK(doc.find("created_at = \"2023-11-14T22:13:20.123Z\"\n") != std::string::npos);
  CHECK(doc.find("capabilities = [\"cpp\", \"linux\"]\n") != std::string::npos);
  CHECK(doc.find("budget_usd") == std::string::npos);

  job.capabilities.clear();
  job.budget.usd = 2.5;
  doc = layout::queued_entry_document(job);
  CHECK(doc.find("capabilities = []\n") != std::string::npos);
  CHECK(doc.find("budget_usd = 2.5") != std::string::npos);
}

TEST_CASE("idempotency entries are stable, hashed and scoped by product") {
  std::string a = layout::idempotency_entry("default", "tracker:ISSUE-42");
  CHECK(a == layout::idempotency_entry("default", "tracker:ISSUE-42"));
  CHECK(a == "index/idem/default/" + core::sha256_hex("tracker:ISSUE-42"));
  CHECK(layout::idempotency_entry("p", "abc") ==
        "index/idem/p/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

  CHECK(layout::idempotency_entry("other", "tracker:ISSUE-42") != a);
  CHECK(layout::idempotency_entry("other", "tracker:ISSUE-42").rfind("index/idem/other/", 0) == 0);
  CHECK(layout::idempotency_entry("default", "tracker:ISSUE-43") != a);

  // Keys with separators or traversal never leak into the path.
  std::string evil = layout::idempotency_entry("default", "../../jobs/x/y");
  CHECK(evil.find("..") == std::string::npos);
  CHECK(std::count(evil.begin(), evil.end(), '/') == 3);
  CHECK(evil.size() == std::string("index/idem/default/").size() + 64);
}
