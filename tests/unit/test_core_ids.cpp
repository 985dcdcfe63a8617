// Unit tests for core/ids.hpp: job id generation and validation, name
// validation, and the escaping of untrusted text in error messages.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/ids.hpp"

using namespace gigafab;

namespace {

constexpr std::string_view k_alphabet = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::uint64_t k_low40 = (std::uint64_t{1} << 40) - 1;

bool is_valid_id(std::string_view id) { return core::validate_job_id(id).ok(); }

bool printable_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
}

}  // namespace

TEST_CASE("new_job_id maps known bit patterns onto the lowercase base32 alphabet") {
  CHECK(core::new_job_id(0) == "j-aaaaaaaa");
  CHECK(core::new_job_id(k_low40) == "j-77777777");
  // Low bits come first: the first character encodes bits 0..4.
  CHECK(core::new_job_id(1) == "j-baaaaaaa");
  CHECK(core::new_job_id(31) == "j-7aaaaaaa");
  CHECK(core::new_job_id(32) == "j-abaaaaaa");
  CHECK(core::new_job_id(std::uint64_t{31} << 35) == "j-aaaaaaa7");
}

TEST_CASE("new_job_id only uses the low 40 bits") {
  std::mt19937_64 rng(12345);
  int mismatches = 0;
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t bits = rng();
    if (core::new_job_id(bits) != core::new_job_id(bits & k_low40)) ++mismatches;
    if (core::new_job_id(bits) != core::new_job_id((bits & k_low40) | (std::uint64_t{0xabcdef} << 40))) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("new_job_id always has the validated shape over many random inputs") {
  std::mt19937_64 rng(20240611);
  std::set<char> seen_chars;
  int bad_shape = 0, rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string id = core::new_job_id(rng());
    bool shape = id.size() == 10 && id.substr(0, 2) == "j-";
    for (char c : id.substr(2)) {
      if (k_alphabet.find(c) == std::string_view::npos) shape = false;
      seen_chars.insert(c);
    }
    if (!shape) {
      ++bad_shape;
      FAIL_CHECK("bad shape: " << id);
    }
    if (!is_valid_id(id)) {
      ++rejected;
      FAIL_CHECK("rejected by validate_job_id: " << id);
    }
    if (bad_shape + rejected > 5) break;
  }
  CHECK(bad_shape == 0);
  CHECK(rejected == 0);
  // Every character of the alphabet shows up somewhere.
  CHECK(seen_chars.size() == k_alphabet.size());
}

TEST_CASE("new_job_id is injective on the low 40 bits") {
  std::mt19937_64 rng(777);
  std::unordered_map<std::string, std::uint64_t> by_id;
  for (int i = 0; i < 20000; ++i) {
    std::uint64_t bits = rng() & k_low40;
    std::string id = core::new_job_id(bits);
    auto [it, inserted] = by_id.emplace(id, bits);
    if (!inserted && it->second != bits) FAIL_CHECK("two inputs share " << id);  // same id only for the same bits
  }
  // Consecutive inputs give distinct ids.
  std::set<std::string> consecutive;
  for (std::uint64_t bits = 0; bits < 5000; ++bits) consecutive.insert(core::new_job_id(bits));
  CHECK(consecutive.size() == 5000);
  // Every single-bit input is distinct from every other.
  std::set<std::string> single_bits;
  for (int bit = 0; bit < 40; ++bit) single_bits.insert(core::new_job_id(std::uint64_t{1} << bit));
  CHECK(single_bits.size() == 40);
}

TEST_CASE("validate_job_id accepts well-formed ids") {
  CHECK(is_valid_id("j-aaaaaaaa"));
  CHECK(is_valid_id("j-abcdefgh"));
  CHECK(is_valid_id("j-234567zz"));
  CHECK(is_valid_id("j-77777777"));
}

TEST_CASE("validate_job_id rejects path traversal, separators and NUL") {
  const std::string_view bad_ids[] = {
      "j-abc/efgh", "j-ab/../gh", "j-..aaaaaa", "..",        "/",          "j-aaaaaaa/",
      "/j-aaaaaaa", ".",          "j-aaaa.aaa", "j-aaaa\\aa", "../../etc", "j-aaaaaaa.",
  };
  for (std::string_view id : bad_ids) {
    CAPTURE(id);
    auto r = core::validate_job_id(id);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
  }

  // Embedded NUL: a C string would see "j-abc" only.
  std::string_view with_nul("j-abc\0efgh", 10);
  REQUIRE(with_nul.size() == 10);
  auto r = core::validate_job_id(with_nul);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == core::ErrorCode::usage);
  CHECK(r.error().message.find("j-abc\\x00efgh") != std::string::npos);
  CHECK(r.error().message.find('\0') == std::string::npos);

  std::string_view trailing_nul("j-abcdefgh\0", 11);
  CHECK_FALSE(is_valid_id(trailing_nul));
  std::string_view only_nul("\0", 1);
  CHECK_FALSE(is_valid_id(only_nul));
}

TEST_CASE("validate_job_id rejects control characters and escapes them in the message") {
  for (char c : {'\t', '\n', '\r', '\x01', '\x1b', '\x7f'}) {
    std::string id = "j-abcd";
    id += c;
    id += "fgh";
    REQUIRE(id.size() == 10);
    auto r = core::validate_job_id(id);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
    CHECK(printable_ascii(r.error().message));
  }
  auto r = core::validate_job_id("j-abcd\nfgh");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("'j-abcd\\x0afgh'") != std::string::npos);
}

TEST_CASE("validate_job_id rejects wrong length, prefix, case and alphabet") {
  const std::string_view bad_ids[] = {
      "",             // empty
      "j-",           // prefix only
      "j-abcdefg",    // 7 characters
      "j-abcdefghi",  // 9 characters
      "j-7f3a",       // short
      "k-abcdefgh",   // wrong prefix letter
      "J-abcdefgh",   // uppercase prefix
      "j_abcdefgh",   // wrong separator
      "jjabcdefgh",   // no separator
      "-jabcdefgh",   // shuffled
      "j-ABCDEFGH",   // uppercase body
      "j-abcdEfgh",   // one uppercase
      "j-abcdefg0",   // 0 is not base32
      "j-abcdefg1",   // 1 is not base32
      "j-abcdefg8",   // 8 is not base32
      "j-abcdefg9",   // 9 is not base32
      "j-abc efgh",   // space
      "j-abc-efgh",   // dash
      " j-abcdefg",   // leading space
      "j-abcdefgh ",  // trailing space
      "j-ab\xc3\xa9" "efgh",  // non-ASCII
  };
  for (std::string_view id : bad_ids) {
    CAPTURE(id);
    auto r = core::validate_job_id(id);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
    CHECK(r.error().message.find("invalid job id") != std::string::npos);
  }
}

TEST_CASE("validate_job_id names the id in its message") {
  auto r = core::validate_job_id("j-nope");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("'j-nope'") != std::string::npos);
}

TEST_CASE("validate_name accepts names of letters, digits, . _ - starting with a letter or digit") {
  const std::string_view good[] = {"a", "0", "default", "backend-dev", "web_2.0", "a..b", "9lives", "x-"};
  for (std::string_view name : good) {
    CAPTURE(name);
    CHECK(core::validate_name("product", name).ok());
  }
  CHECK(core::validate_name("product", std::string(64, 'a')).ok());
}

TEST_CASE("validate_name rejects bad names with a usage error naming the thing and the name") {
  struct Case {
    std::string name;
    std::string why;
  };
  const Case cases[] = {
      {"", "empty"},
      {std::string(65, 'a'), "longer than 64"},
      {".", "must start with a letter or digit"},
      {"..", "must start with a letter or digit"},
      {".hidden", "must start with a letter or digit"},
      {"-flag", "must start with a letter or digit"},
      {"_x", "must start with a letter or digit"},
      {"a/b", "are allowed"},
      {"../etc", "are allowed"},
      {"a+b", "are allowed"},
      {"has space", "are allowed"},
      {"tab\there", "are allowed"},
      {std::string("nul\0x", 5), "are allowed"},
      {"caf\xc3\xa9", "are allowed"},
      {"a:b", "are allowed"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto r = core::validate_name("factory", c.name);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == core::ErrorCode::usage);
    CHECK(r.error().message.find("invalid factory '" + core::escape_for_message(c.name) + "'") !=
          std::string::npos);
    CHECK(r.error().message.find(c.why) != std::string::npos);
    CHECK(r.error().message.find('\0') == std::string::npos);
  }
}

TEST_CASE("validate_name uses `what` in the message") {
  auto r = core::validate_name("profile", "b@d");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.rfind("invalid profile 'b@d'", 0) == 0);
}

TEST_CASE("escape_for_message escapes control and non-ASCII bytes only") {
  CHECK(core::escape_for_message("") == "");
  CHECK(core::escape_for_message("plain text 123 !~") == "plain text 123 !~");
  CHECK(core::escape_for_message("a\tb") == "a\\x09b");
  CHECK(core::escape_for_message("line\n") == "line\\x0a");
  CHECK(core::escape_for_message("\x1b[31m") == "\\x1b[31m");
  CHECK(core::escape_for_message("\x7f") == "\\x7f");
  CHECK(core::escape_for_message("caf\xc3\xa9") == "caf\\xc3\\xa9");
  CHECK(core::escape_for_message("\xff") == "\\xff");
  CHECK(core::escape_for_message(std::string_view("a\0b", 3)) == "a\\x00b");
  // Space (0x20) and tilde (0x7e) are the printable bounds and stay.
  CHECK(core::escape_for_message(" ~") == " ~");
}

TEST_CASE("escape_for_message output is always printable ASCII") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string out = core::escape_for_message(all);
  CHECK(printable_ascii(out));
  // 95 printable bytes stay as one character, the other 161 become 4.
  CHECK(out.size() == 95 + 161 * 4);
}
