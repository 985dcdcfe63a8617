// Time as milliseconds since the Unix epoch, rendered as RFC 3339 UTC with
// millisecond precision ("2026-11-27T17:46:35.123Z") in documents and JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace gigafab::core {

using Millis = std::int64_t;

// The wall clock; GIGAFAB_NOW (milliseconds or RFC 3339) overrides it, so tests
// can move time without sleeping.
Millis now_millis();

std::string format_time(Millis t);
std::optional<Millis> parse_time(std::string_view text);

// "90s", "45m", "2h", "1h30m" -> seconds. Usage error naming the text otherwise.
Result<std::int64_t> parse_duration(std::string_view text);
std::string format_duration(std::int64_t seconds);

}  // namespace gigafab::core
