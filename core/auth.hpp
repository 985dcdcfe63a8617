// API tokens: who may call `gigafab serve`.
//
// A token is the string "gf_<id>_<secret>". <id> (12 base32 characters) names
// the token's document, auth/tokens/<id>.toml, so checking a token is one file
// read; <secret> (32 base32 characters, 160 random bits) is never stored: the
// document keeps a random 16-byte salt and hex(sha256(salt || secret)), and
// the check compares hashes in constant time. Operator tokens belong to one
// product or to every product ("*"); a factory token belongs to its factory's
// product, and auth/factories/<factory> names the factory's one live token so
// rotate and revoke find it without a scan. Revoking deletes the document (the
// history keeps the audit trail), so a revoked or rotated-out token is simply
// unknown. The operations below are pure: they take the random material as
// input and return the Change to commit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/snapshot.hpp"

namespace gigafab::core {

// "operator" is a keyword, hence the underscore; role_name() gives the word.
enum class Role { operator_, factory };

const char* role_name(Role role);
std::optional<Role> parse_role(std::string_view text);

// The product of a token that acts on every product.
inline constexpr std::string_view k_all_products = "*";

// A token as stored: everything but the secret.
struct TokenRecord {
  std::string id;
  Role role = Role::operator_;
  std::string product;  // a product name, or "*" (operator tokens only)
  std::string factory;  // factory tokens only
  std::string name;     // free label ("" when none)
  std::string salt;     // lowercase hex of 16 random bytes
  std::string hash;     // lowercase hex of sha256(salt bytes || secret)
  Millis created_at = 0;
};

// A freshly issued token: `token` is the only copy of the secret; show it to
// the user once and drop it.
struct IssuedToken {
  std::string token;
  TokenRecord record;
};

// Who a valid token speaks for.
struct Principal {
  Role role = Role::operator_;
  std::string product;  // "*" for an all-products operator
  std::string factory;  // factory tokens only
  std::string token_id;
  std::string name;
};

// The random parts of a new token. `salt` is 16 raw bytes.
struct TokenMaterial {
  std::string id;
  std::string secret;
  std::string salt;
};

// Fresh material from OpenSSL's RAND_bytes; an error only if the generator fails.
Result<TokenMaterial> random_token_material();

// "gf_<id>_<secret>".
std::string format_token(std::string_view id, std::string_view secret);

struct ParsedToken {
  std::string id;
  std::string secret;
};
// Splits a token string; unauthorized ("invalid token") unless it has exactly
// the shape format_token produces.
Result<ParsedToken> parse_token(std::string_view token);

// Usage error naming the id unless it is 12 characters of a-z, 2-7.
Result<void> validate_token_id(std::string_view id);

// hex(sha256(salt || secret)), `salt` raw.
std::string hash_secret(std::string_view salt, std::string_view secret);
// True when `secret` hashes to the record's hash (constant-time comparison).
bool verify_secret(const TokenRecord& record, std::string_view secret);

// The document stored at layout::token_doc(id), and back. from_toml fails
// (ErrorCode::error, "corrupt token document ...") on anything malformed.
std::string token_to_toml(const TokenRecord& record);
Result<TokenRecord> token_from_toml(std::string_view text, std::string_view origin);

// True when a token of `token_product` is visible to a caller scoped to
// `scope`: the same product, or any token when scope is "*".
bool in_scope(std::string_view token_product, std::string_view scope);
// True when the principal may act on `product` (its own, or any for "*").
bool may_act_on(const Principal& principal, std::string_view product);

// The token with this id, or nullopt. The id must be valid.
Result<std::optional<TokenRecord>> find_token(const Snapshot& state, std::string_view id);
// The factory's live token, or nullopt when it has none.
Result<std::optional<TokenRecord>> factory_token(const Snapshot& state, std::string_view factory);
// Every token in scope (see in_scope), oldest first, then by id.
Result<std::vector<TokenRecord>> list_tokens(const Snapshot& state, std::string_view scope);

// The principal of a valid token. unauthorized ("invalid token") for a
// malformed, unknown, revoked, rotated-out or mismatching token; error only
// when the store cannot be read.
Result<Principal> authenticate(const Snapshot& state, std::string_view token);

// What a token operation commits, and the token it issued or removed.
struct TokenChange {
  Change change;
  IssuedToken issued;  // for a revoke: the removed record, token ""
};

struct OperatorTokenInput {
  std::string product;  // a product name, or "*" for every product
  std::string name;     // optional label: a name (see validate_name) or ""
  std::string actor;
};

// A new operator token. Usage errors for an invalid product or name;
// conflict in the (astronomically unlikely) case that the id is taken.
Result<TokenChange> create_operator_token(const Snapshot& state, const OperatorTokenInput& input,
                                          const TokenMaterial& material, Millis now);

struct EnrollInput {
  std::string factory;
  std::string product;
  std::optional<std::vector<std::string>> capabilities;  // unset: keep the registered ones
  std::optional<std::int64_t> seats;
  std::string actor;
};

// Registers the factory if needed (as a heartbeat would, see
// register_factory) and issues its token. Conflict when the factory already
// has a live token (rotate it instead) or is registered to another product;
// usage errors for invalid input.
Result<TokenChange> enroll_factory(const Snapshot& state, const EnrollInput& input, const TokenMaterial& material,
                                   Millis now);
// Replaces the factory's token: the old one is unknown from this commit on.
// not_found when the factory is not registered to `product` or has no token.
Result<TokenChange> rotate_factory_token(const Snapshot& state, const std::string& factory,
                                         const std::string& product, const std::string& actor,
                                         const TokenMaterial& material, Millis now);
// Removes the factory's token; not_found as for rotate.
Result<TokenChange> revoke_factory_token(const Snapshot& state, const std::string& factory,
                                         const std::string& product, const std::string& actor);
// Removes any token by id (a factory's too). Usage error for a malformed id;
// not_found unless the token exists and is in `scope` (see in_scope).
Result<TokenChange> revoke_token_id(const Snapshot& state, const std::string& id, const std::string& scope,
                                    const std::string& actor);

}  // namespace gigafab::core
