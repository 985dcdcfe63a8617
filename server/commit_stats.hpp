// What serve's group commits cost, for /metrics: how many commits and the
// operations they carried, and histograms of a batch's time (from taking the
// fleet to its commit published), of its build alone (operations and objects
// in memory, the part under the fleet's lock) and of the publish alone
// (objects written, ref moved: a durable store's syncs). Safe from any
// thread.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace gigafab::server {

class CommitStats {
 public:
  void record(std::size_t operations, double build_seconds, double batch_seconds, double publish_seconds) {
    std::lock_guard lock(m_mutex);
    ++m_commits;
    m_operations += operations;
    m_build.observe(build_seconds);
    m_batch.observe(batch_seconds);
    m_publish.observe(publish_seconds);
  }

  // Prometheus text exposition of the families above.
  std::string prometheus() const {
    std::lock_guard lock(m_mutex);
    std::string out;
    out += "# HELP gigafab_serve_commits_total Group commits this server wrote.\n";
    out += "# TYPE gigafab_serve_commits_total counter\n";
    out += "gigafab_serve_commits_total " + std::to_string(m_commits) + "\n";
    out += "# HELP gigafab_serve_commit_operations_total Operations those commits carried (waiting claims that rode along included).\n";
    out += "# TYPE gigafab_serve_commit_operations_total counter\n";
    out += "gigafab_serve_commit_operations_total " + std::to_string(m_operations) + "\n";
    m_build.render(out, "gigafab_serve_build_seconds",
                   "Time of a group commit's operations and its objects built in memory, before its publish waits its turn.");
    m_batch.render(out, "gigafab_serve_commit_seconds",
                   "Time of a group commit, from taking the fleet to the ref moved (operations, objects, syncs).");
    m_publish.render(out, "gigafab_serve_publish_seconds",
                     "Time of a group commit's publish: its pack written and the ref moved (a durable store's syncs).");
    return out;
  }

 private:
  struct Histogram {
    static constexpr std::array<double, 11> k_bounds{0.0005, 0.001, 0.002, 0.003, 0.005, 0.01,
                                                     0.02,   0.05,  0.1,   0.25,  1.0};
    std::array<std::uint64_t, k_bounds.size()> counts{};  // per bucket, not cumulative
    std::uint64_t count = 0;
    double sum = 0;

    void observe(double seconds) {
      for (std::size_t i = 0; i < k_bounds.size(); ++i) {
        if (seconds <= k_bounds[i]) {
          ++counts[i];
          break;
        }
      }
      ++count;
      sum += seconds;
    }

    void render(std::string& out, const char* name, const char* help) const {
      out += std::string("# HELP ") + name + " " + help + "\n";
      out += std::string("# TYPE ") + name + " histogram\n";
      std::uint64_t cumulative = 0;
      char line[160];
      for (std::size_t i = 0; i < k_bounds.size(); ++i) {
        cumulative += counts[i];
        std::snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %llu\n", name, k_bounds[i],
                      static_cast<unsigned long long>(cumulative));
        out += line;
      }
      std::snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                    static_cast<unsigned long long>(count), name, sum, name, static_cast<unsigned long long>(count));
      out += line;
    }
  };

  mutable std::mutex m_mutex;
  std::uint64_t m_commits = 0;
  std::uint64_t m_operations = 0;
  Histogram m_build;
  Histogram m_batch;
  Histogram m_publish;
};

}  // namespace gigafab::server
