#include "cli/token_output.hpp"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/output.hpp"
#include "core/json.hpp"

namespace gigafab::cli {

namespace {

std::string scope_text(const core::TokenRecord& r) {
  return r.product == core::k_all_products ? "all products" : "product " + r.product;
}

}  // namespace

void print_issued_token(const core::IssuedToken& issued, bool json) {
  const core::TokenRecord& r = issued.record;
  if (json) {
    nlohmann::json doc = core::token_to_json(r);
    doc["token"] = issued.token;
    print_json(doc);
    return;
  }
  std::printf("%s\n", issued.token.c_str());
  std::string who = r.role == core::Role::factory ? "factory " + r.factory + ", " : std::string("operator, ");
  std::fprintf(stderr, "token %s (%s%s): store it now, it is not shown again\n", r.id.c_str(), who.c_str(),
               scope_text(r).c_str());
}

void print_revoked_token(const core::TokenRecord& record, bool json) {
  if (json) {
    nlohmann::json doc = core::token_to_json(record);
    doc["revoked"] = true;
    print_json(doc);
    return;
  }
  std::printf("%s revoked\n", record.id.c_str());
}

void print_token_list(const std::vector<core::TokenRecord>& records, bool json) {
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : records) list.push_back(core::token_to_json(r));
    print_json({{"tokens", std::move(list)}});
    return;
  }
  if (records.empty()) return;
  std::vector<std::vector<std::string>> rows = {{"ID", "ROLE", "PRODUCT", "FACTORY", "NAME", "CREATED"}};
  for (const auto& r : records) {
    rows.push_back({r.id, core::role_name(r.role), r.product, r.factory.empty() ? "-" : r.factory,
                    r.name.empty() ? "-" : r.name, core::format_time(r.created_at)});
  }
  print_table(rows);
}

}  // namespace gigafab::cli
