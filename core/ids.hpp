// Identifiers that become path components in the state tree. Anything that
// comes from outside (argv, manifests, HTTP paths) passes through validate_*
// before it touches a tree path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace gigafab::core {

// A job id: "j-" followed by 8 lowercase base32 characters (RFC 4648 alphabet,
// lowercased). new_job_id maps 40 random bits onto it.
std::string new_job_id(std::uint64_t random_bits);

// Accepts ids of the shape new_job_id produces; otherwise a usage error whose
// message names the id (escaped, so control characters print safely).
Result<void> validate_job_id(std::string_view id);

// Names of products, factories and profiles: 1..64 characters of [A-Za-z0-9._-],
// starting with a letter or digit (so never "." or ".."), no '/', NUL or
// control characters. `what` names the thing in the error ("product").
Result<void> validate_name(std::string_view what, std::string_view name);

// Printable rendering of untrusted text for error messages: control bytes and
// non-ASCII become \xNN escapes.
std::string escape_for_message(std::string_view text);

}  // namespace gigafab::core
