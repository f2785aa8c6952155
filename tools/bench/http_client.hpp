#pragma once
// A keep-alive HTTP/1.1 client connection on Beast coroutines (one per simulated client;
// many share a few io_context threads). Reconnects lazily after any transport error.
// Not thread-safe: one coroutine at a time uses a connection, on its executor.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace chat4all::bench {

// Where the server under test listens: parsed from --url http://host:port.
struct server_address {
  std::string host;
  std::string port;
  boost::asio::ip::tcp::endpoint endpoint;
  std::string base_url() const { return "http://" + host + ":" + port; }
  // Throws std::invalid_argument for anything but http://host[:port][/].
  static server_address parse(const std::string& url);
};

struct http_reply {
  int status = 0;     // 0: no HTTP answer (see error)
  std::string error;  // transport error kind: "connect", "timeout", "io"
  std::string body;
  bool ok() const { return status >= 200 && status < 300; }
  // "http_503", "timeout", ...: the key of the error breakdown.
  std::string kind() const { return status ? "http_" + std::to_string(status) : error; }
};

class http_connection {
 public:
  http_connection(boost::asio::any_io_executor ex, const server_address& addr);

  // Sends one request (body is not copied; it must live until the call returns). An empty
  // token sends no Authorization header.
  boost::asio::awaitable<http_reply> request(
      boost::beast::http::verb verb, std::string_view target, std::string_view body,
      std::string_view token, std::string_view content_type = "application/json",
      std::chrono::milliseconds timeout = std::chrono::seconds(30),
      std::string_view extra_header_name = {}, std::string_view extra_header_value = {});

  std::uint64_t connects() const { return connects_; }
  void close();

 private:
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  const server_address* addr_;
  bool open_ = false;
  std::uint64_t connects_ = 0;
};

// Percent-free query helper: "/v1/conversations/7/messages?after_seq=3&limit=100".
std::string history_target(std::int64_t conversation, std::int64_t after_seq, int limit);

}  // namespace chat4all::bench
