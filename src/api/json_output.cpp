#include "api/json_output.hpp"

namespace chat4all::api {
namespace json = boost::json;

json::object user_json(const user& u) {
  json::object o;
  o["user_id"] = u.id;
  o["username"] = u.username;
  o["created_at"] = format_rfc3339(u.created_at);
  return o;
}

json::object conversation_json(const conversation& c) {
  json::object o;
  o["id"] = c.id;
  o["type"] = to_string(c.type);
  o["name"] = c.name.empty() ? json::value(nullptr) : json::value(c.name);
  o["description"] = c.description.empty() ? json::value(nullptr) : json::value(c.description);
  o["created_at"] = format_rfc3339(c.created_at);
  json::array members;
  for (auto m : c.member_ids) members.emplace_back(m);
  o["member_ids"] = std::move(members);
  return o;
}

}  // namespace chat4all::api
