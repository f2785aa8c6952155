#pragma once
// Internal to the PostgreSQL adapter: a thin RAII layer over blocking libpq (connection with a
// per-connection prepared-statement cache, text-format parameters and results, transactions)
// that keeps libpq-fe.h out of every header.
//
// Thread-safety: a `connection` belongs to one thread at a time (the pool leases it to one
// job). Errors: failures are thrown as `pg::failure` carrying the mapped project `error`; they
// never leave the adapter (pg_store converts them to error values at its boundary).

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "core/ids.hpp"

struct pg_conn;
struct pg_result;

namespace chat4all::pg {

// A failed libpq call, already mapped to a project error. Only thrown inside worker jobs.
class failure : public std::exception {
 public:
  explicit failure(error e, bool connection_lost = false)
      : err_(std::move(e)), connection_lost_(connection_lost) {}
  const char* what() const noexcept override { return err_.message.c_str(); }
  const error& err() const noexcept { return err_; }
  // The connection is gone (the statement may or may not have reached the server).
  bool connection_lost() const noexcept { return connection_lost_; }

 private:
  error err_;
  bool connection_lost_;
};

// Maps a SQLSTATE to a project error code:
// class 08 (connection), 53 (resources), 57P01-03 (shutdown), 40001/40P01 (serialization,
// deadlock), 55P03 (lock not available) -> unavailable; 57014 (cancelled) -> timeout;
// 23505 -> conflict; 23503 -> not_found; other class 23 -> invalid_input; else internal.
errc map_sqlstate(std::string_view sqlstate) noexcept;

// Query parameters, all sent in text format. Arrays are PostgreSQL array literals; the SQL
// casts them ($1::bigint[], $2::uuid[], $3::text[]).
class params {
 public:
  params& add(std::int64_t v);
  params& add(std::string_view v);
  params& add(const uuid& v);
  params& add_null();
  params& add_array(const std::vector<std::int64_t>& v);
  params& add_array(const std::vector<uuid>& v);
  params& add_text_array(const std::vector<std::string_view>& v);

  int size() const noexcept { return static_cast<int>(values_.size()); }
  // Pointers into the stored values (nullptr for NULL); valid until the next add.
  const char* const* values() const;

 private:
  std::vector<std::string> values_;
  std::vector<bool> null_;
  mutable std::vector<const char*> ptrs_;
};

// A result set in text format. Move-only; frees the PGresult.
class rows {
 public:
  explicit rows(pg_result* r) noexcept : r_(r) {}
  rows(rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  rows& operator=(rows&& o) noexcept;
  rows(const rows&) = delete;
  rows& operator=(const rows&) = delete;
  ~rows();

  int size() const noexcept;
  bool empty() const noexcept { return size() == 0; }
  bool is_null(int row, int col) const noexcept;
  std::string_view text(int row, int col) const noexcept;
  std::int64_t int64(int row, int col) const;
  bool boolean(int row, int col) const noexcept { return text(row, col) == "t"; }
  uuid uuid_at(int row, int col) const;
  // Rows affected by INSERT/UPDATE/DELETE.
  std::int64_t affected() const noexcept;

 private:
  pg_result* r_;
};

class connection {
 public:
  // Connects (blocking, bounded by connect_timeout) and sets search_path to `schema`.
  // Throws failure(unavailable) when the server cannot be reached.
  connection(const std::string& conninfo, const std::string& schema);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // A parameterless command or script (BEGIN, COMMIT, DDL). Throws failure.
  void exec(std::string_view sql);
  // Runs `sql` as a prepared statement of this connection, prepared on first use.
  rows query(std::string_view sql, const params& p);
  rows query(std::string_view sql) { return query(sql, params{}); }

  // For a connection taken from the idle list: false when the server closed it or sent
  // something unsolicited (an idle connection has nothing to read), or it is mid-transaction.
  bool reusable() const noexcept;
  // Statements that completed successfully on this connection (tells a caller whether a
  // failure happened before anything ran).
  std::uint64_t completed() const noexcept { return completed_; }
  // The identifier quoted for SQL ("my schema" -> "\"my schema\"").
  std::string quote_ident(std::string_view ident) const;

 private:
  [[noreturn]] void fail(pg_result* r, std::string_view what);
  rows check(pg_result* r, std::string_view what);

  pg_conn* c_ = nullptr;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
  std::uint64_t completed_ = 0;
};

// BEGIN on construction, ROLLBACK on destruction unless commit() ran.
class transaction {
 public:
  explicit transaction(connection& c, std::string_view begin = "BEGIN");
  ~transaction();
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  void commit();

 private:
  connection& c_;
  bool done_ = false;
};

}  // namespace chat4all::pg
