// Users, refresh tokens and revoked access tokens.

#include <algorithm>

#include "adapters/store/sqlite/ops.hpp"

namespace chat4all::sqlite {

namespace {

constexpr const char* insert_user_sql =
    "INSERT INTO users(username, password_hash, created_at) VALUES (?1, ?2, ?3)";
constexpr const char* user_by_name_sql =
    "SELECT id, username, password_hash, created_at FROM users WHERE username = ?1";
constexpr const char* user_by_id_sql =
    "SELECT id, username, password_hash, created_at FROM users WHERE id = ?1";
constexpr const char* user_exists_sql = "SELECT 1 FROM users WHERE id = ?1";

constexpr const char* insert_refresh_sql =
    "INSERT INTO refresh_tokens(token_hash, user_id, family, expires_at) "
    "VALUES (?1, ?2, ?3, ?4)";
constexpr const char* refresh_by_hash_sql =
    "SELECT user_id, family, expires_at, rotated_at, revoked FROM refresh_tokens "
    "WHERE token_hash = ?1";
constexpr const char* mark_rotated_sql =
    "UPDATE refresh_tokens SET rotated_at = ?2 WHERE token_hash = ?1";
constexpr const char* revoke_family_sql = "UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1";

constexpr const char* insert_access_sql =
    "INSERT INTO revoked_access(jti, expires_at) VALUES (?1, ?2) "
    "ON CONFLICT(jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)";
constexpr const char* revoked_access_sql =
    "SELECT jti FROM revoked_access WHERE expires_at > ?1 ORDER BY jti";

user read_user(const statement& st) {
  return user{st.int64(0), st.text(1), st.text(2), st.int64(3)};
}

}  // namespace

result<user> create_user(connection& c, const std::string& username,
                         const std::string& password_hash, timestamp_us now) {
  transaction tx(c, tx_kind::write);
  {
    auto st = c.prepare(user_by_name_sql);
    st.bind_text(1, username);
    if (st.step()) return error(errc::conflict, "username already taken");
  }
  c.prepare(insert_user_sql).bind_text(1, username).bind_text(2, password_hash).bind(3, now).run();
  user u{c.last_insert_rowid(), username, password_hash, now};
  tx.commit();
  return u;
}

result<user> find_user_by_name(connection& c, const std::string& username) {
  auto st = c.prepare(user_by_name_sql);
  st.bind_text(1, username);
  if (!st.step()) return error(errc::not_found, "user not found");
  return read_user(st);
}

result<user> find_user(connection& c, user_id id) {
  auto st = c.prepare(user_by_id_sql);
  st.bind(1, id);
  if (!st.step()) return error(errc::not_found, "user not found");
  return read_user(st);
}

std::vector<user_id> existing_users(connection& c, std::vector<user_id> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<user_id> out;
  out.reserve(ids.size());
  for (user_id id : ids) {
    auto st = c.prepare(user_exists_sql);
    st.bind(1, id);
    if (st.step()) out.push_back(id);
  }
  return out;
}

result<void> insert_refresh(connection& c, const refresh_token_record& rec) {
  transaction tx(c, tx_kind::write);
  c.prepare(insert_refresh_sql)
      .bind_text(1, rec.token_hash)
      .bind(2, rec.user)
      .bind_text(3, rec.family)
      .bind(4, rec.expires_at)
      .run();
  tx.commit();
  return ok;
}

result<user_id> rotate_refresh(connection& c, const std::string& old_hash,
                               refresh_token_record replacement, timestamp_us now) {
  transaction tx(c, tx_kind::write);
  user_id owner = 0;
  std::string family;
  timestamp_us expires_at = 0;
  bool rotated = false, revoked = false;
  {
    auto st = c.prepare(refresh_by_hash_sql);
    st.bind_text(1, old_hash);
    if (!st.step()) return error(errc::unauthenticated, "unknown refresh token", "invalid_token");
    owner = st.int64(0);
    family = st.text(1);
    expires_at = st.int64(2);
    rotated = !st.is_null(3);
    revoked = st.int64(4) != 0;
  }
  if (revoked) return error(errc::unauthenticated, "refresh token revoked", "invalid_token");
  if (rotated) {
    // Reuse of a rotated token: someone holds a stolen copy. Revoke the whole family, and
    // keep that revocation although the call fails.
    c.prepare(revoke_family_sql).bind_text(1, family).run();
    tx.commit();
    return error(errc::unauthenticated, "refresh token reused", "invalid_token");
  }
  if (expires_at <= now)
    return error(errc::unauthenticated, "refresh token expired", "invalid_token");
  c.prepare(mark_rotated_sql).bind_text(1, old_hash).bind(2, now).run();
  replacement.user = owner;
  replacement.family = family;
  c.prepare(insert_refresh_sql)
      .bind_text(1, replacement.token_hash)
      .bind(2, replacement.user)
      .bind_text(3, replacement.family)
      .bind(4, replacement.expires_at)
      .run();
  tx.commit();
  return owner;
}

result<void> revoke_refresh(connection& c, const std::string& token_hash) {
  transaction tx(c, tx_kind::write);
  std::string family;
  {
    auto st = c.prepare(refresh_by_hash_sql);
    st.bind_text(1, token_hash);
    if (!st.step()) return error(errc::not_found, "unknown refresh token");
    family = st.text(1);
  }
  c.prepare(revoke_family_sql).bind_text(1, family).run();
  tx.commit();
  return ok;
}

result<void> revoke_access(connection& c, const std::string& jti, timestamp_us expires_at) {
  transaction tx(c, tx_kind::write);
  c.prepare(insert_access_sql).bind_text(1, jti).bind(2, expires_at).run();
  tx.commit();
  return ok;
}

std::vector<std::string> revoked_access(connection& c, timestamp_us now) {
  std::vector<std::string> out;
  auto st = c.prepare(revoked_access_sql);
  st.bind(1, now);
  while (st.step()) out.push_back(st.text(0));
  return out;
}

}  // namespace chat4all::sqlite
