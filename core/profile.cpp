#include "core/profile.hpp"

#include "core/front_matter.hpp"
#include "core/ids.hpp"
#include "core/toml_schema.hpp"

namespace gigafab::core {

namespace {

const std::vector<Field>& profile_fields() {
  static const std::vector<Field> fields = {
      {"name", FieldType::string, {}},
      {"version", FieldType::integer, {}},
      {"description", FieldType::string, {}},
      {"capabilities", FieldType::string_list, {}},
      {"engine", FieldType::string, {}},
      {"review", FieldType::boolean, {}},
      {"budget",
       FieldType::table,
       {{"usd", FieldType::number, {}}, {"wall", FieldType::string, {}}, {"tokens", FieldType::integer, {}}}},
  };
  return fields;
}

}  // namespace

Result<Profile> parse_profile(std::string_view text, std::string_view origin) {
  auto split = split_front_matter(text, origin);
  if (!split) return split.error();
  if (!split->present) {
    return make_error(ErrorCode::usage, std::string(origin) + ":1: a profile must start with '+++' front matter");
  }
  auto parsed = parse_toml(split->toml, origin);
  if (!parsed) return parsed.error();
  const toml::table& t = *parsed;
  if (auto checked = check_schema(t, profile_fields(), origin); !checked) return checked.error();

  auto at = [&](std::string_view path) {
    const toml::node* node = t.at_path(path).node();
    return where(origin, node ? node->source() : toml::source_region{});
  };
  Profile p;
  p.text = std::string(text);
  p.persona = std::move(split->body);
  p.name = t["name"].value_or(std::string{});
  if (auto ok = validate_name("profile name", p.name); !ok) {
    return make_error(ErrorCode::usage, at("name") + ok.error().message);
  }
  p.version = t["version"].value_or(std::int64_t{0});
  if (p.version < 1) return make_error(ErrorCode::usage, at("version") + "'version' must be an integer >= 1");
  p.description = t["description"].value_or(std::string{});
  if (const toml::array* caps = t["capabilities"].as_array()) {
    for (const auto& cap : *caps) {
      std::string name = cap.value_or(std::string{});
      if (auto ok = validate_name("capability", name); !ok) {
        return make_error(ErrorCode::usage, at("capabilities") + ok.error().message);
      }
      p.capabilities.push_back(name);
    }
  }
  p.engine = t["engine"].value_or(std::string{});
  if (!p.engine.empty()) {
    if (auto ok = validate_name("engine", p.engine); !ok) return make_error(ErrorCode::usage, at("engine") + ok.error().message);
  }
  p.review = t["review"].value_or(false);
  if (auto usd = t["budget"]["usd"].value<double>()) {
    if (*usd < 0) return make_error(ErrorCode::usage, at("budget.usd") + "'budget.usd' must not be negative");
    p.budget.usd = *usd;
  }
  if (auto wall = t["budget"]["wall"].value<std::string>()) {
    auto seconds = parse_duration(*wall);
    if (!seconds) return make_error(ErrorCode::usage, at("budget.wall") + "'budget.wall' " + seconds.error().message);
    if (*seconds <= 0) return make_error(ErrorCode::usage, at("budget.wall") + "'budget.wall' must be longer than zero");
    p.budget.wall_seconds = *seconds;
  }
  if (auto tokens = t["budget"]["tokens"].value<std::int64_t>()) {
    if (*tokens < 0) return make_error(ErrorCode::usage, at("budget.tokens") + "'budget.tokens' must not be negative");
    p.budget.tokens = *tokens;
  }
  return p;
}

}  // namespace gigafab::core
