// GET /healthz, /readyz, /metrics.

#include "api/handlers.hpp"
#include "api/json_output.hpp"
#include "api/route_table.hpp"
#include "obs/process_memory.hpp"

namespace chat4all::api {
namespace json = boost::json;
using boost::asio::awaitable;

namespace {

awaitable<response> do_health(api_services&, request_context& ctx) {
  co_return json_reply(ctx, http::status::ok, json::object{{"status", "ok"}});
}

awaitable<response> do_ready(api_services& s, request_context& ctx) {
  json::object deps;
  bool ready = s.ready.load();
  deps["startup"] = ready ? "ok" : "starting";
  auto ping = co_await s.db.ping();
  deps["store"] = ping ? "ok" : "down";
  ready = ready && ping;
  for (const auto& p : s.probes) {
    auto st = p.check();
    deps[p.name] = st.state;
    ready = ready && st.ready;
  }
  json::object out{{"status", ready ? "ready" : "not_ready"}, {"dependencies", std::move(deps)}};
  auto res = json_reply(ctx, ready ? http::status::ok : http::status::service_unavailable, out);
  if (!ready) res.set(http::field::retry_after, "1");
  co_return res;
}

awaitable<response> do_metrics(api_services& s, request_context& ctx) {
  response res{http::status::ok, ctx.req.version()};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.keep_alive(ctx.req.keep_alive());
  obs::update_process_memory_metrics(s.metrics);
  res.body() = s.metrics.render();
  res.prepare_payload();
  co_return res;
}

}  // namespace

void register_ops_routes(route_table& routes, api_services& s) {
  auto* sp = &s;
  routes.add(http::verb::get, "/healthz", {"GET /healthz", 0, false},
             [sp](request_context& c) { return do_health(*sp, c); });
  routes.add(http::verb::get, "/readyz", {"GET /readyz", 0, false},
             [sp](request_context& c) { return do_ready(*sp, c); });
  routes.add(http::verb::get, "/metrics", {"GET /metrics", 0, false},
             [sp](request_context& c) { return do_metrics(*sp, c); });
}

}  // namespace chat4all::api
