// gigafab token create|list|revoke: operator API tokens for `gigafab serve`.
// Works on a local store only. A token is printed once, when it is created;
// the store keeps a salted hash (core/auth.hpp). Factory tokens come from
// `gigafab factory enroll|rotate|revoke`, but list and revoke see them too.
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/token_output.hpp"
#include "core/ids.hpp"
#include "gitstore/local_fleet.hpp"

namespace gigafab::cli {

Runner define_token(CLI::App& app, Context&) {
  app.require_subcommand(1);
  CLI::App* create = app.add_subcommand("create", "create an operator token for the product; prints it once");
  CLI::App* list = app.add_subcommand("list", "the product's tokens: id, role, product, factory, name, created");
  CLI::App* revoke = app.add_subcommand("revoke", "revoke a token by id; it stops working at once");
  for (CLI::App* sub : {create, list, revoke}) sub->fallthrough();
  struct Options {
    bool operator_role = false;
    bool all_products = false;
    std::string name;
    std::string id;
  };
  auto opts = std::make_shared<Options>();
  create->add_flag("--operator", opts->operator_role, "the token acts as an operator (required)");
  create->add_option("--name", opts->name, "a label for the token, shown by token list");
  const char* all_help = "every product, not just --product (stored as product *)";
  create->add_flag("--all-products", opts->all_products, all_help);
  list->add_flag("--all-products", opts->all_products, "tokens of every product");
  revoke->add_option("token-id", opts->id, "the token's id (as token list shows it)")->required();
  revoke->add_flag("--all-products", opts->all_products, "the token may belong to any product");
  return [opts, create, revoke](Context& ctx) -> Result<void> {
    // "*" comes only from --all-products, never from --product.
    if (auto ok = core::validate_name("product", ctx.globals.product); !ok) return ok.error();
    std::string scope = opts->all_products ? std::string(core::k_all_products) : ctx.globals.product;
    if (create->parsed() && !opts->operator_role) {
      return core::make_error(core::ErrorCode::usage,
                              "say --operator (factory tokens come from 'gigafab factory enroll')");
    }
    auto fleet = ctx.local_fleet("token");
    if (!fleet) return fleet.error();
    if (create->parsed()) {
      auto issued = (*fleet)->create_operator_token(scope, opts->name);
      if (!issued) return issued.error();
      print_issued_token(*issued, ctx.globals.json);
      return {};
    }
    if (revoke->parsed()) {
      auto revoked = (*fleet)->revoke_token_id(opts->id, scope);
      if (!revoked) return revoked.error();
      print_revoked_token(*revoked, ctx.globals.json);
      return {};
    }
    auto tokens = (*fleet)->tokens(scope);
    if (!tokens) return tokens.error();
    print_token_list(*tokens, ctx.globals.json);
    return {};
  };
}

}  // namespace gigafab::cli
