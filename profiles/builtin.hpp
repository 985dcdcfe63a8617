// The persona catalog compiled into the binary (see CMakeLists.txt here).
#pragma once

#include <string_view>
#include <vector>

namespace gigafab::profiles {

struct BuiltinProfile {
  std::string_view file_name;  // "backend-dev.md"
  std::string_view text;
};

const std::vector<BuiltinProfile>& builtin();

}  // namespace gigafab::profiles
