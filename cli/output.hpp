// Printing: JSON documents, aligned tables, and errors in git's style.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace gigafab::cli {

// One JSON document on stdout, pretty-printed, newline-terminated.
void print_json(const nlohmann::json& doc);

// Rows of cells printed with columns padded to their widest cell; the last
// column is never padded.
void print_table(const std::vector<std::vector<std::string>>& rows);

// "gigafab: <scope>: <message>" on stderr (just "gigafab: <message>" when
// scope is empty) and, when `json`, {"error": {"code", "message"}} on stdout.
void print_error(std::string_view scope, const core::Error& error, bool json);

}  // namespace gigafab::cli
