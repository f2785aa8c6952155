#pragma once
// Storage ports. Adapters: sqlite_store (embedded default), pg_store (cluster).
//
// All operations are coroutines that never block the calling I/O thread (blocking adapters
// run on their own worker pool). Every method is safe to call concurrently from any thread.
// Expected failures come back as `error` values with these codes:
//   not_found   the id does not exist
//   conflict    a uniqueness rule was violated (username taken)
//   unavailable the database cannot be reached / is busy beyond its timeout (retryable)

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "domain/entities.hpp"

namespace chat4all {

template <class T>
using task = boost::asio::awaitable<T>;

class user_store {
 public:
  virtual ~user_store() = default;
  // conflict when the username exists.
  virtual task<result<user>> create_user(std::string username, std::string password_hash,
                                         timestamp_us now) = 0;
  virtual task<result<user>> find_user_by_name(std::string username) = 0;
  virtual task<result<user>> find_user(user_id id) = 0;
  // The subset of `ids` that exist, sorted ascending.
  virtual task<result<std::vector<user_id>>> existing_users(std::vector<user_id> ids) = 0;
};

class token_store {
 public:
  virtual ~token_store() = default;
  virtual task<result<void>> insert_refresh(refresh_token_record rec) = 0;
  // Atomically exchanges a refresh token for `replacement` (same family, set by the store).
  // - valid, unrotated, unexpired: marks it rotated, inserts the replacement, returns its user;
  // - already rotated (reuse): revokes the whole family, returns unauthenticated;
  // - unknown, expired or revoked: unauthenticated.
  virtual task<result<user_id>> rotate_refresh(std::string old_hash,
                                               refresh_token_record replacement,
                                               timestamp_us now) = 0;
  // Revokes the family of the token with this hash. not_found when unknown.
  virtual task<result<void>> revoke_refresh(std::string token_hash) = 0;
  // Records a revoked access token id until its expiry.
  virtual task<result<void>> revoke_access(std::string jti, timestamp_us expires_at) = 0;
  // Revoked access token ids that have not expired yet at `now`.
  virtual task<result<std::vector<std::string>>> revoked_access(timestamp_us now) = 0;
};

// Real-time events that a change produces, as (fan-out channel, payload) pairs. A store with
// a transactional outbox (pg_store) commits them with the change; see conversation_service.
using change_events = std::vector<std::pair<std::string, std::string>>;
template <class Outcome>
using events_of = std::function<change_events(const Outcome&)>;

class conversation_store {
 public:
  virtual ~conversation_store() = default;
  struct create_outcome {
    conversation conv;
    bool created = true;  // false: an existing private conversation was returned
  };
  // `members` are sorted, unique and known to exist. For private conversations the pair is
  // unique: creating it again returns the existing one with created = false.
  // `events` (only for a store that has an outbox, else ignored): called inside the
  // transaction when a conversation was created; its events are committed with it.
  virtual task<result<create_outcome>> create_conversation(
      conversation_type type, std::string name, std::string description,
      std::vector<user_id> members, timestamp_us now, events_of<create_outcome> events = {}) = 0;
  // The conversation with its member ids. not_found when unknown.
  virtual task<result<conversation>> find_conversation(conversation_id id) = 0;
  // One query: the user's conversations by last activity (newest first), with unread counts
  // and last message; total is the number of conversations of the user.
  virtual task<result<page<conversation_summary>>> list_conversations(user_id user, int limit,
                                                                      int offset) = 0;
  // Moves the member's read mark forward to min(up_to or latest, latest seq); never back.
  // Messages of others that became READ are listed in the result.
  // `events`: as for create_conversation, called when the mark moved.
  virtual task<result<read_mark_result>> mark_read(conversation_id conv, user_id member,
                                                   std::optional<seq_t> up_to, timestamp_us now,
                                                   events_of<read_mark_result> events = {}) = 0;
};

class message_store {
 public:
  virtual ~message_store() = default;
  // Stores a batch in one transaction, in the given order: each message gets the next seq of
  // its conversation; a message whose message_id is already stored is skipped (idempotent).
  // Writes the status history (ACCEPTED at accepted_at, DELIVERED at now). Returns the
  // messages actually stored, with their seq.
  virtual task<result<std::vector<message>>> store_messages(std::vector<accepted_message> batch,
                                                            timestamp_us now) = 0;
  // Records a message the router could not store (SPEC §6: after the last retry): stores it
  // like store_messages (next seq of its conversation) but with status FAILED and the status
  // history ACCEPTED (accepted_at), FAILED (now, detail = reason). Idempotent: a message_id
  // already stored (with any status) is left as it is. not_found when the conversation does
  // not exist.
  virtual task<result<void>> store_failed(accepted_message m, std::string reason,
                                          timestamp_us now) = 0;
  // For each id (same order): the content hash of the stored message, or nullopt.
  virtual task<result<std::vector<std::optional<std::uint64_t>>>> find_content_hashes(
      std::vector<uuid> ids) = 0;
  virtual task<result<message_with_history>> get_message(uuid id) = 0;
  virtual task<result<history_page>> history(history_query q) = 0;
};

// Uploads and the files they produce (SPEC §5). The blob store holds the bytes; this holds
// the state every api/merger/gc instance shares.
class upload_store {
 public:
  virtual ~upload_store() = default;
  struct owner_limits {
    int max_active = 0;           // uploads UPLOADING or MERGING at once (0 = no limit)
    std::uint64_t max_bytes = 0;  // sum of their file_size (0 = no limit)
  };
  // Inserts a new upload (status UPLOADING, no chunks). Checked atomically with the insert:
  // rate_limited when the owner already has `max_active` active uploads, too_large when their
  // sizes plus this one would pass `max_bytes`; conflict when the id exists.
  virtual task<result<void>> create_upload(upload_record rec, owner_limits limits) = 0;
  // The upload with its recorded chunks (sorted by number). not_found when unknown.
  virtual task<result<upload_record>> find_upload(uuid id) = 0;
  // Records a stored chunk unless that number is already recorded; returns the chunk as
  // recorded (the existing one when it was there: the caller compares hashes). not_found when
  // the upload is unknown; conflict when it is no longer UPLOADING.
  virtual task<result<upload_chunk>> record_chunk(uuid id, upload_chunk chunk,
                                                  timestamp_us now) = 0;
  // Moves the status from `from` to `to` (compare-and-set), with `reason`; for COMPLETED also
  // stores file_sha256 and detected_mime. Moving to EXPIRED deletes the chunk rows. Returns
  // false (and changes nothing) when the current status is not `from`; not_found when unknown.
  virtual task<result<bool>> transition_upload(uuid id, upload_status from, upload_status to,
                                               std::string reason, std::string file_sha256,
                                               std::string detected_mime, timestamp_us now) = 0;
  // Up to `limit` uploads still UPLOADING or MERGING whose expires_at <= now (no chunks).
  virtual task<result<std::vector<upload_record>>> expired_uploads(timestamp_us now, int limit) = 0;
};

// A store implements all five; the composition root hands out the facets.
class store : public user_store,
              public token_store,
              public conversation_store,
              public message_store,
              public upload_store {
 public:
  // Applies pending schema migrations (versioned, idempotent).
  virtual task<result<int>> migrate() = 0;
  // Cheap liveness check for /readyz.
  virtual task<result<void>> ping() = 0;
};

}  // namespace chat4all
