#include "cli/agent/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/agent/process.hpp"
#include "cli/agent/worktree.hpp"

namespace gigafab::cli::agent {

namespace {

using Clock = std::chrono::steady_clock;
using core::Result;
constexpr size_t k_log_keep = 1u << 20;  // the run log keeps the last 1 MiB

// Drops the first `n` bytes of `text`, and the rest of a character cut there.
void drop_front(std::string& text, size_t n) {
  while (n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) ++n;
  text.erase(0, n);
}

// The engine's output, made UTF-8 as it arrives: appended to the run log
// file (cut back to its last k_log_keep bytes whenever it doubles), and
// stored in the fleet by flush() so that `gigafab logs` reads it from any
// host.
class RunLog {
 public:
  explicit RunLog(const std::string& path) : m_path(path) {
    m_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  ~RunLog() {
    trim(k_log_keep);
    if (m_fd >= 0) ::close(m_fd);
  }
  void append(const std::string& bytes) { add(m_utf8.feed(bytes)); }
  // The end of the engine's output (a sequence cut short is replaced).
  void close_stream() { add(m_utf8.finish()); }
  void note(const std::string& line) {
    close_stream();
    add("gigafab agent: " + line + "\n");
  }
  // The tail of the output (at least the last 1 MiB).
  const std::string& tail() const { return m_tail; }

  // Stores what the fleet does not have yet, in pieces of at most
  // k_output_append_limit bytes; output that has left the tail is skipped.
  Result<void> flush(SharedFleet& fleet, const core::WorkerCall& call) {
    std::int64_t tail_start = m_total - static_cast<std::int64_t>(m_tail.size());
    if (m_flushed < tail_start) m_flushed = tail_start;
    while (m_flushed < m_total) {
      size_t at = static_cast<size_t>(m_flushed - tail_start);
      size_t n = std::min(core::k_output_append_limit, m_tail.size() - at);
      while (at + n < m_tail.size() && n > 0 && (static_cast<unsigned char>(m_tail[at + n]) & 0xC0) == 0x80) --n;
      std::string piece = m_tail.substr(at, n);
      auto end = fleet.with([&](core::Fleet& f) { return f.append_output(call, m_flushed, piece); });
      if (!end) return end.error();
      m_flushed += static_cast<std::int64_t>(n);
    }
    return {};
  }
  bool unflushed() const { return m_flushed < m_total; }

 private:
  void add(const std::string& text) {
    if (text.empty()) return;
    m_tail += text;
    m_total += static_cast<std::int64_t>(text.size());
    if (m_tail.size() > 2 * k_log_keep) drop_front(m_tail, m_tail.size() - k_log_keep);
    if (m_fd >= 0) {
      size_t done = 0;
      while (done < text.size()) {
        ssize_t w = ::write(m_fd, text.data() + done, text.size() - done);
        if (w <= 0) break;
        done += static_cast<size_t>(w);
      }
      m_size += done;
    }
    trim(2 * k_log_keep);
  }
  void trim(size_t limit) {
    if (m_fd < 0 || m_size <= limit) return;
    std::string keep = m_tail;
    if (keep.size() > k_log_keep) drop_front(keep, keep.size() - k_log_keep);
    if (::ftruncate(m_fd, 0) != 0) return;
    ::lseek(m_fd, 0, SEEK_SET);
    m_size = 0;
    size_t done = 0;
    while (done < keep.size()) {
      ssize_t w = ::write(m_fd, keep.data() + done, keep.size() - done);
      if (w <= 0) break;
      done += static_cast<size_t>(w);
    }
    m_size = done;
  }
  std::string m_path;
  int m_fd = -1;
  size_t m_size = 0;
  std::string m_tail;
  core::Utf8Stream m_utf8;
  std::int64_t m_total = 0;    // bytes of output so far
  std::int64_t m_flushed = 0;  // bytes the fleet has
};

void say(const std::string& job_id, const std::string& text) {
  std::fprintf(stderr, "gigafab: agent: job %s: %s\n", job_id.c_str(), text.c_str());
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    start = nl + 1;
  }
  return lines;
}

// Claude Code's `--output-format json` result: {"type": "result", "result":
// TEXT, "total_cost_usd": X, "usage": {"input_tokens": N, "output_tokens": M}}.
std::optional<nlohmann::json> claude_result(const std::string& line) {
  if (line.find("\"total_cost_usd\"") == std::string::npos) return std::nullopt;
  auto doc = nlohmann::json::parse(line, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("type", "") != "result") return std::nullopt;
  return doc;
}

std::optional<nlohmann::json> spend_doc(const std::string& line) {
  if (line.find("\"gigafab\"") == std::string::npos) return std::nullopt;
  auto doc = nlohmann::json::parse(line, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("gigafab") || !doc["gigafab"].is_object()) return std::nullopt;
  return doc["gigafab"];
}

}  // namespace

Spend parse_spend(const std::string& output) {
  Spend spend;
  auto lines = lines_of(output);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (auto claude = claude_result(*it)) {
      if ((*claude)["total_cost_usd"].is_number()) spend.cost_usd = (*claude)["total_cost_usd"].get<double>();
      if (claude->contains("usage") && (*claude)["usage"].is_object()) {
        std::int64_t tokens = 0;
        for (const char* key : {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}) {
          const auto& usage = (*claude)["usage"];
          if (usage.contains(key) && usage[key].is_number_integer()) tokens += usage[key].get<std::int64_t>();
        }
        spend.tokens = tokens;
      }
      break;
    }
    auto doc = spend_doc(*it);
    if (!doc) continue;
    if (doc->contains("tokens") && (*doc)["tokens"].is_number_integer() && (*doc)["tokens"].get<std::int64_t>() >= 0)
      spend.tokens = (*doc)["tokens"].get<std::int64_t>();
    if (doc->contains("costUsd") && (*doc)["costUsd"].is_number() && (*doc)["costUsd"].get<double>() >= 0)
      spend.cost_usd = (*doc)["costUsd"].get<double>();
    break;
  }
  return spend;
}

std::string summary_line(const std::string& output) {
  auto lines = lines_of(output);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (it->find_first_not_of(" \t") == std::string::npos || spend_doc(*it)) continue;
    if (auto claude = claude_result(*it); claude && (*claude)["result"].is_string()) {
      std::string inner = summary_line((*claude)["result"].get<std::string>());
      if (!inner.empty()) return inner;
    }
    return it->size() > 1000 ? it->substr(0, 1000) : *it;
  }
  return "";
}

Outcome run_job(const AgentConfig& config, SharedFleet& fleet, const core::Claimed& claimed,
                const std::atomic<bool>& stop) {
  const core::Job& job = claimed.job;
  const std::string& id = job.id;
  core::WorkerCall call{id, config.factory, claimed.lease.epoch, config.product, ""};
  std::string base = config.workdir + "/" + id + "-e" + std::to_string(claimed.lease.epoch);
  std::string dir = base;

  auto release = [&](const std::string& why) {
    auto released = fleet.with([&](core::Fleet& f) { return f.release(call); });
    if (!released) {
      say(id, why + "; release failed: " + released.error().message);
      return Outcome::abandoned;
    }
    say(id, why + "; released");
    return Outcome::released;
  };

  // The job's body and persona.
  auto detail = fleet.with([&](core::Fleet& f) { return f.show(id, config.product); });
  if (!detail) return release("cannot read the job: " + detail.error().message);
  std::string prompt = detail->body;
  if (detail->profile && !detail->profile->persona.empty()) prompt = detail->profile->persona + "\n\n" + detail->body;
  const core::Job& current = detail->job;

  std::string engine_name = config.engine ? *config.engine : !current.engine.empty() ? current.engine : "shell";
  auto engine = resolve_engine(engine_name, config.engines, config.engine_command);
  if (!engine) return release(engine.error().message);

  bool resumed = false;
  if (auto ok = prepare_worktree(current, dir, resumed); !ok) return release(ok.error().message);
  say(id, std::string(resumed ? "resuming from " + job_branch(id) : "starting") + " in " + dir);

  if (auto started = fleet.with([&](core::Fleet& f) { return f.start(call); }); !started) {
    say(id, "cannot start: " + started.error().message + "; abandoned");
    return Outcome::abandoned;
  }

  std::string prompt_file = base + ".prompt";
  write_file(prompt_file, prompt);
  RunLog log(base + ".log");
  std::map<std::string, std::string> vars = {
      {"prompt_file", prompt_file}, {"worktree", dir}, {"job_id", id}, {"prompt", prompt}};
  Command command{engine_argv(*engine, vars, prompt), dir, engine->env};
  command.env["GIGAFAB_JOB_ID"] = id;
  command.env["GIGAFAB_EPOCH"] = std::to_string(claimed.lease.epoch);
  command.env["GIGAFAB_WORKTREE"] = dir;
  command.env["GIGAFAB_FACTORY"] = config.factory;
  command.env["GIGAFAB_PRODUCT"] = config.product;
  command.env["GIGAFAB_PROMPT_FILE"] = prompt_file;

  std::optional<std::int64_t> wall = current.budget.wall_seconds;
  if (engine->timeout_seconds && (!wall || *engine->timeout_seconds < *wall)) wall = engine->timeout_seconds;
  log.note("engine " + engine->name + ": " + command.argv[0] + (resumed ? " (resumed from " + job_branch(id) + ")" : ""));

  Spawned child = spawn_group(command, engine->prompt == PromptMode::stdin_pipe ? prompt_file : "");
  if (child.pid < 0) {
    log.note("cannot start the engine");
  }
  // The output reaches the fleet every few seconds while the engine runs,
  // and all of it before the job is reported or released.
  bool output_failed = false;
  auto store_output = [&] {
    auto stored = log.flush(fleet, call);
    if (!stored && !output_failed) say(id, "cannot store the engine's output (will retry): " + stored.error().message);
    output_failed = !stored;
  };
  auto started_at = Clock::now();
  auto next_flush = started_at + std::chrono::milliseconds(config.output_every_ms);
  auto renew_every = std::chrono::milliseconds(std::max<std::int64_t>(200, config.ttl_seconds * 1000 / 3));
  auto next_renew = started_at + renew_every;
  bool timed_out = false, stopping = false, fenced = false;
  int status = child.pid < 0 ? 127 : -1;
  char buf[8192];
  while (status < 0) {
    struct pollfd p{child.output_fd, POLLIN, 0};
    ::poll(&p, 1, 100);
    for (;;) {
      ssize_t n = ::read(child.output_fd, buf, sizeof buf);
      if (n <= 0) break;
      log.append(std::string(buf, static_cast<size_t>(n)));
    }
    status = poll_exit(child.pid);
    if (status >= 0) break;
    auto now = Clock::now();
    if (now >= next_flush && log.unflushed()) {
      store_output();
      next_flush = Clock::now() + std::chrono::milliseconds(config.output_every_ms);
    }
    if (now >= next_renew) {
      auto renewed = fleet.with([&](core::Fleet& f) { return f.renew(call, config.ttl_seconds); });
      if (renewed) {
        next_renew = now + renew_every;
      } else if (renewed.error().code == core::ErrorCode::fenced || renewed.error().code == core::ErrorCode::conflict ||
                 renewed.error().code == core::ErrorCode::not_found) {
        fenced = true;
        log.note("lease lost: " + renewed.error().message + "; stopping the engine");
        status = stop_group(child.pid, config.kill_grace_ms);
        break;
      } else {
        say(id, "cannot renew the lease (will retry): " + renewed.error().message);
        next_renew = now + std::chrono::seconds(1);
      }
    }
    if (wall && now - started_at >= std::chrono::seconds(*wall)) {
      timed_out = true;
      log.note("wall budget of " + std::to_string(*wall) + "s exceeded; stopping the engine");
      status = stop_group(child.pid, config.kill_grace_ms);
      break;
    }
    if (stop.load()) {
      stopping = true;
      log.note("the agent is stopping; stopping the engine");
      status = stop_group(child.pid, config.kill_grace_ms);
      break;
    }
  }
  if (child.pid > 0) {
    ::kill(-child.pid, SIGKILL);  // nothing of the engine outlives it
    for (;;) {
      ssize_t n = ::read(child.output_fd, buf, sizeof buf);
      if (n <= 0) break;
      log.append(std::string(buf, static_cast<size_t>(n)));
    }
    ::close(child.output_fd);
  }
  std::string output = log.tail();
  log.note("engine exited with status " + std::to_string(status));
  std::filesystem::remove(prompt_file);

  if (fenced) {
    say(id, "lease lost; engine stopped, job abandoned (worktree kept in " + dir + ")");
    return Outcome::abandoned;
  }

  std::string message = "gigafab: " + std::string(timed_out ? "work in progress (wall budget exceeded)"
                                                  : stopping ? "work in progress (agent stopped)"
                                                  : status == 0 ? "work done"
                                                                : "work in progress (engine failed)") +
                        " on " + id + "\n\nGigafab-Job: " + id + "\nGigafab-Epoch: " + std::to_string(claimed.lease.epoch) +
                        "\nGigafab-Factory: " + config.factory + "\n";
  bool pushed = false;
  if (auto saved = save_worktree(id, dir, message); saved) {
    pushed = true;
    auto cp = fleet.with([&](core::Fleet& f) { return f.checkpoint(call, job_branch(id)); });
    if (!cp) {
      say(id, "cannot record the checkpoint: " + cp.error().message);
      if (cp.error().code == core::ErrorCode::fenced) {
        std::filesystem::remove_all(dir);
        return Outcome::abandoned;
      }
    }
  } else {
    say(id, saved.error().message + " (worktree kept in " + dir + ")");
    log.note(saved.error().message);
  }

  store_output();
  Outcome outcome;
  if (stopping) {
    outcome = release("agent stopping");
  } else {
    core::ReportInput input;
    Spend spend = parse_spend(output);
    input.pass = status == 0 && !timed_out && pushed;
    input.cost_usd = spend.cost_usd;
    input.tokens = spend.tokens;
    if (timed_out) {
      input.summary = "budget_exceeded: wall budget of " + std::to_string(*wall) + "s";
      input.reason = "budget_exceeded";
    } else if (!pushed) {
      input.summary = "the work could not be pushed to " + job_branch(id) + " (kept in " + dir + ")";
      input.reason = "push_failed";
    } else {
      input.summary = summary_line(output);
      if (status != 0 && input.summary.empty()) input.summary = "engine exited with status " + std::to_string(status);
    }
    auto reported = fleet.with([&](core::Fleet& f) { return f.report(call, input); });
    if (!reported) {
      say(id, "cannot report: " + reported.error().message);
      return Outcome::abandoned;
    }
    say(id, std::string(input.pass ? "pass" : "fail") + " -> " + core::stage_name(reported->stage));
    outcome = Outcome::reported;
  }
  if (pushed && outcome != Outcome::abandoned) std::filesystem::remove_all(dir);
  return outcome;
}

}  // namespace gigafab::cli::agent
