#include "core/ids.hpp"

#include <cstdio>

namespace gigafab::core {

namespace {
constexpr std::string_view k_base32 = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::size_t k_job_id_chars = 8;

bool is_base32(char c) { return k_base32.find(c) != std::string_view::npos; }
}  // namespace

std::string new_job_id(std::uint64_t random_bits) {
  std::string id = "j-";
  for (std::size_t i = 0; i < k_job_id_chars; ++i) {
    id += k_base32[random_bits & 31];
    random_bits >>= 5;
  }
  return id;
}

std::string escape_for_message(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Result<void> validate_job_id(std::string_view id) {
  bool ok = id.size() == 2 + k_job_id_chars && id.substr(0, 2) == "j-";
  for (std::size_t i = 2; ok && i < id.size(); ++i) ok = is_base32(id[i]);
  if (!ok) {
    return make_error(ErrorCode::usage, "invalid job id '" + escape_for_message(id) +
                                            "' (expected j- followed by 8 characters of a-z, 2-7)");
  }
  return {};
}

Result<void> validate_name(std::string_view what, std::string_view name) {
  auto fail = [&](const char* why) {
    return make_error(ErrorCode::usage,
                      "invalid " + std::string(what) + " '" + escape_for_message(name) + "': " + why);
  };
  if (name.empty()) return fail("empty");
  if (name.size() > 64) return fail("longer than 64 characters");
  for (char c : name) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                   c == '_' || c == '-';
    if (!allowed) return fail("only letters, digits, '.', '_' and '-' are allowed");
  }
  char first = name.front();
  if (!((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z') || (first >= '0' && first <= '9'))) {
    return fail("must start with a letter or digit");
  }
  return {};
}

}  // namespace gigafab::core
