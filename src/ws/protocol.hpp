#pragma once
// The WebSocket protocol of SPEC §4, as pure functions (no I/O): reading client frames into
// actions, building the gateway's own events, and inspecting the events that arrive through
// the fanout port (once per instance, not once per connection).
//
// Client frames are JSON text objects with an "action" field:
//   send        {message_id, conversation_id, payload, channels?}  (the body of POST /v1/messages)
//   send_batch  {messages: [1..limits.batch_max_messages items]}    (the body of POST
//               /v1/messages:batch; bad items are rejected per item, not as an error)
//   read        {conversation_id, up_to_seq?}
//   typing      {conversation_id, typing?: bool (default true)}
//   subscribe   {conversation_id}        unsubscribe {conversation_id}
//   resume      {conversation_id, after_seq}
//   pong        {}
// Errors are values (`error`): invalid_json (not JSON / not an object / too deep),
// unknown_action, invalid_input with per-field details.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "api/message_input.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "domain/message_service.hpp"

namespace chat4all::ws {

enum class action_kind { send, send_batch, read, typing, subscribe, unsubscribe, resume, pong };

struct client_action {
  action_kind kind = action_kind::pong;
  conversation_id conversation = 0;  // every action but send_batch and pong (send: its message's)
  std::optional<seq_t> up_to_seq;    // read
  seq_t after_seq = 0;               // resume
  bool typing = true;                // typing: false = stopped typing
  send_request send;                 // send
  api::message_batch batch;          // send_batch
};

// The action of one client text frame. On failure for a `send`, `*message_id` (when given)
// receives the message_id text as sent, so the error event can carry it. `batch_max`: the
// most items a send_batch may hold (limits.batch_max_messages).
result<client_action> parse_action(std::string_view text, std::string* message_id = nullptr,
                                   std::size_t batch_max = 500);

enum class event_kind {
  message_created,
  message_status,
  conversation_created,
  conversation_read,
  typing,
  other
};

// What the gateway needs to know about an event, read once from its JSON.
struct event_info {
  event_kind kind = event_kind::other;
  conversation_id conversation = 0;  // 0 when the event has none
  seq_t seq = 0;                     // message.created only
  user_id actor = 0;                 // typing: who types
  timestamp_us accepted_at = 0;      // message.created: the message's acceptance time
};

// An event ready to be written to any number of sockets (immutable, shared).
struct event {
  std::string payload;  // the JSON text, sent as is
  event_info info;
};
using event_ptr = std::shared_ptr<const event>;

// Reads the routing fields of a fanout payload; nullopt when it is not a JSON object with a
// string "type".
std::optional<event_info> inspect_event(std::string_view payload);
event_ptr make_event(std::string payload, event_info info);

// "2026-11-28T01:37:44.123Z" (format_rfc3339's form) -> µs since the epoch; nullopt otherwise.
std::optional<timestamp_us> parse_rfc3339(std::string_view s);

// Gateway events (each with "type" and "ts").
std::string connected_event(user_id user, std::string_view connection_id, int heartbeat_s,
                            timestamp_us ts);
// {"type":"error","code","message","details"?,"message_id"?,"action"?}
std::string error_event(const error& e, timestamp_us ts, std::string_view message_id = {},
                        std::string_view action = {});
std::string accepted_event(const send_request& r, timestamp_us ts);
// {"type":"batch.accepted","ts","results":[...]}: the per-item results of a settled batch,
// exactly the items of the POST /v1/messages:batch answer.
std::string batch_accepted_event(const api::message_batch& b, timestamp_us ts);
std::string typing_event(conversation_id conv, user_id user, bool typing, timestamp_us ts);
// subscribed / unsubscribed acknowledgements.
std::string subscription_event(bool subscribed, conversation_id conv, timestamp_us ts);
// End of a resume replay: every message up to last_seq was sent.
std::string resumed_event(conversation_id conv, seq_t after_seq, seq_t last_seq,
                          std::int64_t replayed, timestamp_us ts);
std::string ping_event(timestamp_us ts);

const char* action_name(action_kind k) noexcept;

}  // namespace chat4all::ws
