// POST/GET /v1/conversations, GET /v1/conversations/{id}/messages,
// POST /v1/conversations/{id}/read.

#include "api/handlers.hpp"
#include "api/json_input.hpp"
#include "api/json_output.hpp"
#include "api/route_table.hpp"

namespace chat4all::api {
namespace json = boost::json;
using boost::asio::awaitable;

namespace {
constexpr std::int64_t max_user_id = INT64_MAX;

awaitable<response> do_create(api_services& s, request_context& ctx) {
  auto body = parse_json_body(ctx.req);
  if (!body) co_return error_response(ctx.req, body.err());
  field_reader f(*body);
  create_conversation_request req;
  auto type = f.string("type", true, 16);
  if (type) {
    if (auto t = parse_conversation_type(*type))
      req.type = *t;
    else
      f.fail("type", "must be private or group");
  }
  if (auto* members = f.array("member_ids", true)) {
    if (members->size() > 1000) f.fail("member_ids", "too many entries");
    for (const auto& m : *members) {
      if (!m.is_int64() || m.as_int64() <= 0 || m.as_int64() > max_user_id) {
        f.fail("member_ids", "must be an array of positive integer user ids");
        break;
      }
      req.member_ids.push_back(m.as_int64());
    }
  }
  if (auto name = f.string("name", false, 1024)) req.name = std::move(*name);
  if (auto d = f.string("description", false, 8192)) req.description = std::move(*d);
  if (!f.ok()) co_return error_response(ctx.req, f.failure());

  auto out = co_await s.conversations.create(*ctx.caller, std::move(req));
  if (!out) co_return error_response(ctx.req, out.err());
  co_return json_reply(ctx, out->created ? http::status::created : http::status::ok,
                       conversation_json(out->conv));
}

awaitable<response> do_list(api_services& s, request_context& ctx) {
  std::vector<field_error> errs;
  const auto max = s.cfg.limits.page_max;
  const auto limit = query_int(ctx, "limit", 1, max, errs).value_or(50 < max ? 50 : max);
  const auto offset = query_int(ctx, "offset", 0, 1'000'000'000, errs).value_or(0);
  if (!errs.empty()) co_return error_response(ctx.req, invalid_fields(std::move(errs)));
  auto p =
      co_await s.conversations.list(*ctx.caller, static_cast<int>(limit), static_cast<int>(offset));
  if (!p) co_return error_response(ctx.req, p.err());
  json::array items;
  for (const auto& c : p->items) {
    json::object o;
    o["conversation_id"] = c.id;
    o["type"] = to_string(c.type);
    o["name"] = c.name.empty() ? json::value(nullptr) : json::value(c.name);
    if (c.last_message) {
      json::object lm;
      lm["message_id"] = c.last_message->message_id.str();
      lm["seq"] = c.last_message->seq;
      lm["sender_id"] = c.last_message->sender;
      lm["preview"] = c.last_message->preview;
      lm["created_at"] = format_rfc3339(c.last_message->created_at);
      o["last_message"] = std::move(lm);
    } else {
      o["last_message"] = nullptr;
    }
    o["unread_count"] = c.unread_count;
    o["member_count"] = c.member_count;
    o["created_at"] = format_rfc3339(c.created_at);
    items.push_back(std::move(o));
  }
  json::object out;
  out["items"] = std::move(items);
  out["total"] = p->total;
  out["limit"] = limit;
  out["offset"] = offset;
  out["has_more"] = offset + static_cast<std::int64_t>(p->items.size()) < p->total;
  co_return json_reply(ctx, http::status::ok, out);
}

awaitable<response> do_history(api_services& s, request_context& ctx) {
  auto id = path_id(ctx, "id");
  if (!id) co_return error_response(ctx.req, id.err());
  std::vector<field_error> errs;
  const auto max = s.cfg.limits.page_max;
  history_query q;
  q.conversation = *id;
  q.limit = static_cast<int>(query_int(ctx, "limit", 1, max, errs).value_or(50 < max ? 50 : max));
  q.before_seq = query_int(ctx, "before_seq", 0, INT64_MAX, errs);
  q.after_seq = query_int(ctx, "after_seq", 0, INT64_MAX, errs);
  q.offset = static_cast<int>(query_int(ctx, "offset", 0, 1'000'000'000, errs).value_or(0));
  if (q.before_seq && q.after_seq)
    errs.push_back({"before_seq", "use either before_seq or after_seq, not both"});
  if (!errs.empty()) co_return error_response(ctx.req, invalid_fields(std::move(errs)));
  auto p = co_await s.conversations.history(*ctx.caller, q);
  if (!p) co_return error_response(ctx.req, p.err());
  json::array msgs;
  for (const auto& m : p->messages) msgs.push_back(message_object(m));
  json::object out;
  out["messages"] = std::move(msgs);
  out["has_more"] = p->has_more;
  co_return json_reply(ctx, http::status::ok, out);
}

awaitable<response> do_read(api_services& s, request_context& ctx) {
  auto id = path_id(ctx, "id");
  if (!id) co_return error_response(ctx.req, id.err());
  std::optional<seq_t> up_to;
  if (!ctx.req.body().empty()) {
    auto body = parse_json_body(ctx.req);
    if (!body) co_return error_response(ctx.req, body.err());
    field_reader f(*body);
    up_to = f.int64("up_to_seq", false, 0, INT64_MAX);
    if (!f.ok()) co_return error_response(ctx.req, f.failure());
  }
  auto r = co_await s.conversations.mark_read(*ctx.caller, *id, up_to);
  if (!r) co_return error_response(ctx.req, r.err());
  json::object out;
  out["conversation_id"] = r->conversation;
  out["last_read_seq"] = r->last_read_seq;
  out["messages_marked_read"] = r->messages_marked_read;
  co_return json_reply(ctx, http::status::ok, out);
}

}  // namespace

void register_conversation_routes(route_table& routes, api_services& s) {
  auto* sp = &s;
  routes.add(http::verb::post, "/v1/conversations", {"POST /v1/conversations", 64 * 1024, true},
             [sp](request_context& c) { return do_create(*sp, c); });
  routes.add(http::verb::get, "/v1/conversations", {"GET /v1/conversations", 0, true},
             [sp](request_context& c) { return do_list(*sp, c); });
  routes.add(http::verb::get, "/v1/conversations/{id}/messages",
             {"GET /v1/conversations/{id}/messages", 0, true},
             [sp](request_context& c) { return do_history(*sp, c); });
  routes.add(http::verb::post, "/v1/conversations/{id}/read",
             {"POST /v1/conversations/{id}/read", 4 * 1024, true},
             [sp](request_context& c) { return do_read(*sp, c); });
}

}  // namespace chat4all::api
