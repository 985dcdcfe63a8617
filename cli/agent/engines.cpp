#include "cli/agent/engines.hpp"

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <toml++/toml.h>

#include "core/clock.hpp"

namespace gigafab::cli::agent {

using core::ErrorCode;
using core::make_error;

namespace {

std::map<std::string, Engine> builtins() {
  std::map<std::string, Engine> e;
  // Claude Code, non-interactive: the prompt on stdin, a JSON result on stdout.
  e["claude"] = Engine{"claude", {"claude", "-p", "--output-format", "json"}, PromptMode::stdin_pipe, {}, {}};
  // OpenAI Codex CLI: `codex exec PROMPT`.
  e["codex"] = Engine{"codex", {"codex", "exec"}, PromptMode::argument, {}, {}};
  // Devin has no local CLI: a template for a wrapper script that sends the
  // prompt file to its API (replace it in engines.toml).
  e["devin"] = Engine{"devin", {"devin", "run", "--prompt-file", "{prompt_file}"}, PromptMode::file, {}, {}};
  // Any command; the prompt on stdin.
  e["shell"] = Engine{"shell", {}, PromptMode::stdin_pipe, {}, {}};
  return e;
}

std::string where(const std::string& path, const toml::node* node) {
  if (node && node->source().begin.line) return path + ":" + std::to_string(node->source().begin.line);
  return path;
}

Result<Engine> parse_engine(const std::string& path, const std::string& name, const toml::table& t) {
  Engine engine;
  engine.name = name;
  auto bad = [&](const std::string& key, const std::string& why) {
    return make_error(ErrorCode::usage,
                      where(path, t.get(key)) + ": engines." + name + "." + key + ": " + why);
  };
  for (auto&& [key, node] : t) {
    std::string k(key.str());
    if (k != "command" && k != "prompt" && k != "env" && k != "timeout")
      return make_error(ErrorCode::usage, where(path, &node) + ": engines." + name + ": unknown key '" + k +
                                              "' (known: command, prompt, env, timeout)");
  }
  if (const toml::node* command = t.get("command")) {
    const toml::array* a = command->as_array();
    if (!a || a->empty()) return bad("command", "must be a non-empty array of strings");
    for (const auto& item : *a) {
      auto s = item.value<std::string>();
      if (!s) return bad("command", "must be a non-empty array of strings");
      engine.command.push_back(*s);
    }
  }
  if (const toml::node* prompt = t.get("prompt")) {
    auto s = prompt->value<std::string>();
    if (s && *s == "stdin") engine.prompt = PromptMode::stdin_pipe;
    else if (s && *s == "file") engine.prompt = PromptMode::file;
    else if (s && *s == "argument") engine.prompt = PromptMode::argument;
    else return bad("prompt", "must be \"stdin\", \"file\" or \"argument\"");
  }
  if (const toml::node* env = t.get("env")) {
    const toml::table* e = env->as_table();
    if (!e) return bad("env", "must be a table of strings");
    for (auto&& [k, v] : *e) {
      auto s = v.value<std::string>();
      if (!s) return bad("env", "'" + std::string(k.str()) + "' must be a string");
      engine.env[std::string(k.str())] = *s;
    }
  }
  if (const toml::node* timeout = t.get("timeout")) {
    auto s = timeout->value<std::string>();
    if (!s) return bad("timeout", "must be a duration such as \"30m\"");
    auto seconds = core::parse_duration(*s);
    if (!seconds) return bad("timeout", seconds.error().message);
    if (*seconds <= 0) return bad("timeout", "must be longer than zero");
    engine.timeout_seconds = *seconds;
  }
  return engine;
}

}  // namespace

std::vector<std::string> builtin_engine_names() { return {"claude", "codex", "devin", "shell"}; }

Result<std::map<std::string, Engine>> load_engines(const std::optional<std::string>& explicit_path,
                                                   const std::optional<std::string>& store_path) {
  std::string path;
  bool required = true;
  if (explicit_path) {
    path = *explicit_path;
  } else if (const char* env = std::getenv("GIGAFAB_ENGINES"); env && *env) {
    path = env;
  } else if (std::error_code exists_ec; store_path && std::filesystem::exists(*store_path, exists_ec)) {
    path = *store_path;
  } else {
    required = false;
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) path = std::string(xdg) + "/gigafab/engines.toml";
    else if (const char* home = std::getenv("HOME"); home && *home) path = std::string(home) + "/.config/gigafab/engines.toml";
  }
  std::map<std::string, Engine> engines;
  std::error_code ec;
  if (path.empty() || !std::filesystem::exists(path, ec)) {
    if (required) return make_error(ErrorCode::usage, "engines file '" + path + "' does not exist");
    return engines;
  }
  toml::table doc;
  try {
    doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return make_error(ErrorCode::usage, path + ":" + std::to_string(e.source().begin.line) + ": " +
                                            std::string(e.description()));
  }
  for (auto&& [key, node] : doc) {
    if (key.str() != "engines")
      return make_error(ErrorCode::usage, where(path, &node) + ": unknown table '" + std::string(key.str()) +
                                              "' (engines are [engines.NAME])");
  }
  if (const toml::table* all = doc["engines"].as_table()) {
    for (auto&& [name, node] : *all) {
      const toml::table* t = node.as_table();
      if (!t) return make_error(ErrorCode::usage, where(path, &node) + ": engines." + std::string(name.str()) + " must be a table");
      auto engine = parse_engine(path, std::string(name.str()), *t);
      if (!engine) return engine.error();
      engines[engine->name] = std::move(*engine);
    }
  }
  return engines;
}

Result<Engine> resolve_engine(const std::string& name, const std::map<std::string, Engine>& engines,
                              const std::optional<std::string>& shell_command) {
  Engine engine;
  if (auto it = engines.find(name); it != engines.end()) {
    engine = it->second;
  } else {
    auto b = builtins();
    auto bit = b.find(name);
    if (bit == b.end()) {
      std::string known;
      for (const auto& n : builtin_engine_names()) known += (known.empty() ? "" : ", ") + n;
      for (const auto& [n, e] : engines) known += ", " + n;
      return make_error(ErrorCode::usage, "unknown engine '" + name + "' (known: " + known + ")");
    }
    engine = bit->second;
  }
  if (name == "shell" && shell_command) {
    engine.command.clear();
    std::istringstream words(*shell_command);
    for (std::string w; words >> w;) engine.command.push_back(w);
  }
  if (engine.command.empty())
    return make_error(ErrorCode::usage, "engine '" + name + "' has no command (give --engine-command or set engines." +
                                            name + ".command in engines.toml)");
  return engine;
}

std::vector<std::string> engine_argv(const Engine& engine, const std::map<std::string, std::string>& vars,
                                     const std::string& prompt) {
  std::vector<std::string> argv;
  for (std::string arg : engine.command) {
    for (const auto& [key, value] : vars) {
      std::string token = "{" + key + "}";
      for (size_t at = arg.find(token); at != std::string::npos; at = arg.find(token, at + value.size()))
        arg.replace(at, token.size(), value);
    }
    argv.push_back(std::move(arg));
  }
  if (engine.prompt == PromptMode::argument) argv.push_back(prompt);
  return argv;
}

}  // namespace gigafab::cli::agent
