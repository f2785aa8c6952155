#pragma once
// Internal to the SQLite adapter: the blocking operations behind sqlite_store, one free
// function per store method. Each runs on the connection it is given (the writer for writes,
// a leased reader for reads), opens its own transaction, and returns expected failures as
// values; SQLite failures are thrown as sqlite::failure and converted by sqlite_store.

#include <optional>
#include <string>
#include <vector>

#include "adapters/store/sqlite/db.hpp"
#include "domain/message_codec.hpp"  // encode_channels, decode_channels
#include "domain/ports/store.hpp"

namespace chat4all::sqlite {

// ---- schema (migrations.cpp) ----
// Applies every pending migration, each in its own transaction; returns the schema version.
int apply_migrations(connection& c);
int latest_schema_version() noexcept;

// ---- users and tokens (users.cpp) ----
result<user> create_user(connection& c, const std::string& username,
                         const std::string& password_hash, timestamp_us now);
result<user> find_user_by_name(connection& c, const std::string& username);
result<user> find_user(connection& c, user_id id);
std::vector<user_id> existing_users(connection& c, std::vector<user_id> ids);

result<void> insert_refresh(connection& c, const refresh_token_record& rec);
result<user_id> rotate_refresh(connection& c, const std::string& old_hash,
                               refresh_token_record replacement, timestamp_us now);
result<void> revoke_refresh(connection& c, const std::string& token_hash);
result<void> revoke_access(connection& c, const std::string& jti, timestamp_us expires_at);
std::vector<std::string> revoked_access(connection& c, timestamp_us now);

// ---- conversations (conversations.cpp) ----
result<conversation_store::create_outcome> create_conversation(
    connection& c, conversation_type type, const std::string& name, const std::string& description,
    std::vector<user_id> members, timestamp_us now);
result<conversation> find_conversation(connection& c, conversation_id id);
page<conversation_summary> list_conversations(connection& c, user_id user, int limit, int offset);
result<read_mark_result> mark_read(connection& c, conversation_id conv, user_id member,
                                   std::optional<seq_t> up_to, timestamp_us now);

// ---- messages (messages.cpp) ----
// Takes the payloads and channel lists of `batch` (moved into the stored messages).
std::vector<message> store_messages(connection& c, std::vector<accepted_message>& batch,
                                    timestamp_us now);
result<void> store_failed(connection& c, const accepted_message& m, const std::string& reason,
                          timestamp_us now);
std::vector<std::optional<std::uint64_t>> find_content_hashes(connection& c,
                                                              const std::vector<uuid>& ids);
result<message_with_history> get_message(connection& c, const uuid& id);
history_page history(connection& c, const history_query& q);

// ---- uploads (uploads.cpp) ----
result<void> create_upload(connection& c, const upload_record& rec,
                           upload_store::owner_limits limits);
result<upload_record> find_upload(connection& c, const uuid& id);
result<upload_chunk> record_chunk(connection& c, const uuid& id, const upload_chunk& chunk,
                                  timestamp_us now);
result<bool> transition_upload(connection& c, const uuid& id, upload_status from, upload_status to,
                               const std::string& reason, const std::string& file_sha256,
                               const std::string& detected_mime, timestamp_us now);
std::vector<upload_record> expired_uploads(connection& c, timestamp_us now, int limit);

}  // namespace chat4all::sqlite
