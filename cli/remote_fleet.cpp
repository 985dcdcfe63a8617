#include "cli/remote_fleet.hpp"

#include <curl/curl.h>
#include <dlfcn.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <type_traits>

#include "core/ids.hpp"
#include "core/wire.hpp"

namespace gigafab::cli {

using core::ErrorCode;
using core::make_error;
using core::Result;
using nlohmann::json;

namespace {

// How long a request may take, and how long connecting may take. A claim
// waits on the server, so its limit is its wait plus this margin.
constexpr long k_timeout_seconds = 120;
constexpr long k_connect_timeout_seconds = 10;
// The server bounds a claim's wait (claim_request_from_json); a longer
// --wait is made of several claims of at most this long.
constexpr std::int64_t k_max_server_wait = 3600;

bool starts_with_nocase(const std::string& text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::size_t write_body(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct Reply {
  long status = 0;
  std::string body;
  std::string message;  // X-Gigafab-Message (a 204 claim says why here)
  std::string reason;   // X-Gigafab-Reason (e.g. "deferred")
};

std::size_t read_header(char* data, std::size_t size, std::size_t count, void* user) {
  std::string_view line(data, size * count);
  auto* reply = static_cast<Reply*>(user);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect or 100)
    reply->message.clear();
    reply->reason.clear();
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (name == "x-gigafab-message" || name == "x-gigafab-reason") {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
        value.remove_suffix(1);
      }
      (name == "x-gigafab-message" ? reply->message : reply->reason) = std::string(value);
    }
  }
  return size * count;
}

// libcurl, loaded on first use rather than linked: it and the libraries it
// pulls in (GnuTLS, Kerberos, LDAP, nghttp2, ...; 17 of the binary's 46) took
// about 6 ms of every command's start, and only --api needs it.
struct Curl {
  decltype(&curl_global_init) global_init = nullptr;
  decltype(&curl_easy_init) easy_init = nullptr;
  decltype(&curl_easy_reset) easy_reset = nullptr;
  decltype(&curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&curl_easy_setopt) easy_setopt = nullptr;
  decltype(&curl_easy_perform) easy_perform = nullptr;
  decltype(&curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&curl_easy_strerror) easy_strerror = nullptr;
  decltype(&curl_slist_append) slist_append = nullptr;
  decltype(&curl_slist_free_all) slist_free_all = nullptr;
};

// The loaded and initialized libcurl, or why it cannot be loaded.
Result<const Curl*> curl_api() {
  static std::once_flag once;
  static Curl api;
  static std::string failure;
  std::call_once(once, [] {
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      failure = "cannot load libcurl (install the libcurl4 package): " + std::string(why ? why : "?");
      return;
    }
    auto load = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      if (!fn && failure.empty()) failure = std::string("libcurl has no ") + name;
    };
    load(api.global_init, "curl_global_init");
    load(api.easy_init, "curl_easy_init");
    load(api.easy_reset, "curl_easy_reset");
    load(api.easy_cleanup, "curl_easy_cleanup");
    load(api.easy_setopt, "curl_easy_setopt");
    load(api.easy_perform, "curl_easy_perform");
    load(api.easy_getinfo, "curl_easy_getinfo");
    load(api.easy_strerror, "curl_easy_strerror");
    load(api.slist_append, "curl_slist_append");
    load(api.slist_free_all, "curl_slist_free_all");
    if (failure.empty()) api.global_init(CURL_GLOBAL_DEFAULT);
  });
  if (!failure.empty()) return make_error(ErrorCode::error, failure);
  return &api;
}

// Responses whose shape we do not understand (a proxy, another service).
core::Error unexpected(const std::string& where, const std::string& why) {
  return make_error(ErrorCode::error, "the server at " + where + " sent an unexpected response: " + why);
}

}  // namespace

struct RemoteFleet::Impl {
  std::string url;   // as given (trailing slashes dropped): named in messages
  std::string base;  // scheme://host[:port][/prefix], without /api/fleet
  std::string token;
  std::string product;
  std::string actor;
  CURL* curl = nullptr;
  const Curl* api = nullptr;

  ~Impl() {
    if (curl) api->easy_cleanup(curl);
  }

  // One request. `product` is sent as x-product-id (this fleet's product when
  // empty); `body` as JSON when given. Transport failures are errors naming
  // the URL; any HTTP status is a Reply.
  Result<Reply> send(const char* method, const std::string& path, const std::string& for_product,
                     const json* body, long timeout_seconds = k_timeout_seconds) {
    const std::string& scope = for_product.empty() ? product : for_product;
    if (auto ok = core::validate_name("product", scope); !ok) return ok.error();
    if (!curl) {
      auto loaded = curl_api();
      if (!loaded) return make_error(ErrorCode::error, "cannot reach " + url + ": " + loaded.error().message);
      api = *loaded;
      curl = api->easy_init();
      if (!curl) return make_error(ErrorCode::error, "cannot reach " + url + ": libcurl failed to initialize");
    } else {
      api->easy_reset(curl);  // keeps the connection for the next request
    }
    std::string target = base + path;
    std::string payload = body ? body->dump(-1, ' ', false, json::error_handler_t::replace) : std::string();
    Reply reply;

    curl_slist* headers = nullptr;
    auto add_header = [&](const std::string& h) { headers = api->slist_append(headers, h.c_str()); };
    add_header("Authorization: Bearer " + token);
    add_header("Content-Type: application/json");
    add_header("Accept: application/json");
    add_header("x-product-id: " + scope);
    if (!actor.empty() && !has_control(actor)) add_header("X-Gigafab-Actor: " + actor);
    add_header("Expect:");  // no 100-continue round trip for large manifests

    api->easy_setopt(curl, CURLOPT_URL, target.c_str());
    api->easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    api->easy_setopt(curl, CURLOPT_USERAGENT, "gigafab/" GIGAFAB_VERSION);
    api->easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    api->easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, k_connect_timeout_seconds);
    api->easy_setopt(curl, CURLOPT_TIMEOUT, timeout_seconds);
    api->easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
    api->easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
    api->easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
    api->easy_setopt(curl, CURLOPT_HEADERDATA, &reply);
    std::string verb = method;
    if (verb == "GET") {
      api->easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else {
      // POST and PATCH always carry a body (an empty one when none is given).
      api->easy_setopt(curl, CURLOPT_POST, 1L);
      api->easy_setopt(curl, CURLOPT_POSTFIELDS, payload.c_str());
      api->easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
      if (verb != "POST") api->easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = api->easy_perform(curl);
    api->slist_free_all(headers);
    api->easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
    if (rc != CURLE_OK) {
      std::string why = api->easy_strerror(rc);
      if (rc == CURLE_OPERATION_TIMEDOUT) {
        return make_error(ErrorCode::error, "no answer from " + url + " within " + std::to_string(timeout_seconds) +
                                                " seconds: " + why);
      }
      return make_error(ErrorCode::error, "cannot reach " + url + ": " + why);
    }
    api->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
    return reply;
  }

  // The error a failed reply stands for: its error document when it carries
  // one (the server's own message and code), else one mapped from the status.
  core::Error failure(const Reply& reply, const std::string& path) {
    json doc = json::parse(reply.body, nullptr, false);
    if (auto e = core::error_from_json(doc)) {
      // Local errors name no request field; keep the output identical.
      e->field.clear();
      return *e;
    }
    ErrorCode code = ErrorCode::error;
    switch (reply.status) {
      case 400: code = ErrorCode::usage; break;
      case 401:
      case 403: code = ErrorCode::unauthorized; break;
      case 404: code = ErrorCode::not_found; break;
      case 409: code = ErrorCode::fenced; break;
      case 422: code = ErrorCode::conflict; break;
      default: break;
    }
    std::string message = "the server at " + url + " answered HTTP " + std::to_string(reply.status) + " to " + path;
    std::string text = reply.body.substr(0, 200);
    if (auto nl = text.find('\n'); nl != std::string::npos) text.resize(nl);
    if (!text.empty() && !has_control(text)) message += ": " + text;
    return make_error(code, message);
  }

  // A request whose success is a JSON document (any 2xx but 204).
  Result<json> call(const char* method, const std::string& path, const std::string& for_product,
                    const json* body = nullptr) {
    auto reply = send(method, path, for_product, body);
    if (!reply) return reply.error();
    if (reply->status < 200 || reply->status >= 300) return failure(*reply, path);
    json doc = json::parse(reply->body, nullptr, false);
    if (doc.is_discarded()) {
      return unexpected(url, "HTTP " + std::to_string(reply->status) + " to " + path + " without a JSON body");
    }
    return doc;
  }

  Result<json> get(const std::string& path, const std::string& for_product) { return call("GET", path, for_product); }
  Result<json> post(const std::string& path, const std::string& for_product, const json& body = json::object()) {
    return call("POST", path, for_product, &body);
  }
  Result<json> patch(const std::string& path, const std::string& for_product, const json& body) {
    return call("PATCH", path, for_product, &body);
  }
};

namespace {

// doc -> T with a wire parser, or the error (of a failed call or a bad document).
template <typename T>
Result<T> parse(const Result<json>& doc, core::FromJson<T> parser) {
  if (!doc) return doc.error();
  return parser(*doc);
}

template <typename T>
Result<std::vector<T>> parse_list(const Result<json>& doc, const char* key, core::FromJson<T> parser) {
  if (!doc) return doc.error();
  return core::list_from_json<T>(*doc, key, parser);
}

std::string job_path(const std::string& id) { return "/api/fleet/jobs/" + id; }

}  // namespace

Result<std::unique_ptr<RemoteFleet>> RemoteFleet::create(const std::string& url, const std::string& token,
                                                         const std::string& product, const std::string& actor) {
  std::string given = url;
  while (!given.empty() && given.back() == '/') given.pop_back();
  std::string scheme_end = "://";
  auto after_scheme = given.find(scheme_end);
  bool ok = (starts_with_nocase(given, "http://") || starts_with_nocase(given, "https://")) &&
            after_scheme != std::string::npos && given.size() > after_scheme + scheme_end.size() &&
            given[after_scheme + scheme_end.size()] != '/' && !has_control(given) &&
            given.find_first_of(" ?#") == std::string::npos;
  if (!ok) {
    return make_error(ErrorCode::usage,
                      "--api wants the server's URL, e.g. http://127.0.0.1:7070, not '" + core::escape_for_message(url) + "'");
  }
  if (token.empty()) {
    return make_error(ErrorCode::usage, "--api needs a token: pass --token or set GIGAFAB_TOKEN");
  }
  if (has_control(token) || token.find(' ') != std::string::npos) {
    return make_error(ErrorCode::usage, "the token given with --token or GIGAFAB_TOKEN is malformed");
  }
  auto impl = std::make_unique<Impl>();
  impl->url = given;
  // Accept the URL `gigafab serve` prints (…/api/fleet) as well as the bare server.
  std::string base = given;
  for (std::string_view suffix : {"/api/fleet", "/api"}) {
    if (base.size() > suffix.size() && base.ends_with(suffix)) {
      base.resize(base.size() - suffix.size());
      break;
    }
  }
  impl->base = base;
  impl->token = token;
  impl->product = product;
  impl->actor = actor;
  return std::unique_ptr<RemoteFleet>(new RemoteFleet(std::move(impl)));
}

RemoteFleet::RemoteFleet(std::unique_ptr<Impl> impl) : m(std::move(impl)) {}
RemoteFleet::~RemoteFleet() = default;

// ---- jobs --------------------------------------------------------------------

Result<core::Submitted> RemoteFleet::submit(const core::SubmitInput& input) {
  if (input.source.empty()) {
    return make_error(ErrorCode::error, "cannot submit over --api: the manifest's text is missing");
  }
  // The server parses the manifest text again; what the command line
  // overrode travels beside it (the manifest's own values, sent again, change nothing).
  const core::Manifest& manifest = input.manifest;
  core::SubmitRequestBody body;
  body.manifest = input.source;
  body.priority = manifest.priority;
  if (!manifest.deps.empty()) body.deps = manifest.deps;
  body.idempotency_key = manifest.idempotency_key;
  body.profile = manifest.profile;
  return parse<core::Submitted>(m->post("/api/fleet/jobs", input.product, core::submit_request_to_json(body)),
                                core::submitted_from_json);
}

Result<std::vector<core::Job>> RemoteFleet::list(const core::JobFilter& filter) {
  std::string path = "/api/fleet/jobs";
  std::string stages;
  for (core::Stage stage : filter.stages) stages += (stages.empty() ? "" : ",") + std::string(core::stage_name(stage));
  if (!stages.empty()) path += "?stage=" + stages;
  return parse_list<core::Job>(m->get(path, filter.product), "jobs", core::job_from_json);
}

Result<core::JobDetail> RemoteFleet::show(const std::string& id, const std::string& product) {
  if (auto ok = core::validate_job_id(id); !ok) return ok.error();
  return parse<core::JobDetail>(m->get(job_path(id), product), core::detail_from_json);
}

Result<std::vector<core::AuditEntry>> RemoteFleet::log(const std::optional<std::string>& job,
                                                       const std::string& product) {
  if (job) {
    if (auto ok = core::validate_job_id(*job); !ok) return ok.error();
  }
  std::string path = job ? job_path(*job) + "/log" : std::string("/api/fleet/log");
  return parse_list<core::AuditEntry>(m->get(path, product), "entries", core::audit_entry_from_json);
}

Result<core::Claimed> RemoteFleet::claim(const core::ClaimInput& input) {
  core::ClaimRequest request{input.product, input.factory, input.capabilities, input.ttl_seconds, "", {}};
  if (auto ok = core::validate_claim(request); !ok) return ok.error();
  // The server does the waiting; a wait longer than it allows is several claims.
  std::int64_t remaining = std::max<std::int64_t>(input.wait_seconds, 0);
  for (;;) {
    core::ClaimInput chunk = input;
    chunk.wait_seconds = std::min(remaining, k_max_server_wait);
    remaining -= chunk.wait_seconds;
    json body = core::claim_request_to_json(chunk);
    auto reply = m->send("POST", "/api/fleet/claim", input.product, &body,
                         k_timeout_seconds + static_cast<long>(chunk.wait_seconds));
    if (!reply) return reply.error();
    if (reply->status == 204) {
      if (remaining > 0) continue;
      core::Error error = make_error(ErrorCode::nothing_to_claim,
                               reply->message.empty() ? "nothing to claim for " + input.factory : reply->message);
      error.reason = reply->reason;
      return error;
    }
    if (reply->status < 200 || reply->status >= 300) return m->failure(*reply, "/api/fleet/claim");
    json doc = json::parse(reply->body, nullptr, false);
    if (doc.is_discarded()) return unexpected(m->url, "HTTP " + std::to_string(reply->status) + " to a claim without a JSON body");
    return core::claimed_from_json(doc);
  }
}

namespace {

core::WorkerRequest worker_request(core::WorkerRequest::Kind kind, const core::WorkerCall& call) {
  core::WorkerRequest request;
  request.kind = kind;
  request.factory = call.factory;
  request.epoch = call.epoch;
  return request;
}

}  // namespace

Result<core::Lease> RemoteFleet::renew(core::WorkerCall call, std::int64_t ttl_seconds) {
  if (auto ok = core::validate_ttl(ttl_seconds); !ok) return ok.error();
  if (auto ok = core::validate_worker_call(call); !ok) return ok.error();
  auto request = worker_request(core::WorkerRequest::Kind::renew, call);
  request.ttl_seconds = ttl_seconds;
  return parse<core::Lease>(m->post(job_path(call.job_id) + "/lease/renew", call.product,
                                    core::worker_request_to_json(request)),
                            core::lease_from_json);
}

Result<core::Job> RemoteFleet::start(core::WorkerCall call) {
  if (auto ok = core::validate_worker_call(call); !ok) return ok.error();
  auto request = worker_request(core::WorkerRequest::Kind::start, call);
  return parse<core::Job>(m->patch(job_path(call.job_id), call.product, core::worker_request_to_json(request)),
                          core::job_from_json);
}

Result<core::Job> RemoteFleet::checkpoint(core::WorkerCall call, const std::string& ref) {
  if (auto ok = core::validate_ref(ref); !ok) return ok.error();
  if (auto ok = core::validate_worker_call(call); !ok) return ok.error();
  auto request = worker_request(core::WorkerRequest::Kind::checkpoint, call);
  request.ref = ref;
  return parse<core::Job>(m->patch(job_path(call.job_id), call.product, core::worker_request_to_json(request)),
                          core::job_from_json);
}

Result<core::Job> RemoteFleet::report(core::WorkerCall call, const core::ReportInput& input) {
  if (auto ok = core::validate_report(input); !ok) return ok.error();
  if (auto ok = core::validate_worker_call(call); !ok) return ok.error();
  auto request = worker_request(core::WorkerRequest::Kind::report, call);
  request.report = input;
  return parse<core::Job>(m->patch(job_path(call.job_id), call.product, core::worker_request_to_json(request)),
                          core::job_from_json);
}

Result<core::Job> RemoteFleet::release(core::WorkerCall call) {
  if (auto ok = core::validate_worker_call(call); !ok) return ok.error();
  auto request = worker_request(core::WorkerRequest::Kind::release, call);
  return parse<core::Job>(m->post(job_path(call.job_id) + "/lease/release", call.product,
                                  core::worker_request_to_json(request)),
                          core::job_from_json);
}

Result<core::Job> RemoteFleet::act(core::OperatorAction action, const std::string& id, const std::string& product) {
  if (auto ok = core::validate_job_id(id); !ok) return ok.error();
  return parse<core::Job>(m->post(job_path(id) + "/actions/" + core::operator_action_name(action), product),
                          core::job_from_json);
}

Result<std::vector<core::Reaped>> RemoteFleet::reap() {
  return parse_list<core::Reaped>(m->post("/api/fleet/reap", ""), "reaped", core::reaped_from_json);
}

Result<std::vector<core::Event>> RemoteFleet::events(const std::string& id, const std::string& product,
                                                     std::int64_t after) {
  if (auto ok = core::validate_job_id(id); !ok) return ok.error();
  // Every sequence number is positive: a negative `after` means all, as 0 does.
  std::string path = job_path(id) + "/events?after=" + std::to_string(std::max<std::int64_t>(after, 0));
  return parse_list<core::Event>(m->get(path, product), "events", core::event_from_json);
}

Result<std::int64_t> RemoteFleet::append_output(core::WorkerCall call, std::int64_t offset, const std::string& text) {
  if (auto ok = core::validate_worker_call(call); !ok) return ok.error();
  if (!core::is_utf8(text)) return core::make_error(core::ErrorCode::usage, "run output must be UTF-8");
  auto request = worker_request(core::WorkerRequest::Kind::output, call);
  request.offset = offset;
  request.text = text;
  auto doc = m->post(job_path(call.job_id) + "/output", call.product, core::worker_request_to_json(request));
  if (!doc) return doc.error();
  if (!doc->is_object() || !(*doc)["end"].is_number_integer()) {
    return core::make_error(core::ErrorCode::error, "the server's answer to an output append has no 'end'");
  }
  return (*doc)["end"].get<std::int64_t>();
}

Result<core::RunOutput> RemoteFleet::output(const std::string& id, const std::string& product,
                                            std::optional<std::int64_t> epoch, std::int64_t from) {
  if (auto ok = core::validate_job_id(id); !ok) return ok.error();
  if (epoch && *epoch < 1) return core::make_error(core::ErrorCode::usage, "--epoch must be a positive integer");
  if (from < 0) return core::make_error(core::ErrorCode::usage, "--from must not be negative");
  std::string path = job_path(id) + "/output?from=" + std::to_string(from);
  if (epoch) path += "&epoch=" + std::to_string(*epoch);
  return parse<core::RunOutput>(m->get(path, product), core::run_output_from_json);
}

// ---- factories -------------------------------------------------------------------

Result<core::FactoryStatus> RemoteFleet::heartbeat(const core::HeartbeatInput& input) {
  return parse<core::FactoryStatus>(
      m->post("/api/fleet/factories/heartbeat", input.product, core::heartbeat_request_to_json(input)),
      core::factory_status_from_json);
}

Result<std::vector<core::FactoryStatus>> RemoteFleet::factories(const std::string& product) {
  return parse_list<core::FactoryStatus>(m->get("/api/fleet/factories", product), "factories",
                                         core::factory_status_from_json);
}

Result<std::vector<core::ExplainRow>> RemoteFleet::explain(const std::string& id, const std::string& product) {
  if (auto ok = core::validate_job_id(id); !ok) return ok.error();
  return parse_list<core::ExplainRow>(m->get(job_path(id) + "/explain", product), "candidates",
                                      core::explain_row_from_json);
}

Result<core::RouterSettings> RemoteFleet::settings(const std::string& product) {
  return parse<core::RouterSettings>(m->get("/api/fleet/weights", product), core::settings_from_json);
}

Result<core::RouterSettings> RemoteFleet::update_settings(const std::string& product,
                                                          const std::vector<std::string>& assignments) {
  return parse<core::RouterSettings>(
      m->patch("/api/fleet/weights", product, core::settings_request_to_json(assignments)), core::settings_from_json);
}

// ---- tokens and metrics -------------------------------------------------------------

Result<core::IssuedToken> RemoteFleet::enroll(const core::EnrollInput& input) {
  if (auto ok = core::validate_name("factory", input.factory); !ok) return ok.error();
  return parse<core::IssuedToken>(
      m->post("/api/fleet/factories/enroll", input.product, core::enroll_request_to_json(input)),
      core::issued_token_from_json);
}

Result<core::IssuedToken> RemoteFleet::rotate_token(const std::string& factory, const std::string& product) {
  if (auto ok = core::validate_name("factory", factory); !ok) return ok.error();
  return parse<core::IssuedToken>(m->post("/api/fleet/factories/" + factory + "/token/rotate", product),
                                  core::issued_token_from_json);
}

Result<core::TokenRecord> RemoteFleet::revoke_token(const std::string& factory, const std::string& product) {
  if (auto ok = core::validate_name("factory", factory); !ok) return ok.error();
  return parse<core::TokenRecord>(m->post("/api/fleet/factories/" + factory + "/token/revoke", product),
                                  core::token_record_from_json);
}

Result<core::FleetMetrics> RemoteFleet::metrics(const std::string& product) {
  return parse<core::FleetMetrics>(m->get("/api/fleet/metrics", product), core::metrics_from_json);
}

}  // namespace gigafab::cli
