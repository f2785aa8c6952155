#pragma once
// Encoding of accepted messages as event-log records and of real-time events.
// The log format is versioned JSON so that old records stay readable after upgrades.

#include <boost/json/object.hpp>

#include <string>
#include <string_view>

#include "core/error.hpp"
#include "domain/entities.hpp"

namespace chat4all {

std::string encode_log_record(const accepted_message& m);
// errc::invalid_input for a record that cannot be decoded (a poison record).
result<accepted_message> decode_log_record(std::string_view bytes);

// The public JSON object of a stored message (API responses and message.created events).
boost::json::object message_object(const message& m);
std::string message_json(const message& m);
// The channels column of both stores: a JSON array of strings ("[]" when empty).
std::string encode_channels(const std::vector<std::string>& channels);
// Lenient: anything that is not an array of strings reads as no channels.
std::vector<std::string> decode_channels(std::string_view json);

// Content hash used for idempotency: covers conversation, sender, payload and channels (a
// message_id reused by another sender is a conflict, not a retry).
std::uint64_t content_hash(conversation_id conv, user_id sender, std::string_view payload_json,
                           const std::vector<std::string>& channels);

}  // namespace chat4all
