// Shell commands for unit tests that check their results with git itself.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace gigafab::test {

struct RunResult {
  int status = -1;
  std::string out;  // stdout without the trailing newlines
};

// Runs a shell command; stderr is discarded.
inline RunResult run(const std::string& command) {
  RunResult result;
  FILE* pipe = ::popen(("(" + command + ") 2>/dev/null").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) result.out.append(buf, n);
  int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  while (!result.out.empty() && result.out.back() == '\n') result.out.pop_back();
  return result;
}

// A command that must succeed: its stdout.
inline std::string sh(const std::string& command) {
  RunResult result = run(command);
  CHECK(result.status == 0);
  return result.out;
}

}  // namespace gigafab::test
