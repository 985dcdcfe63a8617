// The seam between `gigafab serve` and its HTTP module. cpp-httplib (and the
// OpenSSL and brotli libraries it is built with) took 3-5 ms of every
// process's start that linked them (1-2 ms of a command that opens a store;
// docs/PERFORMANCE.md); so the binary does not link
// them: server/http_module.cpp, the only code that uses httplib, is built as
// a module that is embedded in the binary and loaded by `serve` alone
// (server/http.cpp). The module calls back into the binary only through
// HttpHost's virtual functions, so it needs none of the binary's symbols;
// what it shares with it is header-only (Request, Response, Result, Event).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/records.hpp"
#include "server/api.hpp"
#include "server/http.hpp"

namespace gigafab::server {

class HttpHost {
 public:
  virtual Response handle(const Request& request) = 0;
  virtual core::Result<Api::StreamAccess> open_stream(const Request& request, const std::string& job_id) = 0;
  virtual core::Result<std::vector<core::Event>> events_after(const Api::StreamAccess& access, std::int64_t after) = 0;
  virtual std::uint64_t change_counter() = 0;
  virtual std::uint64_t wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) = 0;
  virtual void interrupt() = 0;
  virtual bool interrupted() = 0;
  // JSON texts and error answers, as the Api writes them.
  virtual std::string event_json(const core::Event& event) = 0;
  virtual std::string error_json(const core::Error& error) = 0;
  virtual Response error_response(int status, const core::Error& error) = 0;
  virtual int status_for(const core::Error& error) = 0;
  // The socket is bound: `url` has the real port.
  virtual void listening(const std::string& url) = 0;

 protected:
  ~HttpHost() = default;
};

// The module's entry point, found by this name: serves until SIGTERM or
// SIGINT; false with `error` set when it could not listen or stopped on its
// own.
inline constexpr const char* k_http_serve_symbol = "gigafab_http_serve";
using HttpServeFn = bool (*)(HttpHost* host, const ServeOptions* options, std::string* error);

}  // namespace gigafab::server
