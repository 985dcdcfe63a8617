// A job's worktree: a clone of the job's repository in which the engine
// works, on the branch gigafab/<job-id>. Everything goes through the git CLI,
// so the user's credential helpers and ssh setup apply.
#pragma once

#include <string>

#include "core/error.hpp"
#include "core/job.hpp"

namespace gigafab::cli::agent {

using core::Result;

// "gigafab/<job-id>": the branch an agent pushes a job's work to.
std::string job_branch(const std::string& job_id);

// Clones job.repo.url into `dir` (which must not exist) and checks out the
// branch job_branch(job.id) at: that branch of origin when it exists (work an
// earlier attempt pushed: a resume, checkpoint recorded or not), else repo.base (a branch, tag or
// commit), else the remote's HEAD. Error with git's words when the clone or
// checkout fails; `resumed` says whether it started from the checkpoint.
Result<void> prepare_worktree(const core::Job& job, const std::string& dir, bool& resumed);

// Commits everything in `dir` (as "gigafab agent"; nothing when clean) and
// pushes HEAD to refs/heads/gigafab/<job-id> of origin. Error with git's words
// otherwise; the worktree is left as it is.
Result<void> save_worktree(const std::string& job_id, const std::string& dir, const std::string& message);

}  // namespace gigafab::cli::agent
