#pragma once
// Configuration structs. Only app/ loads and validates them (TOML file, then CHAT4ALL_*
// environment overrides, then command-line flags); every other module receives the part it
// needs through its constructor. Defaults here are the embedded default.

#include <cstddef>
#include <cstdint>
#include <string>

namespace chat4all {

struct server_config {
  std::string listen = "127.0.0.1:8080";  // host:port
  int threads = 0;                        // I/O threads (0 = one per core)
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 256 * 1024;              // default per route
  std::size_t max_batch_body_bytes = 40 * 1024 * 1024;  // POST /v1/messages:batch
  int read_timeout_s = 30;                              // whole request must arrive within
  int idle_timeout_s = 75;                              // keep-alive idle connection
  int max_connections = 20000;
  int shutdown_grace_s = 10;  // SIGTERM: time to drain in-flight requests
};

struct storage_config {
  std::string backend = "sqlite";  // "sqlite" (embedded) | "postgres" (cluster)
  std::string data_dir = "./var/data";
  std::string sqlite_synchronous = "normal";  // "normal" | "full"
  int worker_threads = 4;                     // blocking store work runs here
  int busy_timeout_ms = 5000;
  std::string postgres_url;  // libpq conninfo, required with backend = postgres
  std::string postgres_schema = "public";
  int postgres_pool_size = 8;
};

struct log_config {
  std::string backend = "embedded";  // "embedded" | "kafka"
  std::size_t segment_bytes = 64 * 1024 * 1024;
  std::size_t max_batch_records = 8192;  // group commit: records per fsync at most
  bool fsync = true;                     // false only for benchmarks of the non-durable path
  std::string kafka_bootstrap;           // host:port[,host:port], required with backend = kafka
  std::string kafka_topic_prefix;        // prepended to every topic name
  int kafka_partitions = 100;            // of the messages topic (SPEC §6)
  int kafka_replication_factor = 3;
  int kafka_min_insync_replicas = 2;
  int kafka_linger_ms = 5;
  // Cluster mode (kafka + postgres): an append the log has not acknowledged after this long
  // is committed to the PostgreSQL outbox instead, and the relay publishes it later.
  bool outbox = true;
  int outbox_fallback_ms = 2000;
};

struct fanout_config {
  std::string backend = "inproc";  // "inproc" | "redis"
  std::string redis_url;           // redis://host:port, required with backend = redis
  std::string redis_channel_prefix = "chat4all:";
};

// The WebSocket gateway, GET /ws (SPEC §4).
struct ws_config {
  int heartbeat_s = 25;                                // ping interval; 2 silent intervals close it
  int max_connections_per_user = 10;                   // per instance; one more is closed with 4008
  std::size_t send_queue_max_events = 1024;            // per connection; overflow closes with 1013
  std::size_t send_queue_max_bytes = 4 * 1024 * 1024;  // per connection, same policy
  std::size_t max_frame_bytes = 256 * 1024;  // client frames; larger ones get an error event
};

struct auth_config {
  std::string jwt_secret;  // empty: generated once and kept in <data_dir>/jwt.secret
  std::string issuer = "chat4all";
  int access_ttl_s = 900;
  int refresh_ttl_s = 30 * 24 * 3600;
  bool allow_registration = true;
  std::uint64_t argon2_opslimit = 2;            // libsodium OPSLIMIT_INTERACTIVE
  std::size_t argon2_memlimit_kib = 64 * 1024;  // libsodium MEMLIMIT_INTERACTIVE
  std::size_t token_cache_entries = 100000;
  // Login throttling (SPEC §8): failed POST /auth/token attempts per minute, per username and
  // per client IP; past either, the next attempts get 429 until the minute is over. 0 = off.
  int login_failures_per_user = 10;
  int login_failures_per_ip = 100;
};

struct limits_config {
  int group_max_members = 100;
  std::size_t message_max_bytes = 64 * 1024;  // text content, UTF-8 bytes
  int batch_max_messages = 500;
  int page_max = 100;
};

struct router_config {
  int batch_size = 10000;  // log entries per store transaction at most
  int poll_wait_ms = 50;
  // While entries keep arriving, the router waits this long after a partial poll so that one
  // store transaction (and one log commit) takes more messages; an idle router stores the
  // first message at once. 0 = never wait. 10 ms: single POSTs at ~27 K/s cost 16 % less
  // server CPU than at 2 ms (bigger transactions), for +8 ms of notification latency in a
  // steady stream (docs/performance.md, session 5).
  int linger_ms = 10;
  // A failed store is retried max_retries times, the first after retry_initial_ms, each next
  // one after twice the previous wait (1 s, 2 s, 4 s); then the batch is stored message by
  // message and what still fails is dead-lettered and marked FAILED (SPEC §6).
  int retry_initial_ms = 1000;
  int max_retries = 3;
  // Tests only: comma-separated message ids the router's store calls treat as failing.
  std::string fail_store_message_ids;
};

// The relay (pipeline/outbox_relay): publishes the PostgreSQL outbox to Kafka.
struct relay_config {
  int batch_size = 5000;         // outbox entries per pass
  int poll_ms = 100;             // wait after a pass that found nothing
  int backoff_initial_ms = 500;  // after a failed pass; doubles up to backoff_max_ms
  int backoff_max_ms = 10000;
  int lease_ms = 15000;  // publisher lease: a stand-by relay takes over after this
  int max_attempts = 5;  // refusals of one entry by the log before it is dead-lettered
};

// Resumable uploads (SPEC §5).
struct uploads_config {
  std::uint64_t max_file_size = 2ull * 1024 * 1024 * 1024;  // 2 GiB; larger -> 413
  std::uint64_t default_chunk_size = 10ull * 1024 * 1024;
  std::uint64_t min_chunk_size = 5ull * 1024 * 1024;  // S3's smallest part (but the last)
  std::uint64_t max_chunk_size = 64ull * 1024 * 1024;
  int expiry_s = 24 * 3600;      // an upload not completed by then is removed (EXPIRED)
  int gc_interval_s = 300;       // how often the gc task looks for expired uploads
  int max_active_per_user = 10;  // uploads UPLOADING or MERGING at once per user
  std::uint64_t max_bytes_per_user = 20ull * 1024 * 1024 * 1024;  // their total size
  std::string magic_mismatch = "record";  // "record" | "reject": declared type vs magic bytes
  bool download_redirect = false;         // S3: answer downloads with 302 to a presigned URL
  int presign_ttl_s = 900;
};

// Where uploaded bytes live.
struct blobs_config {
  std::string backend = "fs";  // "fs" (under storage.data_dir) | "s3"
  std::string fs_dir;          // "" = <data_dir>/blobs
  std::string s3_endpoint;     // http(s)://host:port, required with backend = s3
  std::string s3_bucket = "chat4all";
  std::string s3_region = "us-east-1";
  std::string s3_access_key;
  std::string s3_secret_key;
  std::string s3_public_endpoint;  // host clients reach for presigned URLs ("" = s3_endpoint)
  std::string s3_key_prefix;       // prepended to every object key
  int s3_transfers = 32;           // concurrent S3 requests (worker threads of the s3 store)
};

struct logging_config {
  std::string level = "info";   // trace | debug | info | warn | error
  std::string format = "json";  // json | text
};

struct config {
  std::string role = "all";  // all | api | router | relay | merger | gc
  bool seed_demo_users = false;
  server_config server;
  storage_config storage;
  log_config log;
  fanout_config fanout;
  ws_config ws;
  auth_config auth;
  limits_config limits;
  router_config router;
  relay_config relay;
  uploads_config uploads;
  blobs_config blobs;
  logging_config logging;
};

}  // namespace chat4all
