#pragma once
// The real-time WebSocket gateway: GET /ws (SPEC §4).
//
// Authentication happens in the HTTP server before the upgrade (route option auth = true;
// for upgrade routes the token may also come from the `token` query parameter or a
// `Sec-WebSocket-Protocol: bearer.<jwt>` entry), so a bad or expired token is a refused
// upgrade (401). Each connection then:
//   * is admitted under the per-user cap (ws.max_connections_per_user per instance; one more
//     is closed with 4008);
//   * listens to its user's channel and to every conversation of the user (new ones join
//     live on `conversation.created`), through the instance's hub (one fanout subscription
//     per channel per instance), and is greeted with `connected` once those are live;
//   * runs the client actions of ws/protocol.hpp through the same use cases as REST
//     (message_service for `send` and `send_batch`, conversation_service for `read` and
//     `resume` replays);
//   * keeps a bounded send queue (ws.send_queue_max_events / _bytes; a draining socket may
//     hold a burst of up to 4x for at most 0.5 s without progress): overflow closes with
//     1013; a heartbeat every ws.heartbeat_s (WebSocket ping plus a `ping` event) closes a
//     connection silent for 2 intervals, or whose write is stuck that long;
//   * answers a bad frame (not JSON, unknown action, bad fields, binary, over
//     ws.max_frame_bytes) with an `error` event and stays open.
//
// Threading: a connection lives on the I/O thread that accepted it (its coroutines, timers
// and queue are touched only there); fanout events are posted to it by the hub.
// Lifetime: the gateway must outlive the http_server's I/O threads and connection
// coroutines (declare it before the server); call stop() before http_server::stop() (so the
// drain does not wait for WebSocket clients) and shutdown() after it.
//
// Metrics: chat4all_ws_connections_open, chat4all_ws_connections_total,
// chat4all_ws_closed_total{reason="slow_reader"|"user_cap"|"heartbeat"|"shutdown"},
// chat4all_ws_events_sent_total, chat4all_ws_send_queue_dropped_events_total,
// chat4all_ws_bad_frames_total, chat4all_ws_notification_latency_seconds (message accepted
// -> message.created frame written), plus the hub's chat4all_ws_channels_subscribed.

#include <cstddef>
#include <memory>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "domain/conversation_service.hpp"
#include "domain/membership_cache.hpp"
#include "domain/message_service.hpp"
#include "domain/ports/fanout.hpp"
#include "obs/metrics.hpp"

namespace chat4all::api {
class route_table;
}

namespace chat4all::ws {

struct gateway_services {
  conversation_service& conversations;
  message_service& messages;
  membership_cache& members;
  fanout& fan;
  const clock& clk;
  obs::metrics_registry& metrics;
};

struct gateway_core;

class gateway {
 public:
  gateway(ws_config cfg, limits_config limits, gateway_services services);
  ~gateway();
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  // Registers GET /ws (an upgrade route that requires a token).
  void register_routes(api::route_table& routes);
  // Closes every connection with 1001 (going away) and refuses new ones the same way.
  // Thread-safe, does not wait.
  void stop();
  // Drops the fanout subscriptions (after the server's I/O threads stopped). Idempotent.
  void shutdown();
  std::size_t connections() const noexcept;

 private:
  std::unique_ptr<gateway_core> core_;
};

}  // namespace chat4all::ws
