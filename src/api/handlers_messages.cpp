// POST /v1/messages, POST /v1/messages:batch, GET /v1/messages/{message_id}.

#include <boost/json/monotonic_resource.hpp>

#include <optional>

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

// Where a request body's JSON values live: bump allocation from a block sized for the body,
// released at once when the handler returns.
json::monotonic_resource body_resource(const request& req) {
  return json::monotonic_resource(std::max<std::size_t>(1024, 2 * req.body().size()));
}

awaitable<response> do_send(api_services& s, obs::counter& accepted, request_context& ctx) {
  auto mr = body_resource(ctx.req);
  auto body = parse_json_body(ctx.req, &mr);
  if (!body) co_return error_response(ctx.req, body.err());
  std::vector<field_error> errs;
  auto req = read_send_request(*body, "", errs, nullptr);
  if (!req) co_return error_response(ctx.req, invalid_fields(std::move(errs)));
  req->traceparent = traceparent_of(ctx.req);
  std::string reply;
  append_accepted_item(reply, req->message_id, req->conversation);
  auto r = co_await s.messages.send(*ctx.caller, std::move(*req));
  if (!r) co_return error_response(ctx.req, r.err());
  accepted.inc();
  co_return json_response(ctx.req, http::status::accepted, std::move(reply));
}

awaitable<response> do_batch(api_services& s, obs::counter& accepted, request_context& ctx) {
  auto mr = body_resource(ctx.req);
  auto body = parse_json_body(ctx.req, &mr);
  if (!body) co_return error_response(ctx.req, body.err());
  auto batch = read_message_batch(*body, static_cast<std::size_t>(s.cfg.limits.batch_max_messages),
                                  traceparent_of(ctx.req));
  if (!batch) co_return error_response(ctx.req, batch.err());
  auto outcomes = co_await s.messages.send_batch(*ctx.caller, std::move(batch->valid));
  batch->settle(outcomes);
  accepted.inc(batch->accepted);
  if (batch->all_unavailable())
    co_return error_response(ctx.req, message_batch::unavailable_error());
  std::string out = R"({"results":)";
  batch->append_results(out);
  out += '}';
  co_return json_response(ctx.req, http::status::accepted, std::move(out));
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
