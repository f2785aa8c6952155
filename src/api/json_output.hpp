#pragma once
// JSON response builders shared by the handlers.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "api/http_types.hpp"
#include "domain/entities.hpp"
#include "domain/message_codec.hpp"  // message_object

namespace chat4all::api {

inline response json_reply(const request_context& ctx, http::status status,
                           const boost::json::value& body) {
  return json_response(ctx.req, status, boost::json::serialize(body));
}
// Without these, an object or array argument would be copied into a json::value first.
inline response json_reply(const request_context& ctx, http::status status,
                           const boost::json::object& body) {
  return json_response(ctx.req, status, boost::json::serialize(body));
}
inline response json_reply(const request_context& ctx, http::status status,
                           const boost::json::array& body) {
  return json_response(ctx.req, status, boost::json::serialize(body));
}

boost::json::object user_json(const user& u);
boost::json::object conversation_json(const conversation& c);

}  // namespace chat4all::api
