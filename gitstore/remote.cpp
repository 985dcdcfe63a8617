#include "gitstore/remote.hpp"

#include <git2.h>

#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <unistd.h>

namespace gigafab::gitstore::remote {

namespace fs = std::filesystem;
using core::ErrorCode;
using core::make_error;
using core::Result;

namespace {

std::string last_git_error() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown error";
}

core::Error unreachable(const Endpoint& remote, const std::string& why) {
  // libgit2 messages may quote the URL; never show its user-info.
  std::string message = why;
  std::string full = remote.url, safe = redact(remote.url);
  for (std::size_t at; full != safe && (at = message.find(full)) != std::string::npos;) {
    message.replace(at, full.size(), safe);
  }
  if (auto at = full.find('@'); at != std::string::npos && full.find("://") != std::string::npos) {
    std::string userinfo = full.substr(full.find("://") + 3, at - full.find("://") - 3);
    for (std::size_t p; !userinfo.empty() && (p = message.find(userinfo)) != std::string::npos;) {
      message.replace(p, userinfo.size(), "***");
    }
  }
  return make_error(ErrorCode::error, "remote '" + remote.name + "' unreachable: " + message);
}

// A path on this machine: "/srv/fleet.git", "../fleet", "file:///srv/fleet.git".
std::optional<std::string> local_path(const std::string& url) {
  if (url.rfind("file://", 0) == 0) return url.substr(7);
  if (url.find("://") != std::string::npos) return std::nullopt;
  // scp-style "host:path" (a colon before any slash) is ssh
  auto colon = url.find(':');
  auto slash = url.find('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon < slash)) return std::nullopt;
  return url;
}

struct CredentialState {
  int attempts = 0;
};

// Runs `git credential fill` for the URL's protocol and host; user and password.
std::optional<std::pair<std::string, std::string>> credential_helper(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;
  std::string protocol = url.substr(0, scheme_end);
  std::string rest = url.substr(scheme_end + 3);
  if (auto at = rest.find('@'); at != std::string::npos && at < rest.find('/')) rest = rest.substr(at + 1);
  std::string host = rest.substr(0, rest.find('/'));
  for (char c : protocol + host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':') return std::nullopt;
  }
  std::string command = "printf 'protocol=" + protocol + "\\nhost=" + host +
                        "\\n\\n' | GIT_TERMINAL_PROMPT=0 git credential fill 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return std::nullopt;
  std::string out;
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  ::pclose(pipe);
  std::string user, pass;
  std::size_t pos = 0;
  while (pos < out.size()) {
    std::size_t end = out.find('\n', pos);
    std::string line = out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (line.rfind("username=", 0) == 0) user = line.substr(9);
    if (line.rfind("password=", 0) == 0) pass = line.substr(9);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (pass.empty()) return std::nullopt;
  return std::make_pair(user, pass);
}

int acquire_credentials(git_credential** out, const char* url, const char* username_from_url, unsigned int allowed,
                        void* payload) {
  auto* state = static_cast<CredentialState*>(payload);
  if (++state->attempts > 2) return GIT_EUSER;  // wrong credentials: stop, do not loop
  const char* user = username_from_url && *username_from_url ? username_from_url : nullptr;
  if (allowed & GIT_CREDENTIAL_SSH_KEY) {
    if (const char* key = std::getenv("GIGAFAB_SSH_KEY"); key && *key) {
      return git_credential_ssh_key_new(out, user ? user : "git", nullptr, key, std::getenv("GIGAFAB_SSH_PASSPHRASE"));
    }
    return git_credential_ssh_key_from_agent(out, user ? user : "git");
  }
  if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
    if (const char* token = std::getenv("GIGAFAB_GIT_TOKEN"); token && *token) {
      const char* name = std::getenv("GIGAFAB_GIT_USER");
      return git_credential_userpass_plaintext_new(out, name && *name ? name : (user ? user : "x-access-token"), token);
    }
    if (auto helper = credential_helper(url)) {
      return git_credential_userpass_plaintext_new(out, helper->first.empty() ? (user ? user : "git") : helper->first.c_str(),
                                                   helper->second.c_str());
    }
  }
  if (allowed & GIT_CREDENTIAL_USERNAME) return git_credential_username_new(out, user ? user : "git");
  return GIT_PASSTHROUGH;
}

struct RemoteHandle {
  git_remote* ptr = nullptr;
  ~RemoteHandle() {
    if (ptr) git_remote_free(ptr);
  }
};

struct PushState {
  CredentialState credentials;
  std::string rejection;  // the server's reason, when it refused the update
};

int on_push_update(const char*, const char* status, void* payload) {
  if (status) static_cast<PushState*>(payload)->rejection = status;
  return 0;
}

int credentials_for_push(git_credential** out, const char* url, const char* user, unsigned int allowed, void* payload) {
  return acquire_credentials(out, url, user, allowed, &static_cast<PushState*>(payload)->credentials);
}

// The direct push to a repository on this machine (see the file comment).
Result<Pushed> push_to_path(git_repository* repo, const Endpoint& remote, const std::string& path, const char* ref,
                            const git_oid& commit, const git_oid* expected, bool force) {
  git_repository* target = nullptr;
  if (git_repository_open_bare(&target, path.c_str()) < 0) return unreachable(remote, last_git_error());
  std::unique_ptr<git_repository, void (*)(git_repository*)> guard(target, git_repository_free);
  // The objects of `commit` that `expected` lacks, as one pack in the target.
  git_revwalk* walk = nullptr;
  git_packbuilder* builder = nullptr;
  int rc = git_revwalk_new(&walk, repo);
  if (rc == 0) rc = git_revwalk_push(walk, &commit);
  if (rc == 0 && expected) rc = git_revwalk_hide(walk, expected);
  if (rc == 0) rc = git_packbuilder_new(&builder, repo);
  if (rc == 0) rc = git_packbuilder_insert_walk(builder, walk);
  std::string pack_dir = std::string(git_repository_path(target)) + "objects/pack";
  if (rc == 0) rc = git_packbuilder_write(builder, pack_dir.c_str(), 0, nullptr, nullptr);
  std::string error = rc < 0 ? last_git_error() : "";
  if (builder) git_packbuilder_free(builder);
  if (walk) git_revwalk_free(walk);
  if (rc < 0) return unreachable(remote, "cannot write objects: " + error);
  // The target's object database caches its pack list; refresh it so the
  // ref update below can see the new objects.
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, target) == 0) {
    git_odb_refresh(odb);
    git_odb_free(odb);
  }
  git_reference* out = nullptr;
  if (force) {
    rc = git_reference_create(&out, target, ref, &commit, 1, "gigafab push");
  } else if (expected) {
    rc = git_reference_create_matching(&out, target, ref, &commit, 1, expected, "gigafab push");
  } else {
    rc = git_reference_create(&out, target, ref, &commit, 0, "gigafab push");
  }
  if (out) git_reference_free(out);
  if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS || rc == GIT_ELOCKED) return Pushed::rejected;
  if (rc < 0) return unreachable(remote, last_git_error());
  return Pushed::ok;
}

}  // namespace

std::string redact(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto host_start = scheme + 3;
  auto at = url.find('@', host_start);
  auto slash = url.find('/', host_start);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) return url;
  return url.substr(0, host_start) + url.substr(at + 1);
}

Result<Endpoint> lookup(git_repository* repo, const std::string& name) {
  RemoteHandle handle;
  if (git_remote_lookup(&handle.ptr, repo, name.c_str()) < 0) {
    return make_error(ErrorCode::not_found, "no remote named '" + name + "' (gigafab remote list shows them)");
  }
  const char* url = git_remote_url(handle.ptr);
  return Endpoint{name, url ? url : ""};
}

Result<void> fetch(git_repository* repo, const Endpoint& remote, const std::string& into) {
  RemoteHandle handle;
  if (git_remote_create_anonymous(&handle.ptr, repo, remote.url.c_str()) < 0) {
    return unreachable(remote, last_git_error());
  }
  CredentialState credentials;
  git_fetch_options options = GIT_FETCH_OPTIONS_INIT;
  options.callbacks.credentials = acquire_credentials;
  options.callbacks.payload = &credentials;
  options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  options.update_fetchhead = 0;
  options.prune = GIT_FETCH_NO_PRUNE;
  std::string spec = "+refs/gigafab/*:" + into + "*";
  char* specs[] = {spec.data()};
  git_strarray refspecs{specs, 1};
  if (git_remote_fetch(handle.ptr, &refspecs, &options, nullptr) < 0) return unreachable(remote, last_git_error());
  return {};
}

Result<Pushed> push(git_repository* repo, const Endpoint& remote, const char* ref, const git_oid& commit,
                    const git_oid* expected, bool force) {
  if (auto path = local_path(remote.url)) return push_to_path(repo, remote, *path, ref, commit, expected, force);
  // libgit2 pushes refs, not ids: name the commit with a scratch ref.
  std::string scratch = "refs/gigafab-push/" + std::to_string(::getpid());
  git_reference* tmp = nullptr;
  if (git_reference_create(&tmp, repo, scratch.c_str(), &commit, 1, nullptr) < 0) {
    return make_error(ErrorCode::error, "cannot prepare push: " + last_git_error());
  }
  git_reference_free(tmp);
  struct Cleanup {
    git_repository* repo;
    std::string name;
    ~Cleanup() {
      git_reference* r = nullptr;
      if (git_reference_lookup(&r, repo, name.c_str()) == 0) {
        git_reference_delete(r);
        git_reference_free(r);
      }
    }
  } cleanup{repo, scratch};

  RemoteHandle handle;
  if (git_remote_create_anonymous(&handle.ptr, repo, remote.url.c_str()) < 0) {
    return unreachable(remote, last_git_error());
  }
  PushState state;
  git_push_options options = GIT_PUSH_OPTIONS_INIT;
  options.callbacks.credentials = credentials_for_push;
  options.callbacks.push_update_reference = on_push_update;
  options.callbacks.payload = &state;
  std::string spec = (force ? "+" : "") + scratch + ":" + ref;
  char* specs[] = {spec.data()};
  git_strarray refspecs{specs, 1};
  int rc = git_remote_push(handle.ptr, &refspecs, &options);
  if (rc == GIT_ENONFASTFORWARD) return Pushed::rejected;  // seen by the client from the advertised refs
  if (rc < 0) return unreachable(remote, last_git_error());
  if (!state.rejection.empty()) {
    // The ref moved meanwhile (the CAS lost): fetch and re-run. Any other
    // refusal (permissions, hooks) is an error to show.
    const std::string& why = state.rejection;
    for (const char* moved : {"fast-forward", "fetch first", "stale", "lock", "already exists", "failed to update ref"}) {
      if (why.find(moved) != std::string::npos) return Pushed::rejected;
    }
    return make_error(ErrorCode::error, "remote '" + remote.name + "' refused the update of " + ref + ": " + why);
  }
  return Pushed::ok;
}

}  // namespace gigafab::gitstore::remote
