// held_stream over a real loopback TCP connection: straight writes pass through, held ones
// reach the peer only on release(), in order, together with writes made while releasing.
#include "ws/held_stream.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>

#include <string>

namespace chat4all::ws {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;

// A connected TCP pair on 127.0.0.1: `client` (wrapped by `out`) writes, `peer` reads.
struct loopback {
  asio::io_context io;
  boost::beast::tcp_stream client{io};
  tcp::socket peer{io};
  held_stream out{client};
  loopback() {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.socket().connect(acc.local_endpoint());
    peer = acc.accept();
  }
};

TEST(ws_held_stream, holds_writes_until_release_and_keeps_their_order) {
  loopback lb;
  auto& io = lb.io;
  auto& peer = lb.peer;
  auto& out = lb.out;

  bool done = false;
  std::string got;
  auto body = [&]() -> asio::awaitable<void> {
    auto tok = asio::as_tuple(asio::use_awaitable);
    auto [e1, n1] =
        co_await asio::async_write(out, asio::buffer(std::string_view("straight|")), tok);
    EXPECT_FALSE(e1);
    EXPECT_EQ(n1, 9u);
    out.hold();
    EXPECT_TRUE(out.holding());
    for (const char* part : {"one|", "two|", "three|"}) {
      auto [ec, n] = co_await asio::async_write(out, asio::buffer(std::string_view(part)), tok);
      EXPECT_FALSE(ec);
      EXPECT_EQ(n, std::string_view(part).size());
    }
    // Nothing of the held writes reached the peer yet.
    std::string first(9, '\0');
    co_await asio::async_read(peer, asio::buffer(first), asio::use_awaitable);
    got += first;
    EXPECT_EQ(peer.available(), 0u);
    // A write that starts while release() runs is sent by it too, after the held ones.
    auto late = [&]() -> asio::awaitable<void> {
      auto [ec, n] = co_await asio::async_write(out, asio::buffer(std::string_view("late|")),
                                                asio::as_tuple(asio::use_awaitable));
      EXPECT_FALSE(ec);
    };
    asio::co_spawn(io, late(), asio::detached);
    auto ec = co_await out.release();
    EXPECT_FALSE(ec);
    EXPECT_FALSE(out.holding());
    std::string rest(4 + 4 + 6 + 5, '\0');
    co_await asio::async_read(peer, asio::buffer(rest), asio::use_awaitable);
    got += rest;
    done = true;
  };
  asio::co_spawn(io, body(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  EXPECT_TRUE(done);
  EXPECT_EQ(got, "straight|one|two|three|late|");
}

TEST(ws_held_stream, a_failed_release_reports_the_error) {
  loopback lb;
  auto& out = lb.out;
  boost::system::error_code result;
  auto body = [&]() -> asio::awaitable<void> {
    out.hold();
    auto [ec, n] = co_await asio::async_write(out, asio::buffer(std::string(1000, 'x')),
                                              asio::as_tuple(asio::use_awaitable));
    EXPECT_FALSE(ec);
    lb.client.socket().shutdown(tcp::socket::shutdown_send);
    result = co_await out.release();
  };
  asio::co_spawn(lb.io, body(), asio::detached);
  lb.io.run();
  EXPECT_TRUE(result);
}

}  // namespace
}  // namespace chat4all::ws
