// Unit tests for server/http.hpp: serve's HTTP module, embedded in the binary,
// loads both ways serve tries (an in-memory file, then a temporary file) and
// has its entry point. (e2e test_serve: the binary does not load httplib
// until it serves.)
#include <doctest/doctest.h>

#include <dlfcn.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "server/http.hpp"
#include "server/http_host.hpp"

using namespace gigafab;

TEST_CASE("serve's HTTP module loads from memory and from a temporary file, and has its entry point") {
  for (auto via : {server::ModuleVia::memory, server::ModuleVia::temp_file}) {
    CAPTURE(static_cast<int>(via));
    auto module = server::load_http_module(via);
    REQUIRE_MESSAGE(module.ok(), (module.ok() ? "" : module.error().message));
    CHECK(::dlsym(*module, server::k_http_serve_symbol) != nullptr);
  }
  // The temporary file is gone once loaded.
  char pattern[] = "/tmp/gigafab-http-tmp-XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  const std::string dir = pattern;
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  ::setenv("TMPDIR", dir.c_str(), 1);
  auto module = server::load_http_module(server::ModuleVia::temp_file);
  if (old) ::setenv("TMPDIR", saved.c_str(), 1); else ::unsetenv("TMPDIR");
  REQUIRE(module.ok());
  CHECK(std::filesystem::is_empty(dir));
  std::filesystem::remove_all(dir);
  // Where it cannot be written, the error says so.
  ::setenv("TMPDIR", "/nonexistent-gigafab-dir", 1);
  auto refused = server::load_http_module(server::ModuleVia::temp_file);
  if (old) ::setenv("TMPDIR", saved.c_str(), 1); else ::unsetenv("TMPDIR");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("cannot create the HTTP module in /nonexistent-gigafab-dir") != std::string::npos);
}
