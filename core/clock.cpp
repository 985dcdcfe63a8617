#include "core/clock.hpp"

#include <chrono>
#include <cstdint>
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

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date, and back (the civil
// calendar algorithms of H. Hinnant's "chrono-Compatible Low-Level Date
// Algorithms"): what timegm and gmtime_r compute, without their locale and
// time-zone machinery (a listing of 100,000 jobs formats and parses 400,000
// timestamps; sscanf, timegm and snprintf were 4% of it).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
  std::int64_t year;
  unsigned month, day;
};

Civil civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned day = doy - (153 * mp + 2) / 5 + 1;
  const unsigned month = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2), month, day};
}

unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr unsigned k_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : k_days[m - 1];
}

void put_digits(char* out, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

// The digits at text[at, at + width), or -1.
int digits_at(std::string_view text, std::size_t at, std::size_t width) {
  int value = 0;
  for (std::size_t i = at; i < at + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

}  // namespace

std::string format_time(Millis t) {
  std::int64_t ms = t % 1000;
  std::int64_t secs = t / 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  std::int64_t days = secs / 86400;
  std::int64_t of_day = secs % 86400;
  if (of_day < 0) {
    of_day += 86400;
    --days;
  }
  const Civil date = civil_from_days(days);
  if (date.year < 0 || date.year > 9999) {  // not four digits: as snprintf would print it
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<long long>(date.year),
                  date.month, date.day, static_cast<int>(of_day / 3600), static_cast<int>(of_day / 60 % 60),
                  static_cast<int>(of_day % 60), static_cast<int>(ms));
    return buf;
  }
  std::string out = "0000-00-00T00:00:00.000Z";
  put_digits(&out[0], static_cast<unsigned>(date.year), 4);
  put_digits(&out[5], date.month, 2);
  put_digits(&out[8], date.day, 2);
  put_digits(&out[11], static_cast<unsigned>(of_day / 3600), 2);
  put_digits(&out[14], static_cast<unsigned>(of_day / 60 % 60), 2);
  put_digits(&out[17], static_cast<unsigned>(of_day % 60), 2);
  put_digits(&out[20], static_cast<unsigned>(ms), 3);
  return out;
}

std::optional<Millis> parse_time(std::string_view text) {
  // What format_time writes, exactly: read digit by digit.
  if (text.size() == 24 && text[4] == '-' && text[7] == '-' && text[10] == 'T' && text[13] == ':' &&
      text[16] == ':' && text[19] == '.' && text[23] == 'Z') {
    const int y = digits_at(text, 0, 4), mo = digits_at(text, 5, 2), d = digits_at(text, 8, 2);
    const int h = digits_at(text, 11, 2), mi = digits_at(text, 14, 2), s = digits_at(text, 17, 2);
    const int ms = digits_at(text, 20, 3);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 || ms < 0 ||
        static_cast<unsigned>(d) > days_in_month(y, static_cast<unsigned>(mo))) {
      return std::nullopt;
    }
    const std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
    return (days * 86400 + h * 3600 + mi * 60 + s) * 1000 + ms;
  }
  // Otherwise YYYY-MM-DDTHH:MM:SS[.fraction]Z.
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
