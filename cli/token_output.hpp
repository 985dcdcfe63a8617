// Printing API tokens, shared by `gigafab token` and `gigafab factory
// enroll|rotate|revoke`. The token string (the only copy of its secret)
// appears only in print_issued_token's output.
#pragma once

#include <vector>

#include "core/auth.hpp"

namespace gigafab::cli {

// The token string alone on stdout (so `T=$(gigafab token create --operator)`
// works) and a reminder on stderr that it is not shown again; with --json, the
// record plus "token".
void print_issued_token(const core::IssuedToken& issued, bool json);

// "<id> revoked", or the record plus "revoked": true with --json.
void print_revoked_token(const core::TokenRecord& record, bool json);

// ID ROLE PRODUCT FACTORY NAME CREATED, or {"tokens": [...]} with --json.
void print_token_list(const std::vector<core::TokenRecord>& records, bool json);

}  // namespace gigafab::cli
