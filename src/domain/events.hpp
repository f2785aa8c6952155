#pragma once
// Real-time events published through the fanout port (and pushed to WebSocket clients).
// Each is one JSON object with "type" and "ts" (SPEC §4).

#include <string>

#include "domain/entities.hpp"

namespace chat4all {

std::string conversation_channel(conversation_id id);  // events of one conversation
std::string user_channel(user_id id);                  // events addressed to one user

std::string event_message_created(const message& m, timestamp_us ts);
std::string event_message_status(const uuid& id, conversation_id conv, message_status s,
                                 timestamp_us ts);
std::string event_conversation_created(const conversation& c, timestamp_us ts);
std::string event_conversation_read(conversation_id conv, user_id user, seq_t last_read_seq,
                                    timestamp_us ts);

}  // namespace chat4all
