#pragma once
// Use cases of the message path: accept (send), accept many (batch), read one.
// "Accepted" means durable in the event log; the router stores and delivers afterwards.
// Thread-safe; all methods are coroutines that never block.

#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "domain/inflight_messages.hpp"
#include "domain/membership_cache.hpp"
#include "domain/ports/event_log.hpp"
#include "domain/ports/store.hpp"

namespace chat4all {

struct message_payload {
  enum class kind { text, file } type = kind::text;
  std::string content;  // text
  uuid file_id;         // file
};

struct send_request {
  uuid message_id;
  conversation_id conversation = 0;
  message_payload payload;
  std::vector<std::string> channels;  // as given; validated and canonicalised by the service
  std::string traceparent;
};

inline constexpr const char* messages_topic = "messages";

class message_service {
 public:
  message_service(membership_cache& members, message_store& messages, event_log& log,
                  inflight_messages& inflight, const clock& clk, limits_config limits,
                  upload_store* uploads = nullptr);

  // errors: invalid_input (payload/channels), not_found (conversation), forbidden (not a
  // member), conflict (same id, different content), unavailable (log down / too many in
  // flight; retry).
  task<result<void>> send(const principal& who, send_request req);
  // One result per item, same order. Items are independent: one bad item does not fail
  // the others. The durable ones share one log append.
  task<std::vector<result<void>>> send_batch(const principal& who, std::vector<send_request> reqs);
  // The message with its status history; 404 unknown, 403 not a member.
  task<result<message_with_history>> get(const principal& who, uuid id);

 private:
  result<accepted_message> prepare(const principal& who, send_request& req) const;

  membership_cache& members_;
  message_store& messages_;
  event_log& log_;
  inflight_messages& inflight_;
  const clock& clock_;
  limits_config limits_;
  upload_store* uploads_;  // file messages are refused without it
};

// Validates and canonicalises channel names ("all" expands to every channel; sorted, unique).
result<std::vector<std::string>> canonical_channels(const std::vector<std::string>& in);
std::string canonical_payload_json(const message_payload& p);

}  // namespace chat4all
