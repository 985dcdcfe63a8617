// The persona catalog: the profiles shipped inside the binary, overlaid by a
// directory of the user's own (GIGAFAB_PROFILES). Later sources win by name.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/profile.hpp"

namespace gigafab::core {

class Catalog {
 public:
  // Parses and adds one profile document; a profile of the same name is
  // replaced. Usage error (naming origin and line) when it does not parse or
  // when its name differs from `expected_name` (the file name), if given.
  Result<void> add(std::string_view text, std::string_view origin, std::string_view expected_name = {});

  // Not found: "unknown profile 'x' (did you mean 'y'?)".
  Result<Profile> find(std::string_view name) const;
  std::vector<Profile> all() const;  // sorted by name
  // Where the profile of that name was read from ("builtin:backend-dev.md", a path).
  std::string origin_of(std::string_view name) const;

 private:
  std::map<std::string, std::pair<Profile, std::string>, std::less<>> m_profiles;
};

}  // namespace gigafab::core
