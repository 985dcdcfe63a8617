// The CA certificates libgit2 trusts for https remotes, parsed when a TLS
// handshake first needs them rather than by every process at start-up.
//
// libgit2 as Debian builds it (on mbedTLS) parses the system's whole CA
// bundle inside git_libgit2_init: 144 certificates, 6 ms of CPU, in every
// gigafab process (a `gigafab show` took 17.5 ms, of which this was a third),
// though only a fetch or push over https ever uses them. gigafab's binaries
// define the two mbedTLS entry points libgit2 calls for that, ahead of
// mbedTLS's own (linked statically, the linker sends libgit2's calls to
// them with --wrap; linked to the shared libraries, they are exported from
// the executable, so the dynamic linker binds libgit2's calls to them):
// the first certificate file libgit2 loads is
// remembered and left unparsed, and it is parsed, into the very chain
// libgit2 configured, before the first handshake. A handshake never runs
// without the certificates (without them it would fail, not trust blindly).
// With a libgit2 built on OpenSSL nothing of this is called.
#pragma once

#include <string>

namespace gigafab::gitstore::tls {

// Links this file's definitions into the binary (ensure_libgit2 calls it).
void install();

// The certificate file whose parsing waits for a handshake ("" for none), and
// whether it has been parsed since.
struct Deferred {
  std::string path;
  bool parsed = false;
  int result = 0;  // mbedTLS's: 0, or how many certificates it could not parse (negative: failed)
};
Deferred deferred();

// Parses the deferred file now (once; what a handshake does first).
void load_deferred();

}  // namespace gigafab::gitstore::tls
