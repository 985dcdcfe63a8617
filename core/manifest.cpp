#include "core/manifest.hpp"

#include <algorithm>

#include "core/front_matter.hpp"
#include "core/ids.hpp"
#include "core/toml_schema.hpp"

namespace gigafab::core {

namespace {

const std::vector<Field>& manifest_fields() {
  static const std::vector<Field> fields = {
      {"title", FieldType::string, {}},
      {"profile", FieldType::string, {}},
      {"capabilities", FieldType::string_list, {}},
      {"priority", FieldType::string, {}},
      {"deps", FieldType::string_list, {}},
      {"idempotency_key", FieldType::string, {}},
      {"max_attempts", FieldType::integer, {}},
      {"review", FieldType::boolean, {}},
      {"budget",
       FieldType::table,
       {{"usd", FieldType::number, {}}, {"wall", FieldType::string, {}}, {"tokens", FieldType::integer, {}}}},
      {"repo", FieldType::table, {{"url", FieldType::string, {}}, {"base", FieldType::string, {}}}},
  };
  return fields;
}

bool blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

std::string collapse_whitespace(std::string_view text) {
  std::string out;
  for (char c : text) {
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

Result<Manifest> parse_manifest(std::string_view text, std::string_view origin) {
  auto split = split_front_matter(text, origin);
  if (!split) return split.error();
  Manifest m;
  m.body = std::move(split->body);
  if (blank(m.body)) {
    return make_error(ErrorCode::usage, std::string(origin) + ":" + std::to_string(split->body_line) +
                                            ": the manifest body is empty (describe the job below the front matter)");
  }

  toml::table table;
  if (split->present) {
    auto parsed = parse_toml(split->toml, origin);
    if (!parsed) return parsed.error();
    table = std::move(*parsed);
    if (auto checked = check_schema(table, manifest_fields(), origin); !checked) return checked.error();
  }
  auto bad = [&](std::string_view key, const std::string& why) {
    const toml::node* node = table.at_path(key).node();
    return make_error(ErrorCode::usage, where(origin, node ? node->source() : toml::source_region{}) + "'" +
                                            std::string(key) + "' " + why);
  };

  if (auto title = table["title"].value<std::string>()) m.title = collapse_whitespace(*title);
  if (m.title.empty()) m.title = collapse_whitespace(first_heading(m.body));
  if (m.title.empty()) {
    return make_error(ErrorCode::usage,
                      std::string(origin) + ":" + std::to_string(split->body_line) +
                          ": the job has no title (set 'title' or start the body with a '# ' heading)");
  }
  if (auto profile = table["profile"].value<std::string>()) {
    if (auto ok = validate_name("profile", *profile); !ok) return bad("profile", ok.error().message);
    m.profile = *profile;
  }
  if (const toml::array* caps = table["capabilities"].as_array()) {
    for (const auto& cap : *caps) {
      std::string name = cap.value_or(std::string{});
      if (auto ok = validate_name("capability", name); !ok) return bad("capabilities", ok.error().message);
      m.capabilities.push_back(name);
    }
  }
  if (auto priority = table["priority"].value<std::string>()) {
    auto p = parse_priority(*priority);
    if (!p) return bad("priority", p.error().message);
    m.priority = *p;
  }
  if (const toml::array* deps = table["deps"].as_array()) {
    for (const auto& dep : *deps) {
      std::string id = dep.value_or(std::string{});
      if (auto ok = validate_job_id(id); !ok) return bad("deps", ok.error().message);
      m.deps.push_back(id);
    }
  }
  if (auto key = table["idempotency_key"].value<std::string>()) {
    if (key->empty() || key->size() > 256) return bad("idempotency_key", "must be 1 to 256 characters");
    m.idempotency_key = *key;
  }
  if (auto attempts = table["max_attempts"].value<std::int64_t>()) {
    if (*attempts < 1 || *attempts > 100) return bad("max_attempts", "must be between 1 and 100");
    m.max_attempts = *attempts;
  }
  if (auto review = table["review"].value<bool>()) m.review = *review;
  if (auto usd = table["budget"]["usd"].value<double>()) {
    if (*usd < 0) return bad("budget.usd", "must not be negative");
    m.budget.usd = *usd;
  }
  if (auto wall = table["budget"]["wall"].value<std::string>()) {
    auto seconds = parse_duration(*wall);
    if (!seconds) return bad("budget.wall", seconds.error().message);
    if (*seconds <= 0) return bad("budget.wall", "must be longer than zero");
    m.budget.wall_seconds = *seconds;
  }
  if (auto tokens = table["budget"]["tokens"].value<std::int64_t>()) {
    if (*tokens < 0) return bad("budget.tokens", "must not be negative");
    m.budget.tokens = *tokens;
  }
  m.repo.url = table["repo"]["url"].value_or(std::string{});
  m.repo.base = table["repo"]["base"].value_or(std::string{});
  return m;
}

}  // namespace gigafab::core
