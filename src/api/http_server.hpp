#pragma once
// HTTP/1.1 server on Boost.Beast with C++20 coroutines.
//
// Threading: `threads` io_contexts (0 = one per core), each run by one thread and owning its
// own SO_REUSEPORT acceptor, so a connection lives on one thread from accept to close and
// its handlers run there without locks. Handlers must not block (see http_types.hpp).
//
// Per connection: a keep-alive loop; the header is read first (limit max_header_bytes),
// the route is looked up, auth runs, and only then the body is read with the route's limit.
// For upgrade routes (WebSocket) without an Authorization header, the token may also come
// from the `token` query parameter or a `Sec-WebSocket-Protocol: bearer.<jwt>` entry (browsers
// cannot set headers on a WebSocket), so a bad or expired token is a 401 before any upgrade.
// Failures answer the SPEC error body: 400 malformed HTTP (then close), 401 missing or bad
// Bearer token, 404 unknown path, 405 known path with another method (Allow header), 413
// body over the route limit (then close), 431 header too large (then close), 500 when a
// handler throws (logged with the request id, counted; the server keeps serving), 503 when
// max_connections is reached (the extra connection is answered and closed). Every response
// carries X-Request-ID (the client's when it is 1-128 chars of [A-Za-z0-9._-], else a
// generated one) and a Content-Type.
//
// Metrics: chat4all_http_requests_total{route,status="2xx"|...},
// chat4all_http_request_duration_seconds{route}, chat4all_http_handler_exceptions_total{route},
// chat4all_http_connections_open, chat4all_http_connections_rejected_total. Requests that
// match no route are labelled route="unmatched". One access-log line per request at debug.
//
// Lifetime: `routes` and `metrics` must outlive the server; routes must not be added after
// start(). start(), drain() and stop() are called from one controlling thread (never from an
// I/O thread); the other members are thread-safe.

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>

#include "api/http_types.hpp"
#include "core/config.hpp"

namespace chat4all::obs {
class metrics_registry;
}

namespace chat4all::api {

class route_table;

class http_server {
 public:
  http_server(server_config cfg, route_table& routes, authenticator auth,
              obs::metrics_registry& metrics);
  // Stops with no grace period if still running.
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds cfg.listen ("host:port", "[v6]:port"; port 0 picks a free port) on every I/O
  // thread and starts serving. Throws std::runtime_error naming the address when it cannot
  // listen. Call once.
  void start();

  // Stops accepting, closes idle keep-alive connections, and lets requests in flight finish
  // (their connections close after the current response) for up to `grace`. I/O threads
  // keep running, so background work on executor() can still complete. Returns true when
  // every connection has closed.
  bool drain(std::chrono::milliseconds grace);

  // drain(grace), then closes the remaining connections, stops the I/O threads and joins
  // them. Idempotent.
  void stop(std::chrono::milliseconds grace);

  // The port actually bound (useful with port 0); 0 before start().
  std::uint16_t bound_port() const noexcept;
  // An executor of one of the I/O threads (round-robin), valid from construction until the
  // server is destroyed, for background tasks. Work on it stops when stop() returns.
  boost::asio::any_io_executor executor();
  std::size_t thread_count() const noexcept;
  // True once drain() or stop() began (e.g. for readiness probes).
  bool stopping() const noexcept;
  std::size_t open_connections() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace chat4all::api
