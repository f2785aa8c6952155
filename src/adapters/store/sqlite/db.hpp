#pragma once
// Internal to the SQLite adapter: a thin RAII layer over the SQLite C API (connections with a
// per-connection prepared-statement cache, statements, transactions) that keeps sqlite3.h out
// of every header.
//
// Thread-safety: a `connection` and its statements belong to one thread at a time (connections
// are opened with SQLITE_OPEN_NOMUTEX); the adapter hands them out under a mutex or a lease.
// Errors: SQLite failures are thrown as `sqlite::failure` (carrying the mapped `error`) and
// never leave the adapter: sqlite_store converts them to error values at its boundary.

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace chat4all::sqlite {

// A failed SQLite call, already mapped to a project error. Only thrown inside worker jobs.
class failure : public std::exception {
 public:
  explicit failure(error e) : err_(std::move(e)) {}
  const char* what() const noexcept override { return err_.message.c_str(); }
  const error& err() const noexcept { return err_; }

 private:
  error err_;
};

// Maps an SQLite (extended) result code to a project error:
// BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL, NOMEM, READONLY -> unavailable;
// CONSTRAINT_UNIQUE/PRIMARYKEY -> conflict; CONSTRAINT_FOREIGNKEY -> not_found;
// other constraints -> invalid_input; anything else (SQL errors, misuse) -> internal.
error map_error(int rc, std::string message);

// A borrowed, cached prepared statement. Resets itself and clears its bindings when it goes
// out of scope, so the next user of the same cached statement starts clean. Text and blob
// bindings are not copied: the bound data must outlive the last step().
class statement {
 public:
  statement(sqlite3_stmt* s, sqlite3* db) noexcept : s_(s), db_(db) {}
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  ~statement();

  statement& bind(int i, std::int64_t v);
  statement& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  statement& bind_text(int i, std::string_view v);
  // The text is bound without a copy (SQLITE_STATIC): it must outlive the step, so a
  // temporary string is refused at compile time.
  statement& bind_text(int i, std::string&& v) = delete;
  statement& bind_text(int i, const char* v) { return bind_text(i, std::string_view(v)); }
  statement& bind_blob(int i, std::string_view v);
  statement& bind_blob(int i, std::string&& v) = delete;
  statement& bind_null(int i);

  // true: a row is available; false: done. Throws failure on error.
  bool step();
  // Steps to completion, ignoring rows.
  void run();

  bool is_null(int col) const;
  std::int64_t int64(int col) const;
  std::string text(int col) const;
  std::string_view blob(int col) const;  // valid until the next step/reset

 private:
  sqlite3_stmt* s_;
  sqlite3* db_;
};

struct open_options {
  std::string synchronous = "normal";  // "normal" | "full"
  int busy_timeout_ms = 5000;
  bool writer = false;  // readers get query_only=ON
};

// One SQLite connection with its prepared-statement cache.
class connection {
 public:
  // Throws failure (unavailable) when the database cannot be opened or configured.
  connection(const std::string& path, const open_options& opts);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection();

  // `sql` must be a string with static storage duration: the cache is keyed by its address.
  statement prepare(const char* sql);
  // Runs one or more statements without a cache (pragmas, DDL, BEGIN/COMMIT).
  void exec(const char* sql);
  std::int64_t changes() const noexcept;
  std::int64_t last_insert_rowid() const noexcept;

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

enum class tx_kind { read, write };

// BEGIN (read) or BEGIN IMMEDIATE (write) on construction; ROLLBACK on destruction unless
// commit() succeeded.
class transaction {
 public:
  transaction(connection& c, tx_kind kind);
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  ~transaction();
  void commit();

 private:
  connection& c_;
  bool open_ = true;
};

}  // namespace chat4all::sqlite
