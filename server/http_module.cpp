// `gigafab serve`'s HTTP module (see server/http_host.hpp): the HttpHost over
// cpp-httplib, the SSE event stream, and a clean shutdown on SIGTERM/SIGINT
// (stop accepting, finish what is in flight, return). The only translation
// unit that includes httplib.h; built as a module, it uses nothing of the
// binary but what http_host.hpp passes it.
#include "server/http_host.hpp"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <thread>

namespace gigafab::server {

using core::ErrorCode;
using core::make_error;
using core::Result;

namespace {

Request to_request(const httplib::Request& in) {
  Request out;
  out.method = in.method;
  out.path = in.path;
  // The query string from the target itself: httplib also folds a form
  // body's fields into `params`, and a body is never a query here.
  if (auto q = in.target.find('?'); q != std::string::npos) {
    httplib::Params params;
    httplib::detail::parse_query_text(in.target.substr(q + 1), params);
    for (const auto& [key, value] : params) out.query.emplace(key, value);
  }
  for (const auto& [key, value] : in.headers) {
    std::string lower = key;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    out.headers[lower] = value;
  }
  out.body = in.body;
  return out;
}

// Moves the body: a list of 100,000 jobs is about 80 MB, and a copy of it
// would double serve's peak memory while it is sent.
void apply(Response&& from, httplib::Response& to) {
  to.status = from.status;
  for (const auto& [key, value] : from.headers) to.set_header(key, value);
  if (from.stream) {
    auto stream = std::make_shared<decltype(from.stream)>(std::move(from.stream));
    to.set_chunked_content_provider(from.content_type, [stream](std::size_t, httplib::DataSink& sink) {
      std::string part;
      auto more = (*stream)(part);
      if (!more) return false;  // cut short: the client must not take it for the whole body
      if (!part.empty() && !sink.write(part.data(), part.size())) return false;
      if (!*more) sink.done();
      return true;
    });
  } else if (from.status != 204) {
    to.body = std::move(from.body);
    to.headers.erase("Content-Type");
    to.set_header("Content-Type", from.content_type);
  }
}

std::string sse_message(HttpHost& host, const core::Event& event) {
  return "id: " + std::to_string(event.seq) + "\nevent: " + event.type + "\ndata: " + host.event_json(event) + "\n\n";
}

// GET /api/fleet/jobs/:id/events/stream: every event after Last-Event-ID (or
// ?after=N, or from the start), then each new one as it is committed, with a
// comment line every keepalive interval while idle.
void stream_events(HttpHost& api, const ServeOptions& options, const httplib::Request& req, httplib::Response& res) {
  Request request = to_request(req);
  std::string job = req.matches[1];
  std::string resume = request.headers.count("last-event-id") ? request.headers.at("last-event-id") : std::string();
  if (resume.empty() && req.has_param("after")) resume = req.get_param_value("after");
  std::int64_t after = 0;
  if (!resume.empty()) {
    if (resume.size() > 18 || resume.find_first_not_of("0123456789") != std::string::npos) {
      core::Error e = make_error(ErrorCode::usage, "Last-Event-ID must be an event sequence number");
      e.field = "Last-Event-ID";
      apply(api.error_response(api.status_for(e), e), res);
      return;
    }
    after = std::stoll(resume);
  }
  auto access = api.open_stream(request, job);
  if (!access) {
    const core::Error& e = access.error();
    // Authenticated but out of scope is 403; no or bad token is 401.
    bool scoped = e.code == ErrorCode::unauthorized && e.message.rfind("this token", 0) == 0;
    apply(api.error_response(scoped ? 403 : api.status_for(e), e), res);
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto keepalive = std::chrono::seconds(std::max(1, options.keepalive_seconds));
  struct State {
    std::int64_t after;
    std::chrono::steady_clock::time_point last_write;
    bool greeted = false;
  };
  auto state = std::make_shared<State>(State{after, std::chrono::steady_clock::now(), false});
  res.set_chunked_content_provider(
      "text/event-stream", [&api, access = *access, state, keepalive](std::size_t, httplib::DataSink& sink) {
        if (!state->greeted) {
          state->greeted = true;
          std::string hello = "retry: 1000\n\n";
          if (!sink.write(hello.data(), hello.size())) return false;
        }
        std::uint64_t seen = api.change_counter();
        auto events = api.events_after(access, state->after);
        if (!events) {
          sink.done();
          return true;
        }
        std::string out;
        for (const auto& event : *events) {
          out += sse_message(api, event);
          state->after = event.seq;
        }
        auto now = std::chrono::steady_clock::now();
        if (out.empty() && now - state->last_write >= keepalive) out = ": keep-alive\n\n";
        if (!out.empty()) {
          if (!sink.write(out.data(), out.size())) return false;
          state->last_write = now;
        }
        if (api.interrupted()) {
          sink.done();
          return true;
        }
        if (!sink.is_writable()) return false;
        // Woken by this server's own writes at once; a CLI writing to the
        // same store directly is seen on the next poll.
        api.wait_for_change(seen, std::chrono::milliseconds(250));
        return true;
      });
}

Result<void> serve_http(HttpHost& api, const ServeOptions& options) {
  // Block the stop signals here, so every thread the server starts inherits
  // the mask and one thread receives them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  httplib::Server http;
  int threads = std::max(4, options.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  http.set_payload_max_length(options.max_body);
  http.set_keep_alive_max_count(1000);
  http.set_read_timeout(30, 0);
  http.set_tcp_nodelay(true);

  http.Get(R"(/api/fleet/jobs/([^/]+)/events/stream)",
           [&](const httplib::Request& req, httplib::Response& res) { stream_events(api, options, req, res); });
  auto handle = [&](const httplib::Request& req, httplib::Response& res) { apply(api.handle(to_request(req)), res); };
  for (const char* any : {R"(/.*)"}) {
    http.Get(any, handle);
    http.Post(any, handle);
    http.Patch(any, handle);
    http.Put(any, handle);
    http.Delete(any, handle);
  }
  // Statuses httplib answers itself (413 body too large, 400 bad HTTP) get a
  // JSON error body like ours.
  http.set_error_handler([&](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    core::Error e = make_error(res.status == 413 ? ErrorCode::usage : ErrorCode::error,
                               res.status == 413 ? "request body too large (the limit is " +
                                                       std::to_string(options.max_body) + " bytes; see serve --max-body)"
                                                 : "HTTP error " + std::to_string(res.status));
    if (res.status == 413) e.field = "body";
    res.set_content(api.error_json(e) + "\n", "application/json");
  });
  http.set_exception_handler([&api](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(api.error_json(make_error(ErrorCode::error, what)) + "\n", "application/json");
  });

  // cpp-httplib listens with a backlog of 5: a burst of clients connecting
  // at once (a fleet's factories, a bench's 16 clients) overflows it, and each
  // connection past it waits for its SYN to be resent, a second later. Keep
  // the listening socket to listen again with the system's limit.
  socket_t listening = INVALID_SOCKET;
  http.set_socket_options([&listening](socket_t sock) {
    httplib::default_socket_options(sock);
    listening = sock;
  });
  int port = options.port;
  if (port == 0) {
    port = http.bind_to_any_port(options.host);
    if (port <= 0) return make_error(ErrorCode::error, "cannot listen on " + options.host + ": " + std::strerror(errno));
  } else if (!http.bind_to_port(options.host, port)) {
    return make_error(ErrorCode::error, "cannot listen on " + options.host + ":" + std::to_string(port) + ": " +
                                            std::strerror(errno));
  }
  if (listening != INVALID_SOCKET && ::listen(listening, SOMAXCONN) != 0) {
    return make_error(ErrorCode::error, std::string("cannot listen: ") + std::strerror(errno));
  }
  std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  api.listening("http://" + host + ":" + std::to_string(port));

  std::thread stopper([&] {
    int received = 0;
    sigwait(&stop_signals, &received);
    api.interrupt();  // end SSE streams and waiting claims
    http.stop();      // stop accepting; in-flight requests finish
  });
  bool ok = http.listen_after_bind();
  if (!ok && !api.interrupted()) {
    // Listening failed on its own: wake the stopper thread so it can exit.
    pthread_kill(stopper.native_handle(), SIGTERM);
  }
  stopper.join();
  if (!ok && !api.interrupted()) return make_error(ErrorCode::error, "the HTTP server stopped unexpectedly");
  return {};
}

}  // namespace

}  // namespace gigafab::server

extern "C" __attribute__((visibility("default"))) bool gigafab_http_serve(gigafab::server::HttpHost* host,
                                                                          const gigafab::server::ServeOptions* options,
                                                                          std::string* error) {
  auto served = gigafab::server::serve_http(*host, *options);
  if (served) return true;
  *error = served.error().message;
  return false;
}
