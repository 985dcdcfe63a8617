#include "cli/agent/worktree.hpp"

#include <filesystem>

#include "cli/agent/process.hpp"

namespace gigafab::cli::agent {

using core::ErrorCode;
using core::make_error;

namespace {

const std::map<std::string, std::string>& git_env() {
  static const std::map<std::string, std::string> env = {
      {"GIT_TERMINAL_PROMPT", "0"},
      {"GIT_AUTHOR_NAME", "gigafab agent"},
      {"GIT_AUTHOR_EMAIL", "agent@gigafab.invalid"},
      {"GIT_COMMITTER_NAME", "gigafab agent"},
      {"GIT_COMMITTER_EMAIL", "agent@gigafab.invalid"},
  };
  return env;
}

Captured git(const std::string& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "git");
  return run_captured(Command{std::move(args), dir, git_env()});
}

std::string last_line(const std::string& text) {
  std::string s = text;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

core::Error git_error(const std::string& what, const Captured& c) {
  std::string why = last_line(c.output);
  return make_error(ErrorCode::error, what + ": " + (why.empty() ? "git exited with " + std::to_string(c.status) : why));
}

}  // namespace

std::string job_branch(const std::string& job_id) { return "gigafab/" + job_id; }

Result<void> prepare_worktree(const core::Job& job, const std::string& dir, bool& resumed) {
  resumed = false;
  if (job.repo.url.empty()) return make_error(ErrorCode::usage, "job " + job.id + " names no repository ([repo] url)");
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) return make_error(ErrorCode::error, "worktree '" + dir + "' already exists");
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  auto clone = git("", {"clone", "--quiet", "--no-checkout", "--", job.repo.url, dir});
  if (clone.status != 0) return git_error("cannot clone " + job.repo.url, clone);
  std::string branch = job_branch(job.id);
  std::string start;
  if (git(dir, {"rev-parse", "--verify", "--quiet", "refs/remotes/origin/" + branch + "^{commit}"}).status == 0) {
    start = "refs/remotes/origin/" + branch;
    resumed = true;
  } else if (!job.repo.base.empty()) {
    for (const std::string& candidate : {"refs/remotes/origin/" + job.repo.base, job.repo.base}) {
      if (git(dir, {"rev-parse", "--verify", "--quiet", candidate + "^{commit}"}).status == 0) {
        start = candidate;
        break;
      }
    }
    if (start.empty()) return make_error(ErrorCode::error, "repository " + job.repo.url + " has no base '" + job.repo.base + "'");
  } else if (git(dir, {"rev-parse", "--verify", "--quiet", "refs/remotes/origin/HEAD^{commit}"}).status == 0) {
    start = "refs/remotes/origin/HEAD";
  }
  Captured checkout = start.empty() ? git(dir, {"checkout", "--quiet", "-b", branch})  // an empty repository
                                    : git(dir, {"checkout", "--quiet", "--no-track", "-B", branch, start});
  if (checkout.status != 0) return git_error("cannot check out " + branch + " in " + dir, checkout);
  return {};
}

Result<void> save_worktree(const std::string& job_id, const std::string& dir, const std::string& message) {
  auto add = git(dir, {"add", "-A"});
  if (add.status != 0) return git_error("cannot stage the work in " + dir, add);
  if (git(dir, {"diff", "--cached", "--quiet"}).status != 0 ||
      git(dir, {"rev-parse", "--verify", "--quiet", "HEAD"}).status != 0) {
    auto commit = git(dir, {"-c", "commit.gpgsign=false", "commit", "--quiet", "--allow-empty", "--no-verify", "-m", message});
    if (commit.status != 0) return git_error("cannot commit the work in " + dir, commit);
  }
  auto push = git(dir, {"push", "--quiet", "origin", "HEAD:refs/heads/" + job_branch(job_id)});
  if (push.status != 0) return git_error("cannot push " + job_branch(job_id), push);
  return {};
}

}  // namespace gigafab::cli::agent
