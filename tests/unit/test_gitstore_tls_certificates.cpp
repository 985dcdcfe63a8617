// Unit tests for gitstore/tls_certificates.hpp: the CA bundle libgit2 loads
// at start-up is parsed by the first TLS handshake instead, by mbedTLS itself
// and into libgit2's chain, and libgit2's later explicit loads go through.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <git2.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include "gitstore/store.hpp"
#include "gitstore/tls_certificates.hpp"

using namespace gigafab;

TEST_CASE("the CA bundle waits for the first TLS handshake, which parses it with mbedTLS before it runs") {
  // Any store operation initialises libgit2.
  char dir[] = "/tmp/gigafab-tls-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  REQUIRE(gitstore::Store::init(std::string(dir) + "/store", gitstore::InitOptions{false}, "tester").ok());

  const bool has_bundle = [] {
    struct stat st {};
    return ::stat("/etc/ssl/certs/ca-certificates.crt", &st) == 0;
  }();
  auto before = gitstore::tls::deferred();
  if (!has_bundle || (git_libgit2_features() & GIT_FEATURE_HTTPS) == 0) {
    MESSAGE("no CA bundle or no https in this libgit2: nothing is deferred");
    CHECK_FALSE(before.parsed);
    std::filesystem::remove_all(dir);
    return;
  }
  CHECK(before.path == "/etc/ssl/certs/ca-certificates.crt");
  CHECK_FALSE(before.parsed);

  // A server that accepts and hangs up: libgit2 connects, then starts a TLS
  // handshake (which fails).
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  std::thread server([&] {
    int c = ::accept(listener, nullptr, nullptr);
    if (c >= 0) ::close(c);
  });
  git_remote* remote = nullptr;
  const std::string url = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/store.git";
  REQUIRE(git_remote_create_detached(&remote, url.c_str()) == 0);
  CHECK(git_remote_connect(remote, GIT_DIRECTION_FETCH, nullptr, nullptr, nullptr) < 0);
  git_remote_free(remote);
  server.join();
  ::close(listener);

  auto after = gitstore::tls::deferred();
  CHECK(after.parsed);
  CHECK(after.result == 0);  // every certificate of the bundle parsed

  // libgit2's own later loads reach mbedTLS: a file that is no bundle fails.
  const std::string bogus = std::string(dir) + "/bogus.pem";
  FILE* f = std::fopen(bogus.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs("not a certificate\n", f);
  std::fclose(f);
  CHECK(git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, bogus.c_str(), nullptr) < 0);
  CHECK(std::string(git_error_last()->message).find("failed to load CA certificates") != std::string::npos);
  // Back to the system's bundle for whatever runs next in this process.
  CHECK(git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, "/etc/ssl/certs/ca-certificates.crt", nullptr) == 0);
  std::filesystem::remove_all(dir);
}
