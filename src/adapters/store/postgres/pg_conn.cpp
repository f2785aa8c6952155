#include "adapters/store/postgres/pg_conn.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <memory>

namespace chat4all::pg {

namespace {

std::string trimmed(const char* s) {
  std::string out = s ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// libpq prints notices (e.g. "schema already exists, skipping") to stderr by default.
void ignore_notice(void*, const char*) {}

}  // namespace

errc map_sqlstate(std::string_view s) noexcept {
  if (s.size() != 5) return errc::internal;
  auto cls = s.substr(0, 2);
  if (cls == "08" || cls == "53") return errc::unavailable;
  if (s == "57P01" || s == "57P02" || s == "57P03") return errc::unavailable;
  if (s == "40001" || s == "40P01" || s == "55P03") return errc::unavailable;
  if (s == "57014") return errc::timeout;
  if (s == "23505") return errc::conflict;
  if (s == "23503") return errc::not_found;
  if (cls == "23" || cls == "22") return errc::invalid_input;
  return errc::internal;
}

// ---- params ----

params& params::add(std::int64_t v) {
  values_.push_back(std::to_string(v));
  null_.push_back(false);
  return *this;
}

params& params::add(std::string_view v) {
  values_.emplace_back(v);
  null_.push_back(false);
  return *this;
}

params& params::add(const uuid& v) {
  values_.push_back(v.str());
  null_.push_back(false);
  return *this;
}

params& params::add_null() {
  values_.emplace_back();
  null_.push_back(true);
  return *this;
}

params& params::add_array(const std::vector<std::int64_t>& v) {
  std::string s;
  s.reserve(2 + v.size() * 12);
  s.push_back('{');
  char buf[24];
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s.push_back(',');
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v[i]);
    s.append(buf, end);
  }
  s.push_back('}');
  values_.push_back(std::move(s));
  null_.push_back(false);
  return *this;
}

params& params::add_array(const std::vector<uuid>& v) {
  std::string s;
  s.reserve(2 + v.size() * 37);
  s.push_back('{');
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s.push_back(',');
    s += v[i].str();
  }
  s.push_back('}');
  values_.push_back(std::move(s));
  null_.push_back(false);
  return *this;
}

params& params::add_text_array(const std::vector<std::string_view>& v) {
  std::size_t n = 2;
  for (auto e : v) n += e.size() + 3;
  std::string s;
  s.reserve(n + n / 8);
  s.push_back('{');
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s.push_back(',');
    // Quoted element: backslash escapes '"' and '\' (array literal syntax).
    s.push_back('"');
    for (char ch : v[i]) {
      if (ch == '"' || ch == '\\') s.push_back('\\');
      s.push_back(ch);
    }
    s.push_back('"');
  }
  s.push_back('}');
  values_.push_back(std::move(s));
  null_.push_back(false);
  return *this;
}

const char* const* params::values() const {
  ptrs_.resize(values_.size());
  for (std::size_t i = 0; i < values_.size(); ++i)
    ptrs_[i] = null_[i] ? nullptr : values_[i].c_str();
  return ptrs_.data();
}

// ---- rows ----

rows& rows::operator=(rows&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}

rows::~rows() {
  if (r_) PQclear(r_);
}

int rows::size() const noexcept {
  return r_ ? PQntuples(r_) : 0;
}

bool rows::is_null(int row, int col) const noexcept {
  return PQgetisnull(r_, row, col) != 0;
}

std::string_view rows::text(int row, int col) const noexcept {
  return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
}

std::int64_t rows::int64(int row, int col) const {
  auto t = text(row, col);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc{} || p != t.data() + t.size())
    throw failure(error(errc::internal, "postgres: not an integer: " + std::string(t)));
  return v;
}

uuid rows::uuid_at(int row, int col) const {
  auto t = text(row, col);
  auto u = uuid::parse(t);
  if (!u) throw failure(error(errc::internal, "postgres: not a uuid: " + std::string(t)));
  return *u;
}

std::int64_t rows::affected() const noexcept {
  const char* n = r_ ? PQcmdTuples(r_) : nullptr;
  if (!n || !*n) return 0;
  std::int64_t v = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), v);
  return v;
}

// ---- connection ----

connection::connection(const std::string& conninfo, const std::string& schema) {
  // Defaults first: `dbname` (expanded from the caller's conninfo or URI) comes last, so
  // anything the caller set overrides them. Keepalives detect a dead server within ~25 s
  // instead of the kernel's two hours; the timeouts bound every wait of a worker thread (a
  // lock held by a stuck peer, a runaway statement) and free locks of a stuck transaction.
  const char* keys[] = {"application_name",
                        "connect_timeout",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "options",
                        "dbname",
                        nullptr};
  const char* vals[] = {"chat4all",
                        "5",
                        "1",
                        "10",
                        "5",
                        "3",
                        "-c statement_timeout=60s -c lock_timeout=30s "
                        "-c idle_in_transaction_session_timeout=60s",
                        conninfo.c_str(),
                        nullptr};
  c_ = PQconnectdbParams(keys, vals, 1);
  if (!c_ || PQstatus(c_) != CONNECTION_OK) {
    std::string msg = c_ ? trimmed(PQerrorMessage(c_)) : "out of memory";
    if (c_) PQfinish(c_);
    c_ = nullptr;
    throw failure(error(errc::unavailable, "postgres: cannot connect: " + msg), true);
  }
  PQsetNoticeProcessor(c_, ignore_notice, nullptr);
  try {
    exec("SET search_path TO " + quote_ident(schema));
  } catch (...) {
    PQfinish(c_);
    c_ = nullptr;
    throw;
  }
}

connection::~connection() {
  if (c_) PQfinish(c_);
}

std::string connection::quote_ident(std::string_view ident) const {
  std::unique_ptr<char, void (*)(void*)> q(PQescapeIdentifier(c_, ident.data(), ident.size()),
                                           PQfreemem);
  if (!q)
    throw failure(
        error(errc::internal, "postgres: bad identifier: " + trimmed(PQerrorMessage(c_))));
  return q.get();
}

void connection::fail(pg_result* r, std::string_view what) {
  std::string state;
  std::string msg;
  if (r) {
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
    msg = trimmed(PQresultErrorMessage(r));
    PQclear(r);
  }
  if (msg.empty()) msg = trimmed(PQerrorMessage(c_));
  const bool lost = PQstatus(c_) == CONNECTION_BAD;
  errc code = lost ? errc::unavailable : state.empty() ? errc::internal : map_sqlstate(state);
  if (lost && code != errc::unavailable) code = errc::unavailable;
  throw failure(error(code, "postgres: " + std::string(what) + ": " + msg), lost);
}

rows connection::check(pg_result* r, std::string_view what) {
  if (!r) fail(nullptr, what);
  auto st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) fail(r, what);
  ++completed_;
  return rows(r);
}

void connection::exec(std::string_view sql) {
  std::string s(sql);
  check(PQexec(c_, s.c_str()), "exec");
}

rows connection::query(std::string_view sql, const params& p) {
  std::string key(sql);
  auto it = prepared_.find(key);
  if (it == prepared_.end()) {
    std::string name = "c4a_" + std::to_string(prepared_.size());
    check(PQprepare(c_, name.c_str(), key.c_str(), 0, nullptr), "prepare");
    it = prepared_.emplace(std::move(key), std::move(name)).first;
  }
  return check(PQexecPrepared(c_, it->second.c_str(), p.size(), p.values(), nullptr, nullptr, 0),
               "query");
}

bool connection::reusable() const noexcept {
  if (!c_ || PQstatus(c_) != CONNECTION_OK) return false;
  if (PQtransactionStatus(c_) != PQTRANS_IDLE) return false;
  // An idle connection has nothing to read: readable means EOF, a FATAL message (admin
  // shutdown, idle timeout) or an error on the socket. Checked without blocking.
  pollfd p{PQsocket(c_), POLLIN, 0};
  return p.fd >= 0 && ::poll(&p, 1, 0) == 0;
}

// ---- transaction ----

transaction::transaction(connection& c, std::string_view begin) : c_(c) {
  c_.exec(begin);
}

transaction::~transaction() {
  if (done_) return;
  try {
    c_.exec("ROLLBACK");
  } catch (const failure&) {
    // The connection is broken: the pool sees that (reusable() is false) and drops it.
  }
}

void transaction::commit() {
  c_.exec("COMMIT");
  done_ = true;
}

}  // namespace chat4all::pg
