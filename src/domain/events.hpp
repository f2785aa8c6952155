#pragma once
// Real-time events published through the fanout port (and pushed to WebSocket clients).
// Each is one JSON object with "type" and "ts" (SPEC §4).

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "domain/entities.hpp"

namespace chat4all {

// {"type": type, "ts": RFC 3339 of ts}: the start of every real-time event (also the
// WebSocket gateway's own frames).
boost::json::object event_base(const char* type, timestamp_us ts);

std::string conversation_channel(conversation_id id);  // events of one conversation
std::string user_channel(user_id id);                  // events addressed to one user

std::string event_message_created(const message& m, timestamp_us ts);
std::string event_message_status(const uuid& id, conversation_id conv, message_status s,
                                 timestamp_us ts);
std::string event_conversation_created(const conversation& c, timestamp_us ts);
// Events that start in the database travel through the outbox and this log topic (cluster
// mode) to the forwarder, which publishes each on its channel: records are
// {"channel": ..., "event": <the event JSON as a string>}, keyed by conversation id.
inline constexpr const char* conversation_events_topic = "conversation_events";
std::string encode_change_event(std::string_view channel, std::string_view payload);
// nullopt for a record that is not one.
std::optional<std::pair<std::string, std::string>> decode_change_event(std::string_view record);

std::string event_conversation_read(conversation_id conv, user_id user, seq_t last_read_seq,
                                    timestamp_us ts);

}  // namespace chat4all
