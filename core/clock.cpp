#include "core/clock.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace gigafab::core {

Millis now_millis() {
  if (const char* fixed = std::getenv("GIGAFAB_NOW"); fixed && *fixed) {
    std::string_view text = fixed;
    if (auto t = parse_time(text)) return *t;
    char* end = nullptr;
    long long ms = std::strtoll(fixed, &end, 10);
    if (end && *end == '\0') return ms;
  }
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string format_time(Millis t) {
  std::time_t secs = static_cast<std::time_t>(t / 1000);
  int ms = static_cast<int>(t % 1000);
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::optional<Millis> parse_time(std::string_view text) {
  // Accepts YYYY-MM-DDTHH:MM:SS[.mmm]Z, which is all we ever write.
  int y, mo, d, h, mi, s, ms = 0, consumed = 0;
  std::string copy(text);
  if (std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) != 6) {
    return std::nullopt;
  }
  std::string_view rest = text.substr(static_cast<std::size_t>(consumed));
  if (!rest.empty() && rest[0] == '.') {
    int digits = 0;
    std::size_t i = 1;
    for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; ++i) {
      if (digits < 3) ms = ms * 10 + (rest[i] - '0'), ++digits;
    }
    while (digits++ < 3) ms *= 10;
    rest = rest.substr(i);
  }
  if (rest != "Z") return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t secs = timegm(&tm);
  std::tm check{};
  gmtime_r(&secs, &check);  // rejects fields timegm would silently normalize (month 13, Feb 30, 25:00)
  if (check.tm_year != y - 1900 || check.tm_mon != mo - 1 || check.tm_mday != d || check.tm_hour != h ||
      check.tm_min != mi || check.tm_sec != s) {
    return std::nullopt;
  }
  return static_cast<Millis>(secs) * 1000 + ms;
}

Result<std::int64_t> parse_duration(std::string_view text) {
  auto bad = [&] {
    return make_error(ErrorCode::usage, "invalid duration '" + std::string(text) +
                                            "' (expected e.g. 90s, 45m, 2h or 1h30m)");
  };
  if (text.empty()) return bad();
  std::int64_t total = 0, number = 0;
  bool have_digits = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      number = number * 10 + (c - '0');
      if (number > 100'000'000) return bad();
      have_digits = true;
      continue;
    }
    if (!have_digits) return bad();
    switch (c) {
      case 'h': total += number * 3600; break;
      case 'm': total += number * 60; break;
      case 's': total += number; break;
      default: return bad();
    }
    number = 0;
    have_digits = false;
  }
  if (have_digits) return bad();  // a trailing number without a unit
  return total;
}

std::string format_duration(std::int64_t seconds) {
  std::string out;
  if (seconds >= 3600) out += std::to_string(seconds / 3600) + "h", seconds %= 3600;
  if (seconds >= 60) out += std::to_string(seconds / 60) + "m", seconds %= 60;
  if (seconds > 0 || out.empty()) out += std::to_string(seconds) + "s";
  return out;
}

}  // namespace gigafab::core
