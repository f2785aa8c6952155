#pragma once
// Reading a message to send (SPEC §3 POST /v1/messages): shared by the REST handlers and the
// WebSocket `send` action so both accept exactly the same body.

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "domain/message_service.hpp"

namespace chat4all::api {

// Reads one message object {message_id, conversation_id, payload, channels?}. On failure
// appends the field errors (names prefixed with `prefix`, e.g. "messages[3].") to `errs` and
// returns nullopt. `id_text`, when given, receives the message_id text as sent (even when it
// is not a UUID), so that a rejection can name it.
std::optional<send_request> read_send_request(const boost::json::object& o,
                                              const std::string& prefix,
                                              std::vector<field_error>& errs, std::string* id_text);

}  // namespace chat4all::api
