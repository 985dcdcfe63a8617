// Errors as values. Every layer returns Result<T>; the CLI maps Error::code to
// the fixed exit codes of DESIGN.md section 5 and the server to HTTP statuses.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace gigafab::core {

// The stable error classes. Their numeric values are the CLI's exit codes.
enum class ErrorCode : int {
  error = 1,          // anything else: I/O, corrupt store, bad state
  usage = 2,          // bad input: malformed manifest, invalid id, unknown option
  fenced = 3,         // a worker mutation with a stale lease epoch or holder
  conflict = 4,       // illegal transition or a conflicting write
  not_found = 5,      // unknown job, profile or factory
  nothing_to_claim = 6,
  unauthorized = 7,
};

// "usage", "fenced", ...: the code as it appears in JSON error documents.
const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::error;
  std::string message;
  std::string field;   // the request field at fault, when there is one (API errors)
  std::string reason;  // a finer machine-readable class, e.g. "illegal_transition"
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message), {}, {}}; }

// Result<T> holds either a value or an Error. Small on purpose: enough for
// `if (!r) return r.error();` style propagation without exceptions.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_state(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : m_state(std::in_place_index<1>, std::move(error)) {}

  explicit operator bool() const { return m_state.index() == 0; }
  bool ok() const { return m_state.index() == 0; }

  T& value() & { return std::get<0>(m_state); }
  const T& value() const& { return std::get<0>(m_state); }
  T&& value() && { return std::get<0>(std::move(m_state)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(m_state); }

 private:
  std::variant<T, Error> m_state;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : m_error(std::move(error)), m_failed(true) {}

  explicit operator bool() const { return !m_failed; }
  bool ok() const { return !m_failed; }
  const Error& error() const { return m_error; }

 private:
  Error m_error;
  bool m_failed = false;
};

}  // namespace gigafab::core
