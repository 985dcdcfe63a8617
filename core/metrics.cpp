#include "core/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "core/layout.hpp"
#include "core/queue_index.hpp"
#include "core/queries.hpp"
#include "core/router.hpp"

namespace gigafab::core {

namespace {

// What the job documents say about one product.
struct JobTally {
  std::array<std::int64_t, std::size(k_all_stages)> stages{};
  double spent_usd = 0;
  std::int64_t spent_tokens = 0;
};

// Reads every job document once; only `product`'s jobs are tallied unless it
// is empty.
Result<std::map<std::string, JobTally>> tally_jobs(const Snapshot& state, const std::string& product) {
  std::map<std::string, JobTally> out;
  auto shards = state.list(layout::k_jobs);
  if (!shards) return shards.error();
  for (const auto& shard : *shards) {
    auto ids = state.list(std::string(layout::k_jobs) + "/" + shard);
    if (!ids) return ids.error();
    for (const auto& id : *ids) {
      auto job = find_job(state, id);
      if (!job) return job.error();
      if (!*job || (!product.empty() && (*job)->product != product)) continue;
      JobTally& t = out[(*job)->product];
      ++t.stages[static_cast<std::size_t>((*job)->stage)];
      t.spent_usd += (*job)->spent_usd;
      t.spent_tokens += (*job)->spent_tokens;
    }
  }
  return out;
}

// The oldest queued age and the starvation alerts, from the queue index.
Result<void> add_queue(const Snapshot& state, FleetMetrics& m, Millis now) {
  std::string dir = layout::queued_dir(m.product);
  auto capsets = state.list(dir);
  if (!capsets) return capsets.error();
  std::optional<Millis> oldest;
  std::vector<layout::QueuedName> starving;
  for (const auto& capset : *capsets) {
    auto names = queue_index::entries(state, dir + "/" + capset);
    if (!names) return names.error();
    for (const auto& name : *names) {
      auto entry = layout::parse_queued_entry_name(name);
      if (!entry) return make_error(ErrorCode::error, "corrupt queue entry " + dir + "/" + capset + "/" + name);
      if (!oldest || entry->created_at < *oldest) oldest = entry->created_at;
      if (now - entry->created_at > m.starvation_window * 1000) starving.push_back(std::move(*entry));
    }
  }
  if (oldest) m.oldest_queued_seconds = std::max<Millis>(0, now - *oldest) / 1000;
  std::sort(starving.begin(), starving.end(), [](const layout::QueuedName& a, const layout::QueuedName& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  m.starving = static_cast<std::int64_t>(starving.size());
  for (const auto& entry : starving) {
    if (m.alerts.size() == k_max_starvation_alerts) break;
    StarvationAlert alert{entry.id, "", entry.priority, entry.created_at, (now - entry.created_at) / 1000};
    if (validate_job_id(entry.id)) {
      auto job = find_job(state, entry.id);
      if (!job) return job.error();
      if (*job) alert.title = (*job)->title;
    }
    m.alerts.push_back(std::move(alert));
  }
  return {};
}

Result<void> add_factories(const Snapshot& state, const std::map<std::string, Liveness>& liveness,
                           const RouterSettings& settings, FleetMetrics& m, Millis now) {
  auto records = list_factories(state, m.product);
  if (!records) return records.error();
  for (const auto& record : *records) {
    auto view = factory_view(state, record, liveness, settings, now);
    if (!view) return view.error();
    ++m.factories;
    m.seats += view->seats;
    m.seats_used += view->seats_used;
    switch (view->health) {
      case Health::healthy: ++m.healthy; break;
      case Health::degraded: ++m.degraded; break;
      case Health::down: ++m.down; break;
    }
    if (view->health != Health::down) {
      m.live_seats += view->seats;
      m.live_seats_used += view->seats_used;
    }
  }
  m.utilization = m.live_seats > 0 ? static_cast<double>(m.live_seats_used) / static_cast<double>(m.live_seats) : 0;
  return {};
}

// Everything but the job tally.
Result<FleetMetrics> metrics_of(const Snapshot& state, const std::map<std::string, Liveness>& liveness,
                                const std::string& product, const JobTally& tally, Millis now) {
  FleetMetrics m;
  m.product = product;
  m.generated_at = now;
  m.jobs = tally.stages;
  m.spent_usd = tally.spent_usd;
  m.spent_tokens = tally.spent_tokens;
  auto settings = load_settings(state, product);
  if (!settings) return settings.error();
  m.starvation_window = settings->starvation_window;
  if (auto ok = add_factories(state, liveness, *settings, m, now); !ok) return ok.error();
  if (auto ok = add_queue(state, m, now); !ok) return ok.error();
  return m;
}

// Products named by the cheap parts of the layout: factories, router
// settings, queue index.
Result<std::set<std::string>> products_outside_jobs(const Snapshot& state) {
  std::set<std::string> out;
  auto factories = list_factories(state, "");
  if (!factories) return factories.error();
  for (const auto& f : *factories) out.insert(f.product);
  for (const char* dir : {"products", "index/queued"}) {
    auto names = state.list(dir);
    if (!names) return names.error();
    out.insert(names->begin(), names->end());
  }
  return out;
}

// Prometheus label values escape backslash, double quote and newline.
std::string escape_label(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// Go's strconv.ParseFloat reads what we write: the shortest round-trip form,
// NaN, +Inf, -Inf.
std::string sample_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return ec == std::errc{} ? std::string(buf, end) : std::to_string(value);
}

std::string sample_value(std::int64_t value) { return std::to_string(value); }

}  // namespace

Result<FleetMetrics> compute_metrics(const Snapshot& state, const std::map<std::string, Liveness>& liveness,
                                     const std::string& product, Millis now) {
  if (auto ok = validate_name("product", product); !ok) return ok.error();
  auto tally = tally_jobs(state, product);
  if (!tally) return tally.error();
  return metrics_of(state, liveness, product, (*tally)[product], now);
}

Result<std::vector<FleetMetrics>> compute_all_metrics(const Snapshot& state,
                                                      const std::map<std::string, Liveness>& liveness, Millis now) {
  auto tally = tally_jobs(state, "");
  if (!tally) return tally.error();
  auto products = products_outside_jobs(state);
  if (!products) return products.error();
  for (const auto& [product, _] : *tally) products->insert(product);
  std::vector<FleetMetrics> out;
  for (const auto& product : *products) {
    auto m = metrics_of(state, liveness, product, (*tally)[product], now);
    if (!m) return m.error();
    out.push_back(std::move(*m));
  }
  return out;
}

Result<std::vector<std::string>> list_products(const Snapshot& state) {
  auto tally = tally_jobs(state, "");
  if (!tally) return tally.error();
  auto products = products_outside_jobs(state);
  if (!products) return products.error();
  for (const auto& [product, _] : *tally) products->insert(product);
  return std::vector<std::string>(products->begin(), products->end());
}

nlohmann::json metrics_to_json(const FleetMetrics& m) {
  nlohmann::json jobs = nlohmann::json::object();
  for (Stage stage : k_all_stages) jobs[stage_name(stage)] = m.jobs_in(stage);
  nlohmann::json alerts = nlohmann::json::array();
  for (const auto& a : m.alerts) {
    alerts.push_back({{"id", a.id},
                      {"title", a.title},
                      {"priority", priority_name(a.priority)},
                      {"createdAt", format_time(a.created_at)},
                      {"waitingSeconds", a.waiting_seconds}});
  }
  return {{"productId", m.product},
          {"generatedAt", format_time(m.generated_at)},
          {"jobs", std::move(jobs)},
          {"factories",
           {{"total", m.factories},
            {"healthy", m.healthy},
            {"degraded", m.degraded},
            {"down", m.down},
            {"seats", m.seats},
            {"seatsUsed", m.seats_used},
            {"liveSeats", m.live_seats},
            {"liveSeatsUsed", m.live_seats_used},
            {"utilization", m.utilization}}},
          {"starvation", {{"windowSeconds", m.starvation_window}, {"count", m.starving}, {"alerts", std::move(alerts)}}},
          {"oldestQueuedSeconds", m.oldest_queued_seconds},
          {"spentUsd", m.spent_usd},
          {"spentTokens", m.spent_tokens}};
}

std::string metrics_to_prometheus(const std::vector<FleetMetrics>& all) {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto sample = [&](const char* name, const FleetMetrics& m, const std::string& extra_label, const std::string& value) {
    out += std::string(name) + "{product=\"" + escape_label(m.product) + "\"" + extra_label + "} " + value + "\n";
  };
  auto label = [](const char* key, std::string_view value) {
    return std::string(",") + key + "=\"" + escape_label(value) + "\"";
  };

  family("gigafab_jobs", "gauge", "Jobs by stage.");
  for (const auto& m : all) {
    for (Stage stage : k_all_stages) {
      sample("gigafab_jobs", m, label("stage", stage_name(stage)), sample_value(m.jobs_in(stage)));
    }
  }
  family("gigafab_factories", "gauge", "Registered factories by health (from the age of their last heartbeat).");
  for (const auto& m : all) {
    sample("gigafab_factories", m, label("health", "healthy"), sample_value(m.healthy));
    sample("gigafab_factories", m, label("health", "degraded"), sample_value(m.degraded));
    sample("gigafab_factories", m, label("health", "down"), sample_value(m.down));
  }
  struct Scalar {
    const char* name;
    const char* type;
    const char* help;
    std::string (*value)(const FleetMetrics&);
  };
  const Scalar scalars[] = {
      {"gigafab_seats", "gauge", "Seats of the registered factories.",
       [](const FleetMetrics& m) { return sample_value(m.seats); }},
      {"gigafab_seats_used", "gauge", "Leases held by the registered factories.",
       [](const FleetMetrics& m) { return sample_value(m.seats_used); }},
      {"gigafab_utilization_ratio", "gauge", "Seats used over seats of the factories that are not down (0 when none is).",
       [](const FleetMetrics& m) { return sample_value(m.utilization); }},
      {"gigafab_starving_jobs", "gauge", "Queued jobs waiting longer than the product's starvation window.",
       [](const FleetMetrics& m) { return sample_value(m.starving); }},
      {"gigafab_oldest_queued_seconds", "gauge", "Age of the oldest queued job (0 when none is queued).",
       [](const FleetMetrics& m) { return sample_value(m.oldest_queued_seconds); }},
      {"gigafab_spent_usd_total", "counter", "Cost reported by the runs of the product's jobs, in USD.",
       [](const FleetMetrics& m) { return sample_value(m.spent_usd); }},
      {"gigafab_spent_tokens_total", "counter", "Tokens reported by the runs of the product's jobs.",
       [](const FleetMetrics& m) { return sample_value(m.spent_tokens); }},
  };
  for (const auto& s : scalars) {
    family(s.name, s.type, s.help);
    for (const auto& m : all) sample(s.name, m, "", s.value(m));
  }
  return out;
}

}  // namespace gigafab::core
