// `gigafab serve`: the Api over HTTP (cpp-httplib), the SSE event stream, and
// a clean shutdown on SIGTERM/SIGINT (stop accepting, finish what is in
// flight, return). The HTTP side is a module loaded by serve alone
// (server/http_host.hpp says why).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "core/error.hpp"
#include "server/api.hpp"

namespace gigafab::server {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 7070;                           // 0: any free port
  std::size_t max_body = 1024 * 1024;        // larger bodies get 413
  int keepalive_seconds = 15;                // SSE comment lines while a stream is idle
  int threads = 32;                          // concurrent connections (SSE streams hold one each)
};

// Serves until SIGTERM or SIGINT, then returns ok. `on_listening` gets the
// URL once the socket is bound (with the real port when port was 0).
core::Result<void> serve(Api& api, const ServeOptions& options, const std::function<void(const std::string& url)>& on_listening);

// Loads serve's HTTP module (embedded in the binary) from an in-memory file
// or from a temporary file, and returns its dlopen handle. serve() tries the
// first, then the second.
enum class ModuleVia { memory, temp_file };
core::Result<void*> load_http_module(ModuleVia via);

// "HOST:PORT", ":PORT" or "PORT" -> options.host/port; usage error otherwise.
core::Result<void> parse_listen(const std::string& text, ServeOptions& options);

}  // namespace gigafab::server
