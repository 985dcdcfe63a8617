#include "gitstore/tls_certificates.hpp"

#include <mutex>

#if GIGAFAB_STATIC_LIBGIT2
// Linked with --wrap=<name> (gitstore/CMakeLists.txt): libgit2's calls to
// <name> reach __wrap_<name>, defined below; mbedTLS's own is __real_<name>.
#define GIGAFAB_MBEDTLS_ENTRY(name) __wrap_##name
extern "C" int __real_mbedtls_x509_crt_parse_file(void* chain, const char* path);
extern "C" int __real_mbedtls_ssl_handshake(void* ssl);
#else
// Exported from the executable, ahead of libmbedtls's definitions.
#include <dlfcn.h>
#define GIGAFAB_MBEDTLS_ENTRY(name) name
#endif

namespace gigafab::gitstore::tls {

namespace {

// mbedTLS's own functions.
using ParseFile = int (*)(void* chain, const char* path);
using Handshake = int (*)(void* ssl);

#if GIGAFAB_STATIC_LIBGIT2
ParseFile real_parse_file() { return &__real_mbedtls_x509_crt_parse_file; }
Handshake real_handshake() { return &__real_mbedtls_ssl_handshake; }
#else
// The next definitions after ours.
ParseFile real_parse_file() {
  static ParseFile f = reinterpret_cast<ParseFile>(::dlsym(RTLD_NEXT, "mbedtls_x509_crt_parse_file"));
  return f;
}

Handshake real_handshake() {
  static Handshake f = reinterpret_cast<Handshake>(::dlsym(RTLD_NEXT, "mbedtls_ssl_handshake"));
  return f;
}
#endif

struct State {
  std::mutex mutex;
  bool first_seen = false;
  void* chain = nullptr;  // libgit2's CA chain (static storage in libgit2)
  Deferred deferred;
};

State& state() {
  static State* s = new State;  // never destroyed: handshakes may run during exit
  return *s;
}

}  // namespace

void install() {}

Deferred deferred() {
  std::lock_guard lock(state().mutex);
  return state().deferred;
}

void load_deferred() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (!s.chain || s.deferred.parsed) return;
  s.deferred.parsed = true;
  ParseFile parse = real_parse_file();
  s.deferred.result = parse ? parse(s.chain, s.deferred.path.c_str()) : -1;
}

}  // namespace gigafab::gitstore::tls

using gigafab::gitstore::tls::Handshake;
using gigafab::gitstore::tls::load_deferred;
using gigafab::gitstore::tls::ParseFile;
using gigafab::gitstore::tls::real_handshake;
using gigafab::gitstore::tls::real_parse_file;
using gigafab::gitstore::tls::state;

// MBEDTLS_ERR_X509_BAD_INPUT_DATA and MBEDTLS_ERR_SSL_BAD_INPUT_DATA: no
// mbedTLS to call (never the case when libgit2 called us).
constexpr int k_x509_bad_input = -0x2800;
constexpr int k_ssl_bad_input = -0x7100;

extern "C" __attribute__((visibility("default"))) int GIGAFAB_MBEDTLS_ENTRY(mbedtls_x509_crt_parse_file)(void* chain,
                                                                                               const char* path) {
  {
    auto& s = state();
    std::lock_guard lock(s.mutex);
    if (!s.first_seen && chain && path) {
      // libgit2's global init loading the system's bundle: later.
      s.first_seen = true;
      s.chain = chain;
      s.deferred.path = path;
      return 0;
    }
    s.first_seen = true;
    if (chain == s.chain && !s.deferred.parsed) {
      // libgit2 replacing its certificates (GIT_OPT_SET_SSL_CERT_LOCATIONS):
      // it has emptied the chain, and the deferred file is not wanted.
      s.deferred.parsed = true;
      s.deferred.result = 0;
    }
  }
  ParseFile parse = real_parse_file();
  return parse ? parse(chain, path) : k_x509_bad_input;
}

extern "C" __attribute__((visibility("default"))) int GIGAFAB_MBEDTLS_ENTRY(mbedtls_ssl_handshake)(void* ssl) {
  load_deferred();
  Handshake handshake = real_handshake();
  return handshake ? handshake(ssl) : k_ssl_bad_input;
}
