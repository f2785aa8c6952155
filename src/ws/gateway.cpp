#include "ws/gateway.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include "api/route_table.hpp"
#include "ws/session.hpp"

namespace chat4all::ws {
namespace asio = boost::asio;
namespace beast = boost::beast;

gateway_core::gateway_core(ws_config c, limits_config l, gateway_services s)
    : cfg(c),
      limits(l),
      svc(s),
      channels(s.fan, s.metrics),
      instance_tag(uuid::random().str().substr(0, 8)),
      open(s.metrics.gauge("chat4all_ws_connections_open", "Open WebSocket connections")),
      opened(s.metrics.counter("chat4all_ws_connections_total",
                               "WebSocket connections accepted (handshake completed)")),
      closed_slow(s.metrics
                      .counter_family("chat4all_ws_closed_total",
                                      "WebSocket connections closed by the server, by reason",
                                      {"reason"})
                      .with({"slow_reader"})),
      closed_cap(
          s.metrics.counter_family("chat4all_ws_closed_total", "", {"reason"}).with({"user_cap"})),
      closed_heartbeat(
          s.metrics.counter_family("chat4all_ws_closed_total", "", {"reason"}).with({"heartbeat"})),
      closed_shutdown(
          s.metrics.counter_family("chat4all_ws_closed_total", "", {"reason"}).with({"shutdown"})),
      events_sent(s.metrics.counter("chat4all_ws_events_sent_total",
                                    "Events written to WebSocket connections")),
      dropped(s.metrics.counter("chat4all_ws_send_queue_dropped_events_total",
                                "Events dropped because a connection's send queue was full "
                                "(the connection was closed with 1013)")),
      bad_frames(s.metrics.counter("chat4all_ws_bad_frames_total",
                                   "Client frames answered with an error event (not JSON, "
                                   "unknown action, invalid fields, binary, too large)")),
      latency(s.metrics.histogram("chat4all_ws_notification_latency_seconds",
                                  "Time from a message's acceptance to its message.created "
                                  "frame written to a WebSocket connection")) {}

bool gateway_core::admit(user_id user, std::uint64_t id, std::weak_ptr<session> s,
                         asio::any_io_executor ex) {
  std::lock_guard lk(mu);
  int& n = per_user[user];
  if (n >= cfg.max_connections_per_user) return false;
  ++n;
  sessions.emplace(id, entry{std::move(s), std::move(ex)});
  return true;
}

void gateway_core::release(user_id user, std::uint64_t id) {
  std::lock_guard lk(mu);
  sessions.erase(id);
  auto it = per_user.find(user);
  if (it != per_user.end() && --it->second <= 0) per_user.erase(it);
}

std::string gateway_core::connection_id(std::uint64_t id) const {
  return instance_tag + "-" + std::to_string(id);
}

namespace {

// The upgrade handler: a free coroutine (a capturing coroutine lambda would dangle).
task<void> serve(gateway_core& gw, api::request_context& ctx, beast::tcp_stream& stream,
                 beast::flat_buffer& buffer) {
  // Nothing may follow the upgrade request before the handshake answer: the server's read
  // buffer is not needed for the life of the connection.
  buffer.consume(buffer.size());
  buffer.shrink_to_fit();
  auto ex = co_await asio::this_coro::executor;
  auto s = std::make_shared<session>(gw, stream, ex, *ctx.caller, gw.next_id.fetch_add(1));
  co_await s->run(ctx);
}

}  // namespace

gateway::gateway(ws_config cfg, limits_config limits, gateway_services services)
    : core_(std::make_unique<gateway_core>(cfg, limits, services)) {}

gateway::~gateway() {
  core_->channels.shutdown();
}

void gateway::register_routes(api::route_table& routes) {
  auto* gw = core_.get();
  routes.add_upgrade(api::http::verb::get, "/ws", {"GET /ws", 4 * 1024, true},
                     [gw](api::request_context& ctx, beast::tcp_stream& stream,
                          beast::flat_buffer& buffer) { return serve(*gw, ctx, stream, buffer); });
}

void gateway::stop() {
  core_->stopping = true;
  std::lock_guard lk(core_->mu);
  for (auto& [id, e] : core_->sessions) {
    core_->closed_shutdown.inc();
    asio::post(e.ex, [w = e.s] {
      if (auto s = w.lock()) s->begin_close(close_going_away, "server shutting down");
    });
  }
}

void gateway::shutdown() {
  core_->channels.shutdown();
}

std::size_t gateway::connections() const noexcept {
  std::lock_guard lk(core_->mu);
  return core_->sessions.size();
}

}  // namespace chat4all::ws
