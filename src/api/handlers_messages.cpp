// POST /v1/messages, POST /v1/messages:batch, GET /v1/messages/{message_id}.

#include "api/handlers.hpp"
#include "api/json_input.hpp"
#include "api/json_output.hpp"
#include "api/message_input.hpp"
#include "api/route_table.hpp"

namespace chat4all::api {
namespace json = boost::json;
using boost::asio::awaitable;

namespace {

std::string traceparent_of(const request& req) {
  auto tp = req["traceparent"];
  return tp.size() == 55 ? std::string(tp) : std::string();
}

json::object accepted_json(const send_request& r) {
  json::object o;
  o["status"] = "accepted";
  o["message_id"] = r.message_id.str();
  o["conversation_id"] = r.conversation;
  return o;
}

awaitable<response> do_send(api_services& s, obs::counter& accepted, request_context& ctx) {
  auto body = parse_json_body(ctx.req);
  if (!body) co_return error_response(ctx.req, body.err());
  std::vector<field_error> errs;
  auto req = read_send_request(*body, "", errs, nullptr);
  if (!req) co_return error_response(ctx.req, invalid_fields(std::move(errs)));
  req->traceparent = traceparent_of(ctx.req);
  auto reply = accepted_json(*req);
  auto r = co_await s.messages.send(*ctx.caller, std::move(*req));
  if (!r) co_return error_response(ctx.req, r.err());
  accepted.inc();
  co_return json_reply(ctx, http::status::accepted, reply);
}

awaitable<response> do_batch(api_services& s, obs::counter& accepted, request_context& ctx) {
  auto body = parse_json_body(ctx.req);
  if (!body) co_return error_response(ctx.req, body.err());
  field_reader f(*body);
  const auto* items = f.array("messages", true);
  const auto max = static_cast<std::size_t>(s.cfg.limits.batch_max_messages);
  if (items && (items->empty() || items->size() > max))
    f.fail("messages", "must hold 1 to " + std::to_string(max) + " messages");
  if (!f.ok()) co_return error_response(ctx.req, f.failure());

  const auto traceparent = traceparent_of(ctx.req);
  std::vector<json::object> results(items->size());
  std::vector<send_request> valid;
  std::vector<std::size_t> valid_index;
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
      auto e = invalid_fields(std::move(errs));
      results[i]["message_id"] = id_text.empty() ? json::value(nullptr) : json::value(id_text);
      results[i]["status"] = "rejected";
      results[i]["error"] = json::object{{"code", e.name()}, {"message", e.message}};
      continue;
    }
    req->traceparent = traceparent;
    results[i] = accepted_json(*req);
    valid.push_back(std::move(*req));
    valid_index.push_back(i);
  }
  auto outcomes = co_await s.messages.send_batch(*ctx.caller, std::move(valid));
  std::size_t unavailable = 0;
  for (std::size_t k = 0; k < outcomes.size(); ++k) {
    if (outcomes[k]) {
      accepted.inc();
      continue;
    }
    auto& o = results[valid_index[k]];
    const auto& e = outcomes[k].err();
    if (e.code == errc::unavailable) ++unavailable;
    o.erase("conversation_id");
    o["status"] = "rejected";
    o["error"] = json::object{{"code", e.name()}, {"message", e.message}};
  }
  if (unavailable == items->size())
    co_return error_response(ctx.req, error{errc::unavailable, "the message log is unavailable"});
  json::array arr;
  for (auto& r : results) arr.push_back(std::move(r));
  co_return json_reply(ctx, http::status::accepted, json::object{{"results", std::move(arr)}});
}

awaitable<response> do_get(api_services& s, request_context& ctx) {
  auto id = uuid::parse(ctx.param("message_id"));
  if (!id) co_return error_response(ctx.req, invalid_fields({{"message_id", "must be a UUID"}}));
  auto m = co_await s.messages.get(*ctx.caller, *id);
  if (!m) co_return error_response(ctx.req, m.err());
  auto o = message_object(m->msg);
  json::array history;
  for (const auto& h : m->history) {
    json::object e;
    e["status"] = to_string(h.status);
    e["at"] = format_rfc3339(h.at);
    if (!h.channel.empty()) e["channel"] = h.channel;
    if (!h.detail.empty()) e["detail"] = h.detail;
    history.push_back(std::move(e));
  }
  o["status_history"] = std::move(history);
  o["read_by"] = m->read_by;
  co_return json_reply(ctx, http::status::ok, o);
}

}  // namespace

void register_message_routes(route_table& routes, api_services& s) {
  auto* sp = &s;
  auto* accepted = &s.metrics.counter("chat4all_messages_accepted_total",
                                      "Messages accepted (durable in the log) by the API");
  routes.add(http::verb::post, "/v1/messages", {"POST /v1/messages", 256 * 1024, true},
             [sp, accepted](request_context& c) { return do_send(*sp, *accepted, c); });
  routes.add(http::verb::post, "/v1/messages:batch",
             {"POST /v1/messages:batch", s.cfg.server.max_batch_body_bytes, true},
             [sp, accepted](request_context& c) { return do_batch(*sp, *accepted, c); });
  routes.add(http::verb::get, "/v1/messages/{message_id}",
             {"GET /v1/messages/{message_id}", 0, true},
             [sp](request_context& c) { return do_get(*sp, c); });
}

}  // namespace chat4all::api
