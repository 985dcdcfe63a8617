// Talking to the git remote that coordinates a fleet across hosts.
//
// A fetch copies the remote's refs/gigafab/* over the local ones: the remote
// is the truth, the local store a cache of it plus the objects of writes in
// flight. A push is the network form of the compare-and-swap: the commit we
// push has the tip we fetched as its parent, so it is a fast-forward only if
// nobody else moved the ref meanwhile, and every git server rejects the
// others. We never merge: a rejected push means fetch and re-run.
//
// For a remote that is a path on this machine (or file://), the push is done
// directly: the new objects are written to the remote repository as one pack
// and its ref is moved with libgit2's compare-and-swap on the ref file, the
// same atomic update a local write uses. Other URLs (git://, ssh://, scp-style,
// https://) go through libgit2's transports, where the server's receive-pack
// compares the old value under its own lock.
//
// Credentials: ssh uses the agent, or GIGAFAB_SSH_KEY (+ GIGAFAB_SSH_PASSPHRASE);
// https uses GIGAFAB_GIT_TOKEN (user GIGAFAB_GIT_USER, default "x-access-token")
// or `git credential fill`. They never appear in messages: URLs are shown
// without their user-info part.
#pragma once

#include <string>

#include "core/error.hpp"

struct git_repository;
struct git_oid;

namespace gigafab::gitstore::remote {

struct Endpoint {
  std::string name;
  std::string url;
};

// The remote named `name` in the repository's config; not_found otherwise.
core::Result<Endpoint> lookup(git_repository* repo, const std::string& name);

// Copies the remote's refs/gigafab/* (forced) over the local ones, or under
// `into` instead ("refs/gigafab-incoming/"). An error names the remote:
// "remote 'origin' unreachable: ...".
core::Result<void> fetch(git_repository* repo, const Endpoint& remote, const std::string& into = "refs/gigafab/");

enum class Pushed { ok, rejected };
// Moves the remote's `ref` to `commit` if it still points at `expected`
// (nullptr: if it does not exist yet); `force` skips the check (liveness).
// rejected when the ref moved: fetch and re-run.
core::Result<Pushed> push(git_repository* repo, const Endpoint& remote, const char* ref, const git_oid& commit,
                          const git_oid* expected, bool force);

// `url` without user-info ("https://user:token@host/x" -> "https://host/x").
std::string redact(const std::string& url);

}  // namespace gigafab::gitstore::remote
