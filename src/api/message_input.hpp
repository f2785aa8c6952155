#pragma once
// Reading a message to send (SPEC §3 POST /v1/messages) and a batch of them (POST
// /v1/messages:batch): shared by the REST handlers and the WebSocket `send` / `send_batch`
// actions so both accept exactly the same bodies and answer with the same per-item results.

#include <boost/json/object.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
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

// Appends the result item of an accepted message: {"status":"accepted","message_id",
// "conversation_id"} (the 202 body of POST /v1/messages).
void append_accepted_item(std::string& out, const uuid& id, conversation_id conv);

// A batch of messages to send: its valid items ready for message_service::send_batch, and
// the per-item results of the answer (in item order). Use: read_message_batch, send_batch
// with `valid` (moved out), settle() with its outcomes, then append_results().
struct message_batch {
  std::vector<send_request> valid;                     // the items that read well, in item order
  std::vector<std::size_t> valid_index;                // item index of valid[k]
  std::vector<std::pair<uuid, conversation_id>> keys;  // of valid[k] (send_batch takes `valid`)
  std::vector<std::string> rejected;  // per item: its rejection result (JSON) or empty
  std::size_t accepted = 0;           // after settle(): items durable in the log
  std::size_t unavailable = 0;        // after settle(): items refused for an unavailable log

  std::size_t size() const noexcept { return rejected.size(); }
  // Records send_batch's outcomes (one per valid item, same order).
  void settle(const std::vector<result<void>>& outcomes);
  // Every item failed because the log is unavailable: the whole batch is answered with
  // unavailable_error() (503) instead of per-item results.
  bool all_unavailable() const noexcept { return unavailable == size(); }
  static error unavailable_error();
  // Appends the JSON array of per-item results: accepted items as append_accepted_item,
  // rejected ones {"message_id" (null when none was readable),"status":"rejected",
  // "error":{"code","message"}}.
  void append_results(std::string& out) const;
};

// Reads {"messages":[ 1..max_messages message objects ]}. A malformed batch ("messages"
// missing, not an array, empty or too long) is an invalid_input error; a bad item (not an
// object, bad fields) is a rejected item of the batch, not an error. `traceparent` is copied
// into every valid item.
result<message_batch> read_message_batch(const boost::json::object& body, std::size_t max_messages,
                                         const std::string& traceparent);

}  // namespace chat4all::api
