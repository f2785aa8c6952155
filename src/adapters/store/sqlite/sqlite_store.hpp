#pragma once
// sqlite_store: the embedded default implementation of chat4all::store on SQLite 3 (WAL).
//
// Threading: the store owns a thread pool of cfg.worker_threads threads for reads and one
// writer thread; every operation runs there (never on the caller's I/O thread) and resumes the
// awaiting coroutine on its own executor. Writes go through ONE writer connection (on the
// writer thread, under a mutex), so queued writes never occupy the read workers; reads use a
// pool of query-only connections, at most one per worker thread, and each read is one SQLite
// read transaction (a consistent snapshot). All methods are safe to call concurrently from
// any thread.
//
// Durability: WAL with `synchronous` from cfg.sqlite_synchronous: "normal" survives a killed
// process but may lose the last commits on power loss; "full" syncs every commit.
//
// Errors (values, never exceptions): not_found, conflict, forbidden, invalid_input as
// documented in domain/ports/store.hpp; SQLITE_BUSY (beyond cfg.busy_timeout_ms), I/O and
// disk-full errors -> unavailable (retryable); SQL errors (bugs) -> internal.
//
// Lifetime: destroy the store only after every operation on it has completed; the destructor
// waits for jobs already running on the pool and closes the connections.
//
// Semantics beyond the port's comments:
// - store_messages skips a message whose conversation does not exist (it is not returned),
//   so one bad record never blocks the batch.
// - history of an unknown conversation is an empty page.
// - find_content_hashes answers "not stored" for most fresh ids from an in-memory filter of
//   the stored message_ids (no query), when constructed as the only writer of messages
//   (sole_message_writer; the filter is loaded by migrate()). Give false when another
//   process may store messages into the same database file.
// - list_conversations: total comes from COUNT(*) OVER () in the same statement (a second
//   cheap count runs only when the requested page is empty).

#include <memory>
#include <string>

#include "core/config.hpp"
#include "domain/ports/store.hpp"

namespace chat4all {

class sqlite_store final : public store {
 public:
  // Opens (creating if needed, with its parent directory) the database at `db_path` and
  // configures the writer connection. Does not migrate: call migrate() before use.
  // Throws std::runtime_error when the file cannot be opened (a startup error).
  // id_filter_min_ids: the smallest message_id filter (0: 1 Mi ids); tests make it small to
  // see it grow.
  sqlite_store(std::string db_path, storage_config cfg, bool sole_message_writer = true,
               std::size_t id_filter_min_ids = 0);
  ~sqlite_store() override;
  sqlite_store(const sqlite_store&) = delete;
  sqlite_store& operator=(const sqlite_store&) = delete;

  // Ids the message_id filter holds without losing precision (0: no filter). Diagnostics.
  std::size_t id_filter_capacity() const;

  // store
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

}  // namespace chat4all
