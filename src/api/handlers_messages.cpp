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

// The 202 item of an accepted message, written directly (what accepted_json serialises to).
void append_accepted(std::string& out, const uuid& id, conversation_id conv) {
  out += R"({"status":"accepted","message_id":")";
  out += id.str();
  out += R"(","conversation_id":)";
  out += std::to_string(conv);
  out += '}';
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
  append_accepted(reply, req->message_id, req->conversation);
  auto r = co_await s.messages.send(*ctx.caller, std::move(*req));
  if (!r) co_return error_response(ctx.req, r.err());
  accepted.inc();
  co_return json_response(ctx.req, http::status::accepted, std::move(reply));
}

awaitable<response> do_batch(api_services& s, obs::counter& accepted, request_context& ctx) {
  auto mr = body_resource(ctx.req);
  auto body = parse_json_body(ctx.req, &mr);
  if (!body) co_return error_response(ctx.req, body.err());
  field_reader f(*body);
  const auto* items = f.array("messages", true);
  const auto max = static_cast<std::size_t>(s.cfg.limits.batch_max_messages);
  if (items && (items->empty() || items->size() > max))
    f.fail("messages", "must hold 1 to " + std::to_string(max) + " messages");
  if (!f.ok()) co_return error_response(ctx.req, f.failure());

  const auto traceparent = traceparent_of(ctx.req);
  // Rejected items as JSON objects; accepted ones are written directly at the end.
  std::vector<std::optional<json::object>> rejected(items->size());
  std::vector<send_request> valid;
  valid.reserve(items->size());
  std::vector<std::size_t> valid_index;
  valid_index.reserve(items->size());
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
      auto& o = rejected[i].emplace();
      o["message_id"] = id_text.empty() ? json::value(nullptr) : json::value(id_text);
      o["status"] = "rejected";
      o["error"] = json::object{{"code", e.name()}, {"message", e.message}};
      continue;
    }
    req->traceparent = traceparent;
    valid.push_back(std::move(*req));
    valid_index.push_back(i);
  }
  // The ids and conversations for the answer (send_batch takes the requests).
  std::vector<std::pair<uuid, conversation_id>> keys;
  keys.reserve(valid.size());
  for (const auto& v : valid) keys.emplace_back(v.message_id, v.conversation);
  auto outcomes = co_await s.messages.send_batch(*ctx.caller, std::move(valid));
  std::size_t unavailable = 0;
  for (std::size_t k = 0; k < outcomes.size(); ++k) {
    if (outcomes[k]) {
      accepted.inc();
      continue;
    }
    auto& o = rejected[valid_index[k]].emplace();
    const auto& e = outcomes[k].err();
    if (e.code == errc::unavailable) ++unavailable;
    o["status"] = "rejected";
    o["message_id"] = keys[k].first.str();
    o["error"] = json::object{{"code", e.name()}, {"message", e.message}};
  }
  if (unavailable == items->size())
    co_return error_response(ctx.req, error{errc::unavailable, "the message log is unavailable"});
  std::string out;
  out.reserve(32 + 96 * items->size());
  out += R"({"results":[)";
  std::size_t k = 0;
  for (std::size_t i = 0; i < rejected.size(); ++i) {
    if (i > 0) out += ',';
    if (rejected[i]) {
      if (k < valid_index.size() && valid_index[k] == i) ++k;
      out += json::serialize(*rejected[i]);
      continue;
    }
    append_accepted(out, keys[k].first, keys[k].second);
    ++k;
  }
  out += "]}";
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
