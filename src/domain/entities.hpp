#pragma once
// Domain entities. Plain data, no behaviour that needs I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/ids.hpp"

namespace chat4all {

struct user {
  user_id id = 0;
  std::string username;
  std::string password_hash;  // argon2id encoded string (libsodium crypto_pwhash_str)
  timestamp_us created_at = 0;
};

enum class conversation_type { private_chat, group };
const char* to_string(conversation_type t) noexcept;
std::optional<conversation_type> parse_conversation_type(std::string_view s) noexcept;

struct conversation {
  conversation_id id = 0;
  conversation_type type = conversation_type::private_chat;
  std::string name;
  std::string description;
  timestamp_us created_at = 0;
  std::vector<user_id> member_ids;  // sorted ascending
};

// Status moves only forward: accepted -> delivered -> read; failed is terminal.
enum class message_status { accepted = 0, delivered = 1, read = 2, failed = 3 };
const char* to_string(message_status s) noexcept;  // "ACCEPTED", ...

// A message as accepted by the API and written to the event log (no seq yet).
struct accepted_message {
  uuid message_id;
  conversation_id conversation = 0;
  user_id sender = 0;
  std::string payload_json;  // canonical JSON of the payload object
  std::vector<std::string> channels;
  timestamp_us accepted_at = 0;
  std::uint64_t content_hash = 0;  // idempotency: same id + same hash = same message
  std::string traceparent;         // W3C trace context, may be empty
};

// A stored message.
struct message {
  uuid message_id;
  conversation_id conversation = 0;
  user_id sender = 0;
  std::string sender_username;  // filled by reads that join users
  seq_t seq = 0;
  std::string payload_json;
  std::vector<std::string> channels;
  message_status status = message_status::accepted;
  timestamp_us created_at = 0;  // acceptance time
  std::uint64_t content_hash = 0;
};

struct status_event {
  message_status status = message_status::accepted;
  std::string channel;  // empty for internal delivery
  std::string detail;
  timestamp_us at = 0;
};

struct message_with_history {
  message msg;
  std::vector<status_event> history;  // oldest first
  std::int64_t read_by = 0;           // members other than the sender whose read mark >= seq
};

struct last_message_summary {
  uuid message_id;
  seq_t seq = 0;
  user_id sender = 0;
  std::string preview;  // first characters of text content, or "[file]"
  timestamp_us created_at = 0;
};

struct conversation_summary {
  conversation_id id = 0;
  conversation_type type = conversation_type::private_chat;
  std::string name;
  std::optional<last_message_summary> last_message;
  std::int64_t unread_count = 0;
  std::int64_t member_count = 0;
  timestamp_us created_at = 0;
};

template <class T>
struct page {
  std::vector<T> items;
  std::int64_t total = 0;
};

struct history_query {
  conversation_id conversation = 0;
  int limit = 50;
  std::optional<seq_t> before_seq;  // newest first, seq < before_seq
  std::optional<seq_t> after_seq;   // oldest first, seq > after_seq
  int offset = 0;                   // skip this many from the start of the chosen order
};

struct history_page {
  std::vector<message> messages;  // in the order of the query
  bool has_more = false;
};

struct read_mark_result {
  conversation_id conversation = 0;
  seq_t last_read_seq = 0;
  std::int64_t messages_marked_read = 0;
  std::vector<uuid> now_read;  // messages whose status became READ by this mark
};

struct refresh_token_record {
  std::string token_hash;  // SHA-256 of the opaque token (hex); the token itself is never stored
  user_id user = 0;
  std::string family;  // all tokens rotated from one login share a family
  timestamp_us expires_at = 0;
};

// Who is calling: the verified access token's claims.
struct principal {
  user_id id = 0;
  std::string scope;
  std::string jti;
  timestamp_us expires_at = 0;
};

}  // namespace chat4all

namespace chat4all {

// SPEC §5: UPLOADING -> MERGING -> COMPLETED | FAILED (reason); EXPIRED when abandoned.
enum class upload_status { uploading, merging, completed, failed, expired };
const char* to_string(upload_status s) noexcept;  // "UPLOADING", ...
std::optional<upload_status> parse_upload_status(std::string_view s) noexcept;

// One stored chunk (1-based number), as recorded once its bytes are durable in the blob store.
struct upload_chunk {
  int number = 0;
  std::uint64_t size = 0;
  std::string sha256_hex;  // of the chunk's bytes
  std::string etag;        // blob store part tag (S3 ETag; fs: the sha256)
};

// An upload and, once COMPLETED, the file it produced (file_id == upload_id).
struct upload_record {
  uuid id;
  user_id owner = 0;
  conversation_id conversation = 0;
  std::string filename;
  std::string mime_type;
  std::uint64_t file_size = 0;
  std::uint64_t chunk_size = 0;
  int total_chunks = 0;
  std::string checksum_sha256;  // hex, as given by the client ("" = none)
  upload_status status = upload_status::uploading;
  std::string reason;         // why FAILED / EXPIRED
  std::string blob_key;       // object key in the blob store
  std::string blob_upload;    // the blob store's multipart handle (S3 UploadId)
  std::string protocol;       // "chunked" | "tus"
  std::string file_sha256;    // hex, computed at merge
  std::string detected_mime;  // from the magic bytes, at merge
  timestamp_us created_at = 0;
  timestamp_us expires_at = 0;
  timestamp_us updated_at = 0;
  std::vector<upload_chunk> chunks;  // sorted by number (filled by find_upload)

  std::uint64_t chunk_bytes(int n) const noexcept {
    if (n < total_chunks) return chunk_size;
    return file_size - chunk_size * static_cast<std::uint64_t>(total_chunks - 1);
  }
};

}  // namespace chat4all
