// Child processes for `gigafab agent`: the git CLI (run to completion, output
// captured) and engines (spawned in their own process group, output read
// through a pipe, stopped as a group). fork + exec only; nothing between the
// two but async-signal-safe calls, so it is safe from the agent's threads.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace gigafab::cli::agent {

struct Command {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH
  std::string cwd;                         // "" : the agent's
  std::map<std::string, std::string> env;  // added to (or replacing in) the agent's environment
};

struct Captured {
  int status = -1;     // exit status; 128 + signal when killed; 127 when it could not run
  std::string output;  // stdout and stderr, interleaved
};

// Runs `command` to completion with stdin from /dev/null.
Captured run_captured(const Command& command);

// A spawned process group: the child leads it (setpgid) and is killed when
// the thread that spawned it dies (PR_SET_PDEATHSIG); stdout+stderr
// arrive on `output_fd` (non-blocking), which the caller closes.
struct Spawned {
  pid_t pid = -1;
  int output_fd = -1;
};
// When exec fails the child prints "gigafab: agent: cannot run 'PROG': WHY"
// on its output and exits 127. `stdin_path` "" means /dev/null.
Spawned spawn_group(const Command& command, const std::string& stdin_path);

// SIGTERM to the group, up to `grace_ms` for the leader to exit, then SIGKILL
// to the group. Returns the leader's wait status as for Captured::status.
int stop_group(pid_t pid, int grace_ms);

// Non-blocking: -1 while running, else the status as for Captured::status.
int poll_exit(pid_t pid);

}  // namespace gigafab::cli::agent
