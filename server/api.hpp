// The /api/fleet REST API as plain request -> response functions, with no
// HTTP library in sight: routing, authentication, product scoping, body
// validation and the mapping of errors to statuses. server/http.cpp adapts it
// to cpp-httplib and adds what needs a live connection (the SSE stream and
// waiting claims); unit tests call it directly.
//
// The Api is the single writer of its store: every fleet call runs under one
// mutex (libgit2 repositories are not shared across threads), and `changed()`
// wakes whoever waits for the store to move (SSE streams, waiting claims).
// A CLI writing to the same store directly is still safe: both go through the
// ref's compare-and-swap.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/records.hpp"

namespace gigafab::gitstore {
class LocalFleet;
}

namespace gigafab::server {

struct Request {
  std::string method;  // GET, POST, PATCH, ...
  std::string path;    // without the query string
  std::multimap<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  std::string header(const std::string& lower_name) const;
};

struct Response {
  int status = 200;
  std::string body;
  // A body sent a part at a time instead (when set, `body` is empty): each
  // call appends the next part to `out`; false once the body is complete, an
  // error to abort the response half-way (the client sees it cut short).
  std::function<core::Result<bool>(std::string& out)> stream;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// The HTTP status for an error (DESIGN.md section 7): 400 usage, 401/403 auth,
// 404, 409 fenced or conflict, 422 illegal transition, 500 otherwise.
int status_for(const core::Error& error);
Response error_response(const core::Error& error);
Response error_response(int status, const core::Error& error);

class Api {
 public:
  explicit Api(gitstore::LocalFleet& fleet);
  ~Api();

  // One request, answered synchronously. A claim with "wait" set blocks up to
  // that long for a fitting job.
  Response handle(const Request& request);

  // For the SSE stream: authenticates and scopes like a GET of the job's
  // events; then `events_after` returns what the stream sends next.
  struct StreamAccess {
    std::string job;
    std::string product;
  };
  core::Result<StreamAccess> open_stream(const Request& request, const std::string& job_id);
  core::Result<std::vector<core::Event>> events_after(const StreamAccess& access, std::int64_t after);

  // Blocks until the store may have changed since `seen` (a counter returned
  // by the previous call) or `timeout` passes; returns the current counter.
  std::uint64_t wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout);
  std::uint64_t change_counter();
  // Group commit (on by default): mutations that arrive together are written
  // as one commit, each still its own audited operation.
  void set_group_commit(bool on);
  // With group commit (on by default): the next group runs its requests
  // and builds its commit while the last one syncs (Store::prepare_group).
  void set_pipeline(bool on);
  // Wakes every waiter (shutdown).
  void interrupt();
  bool interrupted();

 private:
  struct Impl;
  std::unique_ptr<Impl> m;
};

}  // namespace gigafab::server
