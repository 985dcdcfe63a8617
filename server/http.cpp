#include "server/http.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/wire.hpp"
#include "server/http_host.hpp"

// The HTTP module's bytes, linked in by server/CMakeLists.txt (ld -b binary).
extern "C" const char _binary_gigafab_http_module_start[];
extern "C" const char _binary_gigafab_http_module_end[];

namespace gigafab::server {

using core::ErrorCode;
using core::make_error;
using core::Result;

namespace {

// The Api as the HTTP module sees it.
class ApiHost final : public HttpHost {
 public:
  ApiHost(Api& api, const std::function<void(const std::string&)>& on_listening)
      : m_api(api), m_on_listening(on_listening) {}
  Response handle(const Request& request) override { return m_api.handle(request); }
  Result<Api::StreamAccess> open_stream(const Request& request, const std::string& job_id) override {
    return m_api.open_stream(request, job_id);
  }
  Result<std::vector<core::Event>> events_after(const Api::StreamAccess& access, std::int64_t after) override {
    return m_api.events_after(access, after);
  }
  std::uint64_t change_counter() override { return m_api.change_counter(); }
  std::uint64_t wait_for_change(std::uint64_t seen, std::chrono::milliseconds timeout) override {
    return m_api.wait_for_change(seen, timeout);
  }
  void interrupt() override { m_api.interrupt(); }
  bool interrupted() override { return m_api.interrupted(); }
  std::string event_json(const core::Event& event) override { return core::event_to_json(event).dump(); }
  std::string error_json(const core::Error& error) override { return core::error_to_json(error).dump(); }
  Response error_response(int status, const core::Error& error) override {
    return server::error_response(status, error);
  }
  int status_for(const core::Error& error) override { return server::status_for(error); }
  void listening(const std::string& url) override { m_on_listening(url); }

 private:
  Api& m_api;
  const std::function<void(const std::string&)>& m_on_listening;
};

std::string dl_failure() {
  const char* e = ::dlerror();
  return e ? e : "unknown error";
}

// Writes the module into `fd` and loads it from `path` (which names fd's file).
Result<void*> load_from(int fd, const std::string& path) {
  const char* at = _binary_gigafab_http_module_start;
  std::size_t left = static_cast<std::size_t>(_binary_gigafab_http_module_end - _binary_gigafab_http_module_start);
  while (left > 0) {
    ssize_t n = ::write(fd, at, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error(ErrorCode::error, std::string("cannot write the HTTP module: ") + std::strerror(errno));
    at += n;
    left -= static_cast<std::size_t>(n);
  }
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return make_error(ErrorCode::error, "cannot load the HTTP module: " + dl_failure());
  return handle;
}

}  // namespace

Result<void*> load_http_module(ModuleVia via) {
  if (via == ModuleVia::memory) {
    // MFD_EXEC (Linux 6.3) where memfds are not executable by default.
    int fd = ::memfd_create("gigafab-http", MFD_CLOEXEC | 0x0010U /* MFD_EXEC */);
    if (fd < 0 && errno == EINVAL) fd = ::memfd_create("gigafab-http", MFD_CLOEXEC);
    if (fd < 0) return make_error(ErrorCode::error, std::string("cannot create the HTTP module: ") + std::strerror(errno));
    auto loaded = load_from(fd, "/proc/self/fd/" + std::to_string(fd));
    ::close(fd);  // the mapping keeps it
    return loaded;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string path = std::string(tmp && *tmp ? tmp : "/tmp") + "/gigafab-http-XXXXXX";
  int fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::error, "cannot create the HTTP module in " + path + ": " + std::strerror(errno));
  auto loaded = load_from(fd, path);
  ::close(fd);
  ::unlink(path.c_str());  // the mapping keeps it
  return loaded;
}

Result<void> parse_listen(const std::string& text, ServeOptions& options) {
  std::string host = options.host;
  std::string port = text;
  if (auto colon = text.rfind(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "127.0.0.1";
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    return make_error(ErrorCode::usage, "--listen wants HOST:PORT (e.g. 127.0.0.1:7070), not '" + text + "'");
  }
  options.host = host;
  options.port = std::stoi(port);
  return {};
}

Result<void> serve(Api& api, const ServeOptions& options, const std::function<void(const std::string&)>& on_listening) {
  // From memory; where /proc or executable memory is not to be had, from a
  // file in TMPDIR removed as soon as it is loaded.
  auto module = load_http_module(ModuleVia::memory);
  if (!module) {
    auto from_file = load_http_module(ModuleVia::temp_file);
    if (!from_file) return make_error(ErrorCode::error, module.error().message + "; " + from_file.error().message);
    module = from_file;
  }
  auto entry = reinterpret_cast<HttpServeFn>(::dlsym(*module, k_http_serve_symbol));
  if (!entry) return make_error(ErrorCode::error, "the HTTP module has no entry point: " + dl_failure());
  ApiHost host(api, on_listening);
  std::string error;
  if (!entry(&host, &options, &error)) return make_error(ErrorCode::error, error);
  return {};
}

}  // namespace gigafab::server
