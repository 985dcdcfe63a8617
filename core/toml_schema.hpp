// Internal to core/ (includes toml++): checks a parsed TOML table against the
// keys a document may have, so that every manifest and profile error names
// the key and line and suggests the closest known key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "core/error.hpp"

namespace gigafab::core {

enum class FieldType { string, string_list, integer, number, boolean, table };

struct Field {
  std::string_view key;
  FieldType type;
  std::vector<Field> children;  // for tables
};

// Usage error "<origin>:<line>: ..." for the first unknown key or wrong type.
Result<void> check_schema(const toml::table& table, const std::vector<Field>& fields, std::string_view origin,
                          const std::string& prefix = "");

// Parses `toml_text`, reporting syntax errors as "<origin>:<line>: <why>".
Result<toml::table> parse_toml(const std::string& toml_text, std::string_view origin);

// "<origin>:<line>: " for a node (or just "<origin>: " when it has no source).
std::string where(std::string_view origin, const toml::source_region& source);

}  // namespace gigafab::core
