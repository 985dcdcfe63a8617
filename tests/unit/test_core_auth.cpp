// Unit tests for core/auth.hpp: token strings, salted hashes, authenticate,
// and the token operations (operator create, enroll, rotate, revoke) against
// a MemorySnapshot. The secret must never reach a stored file or a commit message.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/auth.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/factories.hpp"
#include "core/layout.hpp"
#include "core/snapshot.hpp"

using namespace gigafab;
namespace layout = gigafab::core::layout;

namespace {

constexpr core::Millis k_now = 1700000000123;

core::TokenMaterial material() {
  auto m = core::random_token_material();
  if (!m) FAIL("random_token_material failed: " << m.error().message);
  return *m;
}

std::string trailer(const core::Change& change, const std::string& key) {
  for (const auto& [k, v] : change.trailers) {
    if (k == key) return v;
  }
  return "<absent>";
}

// Applies a successful token operation and checks that its secret is nowhere
// in what it writes or in its commit message.
core::IssuedToken apply_ok(core::MemorySnapshot& snap, const core::Result<core::TokenChange>& r) {
  if (!r) FAIL("token operation failed: " << r.error().message);
  const core::TokenChange& tc = *r;
  if (!tc.issued.token.empty()) {
    auto parsed = core::parse_token(tc.issued.token);
    REQUIRE(parsed.ok());
    CHECK(tc.change.message().find(parsed->secret) == std::string::npos);
    for (const auto& [path, content] : tc.change.writes) {
      CHECK(path.find(parsed->secret) == std::string::npos);
      if (content) CHECK(content->find(parsed->secret) == std::string::npos);
    }
  }
  snap.apply(tc.change);
  return tc.issued;
}

core::IssuedToken create_operator(core::MemorySnapshot& snap, std::string product = "default", std::string name = "") {
  return apply_ok(snap, core::create_operator_token(snap, {std::move(product), std::move(name), "alice@host"},
                                                    material(), k_now));
}

core::EnrollInput enroll_input(std::string factory, std::string product = "default") {
  core::EnrollInput in;
  in.factory = std::move(factory);
  in.product = std::move(product);
  in.capabilities = std::vector<std::string>{"linux"};
  in.seats = 2;
  in.actor = "alice@host";
  return in;
}

core::IssuedToken enroll(core::MemorySnapshot& snap, std::string factory, std::string product = "default") {
  return apply_ok(snap, core::enroll_factory(snap, enroll_input(std::move(factory), std::move(product)), material(), k_now));
}

core::ErrorCode auth_code(const core::Snapshot& snap, std::string_view token) {
  auto p = core::authenticate(snap, token);
  return p ? core::ErrorCode{} : p.error().code;
}

}  // namespace

TEST_CASE("token strings: gf_<12 base32>_<32 base32>, parsed back exactly") {
  core::TokenMaterial m = material();
  CHECK(m.id.size() == 12);
  CHECK(m.secret.size() == 32);
  CHECK(m.salt.size() == 16);
  std::string token = core::format_token(m.id, m.secret);
  CHECK(token == "gf_" + m.id + "_" + m.secret);
  auto parsed = core::parse_token(token);
  REQUIRE(parsed.ok());
  CHECK(parsed->id == m.id);
  CHECK(parsed->secret == m.secret);
  CHECK(core::validate_token_id(m.id).ok());

  // Fresh material every time.
  std::set<std::string> ids, secrets, salts;
  for (int i = 0; i < 50; ++i) {
    core::TokenMaterial n = material();
    ids.insert(n.id);
    secrets.insert(n.secret);
    salts.insert(n.salt);
  }
  CHECK(ids.size() == 50);
  CHECK(secrets.size() == 50);
  CHECK(salts.size() == 50);
}

TEST_CASE("malformed token strings are unauthorized, never a crash") {
  std::string good = core::format_token("abcdefghijkl", std::string(32, 'a'));
  REQUIRE(core::parse_token(good).ok());
  const std::vector<std::string> bad = {
      "",
      "gf_",
      "gf__",
      good.substr(0, good.size() - 1),
      good + "a",
      "GF" + good.substr(2),
      "gx" + good.substr(2),
      "gf-abcdefghijkl_" + std::string(32, 'a'),
      "gf_abcdefghijkl-" + std::string(32, 'a'),
      "gf_ABCDEFGHIJKL_" + std::string(32, 'a'),  // uppercase is not the alphabet
      "gf_abcdefghijk1_" + std::string(32, 'a'),  // '1' is not base32
      "gf_abcdefghijkl_" + std::string(31, 'a') + "/",
      "gf_abcdefghijkl_" + std::string(31, 'a') + std::string(1, '\0'),
      "gf_../../../etc_" + std::string(32, 'a'),
      "Bearer " + good,
      " " + good,
  };
  core::MemorySnapshot snap;
  for (const auto& token : bad) {
    CAPTURE(token);
    auto parsed = core::parse_token(token);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code == core::ErrorCode::unauthorized);
    CHECK(parsed.error().message == "invalid token");
    CHECK(auth_code(snap, token) == core::ErrorCode::unauthorized);
  }
  CHECK(core::validate_token_id("abcdefghijkl").ok());
  for (std::string id : {"", "abc", "abcdefghijk1", "../abcdefghi", "abcdefghijklm", "ABCDEFGHIJKL"}) {
    CAPTURE(id);
    auto r = core::validate_token_id(id);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
  }
}

TEST_CASE("authenticate: an operator token is its principal; a wrong secret or unknown id is not") {
  core::MemorySnapshot snap;
  core::IssuedToken issued = create_operator(snap, "acme", "ci-bot");
  auto p = core::authenticate(snap, issued.token);
  REQUIRE(p.ok());
  CHECK(p->role == core::Role::operator_);
  CHECK(p->product == "acme");
  CHECK(p->factory.empty());
  CHECK(p->token_id == issued.record.id);
  CHECK(p->name == "ci-bot");
  CHECK(core::may_act_on(*p, "acme"));
  CHECK_FALSE(core::may_act_on(*p, "other"));

  auto parsed = core::parse_token(issued.token);
  REQUIRE(parsed.ok());
  // Same id, different secret (one character off).
  std::string secret = parsed->secret;
  secret[0] = secret[0] == 'a' ? 'b' : 'a';
  CHECK(auth_code(snap, core::format_token(parsed->id, secret)) == core::ErrorCode::unauthorized);
  CHECK(auth_code(snap, core::format_token(parsed->id, std::string(32, 'a'))) == core::ErrorCode::unauthorized);
  // Unknown id, right secret.
  std::string other_id = parsed->id == "aaaaaaaaaaaa" ? "bbbbbbbbbbbb" : "aaaaaaaaaaaa";
  auto unknown = core::authenticate(snap, core::format_token(other_id, parsed->secret));
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == core::ErrorCode::unauthorized);
  CHECK(unknown.error().message == "invalid token");
}

TEST_CASE("the stored record: salted hash, never the secret; salts differ between tokens") {
  core::MemorySnapshot snap;
  core::TokenMaterial m = material();
  auto r = core::create_operator_token(snap, {"default", "", "alice@host"}, m, k_now);
  REQUIRE(r.ok());
  CHECK(r->issued.token == core::format_token(m.id, m.secret));
  const core::TokenRecord& rec = r->issued.record;
  CHECK(rec.hash == core::hash_secret(m.salt, m.secret));
  CHECK(rec.hash.size() == 64);
  CHECK(rec.salt.size() == 32);
  CHECK(core::verify_secret(rec, m.secret));
  CHECK_FALSE(core::verify_secret(rec, ""));
  REQUIRE(r->change.writes.count(layout::token_doc(m.id)) == 1);
  std::string doc = *r->change.writes.at(layout::token_doc(m.id));
  CHECK(doc.find(m.secret) == std::string::npos);
  CHECK(doc.find(rec.hash) != std::string::npos);

  auto back = core::token_from_toml(doc, "t.toml");
  REQUIRE(back.ok());
  CHECK(back->id == rec.id);
  CHECK(back->role == core::Role::operator_);
  CHECK(back->product == "default");
  CHECK(back->salt == rec.salt);
  CHECK(back->hash == rec.hash);
  CHECK(back->created_at == k_now);

  // The same secret under two salts hashes differently; two tokens never share a salt.
  core::TokenMaterial m2 = material();
  m2.secret = m.secret;
  auto r2 = core::create_operator_token(snap, {"default", "", "alice@host"}, m2, k_now);
  REQUIRE(r2.ok());
  CHECK(r2->issued.record.salt != rec.salt);
  CHECK(r2->issued.record.hash != rec.hash);

  core::MemorySnapshot many;
  std::set<std::string> salts;
  for (int i = 0; i < 10; ++i) salts.insert(create_operator(many).record.salt);
  CHECK(salts.size() == 10);
}

TEST_CASE("create_operator_token: one product or every product; bad input is a usage error") {
  core::MemorySnapshot snap;
  auto r = core::create_operator_token(snap, {"default", "deploy", "alice@host"}, material(), k_now);
  REQUIRE(r.ok());
  CHECK(trailer(r->change, "Gigafab-Op") == "token-create");
  CHECK(trailer(r->change, "Gigafab-Token") == r->issued.record.id);
  CHECK(trailer(r->change, "Gigafab-Role") == "operator");
  CHECK(trailer(r->change, "Gigafab-Product") == "default");
  CHECK(trailer(r->change, "Gigafab-Actor") == "alice@host");
  CHECK(r->change.writes.size() == 1);

  core::IssuedToken all = create_operator(snap, "*");
  CHECK(all.record.product == "*");
  auto p = core::authenticate(snap, all.token);
  REQUIRE(p.ok());
  CHECK(p->product == "*");
  CHECK(core::may_act_on(*p, "anything"));

  for (auto [product, name] : std::vector<std::pair<std::string, std::string>>{
           {"", ""}, {"../x", ""}, {"a/b", ""}, {"**", ""}, {"default", "has space"}, {"default", "../n"}}) {
    CAPTURE(product);
    CAPTURE(name);
    auto bad = core::create_operator_token(snap, {product, name, "alice@host"}, material(), k_now);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == core::ErrorCode::usage);
  }
  // A taken id is refused rather than overwritten.
  core::TokenMaterial dup = material();
  dup.id = all.record.id;
  auto taken = core::create_operator_token(snap, {"default", "", "alice@host"}, dup, k_now);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.error().code == core::ErrorCode::conflict);
}

TEST_CASE("enroll registers the factory, issues a factory token, and refuses a second enrollment") {
  core::MemorySnapshot snap;
  auto r = core::enroll_factory(snap, enroll_input("mac-1"), material(), k_now);
  REQUIRE(r.ok());
  CHECK(r->change.writes.count(layout::factory_doc("mac-1")) == 1);
  CHECK(r->change.writes.count(layout::factory_token_entry("mac-1")) == 1);
  CHECK(trailer(r->change, "Gigafab-Op") == "enroll");
  CHECK(trailer(r->change, "Gigafab-Factory") == "mac-1");
  core::IssuedToken issued = apply_ok(snap, r);
  CHECK(issued.record.role == core::Role::factory);
  CHECK(issued.record.factory == "mac-1");
  CHECK(issued.record.product == "default");

  auto f = core::find_factory(snap, "mac-1");
  REQUIRE(f.ok());
  REQUIRE(f->has_value());
  CHECK((*f)->seats == 2);
  CHECK((*f)->capabilities == std::vector<std::string>{"linux"});

  auto p = core::authenticate(snap, issued.token);
  REQUIRE(p.ok());
  CHECK(p->role == core::Role::factory);
  CHECK(p->factory == "mac-1");
  CHECK(p->product == "default");

  auto again = core::enroll_factory(snap, enroll_input("mac-1"), material(), k_now);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == core::ErrorCode::conflict);
  CHECK(again.error().message.find("gigafab factory rotate mac-1") != std::string::npos);

  // Another product's factory: conflict, as for a heartbeat.
  auto elsewhere = core::enroll_factory(snap, enroll_input("mac-1", "other"), material(), k_now);
  REQUIRE_FALSE(elsewhere.ok());
  CHECK(elsewhere.error().code == core::ErrorCode::conflict);

  // A factory that registered by heartbeat first enrolls without re-registering.
  core::HeartbeatInput beat;
  beat.factory = "lin-1";
  beat.product = "default";
  auto reg = core::register_factory(snap, beat, k_now);
  REQUIRE(reg.ok());
  snap.apply(*reg);
  core::EnrollInput plain;
  plain.factory = "lin-1";
  plain.product = "default";
  auto second = core::enroll_factory(snap, plain, material(), k_now);
  REQUIRE(second.ok());
  CHECK(second->change.writes.count(layout::factory_doc("lin-1")) == 0);

  for (std::string bad : {"", "../x", "a/b", "-x"}) {
    CAPTURE(bad);
    auto e = core::enroll_factory(snap, enroll_input(bad), material(), k_now);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == core::ErrorCode::usage);
  }
  core::EnrollInput zero = enroll_input("z");
  zero.seats = 0;
  CHECK(core::enroll_factory(snap, zero, material(), k_now).error().code == core::ErrorCode::usage);
}

TEST_CASE("rotate: the old token stops working, the new one works, the index follows") {
  core::MemorySnapshot snap;
  core::IssuedToken first = enroll(snap, "f1");
  auto r = core::rotate_factory_token(snap, "f1", "default", "alice@host", material(), k_now + 5);
  REQUIRE(r.ok());
  CHECK(trailer(r->change, "Gigafab-Op") == "rotate");
  CHECK(trailer(r->change, "Gigafab-Revoked-Token") == first.record.id);
  core::IssuedToken second = apply_ok(snap, r);
  CHECK(second.record.id != first.record.id);
  CHECK(second.record.created_at == k_now + 5);

  CHECK(auth_code(snap, first.token) == core::ErrorCode::unauthorized);
  auto p = core::authenticate(snap, second.token);
  REQUIRE(p.ok());
  CHECK(p->factory == "f1");
  CHECK(snap.files().count(layout::token_doc(first.record.id)) == 0);
  CHECK(snap.files().at(layout::factory_token_entry("f1")) == second.record.id + "\n");
  auto live = core::factory_token(snap, "f1");
  REQUIRE(live.ok());
  REQUIRE(live->has_value());
  CHECK((*live)->id == second.record.id);

  // Unknown factory, another product's factory, a factory without a token: not found.
  auto unknown = core::rotate_factory_token(snap, "nope", "default", "a", material(), k_now);
  CHECK(unknown.error().code == core::ErrorCode::not_found);
  auto other = core::rotate_factory_token(snap, "f1", "other", "a", material(), k_now);
  CHECK(other.error().code == core::ErrorCode::not_found);
  core::HeartbeatInput beat;
  beat.factory = "bare";
  beat.product = "default";
  snap.apply(*core::register_factory(snap, beat, k_now));
  auto tokenless = core::rotate_factory_token(snap, "bare", "default", "a", material(), k_now);
  CHECK(tokenless.error().code == core::ErrorCode::not_found);
  CHECK(tokenless.error().message.find("gigafab factory enroll bare") != std::string::npos);
  CHECK(core::rotate_factory_token(snap, "../f1", "default", "a", material(), k_now).error().code ==
        core::ErrorCode::usage);
}

TEST_CASE("revoke: a revoked token fails at once; the factory may enroll again") {
  core::MemorySnapshot snap;
  core::IssuedToken factory = enroll(snap, "f1");
  core::IssuedToken op = create_operator(snap);
  core::IssuedToken all = create_operator(snap, "*");

  auto r = core::revoke_factory_token(snap, "f1", "default", "alice@host");
  REQUIRE(r.ok());
  CHECK(trailer(r->change, "Gigafab-Op") == "revoke");
  CHECK(r->issued.token.empty());
  CHECK(r->issued.record.id == factory.record.id);
  apply_ok(snap, r);
  CHECK(auth_code(snap, factory.token) == core::ErrorCode::unauthorized);
  CHECK(snap.files().count(layout::factory_token_entry("f1")) == 0);
  CHECK(core::revoke_factory_token(snap, "f1", "default", "a").error().code == core::ErrorCode::not_found);
  // The registration stays; a new enrollment works.
  CHECK(snap.files().count(layout::factory_doc("f1")) == 1);
  core::IssuedToken again = enroll(snap, "f1");
  CHECK(core::authenticate(snap, again.token).ok());

  // By id, within scope: a product's caller cannot revoke an all-products token.
  auto out_of_scope = core::revoke_token_id(snap, all.record.id, "default", "a");
  REQUIRE_FALSE(out_of_scope.ok());
  CHECK(out_of_scope.error().code == core::ErrorCode::not_found);
  CHECK(core::revoke_token_id(snap, op.record.id, "other", "a").error().code == core::ErrorCode::not_found);
  apply_ok(snap, core::revoke_token_id(snap, op.record.id, "default", "a"));
  CHECK(auth_code(snap, op.token) == core::ErrorCode::unauthorized);
  apply_ok(snap, core::revoke_token_id(snap, all.record.id, "*", "a"));
  CHECK(auth_code(snap, all.token) == core::ErrorCode::unauthorized);
  CHECK(core::revoke_token_id(snap, op.record.id, "*", "a").error().code == core::ErrorCode::not_found);
  CHECK(core::revoke_token_id(snap, "../../x", "*", "a").error().code == core::ErrorCode::usage);

  // Revoking a factory's token by id also clears its index entry.
  auto by_id = core::revoke_token_id(snap, again.record.id, "default", "a");
  REQUIRE(by_id.ok());
  CHECK(by_id->change.writes.count(layout::factory_token_entry("f1")) == 1);
  apply_ok(snap, by_id);
  auto none = core::factory_token(snap, "f1");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  CHECK(auth_code(snap, again.token) == core::ErrorCode::unauthorized);
}

TEST_CASE("list_tokens: by product or all, oldest first, no secrets") {
  core::MemorySnapshot snap;
  core::IssuedToken a = create_operator(snap, "default", "a");
  core::IssuedToken b = enroll(snap, "f1");
  core::IssuedToken c = create_operator(snap, "other");
  core::IssuedToken d = create_operator(snap, "*");
  auto mine = core::list_tokens(snap, "default");
  REQUIRE(mine.ok());
  std::set<std::string> ids;
  for (const auto& r : *mine) ids.insert(r.id);
  CHECK(ids == std::set<std::string>{a.record.id, b.record.id});
  auto every = core::list_tokens(snap, "*");
  REQUIRE(every.ok());
  REQUIRE(every->size() == 4);
  ids.clear();
  for (const auto& r : *every) ids.insert(r.id);
  CHECK(ids == std::set<std::string>{a.record.id, b.record.id, c.record.id, d.record.id});
}

TEST_CASE("a corrupt token document is an error, not a login") {
  core::MemorySnapshot snap;
  core::IssuedToken issued = create_operator(snap);
  std::map<std::string, std::string> files = snap.files();
  files[layout::token_doc(issued.record.id)] = "id = \"" + issued.record.id + "\"\nrole = \"god\"\n";
  core::MemorySnapshot broken(files);
  auto p = core::authenticate(broken, issued.token);
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().code == core::ErrorCode::error);
}

TEST_CASE("no written file ever contains a secret across a whole token lifecycle") {
  core::MemorySnapshot snap;
  std::vector<std::string> secrets;
  auto keep = [&](const core::IssuedToken& t) { secrets.push_back(core::parse_token(t.token)->secret); };
  keep(create_operator(snap));
  keep(create_operator(snap, "*", "root"));
  keep(enroll(snap, "f1"));
  keep(enroll(snap, "f2"));
  keep(apply_ok(snap, core::rotate_factory_token(snap, "f1", "default", "a", material(), k_now)));
  apply_ok(snap, core::revoke_factory_token(snap, "f2", "default", "a"));
  for (const auto& [path, content] : snap.files()) {
    for (const auto& secret : secrets) {
      CHECK(path.find(secret) == std::string::npos);
      CHECK(content.find(secret) == std::string::npos);
    }
  }
}
