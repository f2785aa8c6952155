// A real server on a loopback port, driven by a blocking Beast client.
#include "api/http_server.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <future>
#include <thread>

#include "api/route_table.hpp"
#include "obs/metrics.hpp"

namespace chat4all::api {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A blocking client with a receive timeout, so a server bug fails the test instead of
// hanging it.
class client {
 public:
  explicit client(std::uint16_t port) : sock_(ioc_) {
    sock_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{5, 0};
    ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  http::response<http::string_body> send(request req) {
    if (req.version() == 0) req.version(11);
    req.set(http::field::host, "localhost");
    req.prepare_payload();
    http::write(sock_, req);
    return read();
  }

  http::response<http::string_body> read() {
    http::response_parser<http::string_body> p;
    p.body_limit(1 << 20);
    http::read(sock_, buf_, p);
    return p.release();
  }

  void write_raw(std::string_view bytes) { asio::write(sock_, asio::buffer(bytes)); }
  std::size_t read_some(asio::mutable_buffer b, boost::system::error_code& ec) {
    // Bytes the HTTP reader already buffered come first.
    if (buf_.size() > 0) {
      std::size_t n = asio::buffer_copy(b, buf_.data());
      buf_.consume(n);
      return n;
    }
    return sock_.read_some(b, ec);
  }

  // True when the server closed the connection (EOF or reset) within the timeout.
  bool closed_by_peer() {
    char c;
    boost::system::error_code ec;
    sock_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  asio::io_context ioc_;
  tcp::socket sock_;
  beast::flat_buffer buf_;
};

request get(std::string target) {
  return request{http::verb::get, target, 11};
}

class http_server_test : public ::testing::Test {
 protected:
  void SetUp() override {
    routes_.add(http::verb::get, "/echo/{id}", {"echo", 0, false},
                [](request_context& ctx) -> asio::awaitable<response> {
                  std::string body = "{\"id\":\"" + std::string(ctx.param("id")) + "\",\"q\":\"" +
                                     std::string(ctx.query_param("q").value_or("")) +
                                     "\",\"trace\":\"" + ctx.trace_id + "\"}";
                  co_return json_response(ctx.req, http::status::ok, std::move(body));
                });
    routes_.add(http::verb::post, "/small", {"small", 16, false},
                [](request_context& ctx) -> asio::awaitable<response> {
                  co_return json_response(ctx.req, http::status::ok,
                                          std::to_string(ctx.req.body().size()));
                });
    routes_.add(http::verb::get, "/me", {"me"},
                [](request_context& ctx) -> asio::awaitable<response> {
                  co_return json_response(ctx.req, http::status::ok,
                                          std::to_string(ctx.caller ? ctx.caller->id : -1));
                });
    routes_.add(http::verb::get, "/boom", {"boom", 0, false},
                [](request_context&) -> asio::awaitable<response> {
                  throw std::runtime_error("handler bug");
                  co_return response{};
                });
    routes_.add(http::verb::get, "/slow", {"slow", 0, false},
                [this](request_context& ctx) -> asio::awaitable<response> {
                  slow_started_ = true;
                  asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
                  co_await t.async_wait(asio::use_awaitable);
                  slow_completed_ = true;
                  co_return json_response(ctx.req, http::status::ok, "{\"slow\":true}");
                });
    routes_.add_upgrade(http::verb::get, "/raw", {"raw", 0, false},
                        [](request_context& ctx, beast::tcp_stream& stream,
                           beast::flat_buffer&) -> asio::awaitable<void> {
                          std::string hello = "hello " + ctx.request_id;
                          co_await asio::async_write(stream, asio::buffer(hello),
                                                     asio::use_awaitable);
                        });
    routes_.add(http::verb::get, "/plain", {"plain", 0, false},
                [](request_context&) -> asio::awaitable<response> {
                  response r{http::status::no_content, 11};
                  co_return r;
                });
  }

  void start(server_config cfg = {}) {
    cfg.listen = "127.0.0.1:0";
    cfg.threads = 2;
    server_ = std::make_unique<http_server>(
        cfg, routes_,
        [](std::string_view token) -> asio::awaitable<result<principal>> {
          if (token == "good") co_return principal{42, "user", "jti", 0};
          co_return error{errc::unauthenticated, "bad token", "invalid_token"};
        },
        metrics_);
    server_->start();
    ASSERT_NE(server_->bound_port(), 0);
  }

  void TearDown() override {
    if (server_) server_->stop(2s);
  }

  std::uint16_t port() const { return server_->bound_port(); }

  // Metrics are recorded once the response is written, so the client may see the response
  // a moment before the sample lands.
  bool metrics_show(const std::string& needle) {
    for (int i = 0; i < 200; ++i) {
      if (metrics_.render().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "metric not found: " << needle << "\n" << metrics_.render();
    return false;
  }

  obs::metrics_registry metrics_;
  route_table routes_;
  std::unique_ptr<http_server> server_;
  std::atomic<bool> slow_started_{false};
  std::atomic<bool> slow_completed_{false};
};

TEST_F(http_server_test, keep_alive_serves_several_requests_on_one_connection) {
  start();
  client c(port());
  for (int i = 0; i < 5; ++i) {
    auto res = c.send(get("/echo/" + std::to_string(i) + "?q=x+y%21"));
    ASSERT_EQ(res.result(), http::status::ok);
    EXPECT_EQ(res.body(), "{\"id\":\"" + std::to_string(i) + "\",\"q\":\"x y!\",\"trace\":\"\"}");
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(res[http::field::content_type], "application/json");
  }
  EXPECT_EQ(server_->open_connections(), 1u);
  EXPECT_TRUE(metrics_show("chat4all_http_requests_total{route=\"echo\",status=\"2xx\"} 5\n"));
  EXPECT_TRUE(metrics_show("chat4all_http_request_duration_seconds_count{route=\"echo\"} 5\n"));
  EXPECT_TRUE(metrics_show("chat4all_http_connections_open 1\n"));
}

TEST_F(http_server_test, request_id_is_echoed_or_generated) {
  start();
  client c(port());
  auto req = get("/echo/1");
  req.set("X-Request-ID", "client-id_1.2");
  EXPECT_EQ(c.send(req)["X-Request-ID"], "client-id_1.2");

  auto bad = get("/echo/1");
  bad.set("X-Request-ID", "not valid!");
  auto r1 = c.send(bad);
  EXPECT_EQ(r1["X-Request-ID"].size(), 32u);
  auto r2 = c.send(get("/echo/1"));
  EXPECT_EQ(r2["X-Request-ID"].size(), 32u);
  EXPECT_NE(r1["X-Request-ID"], r2["X-Request-ID"]);

  auto traced = get("/echo/1");
  traced.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_NE(c.send(traced).body().find("0af7651916cd43dd8448eb211c80319c"), std::string::npos);

  // Error responses carry one too, and a Content-Type.
  auto nf = c.send(get("/nope"));
  EXPECT_EQ(nf.result(), http::status::not_found);
  EXPECT_EQ(nf["X-Request-ID"].size(), 32u);
  auto nc = c.send(get("/plain"));
  EXPECT_EQ(nc.result(), http::status::no_content);
  EXPECT_FALSE(nc[http::field::content_type].empty());
  EXPECT_EQ(nc["X-Request-ID"].size(), 32u);
}

TEST_F(http_server_test, not_found_and_method_not_allowed) {
  start();
  client c(port());
  auto nf = c.send(get("/v1/unknown"));
  EXPECT_EQ(nf.result(), http::status::not_found);
  EXPECT_EQ(nf.body(), R"({"error":{"code":"not_found","message":"no such endpoint"}})");
  auto na = c.send(request{http::verb::delete_, "/echo/1", 11});
  EXPECT_EQ(na.result(), http::status::method_not_allowed);
  EXPECT_EQ(na[http::field::allow], "GET");
  EXPECT_NE(na.body().find("\"code\":\"method_not_allowed\""), std::string::npos);
  EXPECT_EQ(c.send(get("/echo/2")).result(), http::status::ok);  // still usable
}

TEST_F(http_server_test, body_over_route_limit_is_413_and_server_keeps_serving) {
  start();
  {
    client c(port());
    request req{http::verb::post, "/small", 11};
    req.body() = "0123456789abcdef";  // exactly the limit
    EXPECT_EQ(c.send(req).body(), "16");
    req.body() = std::string(4096, 'x');
    auto res = c.send(req);
    EXPECT_EQ(res.result(), http::status::payload_too_large);
    EXPECT_NE(res.body().find("\"code\":\"payload_too_large\""), std::string::npos);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(c.closed_by_peer());
  }
  {
    // Chunked bodies have no Content-Length: the limit applies while reading.
    client c(port());
    c.write_raw(
        "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
    EXPECT_EQ(c.read().result(), http::status::payload_too_large);
  }
  client next(port());
  EXPECT_EQ(next.send(get("/echo/3")).result(), http::status::ok);
}

TEST_F(http_server_test, huge_header_is_431) {
  server_config cfg;
  cfg.max_header_bytes = 1024;
  start(cfg);
  client c(port());
  auto req = get("/echo/1");
  req.set("X-Big", std::string(4000, 'a'));
  auto res = c.send(req);
  EXPECT_EQ(res.result(), http::status::request_header_fields_too_large);
  EXPECT_NE(res.body().find("\"code\":\"header_too_large\""), std::string::npos);
  EXPECT_FALSE(res["X-Request-ID"].empty());
  client next(port());
  EXPECT_EQ(next.send(get("/echo/1")).result(), http::status::ok);
}

TEST_F(http_server_test, malformed_request_is_400_then_close) {
  start();
  client c(port());
  c.write_raw("THIS IS NOT HTTP\r\n\r\n");
  auto res = c.read();
  EXPECT_EQ(res.result(), http::status::bad_request);
  EXPECT_NE(res.body().find("\"code\":\"bad_request\""), std::string::npos);
  EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(http_server_test, missing_or_bad_token_is_401) {
  start();
  client c(port());
  auto none = c.send(get("/me"));
  EXPECT_EQ(none.result(), http::status::unauthorized);
  EXPECT_EQ(none[http::field::www_authenticate], "Bearer");
  EXPECT_NE(none.body().find("\"code\":\"unauthorized\""), std::string::npos);

  auto basic = get("/me");
  basic.set(http::field::authorization, "Basic abc");
  EXPECT_EQ(c.send(basic).result(), http::status::unauthorized);

  auto wrong = get("/me");
  wrong.set(http::field::authorization, "Bearer nope");
  auto res = c.send(wrong);
  EXPECT_EQ(res.result(), http::status::unauthorized);
  EXPECT_NE(res.body().find("\"code\":\"invalid_token\""), std::string::npos);
  EXPECT_EQ(res[http::field::www_authenticate], "Bearer");
}

TEST_F(http_server_test, valid_token_puts_principal_in_context) {
  start();
  client c(port());
  auto req = get("/me");
  req.set(http::field::authorization, "Bearer good");
  auto res = c.send(req);
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_EQ(res.body(), "42");
}

TEST_F(http_server_test, throwing_handler_is_500_and_next_request_works) {
  start();
  client c(port());
  auto res = c.send(get("/boom"));
  EXPECT_EQ(res.result(), http::status::internal_server_error);
  EXPECT_EQ(res.body(), R"({"error":{"code":"internal_error","message":"internal error"}})");
  EXPECT_EQ(c.send(get("/echo/1")).result(), http::status::ok);
  EXPECT_TRUE(metrics_show("chat4all_http_handler_exceptions_total{route=\"boom\"} 1\n"));
  EXPECT_TRUE(metrics_show("chat4all_http_requests_total{route=\"boom\",status=\"5xx\"} 1\n"));
}

TEST_F(http_server_test, connections_over_the_limit_get_503) {
  server_config cfg;
  cfg.max_connections = 1;
  start(cfg);
  client first(port());
  ASSERT_EQ(first.send(get("/echo/1")).result(), http::status::ok);
  client second(port());
  auto res = second.send(get("/echo/1"));
  EXPECT_EQ(res.result(), http::status::service_unavailable);
  EXPECT_FALSE(res[http::field::retry_after].empty());
  EXPECT_EQ(first.send(get("/echo/1")).result(), http::status::ok);
}

TEST_F(http_server_test, stop_drains_in_flight_request_and_closes_idle_ones) {
  start();
  client idle(port());
  ASSERT_EQ(idle.send(get("/echo/1")).result(), http::status::ok);

  auto in_flight = std::async(std::launch::async, [p = port()] {
    client c(p);
    return c.send(get("/slow"));
  });
  while (!slow_started_) std::this_thread::sleep_for(1ms);

  auto t0 = std::chrono::steady_clock::now();
  server_->stop(5s);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(slow_completed_);  // stop() returned only after the handler finished
  EXPECT_LT(took, 3s);           // and did not wait for the idle connection
  auto res = in_flight.get();
  EXPECT_EQ(res.result(), http::status::ok);
  EXPECT_FALSE(res.keep_alive());  // closes after its response while draining
  EXPECT_TRUE(idle.closed_by_peer());
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(http_server_test, expect_100_continue_and_upgrade_routes) {
  start();
  client c(port());
  c.write_raw(
      "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(c.read().result(), http::status::continue_);
  c.write_raw("abcde");
  EXPECT_EQ(c.read().body(), "5");

  client u(port());
  u.write_raw("GET /raw HTTP/1.1\r\nHost: x\r\nX-Request-ID: up1\r\n\r\n");
  std::string got(9, '\0');
  boost::system::error_code ec;
  // The upgrade handler owns the socket: raw bytes, then the server closes.
  std::size_t n = 0;
  while (n < got.size() && !ec) n += u.read_some(asio::buffer(got.data() + n, got.size() - n), ec);
  EXPECT_EQ(got, "hello up1");
  EXPECT_TRUE(u.closed_by_peer());
}

TEST_F(http_server_test, idle_connections_time_out) {
  server_config cfg;
  cfg.idle_timeout_s = 1;
  start(cfg);
  client c(port());
  ASSERT_EQ(c.send(get("/echo/1")).result(), http::status::ok);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST_F(http_server_test, executor_runs_background_work_and_bad_listen_throws) {
  start();
  std::promise<bool> ran;
  asio::post(server_->executor(), [&] { ran.set_value(true); });
  EXPECT_TRUE(ran.get_future().get());

  server_config cfg;
  cfg.listen = "203.0.113.1:1";  // TEST-NET address: not local, bind fails
  http_server other(cfg, routes_, nullptr, metrics_);
  EXPECT_THROW(other.start(), std::runtime_error);
}

}  // namespace
}  // namespace chat4all::api
