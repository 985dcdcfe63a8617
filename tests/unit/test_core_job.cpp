// core/job: job_from_toml's line reader gives exactly what toml++ gives for
// every document job_to_toml writes, and leaves every other document to
// toml++ (same result, same errors).
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "core/job.hpp"
#include "random_job.hpp"

using namespace gigafab::core;
using gigafab::testing::any_job;

namespace {

// Printable ASCII only (the reader's domain), quotes and backslashes kept.
std::string ascii(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
  }
  return out;
}

Job ascii_job(std::mt19937_64& rng) {
  Job job = any_job(rng);
  for (std::string* s : {&job.id, &job.product, &job.title, &job.profile, &job.idempotency_key, &job.engine,
                         &job.last_factory, &job.checkpoint, &job.reason, &job.repo.url, &job.repo.base}) {
    *s = ascii(*s);
  }
  if (job.id.empty()) job.id = "j-x";
  for (auto* list : {&job.capabilities, &job.deps}) {
    for (auto& item : *list) item = ascii(item) + (rng() % 3 ? "'s" : "");
  }
  if (rng() % 4 == 0) job.title += "it's \"quoted\"";
  return job;
}

}  // namespace

TEST_CASE("job_from_toml's line reader reads what toml++ reads, on 5,000 random documents job_to_toml wrote") {
  std::mt19937_64 rng(7);
  int read_plain = 0, left = 0;
  for (int i = 0; i < 5000; ++i) {
    Job job = i % 2 ? ascii_job(rng) : any_job(rng);
    std::string text;
    try {
      text = job_to_toml(job);
    } catch (...) {
      continue;  // bad UTF-8 toml++ will not write
    }
    auto generic = job_from_toml_generic(text, "doc");
    auto plain = job_from_plain_toml(text);
    auto both = job_from_toml(text, "doc");
    if (plain) {
      ++read_plain;
      REQUIRE_MESSAGE(generic.ok(), text);
      REQUIRE_MESSAGE(*plain == *generic, text);
    } else {
      ++left;
    }
    REQUIRE(both.ok() == generic.ok());
    if (both.ok()) {
      REQUIRE_MESSAGE(*both == *generic, text);
    } else {
      CHECK(both.error().message == generic.error().message);
    }
  }
  // Both paths ran: ASCII documents on the reader, the others on toml++.
  CHECK(read_plain > 1000);
  CHECK(left > 500);
}

TEST_CASE("job_from_toml leaves every other document to toml++: same job, same error") {
  Job job;
  job.id = "j-abcdefgh";
  job.product = "default";
  job.title = "Build it";
  job.capabilities = {"linux"};
  job.budget.usd = 2.5;
  job.created_at = job.updated_at = 1'764'000'000'000;
  const std::string base = job_to_toml(job);
  REQUIRE(job_from_plain_toml(base));
  auto with = [&](const std::string& from, const std::string& to) {
    std::string text = base;
    auto at = text.find(from);
    REQUIRE_MESSAGE(at != std::string::npos, from);
    text.replace(at, from.size(), to);
    return text;
  };
  const std::string cases[] = {
      "# a comment\n" + base,                                    // a comment
      with("title = 'Build it'", "title = \"Build\\tit\""),       // an escape
      with("title = 'Build it'", "title = 'Bu\xc3\xaf'"),         // non-ASCII
      with("title = 'Build it'", "title = 'Build it'\ntitle = 'x'"),  // a key twice
      with("title = 'Build it'", "title = 'Build it'\nnew_key = 1"),  // a key it does not know
      with("spent_usd = 0.0", "spent_usd = 0"),                   // an integer where a float goes
      with("rev = 0", "rev = 0x10"),                              // hex
      with("rev = 0", "rev = 1_000"),                             // underscores
      with("capabilities = [ 'linux' ]", "capabilities = [\n  'linux'\n]"),  // a multi-line array
      with("capabilities = [ 'linux' ]", "capabilities = [ 'linux', ]"),    // a trailing comma
      with("[repo]", "repo = { url = '', base = '' }\n[other]"),  // an inline table
      with("stage = 'queued'", "stage = 'flying'"),               // a bad stage: toml++'s path words it
      with("id = 'j-abcdefgh'", "id = ''"),                       // no id
      with("title = 'Build it'", "title = 'Build it"),            // unterminated
      with("spent_usd = 0.0", "spent_usd = inf"),
      with("rev = 0", "rev = 99999999999999999999"),              // out of range
      with("spent_usd = 0.0", "spent_usd = 01.5"),                // a leading zero
  };
  for (const auto& text : cases) {
    CHECK_MESSAGE(!job_from_plain_toml(text), text);
    auto both = job_from_toml(text, "doc");
    auto generic = job_from_toml_generic(text, "doc");
    REQUIRE_MESSAGE(both.ok() == generic.ok(), text);
    if (both.ok()) {
      CHECK(*both == *generic);
    } else {
      CHECK(both.error().message == generic.error().message);
    }
  }
}
