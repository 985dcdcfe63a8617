#include "core/error.hpp"

namespace gigafab::core {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::error: return "error";
    case ErrorCode::usage: return "usage";
    case ErrorCode::fenced: return "fenced";
    case ErrorCode::conflict: return "conflict";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::nothing_to_claim: return "nothing_to_claim";
    case ErrorCode::unauthorized: return "unauthorized";
  }
  return "error";
}

}  // namespace gigafab::core
