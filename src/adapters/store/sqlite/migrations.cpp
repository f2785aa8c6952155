// Versioned schema migrations. A migration is never edited once released: add a new one.
//
// Key choices (see FIELD_NOTES: random-UUID primary keys cost ~6x in SQLite):
// - messages live in a rowid table whose rowid grows with acceptance order (a time-ordered
//   key: every insert appends at the end of the table), with UNIQUE (conversation_id, seq) for
//   history ranges and the client's UUID in a UNIQUE secondary index (the idempotency key).
//   Measured with ~250-byte rows in 1000-row batches over 100 conversations: 2x the insert
//   rate of a WITHOUT ROWID table keyed by (conversation_id, seq), whose inserts land in 100
//   places per batch and whose large rows make it split pages (SQLite advises WITHOUT ROWID
//   only for rows under ~1/20 of a page).
// - conversations.last_seq is the per-conversation counter: seq = ++last_seq inside the one
//   writer transaction, so seqs are gap-free by construction.
// - conversations.private_pair ("min:max" user ids) makes a private pair unique.
// - the first two status events of every message (ACCEPTED at created_at, DELIVERED at
//   delivered_at) are columns of the message row, not history rows: the write path inserts
//   one row per message instead of three. message_status_history holds the later events
//   (READ, channel deliveries, FAILED), numbered n = 2, 3, ...
// - a message the router could not store (store_failed, SPEC §6) is a row with status FAILED
//   and delivered_at = the failure time, plus history row n = 1 (FAILED, detail = reason),
//   which takes the place of the DELIVERED event: its history is ACCEPTED, FAILED.
// - conversations.last_activity_at starts at created_at and follows the newest message, so
//   list_conversations sorts on one column.

#include <iterator>

#include "adapters/store/sqlite/ops.hpp"

namespace chat4all::sqlite {

namespace {

struct migration {
  int version;
  const char* sql;
};

constexpr migration migrations[] = {
    {1, R"sql(
CREATE TABLE users(
  id            INTEGER PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at    INTEGER NOT NULL
);

CREATE TABLE conversations(
  id               INTEGER PRIMARY KEY,
  type             TEXT NOT NULL CHECK (type IN ('private', 'group')),
  name             TEXT NOT NULL DEFAULT '',
  description      TEXT NOT NULL DEFAULT '',
  created_at       INTEGER NOT NULL,
  last_seq         INTEGER NOT NULL DEFAULT 0,
  last_activity_at INTEGER NOT NULL,
  member_count     INTEGER NOT NULL,
  private_pair     TEXT UNIQUE
);

CREATE TABLE conversation_members(
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  user_id         INTEGER NOT NULL REFERENCES users(id),
  last_read_seq   INTEGER NOT NULL DEFAULT 0,
  joined_at       INTEGER NOT NULL,
  PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX conversation_members_by_user
  ON conversation_members(user_id, conversation_id, last_read_seq);

CREATE TABLE messages(
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL REFERENCES conversations(id),
  seq             INTEGER NOT NULL,
  message_id      BLOB NOT NULL,
  sender_id       INTEGER NOT NULL,
  payload         TEXT NOT NULL,
  channels        TEXT NOT NULL DEFAULT '[]',
  status          INTEGER NOT NULL,
  content_hash    INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  delivered_at    INTEGER NOT NULL,
  UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_by_message_id ON messages(message_id);

CREATE TABLE message_status_history(
  conversation_id INTEGER NOT NULL,
  seq             INTEGER NOT NULL,
  n               INTEGER NOT NULL,
  status          INTEGER NOT NULL,
  channel         TEXT NOT NULL DEFAULT '',
  detail          TEXT NOT NULL DEFAULT '',
  at              INTEGER NOT NULL,
  PRIMARY KEY (conversation_id, seq, n)
) WITHOUT ROWID;

CREATE TABLE refresh_tokens(
  token_hash TEXT PRIMARY KEY,
  user_id    INTEGER NOT NULL,
  family     TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  rotated_at INTEGER,
  revoked    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens(family);

CREATE TABLE revoked_access(
  jti        TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX revoked_access_by_expiry ON revoked_access(expires_at);
)sql"},
    // Uploads (SPEC §5). The id is the client-visible UUID as 16 raw bytes; uploads are few
    // and long-lived, so a UUID key costs nothing that matters here. The owner index serves
    // the per-user limits, the expiry index the gc scan.
    {2, R"sql(
CREATE TABLE uploads(
  id              BLOB PRIMARY KEY,
  owner_id        INTEGER NOT NULL,
  conversation_id INTEGER NOT NULL,
  filename        TEXT NOT NULL,
  mime_type       TEXT NOT NULL,
  file_size       INTEGER NOT NULL,
  chunk_size      INTEGER NOT NULL,
  total_chunks    INTEGER NOT NULL,
  checksum_sha256 TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL,
  reason          TEXT NOT NULL DEFAULT '',
  blob_key        TEXT NOT NULL,
  blob_upload     TEXT NOT NULL DEFAULT '',
  protocol        TEXT NOT NULL,
  file_sha256     TEXT NOT NULL DEFAULT '',
  detected_mime   TEXT NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX uploads_by_owner ON uploads(owner_id, status);
CREATE INDEX uploads_by_expiry ON uploads(status, expires_at);

CREATE TABLE upload_chunks(
  upload_id BLOB NOT NULL,
  n         INTEGER NOT NULL,
  size      INTEGER NOT NULL,
  sha256    TEXT NOT NULL,
  etag      TEXT NOT NULL,
  PRIMARY KEY (upload_id, n)
) WITHOUT ROWID;
)sql"},
};

}  // namespace

int latest_schema_version() noexcept {
  return std::prev(std::end(migrations))->version;
}

int apply_migrations(connection& c) {
  c.exec(
      "CREATE TABLE IF NOT EXISTS schema_version("
      "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
  static constexpr const char* current_sql = "SELECT coalesce(max(version), 0) FROM schema_version";
  static constexpr const char* record_sql =
      "INSERT INTO schema_version(version, applied_at) "
      "VALUES (?1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))";
  int current = 0;
  {
    auto st = c.prepare(current_sql);
    if (st.step()) current = static_cast<int>(st.int64(0));
  }
  for (const auto& m : migrations) {
    if (m.version <= current) continue;
    transaction tx(c, tx_kind::write);
    // Re-check inside the write lock: another process may have migrated meanwhile.
    {
      auto st = c.prepare(current_sql);
      if (st.step() && st.int64(0) >= m.version) continue;
    }
    c.exec(m.sql);
    c.prepare(record_sql).bind(1, m.version).run();
    tx.commit();
    current = m.version;
  }
  auto st = c.prepare(current_sql);
  return st.step() ? static_cast<int>(st.int64(0)) : current;
}

}  // namespace chat4all::sqlite
