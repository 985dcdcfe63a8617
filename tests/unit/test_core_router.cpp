// Unit tests for core/router.hpp: the filter, every score term, the weighted
// total, aging, the deterministic ranking, preemption victims and the
// per-product settings (TOML and KEY=VALUE assignments). Table-driven.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/job.hpp"
#include "core/router.hpp"

using namespace gigafab;

namespace {

constexpr core::Millis k_now = 1700000000000;
constexpr core::Millis k_minute = 60 * 1000;

core::Candidate job_with(std::vector<std::string> caps, core::Millis age = 0) {
  core::Candidate c;
  c.id = "j-aaaaaaaa";
  c.priority = core::Priority::normal;
  c.created_at = k_now - age;
  c.capabilities = std::move(caps);
  return c;
}

core::FactoryView factory_with(std::vector<std::string> caps) {
  core::FactoryView f;
  f.id = "f1";
  f.capabilities = std::move(caps);
  f.seats = 1;
  f.seats_used = 0;
  return f;
}

}  // namespace

TEST_CASE("capabilityFit is (1+|required|)/(1+max(|offered|,|required|))") {
  struct Row {
    std::vector<std::string> required;
    std::vector<std::string> offered;
    double expected;
  };
  const Row rows[] = {
      {{}, {}, 1.0},
      {{"linux"}, {"linux"}, 1.0},
      {{}, {"linux"}, 0.5},
      {{}, {"a", "b", "c"}, 0.25},
      {{"linux"}, {"linux", "docker"}, 2.0 / 3.0},
      {{"linux", "docker"}, {"docker", "gpu", "linux"}, 0.75},
      {{"a", "b", "c"}, {"a", "b", "c", "d", "e", "f", "g"}, 0.5},
  };
  core::RouterSettings settings;
  for (const auto& row : rows) {
    CAPTURE(row.required.size());
    CAPTURE(row.offered.size());
    core::Score s = core::score(job_with(row.required), factory_with(row.offered), settings, k_now);
    CHECK(s.eligible);
    CHECK(s.capability_fit == doctest::Approx(row.expected));
  }
  // The max() keeps the term at most 1 even when the factory lacks
  // capabilities (it is then filtered out anyway).
  core::Score s = core::score(job_with({"a", "b", "c"}), factory_with({"a"}), settings, k_now);
  CHECK_FALSE(s.eligible);
  CHECK(s.capability_fit == doctest::Approx(1.0));
}

TEST_CASE("affinity is 0.5 for the job's engine plus 0.5 for the factory of the last attempt") {
  struct Row {
    const char* job_engine;
    const char* factory_engine;
    const char* last_factory;
    double expected;
  };
  const Row rows[] = {
      {"", "", "", 0.0},                   // empty engines never match
      {"claude", "codex", "", 0.0},        //
      {"claude", "claude", "", 0.5},       // engine only
      {"", "claude", "f1", 0.5},           // warm worktree only
      {"claude", "claude", "f1", 1.0},     // both
      {"claude", "claude", "f2", 0.5},     // ran elsewhere last time
      {"codex", "claude", "f1", 0.5},      //
  };
  core::RouterSettings settings;
  for (const auto& row : rows) {
    CAPTURE(row.job_engine);
    CAPTURE(row.factory_engine);
    CAPTURE(row.last_factory);
    core::Candidate job = job_with({});
    job.engine = row.job_engine;
    job.last_factory = row.last_factory;
    core::FactoryView f = factory_with({});
    f.engine = row.factory_engine;
    CHECK(core::score(job, f, settings, k_now).affinity == doctest::Approx(row.expected));
  }
}

TEST_CASE("load term is 1/(1+load), negative loads count as zero") {
  struct Row {
    double load;
    double expected;
  };
  const Row rows[] = {{0, 1.0}, {1, 0.5}, {3, 0.25}, {0.5, 1.0 / 1.5}, {99, 0.01}, {-2, 1.0}};
  core::RouterSettings settings;
  for (const auto& row : rows) {
    CAPTURE(row.load);
    core::FactoryView f = factory_with({});
    f.load = row.load;
    CHECK(core::score(job_with({}), f, settings, k_now).load == doctest::Approx(row.expected));
  }
}

TEST_CASE("costFit is 1 unless usd_per_hour x wall hours exceeds the usd budget, then budget/expected") {
  struct Row {
    double usd_per_hour;
    std::optional<double> budget;
    std::optional<std::int64_t> wall_seconds;
    double expected;
  };
  const Row rows[] = {
      {0, 1.0, 3600, 1.0},              // free factory
      {2, std::nullopt, 3600, 1.0},     // no usd budget
      {2, 1.0, std::nullopt, 1.0},      // no wall budget: cost unknown
      {2, 2.0, 3600, 1.0},              // exactly fits
      {1, 2.0, 7200, 1.0},              // exactly fits
      {2, 3.0, 3600, 1.0},              // fits with room
      {2, 1.0, 3600, 0.5},              // expected 2, budget 1
      {4, 1.0, 1800, 0.5},              // expected 2, budget 1
      {10, 1.0, 36000, 0.01},           // expected 100
      {3, 0.0, 60, 0.0},                // a zero budget cannot pay for anything
  };
  core::RouterSettings settings;
  for (const auto& row : rows) {
    CAPTURE(row.usd_per_hour);
    CAPTURE(row.budget.value_or(-1));
    CAPTURE(row.wall_seconds.value_or(-1));
    core::Candidate job = job_with({});
    job.budget_usd = row.budget;
    job.wall_seconds = row.wall_seconds;
    core::FactoryView f = factory_with({});
    f.usd_per_hour = row.usd_per_hour;
    CHECK(core::score(job, f, settings, k_now).cost_fit == doctest::Approx(row.expected));
  }
}

TEST_CASE("health term is 1 for a healthy factory and 0.5 for a degraded one") {
  core::RouterSettings settings;
  struct Row {
    core::Health health;
    double expected;
    bool eligible;
  };
  const Row rows[] = {{core::Health::healthy, 1.0, true}, {core::Health::degraded, 0.5, true},
                      {core::Health::down, 0.0, false}};
  for (const auto& row : rows) {
    CAPTURE(core::health_name(row.health));
    core::FactoryView f = factory_with({});
    f.health = row.health;
    core::Score s = core::score(job_with({}), f, settings, k_now);
    CHECK(s.health == doctest::Approx(row.expected));
    CHECK(s.eligible == row.eligible);
  }
}

TEST_CASE("starvation penalty is 1 - age/window, clamped at 0") {
  struct Row {
    core::Millis age;
    std::int64_t window_seconds;
    double expected;
  };
  const Row rows[] = {
      {0, 1800, 1.0},
      {-5 * k_minute, 1800, 1.0},  // a job from the future has not waited
      {9 * k_minute, 1800, 0.7},
      {15 * k_minute, 1800, 0.5},
      {27 * k_minute, 1800, 0.1},
      {30 * k_minute, 1800, 0.0},
      {30 * k_minute + 1, 1800, 0.0},
      {600 * k_minute, 1800, 0.0},
      {30 * 1000, 60, 0.5},
      {5 * k_minute, 0, 0.0},  // no window: never penalised
  };
  for (const auto& row : rows) {
    CAPTURE(row.age);
    CAPTURE(row.window_seconds);
    core::RouterSettings settings;
    settings.starvation_window = row.window_seconds;
    CHECK(core::starvation_penalty(row.age, settings) == doctest::Approx(row.expected));
    CHECK(core::score(job_with({}, row.age), factory_with({}), settings, k_now).starvation_penalty ==
          doctest::Approx(row.expected));
  }
}

TEST_CASE("the total weighs every term: default and custom weights") {
  struct Case {
    const char* name;
    core::Candidate job;
    core::FactoryView factory;
    double capability_fit, affinity, load, cost_fit, health, starvation;
  };
  std::vector<Case> cases;
  {
    Case c{"perfect fit, long waited", job_with({"linux"}, 45 * k_minute), factory_with({"linux"}), 1, 1, 1, 1, 1, 0};
    c.job.engine = "claude";
    c.job.last_factory = "f1";
    c.factory.engine = "claude";
    cases.push_back(c);
  }
  {
    Case c{"poor fit, fresh", job_with({}, 0), factory_with({"a", "b", "c"}), 0.25, 0, 0.25, 0.5, 0.5, 1};
    c.factory.load = 3;
    c.factory.usd_per_hour = 2;
    c.job.budget_usd = 1.0;
    c.job.wall_seconds = 3600;
    c.factory.health = core::Health::degraded;
    cases.push_back(c);
  }
  {
    Case c{"middling", job_with({"docker", "linux"}, 15 * k_minute), factory_with({"docker", "gpu", "linux"}), 0.75,
           0.5, 0.5, 1, 1, 0.5};
    c.job.engine = "claude";
    c.factory.engine = "claude";
    c.factory.load = 1;
    c.factory.usd_per_hour = 1;
    c.job.budget_usd = 2.0;
    c.job.wall_seconds = 7200;
    cases.push_back(c);
  }

  struct WeightSet {
    const char* name;
    core::Weights weights;
    double expected[3];  // per case, in order
  };
  const WeightSet sets[] = {
      // 1 + 0.5 + 1 + 0.75 + 1 - 0; 0.25 + 0 + 0.25 + 0.375 + 0.5 - 1.5; 0.75 + 0.25 + 0.5 + 0.75 + 1 - 0.75
      {"defaults", core::Weights{}, {4.25, -0.125, 2.5}},
      // 2c + 1a + 0.5l + 0k + 3h - 0s
      {"custom", core::Weights{2.0, 1.0, 0.5, 0.0, 3.0, 0.0}, {6.5, 2.125, 5.25}},
      {"starvation only", core::Weights{0, 0, 0, 0, 0, 2.0}, {0.0, -2.0, -1.0}},
      {"all zero", core::Weights{0, 0, 0, 0, 0, 0}, {0.0, 0.0, 0.0}},
  };
  // The defaults are the documented ones.
  CHECK(core::Weights{} == core::Weights{1.0, 0.5, 1.0, 0.75, 1.0, 1.5});

  for (const auto& set : sets) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      CAPTURE(set.name);
      CAPTURE(c.name);
      core::RouterSettings settings;
      settings.weights = set.weights;
      core::Score s = core::score(c.job, c.factory, settings, k_now);
      CHECK(s.eligible);
      CHECK(s.capability_fit == doctest::Approx(c.capability_fit));
      CHECK(s.affinity == doctest::Approx(c.affinity));
      CHECK(s.load == doctest::Approx(c.load));
      CHECK(s.cost_fit == doctest::Approx(c.cost_fit));
      CHECK(s.health == doctest::Approx(c.health));
      CHECK(s.starvation_penalty == doctest::Approx(c.starvation));
      CHECK(s.total == doctest::Approx(set.expected[i]));
    }
  }
}

TEST_CASE("the filter: capabilities, health and seats") {
  struct Row {
    const char* name;
    std::vector<std::string> required;
    std::vector<std::string> offered;
    core::Health health;
    std::int64_t seats;
    std::int64_t seats_used;
    bool eligible;
    const char* why_not;
  };
  const Row rows[] = {
      {"fits", {"linux"}, {"linux", "docker"}, core::Health::healthy, 2, 1, true, ""},
      {"no requirements", {}, {}, core::Health::healthy, 1, 0, true, ""},
      {"one missing", {"linux", "xcode"}, {"linux"}, core::Health::healthy, 1, 0, false,
       "missing capabilities [xcode]"},
      {"all missing, listed in order", {"linux", "xcode", "gpu"}, {"docker"}, core::Health::healthy, 1, 0, false,
       "missing capabilities [linux,xcode,gpu]"},
      {"down", {"linux"}, {"linux"}, core::Health::down, 1, 0, false, "down (no heartbeat for 2m or more)"},
      {"degraded still eligible", {"linux"}, {"linux"}, core::Health::degraded, 1, 0, true, ""},
      {"seats full", {}, {}, core::Health::healthy, 2, 2, false, "all seats in use (2/2)"},
      {"seats over-full", {}, {}, core::Health::healthy, 2, 3, false, "all seats in use (3/2)"},
      {"one seat left", {}, {}, core::Health::healthy, 3, 2, true, ""},
      {"seats 0 is unlimited", {}, {}, core::Health::healthy, 0, 50, true, ""},
      {"missing capabilities reported before down", {"gpu"}, {}, core::Health::down, 1, 1, false,
       "missing capabilities [gpu]"},
      {"down reported before seats", {}, {}, core::Health::down, 1, 1, false, "down (no heartbeat for 2m or more)"},
  };
  core::RouterSettings settings;
  for (const auto& row : rows) {
    CAPTURE(row.name);
    core::FactoryView f = factory_with(row.offered);
    f.health = row.health;
    f.seats = row.seats;
    f.seats_used = row.seats_used;
    core::Score s = core::score(job_with(row.required), f, settings, k_now);
    CHECK(s.eligible == row.eligible);
    CHECK(s.why_not == row.why_not);
  }
  // The down message names the configured threshold.
  settings.down_after = 300;
  core::FactoryView f = factory_with({});
  f.health = core::Health::down;
  CHECK(core::score(job_with({}), f, settings, k_now).why_not == "down (no heartbeat for 5m or more)");
}

TEST_CASE("health_from_age: thresholds are inclusive") {
  struct Row {
    core::Millis since;
    std::int64_t degraded_after;
    std::int64_t down_after;
    core::Health expected;
  };
  const Row rows[] = {
      {0, 30, 120, core::Health::healthy},
      {-10000, 30, 120, core::Health::healthy},  // a heartbeat from the future
      {29999, 30, 120, core::Health::healthy},
      {30000, 30, 120, core::Health::degraded},  // exactly degraded_after
      {30001, 30, 120, core::Health::degraded},
      {119999, 30, 120, core::Health::degraded},
      {120000, 30, 120, core::Health::down},  // exactly down_after
      {3600000, 30, 120, core::Health::down},
      {4999, 5, 10, core::Health::healthy},
      {5000, 5, 10, core::Health::degraded},
      {10000, 5, 10, core::Health::down},
  };
  for (const auto& row : rows) {
    CAPTURE(row.since);
    CAPTURE(row.degraded_after);
    CAPTURE(row.down_after);
    core::RouterSettings settings;
    settings.degraded_after = row.degraded_after;
    settings.down_after = row.down_after;
    CHECK(core::health_name(core::health_from_age(row.since, settings)) ==
          std::string(core::health_name(row.expected)));
  }
}

TEST_CASE("effective_priority rises one level per aging window, capped at critical") {
  struct Row {
    core::Priority priority;
    core::Millis age;
    int expected;
  };
  const core::Millis w = 10 * k_minute;  // the default aging window
  const Row rows[] = {
      {core::Priority::low, 0, 0},
      {core::Priority::low, w - 1, 0},
      {core::Priority::low, w, 1},  // low is normal after one window
      {core::Priority::low, 2 * w - 1, 1},
      {core::Priority::low, 2 * w, 2},
      {core::Priority::low, 3 * w - 1, 2},
      {core::Priority::low, 3 * w, 3},  // ... and critical after three
      {core::Priority::low, 31 * k_minute, 3},
      {core::Priority::low, 100 * w, 3},  // never above critical
      {core::Priority::normal, w, 2},
      {core::Priority::high, w, 3},
      {core::Priority::high, 50 * w, 3},
      {core::Priority::critical, 0, 3},
      {core::Priority::critical, 10 * w, 3},
      {core::Priority::low, -5 * w, 0},  // negative age counts as 0
      {core::Priority::high, -1, 2},
  };
  core::RouterSettings settings;
  REQUIRE(settings.aging_window == 600);
  for (const auto& row : rows) {
    CAPTURE(core::priority_name(row.priority));
    CAPTURE(row.age);
    CHECK(core::effective_priority(row.priority, row.age, settings) == row.expected);
    core::Candidate job = job_with({}, row.age);
    job.priority = row.priority;
    CHECK(core::score(job, factory_with({}), settings, k_now).effective_priority == row.expected);
  }
  // No aging window: the priority never changes.
  settings.aging_window = 0;
  CHECK(core::effective_priority(core::Priority::low, 100 * w, settings) == 0);
  // A custom window.
  settings.aging_window = 60;
  CHECK(core::effective_priority(core::Priority::low, 2 * k_minute, settings) == 2);
}

TEST_CASE("ranks_before: effective priority, then total, then older, then smaller id") {
  struct Side {
    const char* id;
    core::Millis created_at;
    int effective_priority;
    double total;
  };
  struct Row {
    const char* name;
    Side a;
    Side b;
    bool a_first;
  };
  const Row rows[] = {
      {"higher effective priority wins over total, age and id", {"j-zzzzzzzz", 200, 3, -5.0}, {"j-aaaaaaaa", 100, 2, 9.0},
       true},
      {"lower effective priority loses", {"j-aaaaaaaa", 100, 0, 9.0}, {"j-zzzzzzzz", 200, 1, -5.0}, false},
      {"higher total wins over age and id", {"j-zzzzzzzz", 200, 2, 2.0}, {"j-aaaaaaaa", 100, 2, 1.0}, true},
      {"lower total loses", {"j-aaaaaaaa", 100, 2, 1.0}, {"j-zzzzzzzz", 200, 2, 1.5}, false},
      {"totals within 1e-9 tie: older wins", {"j-zzzzzzzz", 100, 1, 1.0 + 1e-12}, {"j-aaaaaaaa", 200, 1, 1.0 + 2e-12},
       true},
      {"totals within 1e-9 tie: younger loses", {"j-aaaaaaaa", 200, 1, 1.0}, {"j-zzzzzzzz", 100, 1, 1.0}, false},
      {"same age: smaller id wins", {"j-aaaaaaaa", 100, 1, 1.0}, {"j-bbbbbbbb", 100, 1, 1.0}, true},
      {"same age: larger id loses", {"j-bbbbbbbb", 100, 1, 1.0}, {"j-aaaaaaaa", 100, 1, 1.0}, false},
      {"identical: neither first", {"j-aaaaaaaa", 100, 1, 1.0}, {"j-aaaaaaaa", 100, 1, 1.0}, false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    core::Candidate a, b;
    a.id = row.a.id;
    a.created_at = row.a.created_at;
    b.id = row.b.id;
    b.created_at = row.b.created_at;
    core::Score sa, sb;
    sa.effective_priority = row.a.effective_priority;
    sa.total = row.a.total;
    sb.effective_priority = row.b.effective_priority;
    sb.total = row.b.total;
    CHECK(core::ranks_before(a, sa, b, sb) == row.a_first);
    // A strict order: never both ways.
    CHECK_FALSE((core::ranks_before(a, sa, b, sb) && core::ranks_before(b, sb, a, sa)));
    bool distinct = std::string(row.a.id) != row.b.id || row.a.created_at != row.b.created_at;
    if (distinct) CHECK(core::ranks_before(b, sb, a, sa) == !row.a_first);
  }
}

TEST_CASE("ranking real scores: an aged low job ranks with (and before younger) critical ones") {
  core::RouterSettings settings;
  core::FactoryView f = factory_with({"linux"});
  struct Entry {
    const char* id;
    core::Priority priority;
    core::Millis age;
  };
  const Entry entries[] = {
      {"j-critnew1", core::Priority::critical, 0},
      {"j-lowold01", core::Priority::low, 31 * k_minute},  // aged to critical, no starvation penalty
      {"j-highmid1", core::Priority::high, 5 * k_minute},
      {"j-normal01", core::Priority::normal, 0},
      {"j-critnew0", core::Priority::critical, 0},  // same age as j-critnew1: the id breaks the tie
  };
  std::vector<std::pair<core::Candidate, core::Score>> ranked;
  for (const auto& e : entries) {
    core::Candidate c = job_with({"linux"}, e.age);
    c.id = e.id;
    c.priority = e.priority;
    ranked.emplace_back(c, core::score(c, f, settings, k_now));
  }
  std::sort(ranked.begin(), ranked.end(), [](const auto& x, const auto& y) {
    return core::ranks_before(x.first, x.second, y.first, y.second);
  });
  std::vector<std::string> order;
  for (const auto& r : ranked) order.push_back(r.first.id);
  CHECK(order == std::vector<std::string>{"j-lowold01", "j-critnew0", "j-critnew1", "j-highmid1", "j-normal01"});
}

TEST_CASE("score_upper_bound is at least score for any affinity and cost inputs") {
  const char* engines[] = {"", "claude", "codex"};
  const char* last_factories[] = {"", "f1", "f2"};
  const std::optional<double> budgets[] = {std::nullopt, 0.0, 0.5, 10.0};
  const std::optional<std::int64_t> walls[] = {std::nullopt, 60, 36000};
  const double prices[] = {0.0, 3.0};
  const core::Millis ages[] = {0, 10 * k_minute, 40 * k_minute};
  const core::Weights weight_sets[] = {core::Weights{}, core::Weights{0, 5, 0, 7, 0, 0}};
  int checked = 0;
  for (const auto& weights : weight_sets) {
    core::RouterSettings settings;
    settings.weights = weights;
    for (const char* engine : engines)
      for (const char* last : last_factories)
        for (const auto& budget : budgets)
          for (const auto& wall : walls)
            for (double price : prices)
              for (core::Millis age : ages) {
                core::Candidate job = job_with({"linux"}, age);
                job.priority = core::Priority::low;
                job.engine = engine;
                job.last_factory = last;
                job.budget_usd = budget;
                job.wall_seconds = wall;
                core::FactoryView f = factory_with({"docker", "linux"});
                f.engine = "claude";
                f.usd_per_hour = price;
                f.load = 2;
                core::Candidate shape = job_with({"linux"}, age);  // what the queue entry name carries
                shape.priority = core::Priority::low;
                core::Score s = core::score(job, f, settings, k_now);
                core::Score bound = core::score_upper_bound(shape, f, settings, k_now);
                CHECK(bound.total >= s.total - 1e-12);
                CHECK(bound.affinity == 1.0);
                CHECK(bound.cost_fit == 1.0);
                CHECK(bound.eligible == s.eligible);
                CHECK(bound.effective_priority == s.effective_priority);
                CHECK(bound.starvation_penalty == doctest::Approx(s.starvation_penalty));
                // The bound never ranks after the job it bounds.
                CHECK_FALSE(core::ranks_before(job, s, shape, bound));
                ++checked;
              }
  }
  CHECK(checked == 2 * 3 * 3 * 4 * 3 * 2 * 3);
}

TEST_CASE("select_victim: lowest priority below the incoming one, then most recently claimed, then highest id") {
  using P = core::Priority;
  struct Row {
    const char* name;
    std::vector<core::RunningJob> running;
    P incoming;
    std::optional<std::string> expected;
  };
  const Row rows[] = {
      {"nothing running", {}, P::critical, std::nullopt},
      {"lowest priority first",
       {{"j-normal01", P::normal, 500, "f1"}, {"j-low00001", P::low, 100, "f1"}, {"j-high0001", P::high, 900, "f2"}},
       P::critical,
       "j-low00001"},
      {"then the most recently claimed",
       {{"j-low00001", P::low, 100, "f1"}, {"j-low00002", P::low, 300, "f1"}, {"j-low00003", P::low, 200, "f2"}},
       P::critical,
       "j-low00002"},
      {"then the highest id",
       {{"j-low0000b", P::low, 100, "f1"}, {"j-low0000c", P::low, 100, "f1"}, {"j-low0000a", P::low, 100, "f2"}},
       P::critical,
       "j-low0000c"},
      {"strictly below: equal priority is never evicted",
       {{"j-high0001", P::high, 100, "f1"}, {"j-normal01", P::normal, 100, "f1"}},
       P::high,
       "j-normal01"},
      {"all at or above the incoming priority", {{"j-normal01", P::normal, 100, "f1"}, {"j-high0001", P::high, 200, "f1"}},
       P::normal,
       std::nullopt},
      {"low evicts nothing", {{"j-low00001", P::low, 100, "f1"}}, P::low, std::nullopt},
      {"critical never evicts critical",
       {{"j-crit0001", P::critical, 100, "f1"}, {"j-crit0002", P::critical, 200, "f1"}},
       P::critical,
       std::nullopt},
      {"critical evicts high when nothing lower runs",
       {{"j-crit0001", P::critical, 100, "f1"}, {"j-high0001", P::high, 50, "f1"}},
       P::critical,
       "j-high0001"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    auto victim = core::select_victim(row.running, row.incoming);
    CHECK(victim.has_value() == row.expected.has_value());
    if (victim && row.expected) CHECK(victim->id == *row.expected);
    // The choice does not depend on the order jobs are listed in.
    std::vector<core::RunningJob> reversed(row.running.rbegin(), row.running.rend());
    auto again = core::select_victim(reversed, row.incoming);
    CHECK(again.has_value() == row.expected.has_value());
    if (again && row.expected) CHECK(again->id == *row.expected);
  }
}

TEST_CASE("settings_to_toml and settings_from_toml round trip") {
  std::vector<core::RouterSettings> samples(3);
  samples[1].weights = core::Weights{0.25, 2.0, 0.1, 0.0, 3.5, 100.0};
  samples[1].degraded_after = 45;
  samples[1].down_after = 5400;  // 1h30m
  samples[1].aging_window = 3661;  // 1h1m1s
  samples[1].starvation_window = 7;
  samples[1].defer_window = 90;
  samples[1].preemption = true;
  samples[2].weights.starvation = 0;
  samples[2].preemption = false;
  samples[2].defer_window = 1;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    CAPTURE(i);
    std::string text = core::settings_to_toml(samples[i]);
    CAPTURE(text);
    auto back = core::settings_from_toml(text, "router.toml");
    REQUIRE(back.ok());
    CHECK(*back == samples[i]);
  }
  // An empty document means the defaults; a partial one overrides only what it names.
  auto empty = core::settings_from_toml("", "router.toml");
  REQUIRE(empty.ok());
  CHECK(*empty == core::RouterSettings{});
  auto partial = core::settings_from_toml("down_after = \"5m\"\npreemption = true\n[weights]\nload = 2\n", "router.toml");
  REQUIRE(partial.ok());
  core::RouterSettings expected;
  expected.down_after = 300;
  expected.preemption = true;
  expected.weights.load = 2.0;  // an integer is a valid weight
  CHECK(*partial == expected);
  auto bad = core::settings_from_toml("down_after = \"soon\"\n", "router.toml");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("router.toml") != std::string::npos);
}

TEST_CASE("apply_setting accepts weights, durations and preemption") {
  struct Row {
    const char* assignment;
    void (*expect)(core::RouterSettings&);
  };
  const Row rows[] = {
      {"weights.load=0.5", [](core::RouterSettings& s) { s.weights.load = 0.5; }},
      {"load=0.5", [](core::RouterSettings& s) { s.weights.load = 0.5; }},
      {"starvation=2", [](core::RouterSettings& s) { s.weights.starvation = 2; }},
      {"weights.capability_fit=0", [](core::RouterSettings& s) { s.weights.capability_fit = 0; }},
      {"affinity=100", [](core::RouterSettings& s) { s.weights.affinity = 100; }},
      {"cost_fit=1e-1", [](core::RouterSettings& s) { s.weights.cost_fit = 0.1; }},
      {"weights.health=3", [](core::RouterSettings& s) { s.weights.health = 3; }},
      {"down_after=5m", [](core::RouterSettings& s) { s.down_after = 300; }},
      {"degraded_after=45s", [](core::RouterSettings& s) { s.degraded_after = 45; }},
      {"aging_window=1h30m", [](core::RouterSettings& s) { s.aging_window = 5400; }},
      {"starvation_window=2h", [](core::RouterSettings& s) { s.starvation_window = 7200; }},
      {"defer_window=1s", [](core::RouterSettings& s) { s.defer_window = 1; }},
      {"preemption=true", [](core::RouterSettings& s) { s.preemption = true; }},
      {"preemption=false", [](core::RouterSettings& s) { s.preemption = false; }},
  };
  for (const auto& row : rows) {
    CAPTURE(row.assignment);
    core::RouterSettings actual;
    auto ok = core::apply_setting(actual, row.assignment);
    CHECK_MESSAGE(ok.ok(), (ok.ok() ? "" : ok.error().message));
    core::RouterSettings expected;
    row.expect(expected);
    CHECK(actual == expected);
  }
  // preemption=false really switches it off again.
  core::RouterSettings s;
  REQUIRE(core::apply_setting(s, "preemption=true").ok());
  CHECK(s.preemption);
  REQUIRE(core::apply_setting(s, "preemption=false").ok());
  CHECK_FALSE(s.preemption);
  // settings_entries lists every key as apply_setting takes it.
  for (const auto& [key, value] : core::settings_entries(s)) {
    CAPTURE(key);
    core::RouterSettings copy = s;
    CHECK(core::apply_setting(copy, key + "=" + value).ok());
    CHECK(copy == s);
  }
}

TEST_CASE("apply_setting rejects bad assignments with usage errors, changing nothing") {
  struct Row {
    const char* assignment;
    const char* message_part;
  };
  const Row rows[] = {
      {"lod=0.5", "did you mean 'load'?"},
      {"weights.lod=0.5", "unknown setting 'weights.lod'"},
      {"down_aftr=5m", "did you mean 'down_after'?"},
      {"preemptoin=true", "did you mean 'preemption'?"},
      {"completely_unrelated=1", "unknown setting 'completely_unrelated'"},
      {"load=-0.5", "weight 'load' must be a number between 0 and 100"},
      {"weights.load=-1", "weight 'weights.load' must be a number"},
      {"load=abc", "not 'abc'"},
      {"load=0.5x", "not '0.5x'"},
      {"load=", "weight 'load'"},
      {"load=nan", "weight 'load'"},
      {"load=inf", "weight 'load'"},
      {"load=101", "between 0 and 100"},
      {"down_after=0s", "'down_after' must be longer than zero"},
      {"aging_window=0m", "longer than zero"},
      {"down_after=5", "invalid duration"},
      {"down_after=soon", "invalid duration"},
      {"down_after=", "invalid duration"},
      {"preemption=yes", "'preemption' must be true or false, not 'yes'"},
      {"preemption=1", "must be true or false"},
      {"preemption=", "must be true or false"},
      {"load", "expected KEY=VALUE, not 'load'"},
      {"", "expected KEY=VALUE"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.assignment);
    core::RouterSettings s;
    auto r = core::apply_setting(s, row.assignment);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
    CAPTURE(r.error().message);
    CHECK(r.error().message.find(row.message_part) != std::string::npos);
    CHECK(s == core::RouterSettings{});
  }
}
