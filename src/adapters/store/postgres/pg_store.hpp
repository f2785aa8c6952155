#pragma once
// pg_store: the cluster implementation of chat4all::store on PostgreSQL (libpq, blocking).
//
// Threading: the store owns an asio::thread_pool of opts.pool_size threads and a pool of at
// most opts.pool_size connections (one per worker thread, opened on first use). Every
// operation runs there, never on the caller's I/O thread, and resumes the awaiting coroutine
// on its own executor. Operations beyond pool_size wait in the pool's queue. All methods are
// safe to call concurrently from any thread, from any number of processes.
//
// Connections: `conninfo` is a libpq connection string or URI
// (postgresql://chat4all:pw@127.0.0.1:25432/chat4all); every pooled connection sets
// search_path to opts.schema, keeps its own prepared statements, and uses TCP keepalives.
// A connection that broke (server restart, admin shutdown, network) is dropped; the next
// operation opens a new one. An idle connection found closed is replaced before use, so a
// server restart costs no failed operation; an operation that was running when the
// connection broke fails with `unavailable` (retryable): writes are single transactions, so
// nothing half-done remains, and store_messages is idempotent.
//
// Errors (values, never exceptions): not_found, conflict, forbidden, invalid_input as in
// domain/ports/store.hpp; cannot connect, connection lost, admin shutdown, too many
// connections, serialization failure, deadlock -> unavailable (retryable); cancelled
// statements -> timeout; SQL errors (bugs) -> internal.
//
// Lifetime: destroy the store only after every operation on it has completed; the destructor
// waits for jobs already running and closes the connections.
//
// Semantics beyond the port's comments (the same as sqlite_store):
// - store_messages skips a message whose conversation does not exist (not returned).
// - history of an unknown conversation is an empty page.

#include <memory>
#include <string>

#include "domain/ports/outbox.hpp"
#include "domain/ports/store.hpp"

namespace chat4all {

struct pg_store_options {
  // Worker threads = maximum open connections.
  int pool_size = 4;
  // Every table lives in this schema (created by migrate()); tests use a fresh one each.
  std::string schema = "public";
};

class pg_store final : public store, public outbox {
 public:
  // Does not connect: the first operation opens a connection. Call migrate() before use.
  pg_store(std::string conninfo, pg_store_options opts);
  ~pg_store() override;
  pg_store(const pg_store&) = delete;
  pg_store& operator=(const pg_store&) = delete;

  // store. migrate() creates the schema if needed and applies pending migrations in one
  // transaction under an advisory lock, so concurrent processes migrate once.
  task<result<int>> migrate() override;
  task<result<void>> ping() override;

  // user_store
  task<result<user>> create_user(std::string username, std::string password_hash,
                                 timestamp_us now) override;
  task<result<user>> find_user_by_name(std::string username) override;
  task<result<user>> find_user(user_id id) override;
  task<result<std::vector<user_id>>> existing_users(std::vector<user_id> ids) override;

  // token_store
  task<result<void>> insert_refresh(refresh_token_record rec) override;
  task<result<user_id>> rotate_refresh(std::string old_hash, refresh_token_record replacement,
                                       timestamp_us now) override;
  task<result<void>> revoke_refresh(std::string token_hash) override;
  task<result<void>> revoke_access(std::string jti, timestamp_us expires_at) override;
  task<result<std::vector<std::string>>> revoked_access(timestamp_us now) override;

  // conversation_store
  task<result<create_outcome>> create_conversation(conversation_type type, std::string name,
                                                   std::string description,
                                                   std::vector<user_id> members, timestamp_us now,
                                                   events_of<create_outcome> events) override;
  task<result<conversation>> find_conversation(conversation_id id) override;
  task<result<page<conversation_summary>>> list_conversations(user_id user, int limit,
                                                              int offset) override;
  task<result<read_mark_result>> mark_read(conversation_id conv, user_id member,
                                           std::optional<seq_t> up_to, timestamp_us now,
                                           events_of<read_mark_result> events) override;

  // message_store
  task<result<std::vector<message>>> store_messages(std::vector<accepted_message> batch,
                                                    timestamp_us now) override;
  task<result<void>> store_failed(accepted_message m, std::string reason,
                                  timestamp_us now) override;
  task<result<std::vector<std::optional<std::uint64_t>>>> find_content_hashes(
      std::vector<uuid> ids) override;
  task<result<message_with_history>> get_message(uuid id) override;
  task<result<history_page>> history(history_query q) override;

  // outbox (domain/ports/outbox.hpp)
  task<result<void>> enqueue(std::string topic, std::vector<log_record> records,
                             timestamp_us now) override;
  task<result<std::int64_t>> backlog() override;
  task<result<bool>> acquire_lease(std::string holder, std::chrono::milliseconds ttl) override;
  task<result<void>> release_lease(std::string holder) override;
  task<result<std::vector<outbox_entry>>> oldest(std::size_t max) override;
  task<result<void>> remove(std::vector<std::int64_t> ids) override;
  task<result<int>> note_failure(std::int64_t id, std::string reason) override;

  // upload_store
  task<result<void>> create_upload(upload_record rec, owner_limits limits) override;
  task<result<upload_record>> find_upload(uuid id) override;
  task<result<upload_chunk>> record_chunk(uuid id, upload_chunk chunk, timestamp_us now) override;
  task<result<bool>> transition_upload(uuid id, upload_status from, upload_status to,
                                       std::string reason, std::string file_sha256,
                                       std::string detected_mime, timestamp_us now) override;
  task<result<std::vector<upload_record>>> expired_uploads(timestamp_us now, int limit) override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Drops `schema` and everything in it (blocking; for tests and tooling). ok when it did not
// exist; unavailable when the server cannot be reached.
result<void> pg_drop_schema(const std::string& conninfo, const std::string& schema);

}  // namespace chat4all
