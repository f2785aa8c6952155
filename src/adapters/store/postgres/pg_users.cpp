// Users, refresh tokens and revoked access tokens.

#include <algorithm>

#include "adapters/store/postgres/pg_ops.hpp"

namespace chat4all::pg {

namespace {

// ON CONFLICT DO NOTHING: a taken name returns no row (conflict) instead of aborting.
constexpr const char* insert_user_sql =
    "INSERT INTO users(username, password_hash, created_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (username) DO NOTHING RETURNING id";
constexpr const char* user_by_name_sql =
    "SELECT id, username, password_hash, created_at FROM users WHERE username = $1";
constexpr const char* user_by_id_sql =
    "SELECT id, username, password_hash, created_at FROM users WHERE id = $1";
constexpr const char* existing_users_sql =
    "SELECT id FROM users WHERE id = ANY($1::bigint[]) ORDER BY id";

constexpr const char* insert_refresh_sql =
    "INSERT INTO refresh_tokens(token_hash, user_id, family, expires_at) VALUES ($1, $2, $3, $4)";
// FOR UPDATE: two concurrent rotations of one token serialise here; the second then sees it
// rotated and treats it as reuse.
constexpr const char* refresh_for_update_sql =
    "SELECT user_id, family, expires_at, rotated_at IS NOT NULL, revoked FROM refresh_tokens "
    "WHERE token_hash = $1 FOR UPDATE";
constexpr const char* mark_rotated_sql =
    "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1";
constexpr const char* revoke_family_sql =
    "UPDATE refresh_tokens SET revoked = true WHERE family = $1";
constexpr const char* revoke_family_of_sql =
    "UPDATE refresh_tokens SET revoked = true "
    "WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1)";

constexpr const char* insert_access_sql =
    "INSERT INTO revoked_access(jti, expires_at) VALUES ($1, $2) "
    "ON CONFLICT (jti) DO UPDATE SET expires_at = greatest(revoked_access.expires_at, "
    "excluded.expires_at)";
constexpr const char* revoked_access_sql =
    "SELECT jti FROM revoked_access WHERE expires_at > $1 ORDER BY jti";

user read_user(const rows& r, int i) {
  return user{r.int64(i, 0), std::string(r.text(i, 1)), std::string(r.text(i, 2)), r.int64(i, 3)};
}

}  // namespace

result<user> create_user(connection& c, const std::string& username,
                         const std::string& password_hash, timestamp_us now) {
  auto r = c.query(insert_user_sql, params().add(username).add(password_hash).add(now));
  if (r.empty()) return error(errc::conflict, "username already taken");
  return user{r.int64(0, 0), username, password_hash, now};
}

result<user> find_user_by_name(connection& c, const std::string& username) {
  auto r = c.query(user_by_name_sql, params().add(username));
  if (r.empty()) return error(errc::not_found, "user not found");
  return read_user(r, 0);
}

result<user> find_user(connection& c, user_id id) {
  auto r = c.query(user_by_id_sql, params().add(id));
  if (r.empty()) return error(errc::not_found, "user not found");
  return read_user(r, 0);
}

std::vector<user_id> existing_users(connection& c, const std::vector<user_id>& ids) {
  std::vector<user_id> out;
  if (ids.empty()) return out;
  auto r = c.query(existing_users_sql, params().add_array(ids));
  out.reserve(static_cast<std::size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) out.push_back(r.int64(i, 0));
  return out;
}

result<void> insert_refresh(connection& c, const refresh_token_record& rec) {
  c.query(insert_refresh_sql,
          params().add(rec.token_hash).add(rec.user).add(rec.family).add(rec.expires_at));
  return ok;
}

result<user_id> rotate_refresh(connection& c, const std::string& old_hash,
                               refresh_token_record replacement, timestamp_us now) {
  transaction tx(c);
  auto r = c.query(refresh_for_update_sql, params().add(old_hash));
  if (r.empty()) return error(errc::unauthenticated, "unknown refresh token", "invalid_token");
  const user_id owner = r.int64(0, 0);
  std::string family(r.text(0, 1));
  const timestamp_us expires_at = r.int64(0, 2);
  const bool rotated = r.boolean(0, 3);
  const bool revoked = r.boolean(0, 4);
  if (revoked) return error(errc::unauthenticated, "refresh token revoked", "invalid_token");
  if (rotated) {
    // Reuse of a rotated token: someone holds a stolen copy. Revoke the whole family, and
    // keep that revocation although the call fails.
    c.query(revoke_family_sql, params().add(family));
    tx.commit();
    return error(errc::unauthenticated, "refresh token reused", "invalid_token");
  }
  if (expires_at <= now)
    return error(errc::unauthenticated, "refresh token expired", "invalid_token");
  c.query(mark_rotated_sql, params().add(old_hash).add(now));
  replacement.user = owner;
  replacement.family = family;
  c.query(insert_refresh_sql, params()
                                  .add(replacement.token_hash)
                                  .add(replacement.user)
                                  .add(replacement.family)
                                  .add(replacement.expires_at));
  tx.commit();
  return owner;
}

result<void> revoke_refresh(connection& c, const std::string& token_hash) {
  auto r = c.query(revoke_family_of_sql, params().add(token_hash));
  if (r.affected() == 0) return error(errc::not_found, "unknown refresh token");
  return ok;
}

result<void> revoke_access(connection& c, const std::string& jti, timestamp_us expires_at) {
  c.query(insert_access_sql, params().add(jti).add(expires_at));
  return ok;
}

std::vector<std::string> revoked_access(connection& c, timestamp_us now) {
  std::vector<std::string> out;
  auto r = c.query(revoked_access_sql, params().add(now));
  out.reserve(static_cast<std::size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) out.emplace_back(r.text(i, 0));
  return out;
}

}  // namespace chat4all::pg
