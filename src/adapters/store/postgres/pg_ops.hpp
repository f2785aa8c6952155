#pragma once
// Internal to the PostgreSQL adapter: the blocking operations behind pg_store, one free
// function per store method. Each runs on the leased connection it is given, opens its own
// transaction when it needs more than one statement, and returns expected failures as
// values; libpq failures are thrown as pg::failure and converted by pg_store.

#include <optional>
#include <string>
#include <vector>

#include "adapters/store/postgres/pg_conn.hpp"
#include "domain/message_codec.hpp"  // encode_channels, decode_channels
#include "domain/ports/outbox.hpp"
#include "domain/ports/store.hpp"

namespace chat4all::pg {

// ---- schema (pg_migrations.cpp) ----
// Creates `schema` if needed and applies every pending migration in one transaction under an
// advisory lock (concurrent migrators wait, then find nothing to do). Returns the version.
int apply_migrations(connection& c, const std::string& schema);

// ---- users and tokens (pg_users.cpp) ----
result<user> create_user(connection& c, const std::string& username,
                         const std::string& password_hash, timestamp_us now);
result<user> find_user_by_name(connection& c, const std::string& username);
result<user> find_user(connection& c, user_id id);
std::vector<user_id> existing_users(connection& c, const std::vector<user_id>& ids);

result<void> insert_refresh(connection& c, const refresh_token_record& rec);
result<user_id> rotate_refresh(connection& c, const std::string& old_hash,
                               refresh_token_record replacement, timestamp_us now);
result<void> revoke_refresh(connection& c, const std::string& token_hash);
result<void> revoke_access(connection& c, const std::string& jti, timestamp_us expires_at);
std::vector<std::string> revoked_access(connection& c, timestamp_us now);

// ---- conversations (pg_conversations.cpp) ----
result<conversation_store::create_outcome> create_conversation(
    connection& c, conversation_type type, const std::string& name, const std::string& description,
    std::vector<user_id> members, timestamp_us now,
    const events_of<conversation_store::create_outcome>& events);
result<conversation> find_conversation(connection& c, conversation_id id);
page<conversation_summary> list_conversations(connection& c, user_id user, int limit, int offset);
result<read_mark_result> mark_read(connection& c, conversation_id conv, user_id member,
                                   std::optional<seq_t> up_to, timestamp_us now,
                                   const events_of<read_mark_result>& events);
// Commits `events` to the outbox (topic conversation_events) in the caller's transaction.
void outbox_change_events(connection& c, conversation_id conv, const change_events& events,
                          timestamp_us now);

// ---- messages (pg_messages.cpp) ----
std::vector<message> store_messages(connection& c, const std::vector<accepted_message>& batch,
                                    timestamp_us now);
result<void> store_failed(connection& c, const accepted_message& m, const std::string& reason,
                          timestamp_us now);
std::vector<std::optional<std::uint64_t>> find_content_hashes(connection& c,
                                                              const std::vector<uuid>& ids);
result<message_with_history> get_message(connection& c, const uuid& id);
history_page history(connection& c, const history_query& q);
// ---- the transactional outbox (pg_outbox.cpp) ----
void outbox_enqueue(connection& c, const std::string& topic, const std::vector<log_record>& records,
                    timestamp_us now);
std::int64_t outbox_backlog(connection& c);
bool outbox_acquire_lease(connection& c, const std::string& holder, std::int64_t ttl_ms);
void outbox_release_lease(connection& c, const std::string& holder);
std::vector<outbox_entry> outbox_oldest(connection& c, std::size_t max);
void outbox_remove(connection& c, const std::vector<std::int64_t>& ids);
result<int> outbox_note_failure(connection& c, std::int64_t id, const std::string& reason);

// The conversation-list preview of a payload: the first 100 characters (code points) of a
// text message's content, "[file]" otherwise (also for a payload that is not valid JSON).
std::string preview_of(std::string_view payload_json);

// ---- uploads (pg_uploads.cpp) ----
result<void> create_upload(connection& c, const upload_record& rec,
                           upload_store::owner_limits limits);
result<upload_record> find_upload(connection& c, const uuid& id);
result<upload_chunk> record_chunk(connection& c, const uuid& id, const upload_chunk& chunk,
                                  timestamp_us now);
result<bool> transition_upload(connection& c, const uuid& id, upload_status from, upload_status to,
                               const std::string& reason, const std::string& file_sha256,
                               const std::string& detected_mime, timestamp_us now);
std::vector<upload_record> expired_uploads(connection& c, timestamp_us now, int limit);

}  // namespace chat4all::pg
