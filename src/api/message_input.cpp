// The body of POST /v1/messages (also a batch item and the WebSocket `send` action), and the
// batch of POST /v1/messages:batch (also the WebSocket `send_batch` action).

#include "api/message_input.hpp"

#include <boost/json/serialize.hpp>

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

namespace {

std::string rejected_item(json::value id, const error& e) {
  json::object o;
  o["message_id"] = std::move(id);
  o["status"] = "rejected";
  o["error"] = json::object{{"code", e.name()}, {"message", e.message}};
  return json::serialize(o);
}

}  // namespace

void append_accepted_item(std::string& out, const uuid& id, conversation_id conv) {
  out += R"({"status":"accepted","message_id":")";
  out += id.str();
  out += R"(","conversation_id":)";
  out += std::to_string(conv);
  out += '}';
}

result<message_batch> read_message_batch(const json::object& body, std::size_t max_messages,
                                         const std::string& traceparent) {
  field_reader f(body);
  const auto* items = f.array("messages", true);
  if (items && (items->empty() || items->size() > max_messages))
    f.fail("messages", "must hold 1 to " + std::to_string(max_messages) + " messages");
  if (!f.ok()) return f.failure();

  message_batch b;
  b.rejected.resize(items->size());
  b.valid.reserve(items->size());
  b.valid_index.reserve(items->size());
  for (std::size_t i = 0; i < items->size(); ++i) {
    const auto& item = (*items)[i];
    std::vector<field_error> errs;
    std::string id_text;
    std::optional<send_request> req;
    const auto prefix = "messages[" + std::to_string(i) + "].";
    if (item.is_object())
      req = read_send_request(item.as_object(), prefix, errs, &id_text);
    else
      errs.push_back({prefix.substr(0, prefix.size() - 1), "must be an object"});
    if (!req) {
      b.rejected[i] = rejected_item(id_text.empty() ? json::value(nullptr) : json::value(id_text),
                                    invalid_fields(std::move(errs)));
      continue;
    }
    req->traceparent = traceparent;
    b.valid.push_back(std::move(*req));
    b.valid_index.push_back(i);
  }
  b.keys.reserve(b.valid.size());
  for (const auto& v : b.valid) b.keys.emplace_back(v.message_id, v.conversation);
  return b;
}

void message_batch::settle(const std::vector<result<void>>& outcomes) {
  for (std::size_t k = 0; k < outcomes.size() && k < keys.size(); ++k) {
    if (outcomes[k]) {
      ++accepted;
      continue;
    }
    const auto& e = outcomes[k].err();
    if (e.code == errc::unavailable) ++unavailable;
    rejected[valid_index[k]] = rejected_item(json::value(keys[k].first.str()), e);
  }
}

error message_batch::unavailable_error() {
  return error{errc::unavailable, "the message log is unavailable"};
}

void message_batch::append_results(std::string& out) const {
  out.reserve(out.size() + 16 + 96 * size());
  out += '[';
  std::size_t k = 0;
  for (std::size_t i = 0; i < size(); ++i) {
    if (i > 0) out += ',';
    const bool valid = k < valid_index.size() && valid_index[k] == i;
    if (!rejected[i].empty())
      out += rejected[i];
    else if (valid)
      append_accepted_item(out, keys[k].first, keys[k].second);
    if (valid) ++k;
  }
  out += ']';
}

}  // namespace chat4all::api
