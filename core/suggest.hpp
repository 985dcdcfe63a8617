// "Did you mean" for mistyped keys and names.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gigafab::core {

// Classic Levenshtein distance.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` if it is plausibly a typo of it (distance at
// most a third of the word's length, and at least 1 edit allowed).
std::optional<std::string> closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace gigafab::core
