#pragma once
// Project error codes and the small `result<T>` that carries expected failures as values.
// The HTTP layer maps `errc` to status and error code in one table (api/error_mapping).

#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace chat4all {

enum class errc {
  ok = 0,
  invalid_input,      // 400
  unauthenticated,    // 401
  forbidden,          // 403
  not_found,          // 404
  conflict,           // 409
  too_large,          // 413
  unsupported_media,  // 415
  rate_limited,       // 429
  unavailable,        // 503, retryable
  timeout,            // 503, retryable
  internal,           // 500: a bug, never bad input
};

const std::error_category& chat4all_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), chat4all_category()};
}
// True for failures that may succeed when tried again (a dependency was down or slow).
bool is_retryable(errc e) noexcept;
// The snake_case name used in API error bodies for a code, e.g. "invalid_input".
const char* errc_name(errc e) noexcept;

struct field_error {
  std::string field;
  std::string reason;
};

// An expected failure: a code, a human message, and optional per-field details.
struct error {
  errc code = errc::internal;
  std::string message;
  std::vector<field_error> details;
  // Optional specific API error code (e.g. "token_expired"); defaults to errc_name(code).
  std::string api_code;

  error() = default;
  error(errc c, std::string msg) : code(c), message(std::move(msg)) {}
  error(errc c, std::string msg, std::string specific)
      : code(c), message(std::move(msg)), api_code(std::move(specific)) {}
  const char* name() const noexcept {
    return api_code.empty() ? errc_name(code) : api_code.c_str();
  }
};

// result<T>: a value or an `error`. Deliberately small; no exceptions on the happy path.
template <class T>
class [[nodiscard]] result {
 public:
  // Default-constructed results hold an internal error (asio's co_spawn needs the default).
  result() : v_(std::in_place_index<1>, error{errc::internal, "no result"}) {}
  result(T v) : v_(std::in_place_index<0>, std::move(v)) {}
  result(error e) : v_(std::in_place_index<1>, std::move(e)) {}
  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  const error& err() const& { return std::get<1>(v_); }
  error&& err() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, error> v_;
};

struct ok_t {};
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(ok_t) {}
  result(error e) : e_(std::move(e)), has_(false) {}
  bool has_value() const noexcept { return has_; }
  explicit operator bool() const noexcept { return has_; }
  const error& err() const& { return e_; }
  error&& err() && { return std::move(e_); }

 private:
  error e_;
  bool has_ = true;
};

inline constexpr ok_t ok{};

}  // namespace chat4all

template <>
struct std::is_error_code_enum<chat4all::errc> : std::true_type {};
