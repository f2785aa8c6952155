#pragma once
// Access tokens: compact JWTs (RFC 7519) signed with HMAC-SHA-256 (HS256).
//
// Header: {"alg":"HS256","typ":"JWT"}. Claims: sub (the user id as a decimal string, as RFC
// 7519 wants a string), user_id (the same id as a number), iat, exp, scope, jti, iss.
//
// Thread-safety: free functions without shared state; safe from any thread.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace chat4all {

struct jwt_claims {
  std::int64_t sub = 0;  // user id
  std::string scope;
  std::string jti;
  std::int64_t iat = 0;  // issued at, Unix seconds
  std::int64_t exp = 0;  // expires at, Unix seconds
  std::string iss;
};

namespace jwt {

// Signs `claims` with `secret` (auth.jwt_secret: at least 32 bytes in production).
std::string sign(const jwt_claims& claims, std::string_view secret);

// Verifies `token` and returns its claims. Errors, all errc::unauthenticated:
//   api_code "invalid_token": not three base64url parts, header or claims not JSON objects,
//     alg other than HS256 (so "none" too) or a "crit" header, bad signature (compared in
//     constant time), missing/mistyped claims, sub and user_id disagreeing, iss different
//     from `expected_iss`, nbf in the future;
//   api_code "token_expired": a valid token whose exp <= now_s.
result<jwt_claims> verify(std::string_view token, std::string_view secret, std::int64_t now_s,
                          std::string_view expected_iss);

}  // namespace jwt
}  // namespace chat4all
