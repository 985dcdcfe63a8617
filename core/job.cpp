#include "core/job.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <sstream>
#include "core/toml_schema.hpp"

namespace gigafab::core {

const char* stage_name(Stage stage) {
  switch (stage) {
    case Stage::queued: return "queued";
    case Stage::blocked: return "blocked";
    case Stage::assigned: return "assigned";
    case Stage::building: return "building";
    case Stage::review: return "review";
    case Stage::testing: return "testing";
    case Stage::shipped: return "shipped";
    case Stage::failed: return "failed";
    case Stage::dead_letter: return "dead_letter";
  }
  return "?";
}

Result<Stage> parse_stage(std::string_view name) {
  std::string names;
  for (Stage s : k_all_stages) {
    if (name == stage_name(s)) return s;
    names += names.empty() ? "" : ", ";
    names += stage_name(s);
  }
  return make_error(ErrorCode::usage, "unknown stage '" + std::string(name) + "' (one of: " + names + ")");
}

const char* priority_name(Priority priority) {
  switch (priority) {
    case Priority::low: return "low";
    case Priority::normal: return "normal";
    case Priority::high: return "high";
    case Priority::critical: return "critical";
  }
  return "?";
}

Result<Priority> parse_priority(std::string_view name) {
  for (Priority p : {Priority::low, Priority::normal, Priority::high, Priority::critical}) {
    if (name == priority_name(p)) return p;
  }
  return make_error(ErrorCode::usage,
                    "unknown priority '" + std::string(name) + "' (one of: low, normal, high, critical)");
}

Budget Budget::overlaid_with(const Budget& over) const {
  Budget out = *this;
  if (over.usd) out.usd = over.usd;
  if (over.wall_seconds) out.wall_seconds = over.wall_seconds;
  if (over.tokens) out.tokens = over.tokens;
  return out;
}

namespace {

toml::array to_array(const std::vector<std::string>& items) {
  toml::array out;
  for (const auto& item : items) out.push_back(item);
  return out;
}

}  // namespace

std::string job_to_toml(const Job& job) {
  toml::table t;
  t.insert("id", job.id);
  t.insert("product", job.product);
  t.insert("title", job.title);
  t.insert("stage", stage_name(job.stage));
  t.insert("priority", priority_name(job.priority));
  t.insert("capabilities", to_array(job.capabilities));
  t.insert("deps", to_array(job.deps));
  t.insert("profile", job.profile);
  t.insert("profile_version", job.profile_version);
  t.insert("idempotency_key", job.idempotency_key);
  t.insert("review", job.review);
  t.insert("lease_epoch", job.lease_epoch);
  t.insert("rev", job.rev);
  t.insert("attempts", job.attempts);
  t.insert("max_attempts", job.max_attempts);
  t.insert("engine", job.engine);
  t.insert("last_factory", job.last_factory);
  t.insert("checkpoint", job.checkpoint);
  t.insert("reason", job.reason);
  t.insert("event_seq", job.event_seq);
  t.insert("spent_usd", job.spent_usd);
  t.insert("spent_tokens", job.spent_tokens);
  t.insert("created_at", format_time(job.created_at));
  t.insert("updated_at", format_time(job.updated_at));
  toml::table budget;
  if (job.budget.usd) budget.insert("usd", *job.budget.usd);
  if (job.budget.wall_seconds) budget.insert("wall", format_duration(*job.budget.wall_seconds));
  if (job.budget.tokens) budget.insert("tokens", *job.budget.tokens);
  t.insert("budget", std::move(budget));
  toml::table repo;
  repo.insert("url", job.repo.url);
  repo.insert("base", job.repo.base);
  t.insert("repo", std::move(repo));
  std::ostringstream out;
  out << t << '\n';
  return out.str();
}

namespace {

// A Job from a document's fields, by dotted key ("budget.usd"): the one place
// that maps job.toml's keys onto the Job, for both readers. A missing or
// mistyped field is its default. Errors come in the order toml++'s path has
// always reported them.
template <typename Fields>
Result<Job> job_from_fields(const Fields& f, std::string_view origin) {
  auto corrupt = [&](std::string why) {
    return make_error(ErrorCode::error, "corrupt job document " + std::string(origin) + ": " + why);
  };
  auto str = [&](const char* key) { return f.string(key).value_or(std::string{}); };
  auto num = [&](const char* key) { return f.integer(key).value_or(0); };
  Job job;
  job.id = str("id");
  job.product = str("product");
  job.title = str("title");
  auto stage = parse_stage(str("stage"));
  if (!stage) return corrupt(stage.error().message);
  job.stage = *stage;
  auto priority = parse_priority(str("priority"));
  if (!priority) return corrupt(priority.error().message);
  job.priority = *priority;
  job.capabilities = f.strings("capabilities");
  job.deps = f.strings("deps");
  job.profile = str("profile");
  job.profile_version = num("profile_version");
  job.idempotency_key = str("idempotency_key");
  job.review = f.boolean("review").value_or(false);
  job.lease_epoch = num("lease_epoch");
  job.rev = num("rev");
  job.attempts = num("attempts");
  job.max_attempts = num("max_attempts");
  job.engine = str("engine");
  job.last_factory = str("last_factory");
  job.checkpoint = str("checkpoint");
  job.reason = str("reason");
  job.event_seq = num("event_seq");
  job.spent_usd = f.real("spent_usd").value_or(0.0);
  job.spent_tokens = num("spent_tokens");
  auto created = parse_time(str("created_at"));
  auto updated = parse_time(str("updated_at"));
  if (!created || !updated) return corrupt("bad created_at/updated_at");
  job.created_at = *created;
  job.updated_at = *updated;
  job.budget.usd = f.real("budget.usd");
  if (auto wall = f.string("budget.wall")) {
    auto seconds = parse_duration(*wall);
    if (!seconds) return corrupt(seconds.error().message);
    job.budget.wall_seconds = *seconds;
  }
  job.budget.tokens = f.integer("budget.tokens");
  job.repo.url = str("repo.url");
  job.repo.base = str("repo.base");
  if (job.id.empty()) return corrupt("missing id");
  return job;
}

// A parsed toml++ table as fields.
class TomlFields {
 public:
  explicit TomlFields(const toml::table& t) : m_t(t) {}
  std::optional<std::string> string(std::string_view key) const { return node(key).value<std::string>(); }
  std::optional<std::int64_t> integer(std::string_view key) const { return node(key).value<std::int64_t>(); }
  std::optional<double> real(std::string_view key) const { return node(key).value<double>(); }
  std::optional<bool> boolean(std::string_view key) const { return node(key).value<bool>(); }
  std::vector<std::string> strings(std::string_view key) const {
    std::vector<std::string> out;
    if (const toml::array* arr = node(key).as_array()) {
      for (const auto& item : *arr) out.push_back(item.value_or(std::string{}));
    }
    return out;
  }

 private:
  toml::node_view<const toml::node> node(std::string_view key) const {
    auto dot = key.find('.');
    if (dot == std::string_view::npos) return m_t[key];
    return m_t[key.substr(0, dot)][key.substr(dot + 1)];
  }
  const toml::table& m_t;
};

}  // namespace

namespace {

// The fast path of job_from_toml: the documents job_to_toml writes, read
// without a TOML DOM. It takes only a strict subset of TOML, line by line:
// `key = value` under the root, [budget] or [repo]; values a literal string
// ('...'), a basic string without escapes ("..."), an integer, a float, a
// boolean, or a one-line array of such strings; printable ASCII only. Each
// known key must hold the type job_to_toml gives it. Anything else (comments,
// escapes, non-ASCII text, other keys, a key twice, a value it cannot
// judge) returns nullopt, and toml++ reads the document instead, so what is
// accepted and every error message stay toml++'s.
class PlainJobReader {
 public:
  std::optional<Job> read(std::string_view text) {
    for (unsigned char c : text) {
      if (c != '\n' && (c < 0x20 || c > 0x7e)) return std::nullopt;
    }
    std::string_view table;
    while (!text.empty()) {
      std::size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      if (line.empty()) continue;
      if (line.front() == '[') {
        if (line == "[budget]" || line == "[repo]") {
          table = line.substr(1, line.size() - 2);
          bool& seen = table == "budget" ? m_budget_table : m_repo_table;
          if (seen) return std::nullopt;  // a table twice
          seen = true;
          continue;
        }
        return std::nullopt;
      }
      if (!member(table, line)) return std::nullopt;
    }
    return finish();
  }

 private:
  static std::string_view trim(std::string_view v) {
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    return v;
  }
  // A whole literal or escape-free basic string; nullopt otherwise.
  static std::optional<std::string> string_value(std::string_view v) {
    if (v.size() < 2 || (v.front() != '\'' && v.front() != '"') || v.back() != v.front()) return std::nullopt;
    std::string_view inner = v.substr(1, v.size() - 2);
    // No quote of its own kind inside (that includes ''' and """, which open
    // multi-line strings), and no escapes.
    if (inner.find(v.front()) != std::string_view::npos) return std::nullopt;
    if (v.front() == '"' && inner.find('\\') != std::string_view::npos) return std::nullopt;
    return std::string(inner);
  }
  static bool all_digits(std::string_view v) {
    if (v.empty()) return false;
    for (char c : v) {
      if (c < '0' || c > '9') return false;
    }
    return true;
  }
  static std::optional<std::int64_t> integer_value(std::string_view v) {
    std::string_view digits = v;
    if (digits.front() == '-' || digits.front() == '+') digits.remove_prefix(1);
    if (!all_digits(digits) || (digits.size() > 1 && digits.front() == '0')) return std::nullopt;
    if (v.front() == '+') v.remove_prefix(1);
    std::int64_t out = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
    return out;
  }
  // A float as TOML writes one: an integer part, then a fraction (.digits)
  // and/or an exponent (e, an optional sign, digits). Integers, inf and nan
  // are left to toml++.
  static std::optional<double> float_value(std::string_view v) {
    std::string_view rest = v;
    if (rest.front() == '-' || rest.front() == '+') rest.remove_prefix(1);
    std::size_t int_end = rest.find_first_not_of("0123456789");
    std::string_view int_part = rest.substr(0, int_end);
    if (!all_digits(int_part) || (int_part.size() > 1 && int_part.front() == '0')) return std::nullopt;
    rest.remove_prefix(int_part.size());
    bool fraction = false, exponent = false;
    if (!rest.empty() && rest.front() == '.') {
      rest.remove_prefix(1);
      std::size_t end = rest.find_first_not_of("0123456789");
      if (!all_digits(rest.substr(0, end))) return std::nullopt;
      rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
      fraction = true;
    }
    if (!rest.empty() && (rest.front() == 'e' || rest.front() == 'E')) {
      rest.remove_prefix(1);
      if (!rest.empty() && (rest.front() == '-' || rest.front() == '+')) rest.remove_prefix(1);
      if (!all_digits(rest)) return std::nullopt;
      rest = {};
      exponent = true;
    }
    if (!rest.empty() || (!fraction && !exponent)) return std::nullopt;
    if (v.front() == '+') v.remove_prefix(1);
    double out = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (ec != std::errc() || end != v.data() + v.size()) return std::nullopt;
    return out;
  }
  static std::optional<std::vector<std::string>> strings_value(std::string_view v) {
    if (v.size() < 2 || v.front() != '[' || v.back() != ']') return std::nullopt;
    std::string_view inner = trim(v.substr(1, v.size() - 2));
    std::vector<std::string> out;
    while (!inner.empty()) {
      char quote = inner.front();
      if (quote != '\'' && quote != '"') return std::nullopt;
      std::size_t close = inner.find(quote, 1);
      if (close == std::string_view::npos) return std::nullopt;
      auto item = string_value(inner.substr(0, close + 1));
      if (!item) return std::nullopt;
      out.push_back(std::move(*item));
      inner = trim(inner.substr(close + 1));
      if (inner.empty()) break;
      if (inner.front() != ',') return std::nullopt;
      inner = trim(inner.substr(1));
      if (inner.empty()) return std::nullopt;  // a trailing comma: toml++ decides
    }
    return out;
  }

  bool member(std::string_view table, std::string_view line) {
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view key = trim(line.substr(0, eq));
    std::string_view value = trim(line.substr(eq + 1));
    if (key.empty() || value.empty()) return false;
    for (char c : key) {
      if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
    }
    const Key* known = find_key(table, key);
    if (!known) return false;  // a key job_to_toml does not write
    const std::uint64_t bit = std::uint64_t{1} << (known - k_keys);
    if (m_seen & bit) return false;  // a key twice
    m_seen |= bit;
    switch (known->kind) {
      case Kind::string: {
        auto v = string_value(value);
        if (!v) return false;
        m_strings[known->slot] = std::move(*v);
        return true;
      }
      case Kind::integer: {
        auto v = integer_value(value);
        if (!v) return false;
        m_integers[known->slot] = *v;
        return true;
      }
      case Kind::real: {
        auto v = float_value(value);
        if (!v) return false;
        m_floats[known->slot] = *v;
        return true;
      }
      case Kind::boolean:
        if (value != "true" && value != "false") return false;
        m_review = value == "true";
        return true;
      case Kind::strings: {
        auto v = strings_value(value);
        if (!v) return false;
        (known->slot == 1 ? m_deps : m_capabilities) = std::move(*v);
        return true;
      }
    }
    return false;
  }

  // The keys job_to_toml writes (a table's as "table.key"), each with its
  // type and its slot among the values of that type: looked up without
  // building the key, and a bit each for "seen" (a listing of 100,000 jobs
  // read 2.5 million lines; sets and maps of strings were a tenth of it).
  enum class Kind { string, integer, real, boolean, strings };
  struct Key {
    std::string_view name;
    Kind kind;
    int slot;
  };
  static constexpr Key k_keys[] = {
      {"id", Kind::string, 0},           {"product", Kind::string, 1},       {"title", Kind::string, 2},
      {"stage", Kind::string, 3},        {"priority", Kind::string, 4},      {"profile", Kind::string, 5},
      {"idempotency_key", Kind::string, 6}, {"engine", Kind::string, 7},     {"last_factory", Kind::string, 8},
      {"checkpoint", Kind::string, 9},   {"reason", Kind::string, 10},       {"created_at", Kind::string, 11},
      {"updated_at", Kind::string, 12},  {"budget.wall", Kind::string, 13},  {"repo.url", Kind::string, 14},
      {"repo.base", Kind::string, 15},   {"profile_version", Kind::integer, 0}, {"lease_epoch", Kind::integer, 1},
      {"rev", Kind::integer, 2},         {"attempts", Kind::integer, 3},     {"max_attempts", Kind::integer, 4},
      {"event_seq", Kind::integer, 5},   {"spent_tokens", Kind::integer, 6}, {"budget.tokens", Kind::integer, 7},
      {"spent_usd", Kind::real, 0},      {"budget.usd", Kind::real, 1},      {"review", Kind::boolean, 0},
      {"capabilities", Kind::strings, 0}, {"deps", Kind::strings, 1}};
  static constexpr std::size_t k_strings = 16, k_integers = 8, k_reals = 2;

  // The entry for `key` under `table` ("" for the root), or null.
  static const Key* find_key(std::string_view table, std::string_view key) {
    for (const Key& k : k_keys) {
      const std::string_view name = k.name;
      if (table.empty() ? name == key
                        : name.size() == table.size() + 1 + key.size() && name.substr(0, table.size()) == table &&
                              name[table.size()] == '.' && name.substr(table.size() + 1) == key) {
        return &k;
      }
    }
    return nullptr;
  }
  // The entry named `full` ("table.key" for a table's) holding a `kind`,
  // or null: a field asked for by another name or type is missing, as it is
  // for toml++ (TomlFields).
  static const Key* key_named(std::string_view full, Kind kind) {
    for (const Key& k : k_keys) {
      if (k.name == full) return k.kind == kind ? &k : nullptr;
    }
    return nullptr;
  }

  // The fields read, for job_from_fields.
  friend class PlainFields;
  std::optional<Job> finish() const;

  bool m_budget_table = false, m_repo_table = false;
  std::uint64_t m_seen = 0;  // bit i: k_keys[i] was read
  std::array<std::optional<std::string>, k_strings> m_strings;
  std::array<std::optional<std::int64_t>, k_integers> m_integers;
  std::array<std::optional<double>, k_reals> m_floats;
  std::vector<std::string> m_capabilities, m_deps;
  std::optional<bool> m_review;
};

class PlainFields {
 public:
  explicit PlainFields(const PlainJobReader& r) : m_r(r) {}
  std::optional<std::string> string(std::string_view key) const { return slot(m_r.m_strings, key, Kind::string); }
  std::optional<std::int64_t> integer(std::string_view key) const { return slot(m_r.m_integers, key, Kind::integer); }
  std::optional<double> real(std::string_view key) const { return slot(m_r.m_floats, key, Kind::real); }
  std::optional<bool> boolean(std::string_view) const { return m_r.m_review; }
  std::vector<std::string> strings(std::string_view key) const {
    return key == "deps" ? m_r.m_deps : m_r.m_capabilities;
  }

 private:
  using Kind = PlainJobReader::Kind;
  template <typename Values>
  static typename Values::value_type slot(const Values& values, std::string_view key, Kind kind) {
    const PlainJobReader::Key* known = PlainJobReader::key_named(key, kind);
    return known ? values[static_cast<std::size_t>(known->slot)] : typename Values::value_type{};
  }
  const PlainJobReader& m_r;
};

// A document that fails a check is left to toml++, for its message.
std::optional<Job> PlainJobReader::finish() const {
  auto job = job_from_fields(PlainFields(*this), "");
  if (!job) return std::nullopt;
  return std::move(*job);
}

}  // namespace

std::optional<Job> job_from_plain_toml(std::string_view text) { return PlainJobReader().read(text); }

Result<Job> job_from_toml(std::string_view text, std::string_view origin) {
  if (auto plain = job_from_plain_toml(text)) return std::move(*plain);
  return job_from_toml_generic(text, origin);
}

Result<Job> job_from_toml_generic(std::string_view text, std::string_view origin) {
  auto parsed = parse_toml(std::string(text), origin);
  if (!parsed) {
    return make_error(ErrorCode::error, "corrupt job document " + std::string(origin) + ": " + parsed.error().message);
  }
  return job_from_fields(TomlFields(*parsed), origin);
}

}  // namespace gigafab::core
