#include "gitstore/ref_lock.hpp"
#include "gitstore/fd_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace gigafab::gitstore {

using core::ErrorCode;
using core::make_error;

core::Result<RefLock> RefLock::take(git_repository* repo, const std::string& git_dir, const char* ref,
                                    const git_oid* expected, const git_oid& next) {
  std::string ref_path = git_dir + "/" + ref;
  std::string lock_path = ref_path + ".lock";
  if (!expected) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(ref_path).parent_path(), ec);
  }
  int fd = ::open(lock_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) return RefLock(State::busy, std::move(ref_path), -1);
  if (fd < 0) return make_error(ErrorCode::error, "cannot create " + lock_path + ": " + std::strerror(errno));
  RefLock lock(State::held, std::move(ref_path), fd);
  // Under the lock nobody else can move the ref: what it holds now is what
  // the new value replaces (a loose ref, or packed-refs' entry).
  git_oid current;
  int rc = git_reference_name_to_id(&current, repo, ref);
  if (rc < 0 && rc != GIT_ENOTFOUND) {
    const git_error* e = git_error_last();
    return make_error(ErrorCode::error, "cannot read " + std::string(ref) + ": " + (e ? e->message : "unknown error"));
  }
  const bool matches = expected ? rc == 0 && git_oid_equal(&current, expected) : rc == GIT_ENOTFOUND;
  if (!matches) {
    ::close(lock.m_fd);
    lock.m_fd = -1;
    ::unlink(lock_path.c_str());
    lock.m_state = State::moved;
    return lock;
  }
  char line[GIT_OID_HEXSZ + 1];
  git_oid_fmt(line, &next);
  line[GIT_OID_HEXSZ] = '\n';
  if (!fd_io::write_all(lock.m_fd, std::string_view(line, sizeof line))) {
    return make_error(ErrorCode::error, "cannot write " + lock_path + ": " + std::strerror(errno));
  }
  return lock;
}

RefLock::RefLock(RefLock&& other) noexcept
    : m_state(other.m_state), m_ref_path(std::move(other.m_ref_path)), m_fd(other.m_fd) {
  other.m_fd = -1;
}

RefLock::~RefLock() {
  if (m_fd < 0) return;
  ::close(m_fd);
  ::unlink((m_ref_path + ".lock").c_str());
}

core::Result<void> RefLock::commit(bool durable, bool synced) {
  if (m_fd < 0) return make_error(ErrorCode::error, "the lock on " + m_ref_path + " is not held");
  const std::string lock_path = m_ref_path + ".lock";
  if (durable && !synced && ::fsync(m_fd) != 0) {
    return make_error(ErrorCode::error, "cannot sync " + lock_path + ": " + std::strerror(errno));
  }
  ::close(m_fd);
  m_fd = -1;
  // The old value's file is freed later, not by the rename (see close_later).
  const int replaced = fd_io::hold_for_close_later(m_ref_path);
  if (::rename(lock_path.c_str(), m_ref_path.c_str()) != 0) {
    const int err = errno;
    if (replaced >= 0) ::close(replaced);
    ::unlink(lock_path.c_str());
    return make_error(ErrorCode::error, "cannot move " + lock_path + " into place: " + std::strerror(err));
  }
  fd_io::close_later(replaced);
  const std::string dir = std::filesystem::path(m_ref_path).parent_path().string();
  if (durable && !fd_io::fsync_path(dir, true)) {
    return make_error(ErrorCode::error, "cannot sync " + dir + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace gigafab::gitstore
