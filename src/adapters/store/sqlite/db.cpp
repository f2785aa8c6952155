#include "adapters/store/sqlite/db.hpp"

#include <sqlite3.h>

#include <string>

namespace chat4all::sqlite {

namespace {

[[noreturn]] void fail(int rc, sqlite3* db, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw failure(map_error(rc, std::move(msg)));
}

constexpr const char* begin_read_sql = "BEGIN";
constexpr const char* begin_write_sql = "BEGIN IMMEDIATE";
constexpr const char* commit_sql = "COMMIT";

}  // namespace

error map_error(int rc, std::string message) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:
      return {errc::unavailable, std::move(message)};
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return {errc::conflict, std::move(message)};
      if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return {errc::not_found, std::move(message)};
      return {errc::invalid_input, std::move(message)};
    default:
      return {errc::internal, std::move(message)};
  }
}

// ---- statement ----

statement::~statement() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

statement& statement::bind(int i, std::int64_t v) {
  if (int rc = sqlite3_bind_int64(s_, i, v); rc != SQLITE_OK) fail(rc, db_, "bind");
  return *this;
}

statement& statement::bind_text(int i, std::string_view v) {
  int rc =
      sqlite3_bind_text64(s_, i, v.data() ? v.data() : "", v.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (rc != SQLITE_OK) fail(rc, db_, "bind");
  return *this;
}

statement& statement::bind_blob(int i, std::string_view v) {
  int rc = sqlite3_bind_blob64(s_, i, v.data() ? v.data() : "", v.size(), SQLITE_STATIC);
  if (rc != SQLITE_OK) fail(rc, db_, "bind");
  return *this;
}

statement& statement::bind_null(int i) {
  if (int rc = sqlite3_bind_null(s_, i); rc != SQLITE_OK) fail(rc, db_, "bind");
  return *this;
}

bool statement::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // With sqlite3_prepare_v2 the step result already is the specific (extended) code.
  fail(rc, db_, sqlite3_sql(s_) ? sqlite3_sql(s_) : "step");
}

void statement::run() {
  while (step()) {
  }
}

bool statement::is_null(int col) const {
  return sqlite3_column_type(s_, col) == SQLITE_NULL;
}

std::int64_t statement::int64(int col) const {
  return sqlite3_column_int64(s_, col);
}

std::string statement::text(int col) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
  if (!p) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col)));
}

std::string_view statement::blob(int col) const {
  auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
  if (!p) return {};
  return {p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))};
}

// ---- connection ----

connection::connection(const std::string& path, const open_options& opts) {
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "open " + path + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
    sqlite3_close_v2(db_);
    db_ = nullptr;
    error e = map_error(rc, std::move(msg));
    e.code = errc::unavailable;
    throw failure(std::move(e));
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, opts.busy_timeout_ms);
  try {
    // journal_mode is persistent in the file; setting it on every connection is harmless.
    if (opts.writer) {
      exec("PRAGMA journal_mode=WAL");
      // Checkpoint every ~64 MiB of WAL instead of 4 MiB: a page rewritten by many batches
      // is copied into the database file once per checkpoint, not once per 4 MiB.
      exec("PRAGMA wal_autocheckpoint=16384");
    }
    exec(opts.synchronous == "full" ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
    exec("PRAGMA temp_store=MEMORY");
    exec("PRAGMA cache_size=-16384");  // 16 MiB per connection
    if (!opts.writer) exec("PRAGMA query_only=ON");
  } catch (const failure& f) {
    for (auto& [k, s] : cache_) sqlite3_finalize(s);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    error e = f.err();
    e.code = errc::unavailable;
    throw failure(std::move(e));
  }
}

connection::~connection() {
  for (auto& [k, s] : cache_) sqlite3_finalize(s);
  if (db_) sqlite3_close_v2(db_);
}

statement connection::prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return {it->second, db_};
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) fail(rc, db_, std::string("prepare ") + sql);
  cache_.emplace(sql, s);
  return {s, db_};
}

void connection::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = std::string(sql).substr(0, 80) + ": " + (err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    throw failure(map_error(sqlite3_extended_errcode(db_), std::move(msg)));
  }
}

std::int64_t connection::changes() const noexcept {
  return sqlite3_changes64(db_);
}

std::int64_t connection::last_insert_rowid() const noexcept {
  return sqlite3_last_insert_rowid(db_);
}

// ---- transaction ----

transaction::transaction(connection& c, tx_kind kind) : c_(c) {
  c_.prepare(kind == tx_kind::write ? begin_write_sql : begin_read_sql).run();
}

transaction::~transaction() {
  if (!open_) return;
  // ROLLBACK is not cached: it must work even when the statement cache is in a bad state,
  // and a failing rollback (no transaction active after an automatic rollback) is harmless.
  try {
    c_.exec("ROLLBACK");
  } catch (const failure&) {
  }
}

void transaction::commit() {
  c_.prepare(commit_sql).run();
  open_ = false;
}

}  // namespace chat4all::sqlite
