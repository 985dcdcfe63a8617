#include "core/toml_schema.hpp"

#include "core/suggest.hpp"

namespace gigafab::core {

namespace {

const char* type_word(FieldType type) {
  switch (type) {
    case FieldType::string: return "a string";
    case FieldType::string_list: return "an array of strings";
    case FieldType::integer: return "an integer";
    case FieldType::number: return "a number";
    case FieldType::boolean: return "a boolean (true or false)";
    case FieldType::table: return "a table";
  }
  return "?";
}

const char* node_word(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

bool matches(const toml::node& node, FieldType type) {
  switch (type) {
    case FieldType::string: return node.is_string();
    case FieldType::integer: return node.is_integer();
    case FieldType::number: return node.is_integer() || node.is_floating_point();
    case FieldType::boolean: return node.is_boolean();
    case FieldType::table: return node.is_table();
    case FieldType::string_list: {
      const toml::array* arr = node.as_array();
      if (!arr) return false;
      for (const auto& item : *arr) {
        if (!item.is_string()) return false;
      }
      return true;
    }
  }
  return false;
}

}  // namespace

std::string where(std::string_view origin, const toml::source_region& source) {
  if (source.begin.line == 0) return std::string(origin) + ": ";
  return std::string(origin) + ":" + std::to_string(source.begin.line) + ": ";
}

Result<toml::table> parse_toml(const std::string& toml_text, std::string_view origin) {
  // The Debian build of toml++ reports errors by exception.
  try {
    return toml::parse(toml_text, origin);
  } catch (const toml::parse_error& err) {
    return make_error(ErrorCode::usage,
                      where(origin, err.source()) + "malformed TOML: " + std::string(err.description()));
  }
}

Result<void> check_schema(const toml::table& table, const std::vector<Field>& fields, std::string_view origin,
                          const std::string& prefix) {
  for (const auto& [key, node] : table) {
    std::string name = prefix + std::string(key.str());
    const Field* field = nullptr;
    for (const auto& f : fields) {
      if (f.key == key.str()) field = &f;
    }
    if (!field) {
      std::vector<std::string> known;
      for (const auto& f : fields) known.push_back(prefix + std::string(f.key));
      std::string msg = where(origin, key.source()) + "unknown key '" + name + "'";
      if (auto guess = closest_match(name, known)) msg += " (did you mean '" + *guess + "'?)";
      return make_error(ErrorCode::usage, msg);
    }
    if (!matches(node, field->type)) {
      return make_error(ErrorCode::usage, where(origin, key.source()) + "'" + name + "' must be " +
                                              type_word(field->type) + ", not " + node_word(node));
    }
    if (field->type == FieldType::table) {
      auto nested = check_schema(*node.as_table(), field->children, origin, name + ".");
      if (!nested) return nested;
    }
  }
  return {};
}

}  // namespace gigafab::core
