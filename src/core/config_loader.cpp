#include "core/config_loader.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <type_traits>
#include <variant>

#include "core/ids.hpp"

extern char** environ;

namespace chat4all {
namespace {

using value_t = std::variant<std::string, std::int64_t, bool>;
enum class kind { string, integer, boolean };

// One key: where it lives, how to validate it, and how to read/write it in a config.
struct key_spec {
  std::string table;  // "" for top-level keys
  std::string name;
  std::string full;  // "server.listen"
  std::string env;   // "CHAT4ALL_SERVER_LISTEN"
  kind k = kind::string;
  std::int64_t lo = 0, hi = 0;                  // integer range (inclusive)
  std::vector<std::string> choices;             // string enum, when not empty
  std::string requirement;                      // "must be <requirement>"
  std::function<bool(std::string_view)> check;  // extra string validation
  bool secret = false;
  std::string doc;
  std::function<void(config&, const value_t&)> set;
  std::function<value_t(const config&)> get;
};

template <class S, class T>
auto member(S config::*sub, T S::*m) {
  return [sub, m](config& c) -> T& { return (c.*sub).*m; };
}
template <class T>
auto member(T config::*m) {
  return [m](config& c) -> T& { return c.*m; };
}

template <class Acc>
key_spec make(std::string table, std::string name, Acc acc, std::string doc) {
  using T = std::remove_reference_t<decltype(acc(std::declval<config&>()))>;
  key_spec s;
  s.table = std::move(table);
  s.name = std::move(name);
  s.full = s.table.empty() ? s.name : s.table + "." + s.name;
  s.env = "CHAT4ALL_";
  for (const char ch : s.table.empty() ? s.name : s.table + "_" + s.name)
    s.env += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  s.doc = std::move(doc);
  if constexpr (std::is_same_v<T, std::string>) {
    s.k = kind::string;
  } else if constexpr (std::is_same_v<T, bool>) {
    s.k = kind::boolean;
    s.requirement = "true or false";
  } else {
    static_assert(std::is_integral_v<T>);
    s.k = kind::integer;
  }
  s.set = [acc](config& c, const value_t& v) {
    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool>)
      acc(c) = std::get<T>(v);
    else
      acc(c) = static_cast<T>(std::get<std::int64_t>(v));
  };
  s.get = [acc](const config& c) -> value_t {
    // The accessor only reads here; it takes a non-const config to serve set() too.
    const T& v = acc(const_cast<config&>(c));
    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool>)
      return v;
    else
      return static_cast<std::int64_t>(v);
  };
  return s;
}

template <class Acc>
key_spec integer(std::string table, std::string name, Acc acc, std::int64_t lo, std::int64_t hi,
                 std::string doc) {
  key_spec s = make(std::move(table), std::move(name), acc, std::move(doc));
  s.lo = lo;
  s.hi = hi;
  s.requirement = "an integer between " + std::to_string(lo) + " and " + std::to_string(hi);
  return s;
}

template <class Acc>
key_spec boolean(std::string table, std::string name, Acc acc, std::string doc) {
  return make(std::move(table), std::move(name), acc, std::move(doc));
}

template <class Acc>
key_spec choice(std::string table, std::string name, Acc acc, std::vector<std::string> choices,
                std::string doc) {
  key_spec s = make(std::move(table), std::move(name), acc, std::move(doc));
  s.requirement = "one of";
  for (std::size_t i = 0; i < choices.size(); ++i)
    s.requirement += (i == 0 ? " " : ", ") + choices[i];
  s.choices = std::move(choices);
  return s;
}

template <class Acc>
key_spec text(std::string table, std::string name, Acc acc, std::string requirement,
              std::function<bool(std::string_view)> check, std::string doc, bool secret = false) {
  key_spec s = make(std::move(table), std::move(name), acc, std::move(doc));
  s.requirement = std::move(requirement);
  s.check = std::move(check);
  s.secret = secret;
  return s;
}

bool valid_listen(std::string_view v) {
  const auto colon = v.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view host = v.substr(0, colon), port = v.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  if (std::stoi(std::string(port)) > 65535) return false;
  if (host.front() == '[') {
    if (host.size() < 4 || host.back() != ']') return false;
    return std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
  });
}

bool non_empty(std::string_view v) {
  return !v.empty() && v.find('\0') == std::string_view::npos;
}

constexpr std::int64_t kib = 1024, mib = 1024 * kib, gib = 1024 * mib;

std::vector<key_spec> build_specs() {
  std::vector<key_spec> v;
  v.push_back(choice("", "role", member(&config::role),
                     {"all", "api", "router", "relay", "merger", "gc"},
                     "What this process runs: everything, only the HTTP/WebSocket API, only "
                     "the router, only the outbox relay, only the file merger, or only the "
                     "expired-upload collector."));
  v.push_back(boolean("", "seed_demo_users", member(&config::seed_demo_users),
                      "Create demo users at startup (for demos and tests)."));

  const auto srv = [](auto m) { return member(&config::server, m); };
  v.push_back(text("server", "listen", srv(&server_config::listen),
                   "host:port with a port between 0 and 65535", valid_listen,
                   "Address the HTTP/WebSocket listener binds (IPv6 as [::1]:8080; port 0 picks "
                   "a free port)."));
  v.push_back(integer("server", "threads", srv(&server_config::threads), 0, 256,
                      "I/O threads; 0 means one per CPU core."));
  v.push_back(integer("server", "max_header_bytes", srv(&server_config::max_header_bytes), kib, mib,
                      "Largest accepted request head (request line and headers)."));
  v.push_back(integer("server", "max_body_bytes", srv(&server_config::max_body_bytes), 1, gib,
                      "Largest accepted request body, for routes without their own limit."));
  v.push_back(integer("server", "max_batch_body_bytes", srv(&server_config::max_batch_body_bytes),
                      1, gib, "Largest accepted body of POST /v1/messages:batch."));
  v.push_back(integer("server", "read_timeout_s", srv(&server_config::read_timeout_s), 1, 3600,
                      "Seconds within which a whole request must arrive."));
  v.push_back(integer("server", "idle_timeout_s", srv(&server_config::idle_timeout_s), 1, 86400,
                      "Seconds an idle keep-alive connection stays open."));
  v.push_back(integer("server", "max_connections", srv(&server_config::max_connections), 1, 1000000,
                      "Open client connections at most; more are refused."));
  v.push_back(integer("server", "shutdown_grace_s", srv(&server_config::shutdown_grace_s), 0, 3600,
                      "On SIGTERM, seconds to drain in-flight requests before exiting."));

  const auto sto = [](auto m) { return member(&config::storage, m); };
  v.push_back(choice("storage", "backend", sto(&storage_config::backend), {"sqlite", "postgres"},
                     "Where data lives: embedded SQLite under data_dir, or PostgreSQL."));
  v.push_back(text("storage", "data_dir", sto(&storage_config::data_dir), "a non-empty path",
                   non_empty, "Directory for the database, the log and blobs."));
  v.push_back(choice("storage", "sqlite_synchronous", sto(&storage_config::sqlite_synchronous),
                     {"normal", "full"},
                     "SQLite durability: normal survives a killed process, full also survives "
                     "power loss (slower)."));
  v.push_back(integer("storage", "worker_threads", sto(&storage_config::worker_threads), 1, 256,
                      "Threads that run blocking storage work."));
  v.push_back(integer("storage", "busy_timeout_ms", sto(&storage_config::busy_timeout_ms), 0,
                      600000, "How long SQLite waits on a locked database, in milliseconds."));
  v.push_back(text(
      "storage", "postgres_url", sto(&storage_config::postgres_url), "a libpq connection string",
      [](std::string_view) { return true; },
      "PostgreSQL connection (postgresql://user@host:port/db); required with "
      "backend = postgres.",
      true));
  v.push_back(text("storage", "postgres_schema", sto(&storage_config::postgres_schema),
                   "a non-empty schema name", non_empty,
                   "PostgreSQL schema holding the tables (created if missing)."));
  v.push_back(integer("storage", "postgres_pool_size", sto(&storage_config::postgres_pool_size), 1,
                      1024, "PostgreSQL connections per process."));

  const auto lg = [](auto m) { return member(&config::log, m); };
  v.push_back(choice("log", "backend", lg(&log_config::backend), {"embedded", "kafka"},
                     "The durable event log: embedded segment files under data_dir, or Kafka."));
  v.push_back(integer("log", "segment_bytes", lg(&log_config::segment_bytes), 4 * kib, 16 * gib,
                      "Size at which the embedded event log starts a new segment file."));
  v.push_back(integer("log", "max_batch_records", lg(&log_config::max_batch_records), 1, 1000000,
                      "Group commit: records written per fsync at most."));
  v.push_back(boolean("log", "fsync", lg(&log_config::fsync),
                      "fsync the log before acknowledging; false only to benchmark the "
                      "non-durable path."));
  v.push_back(text(
      "log", "kafka_bootstrap", lg(&log_config::kafka_bootstrap), "host:port[,host:port...]",
      [](std::string_view) { return true; },
      "Kafka bootstrap servers; required with backend = kafka."));
  v.push_back(text(
      "log", "kafka_topic_prefix", lg(&log_config::kafka_topic_prefix), "any string",
      [](std::string_view) { return true; },
      "Prefix of every topic name (several deployments on one cluster)."));
  v.push_back(integer("log", "kafka_partitions", lg(&log_config::kafka_partitions), 1, 10000,
                      "Partitions of the messages topic when the server creates it."));
  v.push_back(integer("log", "kafka_replication_factor", lg(&log_config::kafka_replication_factor),
                      1, 16, "Replication factor of topics the server creates."));
  v.push_back(integer("log", "kafka_min_insync_replicas",
                      lg(&log_config::kafka_min_insync_replicas), 1, 16,
                      "min.insync.replicas of topics the server creates."));
  v.push_back(integer("log", "kafka_linger_ms", lg(&log_config::kafka_linger_ms), 0, 1000,
                      "Producer linger: how long records wait to share a batch."));
  v.push_back(boolean("log", "outbox", lg(&log_config::outbox),
                      "With backend = kafka and storage.backend = postgres: accept messages "
                      "into the PostgreSQL outbox while Kafka does not acknowledge them; the "
                      "relay publishes them later, in order."));
  v.push_back(integer("log", "outbox_fallback_ms", lg(&log_config::outbox_fallback_ms), 100, 600000,
                      "How long an append waits for Kafka's acknowledgement before it goes to "
                      "the outbox, in milliseconds."));

  const auto fo = [](auto m) { return member(&config::fanout, m); };
  v.push_back(choice("fanout", "backend", fo(&fanout_config::backend), {"inproc", "redis"},
                     "Real-time event fan-out: in-process, or Redis pub/sub between instances."));
  v.push_back(text(
      "fanout", "redis_url", fo(&fanout_config::redis_url), "redis://host:port",
      [](std::string_view u) { return u.empty() || u.starts_with("redis://"); },
      "Redis for fan-out; required with backend = redis."));
  v.push_back(text(
      "fanout", "redis_channel_prefix", fo(&fanout_config::redis_channel_prefix), "any string",
      [](std::string_view) { return true; }, "Prefix of every Redis pub/sub channel."));

  const auto ws = [](auto m) { return member(&config::ws, m); };
  v.push_back(integer("ws", "heartbeat_s", ws(&ws_config::heartbeat_s), 1, 3600,
                      "WebSocket heartbeat: a ping every this many seconds; a connection silent "
                      "for 2 intervals is closed."));
  v.push_back(integer("ws", "max_connections_per_user", ws(&ws_config::max_connections_per_user), 1,
                      100000,
                      "WebSocket connections of one user per instance; one more is closed with "
                      "code 4008."));
  v.push_back(integer("ws", "send_queue_max_events", ws(&ws_config::send_queue_max_events), 1,
                      1000000,
                      "Events queued for one WebSocket connection at most; a reader that falls "
                      "further behind is closed with code 1013 (it resumes)."));
  v.push_back(
      integer("ws", "send_queue_max_bytes", ws(&ws_config::send_queue_max_bytes), kib, gib,
              "Bytes of events queued for one WebSocket connection at most (same policy)."));
  v.push_back(integer("ws", "max_frame_bytes", ws(&ws_config::max_frame_bytes), 1 * kib, 64 * mib,
                      "Largest client WebSocket message; a larger one is discarded and answered "
                      "with an error event (the connection stays open)."));

  const auto au = [](auto m) { return member(&config::auth, m); };
  v.push_back(text(
      "auth", "jwt_secret", au(&auth_config::jwt_secret), "empty or at least 32 bytes",
      [](std::string_view s) { return s.empty() || s.size() >= 32; },
      "HMAC key for access tokens; empty: generated once and kept in "
      "<data_dir>/jwt.secret.",
      true));
  v.push_back(text("auth", "issuer", au(&auth_config::issuer), "a non-empty string", non_empty,
                   "The iss claim of issued tokens, checked on every token."));
  v.push_back(integer("auth", "access_ttl_s", au(&auth_config::access_ttl_s), 1, 86400,
                      "Lifetime of access tokens (JWT), in seconds."));
  v.push_back(integer("auth", "refresh_ttl_s", au(&auth_config::refresh_ttl_s), 1, 366 * 86400,
                      "Lifetime of refresh tokens, in seconds."));
  v.push_back(boolean("auth", "allow_registration", au(&auth_config::allow_registration),
                      "Whether POST /auth/register is open."));
  v.push_back(integer("auth", "argon2_opslimit", au(&auth_config::argon2_opslimit), 1, 4294967295LL,
                      "Argon2id passes over memory when hashing a password."));
  v.push_back(integer("auth", "argon2_memlimit_kib", au(&auth_config::argon2_memlimit_kib), 8,
                      4 * mib, "Argon2id memory per password hash, in KiB."));
  v.push_back(integer("auth", "token_cache_entries", au(&auth_config::token_cache_entries), 1,
                      100000000, "Verified tokens kept in the validation cache at most."));
  v.push_back(integer("auth", "login_failures_per_user", au(&auth_config::login_failures_per_user),
                      0, 1000000,
                      "Failed logins per username per minute; past it, logins for that username "
                      "get 429 until the minute is over (0 = no limit)."));
  v.push_back(integer("auth", "login_failures_per_ip", au(&auth_config::login_failures_per_ip), 0,
                      1000000,
                      "Failed logins per client IP per minute; past it, logins from that IP get "
                      "429 until the minute is over (0 = no limit)."));

  const auto li = [](auto m) { return member(&config::limits, m); };
  v.push_back(integer("limits", "group_max_members", li(&limits_config::group_max_members), 3, 1000,
                      "Members of a group conversation at most."));
  v.push_back(integer("limits", "message_max_bytes", li(&limits_config::message_max_bytes), 1,
                      16 * mib, "Text content of a message at most, in UTF-8 bytes."));
  v.push_back(integer("limits", "batch_max_messages", li(&limits_config::batch_max_messages), 1,
                      10000, "Messages in one POST /v1/messages:batch at most."));
  v.push_back(integer("limits", "page_max", li(&limits_config::page_max), 1, 1000,
                      "Largest page size (limit) of list endpoints."));

  const auto ro = [](auto m) { return member(&config::router, m); };
  v.push_back(integer("router", "batch_size", ro(&router_config::batch_size), 1, 100000,
                      "Log entries per store transaction at most."));
  v.push_back(integer("router", "poll_wait_ms", ro(&router_config::poll_wait_ms), 0, 60000,
                      "How long the router waits for new log entries before polling again."));
  v.push_back(integer("router", "linger_ms", ro(&router_config::linger_ms), 0, 1000,
                      "While log entries keep arriving, milliseconds the router waits after a "
                      "partial poll so that one store transaction takes more messages (fewer "
                      "commits per message); an idle router stores the first message at once. "
                      "0 never waits."));
  v.push_back(integer("router", "retry_initial_ms", ro(&router_config::retry_initial_ms), 1, 600000,
                      "Wait before the first retry of a failed store, in milliseconds; each "
                      "next retry waits twice as long (1 s, 2 s, 4 s)."));
  v.push_back(integer("router", "max_retries", ro(&router_config::max_retries), 0, 10,
                      "Retries of a failed store before the batch is stored message by message "
                      "and each message that still fails is dead-lettered and marked FAILED."));
  v.push_back(text(
      "router", "fail_store_message_ids", ro(&router_config::fail_store_message_ids),
      "empty or comma-separated message ids (UUIDs)",
      [](std::string_view s) { return parse_uuid_list(s).has_value(); },
      "For tests only: the router's store calls fail for these message ids "
      "(fault injection for the retry and dead-letter path). Leave empty."));

  const auto re = [](auto m) { return member(&config::relay, m); };
  v.push_back(integer("relay", "batch_size", re(&relay_config::batch_size), 1, 100000,
                      "Outbox entries the relay publishes per pass at most."));
  v.push_back(integer("relay", "poll_ms", re(&relay_config::poll_ms), 1, 60000,
                      "How long the relay waits after a pass that found the outbox empty."));
  v.push_back(integer("relay", "backoff_initial_ms", re(&relay_config::backoff_initial_ms), 1,
                      600000,
                      "Wait after a failed relay pass (Kafka or PostgreSQL unavailable); each "
                      "next failure waits twice as long, up to backoff_max_ms."));
  v.push_back(integer("relay", "backoff_max_ms", re(&relay_config::backoff_max_ms), 1, 3600000,
                      "Longest wait between failed relay passes."));
  v.push_back(integer("relay", "lease_ms", re(&relay_config::lease_ms), 1000, 600000,
                      "Publisher lease: one relay publishes at a time; a stand-by relay takes "
                      "over this long after the active one stopped renewing it."));
  v.push_back(integer("relay", "max_attempts", re(&relay_config::max_attempts), 1, 100,
                      "Times Kafka may refuse one outbox entry (e.g. too large) before it goes "
                      "to message_processing_dlq and its message is marked FAILED."));
  const auto up = [](auto m) { return member(&config::uploads, m); };
  v.push_back(integer("uploads", "max_file_size", up(&uploads_config::max_file_size), 1, 64 * gib,
                      "Largest file an upload may declare, in bytes; larger -> 413."));
  v.push_back(integer("uploads", "default_chunk_size", up(&uploads_config::default_chunk_size), kib,
                      gib, "Chunk size when the client does not ask for one, in bytes."));
  v.push_back(integer("uploads", "min_chunk_size", up(&uploads_config::min_chunk_size), kib, gib,
                      "Smallest chunk size a client may ask for (S3 parts are at least 5 MiB)."));
  v.push_back(integer("uploads", "max_chunk_size", up(&uploads_config::max_chunk_size), kib, gib,
                      "Largest chunk size a client may ask for, in bytes."));
  v.push_back(integer("uploads", "expiry_s", up(&uploads_config::expiry_s), 1, 365 * 86400,
                      "Seconds after initiation at which an unfinished upload expires: its "
                      "parts and rows are removed and its status becomes EXPIRED."));
  v.push_back(integer("uploads", "gc_interval_s", up(&uploads_config::gc_interval_s), 1, 86400,
                      "How often the gc task removes expired uploads, in seconds."));
  v.push_back(integer("uploads", "max_active_per_user", up(&uploads_config::max_active_per_user), 0,
                      100000, "Unfinished uploads per user at once (0 = no limit); more -> 429."));
  v.push_back(integer("uploads", "max_bytes_per_user", up(&uploads_config::max_bytes_per_user), 0,
                      1024 * gib,
                      "Total declared size of a user's unfinished uploads (0 = no limit); "
                      "more -> 413."));
  v.push_back(choice("uploads", "magic_mismatch", up(&uploads_config::magic_mismatch),
                     {"record", "reject"},
                     "When a file's magic bytes contradict its declared type: record the "
                     "detected type and complete, or fail the upload."));
  v.push_back(boolean("uploads", "download_redirect", up(&uploads_config::download_redirect),
                      "With blobs.backend = s3, answer downloads with 302 to a presigned URL "
                      "on blobs.s3_public_endpoint instead of streaming through the server."));
  v.push_back(integer("uploads", "presign_ttl_s", up(&uploads_config::presign_ttl_s), 1, 7 * 86400,
                      "Lifetime of presigned download URLs, in seconds."));

  const auto bl = [](auto m) { return member(&config::blobs, m); };
  const auto any_text = [](std::string_view) { return true; };
  v.push_back(choice("blobs", "backend", bl(&blobs_config::backend), {"fs", "s3"},
                     "Where uploaded files live: the local file system or an S3-compatible "
                     "object store (MinIO)."));
  v.push_back(text("blobs", "fs_dir", bl(&blobs_config::fs_dir), "a path", any_text,
                   "Directory of the fs backend; empty: <storage.data_dir>/blobs."));
  v.push_back(text(
      "blobs", "s3_endpoint", bl(&blobs_config::s3_endpoint), "empty or an http(s):// URL",
      [](std::string_view u) {
        return u.empty() || u.starts_with("http://") || u.starts_with("https://");
      },
      "S3 endpoint (http://127.0.0.1:29400); required with backend = s3."));
  v.push_back(text("blobs", "s3_bucket", bl(&blobs_config::s3_bucket), "a non-empty bucket name",
                   non_empty, "S3 bucket holding the files (must exist)."));
  v.push_back(text("blobs", "s3_region", bl(&blobs_config::s3_region), "a non-empty region",
                   non_empty, "Region used in SigV4 signatures."));
  v.push_back(text("blobs", "s3_access_key", bl(&blobs_config::s3_access_key), "any string",
                   any_text, "S3 access key id.", true));
  v.push_back(text("blobs", "s3_secret_key", bl(&blobs_config::s3_secret_key), "any string",
                   any_text, "S3 secret access key.", true));
  v.push_back(text(
      "blobs", "s3_public_endpoint", bl(&blobs_config::s3_public_endpoint),
      "empty or an http(s):// URL",
      [](std::string_view u) {
        return u.empty() || u.starts_with("http://") || u.starts_with("https://");
      },
      "Endpoint clients can reach, used as the host of presigned URLs; empty: s3_endpoint."));
  v.push_back(text("blobs", "s3_key_prefix", bl(&blobs_config::s3_key_prefix), "any string",
                   any_text, "Prefix of every object key (several deployments in one bucket)."));
  v.push_back(integer("blobs", "s3_transfers", bl(&blobs_config::s3_transfers), 1, 1024,
                      "Concurrent S3 requests (worker threads, one blocking transfer each); "
                      "more chunk uploads than this wait in line."));

  const auto lo = [](auto m) { return member(&config::logging, m); };
  v.push_back(choice("logging", "level", lo(&logging_config::level),
                     {"trace", "debug", "info", "warn", "error"}, "Least severe level logged."));
  v.push_back(choice("logging", "format", lo(&logging_config::format), {"json", "text"},
                     "Log line format: JSON objects or human-readable text."));
  return v;
}

const std::vector<key_spec>& specs() {
  static const std::vector<key_spec> s = build_specs();
  return s;
}

std::vector<std::string> table_names() {
  std::vector<std::string> t;
  for (const auto& s : specs())
    if (!s.table.empty() && std::find(t.begin(), t.end(), s.table) == t.end()) t.push_back(s.table);
  return t;
}

const key_spec* find_key(std::string_view table, std::string_view name) {
  for (const auto& s : specs())
    if (s.table == table && s.name == name) return &s;
  return nullptr;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::size_t tolerance(std::string_view s) {
  return s.size() <= 4 ? 1 : s.size() <= 8 ? 2 : 3;
}

// The known key closest to an unknown `table.name` (either part may be misspelt, or the
// key may sit in the wrong table); "" when nothing is close.
std::string suggest_key(std::string_view table, std::string_view name) {
  const std::string full =
      table.empty() ? std::string(name) : std::string(table) + "." + std::string(name);
  std::size_t best = SIZE_MAX;
  std::string out;
  for (const auto& s : specs()) {
    const std::size_t d = std::min(edit_distance(full, s.full),
                                   edit_distance(name, s.name) + (s.table == table ? 0 : 1));
    if (d < best) best = d, out = s.full;
  }
  return best <= tolerance(name) ? out : std::string();
}

std::string suggest_from(std::string_view word, const std::vector<std::string>& candidates) {
  std::size_t best = SIZE_MAX;
  std::string out;
  for (const auto& c : candidates)
    if (const std::size_t d = edit_distance(word, c); d < best) best = d, out = c;
  return best <= tolerance(word) ? out : std::string();
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string literal(const value_t& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return quoted(*s);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return std::get<bool>(v) ? "true" : "false";
}

const char* type_name(kind k) {
  switch (k) {
    case kind::string:
      return "string";
    case kind::integer:
      return "integer";
    case kind::boolean:
      return "boolean";
  }
  return "?";
}

// Whether `v` has the type of `s` and lies within its range or choices.
bool acceptable(const key_spec& s, const value_t& v) {
  switch (s.k) {
    case kind::integer: {
      const auto* i = std::get_if<std::int64_t>(&v);
      return i != nullptr && *i >= s.lo && *i <= s.hi;
    }
    case kind::boolean:
      return std::holds_alternative<bool>(v);
    case kind::string: {
      const auto* str = std::get_if<std::string>(&v);
      if (str == nullptr) return false;
      if (!s.choices.empty())
        return std::find(s.choices.begin(), s.choices.end(), *str) != s.choices.end();
      return !s.check || s.check(*str);
    }
  }
  return false;
}

[[noreturn]] void fail(const std::string& msg) {
  throw config_error("config: " + msg);
}

[[noreturn]] void fail_value(const key_spec& s, std::string_view subject, std::string got,
                             std::string_view where) {
  std::string msg(subject);
  msg += " must be " + s.requirement + ", got " + got;
  if (!where.empty()) msg += " at " + std::string(where);
  fail(msg);
}

std::string redacted_got(const key_spec& s, std::string_view raw, std::string normal) {
  if (!s.secret) return normal;
  return "a value of " + std::to_string(raw.size()) + " bytes";
}

std::string where(std::string_view origin, const toml::source_region& r) {
  std::string w(origin);
  if (r.begin.line > 0)
    w += ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
  return w;
}

std::string node_text(const toml::node& n) {
  if (n.is_table()) return "a table";
  if (n.is_array()) return "an array";
  if (const auto* s = n.as_string()) return quoted(s->get());
  std::ostringstream os;
  n.visit([&os](const auto& x) {
    if constexpr (!toml::is_table<decltype(x)> && !toml::is_array<decltype(x)>) os << x;
  });
  return os.str();
}

void apply_node(config& c, const key_spec& s, const toml::node& n, std::string_view origin) {
  std::optional<value_t> v;
  switch (s.k) {
    case kind::string:
      if (const auto* x = n.as_string()) v = x->get();
      break;
    case kind::integer:
      if (const auto* x = n.as_integer()) v = x->get();
      break;
    case kind::boolean:
      if (const auto* x = n.as_boolean()) v = x->get();
      break;
  }
  if (!v || !acceptable(s, *v)) {
    const auto* str = n.as_string();
    fail_value(s, s.full, redacted_got(s, str ? str->get() : "", node_text(n)),
               where(origin, n.source()));
  }
  s.set(c, *v);
}

void apply_toml(config& c, const toml::table& root, std::string_view origin) {
  const auto tables = table_names();
  for (const auto& [key, node] : root) {
    const std::string_view k = key.str();
    if (const key_spec* s = find_key("", k)) {
      apply_node(c, *s, node, origin);
      continue;
    }
    if (std::find(tables.begin(), tables.end(), k) == tables.end()) {
      std::string msg;
      std::string hint;
      if (node.is_table()) {
        msg = "unknown table [" + std::string(k) + "]";
        if (auto t = suggest_from(k, tables); !t.empty()) hint = "[" + t + "]";
      } else {
        msg = "unknown key " + quoted(k);
        hint = suggest_key("", k);
      }
      if (!hint.empty()) msg += " (did you mean " + hint + "?)";
      fail(msg + " at " + where(origin, key.source()));
    }
    const auto* table = node.as_table();
    if (table == nullptr)
      fail(std::string(k) + " must be a table ([" + std::string(k) + "]), got " + node_text(node) +
           " at " + where(origin, node.source()));
    for (const auto& [sub_key, sub_node] : *table) {
      const std::string_view name = sub_key.str();
      const key_spec* s = find_key(k, name);
      if (s == nullptr) {
        std::string msg = "unknown key " + quoted(std::string(k) + "." + std::string(name));
        if (auto hint = suggest_key(k, name); !hint.empty()) msg += " (did you mean " + hint + "?)";
        fail(msg + " at " + where(origin, sub_key.source()));
      }
      apply_node(c, *s, sub_node, origin);
    }
  }
}

std::optional<bool> parse_bool(std::string_view v) {
  std::string l;
  for (const char ch : v) l += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (l == "true" || l == "1" || l == "yes" || l == "on") return true;
  if (l == "false" || l == "0" || l == "no" || l == "off") return false;
  return std::nullopt;
}

std::optional<std::int64_t> parse_int(std::string_view v) {
  std::int64_t i = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), i);
  if (v.empty() || ec != std::errc{} || p != v.data() + v.size()) return std::nullopt;
  return i;
}

// The variable closest to an unknown CHAT4ALL_* `var`: misspelt, or missing its table
// (CHAT4ALL_LISTEN for CHAT4ALL_SERVER_LISTEN); "" when nothing is close.
std::string suggest_env(std::string_view var) {
  std::string rest;
  for (const char ch : var.substr(std::string_view("CHAT4ALL_").size()))
    rest += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::size_t best = SIZE_MAX;
  std::string out;
  for (const auto& s : specs()) {
    const std::size_t d = std::min(edit_distance(var, s.env), edit_distance(rest, s.name) + 1);
    if (d < best) best = d, out = s.env;
  }
  return best <= tolerance(rest) ? out : std::string();
}

void apply_env(config& c, const std::map<std::string, std::string>& env) {
  for (const auto& [var, raw] : env) {
    if (!var.starts_with("CHAT4ALL_") || is_ignored_env_var(var)) continue;
    const auto it = std::find_if(specs().begin(), specs().end(),
                                 [&](const key_spec& s) { return s.env == var; });
    if (it == specs().end()) {
      std::string msg = "unknown environment variable " + var;
      if (auto hint = suggest_env(var); !hint.empty()) msg += " (did you mean " + hint + "?)";
      fail(msg);
    }
    const key_spec& s = *it;
    std::optional<value_t> v;
    switch (s.k) {
      case kind::string:
        v = raw;
        break;
      case kind::integer:
        if (auto i = parse_int(raw)) v = *i;
        break;
      case kind::boolean:
        if (auto b = parse_bool(raw)) v = *b;
        break;
    }
    if (!v || !acceptable(s, *v))
      fail_value(s, var + " (" + s.full + ")", redacted_got(s, raw, quoted(raw)), "");
    s.set(c, *v);
  }
}

toml::table parse_toml(std::string_view text, std::string_view origin) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    fail("cannot parse " + where(origin, e.source()) + ": " + std::string(e.description()));
  }
}

}  // namespace

bool is_ignored_env_var(std::string_view name) noexcept {
  return name == "CHAT4ALL_BIN" || name == "CHAT4ALL_CONFIG" || name.starts_with("CHAT4ALL_TEST_");
}

config load_config_from_string(std::string_view toml_text,
                               const std::map<std::string, std::string>& env,
                               std::string_view origin) {
  config c;
  apply_toml(c, parse_toml(toml_text, origin), origin);
  apply_env(c, env);
  return c;
}

config load_config(const std::optional<std::string>& toml_path,
                   const std::map<std::string, std::string>& env) {
  if (!toml_path) {
    config c;
    apply_env(c, env);
    return c;
  }
  std::ifstream in(*toml_path, std::ios::binary);
  if (!in) fail("cannot read " + *toml_path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("cannot read " + *toml_path + ": " + std::strerror(errno));
  return load_config_from_string(text.str(), env, *toml_path);
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos || !kv.starts_with("CHAT4ALL_")) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

const std::vector<config_key_info>& config_keys() {
  static const std::vector<config_key_info> keys = [] {
    std::vector<config_key_info> out;
    const config defaults;
    for (const auto& s : specs())
      out.push_back(
          {s.full, s.env, type_name(s.k), literal(s.get(defaults)), s.requirement, s.doc});
    return out;
  }();
  return keys;
}

std::string describe_config_keys() {
  std::string out;
  for (const auto& k : config_keys()) {
    out += k.key + " (" + k.type + ", env " + k.env + ", default " + k.default_value +
           "): " + k.description + " Must be " + k.allowed + ".\n";
  }
  return out;
}

std::string format_config(const config& c, bool redact_secrets) {
  std::string out;
  std::string table;
  for (const auto& s : specs()) {
    if (s.table != table) {
      table = s.table;
      out += "\n[" + table + "]\n";
    }
    value_t v = s.get(c);
    if (redact_secrets && s.secret && !std::get<std::string>(v).empty()) v = "<redacted>";
    out += s.name + " = " + literal(v) + "\n";
  }
  return out;
}

}  // namespace chat4all
