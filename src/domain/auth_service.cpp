#include "domain/auth_service.hpp"

#include <algorithm>

#include "core/crypto.hpp"
#include "core/jwt.hpp"
#include "core/offload.hpp"
#include "core/password.hpp"

namespace chat4all {
namespace {
constexpr const char* default_scope = "messages:read messages:write";
constexpr std::size_t min_password = 8, max_password = 256;
constexpr const char* revocation_channel = "auth:revoked";

error invalid(std::string field, std::string reason) {
  error e{errc::invalid_input, field + ": " + reason};
  e.details.push_back({std::move(field), std::move(reason)});
  return e;
}
error bad_credentials() {
  return error{errc::unauthenticated, "invalid username or password", "invalid_credentials"};
}
error bad_grant() {
  return error{errc::unauthenticated, "refresh token is invalid, expired or revoked",
               "invalid_grant"};
}
}  // namespace

auth_service::auth_service(user_store& users, token_store& tokens, const clock& clk,
                           auth_config cfg, boost::asio::any_io_executor blocking,
                           fanout* revocations)
    : users_(users),
      tokens_(tokens),
      clock_(clk),
      cfg_(std::move(cfg)),
      blocking_(std::move(blocking)),
      revocations_(revocations) {
  dummy_hash_ =
      hash_password(crypto::random_token(16), cfg_.argon2_opslimit, cfg_.argon2_memlimit_kib);
  if (revocations_) {
    revocation_sub_ = revocations_->subscribe(
        revocation_channel, [this](std::string_view, std::string_view payload) {
          // "<jti> <exp seconds>"
          const auto space = payload.find(' ');
          if (space == std::string_view::npos) return;
          std::int64_t exp = 0;
          try {
            exp = std::stoll(std::string(payload.substr(space + 1)));
          } catch (const std::exception&) {
            return;
          }
          std::lock_guard lock(mu_);
          remember_revoked(std::string(payload.substr(0, space)), exp);
        });
  }
}

result<void> auth_service::validate_username(std::string_view name) {
  if (name.size() < 3 || name.size() > 50) return invalid("username", "3 to 50 characters");
  const bool ok = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
  if (!ok) return invalid("username", "only letters, digits, '_', '.' and '-'");
  return ok_t{};
}

task<result<user>> auth_service::register_user(std::string username, std::string password) {
  if (auto v = validate_username(username); !v) co_return std::move(v).err();
  if (password.size() < min_password || password.size() > max_password)
    co_return invalid("password", "8 to 256 characters");
  const auto ops = cfg_.argon2_opslimit;
  const auto mem = cfg_.argon2_memlimit_kib;
  // A named lambda, not a temporary inside the co_await: g++ 12 relocates temporaries of
  // a co_await expression bitwise, which breaks captured std::strings.
  auto work = [pw = std::move(password), ops, mem] { return hash_password(pw, ops, mem); };
  auto hash = co_await offload(blocking_, std::move(work));
  co_return co_await users_.create_user(std::move(username), std::move(hash), clock_.now_us());
}

task<result<token_pair>> auth_service::login(std::string username, std::string password) {
  if (password.size() > max_password) co_return bad_credentials();
  auto u = co_await users_.find_user_by_name(username);
  if (!u && u.err().code != errc::not_found) co_return std::move(u).err();
  std::string encoded = u ? u->password_hash : dummy_hash_;
  auto work = [pw = std::move(password), enc = std::move(encoded)] {
    return verify_password(pw, enc);
  };
  const bool ok = co_await offload(blocking_, std::move(work));
  if (!u || !ok) co_return bad_credentials();
  co_return co_await issue(u->id, crypto::random_token(16));
}

token_pair auth_service::access_for(user_id id) const {
  const auto now_s = clock_.now_s();
  jwt_claims c;
  c.sub = id;
  c.scope = default_scope;
  c.jti = crypto::random_token(16);
  c.iat = now_s;
  c.exp = now_s + cfg_.access_ttl_s;
  c.iss = cfg_.issuer;
  token_pair out;
  out.access_token = jwt::sign(c, cfg_.jwt_secret);
  out.expires_in = cfg_.access_ttl_s;
  out.scope = default_scope;
  return out;
}

refresh_token_record auth_service::new_refresh(std::string& token) const {
  token = crypto::random_token(32);
  refresh_token_record rec;
  rec.token_hash = crypto::sha256_hex(token);
  rec.expires_at = clock_.now_us() + std::int64_t{cfg_.refresh_ttl_s} * 1'000'000;
  return rec;
}

task<result<token_pair>> auth_service::issue(user_id id, std::string family) {
  auto out = access_for(id);
  auto rec = new_refresh(out.refresh_token);
  rec.user = id;
  rec.family = std::move(family);
  if (auto r = co_await tokens_.insert_refresh(std::move(rec)); !r) co_return std::move(r).err();
  co_return out;
}

task<result<token_pair>> auth_service::refresh(std::string refresh_token) {
  if (refresh_token.empty() || refresh_token.size() > 512) co_return bad_grant();
  std::string next;
  auto who = co_await tokens_.rotate_refresh(crypto::sha256_hex(refresh_token), new_refresh(next),
                                             clock_.now_us());
  if (!who) {
    if (who.err().code == errc::unauthenticated || who.err().code == errc::not_found)
      co_return bad_grant();
    co_return std::move(who).err();
  }
  auto out = access_for(*who);
  out.refresh_token = std::move(next);
  co_return out;
}

task<result<void>> auth_service::revoke(std::string token) {
  if (token.empty() || token.size() > 4096) co_return invalid("token", "required");
  if (std::count(token.begin(), token.end(), '.') == 2) {
    // An access token: revoke its id until it would have expired anyway. Expired or forged
    // tokens need no revocation.
    auto claims = jwt::verify(token, cfg_.jwt_secret, clock_.now_s(), cfg_.issuer);
    if (!claims) co_return ok;
    const auto exp_us = claims->exp * 1'000'000;
    if (auto r = co_await tokens_.revoke_access(claims->jti, exp_us); !r)
      co_return std::move(r).err();
    {
      std::lock_guard lock(mu_);
      remember_revoked(claims->jti, claims->exp);
    }
    if (revocations_)
      revocations_->publish(revocation_channel, claims->jti + " " + std::to_string(claims->exp));
    co_return ok;
  }
  auto r = co_await tokens_.revoke_refresh(crypto::sha256_hex(token));
  if (!r && r.err().code != errc::not_found) co_return std::move(r).err();
  co_return ok;
}

bool auth_service::is_revoked(const std::string& jti) {
  return revoked_.count(jti) != 0;
}

void auth_service::remember_revoked(std::string jti, std::int64_t exp_s) {
  if (revoked_.size() >= prune_at_) {
    const auto now_s = clock_.now_s();
    std::erase_if(revoked_, [now_s](const auto& kv) { return kv.second <= now_s; });
    prune_at_ = 2 * revoked_.size() + 1024;
  }
  revoked_[std::move(jti)] = exp_s;
}

task<result<principal>> auth_service::authenticate(std::string_view token) {
  const auto now_s = clock_.now_s();
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(std::string(token)); it != cache_.end()) {
      if (it->second.expires_at <= now_s) {
        cache_.erase(it);
        co_return error{errc::unauthenticated, "access token expired", "token_expired"};
      }
      if (is_revoked(it->second.jti))
        co_return error{errc::unauthenticated, "access token was revoked", "token_revoked"};
      co_return it->second;
    }
  }
  auto claims = jwt::verify(token, cfg_.jwt_secret, now_s, cfg_.issuer);
  if (!claims) co_return std::move(claims).err();
  principal p;
  p.id = claims->sub;
  p.scope = claims->scope;
  p.jti = claims->jti;
  p.expires_at = claims->exp;
  std::lock_guard lock(mu_);
  if (is_revoked(p.jti))
    co_return error{errc::unauthenticated, "access token was revoked", "token_revoked"};
  if (cache_.size() >= cfg_.token_cache_entries) cache_.clear();
  cache_.emplace(std::string(token), p);
  co_return p;
}

task<result<user>> auth_service::me(const principal& who) {
  auto u = co_await users_.find_user(who.id);
  if (!u && u.err().code == errc::not_found)
    co_return error{errc::unauthenticated, "the user of this token no longer exists",
                    "invalid_token"};
  co_return u;
}

task<result<void>> auth_service::load_revocations() {
  auto r = co_await tokens_.revoked_access(clock_.now_us());
  if (!r) co_return std::move(r).err();
  std::lock_guard lock(mu_);
  // The store keeps them only until expiry; an access token lives at most access_ttl_s.
  const auto until = clock_.now_s() + cfg_.access_ttl_s;
  for (auto& jti : *r) remember_revoked(std::move(jti), until);
  co_return ok;
}

}  // namespace chat4all
