#include "server/api.hpp"

#include <malloc.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>

#include "core/auth.hpp"
#include "core/ids.hpp"
#include "core/json.hpp"
#include "core/layout.hpp"
#include "core/metrics.hpp"
#include "core/wire.hpp"
#include "gitstore/fd_io.hpp"
#include "gitstore/local_fleet.hpp"
#include "server/commit_stats.hpp"

namespace gigafab::server {

using core::ErrorCode;
using core::make_error;
using core::Result;
using nlohmann::json;

std::string Request::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

int status_for(const core::Error& error) {
  switch (error.code) {
    case ErrorCode::usage: return 400;
    case ErrorCode::fenced: return 409;
    case ErrorCode::conflict: return error.reason == "illegal_transition" ? 422 : 409;
    case ErrorCode::not_found: return 404;
    case ErrorCode::nothing_to_claim: return 204;
    case ErrorCode::unauthorized: return 401;
    case ErrorCode::error: break;
  }
  return 500;
}

Response error_response(int status, const core::Error& error) {
  Response r;
  r.status = status;
  r.body = core::error_to_json(error).dump() + "\n";
  return r;
}

Response error_response(const core::Error& error) { return error_response(status_for(error), error); }

namespace {

// Who is calling, as established by the bearer token.
struct Caller {
  core::Principal principal;
  std::string product;  // the product this request acts in
  bool is_operator() const { return principal.role == core::Role::operator_; }
};

// One routed request: the path's :parameters, the caller and the request.
struct Call {
  const Request& request;
  std::map<std::string, std::string> params;
  Caller caller;
  const std::string& param(const std::string& name) const { return params.at(name); }
};

Response json_response(const json& doc, int status = 200) {
  Response r;
  r.status = status;
  r.body = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return r;
}

core::Error forbidden(std::string message) { return make_error(ErrorCode::unauthorized, std::move(message)); }

Response forbidden_response(std::string message) { return error_response(403, forbidden(std::move(message))); }

template <typename T>
Result<json> list_json(const Result<std::vector<T>>& items, const char* key, json (*render)(const T&)) {
  if (!items) return items.error();
  json list = json::array();
  for (const auto& item : *items) list.push_back(render(item));
  return json{{key, std::move(list)}};
}

// Parses a JSON request body; an empty body is an empty object.
Result<json> parse_body(const Request& request) {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  try {
    return json::parse(request.body);
  } catch (const json::parse_error& e) {
    core::Error error = make_error(ErrorCode::usage, "the request body is not valid JSON (at byte " +
                                                         std::to_string(e.byte) + ")");
    error.field = "body";
    return error;
  }
}

core::Error field_error(std::string field, std::string message) {
  core::Error e = make_error(ErrorCode::usage, std::move(message));
  e.field = std::move(field);
  return e;
}

// Rejects query parameters the route does not know (a typo must not be ignored).
Result<void> check_query(const Request& request, std::initializer_list<const char*> known) {
  for (const auto& [key, value] : request.query) {
    if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
      return field_error(key, "unknown query parameter '" + key + "'");
    }
  }
  return {};
}

}  // namespace

struct Api::Impl {
  gitstore::LocalFleet* fleet;
  std::mutex fleet_mutex;
  // A second handle on the store for authentication, so that checking a
  // request's token does not wait for the group being committed (which holds
  // fleet_mutex through its fsyncs) and the next group can form meanwhile.
  std::optional<gitstore::LocalFleet> reader;
  std::mutex reader_mutex;

  // Group commit: mutations that arrive while others are being written wait
  // in `pending`; the next thread to find no leader runs them all, one after
  // another against the fleet's group view, and commits them as one commit.
  struct Mutation {
    std::string actor;
    std::function<void(gitstore::LocalFleet&)> run;  // stores its own result
    bool done = false;
    // A waiting claim's own attempt runs after the batch's other mutations,
    // so it sees a job submitted in the same batch (any order of requests
    // that arrived together is a valid one).
    bool run_last = false;
    // Its own: a leader wakes the mutations it answered, and the one to lead
    // next, not every thread that waits (with 16 clients a broadcast per
    // batch woke a dozen threads that had nothing to do).
    std::condition_variable cv;
  };
  bool group_commit = true;
  bool pipeline = true;  // set_pipeline
  std::mutex group_mutex;
  // Pipelined: the leader waiting to take its batch (a request arrived, a
  // commit was published), and how many requests the last batch took.
  std::condition_variable lead_cv;
  std::size_t in_flight_batch = 0;
  std::condition_variable group_cv;  // riders wait on it
  std::vector<Mutation*> pending;
  bool leading = false;
  std::size_t max_group = 256;
  CommitStats commit_stats;  // of the group commits, for /metrics

  // Claims waiting for work ride along: after a batch's own mutations changed
  // something (a submit, a release), each rider's claim runs against the
  // batch's view and, if it gets a job, lands in the same commit. A submitted
  // job then reaches a waiting claimer in one commit, not two in a row.
  struct Rider {
    std::string actor;
    std::function<bool(gitstore::LocalFleet&)> try_claim;  // true: got a job (stores it)
    std::function<void()> forget;                            // drops what try_claim stored
    bool in_use = false;  // a leader is running it: it must not go away
    bool done = false;    // its claim is committed
    bool skip = true;     // its own claim is queued or got a job: leaders leave it out
    std::uint64_t tried_in = 0;  // the last batch (batches_run) whose commit ran its claim in vain
  };
  std::vector<Rider*> riders;
  // Batches run so far (under group_mutex): a rider woken by a change that
  // only the batch it was tried in made has nothing new to look at.
  std::uint64_t batches_run = 0;

  // Pack merges run on a thread of their own (Store::merge_aside), woken
  // after a group commit that left them due. Run by the batch's leader,
  // under fleet_mutex and the writer lock, one merge (about 9 ms of copy,
  // fsyncs and refresh, every sixth commit under load) held up every request; aside,
  // the commits go on beside it on the other core.
  std::thread merger;
  std::mutex merger_mutex;
  std::condition_variable merger_cv;
  bool merge_wanted = false;
  bool merger_stopping = false;

  std::mutex change_mutex;
  std::condition_variable change_cv;
  std::uint64_t changes = 0;
  bool stopping = false;

  using Handler = Response (Impl::*)(Call&);
  enum class Access { any, operator_only };
  struct Route {
    const char* method;
    std::vector<std::string> segments;  // ":name" matches one segment
    Handler handler;
    Access access;
  };
  std::vector<Route> routes;

  // Group commits leave their pack merges to the merger; the store is
  // handed back as it was, its merges done.
  ~Impl() {
    {
      std::lock_guard lock(merger_mutex);
      merger_stopping = true;
    }
    merger_cv.notify_one();
    merger.join();
    fleet->store().defer_maintenance(false);
    maintain();
  }

  explicit Impl(gitstore::LocalFleet& f) : fleet(&f) {
    fleet->store().defer_maintenance(true);
    fleet->store().keep_spare_files();
    merger = std::thread([this] { run_merger(); });
    auto add = [&](const char* method, const char* pattern, Handler h, Access access = Access::any) {
      std::vector<std::string> segments;
      std::stringstream in(pattern);
      for (std::string s; std::getline(in, s, '/');) {
        if (!s.empty()) segments.push_back(s);
      }
      routes.push_back({method, std::move(segments), h, access});
    };
    add("POST", "/api/fleet/jobs", &Impl::submit);
    add("GET", "/api/fleet/jobs", &Impl::list);
    add("GET", "/api/fleet/jobs/:id", &Impl::show);
    add("PATCH", "/api/fleet/jobs/:id", &Impl::patch);
    add("POST", "/api/fleet/jobs/:id/actions/:action", &Impl::action, Access::operator_only);
    add("POST", "/api/fleet/claim", &Impl::claim);
    add("POST", "/api/fleet/jobs/:id/lease/renew", &Impl::renew);
    add("POST", "/api/fleet/jobs/:id/lease/release", &Impl::release);
    add("GET", "/api/fleet/jobs/:id/runs", &Impl::runs);
    add("GET", "/api/fleet/jobs/:id/events", &Impl::events);
    add("GET", "/api/fleet/jobs/:id/explain", &Impl::explain);
    add("GET", "/api/fleet/jobs/:id/log", &Impl::job_log);
    add("GET", "/api/fleet/jobs/:id/output", &Impl::output);
    add("POST", "/api/fleet/jobs/:id/output", &Impl::append_output);
    add("GET", "/api/fleet/log", &Impl::log);
    add("POST", "/api/fleet/reap", &Impl::reap);
    add("POST", "/api/fleet/factories/heartbeat", &Impl::heartbeat);
    add("GET", "/api/fleet/factories", &Impl::factories);
    add("POST", "/api/fleet/factories/enroll", &Impl::enroll, Access::operator_only);
    add("POST", "/api/fleet/factories/:id/token/rotate", &Impl::rotate, Access::operator_only);
    add("POST", "/api/fleet/factories/:id/token/revoke", &Impl::revoke, Access::operator_only);
    add("GET", "/api/fleet/weights", &Impl::weights);
    add("PATCH", "/api/fleet/weights", &Impl::set_weights, Access::operator_only);
    add("GET", "/api/fleet/metrics", &Impl::metrics);
    add("GET", "/metrics", &Impl::prometheus);
  }

  // ---- plumbing -------------------------------------------------------------

  // Runs `fn` on the fleet as `caller`; when `mutates` and it succeeded,
  // wakes the waiters.
  template <typename Fn>
  auto with_fleet(const Caller& caller, bool mutates, Fn&& fn, bool run_last = false) {
    if (mutates && group_commit) {
      std::optional<decltype(fn(*fleet))> result;
      Mutation m{actor_of(caller), [&](gitstore::LocalFleet& f) { result.emplace(fn(f)); }, false, run_last, {}};
      run_grouped(m);
      if (*result) notify();
      return std::move(*result);
    }
    std::unique_lock lock(fleet_mutex);
    fleet->set_actor(actor_of(caller));
    auto result = fn(*fleet);
    lock.unlock();
    if (mutates && result) notify();
    return result;
  }

  // Queues `m` and returns once it has run and its group is committed (or
  // has failed: then every mutation of the group gets the error). A leader
  // runs its batch and builds the commit, then hands over and syncs it.
  // Pipelined (set_pipeline), the next leader runs the next batch against
  // that commit meanwhile (Store::prepare_group), so the syncs and the
  // operations overlap; else it waits for the syncs first.
  void run_grouped(Mutation& m) {
    std::unique_lock lock(group_mutex);
    pending.push_back(&m);
    if (leading && pipeline) lead_cv.notify_one();
    for (;;) {
      if (m.done) return;
      if (!leading) {
        leading = true;
        if (pipeline) {
          // One commit syncs while the next is built (a deeper pipeline
          // would only split the same requests into more commits), and the
          // next batch is taken once as many requests wait as the commit
          // in flight holds, or that commit is on disk: taken at once, it
          // would hold only those that arrived while the last was built.
          gitstore::Store& store = fleet->store();
          lead_cv.wait(lock, [&] {
            const std::size_t flying = store.groups_in_flight();
            return flying == 0 || (flying == 1 && pending.size() >= in_flight_batch);
          });
        } else {
          // The next batch waits for the last one's syncs (and grows meanwhile).
          lock.unlock();
          fleet->store().wait_for_groups(0);
          lock.lock();
        }
        std::vector<Mutation*> batch;
        std::size_t n = std::min(pending.size(), max_group);
        batch.assign(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
        pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
        in_flight_batch = n;
        lock.unlock();
        bool handed_over = false;
        auto hand_over = [&] {
          if (handed_over) return;
          handed_over = true;
          std::lock_guard group_lock(group_mutex);
          leading = false;
          if (!pending.empty()) pending.front()->cv.notify_one();
        };
        run_batch(batch, hand_over);
        hand_over();
        lock.lock();
        // Each waiter goes once the lock is released: none is touched after.
        for (Mutation* done : batch) {
          done->done = true;
          done->cv.notify_one();
        }
        continue;
      }
      m.cv.wait(lock);
    }
  }

  void run_merger() {
    gitstore::fd_io::block_signals_in_helper();  // SIGTERM is for the server's own wait
    std::unique_lock lock(merger_mutex);
    for (;;) {
      merger_cv.wait(lock, [&] { return merge_wanted || merger_stopping; });
      if (merger_stopping) return;
      merge_wanted = false;
      lock.unlock();
      auto merged = fleet->store().merge_aside([&](const std::function<void()>& fn) {
        std::lock_guard fleet_lock(fleet_mutex);
        fn();
      });
      if (merged && !*merged) maintain();  // behind a gc
      if (!merged) std::fprintf(stderr, "gigafab: warning: %s\n", merged.error().message.c_str());
      lock.lock();
    }
  }

  void wake_merger() {
    {
      std::lock_guard lock(merger_mutex);
      merge_wanted = true;
    }
    merger_cv.notify_one();
  }

  // The pack merges due, if any, on this handle: behind a gc (the merger
  // leaves those to it) and once the merger is gone.
  void maintain() {
    std::lock_guard lock(fleet_mutex);
    if (auto ok = fleet->store().maintain(); !ok) {
      std::fprintf(stderr, "gigafab: warning: %s\n", ok.error().message.c_str());
    }
  }

  // Runs a batch as one group commit: its operations and its commit under
  // fleet_mutex, then `hand_over` (the next batch may start), then the
  // commit's syncs. A group lost to another writer of the store (a CLI,
  // another server), or built on a group that was, runs again on the new
  // tip; after a few losses, or without group support (a store with a git
  // remote), each mutation commits on its own.
  void run_batch(const std::vector<Mutation*>& batch, const std::function<void()>& hand_over) {
    gitstore::Store& store = fleet->store();
    std::vector<Rider*> aboard;
    {
      std::lock_guard group_lock(group_mutex);
      for (Rider* r : riders) {
        if (r->done || r->skip) continue;
        r->in_use = true;
        aboard.push_back(r);
      }
    }
    auto land = [&](bool committed, bool riders_tried) {
      std::lock_guard group_lock(group_mutex);
      ++batches_run;
      for (Rider* r : aboard) {
        r->in_use = false;
        if (!committed) r->forget();
        if (committed && riders_tried && !r->done) r->tried_in = batches_run;
      }
      group_cv.notify_all();
    };
    const auto started = std::chrono::steady_clock::now();
    for (int attempt = 0; attempt < 8; ++attempt) {
      gitstore::Store::Prepared prepared;
      std::vector<Rider*> claimed;
      bool riders_tried = false;
      std::size_t operations = 0;
      {
        std::lock_guard lock(fleet_mutex);
        auto opened = store.begin_group();
        if (!opened || !*opened) break;
        run_in_order(batch);
        riders_tried = store.group_size() > 0;
        if (riders_tried) {
          for (Rider* r : aboard) {
            r->forget();
            fleet->set_actor(r->actor);
            if (r->try_claim(*fleet)) claimed.push_back(r);
          }
        }
        operations = store.group_size();
        auto ready =
            store.prepare_group(batch.size() == 1 && claimed.empty() ? batch.front()->actor : "gigafab serve");
        if (!ready) break;
        prepared = std::move(*ready);
      }
      const auto built = std::chrono::steady_clock::now();
      hand_over();
      auto published = store.publish_group(prepared);
      if (pipeline) {
        { std::lock_guard group_lock(group_mutex); }
        lead_cv.notify_one();
      }
      if (published) {
        if (store.maintenance_needed()) wake_merger();
        // The token checks need not read this commit when it left auth/ alone.
        if (!prepared.empty() && !prepared.writes_under(core::layout::k_auth_dir)) {
          std::lock_guard lock(reader_mutex);
          if (reader) reader->note_same_auth(prepared.commit_id(), prepared.base_id());
        }
        if (operations > 0) {
          commit_stats.record(operations, std::chrono::duration<double>(built - started).count(),
                              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                              prepared.publish_seconds());
        }
        {
          std::lock_guard group_lock(group_mutex);
          for (Rider* r : claimed) r->done = true;
        }
        land(true, riders_tried);
        return;
      }
      if (published.error().reason != "group_lost") break;
    }
    hand_over();
    land(false, false);
    // One commit per mutation, on the ref once nothing is in flight: each
    // gets its own outcome (a failure to write that has not passed fails
    // each the same way).
    std::lock_guard lock(fleet_mutex);
    if (store.in_group()) store.abandon_group();
    store.wait_for_groups(0);
    run_in_order(batch);
  }

  // Runs the batch's mutations, waiting claims' own attempts last.
  void run_in_order(const std::vector<Mutation*>& batch) {
    for (bool last : {false, true}) {
      for (Mutation* m : batch) {
        if (m->run_last != last) continue;
        fleet->set_actor(m->actor);
        m->run(*fleet);
      }
    }
  }

  static std::string actor_of(const Caller& caller) {
    const core::Principal& p = caller.principal;
    if (!p.factory.empty()) return "factory:" + p.factory + " (token " + p.token_id + ")";
    return "operator:" + (p.name.empty() ? p.token_id : p.name) + " (token " + p.token_id + ")";
  }

  void notify() {
    {
      std::lock_guard lock(change_mutex);
      ++changes;
    }
    change_cv.notify_all();
    {
      std::lock_guard lock(group_mutex);  // riders check `changes` under it
    }
    group_cv.notify_all();
  }

  Result<Caller> authenticate(const Request& request) {
    std::string header = request.header("authorization");
    if (header.empty()) return make_error(ErrorCode::unauthorized, "missing bearer token (Authorization: Bearer <token>)");
    const std::string scheme = "bearer ";
    if (header.size() <= scheme.size() ||
        !std::equal(scheme.begin(), scheme.end(), header.begin(),
                    [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
      return make_error(ErrorCode::unauthorized, "the Authorization header must be 'Bearer <token>'");
    }
    std::string token = header.substr(scheme.size());
    Result<core::Principal> principal = [&]() -> Result<core::Principal> {
      std::lock_guard lock(reader_mutex);
      if (!reader) {
        auto opened = gitstore::Store::open(fleet->store().path());
        if (!opened) return opened.error();
        reader.emplace(std::move(*opened), "gigafab serve", std::nullopt);
      }
      return reader->authenticate(token);
    }();
    if (!principal) return principal.error();
    Caller caller{std::move(*principal), ""};
    std::string product = request.header("x-product-id");
    if (product.empty()) product = caller.principal.product == "*" ? "default" : caller.principal.product;
    if (auto ok = core::validate_name("product", product); !ok) return field_error("x-product-id", ok.error().message);
    caller.product = product;
    return caller;
  }

  Response dispatch(const Request& request) {
    std::vector<std::string> segments;
    {
      std::stringstream in(request.path);
      for (std::string s; std::getline(in, s, '/');) {
        if (!s.empty()) segments.push_back(s);
      }
    }
    bool path_matched = false;
    for (const Route& route : routes) {
      if (route.segments.size() != segments.size()) continue;
      std::map<std::string, std::string> params;
      bool match = true;
      for (std::size_t i = 0; i < segments.size() && match; ++i) {
        if (route.segments[i][0] == ':') {
          params[route.segments[i].substr(1)] = segments[i];
        } else {
          match = route.segments[i] == segments[i];
        }
      }
      if (!match) continue;
      path_matched = true;
      if (request.method != route.method) continue;
      auto caller = authenticate(request);
      if (!caller) return error_response(caller.error().code == ErrorCode::unauthorized ? 401 : 400, caller.error());
      const core::Principal& p = caller->principal;
      if (p.product != "*" && p.product != caller->product) {
        return forbidden_response("this token belongs to product " + p.product + ", not " + caller->product);
      }
      if (route.access == Access::operator_only && !caller->is_operator()) {
        return forbidden_response("this needs an operator token (factory " + p.factory + " may not do it)");
      }
      if (auto it = params.find("id"); it != params.end() && route.segments[2] == "jobs") {
        if (auto ok = core::validate_job_id(it->second); !ok) return error_response(field_error("id", ok.error().message));
      } else if (it != params.end()) {
        if (auto ok = core::validate_name("factory", it->second); !ok) {
          return error_response(field_error("id", ok.error().message));
        }
      }
      Call call{request, std::move(params), std::move(*caller)};
      return (this->*route.handler)(call);
    }
    if (path_matched) {
      Response r = error_response(405, make_error(ErrorCode::usage, request.method + " is not allowed on " + request.path));
      return r;
    }
    return error_response(make_error(ErrorCode::not_found, "no such endpoint: " + request.method + " " + request.path));
  }

  // A factory token acts only as its own factory; an operator names one.
  Result<std::string> acting_factory(const Call& call, const std::string& named) {
    const core::Principal& p = call.caller.principal;
    if (call.caller.is_operator()) {
      if (named.empty()) return field_error("factory", "field 'factory' is required with an operator token");
      return named;
    }
    if (!named.empty() && named != p.factory) {
      return forbidden("this token belongs to factory " + p.factory + ", not " + named);
    }
    return p.factory;
  }

  static Response failed(const core::Error& e) {
    // An auth failure after routing is a role or ownership problem: 403.
    if (e.code == ErrorCode::unauthorized) return error_response(403, e);
    return error_response(e);
  }

  // ---- jobs -----------------------------------------------------------------

  Response submit(Call& call) {
    core::SubmitRequestBody body;
    const Request& req = call.request;
    std::string type = req.header("content-type");
    if (type.rfind("text/markdown", 0) == 0 || type.rfind("text/plain", 0) == 0) {
      if (auto ok = check_query(req, {"priority", "dep", "idempotencyKey", "profile"}); !ok) return failed(ok.error());
      body.manifest = req.body;
      for (const auto& [key, value] : req.query) {
        if (key == "priority") {
          auto p = core::parse_priority(value);
          if (!p) return failed(field_error("priority", p.error().message));
          body.priority = *p;
        } else if (key == "dep") {
          if (!body.deps) body.deps.emplace();
          body.deps->push_back(value);
        } else if (key == "idempotencyKey") {
          body.idempotency_key = value;
        } else if (key == "profile") {
          body.profile = value;
        }
      }
    } else {
      if (auto ok = check_query(req, {}); !ok) return failed(ok.error());
      auto doc = parse_body(req);
      if (!doc) return failed(doc.error());
      auto parsed = core::submit_request_from_json(*doc);
      if (!parsed) return failed(parsed.error());
      body = std::move(*parsed);
    }
    auto input = core::submit_input(body, call.caller.product);
    if (!input) return failed(input.error());
    auto submitted = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) { return f.submit(*input); });
    if (!submitted) return failed(submitted.error());
    return json_response(core::submitted_to_json(*submitted), submitted->duplicate ? 200 : 201);
  }

  Response list(Call& call) {
    if (auto ok = check_query(call.request, {"stage"}); !ok) return failed(ok.error());
    core::JobFilter filter{call.caller.product, {}};
    auto [begin, end] = call.request.query.equal_range("stage");
    for (auto it = begin; it != end; ++it) {
      std::stringstream in(it->second);
      for (std::string name; std::getline(in, name, ',');) {
        auto stage = core::parse_stage(name);
        if (!stage) return failed(field_error("stage", stage.error().message));
        filter.stages.push_back(*stage);
      }
    }
    // The rows of `list --json`, through the list cache (only jobs changed
    // since the last listing are read): the same document, sent a part at a
    // time while other requests run. The rows of cached jobs are a few dozen
    // bytes each in memory; their JSON is read back from the cache file.
    auto listing = with_fleet(call.caller, false, [&](gitstore::LocalFleet& f) { return f.list_rows(filter); });
    if (!listing) return failed(listing.error());
    struct Sending {
      core::JobListing listing;
      core::JobRowsWriter writer{listing};
      explicit Sending(core::JobListing l) : listing(std::move(l)) {}
    };
    auto sending = std::make_shared<Sending>(std::move(*listing));
    Response response;
    response.status = 200;
    response.stream = [sending, ended = false](std::string& out) mutable -> Result<bool> {
      if (ended) return false;
      auto more = sending->writer.next(out, std::size_t{64} << 10);
      if (!more) return more.error();
      if (!*more) {
        out += "\n";
        ended = true;
        // Done with the rows: give their memory (and the tree reads') back
        // to the system, or the server keeps its peak for good.
        sending->listing = core::JobListing{};
        ::malloc_trim(0);
      }
      return true;
    };
    return response;
  }

  Response show(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto detail = with_fleet(call.caller, false,
                             [&](gitstore::LocalFleet& f) { return f.show(call.param("id"), call.caller.product); });
    if (!detail) return failed(detail.error());
    return json_response(core::detail_to_json(*detail));
  }

  // The fenced calls share one shape: parse, check who acts, call, render.
  Response worker(Call& call, std::optional<core::WorkerRequest::Kind> kind) {
    using Kind = core::WorkerRequest::Kind;
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto doc = parse_body(call.request);
    if (!doc) return failed(doc.error());
    auto req = core::worker_request_from_json(*doc, kind);
    if (!req) return failed(req.error());
    auto factory = acting_factory(call, req->factory);
    if (!factory) return failed(factory.error());
    core::WorkerCall wc{call.param("id"), *factory, req->epoch, call.caller.product, actor_of(call.caller)};
    if (req->kind == Kind::output) {
      auto end = with_fleet(call.caller, false,
                            [&](gitstore::LocalFleet& f) { return f.append_output(wc, req->offset, req->text); });
      if (!end) return failed(end.error());
      return json_response({{"end", *end}});
    }
    if (req->kind == Kind::renew) {
      auto lease = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) { return f.renew(wc, req->ttl_seconds); });
      if (!lease) return failed(lease.error());
      return json_response(core::lease_to_json(*lease));
    }
    auto job = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) -> Result<core::Job> {
      switch (req->kind) {
        case Kind::start: return f.start(wc);
        case Kind::checkpoint: return f.checkpoint(wc, req->ref);
        case Kind::report: return f.report(wc, req->report);
        default: return f.release(wc);
      }
    });
    if (!job) return failed(job.error());
    return json_response(core::job_to_json(*job));
  }

  Response patch(Call& call) { return worker(call, std::nullopt); }
  Response renew(Call& call) { return worker(call, core::WorkerRequest::Kind::renew); }
  Response append_output(Call& call) { return worker(call, core::WorkerRequest::Kind::output); }
  Response release(Call& call) { return worker(call, core::WorkerRequest::Kind::release); }

  Response action(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto doc = parse_body(call.request);
    if (!doc) return failed(doc.error());
    if (!doc->empty()) return failed(field_error(doc->begin().key(), "actions take no body fields"));
    const std::string& name = call.param("action");
    std::optional<core::OperatorAction> action;
    for (auto a : {core::OperatorAction::approve, core::OperatorAction::reject, core::OperatorAction::ship,
                   core::OperatorAction::requeue}) {
      if (name == core::operator_action_name(a)) action = a;
    }
    if (!action) {
      return error_response(make_error(ErrorCode::not_found,
                                       "unknown action '" + name + "' (approve, reject, requeue or ship)"));
    }
    auto job = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) {
      return f.act(*action, call.param("id"), call.caller.product);
    });
    if (!job) return failed(job.error());
    return json_response(core::job_to_json(*job));
  }

  Response claim(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto doc = parse_body(call.request);
    if (!doc) return failed(doc.error());
    auto input = core::claim_request_from_json(*doc);
    if (!input) return failed(input.error());
    auto factory = acting_factory(call, input->factory);
    if (!factory) return failed(factory.error());
    input->factory = *factory;
    input->product = call.caller.product;
    const bool waits = input->wait_seconds > 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(input->wait_seconds);
    input->wait_seconds = 0;
    if (!waits || !group_commit) {
      for (;;) {
        std::uint64_t seen = change_counter();
        auto claimed = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) { return f.claim(*input); });
        if (claimed) return json_response(core::claimed_to_json(*claimed));
        auto now = std::chrono::steady_clock::now();
        if (claimed.error().code != ErrorCode::nothing_to_claim) return failed(claimed.error());
        if (now >= deadline || is_stopping()) return nothing_to_claim(claimed.error());
        // Leases expire and deferrals end without a commit: look again soon
        // even when nothing is written.
        auto step = std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(100));
        wait_for_change(seen, std::chrono::duration_cast<std::chrono::milliseconds>(step));
      }
    }
    return wait_for_claim(call.caller, *input, deadline);
  }

  // A claim that found nothing: 204, which has no body, so the reason
  // travels in headers.
  static Response nothing_to_claim(const core::Error& e) {
    Response r;
    r.status = 204;
    r.headers.emplace_back("X-Gigafab-Message", e.message);
    if (!e.reason.empty()) r.headers.emplace_back("X-Gigafab-Reason", e.reason);
    return r;
  }

  // A claim that waits, with group commit: it is a rider (see Rider) from
  // start to end, left out of the batches that run its own attempts. Its own
  // attempt runs last in its batch, and from the end of that batch on, every
  // batch that changes something runs its claim again, so no submit can slip
  // between two of its looks. It looks by itself again every 100 ms (leases
  // expire and deferrals end without a commit).
  Response wait_for_claim(const Caller& caller, const core::ClaimInput& input,
                          std::chrono::steady_clock::time_point deadline) {
    std::optional<core::Claimed> got;
    Rider rider{actor_of(caller),
                [&](gitstore::LocalFleet& f) {
                  auto claimed = f.claim(input);
                  if (claimed) got = std::move(*claimed);
                  return claimed.ok();
                },
                [&] { got.reset(); }};
    std::unique_lock lock(group_mutex);
    riders.push_back(&rider);
    // Leaves the riders once no leader is running its claim; its job, if a batch gave it one.
    auto leave = [&]() -> std::optional<core::Claimed> {
      group_cv.wait(lock, [&] { return !rider.in_use; });
      riders.erase(std::find(riders.begin(), riders.end(), &rider));
      if (!rider.done) return std::nullopt;
      return std::move(got);
    };
    for (;;) {
      // Its own look. rider.skip is set: no leader runs the rider meanwhile,
      // so the two can never both get a job; the attempt re-enables the rider
      // only when it found nothing, before any later batch starts.
      lock.unlock();
      std::uint64_t seen = change_counter();
      auto claimed = with_fleet(
          caller, true,
          [&](gitstore::LocalFleet& f) {
            auto c = f.claim(input);
            std::lock_guard group_lock(group_mutex);
            rider.skip = c.ok() || c.error().code != ErrorCode::nothing_to_claim;
            return c;
          },
          true);
      lock.lock();
      if (claimed || claimed.error().code != ErrorCode::nothing_to_claim) {
        leave();  // skip is set: no batch has run the rider since its last look
        lock.unlock();
        if (!claimed) return failed(claimed.error());
        return json_response(core::claimed_to_json(*claimed));
      }
      auto now = std::chrono::steady_clock::now();
      const auto until = std::min(deadline, now + std::chrono::milliseconds(100));
      for (;;) {
        bool woken = now < deadline && group_cv.wait_until(lock, until, [&] {
          return rider.done || is_stopping() || change_counter() != seen;
        });
        if (!woken || rider.done || is_stopping()) break;
        // Woken by a change. When the last batch to run was one whose commit
        // ran this claim (with every change before it), claiming again would
        // find nothing new: keep riding. notify() follows the batch it
        // reports, so batches_run already counts it.
        if (rider.in_use || rider.tried_in != batches_run) break;
        seen = change_counter();
      }
      group_cv.wait(lock, [&] { return !rider.in_use; });
      if (rider.done || is_stopping() || std::chrono::steady_clock::now() >= deadline) {
        auto rode = leave();
        lock.unlock();
        if (rode) {
          notify();
          return json_response(core::claimed_to_json(*rode));
        }
        return nothing_to_claim(claimed.error());
      }
      rider.skip = true;  // its own look comes next
    }
  }

  Response runs(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto detail = with_fleet(call.caller, false,
                             [&](gitstore::LocalFleet& f) { return f.show(call.param("id"), call.caller.product); });
    if (!detail) return failed(detail.error());
    json list = json::array();
    for (const auto& run : detail->runs) list.push_back(core::run_to_json(run));
    return json_response({{"runs", std::move(list)}});
  }

  Response events(Call& call) {
    if (auto ok = check_query(call.request, {"after"}); !ok) return failed(ok.error());
    std::int64_t after = 0;
    auto it = call.request.query.find("after");
    if (it != call.request.query.end()) {
      auto parsed = parse_count(it->second);
      if (!parsed) return failed(field_error("after", "after must be a non-negative integer"));
      after = *parsed;
    }
    auto events = with_fleet(call.caller, false, [&](gitstore::LocalFleet& f) {
      return f.events(call.param("id"), call.caller.product, after);
    });
    auto doc = list_json<core::Event>(events, "events", core::event_to_json);
    if (!doc) return failed(doc.error());
    return json_response(*doc);
  }

  // GET /fleet/jobs/:id/output?epoch=N&from=BYTE
  Response output(Call& call) {
    if (auto ok = check_query(call.request, {"epoch", "from"}); !ok) return failed(ok.error());
    std::optional<std::int64_t> epoch;
    std::int64_t from = 0;
    if (auto it = call.request.query.find("epoch"); it != call.request.query.end()) {
      epoch = parse_count(it->second);
      if (!epoch || *epoch < 1) return failed(field_error("epoch", "epoch must be a positive integer"));
    }
    if (auto it = call.request.query.find("from"); it != call.request.query.end()) {
      auto parsed = parse_count(it->second);
      if (!parsed) return failed(field_error("from", "from must be a non-negative integer"));
      from = *parsed;
    }
    auto out = with_fleet(call.caller, false, [&](gitstore::LocalFleet& f) {
      return f.output(call.param("id"), call.caller.product, epoch, from);
    });
    if (!out) return failed(out.error());
    return json_response(core::run_output_to_json(*out));
  }

  static std::optional<std::int64_t> parse_count(const std::string& text) {
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::stoll(text);
  }

  Response explain(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto rows = with_fleet(call.caller, false,
                           [&](gitstore::LocalFleet& f) { return f.explain(call.param("id"), call.caller.product); });
    auto doc = list_json<core::ExplainRow>(rows, "candidates", core::explain_row_to_json);
    if (!doc) return failed(doc.error());
    (*doc)["id"] = call.param("id");
    return json_response(*doc);
  }

  Response log_of(Call& call, std::optional<std::string> job) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto entries = with_fleet(call.caller, false, [&](gitstore::LocalFleet& f) { return f.log(job, call.caller.product); });
    auto doc = list_json<core::AuditEntry>(entries, "entries", core::audit_entry_to_json);
    if (!doc) return failed(doc.error());
    return json_response(*doc);
  }
  Response job_log(Call& call) { return log_of(call, call.param("id")); }
  Response log(Call& call) { return log_of(call, std::nullopt); }

  Response reap(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto reaped = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) { return f.reap(); });
    auto doc = list_json<core::Reaped>(reaped, "reaped", core::reaped_to_json);
    if (!doc) return failed(doc.error());
    return json_response(*doc);
  }

  // ---- factories ------------------------------------------------------------

  Response heartbeat(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto doc = parse_body(call.request);
    if (!doc) return failed(doc.error());
    auto input = core::heartbeat_request_from_json(*doc);
    if (!input) return failed(input.error());
    auto factory = acting_factory(call, input->factory);
    if (!factory) return failed(factory.error());
    input->factory = *factory;
    input->product = call.caller.product;
    input->actor = actor_of(call.caller);
    auto status = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) { return f.heartbeat(*input); });
    if (!status) return failed(status.error());
    return json_response(core::factory_status_to_json(*status));
  }

  Response factories(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto list = with_fleet(call.caller, false, [&](gitstore::LocalFleet& f) { return f.factories(call.caller.product); });
    auto doc = list_json<core::FactoryStatus>(list, "factories", core::factory_status_to_json);
    if (!doc) return failed(doc.error());
    return json_response(*doc);
  }

  Response enroll(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto doc = parse_body(call.request);
    if (!doc) return failed(doc.error());
    auto input = core::enroll_request_from_json(*doc);
    if (!input) return failed(input.error());
    input->product = call.caller.product;
    input->actor = actor_of(call.caller);
    auto issued = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) { return f.enroll(*input); });
    if (!issued) return failed(issued.error());
    return json_response(core::issued_token_to_json(*issued), 201);
  }

  Response rotate(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto issued = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) {
      return f.rotate_token(call.param("id"), call.caller.product);
    });
    if (!issued) return failed(issued.error());
    return json_response(core::issued_token_to_json(*issued));
  }

  Response revoke(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto revoked = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) {
      return f.revoke_token(call.param("id"), call.caller.product);
    });
    if (!revoked) return failed(revoked.error());
    json doc = core::token_to_json(*revoked);
    doc["revoked"] = true;
    return json_response(doc);
  }

  // ---- settings and metrics --------------------------------------------------

  Response weights(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto settings = with_fleet(call.caller, false, [&](gitstore::LocalFleet& f) { return f.settings(call.caller.product); });
    if (!settings) return failed(settings.error());
    return json_response(core::settings_to_json(*settings));
  }

  Response set_weights(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto doc = parse_body(call.request);
    if (!doc) return failed(doc.error());
    auto assignments = core::settings_request_from_json(*doc);
    if (!assignments) return failed(assignments.error());
    auto settings = with_fleet(call.caller, true, [&](gitstore::LocalFleet& f) {
      return f.update_settings(call.caller.product, *assignments);
    });
    if (!settings) return failed(settings.error());
    return json_response(core::settings_to_json(*settings));
  }

  Response metrics(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto m = with_fleet(call.caller, false, [&](gitstore::LocalFleet& f) { return f.metrics(call.caller.product); });
    if (!m) return failed(m.error());
    return json_response(core::metrics_to_json(*m));
  }

  // Prometheus: every product the token may see.
  Response prometheus(Call& call) {
    if (auto ok = check_query(call.request, {}); !ok) return failed(ok.error());
    auto all = with_fleet(call.caller, false, [&](gitstore::LocalFleet& f) -> Result<std::vector<core::FleetMetrics>> {
      if (call.caller.principal.product == "*") return f.metrics_all();
      auto m = f.metrics(call.caller.product);
      if (!m) return m.error();
      return std::vector<core::FleetMetrics>{std::move(*m)};
    });
    if (!all) return failed(all.error());
    Response r;
    r.body = core::metrics_to_prometheus(*all);
    if (group_commit) r.body += commit_stats.prometheus();
    r.content_type = "text/plain; version=0.0.4";
    return r;
  }

  // ---- waiting ---------------------------------------------------------------

  std::uint64_t change_counter() {
    std::lock_guard lock(change_mutex);
    return changes;
  }

  std::uint64_t wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) {
    std::unique_lock lock(change_mutex);
    change_cv.wait_for(lock, timeout, [&] { return changes != seen || stopping; });
    return changes;
  }

  bool is_stopping() {
    std::lock_guard lock(change_mutex);
    return stopping;
  }
};

Api::Api(gitstore::LocalFleet& fleet) : m(std::make_unique<Impl>(fleet)) {}
Api::~Api() = default;

void Api::set_group_commit(bool on) { m->group_commit = on; }
void Api::set_pipeline(bool on) { m->pipeline = on; }

Response Api::handle(const Request& request) {
  if (request.path == "/healthz" && request.method == "GET") return json_response({{"ok", true}});
  return m->dispatch(request);
}

Result<Api::StreamAccess> Api::open_stream(const Request& request, const std::string& job_id) {
  auto caller = m->authenticate(request);
  if (!caller) return caller.error();
  if (caller->principal.product != "*" && caller->principal.product != caller->product) {
    return forbidden("this token belongs to product " + caller->principal.product + ", not " + caller->product);
  }
  if (auto ok = core::validate_job_id(job_id); !ok) return field_error("id", ok.error().message);
  // The job must exist in the caller's product (404 otherwise).
  auto events = m->with_fleet(*caller, false, [&](gitstore::LocalFleet& f) {
    return f.events(job_id, caller->product, std::numeric_limits<std::int64_t>::max() - 1);
  });
  if (!events) return events.error();
  return StreamAccess{job_id, caller->product};
}

Result<std::vector<core::Event>> Api::events_after(const StreamAccess& access, std::int64_t after) {
  std::lock_guard lock(m->fleet_mutex);
  return m->fleet->events(access.job, access.product, after);
}

std::uint64_t Api::wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) {
  return m->wait_for_change(seen, timeout);
}
std::uint64_t Api::change_counter() { return m->change_counter(); }

void Api::interrupt() {
  {
    std::lock_guard lock(m->change_mutex);
    m->stopping = true;
  }
  m->change_cv.notify_all();
  {
    std::lock_guard lock(m->group_mutex);
  }
  m->group_cv.notify_all();
}

bool Api::interrupted() { return m->is_stopping(); }

}  // namespace gigafab::server
