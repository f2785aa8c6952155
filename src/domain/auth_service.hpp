#pragma once
// Authentication use cases (SPEC §3): register, password login, refresh-token rotation with
// reuse detection, revocation, and access-token verification with a bounded cache so a
// token's signature is checked once, not on every request.
// Thread-safe. argon2id runs on the `blocking` executor, never on an I/O thread.

#include <boost/asio/any_io_executor.hpp>

#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "domain/ports/fanout.hpp"
#include "domain/ports/store.hpp"

namespace chat4all {

struct token_pair {
  std::string access_token;
  std::int64_t expires_in = 0;  // seconds
  std::string refresh_token;
  std::string scope;
};

class auth_service {
 public:
  // With `revocations`, revoked access tokens are announced to (and learned from) the other
  // instances on the channel "auth:revoked", so a revocation holds on every instance at once.
  auth_service(user_store& users, token_store& tokens, const clock& clk, auth_config cfg,
               boost::asio::any_io_executor blocking, fanout* revocations = nullptr);

  // invalid_input (username 3–50 of [A-Za-z0-9_.-], password 8–256 bytes), conflict (taken).
  task<result<user>> register_user(std::string username, std::string password);
  // unauthenticated/"invalid_credentials" for an unknown user or a wrong password.
  task<result<token_pair>> login(std::string username, std::string password);
  // unauthenticated/"invalid_grant" for an unknown, expired, revoked or reused token
  // (reuse revokes the whole family).
  task<result<token_pair>> refresh(std::string refresh_token);
  // Revokes an access token (until it expires) or a refresh token family. Unknown tokens
  // are not an error (RFC 7009).
  task<result<void>> revoke(std::string token);
  // unauthenticated with api_code invalid_token / token_expired / token_revoked.
  task<result<principal>> authenticate(std::string_view access_token);
  task<result<user>> me(const principal& who);
  // Loads the revoked access-token ids; call once at start-up.
  task<result<void>> load_revocations();

  static result<void> validate_username(std::string_view name);

 private:
  token_pair access_for(user_id id) const;  // a signed access token, no refresh token yet
  // A new opaque refresh token (into `token`) and its record (hash, expiry).
  refresh_token_record new_refresh(std::string& token) const;
  task<result<token_pair>> issue(user_id id, std::string family);
  bool is_revoked(const std::string& jti);                     // mu_ held
  void remember_revoked(std::string jti, std::int64_t exp_s);  // mu_ held

  user_store& users_;
  token_store& tokens_;
  const clock& clock_;
  auth_config cfg_;
  boost::asio::any_io_executor blocking_;
  std::string dummy_hash_;  // verified against for unknown users: same timing as a real one

  std::mutex mu_;
  std::unordered_map<std::string, principal> cache_;       // access token -> verified claims
  std::unordered_map<std::string, std::int64_t> revoked_;  // revoked jti -> exp (s)
  std::size_t prune_at_ = 1024;
  fanout* revocations_;
  std::unique_ptr<fanout::subscription> revocation_sub_;  // last: unsubscribes first
};

}  // namespace chat4all
