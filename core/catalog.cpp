#include "core/catalog.hpp"

#include "core/suggest.hpp"

namespace gigafab::core {

Result<void> Catalog::add(std::string_view text, std::string_view origin, std::string_view expected_name) {
  auto profile = parse_profile(text, origin);
  if (!profile) return profile.error();
  if (!expected_name.empty() && profile->name != expected_name) {
    return make_error(ErrorCode::usage, std::string(origin) + ": profile name '" + profile->name +
                                            "' does not match its file name '" + std::string(expected_name) + ".md'");
  }
  std::string name = profile->name;
  m_profiles.insert_or_assign(name, std::make_pair(std::move(*profile), std::string(origin)));
  return {};
}

Result<Profile> Catalog::find(std::string_view name) const {
  if (auto it = m_profiles.find(name); it != m_profiles.end()) return it->second.first;
  std::vector<std::string> names;
  for (const auto& [known, _] : m_profiles) names.push_back(known);
  std::string msg = "unknown profile '" + std::string(name) + "'";
  if (auto guess = closest_match(name, names)) msg += " (did you mean '" + *guess + "'?)";
  return make_error(ErrorCode::not_found, msg);
}

std::vector<Profile> Catalog::all() const {
  std::vector<Profile> out;
  for (const auto& [_, entry] : m_profiles) out.push_back(entry.first);
  return out;
}

std::string Catalog::origin_of(std::string_view name) const {
  auto it = m_profiles.find(name);
  return it == m_profiles.end() ? std::string{} : it->second.second;
}

}  // namespace gigafab::core
