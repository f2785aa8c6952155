// The body of POST /v1/messages (also a batch item and the WebSocket `send` action).

#include "api/message_input.hpp"

#include "api/json_input.hpp"

namespace chat4all::api {
namespace json = boost::json;

std::optional<send_request> read_send_request(const json::object& o, const std::string& prefix,
                                              std::vector<field_error>& errs,
                                              std::string* id_text) {
  field_reader f(o);
  send_request req;
  if (auto id = f.string("message_id", true, 64)) {
    if (id_text) *id_text = *id;
    if (auto u = uuid::parse(*id))
      req.message_id = *u;
    else
      f.fail("message_id", "must be a UUID");
  }
  if (auto c = f.int64("conversation_id", true, 1)) req.conversation = *c;
  if (const auto* p = f.object("payload", true)) {
    field_reader pf(*p);
    auto type = pf.string("type", true, 16);
    if (type && *type == "text") {
      req.payload.type = message_payload::kind::text;
      if (auto content = pf.string("content", true, 1 << 20)) req.payload.content = *content;
    } else if (type && *type == "file") {
      req.payload.type = message_payload::kind::file;
      if (auto fid = pf.string("file_id", true, 64)) {
        if (auto u = uuid::parse(*fid))
          req.payload.file_id = *u;
        else
          pf.fail("file_id", "must be a UUID");
      }
    } else if (type) {
      pf.fail("type", "must be text or file");
    }
    for (auto& e : pf.failure().details) f.fail("payload." + e.field, e.reason);
  }
  if (const auto* ch = f.array("channels", false)) {
    if (ch->size() > 16) f.fail("channels", "too many entries");
    for (const auto& c : *ch) {
      if (!c.is_string()) {
        f.fail("channels", "must be an array of strings");
        break;
      }
      req.channels.emplace_back(c.as_string());
    }
  }
  if (!f.ok()) {
    for (auto& e : f.failure().details) errs.push_back({prefix + e.field, e.reason});
    return std::nullopt;
  }
  return req;
}

}  // namespace chat4all::api
