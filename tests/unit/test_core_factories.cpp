// Unit tests for core/factories.hpp: registrations on the state tree (a commit
// only when they change), liveness documents, seats and the router's view of
// a factory, all against a MemorySnapshot.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/factories.hpp"
#include "core/layout.hpp"
#include "core/router.hpp"
#include "core/snapshot.hpp"

using namespace gigafab;
namespace layout = gigafab::core::layout;

namespace {

constexpr core::Millis k_now = 1700000000123;

core::HeartbeatInput heartbeat(std::string factory, std::string product = "default") {
  core::HeartbeatInput in;
  in.factory = std::move(factory);
  in.product = std::move(product);
  in.capabilities = std::vector<std::string>{"linux", "docker"};
  in.seats = 2;
  in.engine = "claude";
  in.usd_per_hour = 1.5;
  in.load = 0.25;
  in.actor = "bob@host";
  return in;
}

core::Change register_ok(core::MemorySnapshot& snap, const core::HeartbeatInput& in, core::Millis now = k_now) {
  auto r = core::register_factory(snap, in, now);
  if (!r) FAIL("register_factory failed: " << r.error().message);
  snap.apply(*r);
  return *r;
}

std::string trailer(const core::Change& change, const std::string& key) {
  for (const auto& [k, v] : change.trailers) {
    if (k == key) return v;
  }
  return "<absent>";
}

core::FactoryRecord record_of(const core::MemorySnapshot& snap, const std::string& id) {
  auto r = core::find_factory(snap, id);
  if (!r) FAIL("find_factory failed: " << r.error().message);
  if (!*r) FAIL("factory " << id << " not found");
  return **r;
}

}  // namespace

TEST_CASE("register_factory creates factories/<id>.toml with an audit trailer") {
  core::MemorySnapshot snap;
  auto r = core::register_factory(snap, heartbeat("mac-mini-1"), k_now);
  REQUIRE(r.ok());
  const core::Change& change = *r;
  REQUIRE(change.writes.size() == 1);
  REQUIRE(change.writes.count("factories/mac-mini-1.toml") == 1);
  CHECK(change.writes.at("factories/mac-mini-1.toml").has_value());
  CHECK(change.summary == "register factory mac-mini-1");
  CHECK(trailer(change, "Gigafab-Op") == "factory");
  CHECK(trailer(change, "Gigafab-Factory") == "mac-mini-1");
  CHECK(trailer(change, "Gigafab-Product") == "default");
  CHECK(trailer(change, "Gigafab-Actor") == "bob@host");

  snap.apply(change);
  core::FactoryRecord rec = record_of(snap, "mac-mini-1");
  CHECK(rec.id == "mac-mini-1");
  CHECK(rec.product == "default");
  CHECK(rec.capabilities == std::vector<std::string>{"docker", "linux"});  // sorted
  CHECK(rec.seats == 2);
  CHECK(rec.engine == "claude");
  CHECK(rec.usd_per_hour == doctest::Approx(1.5));
  CHECK(rec.registered_at == k_now);
  CHECK(rec.updated_at == k_now);

  // Nothing about liveness goes to the state tree.
  CHECK(change.writes.at("factories/mac-mini-1.toml")->find("load") == std::string::npos);
}

TEST_CASE("register_factory defaults: one seat, no capabilities, duplicate capabilities collapse") {
  core::MemorySnapshot snap;
  core::HeartbeatInput in;
  in.factory = "bare";
  in.product = "default";
  register_ok(snap, in);
  core::FactoryRecord rec = record_of(snap, "bare");
  CHECK(rec.seats == 1);
  CHECK(rec.capabilities.empty());
  CHECK(rec.engine.empty());

  in.factory = "dups";
  in.capabilities = std::vector<std::string>{"linux", "linux", "docker", "linux"};
  register_ok(snap, in);
  CHECK(record_of(snap, "dups").capabilities == std::vector<std::string>{"docker", "linux"});
}

TEST_CASE("a repeat heartbeat with the same registration is an empty change") {
  core::MemorySnapshot snap;
  register_ok(snap, heartbeat("f1"));
  const auto before = snap.files();

  struct Row {
    const char* name;
    void (*edit)(core::HeartbeatInput&);
  };
  const Row rows[] = {
      {"identical", [](core::HeartbeatInput&) {}},
      {"only the load differs", [](core::HeartbeatInput& in) { in.load = 7; }},
      {"only the actor differs", [](core::HeartbeatInput& in) { in.actor = "someone-else"; }},
      {"capabilities in another order, duplicated",
       [](core::HeartbeatInput& in) { in.capabilities = std::vector<std::string>{"docker", "linux", "docker"}; }},
      {"nothing given keeps the registration",
       [](core::HeartbeatInput& in) {
         in.capabilities.reset();
         in.seats.reset();
         in.engine.reset();
         in.usd_per_hour.reset();
       }},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    core::HeartbeatInput in = heartbeat("f1");
    row.edit(in);
    auto r = core::register_factory(snap, in, k_now + 60000);
    REQUIRE(r.ok());
    CHECK(r->empty());
    CHECK(r->writes.empty());
  }
  CHECK(snap.files() == before);
}

TEST_CASE("changing the registration yields a change that updates the document") {
  struct Row {
    const char* name;
    void (*edit)(core::HeartbeatInput&);
    void (*expect)(core::FactoryRecord&);
  };
  const Row rows[] = {
      {"seats", [](core::HeartbeatInput& in) { in.seats = 3; }, [](core::FactoryRecord& r) { r.seats = 3; }},
      {"capabilities added",
       [](core::HeartbeatInput& in) { in.capabilities = std::vector<std::string>{"linux", "docker", "gpu"}; },
       [](core::FactoryRecord& r) { r.capabilities = {"docker", "gpu", "linux"}; }},
      {"capabilities removed", [](core::HeartbeatInput& in) { in.capabilities = std::vector<std::string>{"linux"}; },
       [](core::FactoryRecord& r) { r.capabilities = {"linux"}; }},
      {"capabilities cleared", [](core::HeartbeatInput& in) { in.capabilities = std::vector<std::string>{}; },
       [](core::FactoryRecord& r) { r.capabilities.clear(); }},
      {"engine", [](core::HeartbeatInput& in) { in.engine = "codex"; },
       [](core::FactoryRecord& r) { r.engine = "codex"; }},
      {"engine cleared", [](core::HeartbeatInput& in) { in.engine = ""; },
       [](core::FactoryRecord& r) { r.engine.clear(); }},
      {"price", [](core::HeartbeatInput& in) { in.usd_per_hour = 4.0; },
       [](core::FactoryRecord& r) { r.usd_per_hour = 4.0; }},
  };
  constexpr core::Millis later = k_now + 3600 * 1000;
  for (const auto& row : rows) {
    CAPTURE(row.name);
    core::MemorySnapshot snap;
    register_ok(snap, heartbeat("f1"));
    core::FactoryRecord expected = record_of(snap, "f1");
    core::HeartbeatInput in = heartbeat("f1");
    row.edit(in);
    auto r = core::register_factory(snap, in, later);
    REQUIRE(r.ok());
    CHECK_FALSE(r->empty());
    CHECK(r->writes.count(layout::factory_doc("f1")) == 1);
    CHECK(r->summary == "update factory f1");
    CHECK(trailer(*r, "Gigafab-Op") == "factory");
    snap.apply(*r);
    row.expect(expected);
    expected.updated_at = later;  // registered_at stays
    core::FactoryRecord actual = record_of(snap, "f1");
    CHECK(actual.capabilities == expected.capabilities);
    CHECK(actual.seats == expected.seats);
    CHECK(actual.engine == expected.engine);
    CHECK(actual.usd_per_hour == doctest::Approx(expected.usd_per_hour));
    CHECK(actual.registered_at == k_now);
    CHECK(actual.updated_at == later);
  }
}

TEST_CASE("a factory registered to one product cannot register under another") {
  core::MemorySnapshot snap;
  register_ok(snap, heartbeat("f1", "alpha"));
  auto r = core::register_factory(snap, heartbeat("f1", "beta"), k_now);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::conflict);
  CHECK(r.error().message.find("alpha") != std::string::npos);
  CHECK(record_of(snap, "f1").product == "alpha");
}

TEST_CASE("register_factory rejects invalid input with usage errors") {
  struct Row {
    const char* name;
    void (*edit)(core::HeartbeatInput&);
    const char* message_part;
  };
  const Row rows[] = {
      {"zero seats", [](core::HeartbeatInput& in) { in.seats = 0; }, "--seats"},
      {"negative seats", [](core::HeartbeatInput& in) { in.seats = -1; }, "--seats"},
      {"10001 seats", [](core::HeartbeatInput& in) { in.seats = 10001; }, "--seats"},
      {"negative load", [](core::HeartbeatInput& in) { in.load = -0.5; }, "--load"},
      {"negative price", [](core::HeartbeatInput& in) { in.usd_per_hour = -1.0; }, "--usd-per-hour"},
      {"empty factory", [](core::HeartbeatInput& in) { in.factory = ""; }, "factory"},
      {"factory with a slash", [](core::HeartbeatInput& in) { in.factory = "../etc"; }, "factory"},
      {"factory with a space", [](core::HeartbeatInput& in) { in.factory = "mac mini"; }, "factory"},
      {"factory starting with a dash", [](core::HeartbeatInput& in) { in.factory = "-f"; }, "factory"},
      {"factory longer than 64", [](core::HeartbeatInput& in) { in.factory = std::string(65, 'f'); }, "factory"},
      {"bad product", [](core::HeartbeatInput& in) { in.product = "a/b"; }, "product"},
      {"empty product", [](core::HeartbeatInput& in) { in.product = ""; }, "product"},
      {"bad capability",
       [](core::HeartbeatInput& in) { in.capabilities = std::vector<std::string>{"linux", "x code"}; }, "capability"},
      {"empty capability", [](core::HeartbeatInput& in) { in.capabilities = std::vector<std::string>{""}; },
       "capability"},
      {"bad engine", [](core::HeartbeatInput& in) { in.engine = "claude code"; }, "engine"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    core::MemorySnapshot snap;
    core::HeartbeatInput in = heartbeat("f1");
    row.edit(in);
    auto r = core::register_factory(snap, in, k_now);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
    CAPTURE(r.error().message);
    CHECK(r.error().message.find(row.message_part) != std::string::npos);
  }
  // The bounds themselves are valid.
  for (std::int64_t seats : {std::int64_t{1}, std::int64_t{10000}}) {
    CAPTURE(seats);
    core::MemorySnapshot snap;
    core::HeartbeatInput in = heartbeat("f1");
    in.seats = seats;
    in.load = 0;
    CHECK(core::register_factory(snap, in, k_now).ok());
  }
}

// BUG (core/factories.cpp, register_factory): the checks `*in.usd_per_hour < 0`
// and `*in.load < 0` are false for NaN, so NaN passes (CLI11 parses
// "--usd-per-hour nan" and "--load nan"). A NaN price is stored as `nan` and,
// since NaN != NaN, every later identical heartbeat is a non-empty change (a
// commit per heartbeat); a NaN load makes the router's load term and total NaN.
TEST_CASE("register_factory rejects NaN prices and loads") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  {
    core::MemorySnapshot snap;
    core::HeartbeatInput in = heartbeat("f1");
    in.usd_per_hour = nan;
    auto r = core::register_factory(snap, in, k_now);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK(r.error().code == core::ErrorCode::usage);
    if (r.ok()) {
      // What goes wrong when it is accepted: the same heartbeat commits again.
      snap.apply(*r);
      auto repeat = core::register_factory(snap, in, k_now + 1000);
      REQUIRE(repeat.ok());
      CHECK(repeat->empty());
    }
  }
  {
    core::MemorySnapshot snap;
    core::HeartbeatInput in = heartbeat("f1");
    in.load = nan;
    auto r = core::register_factory(snap, in, k_now);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK(r.error().code == core::ErrorCode::usage);
  }
}

TEST_CASE("record_liveness writes last_heartbeat_at and load; load_liveness reads them back") {
  core::MemorySnapshot liveness;
  // Records one heartbeat on `liveness` (the liveness ref's tree) and applies it.
  auto beat = [&](const core::HeartbeatInput& in, core::Millis at) {
    auto change = core::record_liveness(liveness, in, at);
    if (!change) FAIL("record_liveness failed: " << change.error().message);
    liveness.apply(*change);
    return *change;
  };
  core::HeartbeatInput a = heartbeat("f1");
  a.load = 2.5;
  core::HeartbeatInput b = heartbeat("f2");
  b.load = 3;
  core::HeartbeatInput c = heartbeat("mac.mini");
  c.load = 0;

  core::Change ca = beat(a, k_now);
  REQUIRE(ca.writes.size() == 1);
  REQUIRE(ca.writes.count("factories/f1.toml") == 1);
  const std::string doc = *ca.writes.at("factories/f1.toml");
  CHECK(doc.find("last_heartbeat_at = \"" + core::format_time(k_now) + "\"") != std::string::npos);
  CHECK(doc.find("load = 2.5") != std::string::npos);
  CHECK(ca.trailers.empty());

  beat(b, k_now - 5000);
  beat(c, k_now - 1);
  // A later heartbeat replaces the earlier one.
  a.load = 1.25;
  beat(a, k_now + 1000);

  auto loaded = core::load_liveness(liveness);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 3);
  struct Row {
    const char* id;
    core::Millis at;
    double load;
  };
  const Row rows[] = {{"f1", k_now + 1000, 1.25}, {"f2", k_now - 5000, 3.0}, {"mac.mini", k_now - 1, 0.0}};
  for (const auto& row : rows) {
    CAPTURE(row.id);
    REQUIRE(loaded->count(row.id) == 1);
    CHECK(loaded->at(row.id).last_heartbeat_at == row.at);
    CHECK(loaded->at(row.id).load == doctest::Approx(row.load));
  }

  // A heartbeat without a load keeps the last reported one (0 for a new factory).
  core::HeartbeatInput quiet = heartbeat("f2");
  quiet.load.reset();
  beat(quiet, k_now + 2000);
  core::HeartbeatInput fresh = heartbeat("f9");
  fresh.load.reset();
  beat(fresh, k_now + 2000);
  auto kept = core::load_liveness(liveness);
  REQUIRE(kept.ok());
  CHECK(kept->at("f2").last_heartbeat_at == k_now + 2000);
  CHECK(kept->at("f2").load == doctest::Approx(3.0));
  CHECK(kept->at("f9").load == doctest::Approx(0.0));
  CHECK(kept->size() == 4);

  // A corrupt document reads as "never seen" rather than failing.
  core::Change corrupt;
  corrupt.put("factories/broken.toml", "this is = = not toml");
  liveness.apply(corrupt);
  auto again = core::load_liveness(liveness);
  REQUIRE(again.ok());
  CHECK(again->count("broken") == 0);
  CHECK(again->size() == 4);

  // An empty liveness ref has no factories.
  core::MemorySnapshot empty;
  auto none = core::load_liveness(empty);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("list_factories filters by product") {
  core::MemorySnapshot snap;
  register_ok(snap, heartbeat("a1", "alpha"));
  register_ok(snap, heartbeat("b1", "beta"));
  register_ok(snap, heartbeat("a2", "alpha"));
  // Not a registration: ignored.
  core::Change junk;
  junk.put("factories/README", "x");
  snap.apply(junk);

  struct Row {
    const char* product;
    std::vector<std::string> ids;
  };
  const Row rows[] = {{"alpha", {"a1", "a2"}}, {"beta", {"b1"}}, {"gamma", {}}, {"", {"a1", "a2", "b1"}}};
  for (const auto& row : rows) {
    CAPTURE(row.product);
    auto list = core::list_factories(snap, row.product);
    REQUIRE(list.ok());
    std::vector<std::string> ids;
    for (const auto& r : *list) ids.push_back(r.id);
    CHECK(ids == row.ids);
  }
}

TEST_CASE("seats_used counts the entries under index/held/<factory>/") {
  core::MemorySnapshot snap({
      {"index/held/f1/j-aaaaaaaa", "priority = \"low\"\n"},
      {"index/held/f1/j-bbbbbbbb", "priority = \"high\"\n"},
      {"index/held/f10/j-cccccccc", "priority = \"normal\"\n"},  // another factory sharing a prefix
      {"index/held/f2/j-dddddddd", "priority = \"normal\"\n"},
      {"index/queued/default/_any/@1-0000000000001-j-eeeeeeee/1-0000000000001-j-eeeeeeee", ""},
  });
  struct Row {
    const char* factory;
    std::int64_t used;
  };
  const Row rows[] = {{"f1", 2}, {"f10", 1}, {"f2", 1}, {"f3", 0}};
  for (const auto& row : rows) {
    CAPTURE(row.factory);
    auto used = core::seats_used(snap, row.factory);
    REQUIRE(used.ok());
    CHECK(*used == row.used);
  }
}

TEST_CASE("factory_view derives health from the liveness age; a factory never seen is down") {
  core::MemorySnapshot snap;
  register_ok(snap, heartbeat("f1"));
  core::Change held;
  held.put("index/held/f1/j-aaaaaaaa", "priority = \"normal\"\n");
  snap.apply(held);
  core::FactoryRecord rec = record_of(snap, "f1");
  core::RouterSettings settings;  // degraded after 30 s, down after 120 s

  struct Row {
    const char* name;
    std::optional<core::Millis> heartbeat_age;  // nullopt: never seen
    core::Health expected;
  };
  const Row rows[] = {
      {"just now", 0, core::Health::healthy},
      {"29.999 s ago", 29999, core::Health::healthy},
      {"30 s ago", 30000, core::Health::degraded},
      {"119.999 s ago", 119999, core::Health::degraded},
      {"120 s ago", 120000, core::Health::down},
      {"an hour ago", 3600000, core::Health::down},
      {"never seen", std::nullopt, core::Health::down},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    std::map<std::string, core::Liveness> liveness;
    liveness["other"] = core::Liveness{k_now, 9};
    if (row.heartbeat_age) liveness["f1"] = core::Liveness{k_now - *row.heartbeat_age, 1.5};
    auto view = core::factory_view(snap, rec, liveness, settings, k_now);
    REQUIRE(view.ok());
    CHECK(core::health_name(view->health) == std::string(core::health_name(row.expected)));
    CHECK(view->id == "f1");
    CHECK(view->capabilities == std::vector<std::string>{"docker", "linux"});
    CHECK(view->seats == 2);
    CHECK(view->seats_used == 1);
    CHECK(view->engine == "claude");
    CHECK(view->usd_per_hour == doctest::Approx(1.5));
    CHECK(view->load == doctest::Approx(row.heartbeat_age ? 1.5 : 0.0));
  }
  // The thresholds come from the settings.
  settings.degraded_after = 5;
  settings.down_after = 10;
  std::map<std::string, core::Liveness> liveness{{"f1", core::Liveness{k_now - 6000, 0}}};
  auto view = core::factory_view(snap, rec, liveness, settings, k_now);
  REQUIRE(view.ok());
  CHECK(view->health == core::Health::degraded);
}
