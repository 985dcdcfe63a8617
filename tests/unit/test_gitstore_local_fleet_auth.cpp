// Unit tests for the API-token methods of gitstore/local_fleet.hpp on a real
// store in a temporary directory: what `gigafab serve` will call. Each
// operation is one commit; authenticate sees rotations and revocations at once.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <string>

#include "core/auth.hpp"
#include "gitstore/local_fleet.hpp"
#include "gitstore/store.hpp"
#include "scratch_fleet.hpp"

using namespace gigafab;

namespace {

struct ScratchFleet : testing::ScratchFleet {
  ScratchFleet() : testing::ScratchFleet("auth") {}
};

core::ErrorCode code_of(const core::Result<core::Principal>& r) { return r ? core::ErrorCode{} : r.error().code; }

}  // namespace

TEST_CASE("LocalFleet tokens: one commit each; authenticate follows enroll, rotate and revoke") {
  ScratchFleet s;
  gitstore::LocalFleet& fleet = *s.fleet;
  std::size_t base = s.commits();

  auto op = fleet.create_operator_token("default", "ci");
  REQUIRE(op.ok());
  CHECK(s.commits() == base + 1);
  auto who = fleet.authenticate(op->token);
  REQUIRE(who.ok());
  CHECK(who->role == core::Role::operator_);
  CHECK(who->product == "default");
  CHECK(who->name == "ci");

  core::EnrollInput in;
  in.factory = "f1";
  in.product = "default";
  auto first = fleet.enroll(in);
  REQUIRE(first.ok());
  CHECK(s.commits() == base + 2);
  auto factory = fleet.authenticate(first->token);
  REQUIRE(factory.ok());
  CHECK(factory->role == core::Role::factory);
  CHECK(factory->factory == "f1");
  auto statuses = fleet.factories("default");
  REQUIRE(statuses.ok());
  REQUIRE(statuses->size() == 1);
  CHECK(statuses->front().record.id == "f1");

  auto again = fleet.enroll(in);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == core::ErrorCode::conflict);
  CHECK(s.commits() == base + 2);

  auto second = fleet.rotate_token("f1", "default");
  REQUIRE(second.ok());
  CHECK(code_of(fleet.authenticate(first->token)) == core::ErrorCode::unauthorized);
  CHECK(fleet.authenticate(second->token).ok());

  auto revoked = fleet.revoke_token("f1", "default");
  REQUIRE(revoked.ok());
  CHECK(revoked->id == second->record.id);
  CHECK(code_of(fleet.authenticate(second->token)) == core::ErrorCode::unauthorized);
  CHECK(fleet.rotate_token("f1", "default").error().code == core::ErrorCode::not_found);

  auto listed = fleet.tokens("default");
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->front().id == op->record.id);
  CHECK(fleet.tokens("../x").error().code == core::ErrorCode::usage);

  auto gone = fleet.revoke_token_id(op->record.id, "*");
  REQUIRE(gone.ok());
  CHECK(code_of(fleet.authenticate(op->token)) == core::ErrorCode::unauthorized);
  CHECK(code_of(fleet.authenticate("garbage")) == core::ErrorCode::unauthorized);
  CHECK(s.commits() == base + 5);
}

TEST_CASE("LocalFleet authenticate: a token checked once still follows what another process does to it") {
  ScratchFleet s;
  gitstore::LocalFleet& server = *s.fleet;  // checks tokens, like serve's reader
  auto op = server.create_operator_token("default", "ci");
  REQUIRE(op.ok());
  CHECK(server.authenticate(op->token).ok());
  CHECK(server.authenticate(op->token).ok());  // from what it remembers
  // The same id with another secret is refused, before and after the good one.
  std::string forged = op->token;
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  CHECK(code_of(server.authenticate(forged)) == core::ErrorCode::unauthorized);
  CHECK(server.authenticate(op->token).ok());

  // Another handle on the store (a CLI) revokes it: the next check refuses it.
  auto store = gitstore::Store::open(s.dir + "/store");
  REQUIRE(store.ok());
  gitstore::LocalFleet cli(std::move(*store), "cli", std::nullopt);
  // It makes another token first: the tip the server checked at has moved,
  // and both tokens hold.
  auto other = cli.create_operator_token("default", "other");
  REQUIRE(other.ok());
  CHECK(server.authenticate(other->token).ok());
  CHECK(server.authenticate(op->token).ok());
  CHECK(server.authenticate(op->token).ok());
  REQUIRE(cli.revoke_token_id(op->record.id, "*").ok());
  CHECK(code_of(server.authenticate(op->token)) == core::ErrorCode::unauthorized);
  CHECK(code_of(server.authenticate(op->token)) == core::ErrorCode::unauthorized);
  CHECK(server.authenticate(other->token).ok());
}
