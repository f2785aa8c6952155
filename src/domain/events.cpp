#include "domain/events.hpp"

#include <boost/json.hpp>

#include "domain/message_codec.hpp"

namespace chat4all {
namespace json = boost::json;

std::string conversation_channel(conversation_id id) {
  return "conv:" + std::to_string(id);
}
std::string user_channel(user_id id) {
  return "user:" + std::to_string(id);
}

json::object event_base(const char* type, timestamp_us ts) {
  json::object o;
  o["type"] = type;
  o["ts"] = format_rfc3339(ts);
  return o;
}

std::string event_message_created(const message& m, timestamp_us ts) {
  auto o = event_base("message.created", ts);
  o["message"] = message_object(m);
  return json::serialize(o);
}

std::string event_message_status(const uuid& id, conversation_id conv, message_status s,
                                 timestamp_us ts) {
  auto o = event_base("message.status", ts);
  o["message_id"] = id.str();
  o["conversation_id"] = conv;
  o["status"] = to_string(s);
  return json::serialize(o);
}

std::string event_conversation_created(const conversation& c, timestamp_us ts) {
  auto o = event_base("conversation.created", ts);
  json::object conv;
  conv["id"] = c.id;
  conv["type"] = to_string(c.type);
  conv["name"] = c.name;
  conv["description"] = c.description;
  conv["created_at"] = format_rfc3339(c.created_at);
  json::array members;
  for (auto m : c.member_ids) members.emplace_back(m);
  conv["member_ids"] = std::move(members);
  o["conversation"] = std::move(conv);
  return json::serialize(o);
}

std::string event_conversation_read(conversation_id conv, user_id user, seq_t last_read_seq,
                                    timestamp_us ts) {
  auto o = event_base("conversation.read", ts);
  o["conversation_id"] = conv;
  o["user_id"] = user;
  o["last_read_seq"] = last_read_seq;
  return json::serialize(o);
}

}  // namespace chat4all

namespace chat4all {

std::string encode_change_event(std::string_view channel, std::string_view payload) {
  json::object o;
  o["channel"] = channel;
  o["event"] = payload;
  return json::serialize(o);
}

std::optional<std::pair<std::string, std::string>> decode_change_event(std::string_view record) {
  boost::system::error_code ec;
  auto v = json::parse(record, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.get_object();
  const auto* ch = o.if_contains("channel");
  const auto* ev = o.if_contains("event");
  if (ch == nullptr || ev == nullptr || !ch->is_string() || !ev->is_string()) return std::nullopt;
  return std::make_pair(std::string(ch->get_string()), std::string(ev->get_string()));
}

}  // namespace chat4all
