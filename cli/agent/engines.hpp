// Engines: how `gigafab agent` runs a coding agent on a job. An engine is a
// command template plus how the prompt reaches it, from engines.toml
//
//   [engines.NAME]
//   command = ["prog", "arg", "{prompt_file}"]  # {prompt_file} {worktree} {job_id} {prompt}
//   prompt = "stdin"        # or "file" (only through {prompt_file}) or "argument" (appended)
//   env = { K = "V" }
//   timeout = "30m"
//
// or one of the built-in templates (claude, codex, devin, shell), which a
// table of the same name in the file replaces.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace gigafab::cli::agent {

using core::Result;

enum class PromptMode { stdin_pipe, file, argument };

struct Engine {
  std::string name;
  std::vector<std::string> command;
  PromptMode prompt = PromptMode::stdin_pipe;
  std::map<std::string, std::string> env;
  std::optional<std::int64_t> timeout_seconds;
};

// The engines file: `explicit_path` (--engines, must exist), else
// GIGAFAB_ENGINES (must exist), else `store_path` (<store>/engines.toml, if it
// exists), else $XDG_CONFIG_HOME/gigafab/engines.toml (~/.config when unset;
// optional). Usage errors name the file, table and key.
Result<std::map<std::string, Engine>> load_engines(const std::optional<std::string>& explicit_path,
                                                   const std::optional<std::string>& store_path = std::nullopt);

// The engine NAME from `engines` or the built-ins; `shell_command` (from
// --engine-command, split on spaces) sets the command of `shell`. Usage error
// listing the known names otherwise, or when shell has no command.
Result<Engine> resolve_engine(const std::string& name, const std::map<std::string, Engine>& engines,
                              const std::optional<std::string>& shell_command);

// The argv to run: placeholders substituted, the prompt appended for
// PromptMode::argument.
std::vector<std::string> engine_argv(const Engine& engine, const std::map<std::string, std::string>& vars,
                                     const std::string& prompt);

// The names of the built-in templates.
std::vector<std::string> builtin_engine_names();

}  // namespace gigafab::cli::agent
