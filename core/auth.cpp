#include "core/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <sstream>

#include "core/factories.hpp"
#include "core/hash.hpp"
#include "core/ids.hpp"
#include "core/layout.hpp"
#include "core/toml_schema.hpp"

namespace gigafab::core {

namespace {

constexpr std::string_view k_base32 = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::string_view k_prefix = "gf_";
constexpr std::size_t k_id_chars = 12;      // 60 bits
constexpr std::size_t k_secret_chars = 32;  // 160 bits
constexpr std::size_t k_salt_bytes = 16;

bool is_base32(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return k_base32.find(c) != std::string_view::npos; });
}

bool is_hex(std::string_view text, std::size_t length) {
  return text.size() == length &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The first `chars` base32 characters of `bytes`, most significant bits first.
std::string base32(const unsigned char* bytes, std::size_t chars) {
  std::string out;
  for (std::size_t i = 0; i < chars; ++i) {
    std::size_t bit = i * 5;
    unsigned value = (static_cast<unsigned>(bytes[bit / 8]) << 8) | bytes[bit / 8 + 1];
    out += k_base32[(value >> (11 - bit % 8)) & 31];
  }
  return out;
}

std::string to_hex(std::string_view bytes) {
  static const char* k_hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += k_hex[c >> 4];
    out += k_hex[c & 15];
  }
  return out;
}

std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1]));
  return out;
}

Error invalid_token() { return make_error(ErrorCode::unauthorized, "invalid token"); }

const std::vector<Field>& token_fields() {
  static const std::vector<Field> fields = {
      {"id", FieldType::string, {}},      {"role", FieldType::string, {}}, {"product", FieldType::string, {}},
      {"factory", FieldType::string, {}}, {"name", FieldType::string, {}}, {"salt", FieldType::string, {}},
      {"hash", FieldType::string, {}},    {"created_at", FieldType::string, {}},
  };
  return fields;
}

Result<void> validate_scope(std::string_view product) {
  if (product == k_all_products) return {};
  return validate_name("product", product);
}

TokenRecord new_record(const TokenMaterial& material, Role role, std::string product, std::string factory,
                       std::string name, Millis now) {
  TokenRecord r;
  r.id = material.id;
  r.role = role;
  r.product = std::move(product);
  r.factory = std::move(factory);
  r.name = std::move(name);
  r.salt = to_hex(material.salt);
  r.hash = hash_secret(material.salt, material.secret);
  r.created_at = now;
  return r;
}

Result<void> check_material(const Snapshot& state, const TokenMaterial& material) {
  if (material.id.size() != k_id_chars || !is_base32(material.id) || material.secret.size() != k_secret_chars ||
      !is_base32(material.secret) || material.salt.size() != k_salt_bytes) {
    return make_error(ErrorCode::error, "malformed token material");
  }
  auto taken = state.read(layout::token_doc(material.id));
  if (!taken) return taken.error();
  if (*taken) return make_error(ErrorCode::conflict, "token id " + material.id + " is already taken");
  return {};
}

// The factory registered to `product`, or not_found.
Result<FactoryRecord> registered_factory(const Snapshot& state, const std::string& factory,
                                         const std::string& product) {
  if (auto ok = validate_name("factory", factory); !ok) return ok.error();
  if (auto ok = validate_name("product", product); !ok) return ok.error();
  auto record = find_factory(state, factory);
  if (!record) return record.error();
  if (!*record || (*record)->product != product) {
    return make_error(ErrorCode::not_found, "factory " + factory + " not found");
  }
  return std::move(**record);
}

// The factory's live token, or not_found telling how to get one.
Result<TokenRecord> live_factory_token(const Snapshot& state, const std::string& factory) {
  auto current = factory_token(state, factory);
  if (!current) return current.error();
  if (!*current) {
    return make_error(ErrorCode::not_found,
                      "factory " + factory + " has no token (issue one with 'gigafab factory enroll " + factory + "')");
  }
  return std::move(**current);
}

std::vector<Trailer> token_trailers(const char* op, const TokenRecord& r, const std::string& actor) {
  std::vector<Trailer> out = {{"Gigafab-Op", op}, {"Gigafab-Token", r.id}, {"Gigafab-Role", role_name(r.role)}};
  if (!r.factory.empty()) out.emplace_back("Gigafab-Factory", r.factory);
  // An all-products token has no Gigafab-Product: it is store-wide, so every product's log shows it.
  if (r.product != k_all_products) out.emplace_back("Gigafab-Product", r.product);
  out.emplace_back("Gigafab-Actor", actor);
  return out;
}

}  // namespace

const char* role_name(Role role) { return role == Role::factory ? "factory" : "operator"; }

std::optional<Role> parse_role(std::string_view text) {
  if (text == "operator") return Role::operator_;
  if (text == "factory") return Role::factory;
  return std::nullopt;
}

Result<TokenMaterial> random_token_material() {
  unsigned char id[8 + 1] = {};
  unsigned char secret[20 + 1] = {};  // one spare byte: base32() reads a byte ahead
  unsigned char salt[k_salt_bytes];
  if (RAND_bytes(id, 8) != 1 || RAND_bytes(secret, 20) != 1 || RAND_bytes(salt, sizeof salt) != 1) {
    return make_error(ErrorCode::error, "cannot generate a token: the random number generator failed");
  }
  TokenMaterial m;
  m.id = base32(id, k_id_chars);
  m.secret = base32(secret, k_secret_chars);
  m.salt.assign(reinterpret_cast<const char*>(salt), sizeof salt);
  OPENSSL_cleanse(secret, sizeof secret);
  return m;
}

std::string format_token(std::string_view id, std::string_view secret) {
  return std::string(k_prefix) + std::string(id) + "_" + std::string(secret);
}

Result<ParsedToken> parse_token(std::string_view token) {
  if (token.size() != k_prefix.size() + k_id_chars + 1 + k_secret_chars || !token.starts_with(k_prefix) ||
      token[k_prefix.size() + k_id_chars] != '_') {
    return invalid_token();
  }
  ParsedToken parsed{std::string(token.substr(k_prefix.size(), k_id_chars)),
                     std::string(token.substr(k_prefix.size() + k_id_chars + 1))};
  if (!is_base32(parsed.id) || !is_base32(parsed.secret)) return invalid_token();
  return parsed;
}

Result<void> validate_token_id(std::string_view id) {
  if (id.size() != k_id_chars || !is_base32(id)) {
    return make_error(ErrorCode::usage, "invalid token id '" + escape_for_message(id) +
                                            "' (expected 12 characters of a-z, 2-7)");
  }
  return {};
}

std::string hash_secret(std::string_view salt, std::string_view secret) {
  std::string salted(salt);
  salted += secret;
  std::string hash = sha256_hex(salted);
  OPENSSL_cleanse(salted.data(), salted.size());
  return hash;
}

bool verify_secret(const TokenRecord& record, std::string_view secret) {
  if (!is_hex(record.salt, 2 * k_salt_bytes) || !is_hex(record.hash, 64)) return false;
  std::string actual = hash_secret(from_hex(record.salt), secret);
  return CRYPTO_memcmp(actual.data(), record.hash.data(), actual.size()) == 0;
}

std::string token_to_toml(const TokenRecord& r) {
  toml::table t;
  t.insert("id", r.id);
  t.insert("role", role_name(r.role));
  t.insert("product", r.product);
  if (!r.factory.empty()) t.insert("factory", r.factory);
  if (!r.name.empty()) t.insert("name", r.name);
  t.insert("salt", r.salt);
  t.insert("hash", r.hash);
  t.insert("created_at", format_time(r.created_at));
  std::ostringstream out;
  out << t << '\n';
  return out.str();
}

Result<TokenRecord> token_from_toml(std::string_view text, std::string_view origin) {
  auto corrupt = [&](const std::string& why) {
    return make_error(ErrorCode::error, "corrupt token document " + std::string(origin) + ": " + why);
  };
  auto parsed = parse_toml(std::string(text), origin);
  if (!parsed) return corrupt(parsed.error().message);
  const toml::table& t = *parsed;
  if (auto ok = check_schema(t, token_fields(), origin); !ok) return corrupt(ok.error().message);
  TokenRecord r;
  r.id = t["id"].value_or(std::string{});
  auto role = parse_role(t["role"].value_or(std::string{}));
  r.product = t["product"].value_or(std::string{});
  r.factory = t["factory"].value_or(std::string{});
  r.name = t["name"].value_or(std::string{});
  r.salt = t["salt"].value_or(std::string{});
  r.hash = t["hash"].value_or(std::string{});
  auto created = parse_time(t["created_at"].value_or(std::string{}));
  if (!validate_token_id(r.id)) return corrupt("bad id");
  if (!role) return corrupt("bad role");
  r.role = *role;
  if (!validate_scope(r.product)) return corrupt("bad product");
  if (r.role == Role::factory && !validate_name("factory", r.factory)) return corrupt("bad factory");
  if (!is_hex(r.salt, 2 * k_salt_bytes) || !is_hex(r.hash, 64)) return corrupt("bad salt or hash");
  if (!created) return corrupt("bad created_at");
  r.created_at = *created;
  return r;
}

bool in_scope(std::string_view token_product, std::string_view scope) {
  return scope == k_all_products || token_product == scope;
}

bool may_act_on(const Principal& principal, std::string_view product) {
  return principal.product == k_all_products || principal.product == product;
}

Result<std::optional<TokenRecord>> find_token(const Snapshot& state, std::string_view id) {
  std::string path = layout::token_doc(id);
  auto text = state.read(path);
  if (!text) return text.error();
  if (!*text) return std::optional<TokenRecord>{};
  auto record = token_from_toml(**text, path);
  if (!record) return record.error();
  return std::optional<TokenRecord>{std::move(*record)};
}

Result<std::optional<TokenRecord>> factory_token(const Snapshot& state, std::string_view factory) {
  std::string path = layout::factory_token_entry(factory);
  auto entry = state.read(path);
  if (!entry) return entry.error();
  if (!*entry) return std::optional<TokenRecord>{};
  std::string id = **entry;
  while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) id.pop_back();
  if (!validate_token_id(id)) return make_error(ErrorCode::error, "corrupt factory token entry " + path);
  auto record = find_token(state, id);
  if (!record) return record.error();
  if (*record && (*record)->factory != factory) {
    return make_error(ErrorCode::error, "corrupt factory token entry " + path + ": token " + id + " is not its");
  }
  return record;
}

Result<std::vector<TokenRecord>> list_tokens(const Snapshot& state, std::string_view scope) {
  auto names = state.list(layout::k_tokens_dir);
  if (!names) return names.error();
  std::vector<TokenRecord> out;
  for (const auto& name : *names) {
    if (!name.ends_with(".toml")) continue;
    std::string id = name.substr(0, name.size() - 5);
    if (!validate_token_id(id)) continue;
    auto record = find_token(state, id);
    if (!record) return record.error();
    if (*record && in_scope((*record)->product, scope)) out.push_back(std::move(**record));
  }
  std::stable_sort(out.begin(), out.end(), [](const TokenRecord& a, const TokenRecord& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  return out;
}

Result<Principal> authenticate(const Snapshot& state, std::string_view token) {
  auto parsed = parse_token(token);
  if (!parsed) return parsed.error();
  auto record = find_token(state, parsed->id);
  if (!record) return record.error();
  if (!*record || !verify_secret(**record, parsed->secret)) return invalid_token();
  const TokenRecord& r = **record;
  return Principal{r.role, r.product, r.factory, r.id, r.name};
}

Result<TokenChange> create_operator_token(const Snapshot& state, const OperatorTokenInput& in,
                                          const TokenMaterial& material, Millis now) {
  if (auto ok = validate_scope(in.product); !ok) return ok.error();
  if (!in.name.empty()) {
    if (auto ok = validate_name("token name", in.name); !ok) return ok.error();
  }
  if (auto ok = check_material(state, material); !ok) return ok.error();
  TokenChange out;
  out.issued.record = new_record(material, Role::operator_, in.product, "", in.name, now);
  out.issued.token = format_token(material.id, material.secret);
  const TokenRecord& r = out.issued.record;
  out.change.put(layout::token_doc(r.id), token_to_toml(r));
  out.change.summary = "create operator token " + r.id + " for " +
                       (r.product == k_all_products ? std::string("all products") : "product " + r.product) +
                       (r.name.empty() ? "" : " (" + r.name + ")");
  out.change.trailers = token_trailers("token-create", r, in.actor);
  return out;
}

Result<TokenChange> enroll_factory(const Snapshot& state, const EnrollInput& in, const TokenMaterial& material,
                                   Millis now) {
  HeartbeatInput beat;
  beat.factory = in.factory;
  beat.product = in.product;
  beat.capabilities = in.capabilities;
  beat.seats = in.seats;
  beat.actor = in.actor;
  // Validates the input and the product; an empty change when already registered as asked.
  auto registration = register_factory(state, beat, now);
  if (!registration) return registration.error();
  auto current = factory_token(state, in.factory);
  if (!current) return current.error();
  if (*current) {
    return make_error(ErrorCode::conflict, "factory " + in.factory + " is already enrolled (token " + (*current)->id +
                                               "); use 'gigafab factory rotate " + in.factory + "' for a new token");
  }
  if (auto ok = check_material(state, material); !ok) return ok.error();
  TokenChange out;
  out.change = std::move(*registration);
  out.issued.record = new_record(material, Role::factory, in.product, in.factory, in.factory, now);
  out.issued.token = format_token(material.id, material.secret);
  const TokenRecord& r = out.issued.record;
  out.change.put(layout::token_doc(r.id), token_to_toml(r));
  out.change.put(layout::factory_token_entry(r.factory), r.id + "\n");
  out.change.summary = "enroll factory " + r.factory + ": token " + r.id;
  out.change.trailers = token_trailers("enroll", r, in.actor);
  return out;
}

Result<TokenChange> rotate_factory_token(const Snapshot& state, const std::string& factory,
                                         const std::string& product, const std::string& actor,
                                         const TokenMaterial& material, Millis now) {
  auto registered = registered_factory(state, factory, product);
  if (!registered) return registered.error();
  auto old = live_factory_token(state, factory);
  if (!old) return old.error();
  if (auto ok = check_material(state, material); !ok) return ok.error();
  TokenChange out;
  out.issued.record = new_record(material, Role::factory, registered->product, factory, old->name, now);
  out.issued.token = format_token(material.id, material.secret);
  const TokenRecord& r = out.issued.record;
  out.change.remove(layout::token_doc(old->id));
  out.change.put(layout::token_doc(r.id), token_to_toml(r));
  out.change.put(layout::factory_token_entry(factory), r.id + "\n");
  out.change.summary = "rotate token of factory " + factory + ": " + old->id + " -> " + r.id;
  out.change.trailers = token_trailers("rotate", r, actor);
  out.change.trailers.insert(out.change.trailers.begin() + 2, {"Gigafab-Revoked-Token", old->id});
  return out;
}

Result<TokenChange> revoke_factory_token(const Snapshot& state, const std::string& factory,
                                         const std::string& product, const std::string& actor) {
  auto registered = registered_factory(state, factory, product);
  if (!registered) return registered.error();
  auto old = live_factory_token(state, factory);
  if (!old) return old.error();
  TokenChange out;
  out.issued.record = std::move(*old);
  const TokenRecord& r = out.issued.record;
  out.change.remove(layout::token_doc(r.id));
  out.change.remove(layout::factory_token_entry(factory));
  out.change.summary = "revoke token " + r.id + " of factory " + factory;
  out.change.trailers = token_trailers("revoke", r, actor);
  return out;
}

Result<TokenChange> revoke_token_id(const Snapshot& state, const std::string& id, const std::string& scope,
                                    const std::string& actor) {
  if (auto ok = validate_token_id(id); !ok) return ok.error();
  if (auto ok = validate_scope(scope); !ok) return ok.error();
  auto found = find_token(state, id);
  if (!found) return found.error();
  if (!*found || !in_scope((*found)->product, scope)) return make_error(ErrorCode::not_found, "token " + id + " not found");
  TokenChange out;
  out.issued.record = std::move(**found);
  const TokenRecord& r = out.issued.record;
  out.change.remove(layout::token_doc(r.id));
  if (r.role == Role::factory) {
    auto entry = state.read(layout::factory_token_entry(r.factory));
    if (!entry) return entry.error();
    if (*entry && entry->value().starts_with(r.id)) out.change.remove(layout::factory_token_entry(r.factory));
  }
  out.change.summary = "revoke " + std::string(role_name(r.role)) + " token " + r.id +
                       (r.factory.empty() ? "" : " of factory " + r.factory);
  out.change.trailers = token_trailers("revoke", r, actor);
  return out;
}

}  // namespace gigafab::core
