// Unit tests for server/api.hpp without HTTP: routing, bearer auth, product
// scoping and status codes, on a real store in a temporary directory. A
// rejected request leaves the ref where it was.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "gitstore/local_fleet.hpp"
#include "gitstore/store.hpp"
#include "server/api.hpp"
#include "scratch_fleet.hpp"

using namespace gigafab;
using nlohmann::json;

namespace {

struct ScratchApi : testing::ScratchFleet {
  std::optional<server::Api> api;
  std::string op, op_beta, factory;

  ScratchApi() : testing::ScratchFleet("api") {
    auto o = fleet->create_operator_token("default", "ops");
    REQUIRE(o.ok());
    op = o->token;
    auto b = fleet->create_operator_token("beta", "ops-beta");
    REQUIRE(b.ok());
    op_beta = b->token;
    core::EnrollInput in;
    in.factory = "f1";
    in.product = "default";
    in.capabilities = std::vector<std::string>{"linux"};
    auto f = fleet->enroll(in);
    REQUIRE(f.ok());
    factory = f->token;
    api.emplace(*fleet);
  }
  ~ScratchApi() override { api.reset(); }
  server::Response call(const std::string& method, const std::string& path, const std::string& token,
                        const std::string& body = "", std::map<std::string, std::string> headers = {}) {
    server::Request r;
    r.method = method;
    r.path = path;
    if (!token.empty()) headers["authorization"] = "Bearer " + token;
    r.headers = std::move(headers);
    r.body = body;
    return api->handle(r);
  }
};

const std::string k_manifest = R"({"manifest": "+++\ncapabilities = [\"linux\"]\n+++\n# Job\n\nbody\n"})";

std::string error_code(const server::Response& r) { return json::parse(r.body)["error"]["code"]; }

}  // namespace

TEST_CASE("api: status codes follow the error classes") {
  CHECK(server::status_for(core::make_error(core::ErrorCode::usage, "x")) == 400);
  CHECK(server::status_for(core::make_error(core::ErrorCode::fenced, "x")) == 409);
  CHECK(server::status_for(core::make_error(core::ErrorCode::conflict, "x")) == 409);
  core::Error illegal = core::make_error(core::ErrorCode::conflict, "cannot ship");
  illegal.reason = "illegal_transition";
  CHECK(server::status_for(illegal) == 422);
  CHECK(server::status_for(core::make_error(core::ErrorCode::not_found, "x")) == 404);
  CHECK(server::status_for(core::make_error(core::ErrorCode::unauthorized, "x")) == 401);
  CHECK(server::status_for(core::make_error(core::ErrorCode::error, "x")) == 500);
}

TEST_CASE("api: submit, claim and the fenced path, with the right statuses") {
  ScratchApi s;
  auto submitted = s.call("POST", "/api/fleet/jobs", s.op, k_manifest);
  REQUIRE(submitted.status == 201);
  std::string id = json::parse(submitted.body)["id"];

  auto claimed = s.call("POST", "/api/fleet/claim", s.factory, "{}");
  REQUIRE(claimed.status == 200);
  auto doc = json::parse(claimed.body);
  CHECK(doc["id"] == id);
  CHECK(doc["factory"] == "f1");
  std::int64_t epoch = doc["epoch"];

  std::size_t before = s.commits();
  auto stale = s.call("PATCH", "/api/fleet/jobs/" + id, s.factory,
                      R"({"epoch": )" + std::to_string(epoch + 1) + R"(, "stage": "building"})");
  CHECK(stale.status == 409);
  CHECK(error_code(stale) == "fenced");
  auto illegal = s.call("POST", "/api/fleet/jobs/" + id + "/actions/ship", s.op);
  CHECK(illegal.status == 422);
  CHECK(s.commits() == before);

  auto nothing = s.call("POST", "/api/fleet/claim", s.factory, "{}");
  CHECK(nothing.status == 204);
  REQUIRE(nothing.headers.size() == 1);
  CHECK(nothing.headers[0].first == "X-Gigafab-Message");
}

TEST_CASE("api: /metrics counts serve's group commits, their operations and how long they took") {
  ScratchApi s;
  auto metric = [&](const std::string& body, const std::string& name) -> std::string {
    auto at = body.find("\n" + name + " ");
    if (at == std::string::npos) return "";
    at += name.size() + 2;
    return body.substr(at, body.find('\n', at) - at);
  };
  auto none = s.call("GET", "/metrics", s.op);
  REQUIRE(none.status == 200);
  CHECK(metric(none.body, "gigafab_serve_commits_total") == "0");
  CHECK(metric(none.body, "gigafab_serve_commit_seconds_count") == "0");

  const std::size_t before = s.commits();
  for (int i = 0; i < 3; ++i) REQUIRE(s.call("POST", "/api/fleet/jobs", s.op, k_manifest).status == 201);
  REQUIRE(s.call("POST", "/api/fleet/claim", s.factory, "{}").status == 200);
  // Rejected: no commit, nothing counted.
  REQUIRE(s.call("POST", "/api/fleet/jobs", s.op, R"({"manifest": ""})").status == 400);
  REQUIRE(s.commits() == before + 4);

  auto after = s.call("GET", "/metrics", s.op);
  REQUIRE(after.status == 200);
  CHECK(metric(after.body, "gigafab_serve_commits_total") == "4");
  CHECK(metric(after.body, "gigafab_serve_commit_operations_total") == "4");
  for (const char* family :
       {"gigafab_serve_build_seconds", "gigafab_serve_commit_seconds", "gigafab_serve_publish_seconds"}) {
    const std::string name = family;
    CHECK(metric(after.body, name + "_count") == "4");
    CHECK(metric(after.body, name + "_bucket{le=\"+Inf\"}") == "4");
    CHECK(std::stod(metric(after.body, name + "_sum")) > 0);
    CHECK(after.body.find("# TYPE " + name + " histogram\n") != std::string::npos);
  }
  // A batch takes at least its build and its publish, one after the other.
  CHECK(std::stod(metric(after.body, "gigafab_serve_commit_seconds_sum")) >=
        std::stod(metric(after.body, "gigafab_serve_build_seconds_sum")) +
            std::stod(metric(after.body, "gigafab_serve_publish_seconds_sum")));
}

TEST_CASE("api: auth and product scoping reject before anything is written") {
  ScratchApi s;
  auto submitted = s.call("POST", "/api/fleet/jobs", s.op, k_manifest);
  REQUIRE(submitted.status == 201);
  std::string id = json::parse(submitted.body)["id"];
  std::size_t before = s.commits();

  CHECK(s.call("GET", "/api/fleet/jobs", "").status == 401);
  CHECK(s.call("GET", "/api/fleet/jobs", "gf_aaaaaaaaaaaa_" + std::string(32, 'b')).status == 401);
  CHECK(s.call("POST", "/api/fleet/jobs/" + id + "/actions/ship", s.factory).status == 403);
  CHECK(s.call("POST", "/api/fleet/claim", s.factory, R"({"factory": "f2"})").status == 403);
  CHECK(s.call("GET", "/api/fleet/jobs/" + id, s.op_beta).status == 404);
  CHECK(s.call("GET", "/api/fleet/jobs/" + id, s.op_beta, "", {{"x-product-id", "default"}}).status == 403);
  CHECK(s.call("GET", "/api/fleet/jobs", s.op, "", {{"x-product-id", "no spaces"}}).status == 400);
  CHECK(s.call("POST", "/api/fleet/claim", s.op, "{}").status == 400);  // an operator must name the factory
  CHECK(s.commits() == before);
}

TEST_CASE("api: malformed requests get 4xx with the field named") {
  ScratchApi s;
  auto field = [](const server::Response& r) { return json::parse(r.body)["error"].value("field", ""); };
  auto bad_json = s.call("POST", "/api/fleet/claim", s.factory, "{\"ttl\": ");
  CHECK(bad_json.status == 400);
  CHECK(field(bad_json) == "body");
  auto bad_id = s.call("GET", "/api/fleet/jobs/nope", s.op);
  CHECK(bad_id.status == 400);
  CHECK(field(bad_id) == "id");
  CHECK(s.call("GET", "/api/fleet/unknown", s.op).status == 404);
  CHECK(s.call("DELETE", "/api/fleet/jobs", s.op).status == 405);
  server::Request r;
  r.method = "GET";
  r.path = "/api/fleet/jobs";
  r.headers["authorization"] = "Bearer " + s.op;
  r.query.emplace("stage", "queued,nope");
  auto bad_stage = s.api->handle(r);
  CHECK(bad_stage.status == 400);
  CHECK(field(bad_stage) == "stage");
  CHECK(s.call("GET", "/healthz", "").status == 200);
}

TEST_CASE("api: a job list is streamed in parts, the same document as list --json, each part a bounded size") {
  ScratchApi s;
  for (int i = 0; i < 40; ++i) {
    REQUIRE(s.call("POST", "/api/fleet/jobs", s.op, k_manifest).status == 201);
  }
  // Twice: the first listing parses every job, the second reads the texts
  // back from the cache file the first one saved.
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    auto r = s.call("GET", "/api/fleet/jobs", s.op);
    REQUIRE(r.status == 200);
    REQUIRE(r.stream);
    CHECK(r.body.empty());
    std::string streamed;
    int parts = 0;
    for (;;) {
      std::string part;
      auto more = r.stream(part);
      REQUIRE(more.ok());
      streamed += part;
      if (!*more) break;
      CHECK(part.size() < (std::size_t{64} << 10) + 4096);  // a part is the budget plus one row at most
      ++parts;
    }
    CHECK(parts >= 1);
    auto doc = s.fleet->list_document(core::JobFilter{"default", {}});
    REQUIRE(doc.ok());
    CHECK(streamed == *doc + "\n");
    CHECK(json::parse(streamed)["jobs"].size() == 40);
  }
}

TEST_CASE("api: a token revoked by another writer, or through the api, fails at once, also between group commits") {
  // The server's token checks skip reading the commits its own groups made
  // when they left auth/ alone; a commit by anyone else is read.
  ScratchApi s;
  for (int i = 0; i < 3; ++i) REQUIRE(s.call("POST", "/api/fleet/jobs", s.op, k_manifest).status == 201);
  CHECK(s.call("GET", "/api/fleet/jobs", s.factory).status == 200);
  auto claimed = s.call("POST", "/api/fleet/claim", s.factory, R"({"factory": "f1"})");
  REQUIRE(claimed.status == 200);
  CHECK(s.call("GET", "/api/fleet/jobs", s.factory).status == 200);
  {
    // Another process (the CLI) revokes the factory's token.
    auto other = gitstore::Store::open(s.dir + "/store");
    REQUIRE(other.ok());
    gitstore::LocalFleet cli(std::move(*other), "cli", std::nullopt);
    REQUIRE(cli.revoke_token("f1", "default").ok());
  }
  CHECK(s.call("GET", "/api/fleet/jobs", s.factory).status == 401);
  CHECK(s.call("POST", "/api/fleet/claim", s.factory, R"({"factory": "f1"})").status == 401);
  // The operator token still works, through more group commits.
  for (int i = 0; i < 3; ++i) REQUIRE(s.call("POST", "/api/fleet/jobs", s.op, k_manifest).status == 201);
  CHECK(s.call("GET", "/api/fleet/jobs", s.factory).status == 401);
  // Enrolled and revoked through the api (groups that write under auth/): at once too.
  auto enrolled = s.call("POST", "/api/fleet/factories/enroll", s.op, R"({"factory": "f2", "capabilities": ["linux"]})");
  REQUIRE(enrolled.status == 201);
  std::string f2 = json::parse(enrolled.body)["token"];
  CHECK(s.call("GET", "/api/fleet/jobs", f2).status == 200);
  REQUIRE(s.call("POST", "/api/fleet/jobs", s.op, k_manifest).status == 201);
  CHECK(s.call("GET", "/api/fleet/jobs", f2).status == 200);
  REQUIRE(s.call("POST", "/api/fleet/factories/f2/token/revoke", s.op).status == 200);
  CHECK(s.call("GET", "/api/fleet/jobs", f2).status == 401);
  REQUIRE(s.call("POST", "/api/fleet/jobs", s.op, k_manifest).status == 201);
  CHECK(s.call("GET", "/api/fleet/jobs", f2).status == 401);
  CHECK(s.call("GET", "/api/fleet/jobs", s.op).status == 200);
}
