#include "cli/output.hpp"
#include "core/wire.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace gigafab::cli {

void print_json(const nlohmann::json& doc) {
  std::string text = doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (row.size() > widths.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::fprintf(stdout, "%s\n", line.c_str());
  }
}

void print_error(std::string_view scope, const core::Error& error, bool json) {
  std::string prefix = "gigafab: ";
  if (!scope.empty()) prefix += std::string(scope) + ": ";
  std::fprintf(stderr, "%s%s\n", prefix.c_str(), error.message.c_str());
  if (json) {
    print_json(core::error_to_json(error));
  }
}

}  // namespace gigafab::cli
